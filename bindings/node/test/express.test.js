'use strict';
// A real Express server over real HTTP on 127.0.0.1, scraped and checked by promtool and
// prometheus_client's text and OpenMetrics parsers.
const test = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const express = require('express');
const { Telemetry, openStages, DEFAULT_EXCLUDED_PATHS } = require('..');
const { expressMiddleware, metricsHandler, webVitalsHandler } = require('../express');
const h = require('./helpers.js');

function app(tel) {
  const a = express();
  a.use(expressMiddleware(tel));
  a.get('/metrics', metricsHandler(tel));
  a.get('/healthz', (req, res) => res.send('ok'));
  const api = express.Router();
  api.get('/items/:id', (req, res) => res.json({ id: req.params.id }));
  api.post('/items', (req, res) => res.status(201).end());
  api.get('/boom', () => {
    throw new Error('boom');
  });
  api.get('/slow', (req, res) => {
    setTimeout(() => res.end('late'), 2000).unref();
  });
  a.use('/api', api);
  a.post('/vitals', webVitalsHandler(tel));
  return a;
}

test('requests are counted by method, route template and status; /metrics and health are not', async () => {
  const tel = new Telemetry({ serviceName: 'tars-ui', tracing: false });
  const server = await h.listen(app(tel));
  const { port } = server.address();
  try {
    for (let i = 0; i < 10; i++) assert.equal((await h.request(port, `/api/items/${i}?q=${i}`)).status, 200);
    assert.equal((await h.request(port, '/api/items', { method: 'POST' })).status, 201);
    assert.equal((await h.request(port, '/api/boom')).status, 500);
    assert.equal((await h.request(port, '/no/such/page')).status, 404);
    assert.equal((await h.request(port, '/healthz')).status, 200);
    // Below an excluded path, excluded too (the core's rule: /metrics/x, /health/live).
    assert.equal((await h.request(port, '/metrics/x')).status, 404);
    assert.equal((await h.request(port, '/health/live')).status, 404);
    // An aborted request: the client goes away before the response.
    await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.write('GET /api/slow HTTP/1.1\r\nHost: x\r\n\r\n');
        setTimeout(() => { s.destroy(); resolve(); }, 200);
      });
    });
    await h.waitFor(() => openStages() === 0, 10000, 'the aborted request to end');
    const res = await h.request(port, '/metrics');
    assert.equal(res.status, 200);
    assert.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/);
    const text = res.body;
    const get = (labels) => h.sample(text, 'tars_http_requests_total', labels);
    assert.equal(get({ method: 'GET', endpoint: '/api/items/:id', status: '200' }), 10);
    assert.equal(get({ method: 'POST', endpoint: '/api/items', status: '201' }), 1);
    assert.equal(get({ method: 'GET', endpoint: '/api/boom', status: '500' }), 1);
    assert.equal(get({ method: 'GET', endpoint: '__unmatched__', status: '404' }), 1, 'excluded 404s not counted');
    assert.equal(h.sample(text, 'tars_http_request_duration_seconds_count', { method: 'GET', endpoint: '/api/items/:id' }), 10);
    assert.ok(!/endpoint="\/(metrics|healthz)"/.test(text), 'excluded paths are not recorded');
    assert.ok(!/endpoint="\/api\/items\/[0-9]/.test(text), 'raw paths never become labels');
    assert.equal(h.sample(text, 'tars_telemetry_stages_abandoned_total', { stage: 'http_server' }), 1);
    assert.equal(h.sample(text, 'tars_http_requests_active'), 0);
    const om = await h.request(port, '/metrics', { headers: { accept: 'application/openmetrics-text; version=1.0.0' } });
    assert.match(om.headers['content-type'], /^application\/openmetrics-text/);
    assert.ok(om.body.endsWith('# EOF\n'));
  } finally {
    await h.close(server);
  }
});

test('the exposition passes promtool and prometheus_client (text and OpenMetrics)', async (t) => {
  const tel = new Telemetry({ serviceName: 'tars-ui', tracing: false });
  const server = await h.listen(app(tel));
  const { port } = server.address();
  try {
    const c = new tel.Counter({ name: 'ui_events', help: 'UI events.', labelNames: ['kind'] });
    c.inc({ kind: 'quote"and\\backslash\nnewline' });
    for (let i = 0; i < 20; i++) await h.request(port, `/api/items/${i}`);
    await h.request(port, '/vitals', { method: 'POST', body: JSON.stringify({ name: 'LCP', value: 1200, route: '/chat/:id', navigationType: 'navigate' }) });
    const text = (await h.request(port, '/metrics')).body;
    const om = (await h.request(port, '/metrics', { headers: { accept: 'application/openmetrics-text' } })).body;
    if (h.needTool(t, h.which('promtool'), 'promtool')) {
      const r = h.promtoolCheck(text);
      // rc 3 is a lint finding only; rc 1 a parse error. Our families follow the naming
      // rules, so neither is expected.
      assert.equal(r.status, 0, r.output);
    }
    if (h.needTool(t, h.hasPython(), 'the .venv with prometheus_client')) {
      const prom = h.parseWithPrometheusClient(text, 'prometheus');
      assert.equal(prom.tars_http_requests.type, 'counter');
      assert.equal(prom.tars_web_vitals_lcp_seconds.type, 'histogram');
      const open = h.parseWithPrometheusClient(om, 'openmetrics');
      assert.equal(open.tars_http_request_duration_seconds.type, 'histogram');
      assert.equal(open.ui_events.type, 'counter');
    }
  } finally {
    await h.close(server);
  }
});

test('concurrent requests over many scrapes count exactly', async () => {
  const tel = new Telemetry({ tracing: false });
  const server = await h.listen(app(tel));
  const { port } = server.address();
  try {
    const N = 400;
    let sent = 0;
    const worker = async () => {
      while (sent < N) {
        sent++;
        await h.request(port, '/api/items/1');
      }
    };
    const scrapes = (async () => {
      for (let i = 0; i < 10; i++) assert.equal((await h.request(port, '/metrics')).status, 200);
    })();
    await Promise.all([worker(), worker(), worker(), worker(), scrapes]);
    const text = (await h.request(port, '/metrics')).body;
    assert.equal(h.sample(text, 'tars_http_requests_total', { method: 'GET', endpoint: '/api/items/:id', status: '200' }), N);
  } finally {
    await h.close(server);
  }
});

test('Web Vitals beacons: good reports recorded, bad ones rejected and counted', async () => {
  const tel = new Telemetry({ tracing: false });
  const server = await h.listen(app(tel));
  const { port } = server.address();
  const post = (body, headers = {}) => h.request(port, '/vitals', { method: 'POST', body, headers: { 'content-type': 'text/plain', ...headers } });
  try {
    const batch = [
      { name: 'LCP', value: 2400, route: '/chat/:id', navigationType: 'navigate' },
      { name: 'INP', value: 180, route: '/chat/:id', navigationType: 'navigate' },
      { name: 'CLS', value: 0.08, route: '/chat/:id', navigationType: 'reload' },
      { name: 'FCP', value: 900, route: '/', navigationType: 'back-forward' },
      { name: 'TTFB', value: 300, route: '/', navigationType: 'navigate' },
    ];
    assert.equal((await post(JSON.stringify(batch))).status, 204);
    assert.equal((await post('{not json')).status, 400);
    assert.equal((await post('x'.repeat(64 * 1024))).status, 413);
    assert.equal((await post(JSON.stringify([{ name: 'FID', value: 3, route: '/' }]))).status, 400);
    assert.equal((await post(JSON.stringify([{ name: 'LCP', value: NaN, route: '/' }]))).status, 400);
    assert.equal((await post(JSON.stringify([{ name: 'LCP', value: -5, route: '/' }]))).status, 400);
    assert.equal((await post(JSON.stringify([{ name: 'LCP', value: '12', route: '/' }]))).status, 400);
    assert.equal((await post(JSON.stringify([{ name: 'LCP', value: 1, route: 'no-slash' }]))).status, 400);
    assert.equal((await post(JSON.stringify([{ name: 'LCP', value: 1, route: '/' + 'a'.repeat(5000) }]))).status, 400);
    assert.equal((await post(JSON.stringify([{ name: 'LCP', value: 1, route: '/', navigationType: 'teleport' }]))).status, 400);
    assert.equal((await post(JSON.stringify(new Array(50).fill(batch[0])))).status, 400);
    assert.equal((await post(JSON.stringify([null]))).status, 400);
    assert.equal((await post('null')).status, 400);
    const text = await tel.metrics();
    assert.equal(h.sample(text, 'tars_web_vitals_lcp_seconds_count', { route: '/chat/:id', navigation_type: 'navigate' }), 1);
    assert.equal(h.sample(text, 'tars_web_vitals_lcp_seconds_bucket', { route: '/chat/:id', navigation_type: 'navigate', le: '2.5' }), 1);
    assert.equal(h.sample(text, 'tars_web_vitals_lcp_seconds_bucket', { route: '/chat/:id', navigation_type: 'navigate', le: '2.0' }), 0);
    assert.equal(h.sample(text, 'tars_web_vitals_inp_seconds_sum', { route: '/chat/:id', navigation_type: 'navigate' }), 0.18);
    assert.equal(h.sample(text, 'tars_web_vitals_cls_sum', { route: '/chat/:id', navigation_type: 'reload' }), 0.08);
    assert.equal(h.sample(text, 'tars_web_vitals_fcp_seconds_count', { route: '/', navigation_type: 'back-forward' }), 1);
    assert.equal(h.sample(text, 'tars_web_vitals_ttfb_seconds_count', { route: '/', navigation_type: 'navigate' }), 1);
    const rejected = (reason) => h.sample(text, 'tars_web_vitals_rejected_total', { reason });
    assert.equal(rejected('malformed'), 3);
    assert.equal(rejected('oversized'), 1);
    assert.equal(rejected('unknown_metric'), 1);
    assert.equal(rejected('bad_value'), 3);
    assert.equal(rejected('bad_route'), 2);
    assert.equal(rejected('bad_navigation_type'), 1);
    assert.equal(rejected('too_many'), 1);
  } finally {
    await h.close(server);
  }
});

test('the excluded paths are the core\'s, and a custom list replaces them', async () => {
  assert.deepEqual([...DEFAULT_EXCLUDED_PATHS].sort(), ['/health', '/healthz', '/livez', '/metrics', '/ready', '/readyz']);
  assert.ok(Object.isFrozen(DEFAULT_EXCLUDED_PATHS));
  const tel = new Telemetry({ serviceName: 'tars-ui', tracing: false });
  const a = express();
  a.use(expressMiddleware(tel, { exclude: ['/internal/'] }));
  a.get('/metrics', metricsHandler(tel));
  a.get('/internal/x', (req, res) => res.send('ok'));
  a.get('/healthz', (req, res) => res.send('ok'));
  const server = await h.listen(a);
  const { port } = server.address();
  try {
    await h.request(port, '/internal/x');
    await h.request(port, '/healthz');
    const text = (await h.request(port, '/metrics')).body;
    assert.equal(h.sample(text, 'tars_http_requests_total', { method: 'GET', endpoint: '/healthz', status: '200' }), 1);
    assert.equal(h.sample(text, 'tars_http_requests_total', { method: 'GET', endpoint: '/metrics', status: '200' }), undefined, 'the scrape itself has no series yet');
    assert.ok(!/endpoint="\/internal/.test(text), text);
  } finally {
    await h.close(server);
  }
});
