// @ts-check
// The UI server: serves the page, proxies /api/* to the backend (the Python example
// backend, BACKEND_URL) with the trace in a traceparent header, takes the page's Web
// Vitals beacons, and exposes /metrics.
//
//   BACKEND_URL=http://127.0.0.1:8000 PORT=3000 node server.js
'use strict';
const path = require('node:path');
const express = require('express');
const { Telemetry } = require('tars-telemetry');
const { expressMiddleware, metricsHandler, webVitalsHandler } = require('tars-telemetry/express');

const tel = new Telemetry({ serviceName: process.env.OTEL_SERVICE_NAME || 'tars-ui' });
tel.setAppInfo({ version: '0.1.0', environment: process.env.NODE_ENV || 'development' });
const backend = process.env.BACKEND_URL || 'http://127.0.0.1:8000';

const app = express();
app.use(expressMiddleware(tel));
app.get('/metrics', metricsHandler(tel));
app.get('/healthz', (_req, res) => {
  res.send('ok');
});
app.post('/vitals', webVitalsHandler(tel, { routes: ['/', '/chat/:id'] }));

// Every /api/* request goes to the backend; its server span becomes a child of ours.
app.all('/api/*path', express.raw({ type: '*/*', limit: '1mb' }), async (req, res) => {
  const headers = new Headers();
  const type = req.headers['content-type'];
  if (type) headers.set('content-type', type);
  const body = req.method === 'GET' || req.method === 'HEAD' || !Buffer.isBuffer(req.body) ? undefined : new Uint8Array(req.body);
  try {
    const upstream = await tel.fetch(new URL(req.originalUrl, backend), { method: req.method, headers, body });
    res.status(upstream.status);
    const ct = upstream.headers.get('content-type');
    if (ct) res.setHeader('content-type', ct);
    res.send(Buffer.from(await upstream.arrayBuffer()));
  } catch (e) {
    tel.recordError('http', e);
    res.status(502).json({ error: 'backend unavailable' });
  }
});

app.use(express.static(path.join(__dirname, 'public')));
app.get(['/', '/chat/:id'], (_req, res) => {
  res.sendFile(path.join(__dirname, 'public', 'index.html'));
});

const port = Number(process.env.PORT || 3000);
const server = app.listen(port, process.env.HOST || '127.0.0.1', () => {
  const a = server.address();
  console.log(JSON.stringify({ listening: a && typeof a === 'object' ? a.port : port }));
});

for (const sig of /** @type {const} */ (['SIGTERM', 'SIGINT'])) {
  process.once(sig, () => {
    server.close();
    tel.shutdown().finally(() => process.exit(0));
  });
}
