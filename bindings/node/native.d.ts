// Generated from the Rust sources by scripts/gen-types.js (TARS_TELEMETRY_TYPES=1
// node scripts/build-addon.js); do not edit.
/// <reference types="node" />

/** What a beacon came to. */
export interface BeaconOutcome {
  /** The status to answer: 204, 400 or 413. */
  status: number
  recorded: number
}

/** The cache label tables, by the indexes `cache_record` and `cache_finish` take. */
export interface CacheTables {
  caches: Array<string>
  operations: Array<string>
  results: Array<string>
}

/** Custom families' tables: their kinds by index, and the default histogram buckets. */
export interface FamilyTables {
  kinds: Array<string>
  defaultBuckets: Array<number>
}

/** The core's HTTP server rules, read once by the JavaScript layer (never retyped there). */
export interface HttpRules {
  /** The paths a middleware leaves unrecorded unless told otherwise. */
  defaultExcludedPaths: Array<string>
  /** The longest raw path a span carries, in bytes. */
  maxSpanPath: number
  /** The `error.type` of a request whose client went away. */
  clientDisconnected: string
  /** The `error.type` of a request whose task was cancelled. */
  cancelled: string
  /**
  * Request methods, by the index `http_start` takes (the last, `_OTHER`, for any
  * other method).
  */
  methods: Array<string>
}

/**
* The environment variable that, set to `1`, lets workers use a directory other users
* can write to.
*/
export declare const MULTIPROC_ALLOW_SHARED_ENV: string

/** The environment variable naming the multi-process directory. */
export declare const MULTIPROC_DIR_ENV: string

/** A render and what it could not use. */
export interface MultiprocessReport {
  /** The exposition. */
  text: string
  /** Empty when every file was read whole. */
  warnings: Array<MultiprocessWarning>
}

/** What a render of the directory could not use. */
export interface MultiprocessWarning {
  /** The file (or the directory, for a fold that failed). */
  path: string
  /**
  * `file_skipped`, `records_dropped`, `archive_replaced`, `dead_file_set_aside` or
  * `fold_failed`.
  */
  event: string
  /**
  * `not_a_regular_file`, `not_ours`, `layout`, `catalog`, `truncated`, `corrupt`,
  * `unwritable`, `no_space` or `io`.
  */
  reason: string
  /** The whole warning, in words. */
  message: string
}

/** The schema a custom histogram's native buckets get with `{ native: true }`. */
export declare const NATIVE_DEFAULT_SCHEMA: number

/** A generated class, as a handle object would be. */
export declare class NoopHandle {
  /** Makes one. */
  constructor(id: number)
  /** A generated method taking a number (`&self`: borrow tracking applies). */
  inc(value: number): number
}

/** The `Content-Type` of OpenMetrics 1.0. */
export declare const OPENMETRICS_CONTENT_TYPE: string

/**
* The exposition format asked for.
* The `Content-Type` of the Prometheus text format.
*/
export declare const PROMETHEUS_CONTENT_TYPE: string

/** The `Content-Type` of the protobuf exposition (native histograms). */
export declare const PROTOBUF_CONTENT_TYPE: string

/** A started /metrics server. */
export interface ServerInfo {
  /** Its id (to stop it). */
  id: number
  /** The bound address. */
  address: string
  /** The bound port. */
  port: number
}

/** What a telemetry was built with. */
export interface TelemetryInfo {
  /** Its id. */
  id: number
  /** Whether tracing is installed. */
  tracing: boolean
  /** Warnings about the `OTEL_*` variables. */
  warnings: Array<string>
  /** The multi-process directory its series live in, if any. */
  multiprocDir?: string
}

/** Construction options. */
export interface TelemetryOptions {
  /** `service.name` of the spans; `OTEL_SERVICE_NAME` when absent. */
  serviceName?: string
  /** Series per family before new label sets fold into the overflow series (1000). */
  seriesBudget?: number
  /** Install tracing (OTLP export as the `OTEL_*` variables say). */
  tracing?: boolean
  /**
  * The multi-process directory shared with the service's other workers; absent or
  * empty: every series stays in this process. The environment is not read here: the
  * JavaScript layer passes `TARS_TELEMETRY_MULTIPROC_DIR` itself.
  */
  multiprocDir?: string
}

/** Spans exported and dropped so far. */
export interface TracingStats {
  /** Spans exported. */
  exported: number
  /** Spans dropped (queue full, export failed). */
  dropped: number
}

/** The core's limits, read once by the JavaScript layer. */
export interface WebVitalsLimits {
  names: Array<string>
  maxBeaconBytes: number
  maxBeaconReports: number
}

/** Ends a cache call (a Redis command, an embedding-cache lookup) with its result. */
export declare function cacheFinish(call: number, result: number): void

/** Ends a cache read as a hit or a miss; returns `hit`. */
export declare function cacheFinishLookup(call: number, hit: boolean): boolean

/** Counts one cache operation. */
export declare function cacheRecord(telemetry: number, cache: number, operation: number, result: number): void

/** The cache label tables. */
export declare function cacheTables(): CacheTables

/** The `Content-Type` of a format named as `format_for_accept` names it. */
export declare function contentTypeOf(format: string): string

/** The query operations, by the index `db_query_start` takes. */
export declare function dbOperations(): Array<string>

/** Starts timing one query (`summary`: the span's low-cardinality `db.query.summary`). */
export declare function dbQueryStart(telemetry: number, operation: number, summary: string | undefined | null, parent: number, traceparent?: string | undefined | null): number

/** Sets the connection pool's connections in use and its size. */
export declare function dbSetPool(telemetry: number, active: number, max: number): void

/** Sets the chunks the document was split into (counted when it succeeds). */
export declare function documentSetChunks(job: number, chunks: number): void

/** Starts one document's ingestion. */
export declare function documentStart(telemetry: number, parent: number, traceparent?: string | undefined | null): number

/** Sets the number of documents waiting to be ingested. */
export declare function documentsSetQueueLength(telemetry: number, n: number): void

/** Counts embeddings generated. */
export declare function embeddingsAddGenerated(telemetry: number, count: number): void

/** Records an embedding-cache lookup, hit or miss, at once. */
export declare function embeddingsCacheLookup(telemetry: number, hit: boolean): boolean

/** Starts an embedding-cache lookup as a stage (ended with `cache_finish_lookup`). */
export declare function embeddingsCacheLookupStart(telemetry: number, parent: number, traceparent?: string | undefined | null): number

/** Starts timing one embedding call. */
export declare function embeddingsStart(telemetry: number, parent: number, traceparent?: string | undefined | null): number

/** Registers a family (`kind`: its index in `FAMILY_KINDS`) and returns its id. */
export declare function familyCreate(telemetry: number, kind: number, name: string, help: string, labelNames: Array<string>, buckets?: Array<number> | undefined | null, nativeSchema?: number | undefined | null): number

/** The handle id of one series of a family (interned: the same values give the same id). */
export declare function familyLabels(family: number, values: Array<string>): number

/** The tables of `family_create`. */
export declare function familyTables(): FamilyTables

/**
* The format an `Accept` header asks for, by the core's negotiation: `prometheus`,
* `openmetrics` or `protobuf`.
*/
export declare function formatForAccept(accept?: string | undefined | null): string

/** The format names the core knows, in its order. */
export declare function formatNames(): Array<string>

/**
* The current value of a handle's series: a counter's or gauge's value, a histogram's
* count (for tests and snapshots; not a hot call).
*/
export declare function handleValue(id: number): number

/** The raw hot functions. */
export declare function hotCalls(): { inc(id: number, value?: number): void; set(id: number, value: number): void; add(id: number, value?: number): void; observe(id: number, value: number): void; noopRaw(id: number, value?: number): void }

/**
* Ends a request: its route template (if the framework matched one) and its status, or,
* when `abandoned`, the client went away first (`client_disconnected`). One call at the
* end of a request; returns its duration in seconds (0 when abandoned).
*/
export declare function httpEnd(request: number, template: string | undefined | null, status: number, abandoned: boolean): number

/**
* Registers a set of excluded paths (the core's matching rule); returns its id for
* `http_start`. `None`: the core's defaults.
*/
export declare function httpExcludedPaths(paths?: Array<string> | undefined | null): number

/** Finishes a request with its status code; returns its duration in seconds. */
export declare function httpFinish(request: number, status: number): number

/** The interned id of a route template. */
export declare function httpRoute(telemetry: number, template: string): number

/** The core's HTTP server rules. */
export declare function httpRules(): HttpRules

/** Binds the route template (by interned id) to a request. */
export declare function httpSetRoute(telemetry: number, request: number, route: number): void

/** Binds a route template, by its text (interned by the core), to a request. */
export declare function httpSetRouteTemplate(request: number, template: string): void

/**
* Starts a request (`method`: the index of `Method`, from `methodIndex` in JavaScript;
* `path` is the raw path, for the span only, cut to the core's limit). With `excluded`
* (an id from `http_excluded_paths`), a path it holds is not recorded: 0 is returned
* and no stage is opened.
*/
export declare function httpStart(telemetry: number, method: number, path: string, parent: number, traceparent?: string | undefined | null, excluded?: number | undefined | null): number

/** The interned id of a model's handle. */
export declare function llmModel(telemetry: number, name: string): number

/**
* Streaming progress of a call: the first token arrived (`first_token`), `output` more
* output tokens; and token counts known at once (`input`, `output_total`).
*/
export declare function llmProgress(call: number, firstToken: boolean, output?: number | undefined | null, input?: number | undefined | null, outputTotal?: number | undefined | null): void

/** Replaces the LLM pricing table with a JSON file's. */
export declare function llmSetPricingFile(telemetry: number, path: string): void

/**
* Loads the pricing file named by `TARS_LLM_PRICING_FILE`, when it is set: whether one
* was loaded.
*/
export declare function llmSetPricingFromEnv(telemetry: number): boolean

/**
* Replaces the LLM pricing table with its JSON form (`{"models": {model: {kind: dollars
* per million tokens}}}`).
*/
export declare function llmSetPricingJson(telemetry: number, text: string): void

/**
* Sets token counts of a call by kind; a kind not given keeps its count. `input` counts
* every prompt token (the cache's included), `output` every completion token (reasoning
* included). Counts arrive checked (whole, non-negative) from JavaScript.
*/
export declare function llmSetUsage(call: number, input?: number | undefined | null, output?: number | undefined | null, cacheReadInput?: number | undefined | null, cacheWriteInput?: number | undefined | null, reasoningOutput?: number | undefined | null): void

/** Starts a call to the model `model` (an id from `llm_model`). */
export declare function llmStart(telemetry: number, model: number, parent: number, traceparent?: string | undefined | null): number

/** A generated free function taking two numbers. */
export declare function noopFree(id: number, value: number): void

/** Starts a phase (`phase`: its index in `rag_phases()`). */
export declare function ragPhaseStart(telemetry: number, phase: number, parent: number, traceparent?: string | undefined | null): number

/** The RAG phases, by the index `rag_phase_start` takes. */
export declare function ragPhases(): Array<string>

/**
* Sets how many sources a query retrieved, and the best source's relevance (0..1);
* either may be absent.
*/
export declare function ragSetResult(query: number, sources?: number | undefined | null, relevance?: number | undefined | null): void

/** Starts a RAG query under `parent` (a stage id, 0 for none) or a remote `traceparent`. */
export declare function ragStart(telemetry: number, parent: number, traceparent?: string | undefined | null): number

/**
* Starts one Redis command (`GET`, `SET`, ...): a client span named by the command under
* a sampled parent; its counts when it ends (`cache_finish*`).
*/
export declare function redisCommandStart(telemetry: number, command: string, parent: number, traceparent?: string | undefined | null): number

/** Records a cache read as a hit or a miss at once; returns `hit`. */
export declare function redisLookup(telemetry: number, hit: boolean): boolean

/** Sets Redis's memory in use and its limit, in bytes. */
export declare function redisSetMemory(telemetry: number, usedBytes: number, maxBytes: number): void

/**
* Renders the multi-process directory at `path` off the main thread: every worker's
* series merged, dead workers folded into the archive first.
*/
export declare function renderMultiprocessDir(path: string, openmetrics: boolean): Promise<unknown>

/**
* As `render_multiprocess_dir`, in any format by its name (`prometheus`, `openmetrics`,
* `protobuf`).
*/
export declare function renderMultiprocessDirAs(path: string, format: string): Promise<unknown>

/** As `render_multiprocess_dir`, and what the render could not use. */
export declare function renderMultiprocessDirReport(path: string, openmetrics: boolean): Promise<unknown>

/**
* Ends a stage that never finished (a cancelled task, an aborted request): counted in
* `tars_telemetry_stages_abandoned_total`, the span ends with `error_type`, no duration.
*/
export declare function stageAbandon(id: number, errorType: string): void

/**
* Ends a stage: success when `error_type` is absent, else a failure of that type (an HTTP
* request ends with `http_finish` instead). Returns the duration in seconds.
*/
export declare function stageEnd(id: number, errorType?: string | undefined | null): number

/** Marks an error on the stage's span without ending it. */
export declare function stageRecordError(id: number, errorType: string): void

/**
* The W3C `traceparent` of a stage's span, when it has one (tracing installed and the
* stage sampled or not): what outgoing calls carry.
*/
export declare function stageTraceparent(id: number): string | null

/** Stages open now (for leak checks in tests). */
export declare function stagesOpen(): number

/** Builds a telemetry. */
export declare function telemetryCreate(options: TelemetryOptions): TelemetryInfo

/** Counts an error in `tars_errors_total` (component by name: rag, llm, http, ...). */
export declare function telemetryRecordError(id: number, component: string, errorType: string): void

/** Renders the exposition off the main thread. */
export declare function telemetryRender(id: number, format: string): Promise<unknown>

/** Renders the exposition on the calling thread (for benchmarks and small registries). */
export declare function telemetryRenderSync(id: number, format: string): Buffer

/** Starts the core's /metrics server on `addr` (`host:port`; port 0 picks one). */
export declare function telemetryServe(id: number, addr: string): ServerInfo

/** Sets `tars_app_info`. */
export declare function telemetrySetAppInfo(id: number, version: string, environment: string, model: string): void

/** Exports the spans still queued and stops tracing (waits at most `timeout_ms`). */
export declare function telemetryShutdownTracing(id: number, timeoutMs: number): Promise<unknown>

/** Stops a server; stopping one twice is a no-op. */
export declare function telemetryStopServer(id: number, server: number): Promise<unknown>

/** Export counts of the installed tracing, if any. */
export declare function telemetryTracingStats(id: number): TracingStats | null

/** Starts timing one vector search. */
export declare function vectorSearchStart(telemetry: number, parent: number, traceparent?: string | undefined | null): number

/** Sets the number of documents the store holds. */
export declare function vectorStoreSetDocuments(telemetry: number, count: number): void

/**
* Whether an `Accept` header asks for OpenMetrics (the core's negotiation: by quality,
* OpenMetrics 1.x only).
*/
export declare function wantsOpenMetrics(accept?: string | undefined | null): boolean

/**
* Takes a whole beacon body (JSON: a report or an array of them); `routes`, when given,
* lists the only route templates taken.
*/
export declare function webVitalsBeacon(telemetry: number, body: Buffer, routes?: Array<string> | undefined | null): BeaconOutcome

/** The core's vitals and beacon limits. */
export declare function webVitalsLimits(): WebVitalsLimits

/**
* Records one report (`value` as browsers report it: milliseconds, CLS its score).
* Returns null when recorded, else the reason it was rejected (and counted).
*/
export declare function webVitalsRecord(telemetry: number, name: string, value: number, route: string, navigationType: string): string | null

/**
* Counts a report or beacon refused before it reached the core (too large, a field of
* the wrong type): `reason` is one of the core's, else `malformed`.
*/
export declare function webVitalsReject(telemetry: number, reason: string): void

/** Adds `delta` (+1 opened, -1 closed) to the open connections. */
export declare function websocketActive(telemetry: number, delta: number): void

/** The message directions, by the index `websocket_message` takes. */
export declare function websocketDirections(): Array<string>

/** Counts one message. */
export declare function websocketMessage(telemetry: number, direction: number): void
