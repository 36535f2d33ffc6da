'use strict';
// Every domain of the core from Node, as from Python: embeddings, the vector store, Redis,
// caches, the database, document ingestion and WebSockets, counted in the exposition and
// traced under the current request in the OTLP receiver.
const test = require('node:test');
const assert = require('node:assert/strict');
const { Telemetry, openStages, CacheCall, DocumentJob } = require('..');
const h = require('./helpers.js');

test('every domain records its families', async () => {
  const tel = new Telemetry({ tracing: false });
  await tel.embeddings.generate(async () => tel.embeddings.addGenerated(8));
  tel.embeddings.cacheLookup(true);
  const lookup = tel.embeddings.startCacheLookup();
  assert.ok(lookup instanceof CacheCall);
  lookup.miss();
  await tel.vectorStore.search(async () => {});
  tel.vectorStore.setDocuments(1200);
  const v = await tel.redis.command('GET', async (c) => c.lookup(false));
  assert.equal(v, false);
  await tel.redis.command('SET', async () => 'OK');
  await assert.rejects(tel.redis.command('DEL', async () => {
    throw new Error('down');
  }));
  tel.redis.lookup(true);
  tel.redis.setMemory(512 * 1024 * 1024, 1024 * 1024 * 1024);
  tel.cache.record('embedding', 'set', 'ok');
  await tel.db.query('select', async () => {}, { summary: 'SELECT documents' });
  const insert = tel.db.start('insert');
  insert.succeed();
  tel.db.setPool(3, 20);
  await tel.documents.ingest(async (job) => {
    assert.ok(job instanceof DocumentJob);
    job.setChunks(12);
  });
  await assert.rejects(tel.documents.ingest(async () => {
    throw new TypeError('bad pdf');
  }));
  tel.documents.setQueueLength(4);
  const ws = tel.websocket.connectionOpened();
  try {
    ws.inbound();
    ws.outbound();
    tel.websocket.message('inbound');
    assert.match(tel.metricsSync(), /tars_websocket_connections_active 1/);
  } finally {
    // What a `using` scope calls on leaving (Node 20 has no `using` syntax).
    ws[Symbol.dispose]();
    ws.close();
  }
  assert.equal(openStages(), 0, 'every stage ended');
  const t = tel.metricsSync();
  const s = (name, labels) => h.sample(t, name, labels);
  assert.equal(s('tars_embeddings_generated_total'), 8);
  assert.equal(s('tars_embedding_duration_seconds_count'), 1);
  assert.equal(s('tars_embedding_cache_hits_total'), 1);
  assert.equal(s('tars_embedding_cache_misses_total'), 1);
  assert.equal(s('tars_vector_search_total'), 1);
  assert.equal(s('tars_vector_store_documents'), 1200);
  assert.equal(s('tars_redis_cache_misses_total'), 1);
  assert.equal(s('tars_redis_cache_hits_total'), 1);
  assert.equal(s('tars_cache_operations_total', { cache: 'redis', operation: 'set', result: 'ok' }), 1);
  assert.equal(s('tars_cache_operations_total', { cache: 'redis', operation: 'delete', result: 'error' }), 1);
  assert.equal(s('tars_cache_operations_total', { cache: 'embedding', operation: 'set', result: 'ok' }), 1);
  assert.equal(s('tars_redis_memory_usage_bytes'), 512 * 1024 * 1024);
  assert.equal(s('tars_db_queries_total', { operation: 'select' }), 1);
  assert.equal(s('tars_db_queries_total', { operation: 'insert' }), 1);
  assert.equal(s('tars_db_connection_pool_active'), 3);
  assert.equal(s('tars_db_connection_pool_max'), 20);
  assert.equal(s('tars_documents_processed_total', { status: 'success' }), 1);
  assert.equal(s('tars_documents_processed_total', { status: 'error' }), 1);
  assert.equal(s('tars_document_chunks_sum'), 12);
  assert.equal(s('tars_document_queue_length'), 4);
  assert.equal(s('tars_websocket_messages_total', { direction: 'inbound' }), 2);
  assert.equal(s('tars_websocket_messages_total', { direction: 'outbound' }), 1);
  assert.equal(s('tars_websocket_connections_active'), 0, 'closed with its using scope');
});

test('labels are checked against the core\'s tables', () => {
  const tel = new Telemetry({ tracing: false });
  assert.throws(() => tel.db.start('drop table'), { code: 'ERR_TARS_INVALID_LABEL' });
  assert.throws(() => tel.cache.record('memcached', 'get', 'hit'), { code: 'ERR_TARS_INVALID_LABEL' });
  assert.throws(() => tel.websocket.message('sideways'), { code: 'ERR_TARS_INVALID_LABEL' });
  assert.throws(() => tel.redis.startCommand(42), { code: 'ERR_INVALID_ARG_TYPE' });
  const c = tel.redis.startCommand('GET');
  assert.throws(() => c.finish('maybe'), { code: 'ERR_TARS_INVALID_LABEL' });
  c.finish('hit');
  assert.equal(openStages(), 0);
});

test('domain stages are children of the current request in the OTLP receiver', async (t) => {
  if (!h.needTool(t, h.hasPython(), 'the .venv with opentelemetry-proto and grpcio')) return;
  const receiver = await h.startReceiver();
  const restoreEnv = h.exportTo(receiver);
  try {
    const tel = new Telemetry({ serviceName: 'tars-ui' });
    const req = tel.http.start('POST', '/api/ask');
    await req.run(async () => {
      await tel.embeddings.generate(async () => {});
      await tel.vectorStore.search(async () => {});
      await tel.redis.command('GET', async (c) => c.hit());
      await tel.db.query('select', async () => {}, { summary: 'SELECT documents' });
      await tel.documents.ingest(async (job) => job.setChunks(3));
    });
    req.setRoute('/api/ask');
    req.finish(200);
    await tel.shutdown();
    const spans = await h.waitFor(() => {
      const all = receiver.spans();
      return all.length >= 6 ? all : undefined;
    }, 30000, 'six spans in the receiver');
    const root = spans.find((s) => s.parent_span_id === '');
    assert.ok(root, JSON.stringify(spans.map((s) => s.name)));
    const children = spans.filter((s) => s !== root);
    assert.equal(children.length, 5, JSON.stringify(spans.map((s) => s.name)));
    for (const c of children) {
      assert.equal(c.trace_id, root.trace_id, c.name);
      assert.equal(c.parent_span_id, root.span_id, `${c.name} is a child of the request`);
    }
    const names = children.map((s) => s.name);
    assert.ok(names.includes('embeddings'), names.join(', '));
    assert.ok(names.includes('GET'), names.join(', '));
  } finally {
    restoreEnv();
    await receiver.stop();
  }
});
