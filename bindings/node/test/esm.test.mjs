// The ESM entry points give the same API as the CommonJS ones.
import test from 'node:test';
import assert from 'node:assert/strict';
import { Telemetry, renderMultiprocessDir } from 'tars-telemetry';
import tars from 'tars-telemetry';
import { expressMiddleware, metricsHandler } from 'tars-telemetry/express';
import { fastifyTelemetry } from 'tars-telemetry/fastify';
import { createRequire } from 'node:module';

test('import and require give the same classes', async () => {
  const require = createRequire(import.meta.url);
  assert.equal(Telemetry, require('tars-telemetry').Telemetry);
  assert.equal(tars.Telemetry, Telemetry);
  assert.equal(renderMultiprocessDir, require('tars-telemetry').renderMultiprocessDir);
  assert.equal(typeof expressMiddleware, 'function');
  assert.equal(typeof metricsHandler, 'function');
  assert.equal(typeof fastifyTelemetry, 'function');
  const t = new Telemetry({ serviceName: 'tars-ui', tracing: false });
  assert.match(await t.metrics(), /# TYPE tars_rag_query_duration_seconds histogram/);
});
