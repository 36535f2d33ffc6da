// Types of the ESM entry: the same API as the CommonJS entry's (express.d.ts).
export * from './express.js';
