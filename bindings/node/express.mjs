import cjs from './express.js';

export const { expressMiddleware, metricsHandler, webVitalsHandler, routeTemplate } = cjs;
export default cjs;
