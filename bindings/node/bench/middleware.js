'use strict';
// Express middleware CPU per request: the server's own CPU time (process.cpuUsage) over
// N keep-alive requests, minus that of the same app with no middleware, for each variant.
// The client runs in this process, the server in a child process.
//
//   node bench/middleware.js [N]
const { fork } = require('node:child_process');
const http = require('node:http');
const path = require('node:path');

const N = Number(process.argv[2] || 20000);
const CONCURRENCY = 8;
const ALL = ['none', 'tars', 'tars-traced', 'express-prom-bundle', 'prom-client-manual', 'otel-sdk-node'];
// BENCH_VARIANTS=none,tars runs a subset ('none' is always run: the others are measured against it).
const VARIANTS = process.env.BENCH_VARIANTS ? ['none', ...process.env.BENCH_VARIANTS.split(',').filter((v) => v !== 'none' && ALL.includes(v))] : ALL;

function run(variant, otlp) {
  return new Promise((resolve, reject) => {
    const child = fork(path.join(__dirname, 'middleware-server.js'), [variant], {
      env: { ...process.env, BENCH_OTLP: otlp },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    child.once('error', reject);
    child.once('message', async ({ port }) => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
      const get = () =>
        new Promise((res, rej) => {
          http.get({ host: '127.0.0.1', port, path: `/api/items/${Math.floor(Math.random() * 100)}`, agent }, (r) => {
            r.resume();
            r.on('end', res);
          }).on('error', rej);
        });
      const drive = async (n) => {
        let left = n;
        await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
          while (left-- > 0) await get();
        }));
      };
      await drive(2000); // warm up
      child.send('start');
      await new Promise((r) => child.once('message', r));
      await drive(N);
      child.send('stop');
      child.once('message', ({ cpuUs }) => {
        agent.destroy();
        child.kill();
        resolve(cpuUs / N);
      });
    });
  });
}

function sink() {
  // An OTLP/HTTP endpoint that accepts and drops everything (the traced variants export).
  return new Promise((resolve) => {
    const s = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.setHeader('content-type', 'application/x-protobuf');
        res.end();
      });
    });
    s.listen(0, '127.0.0.1', () => resolve(s));
  });
}

(async () => {
  const s = await sink();
  const otlp = `http://127.0.0.1:${s.address().port}`;
  const per = {};
  for (const v of VARIANTS) per[v] = await run(v, otlp);
  for (const v of VARIANTS) {
    console.log(JSON.stringify({ variant: v, server_cpu_us_per_request: +per[v].toFixed(2), added_us: +(per[v] - per.none).toFixed(2) }));
  }
  s.close();
})();
