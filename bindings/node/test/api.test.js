'use strict';
// The public API without a framework: construction, custom families, domain helpers,
// errors with codes, and hostile input that must give exceptions or counts, not crashes.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Telemetry, openStages, renderMultiprocessDir, renderMultiprocessDirReport, MULTIPROC_ALLOW_SHARED_ENV } = require('..');
const { sample } = require('./helpers.js');

test('construction reads options', () => {
  const t = new Telemetry({ serviceName: 'tars-ui', tracing: false });
  assert.equal(t.tracingEnabled, false);
  assert.equal(t.multiprocDir, undefined);
  assert.throws(() => new Telemetry({ serviceName: 42 }), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => new Telemetry({ seriesBudget: -1 }), { name: 'RangeError' });
  assert.throws(() => new Telemetry({ multiprocDir: 7 }), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => new Telemetry('x'), { name: 'TypeError' });
});

test('the multi-process directory: from the option or the variable; one that cannot be used is refused clearly', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tars-multiproc-'));
  try {
    process.env.TARS_TELEMETRY_MULTIPROC_DIR = path.join(dir, 'svc');
    let a;
    try {
      a = new Telemetry({ tracing: false });
      // The option wins; an empty one keeps every series in this process.
      assert.equal(new Telemetry({ tracing: false, multiprocDir: '' }).multiprocDir, undefined);
    } finally {
      delete process.env.TARS_TELEMETRY_MULTIPROC_DIR;
    }
    assert.equal(a.multiprocDir, path.join(dir, 'svc'));
    const b = new Telemetry({ tracing: false, multiprocDir: path.join(dir, 'svc') });
    a.rag.start().succeed();
    b.rag.start().succeed();
    b.rag.start().fail('Timeout');
    // Two workers of one directory (here in one process): each renders both.
    for (const text of [await a.metrics(), b.metricsSync(), await renderMultiprocessDir(path.join(dir, 'svc'))]) {
      assert.equal(sample(text, 'tars_rag_queries_total', { status: 'success' }), 2);
      assert.equal(sample(text, 'tars_rag_queries_total', { status: 'error' }), 1);
    }
    assert.ok((await renderMultiprocessDir(path.join(dir, 'svc'), { openMetrics: true })).endsWith('# EOF\n'));

    // An archive this build cannot read, beside live workers: never misread, and no
    // reason to refuse a new worker: set aside, a fresh one begun, the loss counted.
    fs.writeFileSync(path.join(dir, 'svc', 'archive.tars'), Buffer.alloc(4096));
    const c = new Telemetry({ tracing: false, multiprocDir: path.join(dir, 'svc') });
    const { text, warnings } = await renderMultiprocessDirReport(path.join(dir, 'svc'));
    assert.deepEqual(warnings, []);
    assert.equal(sample(text, 'tars_rag_queries_total', { status: 'success' }), 2);
    assert.equal(sample(text, 'tars_telemetry_multiprocess_losses_total', { event: 'archive_replaced', reason: 'not_ours' }), 1);
    assert.equal(fs.readdirSync(path.join(dir, 'svc')).filter((f) => f.startsWith('archive.tars.broken-')).length, 1);
    void c;
    // A directory other users can write to: refused unless allowed.
    const shared = path.join(dir, 'shared');
    fs.mkdirSync(shared);
    fs.chmodSync(shared, 0o1777);
    assert.throws(() => new Telemetry({ tracing: false, multiprocDir: shared }), (e) => {
      assert.equal(e.code, 'ERR_TARS_MULTIPROCESS_UNAVAILABLE');
      assert.match(e.message, /can be written by other users \(mode 1777/);
      assert.ok(e.message.includes(MULTIPROC_ALLOW_SHARED_ENV));
      return true;
    });
    process.env[MULTIPROC_ALLOW_SHARED_ENV] = '1';
    try {
      assert.equal(new Telemetry({ tracing: false, multiprocDir: shared }).multiprocDir, shared);
    } finally {
      delete process.env[MULTIPROC_ALLOW_SHARED_ENV];
    }
    // A directory that cannot be created.
    fs.writeFileSync(path.join(dir, 'file'), '');
    assert.throws(() => new Telemetry({ multiprocDir: path.join(dir, 'file') }), (e) => {
      assert.equal(e.code, 'ERR_TARS_MULTIPROCESS_UNAVAILABLE');
      assert.match(e.message, /creating the multi-process directory: .*"[^"]*file"/);
      return true;
    });
    await assert.rejects(renderMultiprocessDir(path.join(dir, 'missing')), { code: 'ERR_TARS_MULTIPROCESS_UNAVAILABLE' });
    await assert.rejects(async () => renderMultiprocessDir(42), { code: 'ERR_INVALID_ARG_TYPE' });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('custom families like prom-client, exposed with their values', async () => {
  const t = new Telemetry({ tracing: false });
  const c = new t.Counter({ name: 'ui_clicks_total', help: 'Clicks.', labelNames: ['button'] });
  c.inc({ button: 'send' });
  c.inc({ button: 'send' }, 2.5);
  c.labels('stop').inc();
  const child = c.labels('stop');
  child.inc(3);
  assert.equal(c.get({ button: 'send' }), 3.5);
  assert.equal(c.get({ button: 'stop' }), 4);
  const g = new t.Gauge({ name: 'ui_sessions', help: 'Open sessions.' });
  g.set(5);
  g.inc();
  g.dec(2);
  assert.equal(g.get(), 4);
  const h = new t.Histogram({ name: 'ui_render_seconds', help: 'Render time.', labelNames: ['page'], buckets: [0.01, 0.1, 1] });
  h.observe({ page: '/chat' }, 0.05);
  h.labels({ page: '/chat' }).observe(0.5);
  const end = h.startTimer({ page: '/docs' });
  assert.ok(end() >= 0);
  const text = await t.metrics();
  assert.equal(sample(text, 'ui_clicks_total', { button: 'send' }), 3.5);
  assert.equal(sample(text, 'ui_sessions'), 4);
  assert.equal(sample(text, 'ui_render_seconds_bucket', { page: '/chat', le: '0.1' }), 1);
  assert.equal(sample(text, 'ui_render_seconds_count', { page: '/chat' }), 2);
  assert.equal(text, t.metricsSync());
  const om = await t.metrics({ openMetrics: true });
  assert.ok(om.trimEnd().endsWith('# EOF'));
});

test('domain helpers: a resolved promise succeeds, a rejected one fails with the error name', async () => {
  const t = new Telemetry({ tracing: false });
  const before = openStages();
  const r = await t.rag.query(async (q) => {
    await q.phase('retrieval', async () => new Promise((res) => setTimeout(res, 5)));
    await t.rag.phase('generation', async () => {
      const out = [];
      for await (const tok of t.llm.stream('llama3', (async function* () { yield 'a'; yield 'b'; yield 'c'; })())) out.push(tok);
      return out;
    });
    q.setResult({ sources: 4, relevance: 0.8 });
    return 'answer';
  });
  assert.equal(r, 'answer');
  class RetrievalTimeout extends Error {
    constructor() {
      super('slow');
      this.name = 'RetrievalTimeout';
    }
  }
  await assert.rejects(t.rag.query(async () => { throw new RetrievalTimeout(); }), RetrievalTimeout);
  await t.llm.call('llama3', async (c) => c.setUsage({ inputTokens: 10, outputTokens: 7 }));
  // A consumer that stops reading a stream early abandons the call.
  for await (const _ of t.llm.stream('llama3', ['x', 'y', 'z'])) break;
  const text = await t.metrics();
  assert.equal(sample(text, 'tars_rag_queries_total', { status: 'success' }), 1);
  assert.equal(sample(text, 'tars_rag_queries_total', { status: 'error' }), 1);
  assert.equal(sample(text, 'tars_rag_phase_duration_seconds_count', { phase: 'retrieval' }), 1);
  assert.equal(sample(text, 'tars_rag_sources_retrieved_count'), 1);
  assert.equal(sample(text, 'tars_llm_tokens_generated_total', { model: 'llama3' }), 3 + 7 + 1);
  assert.equal(sample(text, 'tars_llm_input_tokens_total', { model: 'llama3' }), 10);
  assert.equal(sample(text, 'tars_telemetry_stages_abandoned_total', { stage: 'llm' }), 1);
  assert.equal(openStages(), before, 'every stage ended');
});

test('explicit scopes with Symbol.dispose: a scope left without an end is abandoned', async () => {
  const t = new Telemetry({ tracing: false });
  const q = t.rag.start();
  {
    const phase = t.rag.startPhase('rerank', q);
    phase[Symbol.dispose]();
  }
  q[Symbol.dispose]();
  assert.equal(q.ended, true);
  const ok = t.rag.start();
  ok.succeed();
  ok[Symbol.dispose]();
  const text = await t.metrics();
  assert.equal(sample(text, 'tars_rag_phase_duration_seconds_count', { phase: 'rerank' }), 1);
  assert.equal(sample(text, 'tars_telemetry_stages_abandoned_total', { stage: 'rag_query' }), 1);
  assert.equal(sample(text, 'tars_rag_queries_total', { status: 'success' }), 1);
  // Ending twice is a no-op, never another stage's end.
  ok.succeed();
  ok.fail('x');
});

test('errors are exceptions with codes', async () => {
  const t = new Telemetry({ tracing: false });
  assert.throws(() => new t.Counter({ name: '9bad', help: '' }), { code: 'ERR_TARS_INVALID_NAME' });
  assert.throws(() => new t.Histogram({ name: 'h_bad', help: '', buckets: [2, 1] }), { code: 'ERR_TARS_INVALID_BUCKETS' });
  new t.Counter({ name: 'dup_total', help: '', labelNames: ['a'] });
  assert.throws(() => new t.Gauge({ name: 'dup_total', help: '' }), { code: 'ERR_TARS_CONFLICT' });
  assert.throws(() => t.rag.startPhase('nope'), { code: 'ERR_TARS_INVALID_PHASE' });
  assert.throws(() => t.recordError('nowhere', new Error('x')), { code: 'ERR_TARS_INVALID_COMPONENT' });
  const a = await t.serve({ port: 0 });
  await assert.rejects(t.serve({ port: a.port }), (e) => e.code === 'EADDRINUSE' && /in use/i.test(e.message));
  const scrape = await fetch(`http://127.0.0.1:${a.port}/metrics`);
  assert.equal(scrape.status, 200);
  await a.close();
  await a.close();
  await t.shutdown();
});

test('hostile input gives exceptions or counts, never a crash', async () => {
  const t = new Telemetry({ tracing: false, seriesBudget: 50 });
  const c = new t.Counter({ name: 'hostile_total', help: 'x', labelNames: ['v'] });
  // Wrong types.
  assert.throws(() => c.inc({ v: 'a' }, 'one'), { name: 'TypeError' });
  assert.throws(() => c.inc({}), { code: 'ERR_TARS_LABEL_COUNT' });
  assert.throws(() => c.inc(null), { code: 'ERR_TARS_LABEL_COUNT' });
  assert.throws(() => new t.Counter(null), { name: 'TypeError' });
  assert.throws(() => new t.Counter({ name: 'x_total', help: 'x', labelNames: [1] }), { name: 'TypeError' });
  assert.throws(() => t.llm.start({}), { name: 'TypeError' });
  // NaN, infinities and negative counter increments are dropped and counted.
  c.inc({ v: 'a' }, NaN);
  c.inc({ v: 'a' }, -1);
  c.inc({ v: 'a' }, Infinity);
  const h = new t.Histogram({ name: 'hostile_seconds', help: 'x' });
  h.observe(NaN);
  assert.equal(c.get({ v: 'a' }), 0);
  // Huge strings: a 1 MB label value is a value like any other; a huge name is refused.
  c.inc({ v: 'x'.repeat(1 << 20) });
  assert.throws(() => new t.Counter({ name: 'n'.repeat(1 << 20) + '\u0000', help: '' }), { code: 'ERR_TARS_INVALID_NAME' });
  // Unbounded label values fold into the overflow series past the budget.
  for (let i = 0; i < 500; i++) c.inc({ v: `user-${i}` });
  await assert.doesNotReject(t.llm.call('m'.repeat(100000), async () => {}));
  for (let i = 0; i < 200; i++) t.http.routeId(`/r/${i}`);
  const text = await t.metrics();
  assert.ok(sample(text, 'tars_telemetry_invalid_values_total', { family: 'hostile_total' }) >= 3);
  assert.ok(sample(text, 'tars_telemetry_series_overflow_total', { family: 'hostile_total' }) > 0);
  assert.ok(text.split('\n').filter((l) => l.startsWith('hostile_total{')).length <= 51);
  // Raw hot calls with bad ids or types.
  const { hot } = require('..')._internal;
  assert.throws(() => hot.inc(2 ** 31), { name: 'RangeError', code: 'ERR_TARS_HANDLE' });
  assert.throws(() => hot.inc('x'), { name: 'TypeError' });
  assert.throws(() => hot.observe(), { name: 'TypeError' });
  assert.throws(() => hot.set(0), { name: 'TypeError' });
  // Ended or unknown stages.
  const { native } = require('..')._internal;
  assert.throws(() => native.stageEnd(12345, undefined), /ERR_TARS_STAGE_ENDED/);
  assert.throws(() => native.httpFinish(0, 200), /ERR_TARS_STAGE_ENDED/);
});

test('the core\'s tables are read from the native module: content negotiation, default buckets', () => {
  const { DEFAULT_BUCKETS, PROMETHEUS_CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE } = require('..');
  // Negotiated by quality, as the core's server does: OpenMetrics listed, but preferred less.
  assert.equal(Telemetry.contentType('application/openmetrics-text;version=1.0.0;q=0.1,text/plain;q=0.9'), PROMETHEUS_CONTENT_TYPE);
  assert.equal(Telemetry.contentType('application/openmetrics-text;version=1.0.0,text/plain;q=0.5'), OPENMETRICS_CONTENT_TYPE);
  // An OpenMetrics version this library does not write is not chosen.
  assert.equal(Telemetry.contentType('application/openmetrics-text;version=2.0.0'), PROMETHEUS_CONTENT_TYPE);
  assert.equal(Telemetry.contentType(undefined), PROMETHEUS_CONTENT_TYPE);
  assert.deepEqual([...DEFAULT_BUCKETS], [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]);
  const tel = new Telemetry({ tracing: false });
  new tel.Histogram({ name: 'job_seconds', help: 'Jobs.' }).observe(0.3);
  const text = tel.metricsSync();
  for (const b of DEFAULT_BUCKETS) {
    const le = Number.isInteger(b) ? b.toFixed(1) : String(b);
    assert.ok(text.includes(`job_seconds_bucket{le="${le}"}`), `${le}:\n${text}`);
  }
  // Every method and phase the core knows is accepted; others are refused or fold into _OTHER.
  for (const phase of ['retrieval', 'rerank', 'generation']) tel.rag.startPhase(phase).succeed();
  assert.throws(() => tel.rag.startPhase('nope'), { code: 'ERR_TARS_INVALID_PHASE' });
  tel.http.start('PATCH', '/x').finish(204);
  tel.http.start('BREW', '/x').finish(418);
  const after = tel.metricsSync();
  assert.match(after, /tars_http_requests_total\{method="PATCH",endpoint="__unmatched__",status="204"\} 1/);
  assert.match(after, /tars_http_requests_total\{method="_OTHER",endpoint="__unmatched__",status="418"\} 1/);
});

test('the framework adapters use the package\'s public API only', () => {
  const fs = require('node:fs');
  for (const f of ['express.js', 'fastify.js', 'lib/beacon.js']) {
    const src = fs.readFileSync(path.join(__dirname, '..', f), 'utf8');
    assert.ok(!src.includes('_internal'), `${f} reaches into _internal`);
  }
  const tel = new Telemetry({ tracing: false });
  const adapter = tel.http.adapter({ exclude: ['/internal'] });
  assert.equal(adapter.start('GET', '/internal/x'), 0, 'excluded: not recorded');
  const id = adapter.start('GET', '/items/7');
  assert.ok(id > 0);
  adapter.end(id, '/items/:id', 200);
  const gone = adapter.start('GET', '/slow');
  adapter.end(gone, undefined, 200, true);
  const text = tel.metricsSync();
  assert.match(text, /tars_http_requests_total\{method="GET",endpoint="\/items\/:id",status="200"\} 1/);
  assert.match(text, /tars_http_requests_total\{method="GET",endpoint="__unmatched__",status="499"\} 1/);
  assert.equal(tel.webVitals.beacon('{"name":"LCP","value":1200,"route":"/"}').status, 204);
  assert.equal(tel.webVitals.beacon('nope').status, 400);
});

test('native histograms: the option, the formats by name, protobuf negotiated by Accept', async () => {
  const { Telemetry, FORMATS, PROTOBUF_CONTENT_TYPE } = require('..');
  const tel = new Telemetry({ serviceName: 'native-test', tracing: false });
  const nativeOnly = new tel.Histogram({ name: 'native_only_seconds', help: 'Native only.', native: true });
  const both = new tel.Histogram({ name: 'both_seconds', help: 'Both.', buckets: [0.1, 1], native: 2 });
  nativeOnly.observe(0.25);
  both.observe(0.25);
  const text = await tel.metrics();
  assert.match(text, /native_only_seconds_bucket\{le="\+Inf"\} 1/);
  assert.doesNotMatch(text, /native_only_seconds_bucket\{le="0\.1"\}/);
  assert.match(text, /both_seconds_bucket\{le="1\.0"\} 1/);
  assert.throws(() => new tel.Histogram({ name: 'bad_seconds', help: '', native: 9 }), /schema/);
  assert.throws(() => new tel.Histogram({ name: 'bad2_seconds', help: '', native: 'yes' }), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => new tel.Counter({ name: 'c', help: '', native: true }), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.deepEqual([...FORMATS], ['prometheus', 'openmetrics', 'protobuf']);
  const accept = `${PROTOBUF_CONTENT_TYPE};q=0.6,text/plain;version=0.0.4;q=0.3`;
  assert.equal(Telemetry.formatFor(accept), 'protobuf');
  assert.equal(Telemetry.contentType(accept), PROTOBUF_CONTENT_TYPE);
  assert.equal(Telemetry.formatFor('text/plain'), 'prometheus');
  const body = await tel.metricsBuffer({ format: 'protobuf' });
  assert.ok(body.includes(Buffer.from('native_only_seconds')));
  assert.ok(!body.includes(Buffer.from('# HELP')), 'binary, not text');
  await assert.rejects(async () => tel.metrics({ format: 'protobuf' }), { code: 'ERR_TARS_INVALID_FORMAT' });
  assert.throws(() => tel.metricsBuffer({ format: 'xml' }), { code: 'ERR_TARS_INVALID_FORMAT' });
  await tel.shutdown();
});
