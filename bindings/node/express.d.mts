/// <reference types="node" />
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Telemetry } from './index.js';

type Next = (err?: unknown) => void;
export type Middleware = (req: IncomingMessage, res: ServerResponse, next: Next) => void;

export function expressMiddleware(telemetry: Telemetry, options?: { exclude?: string[] }): Middleware;
export function metricsHandler(telemetry: Telemetry): Middleware;
export function webVitalsHandler(
  telemetry: Telemetry,
  options?: { maxBytes?: number; routes?: string[] },
): (req: IncomingMessage, res: ServerResponse) => void;
export function routeTemplate(req: IncomingMessage): string | undefined;
