/// <reference types="node" />
import type { Telemetry } from './index.js';

export interface FastifyTelemetryOptions {
  telemetry: Telemetry;
  /** Where to serve the exposition ('/metrics'); false for nowhere. */
  metricsPath?: string | false;
  /** Paths not recorded (default /metrics and health). */
  exclude?: string[];
}

// Typed structurally, so that using it does not need fastify's types.
export function fastifyTelemetry(
  app: unknown,
  options: FastifyTelemetryOptions,
  done: (err?: Error) => void,
): void;
export function fastifyWebVitals(
  telemetry: Telemetry,
  options?: { maxBytes?: number; routes?: string[] },
): (request: unknown, reply: unknown) => void;
export default fastifyTelemetry;
