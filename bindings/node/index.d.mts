// Types of the ESM entry: the same API as the CommonJS entry's (index.d.ts).
export * from './index.js';
