'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const Fastify = require('fastify');
const { Telemetry } = require('..');
const { fastifyTelemetry } = require('../fastify');
const h = require('./helpers.js');

test('the Fastify plugin records requests by route template and serves /metrics', async () => {
  const tel = new Telemetry({ tracing: false });
  const app = Fastify();
  await app.register(fastifyTelemetry, { telemetry: tel });
  app.get('/api/items/:id', async (req) => ({ id: req.params.id }));
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address();
  try {
    for (let i = 0; i < 5; i++) assert.equal((await h.request(port, `/api/items/${i}`)).status, 200);
    assert.equal((await h.request(port, '/nope')).status, 404);
    const res = await h.request(port, '/metrics');
    assert.equal(res.status, 200);
    assert.equal(h.sample(res.body, 'tars_http_requests_total', { method: 'GET', endpoint: '/api/items/:id', status: '200' }), 5);
    assert.equal(h.sample(res.body, 'tars_http_requests_total', { method: 'GET', endpoint: '__unmatched__', status: '404' }), 1);
  } finally {
    await app.close();
  }
});
