'use strict';
// The Express middleware's own CPU per request, without a server: the middleware is
// called with a real http.IncomingMessage and http.ServerResponse (no socket), the route
// set as Express's router sets it, and the response's 'finish' and 'close' emitted as Node
// emits them. Complements bench/middleware.js, whose whole-server numbers vary by tens of
// microseconds between runs on a small machine.
//
//   node bench/middleware-micro.js [N]
const http = require('node:http');
const { Telemetry } = require('..');
const { expressMiddleware } = require('../express');

const N = Number(process.argv[2] || 200000);

function once(mw) {
  const req = new http.IncomingMessage(null);
  req.method = 'GET';
  req.url = req.originalUrl = '/api/items/42';
  req.baseUrl = '';
  req.headers = {};
  const res = new http.ServerResponse(req);
  res.statusCode = 200;
  mw(req, res, () => {
    req.route = { path: '/api/items/:id' };
  });
  res.emit('finish');
  res.emit('close');
}

function measure(name, mw) {
  for (let i = 0; i < 20000; i++) once(mw);
  const rounds = [];
  for (let r = 0; r < 5; r++) {
    const t0 = process.cpuUsage();
    for (let i = 0; i < N; i++) once(mw);
    const d = process.cpuUsage(t0);
    rounds.push(((d.user + d.system) * 1000) / N);
  }
  rounds.sort((a, b) => a - b);
  return { name, ns_per_request: Math.round(rounds[2]) };
}

const baseline = measure('no middleware (objects and events only)', (req, res, next) => next());
const tel = new Telemetry({ serviceName: 'bench', tracing: false });
const tars = measure('tars-telemetry expressMiddleware, metrics only', expressMiddleware(tel));
// Every request sampled; the spans go to a port where nothing listens (the export thread's
// failures cost this thread nothing).
process.env.OTEL_EXPORTER_OTLP_ENDPOINT = 'http://127.0.0.1:9';
process.env.OTEL_EXPORTER_OTLP_PROTOCOL = 'http/protobuf';
process.env.OTEL_TRACES_SAMPLER = 'always_on';
const traced = new Telemetry({ serviceName: 'bench', tracing: true });
const spans = measure('tars-telemetry expressMiddleware, sampled span', expressMiddleware(traced));
console.log(JSON.stringify(baseline));
for (const r of [tars, spans]) console.log(JSON.stringify({ ...r, added_ns: r.ns_per_request - baseline.ns_per_request }));
