'use strict';
// tars-telemetry for Node.js: metrics and traces of LLM/RAG services, over the Rust core.
//
// The JavaScript here holds no telemetry logic: it keeps the current stage in
// AsyncLocalStorage, passes it to the core explicitly, and turns callbacks and promises
// into stage starts and ends. Ending a stage never depends on a finalizer.
const { AsyncLocalStorage } = require('node:async_hooks');
const native = require('./native.js');

const hot = native.hotCalls();
const storage = new AsyncLocalStorage();

// The core's tables, read from the native module, never retyped here.
// The core's HTTP server rules (excluded paths, the span path limit, abandon reasons) and
// request methods, by the index the native calls take (the last for any other method).
const httpRules = Object.freeze(native.httpRules());
const METHOD_INDEX = new Map(httpRules.methods.map((m, i) => [m, i]));
const OTHER_METHOD = httpRules.methods.length - 1;
const PHASES = Object.freeze(native.ragPhases());
const familyTables = native.familyTables();
const KIND = Object.fromEntries(familyTables.kinds.map((k, i) => [k, i]));
/** The variable naming the multi-process directory when the options do not. */
const { MULTIPROC_DIR_ENV, MULTIPROC_ALLOW_SHARED_ENV, PROMETHEUS_CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE, PROTOBUF_CONTENT_TYPE, NATIVE_DEFAULT_SCHEMA } = native;
/** The exposition formats the core renders, by name. */
const FORMATS = Object.freeze(native.formatNames());
const DEFAULT_BUCKETS = Object.freeze([...familyTables.defaultBuckets]);
const CACHE = native.cacheTables();
const DB_OPERATIONS = native.dbOperations();
const DIRECTIONS = native.websocketDirections();

/** The index of `value` in one of the core's label tables, or a coded RangeError. */
function labelIndex(table, value, what) {
  const i = table.indexOf(value);
  if (i < 0) {
    throw codedError(RangeError, 'ERR_TARS_INVALID_LABEL', `unknown ${what} ${JSON.stringify(String(value)).slice(0, 80)} (${table.join(', ')})`);
  }
  return i;
}
const DEFAULT_EXCLUDED_PATHS = Object.freeze([...httpRules.defaultExcludedPaths]);

/** Moves the `CODE: ` prefix of a core error's message into `error.code`. */
function coded(e) {
  if (e instanceof Error && typeof e.message === 'string') {
    const m = /^([A-Z][A-Z0-9_]+): /.exec(e.message);
    if (m) {
      e.code = m[1];
      e.message = e.message.slice(m[0].length);
    }
  }
  return e;
}

function call(fn, ...args) {
  try {
    return fn(...args);
  } catch (e) {
    throw coded(e);
  }
}

async function callAsync(fn, ...args) {
  try {
    return await fn(...args);
  } catch (e) {
    throw coded(e);
  }
}

function codedError(Ctor, code, message) {
  const e = new Ctor(message);
  e.code = code;
  return e;
}

function requireString(v, what) {
  if (typeof v !== 'string') throw codedError(TypeError, 'ERR_INVALID_ARG_TYPE', `${what} must be a string, got ${typeof v}`);
  return v;
}

function errorType(err) {
  if (typeof err === 'string') return err.slice(0, 64) || 'Error';
  if (err && typeof err === 'object' && typeof err.name === 'string' && err.name) return err.name.slice(0, 64);
  return 'Error';
}

/** The method's index in the core's `Method` enum. */
function methodIndex(method) {
  const i = METHOD_INDEX.get(method);
  return i === undefined ? OTHER_METHOD : i;
}

let otelApi;
/** The traceparent of @opentelemetry/api's active span, when that API is in use. */
function otelTraceparent() {
  if (otelApi === undefined) {
    try {
      otelApi = require('@opentelemetry/api');
    } catch {
      otelApi = null;
    }
  }
  if (!otelApi) return undefined;
  const span = otelApi.trace.getActiveSpan();
  if (!span) return undefined;
  const sc = span.spanContext();
  if (!otelApi.isSpanContextValid(sc)) return undefined;
  return `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 1) === 1 ? '01' : '00'}`;
}

/** (parent stage id, remote traceparent) for a stage starting now. */
function parentOf(explicit) {
  const p = explicit === undefined ? storage.getStore() : explicit;
  if (p instanceof Stage && !p.ended) return [p.id, undefined];
  if (typeof p === 'string') return [0, p];
  return [0, otelTraceparent()];
}

/** A stage of work (a request, a query, a phase, an LLM call) that has a span. */
class Stage {
  constructor(telemetry, id) {
    this.telemetry = telemetry;
    this.id = id;
    this.ended = false;
  }

  /** The W3C traceparent of this stage's span (undefined without tracing). */
  get traceparent() {
    if (this.ended) return undefined;
    try {
      return native.stageTraceparent(this.id) ?? undefined;
    } catch {
      return undefined; // ended through another path
    }
  }

  /** The span's ids, as OpenTelemetry's SpanContext has them (undefined without tracing). */
  spanContext() {
    const tp = this.traceparent;
    if (!tp) return undefined;
    const [, traceId, spanId, flags] = tp.split('-');
    return { traceId, spanId, traceFlags: parseInt(flags, 16), isRemote: false };
  }

  /** Marks an error on the span without ending the stage. */
  recordError(err) {
    if (!this.ended) call(native.stageRecordError, this.id, errorType(err));
  }

  /** Ends a stage that never finished (cancelled): counted as abandoned, no duration. */
  abandon(reason = 'cancelled') {
    if (this.ended) return;
    this.ended = true;
    call(native.stageAbandon, this.id, errorType(reason));
  }

  /** Ends the stage as a success; returns its duration in seconds. */
  succeed() {
    if (this.ended) return 0;
    this.ended = true;
    return call(native.stageEnd, this.id, undefined);
  }

  /** Ends the stage as a failure of the error's name (or the string given). */
  fail(err) {
    if (this.ended) return 0;
    this.ended = true;
    return call(native.stageEnd, this.id, errorType(err));
  }

  /** Runs `fn` with this stage current (the parent of stages started inside). */
  run(fn) {
    return storage.run(this, fn, this);
  }

  /** `using` scopes: a stage left without succeed()/fail() (an exception) is abandoned. */
  [Symbol.dispose]() {
    this.abandon('scope_exit');
  }
}

class RagQuery extends Stage {
  /** Sources retrieved and the best source's relevance (0..1). */
  setResult({ sources, relevance } = {}) {
    if (this.ended) return;
    call(
      native.ragSetResult,
      this.id,
      Number.isInteger(sources) && sources >= 0 ? Math.min(sources, 0xffffffff) : undefined,
      typeof relevance === 'number' ? relevance : undefined,
    );
  }

  /** Times one phase (retrieval, rerank, generation) of this query. */
  phase(name, fn) {
    return this.telemetry.rag.phase(name, fn, this);
  }
}

class Phase extends Stage {
  /** `using` scopes: a phase left records its duration. */
  [Symbol.dispose]() {
    this.succeed();
  }
}

class LlmCall extends Stage {
  /** The first token of a streamed response arrived. */
  firstToken() {
    if (!this.ended) call(native.llmProgress, this.id, true, undefined, undefined, undefined);
  }

  /** `n` more output tokens arrived. */
  addOutputTokens(n) {
    if (!this.ended && Number.isInteger(n) && n > 0) call(native.llmProgress, this.id, false, Math.min(n, 0xffffffff), undefined, undefined);
  }

  /**
   * Token counts known at once (a non-streamed response, or the final usage), by kind:
   * `inputTokens` every prompt token (the cache's included), `outputTokens` every
   * completion token (reasoning included), and their parts `cacheReadInputTokens`,
   * `cacheWriteInputTokens`, `reasoningOutputTokens`. A kind not given, or not a whole
   * non-negative number, keeps its count.
   */
  setUsage({ inputTokens, outputTokens, cacheReadInputTokens, cacheWriteInputTokens, reasoningOutputTokens } = {}) {
    if (this.ended) return;
    const n = (v) => (Number.isInteger(v) && v >= 0 ? v : undefined);
    call(
      native.llmSetUsage,
      this.id,
      n(inputTokens),
      n(outputTokens),
      n(cacheReadInputTokens),
      n(cacheWriteInputTokens),
      n(reasoningOutputTokens),
    );
  }
}

async function runStage(stage, fn) {
  let result;
  try {
    result = await storage.run(stage, fn, stage);
  } catch (e) {
    if (!stage.ended) stage.fail(e);
    throw e;
  }
  if (!stage.ended) stage.succeed();
  return result;
}

class Rag {
  constructor(t) {
    this._t = t;
  }

  /** Starts a query; end it with succeed()/fail() (or use query()). */
  start(parent) {
    const [p, tp] = parentOf(parent);
    return new RagQuery(this._t, call(native.ragStart, this._t._id, p, tp));
  }

  /** Runs `fn(query)` as one RAG query: resolves as a success, rejects as a failure. */
  query(fn, parent) {
    return runStage(this.start(parent), fn);
  }

  /** Starts a phase; end it with succeed() (or use phase(name, fn)). */
  startPhase(name, parent) {
    const i = PHASES.indexOf(name);
    if (i < 0) throw codedError(RangeError, 'ERR_TARS_INVALID_PHASE', `unknown RAG phase ${JSON.stringify(String(name)).slice(0, 80)} (${PHASES.join(', ')})`);
    const [p, tp] = parentOf(parent);
    return new Phase(this._t, call(native.ragPhaseStart, this._t._id, i, p, tp));
  }

  /** Runs `fn(phase)` as one phase of the current query. */
  phase(name, fn, parent) {
    return runStage(this.startPhase(name, parent), fn);
  }
}

/** A Redis command or an embedding-cache lookup: ends as a hit, a miss, or a result. */
class CacheCall extends Stage {
  /** Ends a read as a hit. */
  hit() {
    this.lookup(true);
  }

  /** Ends a read as a miss. */
  miss() {
    this.lookup(false);
  }

  /** Ends a read as a hit when `found`; returns `found`. */
  lookup(found) {
    if (this.ended) return Boolean(found);
    this.ended = true;
    return call(native.cacheFinishLookup, this.id, Boolean(found));
  }

  /** Ends the call with a result (`ok`, `error`, `hit`, `miss`). */
  finish(result = 'ok') {
    if (this.ended) return;
    const i = labelIndex(CACHE.results, result, 'cache result');
    this.ended = true;
    call(native.cacheFinish, this.id, i);
  }
}

/** One document's ingestion. */
class DocumentJob extends Stage {
  /** The chunks the document was split into (counted when it succeeds). */
  setChunks(n) {
    if (!this.ended) call(native.documentSetChunks, this.id, Number.isInteger(n) && n >= 0 ? Math.min(n, 0xffffffff) : 0);
  }
}

/** Embeddings: generation timed, counts, the embedding cache. */
class Embeddings {
  constructor(t) {
    this._t = t;
  }

  /** Starts timing one embedding call; end it with succeed()/fail(). */
  start(parent) {
    const [p, tp] = parentOf(parent);
    return new Stage(this._t, call(native.embeddingsStart, this._t._id, p, tp));
  }

  /** Runs `fn(stage)` as one embedding call: resolves as a success, rejects as a failure. */
  generate(fn, parent) {
    return runStage(this.start(parent), fn);
  }

  /** Counts embeddings generated. */
  addGenerated(n) {
    call(native.embeddingsAddGenerated, this._t._id, Number.isInteger(n) && n > 0 ? Math.min(n, 0xffffffff) : 0);
  }

  /** Records an embedding-cache lookup at once; returns `hit`. */
  cacheLookup(hit) {
    return call(native.embeddingsCacheLookup, this._t._id, Boolean(hit));
  }

  /** Starts an embedding-cache lookup (a stage): end it with hit(), miss() or lookup(found). */
  startCacheLookup(parent) {
    const [p, tp] = parentOf(parent);
    return new CacheCall(this._t, call(native.embeddingsCacheLookupStart, this._t._id, p, tp));
  }
}

/** The vector store: searches timed, the documents it holds. */
class VectorStore {
  constructor(t) {
    this._t = t;
  }

  /** Starts timing one search; end it with succeed()/fail(). */
  start(parent) {
    const [p, tp] = parentOf(parent);
    return new Stage(this._t, call(native.vectorSearchStart, this._t._id, p, tp));
  }

  /** Runs `fn(stage)` as one search. */
  search(fn, parent) {
    return runStage(this.start(parent), fn);
  }

  /** The number of documents the store holds. */
  setDocuments(n) {
    call(native.vectorStoreSetDocuments, this._t._id, Number(n));
  }
}

/** Redis: commands (a client span each), lookups, memory. */
class Redis {
  constructor(t) {
    this._t = t;
  }

  /** Starts one command (`GET`, `SET`, ...): end it with hit()/miss() for a read, else finish(). */
  startCommand(command, parent) {
    requireString(command, 'the command');
    const [p, tp] = parentOf(parent);
    return new CacheCall(this._t, call(native.redisCommandStart, this._t._id, command, p, tp));
  }

  /**
   * Runs `fn(call)` as one command: a read calls `call.lookup(found)`; otherwise a
   * resolution is `ok` and a rejection `error`.
   */
  command(command, fn, parent) {
    return runStage(this.startCommand(command, parent), fn);
  }

  /** Records a cache read as a hit or a miss at once; returns `hit`. */
  lookup(hit) {
    return call(native.redisLookup, this._t._id, Boolean(hit));
  }

  /** Redis's memory in use and its limit, in bytes. */
  setMemory(usedBytes, maxBytes) {
    call(native.redisSetMemory, this._t._id, Number(usedBytes), Number(maxBytes));
  }
}

/** Cache operations by cache (redis, embedding), operation and result. */
class Cache {
  constructor(t) {
    this._t = t;
  }

  /** Counts one operation: `record('redis', 'set', 'ok')`. */
  record(cache, operation, result) {
    call(
      native.cacheRecord,
      this._t._id,
      labelIndex(CACHE.caches, cache, 'cache'),
      labelIndex(CACHE.operations, operation, 'cache operation'),
      labelIndex(CACHE.results, result, 'cache result'),
    );
  }
}

/** The database: queries timed by operation, the connection pool. */
class Database {
  constructor(t) {
    this._t = t;
  }

  /**
   * Starts timing one query (`operation`: select, insert, update, delete, upsert,
   * transaction, other); `summary` is the span's low-cardinality `db.query.summary`.
   */
  start(operation, { summary, parent } = {}) {
    const op = labelIndex(DB_OPERATIONS, operation, 'database operation');
    const [p, tp] = parentOf(parent);
    return new Stage(this._t, call(native.dbQueryStart, this._t._id, op, typeof summary === 'string' ? summary : undefined, p, tp));
  }

  /** Runs `fn(stage)` as one query. */
  query(operation, fn, options) {
    return runStage(this.start(operation, options), fn);
  }

  /** The pool's connections in use and its size. */
  setPool(active, max) {
    const n = (v) => (Number.isInteger(v) && v >= 0 ? Math.min(v, 0xffffffff) : 0);
    call(native.dbSetPool, this._t._id, n(active), n(max));
  }
}

/** Document ingestion: jobs, the queue. */
class Documents {
  constructor(t) {
    this._t = t;
  }

  /** Starts one document's ingestion; setChunks(n), then succeed()/fail(). */
  start(parent) {
    const [p, tp] = parentOf(parent);
    return new DocumentJob(this._t, call(native.documentStart, this._t._id, p, tp));
  }

  /** Runs `fn(job)` as one document's ingestion. */
  ingest(fn, parent) {
    return runStage(this.start(parent), fn);
  }

  /** The documents waiting to be ingested. */
  setQueueLength(n) {
    call(native.documentsSetQueueLength, this._t._id, Number(n));
  }
}

/** An open WebSocket connection: counted until closed (or its `using` scope ends). */
class WebSocketConnection {
  constructor(t) {
    this._t = t;
    this.closed = false;
    call(native.websocketActive, t._id, 1);
  }

  /** A message received. */
  inbound() {
    call(native.websocketMessage, this._t._id, DIRECTIONS.indexOf('inbound'));
  }

  /** A message sent. */
  outbound() {
    call(native.websocketMessage, this._t._id, DIRECTIONS.indexOf('outbound'));
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    call(native.websocketActive, this._t._id, -1);
  }

  [Symbol.dispose]() {
    this.close();
  }
}

/** WebSockets: messages by direction, open connections. */
class WebSocketMetrics {
  constructor(t) {
    this._t = t;
  }

  /** A connection opened: close() it when it closes. */
  connectionOpened() {
    return new WebSocketConnection(this._t);
  }

  /** Counts one message (`inbound` or `outbound`). */
  message(direction) {
    call(native.websocketMessage, this._t._id, labelIndex(DIRECTIONS, direction, 'direction'));
  }
}

class Llm {
  constructor(t) {
    this._t = t;
    this._models = new Map();
  }

  _model(name) {
    requireString(name, 'the model name');
    let id = this._models.get(name);
    if (id === undefined) {
      id = call(native.llmModel, this._t._id, name);
      if (this._models.size < 1000) this._models.set(name, id);
    }
    return id;
  }

  /** Starts a call to `model`; end it with succeed()/fail() (or use call()). */
  start(model, parent) {
    const m = this._model(model);
    const [p, tp] = parentOf(parent);
    return new LlmCall(this._t, call(native.llmStart, this._t._id, m, p, tp));
  }

  /** Runs `fn(call)` as one LLM call to `model`. */
  call(model, fn, parent) {
    return runStage(this.start(model, parent), fn);
  }

  /**
   * Wraps a streamed response (an async iterable of chunks) as one LLM call: the first
   * chunk marks the first token, each chunk adds `tokens(chunk)` output tokens (1 unless
   * said otherwise). Ends as a success when the stream ends, a failure when it throws, and
   * abandoned when the consumer stops early.
   */
  async *stream(model, iterable, { tokens = () => 1, parent } = {}) {
    const c = this.start(model, parent);
    let first = true;
    let finished = false;
    try {
      for await (const chunk of iterable) {
        if (first) {
          c.firstToken();
          first = false;
        }
        c.addOutputTokens(tokens(chunk));
        yield chunk;
      }
      finished = true;
      c.succeed();
    } catch (e) {
      c.fail(e);
      throw e;
    } finally {
      if (!finished) c.abandon('cancelled');
    }
  }
}

class Http {
  constructor(t) {
    this._t = t;
    this._routes = new Map();
  }

  /** The interned id of a route template. */
  routeId(template) {
    let id = this._routes.get(template);
    if (id === undefined) {
      requireString(template, 'the route template');
      id = call(native.httpRoute, this._t._id, template);
      if (this._routes.size < 10000) this._routes.set(template, id);
    }
    return id;
  }

  /** The core's server rules for a framework adapter (see `HttpAdapter`). */
  adapter({ exclude } = {}) {
    return new HttpAdapter(this._t, exclude);
  }

  /**
   * Starts a server request before routing (`path` is for the span only, never a label);
   * bind the template with `setRoute`, end with `finish(status)` or `abandon()`.
   */
  start(method, path, traceparent) {
    const tracing = this._t.tracingEnabled;
    const [p, tp] = traceparent ? [0, traceparent] : parentOf(undefined);
    const id = call(native.httpStart, this._t._id, methodIndex(method), tracing && typeof path === 'string' ? path.slice(0, httpRules.maxSpanPath) : '', p, tp);
    return new HttpRequest(this._t, id);
  }
}

/**
 * The core's HTTP server rules for a framework adapter (the Express and Fastify ones, or
 * your own), in two native calls per request: `start` says whether the path is recorded
 * (its id) or excluded (0), `end` hands over the route template and the status, or that
 * the client went away first.
 */
class HttpAdapter {
  constructor(t, exclude) {
    this._t = t;
    this._excluded = call(native.httpExcludedPaths, exclude ? [...exclude].map(String) : undefined);
  }

  /**
   * Starts a request (before routing): its id, or 0 when `path` is excluded (not recorded).
   * `path` has no query string; `traceparent` is the incoming header, if any.
   */
  start(method, path, traceparent) {
    const tracing = this._t.tracingEnabled;
    return call(
      native.httpStart,
      this._t._id,
      methodIndex(method),
      typeof path === 'string' ? path.slice(0, httpRules.maxSpanPath) : '',
      0,
      tracing && typeof traceparent === 'string' ? traceparent : undefined,
      this._excluded,
    );
  }

  /** The request `id` as a stage (for `run`, and for the spans started under it). */
  stage(id) {
    return new HttpRequest(this._t, id);
  }

  /** Runs `fn` with `stage` current: the stages it starts are the request's children. */
  run(stage, fn) {
    return storage.run(stage, fn);
  }

  /**
   * Ends request `id`: the route template the framework matched (undefined: none), and
   * its status, or `abandoned` when the client went away before the response was complete.
   */
  end(id, template, status, abandoned = false) {
    return native.httpEnd(id, typeof template === 'string' ? template : undefined, status, Boolean(abandoned));
  }
}

class HttpRequest extends Stage {
  setRoute(template) {
    requireString(template, 'the route template');
    if (!this.ended) call(native.httpSetRouteTemplate, this.id, template);
  }

  finish(status) {
    if (this.ended) return 0;
    this.ended = true;
    return call(native.httpEnd, this.id, undefined, Number.isInteger(status) && status >= 0 && status < 1000 ? status : 0, false);
  }
}

/**
 * A histogram's `native` option as a schema for the core: true is the core's default, a
 * number that schema (-4 to 8, checked by the core), false or absent none.
 */
function nativeSchema(kind, option) {
  if (option === undefined || option === null || option === false) return undefined;
  if (kind !== 'histogram') throw codedError(TypeError, 'ERR_INVALID_ARG_TYPE', 'only histograms take the native option');
  if (option === true) return NATIVE_DEFAULT_SCHEMA;
  if (Number.isInteger(option)) return option;
  throw codedError(TypeError, 'ERR_INVALID_ARG_TYPE', 'native must be a boolean or a schema (an integer from -4 to 8)');
}

function labelValues(family, labels) {
  const names = family.labelNames;
  if (labels === undefined || labels === null) {
    if (names.length === 0) return [];
    throw codedError(TypeError, 'ERR_TARS_LABEL_COUNT', `${family.name} needs labels ${names.join(', ')}`);
  }
  if (typeof labels !== 'object') throw codedError(TypeError, 'ERR_INVALID_ARG_TYPE', 'labels must be an object');
  const values = new Array(names.length);
  for (let i = 0; i < names.length; i++) {
    const v = labels[names[i]];
    if (v === undefined) throw codedError(TypeError, 'ERR_TARS_LABEL_COUNT', `${family.name}: label ${names[i]} is missing`);
    values[i] = String(v);
  }
  return values;
}

/** A custom family: prom-client's `{ name, help, labelNames }` configuration. */
class Family {
  constructor(telemetry, kind, config) {
    if (config === null || typeof config !== 'object') throw codedError(TypeError, 'ERR_INVALID_ARG_TYPE', 'a configuration object { name, help, labelNames } is required');
    const { name, help = '', labelNames = [], buckets, native: nativeOption } = config;
    requireString(name, 'name');
    requireString(help, 'help');
    if (!Array.isArray(labelNames) || labelNames.some((l) => typeof l !== 'string')) throw codedError(TypeError, 'ERR_INVALID_ARG_TYPE', 'labelNames must be an array of strings');
    if (buckets !== undefined && (!Array.isArray(buckets) || buckets.some((b) => typeof b !== 'number'))) throw codedError(TypeError, 'ERR_INVALID_ARG_TYPE', 'buckets must be an array of numbers');
    this.name = name;
    this.help = help;
    this.labelNames = labelNames.slice();
    this._id = call(native.familyCreate, telemetry._id, KIND[kind], name, help, this.labelNames, buckets, nativeSchema(kind, nativeOption));
    this._series = new Map();
    this._unlabeled = undefined;
  }

  /** The interned handle id of one series (label values in `labelNames` order). */
  _handle(values) {
    const key = values.length === 1 ? values[0] : values.join('\u0000');
    let id = this._series.get(key);
    if (id === undefined) {
      id = call(native.familyLabels, this._id, values);
      if (this._series.size < 10000) this._series.set(key, id);
    }
    return id;
  }

  _resolve(labels) {
    if (labels === undefined && this.labelNames.length === 0) {
      if (this._unlabeled === undefined) this._unlabeled = this._handle([]);
      return this._unlabeled;
    }
    return this._handle(labelValues(this, labels));
  }

  /** The series of these label values, positionally (prom-client's `labels(...)`). */
  labels(...values) {
    if (values.length === 1 && values[0] !== null && typeof values[0] === 'object') values = labelValues(this, values[0]);
    if (values.length !== this.labelNames.length) throw codedError(TypeError, 'ERR_TARS_LABEL_COUNT', `${this.name} has ${this.labelNames.length} labels, ${values.length} values given`);
    return this._child(this._handle(values.map(String)));
  }

  /** The current value of a series (a histogram's count), for tests. */
  get(labels) {
    return call(native.handleValue, this._resolve(labels));
  }
}

function splitArgs(a, b) {
  // prom-client: inc(value), inc(labels), inc(labels, value)
  if (a !== null && typeof a === 'object') return [a, b];
  return [undefined, a];
}

class Counter extends Family {
  constructor(t, config) {
    super(t, 'counter', config);
  }

  inc(a, b) {
    const [labels, v] = splitArgs(a, b);
    hot.inc(this._resolve(labels), v);
  }

  _child(id) {
    return { id, inc: (v) => hot.inc(id, v) };
  }
}

class Gauge extends Family {
  constructor(t, config) {
    super(t, 'gauge', config);
  }

  set(a, b) {
    const [labels, v] = splitArgs(a, b);
    hot.set(this._resolve(labels), v);
  }

  inc(a, b) {
    const [labels, v] = splitArgs(a, b);
    hot.add(this._resolve(labels), v === undefined ? 1 : v);
  }

  dec(a, b) {
    const [labels, v] = splitArgs(a, b);
    hot.add(this._resolve(labels), -(v === undefined ? 1 : v));
  }

  _child(id) {
    return { id, set: (v) => hot.set(id, v), inc: (v = 1) => hot.add(id, v), dec: (v = 1) => hot.add(id, -v) };
  }
}

class Histogram extends Family {
  constructor(t, config) {
    super(t, 'histogram', config);
  }

  observe(a, b) {
    const [labels, v] = splitArgs(a, b);
    hot.observe(this._resolve(labels), v);
  }

  /** Starts a timer; calling the returned function observes the seconds elapsed. */
  startTimer(labels) {
    const id = this._resolve(labels);
    const t0 = process.hrtime.bigint();
    return () => {
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      hot.observe(id, s);
      return s;
    };
  }

  _child(id) {
    return { id, observe: (v) => hot.observe(id, v) };
  }
}

// The vitals the core takes, in its order, and its beacon limits (read from it, not retyped).
const WEB_VITALS_LIMITS = Object.freeze(native.webVitalsLimits());
const WEB_VITALS = Object.freeze([...WEB_VITALS_LIMITS.names]);

class WebVitals {
  constructor(t) {
    this._t = t;
  }

  /**
   * Records one report: `name` (LCP, INP, CLS, FCP, TTFB), `value` (milliseconds; CLS
   * as its score), the page's route template and navigation type. Returns null when
   * recorded, else why it was rejected (and counted).
   */
  record({ name, value, route, navigationType = 'navigate' } = {}) {
    // The core checks everything (names, values, routes, navigation types) and counts
    // what it refuses; only the types JavaScript could hand it are checked here.
    if (typeof name !== 'string') return this.reject('unknown_metric');
    if (typeof value !== 'number') return this.reject('bad_value');
    if (typeof route !== 'string') return this.reject('bad_route');
    if (typeof navigationType !== 'string') return this.reject('bad_navigation_type');
    return call(native.webVitalsRecord, this._t._id, name, value, route, navigationType) ?? null;
  }

  /**
   * Takes a whole beacon body (a Buffer or string of JSON: a report or an array of up to
   * 20); `routes`, when given, lists the only route templates taken. Returns the status
   * to answer (204, 400 or 413) and the reports recorded.
   */
  beacon(body, routes) {
    const buf = Buffer.isBuffer(body) ? body : Buffer.from(String(body ?? ''));
    return call(native.webVitalsBeacon, this._t._id, buf, routes ? [...routes].map(String) : undefined);
  }

  /** Counts a rejected report (malformed, oversized, too_many, ...). */
  reject(reason) {
    call(native.webVitalsReject, this._t._id, String(reason));
    return reason;
  }
}

function tracingFromEnv(env) {
  if ((env.OTEL_SDK_DISABLED || '').toLowerCase() === 'true') return false;
  if ((env.OTEL_TRACES_EXPORTER || '').toLowerCase() === 'none') return false;
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

/** Metrics and traces of one service. */
class Telemetry {
  /**
   * @param {{ serviceName?: string, seriesBudget?: number, tracing?: boolean, multiprocDir?: string }} [options]
   * `tracing` defaults to on when OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT is set;
   * `multiprocDir` to TARS_TELEMETRY_MULTIPROC_DIR (empty: every series in this process).
   * A directory that cannot be used throws with code ERR_TARS_MULTIPROCESS_UNAVAILABLE.
   * `llmPricing` (a JSON file's path, or the table) defaults to the file named by
   * TARS_LLM_PRICING_FILE; see setLlmPricing.
   */
  constructor(options = {}) {
    if (options === null || typeof options !== 'object') throw codedError(TypeError, 'ERR_INVALID_ARG_TYPE', 'options must be an object');
    const { serviceName, seriesBudget, tracing } = options;
    const multiprocDir = options.multiprocDir === undefined ? process.env[MULTIPROC_DIR_ENV] || '' : options.multiprocDir;
    if (serviceName !== undefined) requireString(serviceName, 'serviceName');
    requireString(multiprocDir, 'multiprocDir');
    if (seriesBudget !== undefined && !(Number.isInteger(seriesBudget) && seriesBudget > 0 && seriesBudget < 2 ** 32)) throw codedError(RangeError, 'ERR_OUT_OF_RANGE', 'seriesBudget must be a positive integer');
    const info = call(native.telemetryCreate, {
      serviceName,
      seriesBudget,
      tracing: tracing === undefined ? tracingFromEnv(process.env) : Boolean(tracing),
      multiprocDir,
    });
    this._id = info.id;
    // A bad pricing table throws here, at start, never while recording.
    if (options.llmPricing === undefined) call(native.llmSetPricingFromEnv, this._id);
    else this.setLlmPricing(options.llmPricing);
    /** Whether spans are made and exported. */
    this.tracingEnabled = info.tracing;
    /** Warnings about the OTEL_* variables. */
    this.warnings = info.warnings;
    /** The multi-process directory shared with the service's other workers (undefined: none). */
    this.multiprocDir = info.multiprocDir ?? undefined;
    this.serviceName = serviceName;
    this.rag = new Rag(this);
    this.llm = new Llm(this);
    this.http = new Http(this);
    this.embeddings = new Embeddings(this);
    this.vectorStore = new VectorStore(this);
    this.redis = new Redis(this);
    this.cache = new Cache(this);
    this.db = new Database(this);
    this.documents = new Documents(this);
    this.websocket = new WebSocketMetrics(this);
    this.webVitals = new WebVitals(this);
    const self = this;
    /** A counter family of this telemetry (prom-client's configuration). */
    this.Counter = class extends Counter {
      constructor(config) {
        super(self, config);
      }
    };
    /** A gauge family of this telemetry. */
    this.Gauge = class extends Gauge {
      constructor(config) {
        super(self, config);
      }
    };
    /** A histogram family of this telemetry. */
    this.Histogram = class extends Histogram {
      constructor(config) {
        super(self, config);
      }
    };
    this._servers = new Set();
  }

  /**
   * Replaces the LLM pricing table: a JSON file's path, or the table itself
   * (`{ models: { 'llama3:8b': { input: 0.05, output: 0.08 } } }`, dollars per million
   * tokens by kind: input, cache_read, cache_write, output, reasoning). A model or kind
   * without a price is counted as unpriced, never as free. Throws (code
   * ERR_TARS_INVALID_PRICING, or ENOENT for an unreadable file) naming what is wrong.
   */
  setLlmPricing(pricing) {
    if (typeof pricing === 'string') call(native.llmSetPricingFile, this._id, pricing);
    else if (pricing !== null && typeof pricing === 'object') call(native.llmSetPricingJson, this._id, JSON.stringify(pricing));
    else throw codedError(TypeError, 'ERR_INVALID_ARG_TYPE', 'the pricing must be a file path or a table object');
  }

  /** The text exposition (Prometheus, or OpenMetrics), rendered off the main thread. */
  metrics({ openMetrics = false, format } = {}) {
    const name = textFormat(format, openMetrics);
    return callAsync(native.telemetryRender, this._id, name).then((b) => b.toString('utf8'));
  }

  /**
   * The exposition as a Buffer, rendered off the main thread: `format` is one of
   * FORMATS ('prometheus', 'openmetrics', 'protobuf': what Telemetry.formatFor(accept)
   * returns); `openMetrics: true` is 'openmetrics'.
   */
  metricsBuffer({ openMetrics = false, format } = {}) {
    return callAsync(native.telemetryRender, this._id, formatName(format, openMetrics));
  }

  /** The text exposition, rendered on this thread. */
  metricsSync({ openMetrics = false, format } = {}) {
    return call(native.telemetryRenderSync, this._id, textFormat(format, openMetrics)).toString('utf8');
  }

  /** The Content-Type for an Accept header (by the core's negotiation). */
  static contentType(accept) {
    return Telemetry.contentTypeOf(Telemetry.formatFor(accept));
  }

  /** The Content-Type of a format named as FORMATS names it. */
  static contentTypeOf(format) {
    return native.contentTypeOf(formatName(format, false));
  }

  /**
   * The exposition format an Accept header asks for: 'protobuf' (a Prometheus that scrapes
   * native histograms), 'openmetrics' or 'prometheus'.
   */
  static formatFor(accept) {
    return native.formatForAccept(typeof accept === 'string' ? accept : undefined);
  }

  /**
   * Serves /metrics from the core's own server (a Rust thread), e.g. on a port of its own.
   * Rejects with code EADDRINUSE when the address is taken.
   */
  async serve({ host = '127.0.0.1', port = 9464 } = {}) {
    requireString(host, 'host');
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw codedError(RangeError, 'ERR_SOCKET_BAD_PORT', `port must be an integer 0..65535, got ${port}`);
    const addr = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    const info = call(native.telemetryServe, this._id, addr);
    const id = this._id;
    let stopped = false;
    const server = {
      address: info.address,
      port: info.port,
      close: async () => {
        if (stopped) return;
        stopped = true;
        this._servers.delete(server);
        await callAsync(native.telemetryStopServer, id, info.id);
      },
    };
    this._servers.add(server);
    return server;
  }

  /** The stage current in this async context (undefined outside any). */
  currentStage() {
    const s = storage.getStore();
    return s instanceof Stage && !s.ended ? s : undefined;
  }

  /** Runs `fn` with `stage` current. */
  withStage(stage, fn) {
    return storage.run(stage, fn, stage);
  }

  /** Headers carrying the current stage's trace to another service: `{ traceparent }`. */
  traceHeaders() {
    const s = this.currentStage();
    const tp = s ? s.traceparent : otelTraceparent();
    return tp ? { traceparent: tp } : {};
  }

  /**
   * `fetch` with the current trace in a `traceparent` header (the backend's server span
   * becomes a child of the current stage).
   */
  fetch(input, init = {}) {
    const headers = new Headers(init.headers || (input instanceof Request ? input.headers : undefined));
    const tp = this.traceHeaders().traceparent;
    if (tp && !headers.has('traceparent')) headers.set('traceparent', tp);
    return fetch(input, { ...init, headers });
  }

  /** Counts an error in tars_errors_total (component: rag, llm, http, ...). */
  recordError(component, err) {
    call(native.telemetryRecordError, this._id, requireString(component, 'component'), errorType(err));
  }

  /** Sets tars_app_info. */
  setAppInfo({ version = '', environment = '', model = '' } = {}) {
    call(native.telemetrySetAppInfo, this._id, String(version), String(environment), String(model));
  }

  /** Spans exported and dropped (undefined without tracing). */
  tracingStats() {
    return call(native.telemetryTracingStats, this._id) ?? undefined;
  }

  /** Stops the servers and exports the spans still queued. */
  async shutdown({ timeoutMs = 5000 } = {}) {
    await Promise.all([...this._servers].map((s) => s.close()));
    await callAsync(native.telemetryShutdownTracing, this._id, timeoutMs);
  }
}

/** Whether an Accept header asks for OpenMetrics: the core's negotiation (by quality). */
/** A format name for `metricsBuffer`: `format` if given, else by `openMetrics`. */
function formatName(format, openMetrics) {
  if (format === undefined || format === null) return openMetrics ? 'openmetrics' : 'prometheus';
  if (typeof format !== 'string' || !FORMATS.includes(format)) {
    throw codedError(TypeError, 'ERR_TARS_INVALID_FORMAT', `format must be one of ${FORMATS.join(', ')}`);
  }
  return format;
}

/** As formatName, for the calls that return text. */
function textFormat(format, openMetrics) {
  const name = formatName(format, openMetrics);
  if (name === 'protobuf') throw codedError(TypeError, 'ERR_TARS_INVALID_FORMAT', 'protobuf is binary: use metricsBuffer');
  return name;
}

function wantsOpenMetrics(accept) {
  return native.wantsOpenMetrics(typeof accept === 'string' ? accept : undefined);
}

/**
 * Renders a multi-process directory from any process (a worker, or one with no telemetry
 * of its own): every worker's series merged, off the main thread.
 */
function renderMultiprocessDir(dir, { openMetrics = false } = {}) {
  requireString(dir, 'the directory');
  return callAsync(native.renderMultiprocessDir, dir, Boolean(openMetrics)).then((b) => b.toString('utf8'));
}

/**
 * As renderMultiprocessDir, as a Buffer in any format: `format` one of FORMATS (protobuf
 * for a Prometheus that scrapes native histograms; `Telemetry.formatFor(accept)` picks it
 * from a scrape's Accept header).
 */
function renderMultiprocessDirBuffer(dir, { openMetrics = false, format } = {}) {
  requireString(dir, 'the directory');
  return callAsync(native.renderMultiprocessDirAs, dir, formatName(format, openMetrics));
}

/**
 * As renderMultiprocessDir, and what the render could not use (files skipped, records
 * dropped, archives replaced, dead workers' files set aside, a fold that failed):
 * `{ text, warnings: [{ path, event, reason, message }] }`.
 */
function renderMultiprocessDirReport(dir, { openMetrics = false } = {}) {
  requireString(dir, 'the directory');
  return callAsync(native.renderMultiprocessDirReport, dir, Boolean(openMetrics));
}

/** Stages open in this process (for leak checks). */
function openStages() {
  return native.stagesOpen();
}

module.exports = {
  Telemetry,
  Stage,
  CacheCall,
  DocumentJob,
  WebSocketConnection,
  RagQuery,
  Phase,
  LlmCall,
  HttpRequest,
  WEB_VITALS,
  WEB_VITALS_LIMITS,
  PROMETHEUS_CONTENT_TYPE,
  OPENMETRICS_CONTENT_TYPE,
  PROTOBUF_CONTENT_TYPE,
  FORMATS,
  openStages,
  renderMultiprocessDir,
  renderMultiprocessDirBuffer,
  renderMultiprocessDirReport,
  MULTIPROC_DIR_ENV,
  MULTIPROC_ALLOW_SHARED_ENV,
  DEFAULT_EXCLUDED_PATHS,
  DEFAULT_BUCKETS,
  // For the framework adapters of this package; not a public API.
  _internal: { native, hot, storage, methodIndex, coded, call, wantsOpenMetrics, httpRules },
  HttpAdapter,
};
