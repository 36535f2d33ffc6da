'use strict';
// Merged /metrics of several worker processes, each with 1,000 counter series: tars-telemetry's
// multi-process directory rendered with renderMultiprocessDir() from a process with no
// telemetry of its own, against prom-client's AggregatorRegistry.clusterMetrics() in a
// node:cluster primary (which asks every worker over IPC and aggregates). The workers stay
// alive, idle, while the primary measures.
//
//   node bench/cluster-render.js [ROUNDS]
const cluster = require('node:cluster');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { performance } = require('node:perf_hooks');

const SERIES = 1000;
const ROUNDS = Number(process.argv[2] || 20);

function worker() {
  const labels = (i) => ({ route: `/api/r${i}`, status: String(200 + (i % 4)) });
  if (process.env.BENCH_KIND === 'tars') {
    const { Telemetry } = require('..');
    const tel = new Telemetry({ tracing: false, multiprocDir: process.env.BENCH_DIR });
    const c = new tel.Counter({ name: 'bench_requests_total', help: 'x', labelNames: ['route', 'status'] });
    for (let i = 0; i < SERIES; i++) c.inc(labels(i), i);
  } else {
    const promClient = require('prom-client');
    new promClient.AggregatorRegistry(); // answers the primary's requests
    const c = new promClient.Counter({ name: 'bench_requests_total', help: 'x', labelNames: ['route', 'status'] });
    for (let i = 0; i < SERIES; i++) c.inc(labels(i), i);
  }
  process.send({ ready: true });
}

async function measure(name, n, fn) {
  for (let i = 0; i < 3; i++) await fn();
  const ms = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = performance.now();
    await fn();
    ms.push(performance.now() - t0);
  }
  ms.sort((a, b) => a - b);
  const text = await fn();
  const lines = text.split('\n').filter((l) => l.startsWith('bench_requests_total{'));
  const sum = lines.reduce((s, l) => s + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
  // Each worker counted 0 + 1 + ... + 999 in its 1,000 series: the merge must sum them.
  if (lines.length !== SERIES || sum !== (n * SERIES * (SERIES - 1)) / 2) throw new Error(`${name}: ${lines.length} series, sum ${sum}`);
  console.log(JSON.stringify({ name, workers: n, series_per_worker: SERIES, median_ms: +ms[Math.floor(ROUNDS / 2)].toFixed(3), p90_ms: +ms[Math.floor(ROUNDS * 0.9)].toFixed(3), bytes: text.length }));
}

/** Forks `n` workers of `kind`, runs `fn` once all are ready, then stops them. */
async function withWorkers(kind, n, env, fn) {
  const workers = [];
  try {
    await Promise.all(
      Array.from({ length: n }, () => {
        const w = cluster.fork({ BENCH_KIND: kind, ...env });
        workers.push(w);
        return new Promise((resolve, reject) => {
          w.once('message', resolve);
          w.once('exit', (code) => reject(new Error(`a ${kind} worker exited (${code})`)));
        });
      }),
    );
    await fn();
  } finally {
    await Promise.all(workers.map((w) => (w.isDead() ? undefined : new Promise((r) => (w.once('exit', r), w.process.kill('SIGKILL'))))));
  }
}

async function primary() {
  const { renderMultiprocessDir } = require('..');
  const { AggregatorRegistry } = require('prom-client');
  const aggregator = new AggregatorRegistry();
  console.log(JSON.stringify({ cpus: os.cpus().length, loadavg: os.loadavg().map((l) => +l.toFixed(2)) }));
  for (const n of [2, 4]) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tars-bench-multiproc-'));
    try {
      await withWorkers('tars', n, { BENCH_DIR: dir }, () =>
        measure(`tars: await renderMultiprocessDir(), ${n} workers x 1,000 series`, n, () => renderMultiprocessDir(dir)),
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    await withWorkers('prom-client', n, {}, () =>
      measure(`prom-client: await AggregatorRegistry.clusterMetrics(), ${n} workers x 1,000 series`, n, () => aggregator.clusterMetrics()),
    );
  }
  console.log(JSON.stringify({ loadavg_after: os.loadavg().map((l) => +l.toFixed(2)) }));
}

if (cluster.isWorker) worker();
else primary().catch((e) => {
  console.error(e);
  process.exit(1);
});
