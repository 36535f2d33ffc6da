'use strict';
// The multi-process mode across real processes over real HTTP on 127.0.0.1: a node:cluster
// primary with no telemetry code and its Express workers, and independent processes (as
// PM2 starts them) sharing one directory. Every scrape, whichever worker answers it, shows
// every worker's requests, and a killed worker's requests stay counted.
const test = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');
const { renderMultiprocessDir } = require('..');
const h = require('./helpers.js');

// Outside test/, so that the test runner does not take the fixtures for tests.
const fixtures = path.join(__dirname, '..', 'test-fixtures');
const children = new Set();
/** Every process started here and not seen to exit: children and cluster workers. */
const pids = new Set();
const dirs = [];

/** Starts a fixture; resolves its { child, events } (the JSON lines it prints, as they come). */
function start(script, env) {
  const child = spawn(process.execPath, [path.join(fixtures, script)], {
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  children.add(child);
  pids.add(child.pid);
  const events = [];
  const waiters = new Set();
  readline.createInterface({ input: child.stdout }).on('line', (line) => {
    let e;
    try {
      e = JSON.parse(line);
    } catch {
      return;
    }
    if (e.event === 'listening') pids.add(e.pid);
    if (e.event === 'exit') pids.delete(e.pid);
    events.push(e);
    for (const w of waiters) w();
  });
  child.once('exit', () => {
    children.delete(child);
    pids.delete(child.pid);
    for (const w of waiters) w();
  });
  /** Resolves the events once `pred(events)` holds, within `ms`. */
  const until = (pred, ms, what) =>
    new Promise((resolve, reject) => {
      const check = () => {
        const v = pred(events);
        if (v) {
          waiters.delete(check);
          clearTimeout(timer);
          resolve(v);
        } else if (child.exitCode !== null || child.signalCode !== null) {
          waiters.delete(check);
          clearTimeout(timer);
          reject(new Error(`${script} exited while waiting for ${what}`));
        }
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`timed out after ${ms} ms waiting for ${what}`));
      }, ms);
      waiters.add(check);
      check();
    });
  return { child, events, until };
}

function tmpDir() {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'tars-multiproc-'));
  dirs.push(d);
  return d;
}

test.after(async () => {
  for (const c of children) {
    c.stdin.end();
    c.kill('SIGTERM');
  }
  await new Promise((r) => setTimeout(r, 300));
  // Whatever is left, the workers included, by pid.
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** Sends `n` GET /work to `port`, `concurrency` at a time; every one must answer 200. */
async function load(port, n, concurrency = 8) {
  let next = 0;
  const one = async () => {
    while (next < n) {
      next++;
      const r = await h.request(port, '/work');
      assert.equal(r.status, 200);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, one));
}

const WORK = { method: 'GET', endpoint: '/work', status: '200' };

async function scrape(port) {
  const r = await h.request(port, '/metrics');
  assert.equal(r.status, 200);
  return { worker: r.headers['x-worker-pid'], text: r.body, count: h.sample(r.body, 'tars_http_requests_total', WORK) };
}

/** Scrapes until one shows `n` requests of /work (a response ends just before its count). */
function settled(port, n) {
  return h.waitFor(async () => (await scrape(port)).count === n, 10000, `a scrape showing ${n} requests`);
}

const workerFiles = (dir) => fs.readdirSync(dir).filter((f) => f.startsWith('worker-'));

test('node:cluster: every worker serves the exact total, through a worker killed and replaced', async (t) => {
  const dir = tmpDir();
  const primary = start('cluster-primary.js', { TARS_FIXTURE: 'cluster-primary', TARS_FIXTURE_WORKERS: '2', TARS_TELEMETRY_MULTIPROC_DIR: dir });
  const listening = (es) => es.filter((e) => e.event === 'listening');
  const [first] = await primary.until((es) => listening(es).length >= 2 && listening(es), 30000, 'two workers to listen');
  const { port } = first;
  assert.ok(listening(primary.events).every((e) => e.port === port), 'the workers share the port');

  await load(port, 400);
  await settled(port, 400);
  const answered = new Set();
  for (let i = 0; i < 20; i++) {
    const s = await scrape(port);
    answered.add(s.worker);
    assert.equal(s.count, 400, `scrape ${i} (worker ${s.worker})`);
    if (i === 0 && h.needTool(t, h.which('promtool'), 'promtool')) {
      const r = h.promtoolCheck(s.text);
      assert.equal(r.status, 0, r.output);
    }
  }
  assert.equal(answered.size, 2, 'both workers answered scrapes');
  assert.equal(h.sample((await scrape(port)).text, 'tars_http_requests_total', { method: 'GET', endpoint: '/metrics', status: '200' }), undefined);
  assert.equal(workerFiles(dir).length, 2);

  // A worker killed: the primary forks a replacement, and its requests stay counted.
  const victim = Number([...answered][0]);
  process.kill(victim, 'SIGKILL');
  await primary.until((es) => es.some((e) => e.event === 'exit' && e.pid === victim), 10000, 'the primary to see the worker die');
  await primary.until((es) => listening(es).length >= 3, 30000, 'the replacement to listen');
  for (let i = 0; i < 10; i++) assert.equal((await scrape(port)).count, 400, `scrape ${i} after the kill`);
  await load(port, 100);
  await settled(port, 500);
  const after = new Set();
  for (let i = 0; i < 10; i++) {
    const s = await scrape(port);
    after.add(s.worker);
    assert.equal(s.count, 500, `scrape ${i} after the replacement served requests`);
  }
  assert.ok(!after.has(String(victim)));
  assert.equal(after.size, 2, 'both live workers answered scrapes');
  // Live workers + the archive of the dead one's counts.
  assert.equal(workerFiles(dir).length, 2);
  assert.deepEqual(fs.readdirSync(dir).filter((f) => !f.startsWith('worker-')), ['archive.tars']);
});

test('independent processes (PM2 style) on ports of their own: a scrape of either shows the sum', async () => {
  const dir = tmpDir();
  const env = { TARS_FIXTURE: 'server', PORT: '0', TARS_TELEMETRY_MULTIPROC_DIR: dir };
  const a = start('server.js', env);
  const b = start('server.js', env);
  const [pa, pb] = await Promise.all(
    [a, b].map((p) => p.until((es) => es.find((e) => e.event === 'listening'), 30000, 'the server to listen')),
  );
  assert.notEqual(pa.port, pb.port);
  await load(pa.port, 150);
  await load(pb.port, 250);
  await settled(pa.port, 400);
  for (const port of [pa.port, pb.port, pa.port, pb.port]) {
    const s = await scrape(port);
    assert.equal(s.count, 400, `scrape of port ${port}`);
  }
  // A process with no telemetry of its own reads the same.
  assert.equal(h.sample(await renderMultiprocessDir(dir), 'tars_http_requests_total', WORK), 400);
  const om = await renderMultiprocessDir(dir, { openMetrics: true });
  assert.ok(om.endsWith('# EOF\n'));
  assert.equal(workerFiles(dir).length, 2);
});

test('hostile files placed in the directory: every scrape answers in time with the exact total, and says what it skipped', async () => {
  const dir = tmpDir();
  const env = { TARS_FIXTURE: 'server', PORT: '0', TARS_TELEMETRY_MULTIPROC_DIR: dir };
  const a = start('server.js', env);
  const b = start('server.js', env);
  const [pa, pb] = await Promise.all(
    [a, b].map((p) => p.until((es) => es.find((e) => e.event === 'listening'), 30000, 'the server to listen')),
  );
  await load(pa.port, 50);
  await load(pb.port, 70);
  await settled(pa.port, 120);
  // A FIFO (opening it would block every render), a symbolic link to a copy of a live
  // worker's file (following it would double the counts), and a dead "worker" of garbage.
  const fifo = path.join(dir, 'worker-900001-1.tars');
  const mk = require('node:child_process').spawnSync('mkfifo', [fifo]);
  assert.equal(mk.status, 0, String(mk.stderr));
  const elsewhere = path.join(tmpDir(), 'copy.tars');
  fs.copyFileSync(path.join(dir, workerFiles(dir).find((f) => f !== path.basename(fifo))), elsewhere);
  const link = path.join(dir, 'worker-900002-1.tars');
  fs.symlinkSync(elsewhere, link);
  const garbage = path.join(dir, 'worker-900003-1.tars');
  fs.writeFileSync(garbage, Buffer.alloc(8192, 0xff));

  await load(pb.port, 30);
  await settled(pa.port, 150);
  let last;
  for (const port of [pa.port, pb.port, pa.port, pb.port]) {
    last = await scrape(port);
    assert.equal(last.count, 150, `scrape of port ${port}`);
  }
  const losses = (event, reason) => h.sample(last.text, 'tars_telemetry_multiprocess_losses_total', { event, reason });
  assert.equal(losses('dead_file_set_aside', 'not_ours'), 1);
  assert.ok(losses('file_skipped', 'not_a_regular_file') >= 2, last.text);
  assert.ok(fs.lstatSync(link).isSymbolicLink() && fs.statSync(fifo, { throwIfNoEntry: false }), 'left alone');
  assert.ok(!fs.existsSync(garbage), 'set aside');

  const { renderMultiprocessDirReport } = require('..');
  const { text, warnings } = await renderMultiprocessDirReport(dir);
  assert.equal(h.sample(text, 'tars_http_requests_total', WORK), 150);
  assert.deepEqual(warnings.map((w) => [path.basename(w.path), w.event, w.reason]).sort(), [
    ['worker-900001-1.tars', 'file_skipped', 'not_a_regular_file'],
    ['worker-900002-1.tars', 'file_skipped', 'not_a_regular_file'],
  ]);
  assert.match(warnings[0].message, /not a regular file/);
});

/** Prometheus 3 (scripts/build-otel-tools.sh builds it), or a recorded skip. */
function prometheus3(t) {
  const root = path.join(__dirname, '..', '..', '..');
  const out = require('node:child_process').spawnSync(path.join(root, 'scripts/build-otel-tools.sh'), ['--print'], { encoding: 'utf8' });
  const line = (out.stdout || '').split('\n').find((l) => l.startsWith('PROMETHEUS3='));
  const bin = process.env.TARS_PROMETHEUS3 || (line && line.slice('PROMETHEUS3='.length));
  const found = bin && fs.existsSync(bin) ? bin : null;
  return h.needTool(t, found, 'Prometheus 3 (scripts/build-otel-tools.sh builds it)') ? found : null;
}

/** A free TCP port on 127.0.0.1. */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = require('node:net').createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function promQuery(port, q) {
  const r = await h.request(port, `/api/v1/query?query=${encodeURIComponent(q)}`).catch(() => null);
  if (!r || r.status !== 200) return undefined;
  const v = JSON.parse(r.body).data.result[0];
  return v === undefined ? undefined : Number(v.value[1]);
}

test('node:cluster: the workers merge native histograms that a real Prometheus 3 scrapes', async (t) => {
  const bin = prometheus3(t);
  if (!bin) return;
  const dir = tmpDir();
  const primary = start('cluster-primary.js', { TARS_FIXTURE: 'cluster-primary', TARS_FIXTURE_WORKERS: '2', TARS_TELEMETRY_MULTIPROC_DIR: dir });
  const listening = (es) => es.filter((e) => e.event === 'listening');
  const [first] = await primary.until((es) => listening(es).length >= 2 && listening(es), 30000, 'two workers to listen');
  const { port } = first;
  // 1..300 ms once each, from 8 connections at a time: both workers record.
  const values = Array.from({ length: 300 }, (_, i) => (i + 1) / 1000);
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < values.length) {
        const v = values[next++];
        assert.equal((await h.request(port, `/job?ms=${v * 1000}`)).status, 200);
      }
    }),
  );
  const promPort = await freePort();
  const cfg = path.join(dir, '..', `prometheus-${process.pid}.yml`);
  fs.writeFileSync(
    cfg,
    `global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: ui\n    scrape_native_histograms: true\n    always_scrape_classic_histograms: true\n    static_configs:\n      - targets: ['127.0.0.1:${port}']\n`,
  );
  const data = fs.mkdtempSync(path.join(os.tmpdir(), 'tars-prom3-'));
  dirs.push(data);
  const prom = spawn(bin, [`--config.file=${cfg}`, `--storage.tsdb.path=${data}`, `--web.listen-address=127.0.0.1:${promPort}`], { stdio: 'ignore' });
  t.after(() => {
    prom.kill('SIGKILL');
    fs.rmSync(cfg, { force: true });
  });
  await h.waitFor(async () => (await promQuery(promPort, 'histogram_count(job_seconds)')) === values.length, 60000, 'job_seconds scraped natively');
  const bound = 2 ** (1 / 8) - 1;
  for (const q of [0.5, 0.9, 0.99]) {
    const exact = values[Math.ceil(q * values.length) - 1];
    const est = await promQuery(promPort, `histogram_quantile(${q}, job_seconds)`);
    assert.ok(Math.abs(est - exact) / exact <= bound, `q${q}: ${est} vs ${exact}`);
  }
  // The catalog's HTTP latency: native and classic from the same scrapes.
  const native = await promQuery(promPort, 'sum(histogram_count(tars_http_request_duration_seconds))');
  const classic = await promQuery(promPort, 'sum(tars_http_request_duration_seconds_count)');
  assert.ok(native >= values.length, `native count ${native}`);
  assert.equal(native, classic);
  // A process with no telemetry of its own (a sidecar) renders the directory alike.
  const { renderMultiprocessDirBuffer } = require('..');
  const body = await renderMultiprocessDirBuffer(dir, { format: 'protobuf' });
  assert.ok(body.includes(Buffer.from('job_seconds')));
  assert.match(await renderMultiprocessDir(dir), new RegExp(`job_seconds_count ${values.length}\\n`));
  await assert.rejects(async () => renderMultiprocessDirBuffer(dir, { format: 'yaml' }), { code: 'ERR_TARS_INVALID_FORMAT' });
});
