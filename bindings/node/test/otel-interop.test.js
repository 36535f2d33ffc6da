'use strict';
// With @opentelemetry/api in use, its active span is the parent of our stages, and our
// stage can be the parent of its spans: one trace id throughout.
const test = require('node:test');
const assert = require('node:assert/strict');
const api = require('@opentelemetry/api');
const { NodeTracerProvider } = require('@opentelemetry/sdk-trace-node');
const { Telemetry } = require('..');
const h = require('./helpers.js');

test('an OpenTelemetry span is our parent, and ours can be its', async (t) => {
  if (!h.needTool(t, h.hasPython(), 'the .venv with opentelemetry-proto and grpcio')) return;
  const receiver = await h.startReceiver();
  const restoreEnv = h.exportTo(receiver);
  const provider = new NodeTracerProvider();
  provider.register();
  try {
    const tel = new Telemetry({ serviceName: 'tars-ui' });
    const tracer = api.trace.getTracer('interop-test');
    let outer;
    let ours;
    let inner;
    await tracer.startActiveSpan('ui.render', async (span) => {
      outer = span.spanContext();
      await tel.rag.query(async (q) => {
        ours = q.spanContext();
        const ctx = api.trace.setSpanContext(api.context.active(), { ...ours, traceFlags: ours.traceFlags });
        const child = tracer.startSpan('ui.child', {}, ctx);
        inner = child.spanContext();
        child.end();
      });
      span.end();
    });
    assert.ok(ours, 'our stage has a span');
    assert.equal(ours.traceId, outer.traceId, 'our stage joins the active OpenTelemetry trace');
    assert.equal(inner.traceId, ours.traceId, 'an OpenTelemetry span under our stage joins it too');
    await tel.shutdown();
    const spans = await h.waitFor(() => receiver.spans().filter((s) => s.name === 'rag.query').length >= 1 && receiver.spans(), 30000, 'the rag.query span');
    const q = spans.find((s) => s.name === 'rag.query');
    assert.equal(q.trace_id, outer.traceId);
    assert.equal(q.parent_span_id, outer.spanId, "the OpenTelemetry span is our span's parent");
    assert.equal(q.span_id, ours.spanId);
  } finally {
    await provider.shutdown();
    api.trace.disable();
    api.context.disable();
    restoreEnv();
    receiver.stop();
  }
});
