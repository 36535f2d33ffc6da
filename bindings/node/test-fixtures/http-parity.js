'use strict';
// The Express side of the HTTP parity test (bindings/python/tests/test_http_parity.py):
// the same routes as its FastAPI app, served on 127.0.0.1:PORT; prints
// { event: 'listening', port }. node --test runs every file under test/, so without
// TARS_FIXTURE it does nothing.
if (process.env.TARS_FIXTURE !== 'http-parity') return;
const express = require('express');
const { Telemetry } = require('..');
const { expressMiddleware, metricsHandler } = require('../express');

const tel = new Telemetry({ serviceName: 'parity-express', tracing: false });
const app = express();
app.use(expressMiddleware(tel));
app.get('/work', (req, res) => res.send('done'));
app.get('/items/:id', (req, res) => res.json({ id: req.params.id }));
// A first chunk, then the rest after a while: a client that leaves after the first one
// abandons the request.
app.get('/slow-stream', (req, res) => {
  res.write('first\n');
  setTimeout(() => res.end('last\n'), 1500);
});
app.get('/metrics', metricsHandler(tel));
const server = app.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ event: 'listening', port: server.address().port })}\n`);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
