'use strict';
// Shared test helpers: real tools from the repository's setup (promtool, the .venv's
// prometheus_client, scripts/otlp_receiver.py), HTTP on 127.0.0.1, bounded waits.
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');

const repo = path.resolve(__dirname, '..', '..', '..');
const python = path.join(repo, '.venv', 'bin', 'python');

function which(cmd) {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

/** Skips the test when a tool is missing, except in CI, where that fails it. */
function needTool(t, present, what) {
  if (present) return true;
  const msg = `${what} is missing (scripts/install-test-deps.sh installs it)`;
  if (process.env.CI) throw new Error(`${msg}; in CI a missing tool is a failure`);
  t.skip(msg);
  return false;
}

function hasPython() {
  return fs.existsSync(python) && spawnSync(python, ['-c', 'import prometheus_client, grpc, opentelemetry.proto']).status === 0;
}

/** Parses an exposition with prometheus_client's parser (text or OpenMetrics). */
function parseWithPrometheusClient(text, format) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tars-node-'));
  const file = path.join(dir, 'exposition.txt');
  fs.writeFileSync(file, text);
  const r = spawnSync(python, [path.join(repo, 'scripts', 'check_exposition.py'), format, file], { encoding: 'utf8', timeout: 60000 });
  fs.rmSync(dir, { recursive: true, force: true });
  if (r.status !== 0) throw new Error(`prometheus_client (${format}) refused the exposition: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** Runs `promtool check metrics`; returns { status, output }. */
function promtoolCheck(text) {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 60000 });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

/** A request to 127.0.0.1; resolves { status, headers, body }. */
function request(port, pathName, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: pathName, method, headers, agent: false, timeout: 30000 }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

function listen(app) {
  return new Promise((resolve, reject) => {
    const server = http.createServer(app);
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

function close(server) {
  return new Promise((resolve) => {
    server.closeAllConnections?.();
    server.close(() => resolve());
  });
}

/** Starts scripts/otlp_receiver.py; resolves { http, grpc, spans(), stop() }. */
function startReceiver() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tars-otlp-'));
  const out = path.join(dir, 'spans.jsonl');
  const child = spawn(python, [path.join(repo, 'scripts', 'otlp_receiver.py'), '--out', out], { stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill();
      reject(new Error('the OTLP receiver did not start within 30 s'));
    }, 30000);
    child.once('exit', (code) => reject(new Error(`the OTLP receiver exited (${code})`)));
    readline.createInterface({ input: child.stdout }).once('line', (line) => {
      clearTimeout(timer);
      const addr = JSON.parse(line);
      resolve({
        http: addr.http,
        grpc: addr.grpc,
        spans() {
          return fs.existsSync(out)
            ? fs.readFileSync(out, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l))
            : [];
        },
        stop() {
          child.stdin.end();
          child.kill('SIGTERM');
          fs.rmSync(dir, { recursive: true, force: true });
        },
      });
    });
  });
}

/**
 * Points the OTLP exporter of telemetries made from now on at `receiver` (HTTP/protobuf,
 * every trace sampled, a short batch delay); the function returned puts the whole environment
 * back as it was, variables set meanwhile removed.
 */
function exportTo(receiver) {
  const vars = {
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://${receiver.http}`,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
    OTEL_TRACES_SAMPLER: 'always_on',
    OTEL_BSP_SCHEDULE_DELAY: '100',
  };
  const saved = { ...process.env };
  Object.assign(process.env, vars);
  return () => {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  };
}

/** Polls `fn` until it returns a truthy value, at most `ms`. */
async function waitFor(fn, ms = 20000, what = 'condition') {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The value of one sample in a Prometheus text exposition (undefined when absent). */
function sample(text, name, labels = {}) {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([^{\s]+)(\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = {};
    for (const kv of (m[3] || '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) got[kv[1]] = kv[2];
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[4]);
  }
  return undefined;
}

module.exports = { repo, python, which, needTool, hasPython, parseWithPrometheusClient, promtoolCheck, request, listen, close, startReceiver, exportTo, waitFor, sample };
