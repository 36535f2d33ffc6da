import cjs from './fastify.js';

export const { fastifyTelemetry, fastifyWebVitals } = cjs;
export default cjs.fastifyTelemetry;
