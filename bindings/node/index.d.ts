// Types of the public API (the native layer's own types, generated from the Rust side,
// are in native.d.ts).
/// <reference types="node" />

export interface TelemetryOptions {
  /** `service.name` of the spans (default: OTEL_SERVICE_NAME). */
  serviceName?: string;
  /** Series per family before new label sets fold into the overflow series (1000). */
  seriesBudget?: number;
  /** Make and export spans (default: on when OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT is set). */
  tracing?: boolean;
  /**
   * A directory shared by the worker processes of this service (cluster, PM2): each
   * records into a file of its own there, and any of them serves the merged /metrics of
   * all. Default: TARS_TELEMETRY_MULTIPROC_DIR; empty: every series stays in this process.
   * A directory that cannot be used throws with code ERR_TARS_MULTIPROCESS_UNAVAILABLE.
   */
  multiprocDir?: string;
  /**
   * The LLM pricing table spend is counted from: a JSON file's path, or the table.
   * Default: the file named by TARS_LLM_PRICING_FILE; none: every token unpriced. A bad
   * table throws (code ERR_TARS_INVALID_PRICING, ENOENT for a missing file).
   */
  llmPricing?: string | LlmPricing;
}

export interface SpanContextLike {
  traceId: string;
  spanId: string;
  traceFlags: number;
  isRemote: boolean;
}

/** Where a stage hangs: another stage, or a remote W3C traceparent. */
export type ParentLike = Stage | string | undefined;

export class Stage implements Disposable {
  readonly id: number;
  readonly ended: boolean;
  /** The W3C traceparent of this stage's span (undefined without tracing). */
  readonly traceparent: string | undefined;
  spanContext(): SpanContextLike | undefined;
  recordError(err: unknown): void;
  abandon(reason?: unknown): void;
  succeed(): number;
  fail(err: unknown): number;
  run<T>(fn: (stage: this) => T): T;
  [Symbol.dispose](): void;
}

export class RagQuery extends Stage {
  setResult(result: { sources?: number; relevance?: number }): void;
  phase<T>(name: RagPhaseName, fn: (phase: Phase) => T | Promise<T>): Promise<T>;
}

export class Phase extends Stage {}

export class LlmCall extends Stage {
  firstToken(): void;
  addOutputTokens(n: number): void;
  /**
   * Token counts by kind; a kind not given keeps its count. `inputTokens` counts every
   * prompt token (the cache's included), `outputTokens` every completion token
   * (reasoning included).
   */
  setUsage(usage: TokenUsage): void;
}

/** One LLM call's tokens, by kind, as the provider reports them. */
export interface TokenUsage {
  inputTokens?: number;
  outputTokens?: number;
  cacheReadInputTokens?: number;
  cacheWriteInputTokens?: number;
  reasoningOutputTokens?: number;
}

/** Dollars per million tokens, by token kind. */
export type ModelPrices = Partial<Record<'input' | 'cache_read' | 'cache_write' | 'output' | 'reasoning', number>>;

/** An LLM pricing table: `{ models: { [model]: ModelPrices } }`. */
export interface LlmPricing {
  models: Record<string, ModelPrices>;
}

export class HttpRequest extends Stage {
  setRoute(template: string): void;
  finish(status: number): number;
}

/** A Redis command or an embedding-cache lookup. */
export class CacheCall extends Stage {
  /** Ends a read as a hit. */
  hit(): void;
  /** Ends a read as a miss. */
  miss(): void;
  /** Ends a read as a hit when `found`; returns `found`. */
  lookup(found: boolean): boolean;
  /** Ends the call with a result. */
  finish(result?: CacheResultName): void;
}

/** One document's ingestion. */
export class DocumentJob extends Stage {
  /** The chunks the document was split into (counted when it succeeds). */
  setChunks(n: number): void;
}

/** An open WebSocket connection, counted until closed. */
export class WebSocketConnection implements Disposable {
  readonly closed: boolean;
  inbound(): void;
  outbound(): void;
  close(): void;
  [Symbol.dispose](): void;
}

export type CacheName = 'redis' | 'embedding';
export type CacheOperationName = 'get' | 'set' | 'delete';
export type CacheResultName = 'hit' | 'miss' | 'ok' | 'error';
export type DbOperationName = 'select' | 'insert' | 'update' | 'delete' | 'upsert' | 'transaction' | 'other';

export interface Embeddings {
  start(parent?: ParentLike): Stage;
  generate<T>(fn: (stage: Stage) => T | Promise<T>, parent?: ParentLike): Promise<T>;
  addGenerated(n: number): void;
  cacheLookup(hit: boolean): boolean;
  startCacheLookup(parent?: ParentLike): CacheCall;
}

export interface VectorStore {
  start(parent?: ParentLike): Stage;
  search<T>(fn: (stage: Stage) => T | Promise<T>, parent?: ParentLike): Promise<T>;
  setDocuments(n: number): void;
}

export interface Redis {
  startCommand(command: string, parent?: ParentLike): CacheCall;
  command<T>(command: string, fn: (call: CacheCall) => T | Promise<T>, parent?: ParentLike): Promise<T>;
  lookup(hit: boolean): boolean;
  setMemory(usedBytes: number, maxBytes: number): void;
}

export interface Cache {
  record(cache: CacheName, operation: CacheOperationName, result: CacheResultName): void;
}

export interface Database {
  start(operation: DbOperationName, options?: { summary?: string; parent?: ParentLike }): Stage;
  query<T>(operation: DbOperationName, fn: (stage: Stage) => T | Promise<T>, options?: { summary?: string; parent?: ParentLike }): Promise<T>;
  setPool(active: number, max: number): void;
}

export interface Documents {
  start(parent?: ParentLike): DocumentJob;
  ingest<T>(fn: (job: DocumentJob) => T | Promise<T>, parent?: ParentLike): Promise<T>;
  setQueueLength(n: number): void;
}

export interface WebSocketMetrics {
  connectionOpened(): WebSocketConnection;
  message(direction: 'inbound' | 'outbound'): void;
}

export type RagPhaseName = 'retrieval' | 'rerank' | 'generation';

export interface Rag {
  start(parent?: ParentLike): RagQuery;
  query<T>(fn: (query: RagQuery) => T | Promise<T>, parent?: ParentLike): Promise<T>;
  startPhase(name: RagPhaseName, parent?: ParentLike): Phase;
  phase<T>(name: RagPhaseName, fn: (phase: Phase) => T | Promise<T>, parent?: ParentLike): Promise<T>;
}

export interface Llm {
  start(model: string, parent?: ParentLike): LlmCall;
  call<T>(model: string, fn: (call: LlmCall) => T | Promise<T>, parent?: ParentLike): Promise<T>;
  stream<C>(
    model: string,
    chunks: AsyncIterable<C> | Iterable<C>,
    options?: { tokens?: (chunk: C) => number; parent?: ParentLike },
  ): AsyncGenerator<C, void, undefined>;
}

/**
 * The core's HTTP server rules for a framework adapter, in two native calls per request.
 */
export class HttpAdapter {
  /** A request's id, or 0 when `path` is excluded (not recorded). */
  start(method: string, path: string, traceparent?: string): number;
  /** The request as a stage, to run the handlers under it. */
  stage(id: number): HttpRequest;
  run<T>(stage: HttpRequest, fn: () => T): T;
  /** Ends the request: the matched template, and its status or the client gone first. */
  end(id: number, template: string | undefined, status: number, abandoned?: boolean): number;
}

export interface Http {
  routeId(template: string): number;
  start(method: string, path: string, traceparent?: string): HttpRequest;
  /** The core's server rules for a framework adapter; `exclude` replaces DEFAULT_EXCLUDED_PATHS. */
  adapter(options?: { exclude?: string[] }): HttpAdapter;
}

export type WebVitalName = 'LCP' | 'INP' | 'CLS' | 'FCP' | 'TTFB';

export interface WebVitalReport {
  name: WebVitalName;
  /** Milliseconds (CLS: its score). */
  value: number;
  /** The page's route template, e.g. `/chat/:id`. */
  route: string;
  navigationType?: 'navigate' | 'reload' | 'back-forward' | 'back-forward-cache' | 'prerender' | 'restore';
}

export interface WebVitals {
  /** null when recorded, else why it was rejected (and counted). */
  record(report: WebVitalReport): string | null;
  /** A whole beacon body: the status to answer and the reports recorded. */
  beacon(body: Buffer | string, routes?: string[]): { status: number; recorded: number };
  reject(reason: string): string;
}

export type LabelValues<L extends string> = Partial<Record<L, string | number>>;

export interface FamilyConfiguration<L extends string> {
  name: string;
  help: string;
  labelNames?: readonly L[];
}

export interface HistogramConfiguration<L extends string> extends FamilyConfiguration<L> {
  /** Classic bucket bounds (DEFAULT_BUCKETS when absent, unless `native` is set: then none). */
  buckets?: number[];
  /**
   * Native (exponential) buckets, read by a Prometheus that scrapes native histograms:
   * true (the core's default schema, 3) or a schema from -4 to 8.
   */
  native?: boolean | number;
}

declare class Family<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly L[];
  get(labels?: LabelValues<L>): number;
}

export class Counter<L extends string = string> extends Family<L> {
  constructor(configuration: FamilyConfiguration<L>);
  inc(value?: number): void;
  inc(labels: LabelValues<L>, value?: number): void;
  labels(...values: Array<string | number>): { readonly id: number; inc(value?: number): void };
  labels(labels: LabelValues<L>): { readonly id: number; inc(value?: number): void };
}

export interface GaugeChild {
  readonly id: number;
  set(value: number): void;
  inc(value?: number): void;
  dec(value?: number): void;
}

export class Gauge<L extends string = string> extends Family<L> {
  constructor(configuration: FamilyConfiguration<L>);
  set(value: number): void;
  set(labels: LabelValues<L>, value: number): void;
  inc(value?: number): void;
  inc(labels: LabelValues<L>, value?: number): void;
  dec(value?: number): void;
  dec(labels: LabelValues<L>, value?: number): void;
  labels(...values: Array<string | number>): GaugeChild;
  labels(labels: LabelValues<L>): GaugeChild;
}

export class Histogram<L extends string = string> extends Family<L> {
  constructor(configuration: HistogramConfiguration<L>);
  observe(value: number): void;
  observe(labels: LabelValues<L>, value: number): void;
  startTimer(labels?: LabelValues<L>): () => number;
  labels(...values: Array<string | number>): { readonly id: number; observe(value: number): void };
  labels(labels: LabelValues<L>): { readonly id: number; observe(value: number): void };
}

export interface MetricsServer {
  readonly address: string;
  readonly port: number;
  close(): Promise<void>;
}

export class Telemetry {
  constructor(options?: TelemetryOptions);
  readonly tracingEnabled: boolean;
  readonly warnings: string[];
  readonly serviceName: string | undefined;
  /** The multi-process directory shared with the service's other workers, if any. */
  readonly multiprocDir: string | undefined;
  readonly rag: Rag;
  readonly llm: Llm;
  readonly http: Http;
  readonly embeddings: Embeddings;
  readonly vectorStore: VectorStore;
  readonly redis: Redis;
  readonly cache: Cache;
  readonly db: Database;
  readonly documents: Documents;
  readonly websocket: WebSocketMetrics;
  readonly webVitals: WebVitals;
  readonly Counter: typeof Counter;
  readonly Gauge: typeof Gauge;
  readonly Histogram: typeof Histogram;
  /** Replaces the LLM pricing table (a JSON file's path, or the table). */
  setLlmPricing(pricing: string | LlmPricing): void;
  /** The text exposition (`format` 'protobuf' is refused: it is binary). */
  metrics(options?: { openMetrics?: boolean; format?: ExpositionFormat }): Promise<string>;
  /** The exposition in any format, protobuf (native histograms) included. */
  metricsBuffer(options?: { openMetrics?: boolean; format?: ExpositionFormat }): Promise<Buffer>;
  metricsSync(options?: { openMetrics?: boolean; format?: ExpositionFormat }): string;
  /** The Content-Type for an Accept header, by the core's negotiation. */
  static contentType(accept: string | undefined): string;
  /** The format an Accept header asks for. */
  static formatFor(accept: string | undefined): ExpositionFormat;
  /** The Content-Type of a format. */
  static contentTypeOf(format: ExpositionFormat): string;
  serve(options?: { host?: string; port?: number }): Promise<MetricsServer>;
  currentStage(): Stage | undefined;
  withStage<T>(stage: Stage, fn: () => T): T;
  traceHeaders(): { traceparent?: string };
  fetch(input: string | URL | Request, init?: RequestInit): Promise<Response>;
  recordError(component: string, err: unknown): void;
  setAppInfo(info: { version?: string; environment?: string; model?: string }): void;
  tracingStats(): { exported: number; dropped: number } | undefined;
  shutdown(options?: { timeoutMs?: number }): Promise<void>;
}

export const WEB_VITALS: readonly WebVitalName[];
/** The core's Web Vitals names and beacon limits. */
export const WEB_VITALS_LIMITS: Readonly<{ names: string[]; maxBeaconBytes: number; maxBeaconReports: number }>;
export const PROMETHEUS_CONTENT_TYPE: string;
export const OPENMETRICS_CONTENT_TYPE: string;
/** The Content-Type of the protobuf exposition (native histograms). */
export const PROTOBUF_CONTENT_TYPE: string;
/** An exposition format's name. */
export type ExpositionFormat = 'prometheus' | 'openmetrics' | 'protobuf';
/** The formats the core renders. */
export const FORMATS: readonly ExpositionFormat[];
export function openStages(): number;
/** The variable naming the multi-process directory when the options do not. */
export const MULTIPROC_DIR_ENV: 'TARS_TELEMETRY_MULTIPROC_DIR';
/**
 * The paths the Express and Fastify adapters leave unrecorded by default (the scrape and the
 * probes), each with everything below it: the core's list and matching rule.
 */
export const DEFAULT_EXCLUDED_PATHS: readonly string[];
/** The buckets of a histogram created without any (the core's, as prom-client's). */
export const DEFAULT_BUCKETS: readonly number[];
/** Set to "1", workers accept a multi-process directory other users can write to (refused otherwise). */
export const MULTIPROC_ALLOW_SHARED_ENV: 'TARS_TELEMETRY_MULTIPROC_ALLOW_SHARED';
/**
 * Renders a multi-process directory from any process: every worker's series merged, off
 * the main thread. Rejects with code ERR_TARS_MULTIPROCESS_UNAVAILABLE when the directory
 * cannot be read.
 */
export function renderMultiprocessDir(dir: string, options?: { openMetrics?: boolean }): Promise<string>;
/** As renderMultiprocessDir, as a Buffer in any format (protobuf: native histograms). */
export function renderMultiprocessDirBuffer(dir: string, options?: { openMetrics?: boolean; format?: ExpositionFormat }): Promise<Buffer>;

/** What a render of a multi-process directory could not use. */
export interface MultiprocessWarning {
  /** The file (or the directory, for a fold that failed). */
  path: string;
  event: 'file_skipped' | 'records_dropped' | 'archive_replaced' | 'dead_file_set_aside' | 'fold_failed';
  reason:
    | 'not_a_regular_file'
    | 'not_ours'
    | 'layout'
    | 'catalog'
    | 'truncated'
    | 'corrupt'
    | 'unwritable'
    | 'no_space'
    | 'io';
  /** The whole warning, in words. */
  message: string;
}

/**
 * As renderMultiprocessDir, and what the render could not use (also counted, by the
 * workers' own renders, in tars_telemetry_multiprocess_losses_total).
 */
export function renderMultiprocessDirReport(
  dir: string,
  options?: { openMetrics?: boolean },
): Promise<{ text: string; warnings: MultiprocessWarning[] }>;
