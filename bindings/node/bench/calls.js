'use strict';
// Per-call cost: an empty call through each kind of binding, and a labeled inc/observe
// through an interned handle, against prom-client in the same process.
//
//   node bench/calls.js            (after a release build: node scripts/build-addon.js)
const { performance } = require('node:perf_hooks');
const native = require('../native.js');
const { Telemetry } = require('..');
const promClient = require('prom-client');

const N = Number(process.env.BENCH_N || 5_000_000);
const ROUNDS = 5;

function measure(name, fn) {
  for (let i = 0; i < N / 10; i++) fn(i); // warm up (JIT)
  const ns = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = performance.now();
    for (let i = 0; i < N; i++) fn(i);
    ns.push(((performance.now() - t0) * 1e6) / N);
  }
  ns.sort((a, b) => a - b);
  const row = { name, median_ns: +ns[Math.floor(ROUNDS / 2)].toFixed(1), min_ns: +ns[0].toFixed(1), max_ns: +ns[ROUNDS - 1].toFixed(1) };
  console.log(JSON.stringify(row));
  return row;
}

const hot = native.hotCalls();
const obj = new native.NoopHandle(1);
measure('empty: generated free function (napi-derive)', (i) => native.noopFree(1, i));
measure('empty: generated class method (napi-derive, &self)', (i) => obj.inc(i));
measure('empty: raw N-API callback', (i) => hot.noopRaw(1, i));

const tel = new Telemetry({ tracing: false });
const c = new tel.Counter({ name: 'bench_requests_total', help: 'x', labelNames: ['route', 'status'] });
const child = c.labels('/api/items/:id', '200');
const hist = new tel.Histogram({ name: 'bench_seconds', help: 'x', labelNames: ['route'] });
const hchild = hist.labels('/api/items/:id');
measure('tars: counter child inc() (interned handle)', () => child.inc());
measure('tars: histogram child observe(v) (interned handle)', (i) => hchild.observe((i & 1023) / 1000));
measure('tars: counter inc({labels}) (label lookup each call)', () => c.inc({ route: '/api/items/:id', status: '200' }));

const reg = new promClient.Registry();
const pc = new promClient.Counter({ name: 'bench_requests_total', help: 'x', labelNames: ['route', 'status'], registers: [reg] });
const ph = new promClient.Histogram({ name: 'bench_seconds', help: 'x', labelNames: ['route'], registers: [reg] });
const pchild = pc.labels('/api/items/:id', '200');
const phchild = ph.labels('/api/items/:id');
measure('prom-client: counter child inc()', () => pchild.inc());
measure('prom-client: histogram child observe(v)', (i) => phchild.observe((i & 1023) / 1000));
measure('prom-client: counter inc({labels})', () => pc.inc({ route: '/api/items/:id', status: '200' }));
