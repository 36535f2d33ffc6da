'use strict';
// Spans in the independent OTLP receiver (scripts/otlp_receiver.py): under concurrent
// requests every stage has its own request's span as parent, and a call to another
// service carries traceparent so that its server span joins the same trace.
const test = require('node:test');
const assert = require('node:assert/strict');
const express = require('express');
const { Telemetry, openStages } = require('..');
const { expressMiddleware } = require('../express');
const h = require('./helpers.js');

test('concurrent requests: correct parents, one trace across two services', async (t) => {
  if (!h.needTool(t, h.hasPython(), 'the .venv with opentelemetry-proto and grpcio')) return;
  const receiver = await h.startReceiver();
  const restoreEnv = h.exportTo(receiver);
  let ui;
  let backend;
  const servers = [];
  try {
    backend = new Telemetry({ serviceName: 'tars-backend-stub' });
    ui = new Telemetry({ serviceName: 'tars-ui' });
    assert.equal(ui.tracingEnabled, true);
    const b = express();
    b.use(expressMiddleware(backend));
    b.get('/api/answer/:id', async (req, res) => {
      await new Promise((r) => setTimeout(r, Math.random() * 20));
      res.json({ id: req.params.id });
    });
    const bs = await h.listen(b);
    servers.push(bs);
    const bport = bs.address().port;

    const a = express();
    a.use(expressMiddleware(ui));
    a.get('/ui/:id', async (req, res) => {
      const out = await ui.rag.query(async (q) => {
        await q.phase('retrieval', () => new Promise((r) => setTimeout(r, Math.random() * 20)));
        const r = await ui.fetch(`http://127.0.0.1:${bport}/api/answer/${req.params.id}`);
        return r.json();
      });
      res.json(out);
    });
    const as = await h.listen(a);
    servers.push(as);
    const port = as.address().port;

    const N = 24;
    const ids = Array.from({ length: N }, (_, i) => `req${i}`);
    const results = await Promise.all(ids.map((id) => h.request(port, `/ui/${id}`)));
    assert.ok(results.every((r) => r.status === 200));
    await h.waitFor(() => openStages() === 0, 10000, 'every stage to end');
    await ui.shutdown();
    await backend.shutdown();
    const spans = await h.waitFor(() => {
      const s = receiver.spans();
      return s.filter((x) => x.service === 'tars-backend-stub' && x.kind === 'SERVER').length >= N ? s : null;
    }, 30000, 'spans in the receiver');
    const byId = new Map(spans.map((s) => [s.span_id, s]));
    const traces = new Set();
    for (const id of ids) {
      const server = spans.filter((s) => s.service === 'tars-ui' && s.kind === 'SERVER' && s.attributes['url.path'] === `/ui/${id}`);
      assert.equal(server.length, 1, `one UI server span for ${id}`);
      const root = server[0];
      assert.equal(root.parent_span_id, '', 'the request starts the trace');
      assert.equal(root.name, 'GET /ui/:id');
      traces.add(root.trace_id);
      const inTrace = spans.filter((s) => s.trace_id === root.trace_id);
      const query = inTrace.filter((s) => s.name === 'rag.query');
      assert.equal(query.length, 1, `one rag.query in ${id}'s trace`);
      assert.equal(query[0].parent_span_id, root.span_id, 'the query is a child of its request');
      const retrieval = inTrace.filter((s) => s.name === 'rag.retrieval');
      assert.equal(retrieval.length, 1);
      assert.equal(retrieval[0].parent_span_id, query[0].span_id, 'the phase is a child of its query');
      const remote = inTrace.filter((s) => s.service === 'tars-backend-stub' && s.kind === 'SERVER');
      assert.equal(remote.length, 1, `the backend's server span is in ${id}'s trace`);
      assert.equal(remote[0].attributes['url.path'], `/api/answer/${id}`);
      assert.ok(byId.has(remote[0].parent_span_id));
      assert.equal(remote[0].parent_span_id, query[0].span_id, "the backend's span is a child of the UI's current stage");
    }
    assert.equal(traces.size, N, 'one trace per request, none shared');
  } finally {
    for (const s of servers) await h.close(s);
    restoreEnv();
    receiver.stop();
  }
});
