'use strict';
// The Web Vitals beacon endpoint, shared by the Express and Fastify adapters (it reads the
// raw request stream, so it works with or without a body parser in front of it).

const MAX_REPORTS = 20;

function readBody(req, limit) {
  return new Promise((resolve) => {
    if (req.body !== undefined && req.body !== null && !Buffer.isBuffer(req.body)) {
      // A body parser ran first.
      resolve({ parsed: req.body });
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
    req.on('end', () => resolve(over ? { oversized: true } : { text: Buffer.concat(chunks).toString('utf8') }));
    req.on('error', () => resolve({ oversized: false, malformed: true }));
  });
}

function webVitalsBeacon(tel, { maxBytes = 16 * 1024, routes } = {}) {
  const allowed = routes ? new Set(routes) : undefined;
  return function webVitals(req, res) {
    const reply = (status) => {
      res.statusCode = status;
      res.end();
    };
    const len = Number(req.headers['content-length']);
    if (Number.isFinite(len) && len > maxBytes) {
      tel.webVitals.reject('oversized');
      res.setHeader('Connection', 'close');
      reply(413);
      req.resume();
      return;
    }
    readBody(req, maxBytes).then(({ parsed, text, oversized, malformed }) => {
      if (oversized) {
        tel.webVitals.reject('oversized');
        return reply(413);
      }
      let body = parsed;
      if (body === undefined) {
        if (malformed) {
          tel.webVitals.reject('malformed');
          return reply(400);
        }
        try {
          body = JSON.parse(text);
        } catch {
          tel.webVitals.reject('malformed');
          return reply(400);
        }
      }
      const reports = Array.isArray(body) ? body : [body];
      if (reports.length === 0 || reports.some((r) => r === null || typeof r !== 'object' || Array.isArray(r))) {
        tel.webVitals.reject('malformed');
        return reply(400);
      }
      if (reports.length > MAX_REPORTS) {
        tel.webVitals.reject('too_many');
        return reply(400);
      }
      let recorded = 0;
      for (const r of reports) {
        if (allowed && !allowed.has(r.route)) {
          tel.webVitals.reject('bad_route');
          continue;
        }
        if (tel.webVitals.record(r) == null) recorded++;
      }
      return reply(recorded > 0 ? 204 : 400);
    });
  };
}

module.exports = { webVitalsBeacon, MAX_REPORTS };
