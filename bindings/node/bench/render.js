'use strict';
// Render of 1,000 counter series (beside the catalog families every telemetry has),
// tars-telemetry against prom-client.
const { performance } = require('node:perf_hooks');
const { Telemetry } = require('..');
const promClient = require('prom-client');

const ROUNDS = Number(process.env.BENCH_ROUNDS || 200);

async function measure(name, fn) {
  for (let i = 0; i < 20; i++) await fn();
  const ms = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = performance.now();
    await fn();
    ms.push(performance.now() - t0);
  }
  ms.sort((a, b) => a - b);
  console.log(JSON.stringify({ name, median_ms: +ms[Math.floor(ROUNDS / 2)].toFixed(3), p90_ms: +ms[Math.floor(ROUNDS * 0.9)].toFixed(3) }));
}

(async () => {
  const tel = new Telemetry({ tracing: false });
  const c = new tel.Counter({ name: 'bench_requests_total', help: 'x', labelNames: ['route', 'status'] });
  const reg = new promClient.Registry();
  const pc = new promClient.Counter({ name: 'bench_requests_total', help: 'x', labelNames: ['route', 'status'], registers: [reg] });
  for (let i = 0; i < 1000; i++) {
    c.inc({ route: `/api/r${i}`, status: String(200 + (i % 4)) }, i);
    pc.inc({ route: `/api/r${i}`, status: String(200 + (i % 4)) }, i);
  }
  const text = tel.metricsSync();
  console.log(JSON.stringify({ series: text.split('\n').filter((l) => l.startsWith('bench_requests_total{')).length, bytes: text.length }));
  await measure('tars: metricsSync() (main thread), 1,000 series', () => tel.metricsSync());
  await measure('tars: await metrics() (thread pool), 1,000 series', () => tel.metrics());
  await measure('prom-client: await register.metrics(), 1,000 series', () => reg.metrics());
})();
