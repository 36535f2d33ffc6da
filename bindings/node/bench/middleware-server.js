'use strict';
// One variant of the middleware benchmark's server (see middleware.js).
const variant = process.argv[2];
const otlp = process.env.BENCH_OTLP;

if (variant === 'otel-sdk-node') {
  const { NodeSDK } = require('@opentelemetry/sdk-node');
  const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http');
  const { ExpressInstrumentation } = require('@opentelemetry/instrumentation-express');
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = otlp;
  process.env.OTEL_EXPORTER_OTLP_PROTOCOL = 'http/protobuf';
  process.env.OTEL_METRICS_EXPORTER = 'none';
  process.env.OTEL_LOGS_EXPORTER = 'none';
  new NodeSDK({ serviceName: 'bench', instrumentations: [new HttpInstrumentation(), new ExpressInstrumentation()] }).start();
}
if (variant === 'tars-traced') {
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = otlp;
  process.env.OTEL_EXPORTER_OTLP_PROTOCOL = 'http/protobuf';
  process.env.OTEL_TRACES_SAMPLER = 'always_on';
}

const express = require('express');
const app = express();
if (variant === 'tars' || variant === 'tars-traced') {
  const { Telemetry } = require('..');
  const { expressMiddleware } = require('../express');
  const tel = new Telemetry({ serviceName: 'bench', tracing: variant === 'tars-traced' });
  app.use(expressMiddleware(tel));
} else if (variant === 'express-prom-bundle') {
  const promBundle = require('express-prom-bundle');
  app.use(promBundle({ includeMethod: true, includePath: true, includeStatusCode: true }));
} else if (variant === 'prom-client-manual') {
  const promClient = require('prom-client');
  const h = new promClient.Histogram({ name: 'http_request_duration_seconds', help: 'x', labelNames: ['method', 'route', 'status'] });
  app.use((req, res, next) => {
    const end = h.startTimer();
    res.once('finish', () => end({ method: req.method, route: req.route ? req.baseUrl + req.route.path : '__unmatched__', status: res.statusCode }));
    next();
  });
}
app.get('/api/items/:id', (req, res) => res.json({ id: req.params.id }));
const server = app.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
let start;
process.on('message', (m) => {
  if (m === 'start') {
    start = process.cpuUsage();
    process.send('started');
  } else if (m === 'stop') {
    const d = process.cpuUsage(start);
    process.send({ cpuUs: d.user + d.system });
  }
});
