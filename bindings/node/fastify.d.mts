// Types of the ESM entry: the same API as the CommonJS entry's (fastify.d.ts).
export * from './fastify.js';
export { default } from './fastify.js';
