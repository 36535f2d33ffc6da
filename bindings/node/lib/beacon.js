'use strict';
// The Web Vitals beacon endpoint, shared by the Express and Fastify adapters: it reads the
// raw request stream (so it works with or without a body parser in front of it), up to the
// core's limit, and hands the body to the core, which checks it (size, shape, batch,
// names, values, routes), records it, counts what it refuses, and says what to answer.
const { WEB_VITALS_LIMITS } = require('../index.js');

const limits = WEB_VITALS_LIMITS;
const MAX_REPORTS = limits.maxBeaconReports;

function readBody(req, limit) {
  return new Promise((resolve) => {
    if (req.body !== undefined && req.body !== null && !Buffer.isBuffer(req.body)) {
      // A body parser ran first: hand the core what it parsed, as JSON again.
      let text;
      try {
        text = JSON.stringify(req.body);
      } catch {
        text = '';
      }
      resolve({ body: Buffer.from(text === undefined ? '' : text) });
      return;
    }
    const chunks = [];
    let size = 0;
    let over = false;
    req.on('data', (c) => {
      if (over) return;
      size += c.length;
      if (size > limit) {
        over = true;
        chunks.length = 0;
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(over ? { oversized: true } : { body: Buffer.concat(chunks) }));
    req.on('error', () => resolve({ body: Buffer.alloc(0) }));
  });
}

function webVitalsBeacon(tel, { maxBytes = limits.maxBeaconBytes, routes } = {}) {
  const allowed = routes ? [...routes].map(String) : undefined;
  const limit = Math.min(maxBytes, limits.maxBeaconBytes);
  return function webVitals(req, res) {
    const reply = (status) => {
      res.statusCode = status;
      res.end();
    };
    const len = Number(req.headers['content-length']);
    if (Number.isFinite(len) && len > limit) {
      tel.webVitals.reject('oversized');
      res.setHeader('Connection', 'close');
      reply(413);
      req.resume();
      return;
    }
    readBody(req, limit).then(({ body, oversized }) => {
      if (oversized) {
        tel.webVitals.reject('oversized');
        return reply(413);
      }
      try {
        reply(tel.webVitals.beacon(body, allowed).status);
      } catch (e) {
        process.emitWarning(`tars-telemetry: ${e && e.message}`, 'TarsTelemetryWarning');
        reply(500);
      }
    });
  };
}

module.exports = { webVitalsBeacon, MAX_REPORTS };
