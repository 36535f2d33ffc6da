'use strict';
// Every operation of the core's domain handles is offered by this package as the parity
// manifest (bindings/parity.json) says, or is absent for the reason it gives.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { Telemetry } = require('..');

test('every operation in the manifest is offered', () => {
  const manifest = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'parity.json'), 'utf8'));
  const tel = new Telemetry({ tracing: false });
  // The open stages the manifest's expressions reach into.
  const scope = {
    tel,
    express: require('../express'),
    ragQuery: tel.rag.start(),
    llmCall: tel.llm.start('llama3'),
    cacheCall: tel.redis.startCommand('GET'),
    docJob: tel.documents.start(),
    timed: tel.vectorStore.start(),
    ws: tel.websocket.connectionOpened(),
    httpReq: tel.http.start('GET', '/'),
  };
  const missing = [];
  assert.ok(manifest.operations.length > 80);
  for (const op of manifest.operations) {
    const call = op.node;
    if (typeof call !== 'string') {
      assert.ok(call.absent && call.absent.length > 10, op.core);
      continue;
    }
    const names = Object.keys(scope);
    // The manifest's own expressions, evaluated over the scope above.
    const value = new Function(...names, `return (${call});`)(...names.map((n) => scope[n]));
    if (value === undefined || value === null) missing.push(`${op.core}: ${call}`);
  }
  for (const s of [scope.ragQuery, scope.llmCall, scope.docJob, scope.timed]) s.succeed();
  scope.cacheCall.hit();
  scope.httpReq.finish(200);
  scope.ws.close();
  assert.deepEqual(missing, []);
});
