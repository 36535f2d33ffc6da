"""Type stubs of the extension module (the Rust core's bindings)."""

import os
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from types import ModuleType, TracebackType
from typing import Any, TypeVar, final

from typing_extensions import Self

class MultiprocessModeUnavailable(RuntimeError):
    """The multi-process directory cannot be used: a file in it of another layout or
    catalog (written by another version, still running), or a directory that cannot be
    created, written or locked. The message names the file or the directory; an operating
    system error is chained as the cause (with its errno)."""

def render_multiprocess_dir(path: str | os.PathLike[str], openmetrics: bool = False) -> str:
    """Every worker's series of the multi-process directory ``path``, merged (dead
    workers' counts folded into its archive first), as Prometheus text, or OpenMetrics
    when ``openmetrics`` is true. Renders with the GIL released. ``OSError`` when the
    directory cannot be read or locked."""

MULTIPROC_DIR_ENV: str
MULTIPROC_ALLOW_SHARED_ENV: str

@final
class MultiprocessWarning:
    """What a render of a multi-process directory could not use: a file skipped, records
    dropped, an archive replaced, a dead worker's file set aside, or a fold that failed.
    ``event`` and ``reason`` are the labels it is counted under in
    ``tars_telemetry_multiprocess_losses_total``."""

    @property
    def path(self) -> str: ...
    @property
    def event(self) -> str: ...
    @property
    def reason(self) -> str: ...
    @property
    def message(self) -> str: ...

def render_multiprocess_dir_as(
    path: str | os.PathLike[str], accept: str | None = None
) -> tuple[bytes, str]:
    """Every worker's series of the directory, merged, in the format ``accept`` asks for
    (protobuf for native histograms, OpenMetrics, or text), and its content type."""

def render_multiprocess_dir_report(
    path: str | os.PathLike[str], openmetrics: bool = False
) -> tuple[str, list[MultiprocessWarning]]:
    """As ``render_multiprocess_dir``, and what the render could not use:
    ``(text, warnings)``, empty ``warnings`` when every file was read whole."""

@final
class SpanContext:
    def __init__(
        self, trace_id: int, span_id: int, sampled: bool = True, is_remote: bool = True
    ) -> None: ...
    @staticmethod
    def from_traceparent(header: str) -> SpanContext | None: ...
    def traceparent(self) -> str: ...
    @property
    def trace_id(self) -> int: ...
    @property
    def span_id(self) -> int: ...
    @property
    def sampled(self) -> bool: ...
    @property
    def is_remote(self) -> bool: ...

def _configure_stages(
    current: ContextVar[SpanContext | None],
    otel: ModuleType,
    decorate: Callable[[Any, Any], Any],
) -> None:
    """Gives the stages the package's ContextVar of the current span context, its
    OpenTelemetry-Python module and its decorator function (once, at import)."""

def _join_opentelemetry() -> None:
    """From now on, stages join OpenTelemetry-Python's context."""

_F = TypeVar("_F", bound=Callable[..., Any])

class _Block:
    """Entered and left around a block of code; unentered, a decorator."""

    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None: ...
    def __aenter__(self) -> Awaitable[Self]: ...
    def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> Awaitable[None]: ...
    def __call__(self, fn: _F) -> _F:
        """Decorates ``fn``: a fresh block around each call."""
    def _fresh(self) -> Self: ...

class Stage(_Block):
    """The base of every stage (each kind implements the protocol declared here).

    A stage of work. ``with``/``async with`` it once: entering starts it under the
    current span context and makes its own current; the block's outcome ends it (success,
    a failure with the exception's type, or ``cancelled``). Unentered, it decorates a
    sync, async, generator or async-generator function (a fresh stage per call)."""

    def span_context(self) -> SpanContext | None:
        """The stage's span context, when it is traced."""
    def record_error(self, error_type: str) -> None:
        """Marks the stage's span with an error type, without ending it
        (``RuntimeError`` before the stage is entered)."""
    def abandon(self, error_type: str = "cancelled") -> None:
        """Ends the stage now as abandoned."""
    @property
    def ended(self) -> bool:
        """Whether the stage was entered and has ended."""
    def elapsed(self) -> float:
        """Seconds since the stage started (0 before it starts and once it has ended)."""

@final
class TimedStage(Stage):
    """A timed stage (a RAG phase, embeddings, a vector search, a database query)."""

@final
class RagQueryStage(Stage):
    """One RAG query: phases under it, sources and relevance on it."""

    def phase(self, phase: str) -> TimedStage:
        """A phase of this query: ``retrieval``, ``rerank`` or ``generation``."""
    def set_sources(self, n: int) -> None:
        """The number of sources the answer used."""
    def set_relevance(self, score: float) -> None:
        """The relevance score of the best source."""

@final
class LlmStage(Stage):
    """One call to a model, streamed or not."""

    def first_token(self) -> None:
        """The first token arrived (later calls do nothing)."""
    def set_input_tokens(self, n: int) -> None:
        """The prompt's token count."""
    def add_output_tokens(self, n: int = 1) -> None:
        """Adds streamed output tokens."""
    def set_output_tokens(self, n: int) -> None:
        """Sets the output token count."""
    def set_usage(
        self,
        *,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cache_read_input_tokens: int | None = None,
        cache_write_input_tokens: int | None = None,
        reasoning_output_tokens: int | None = None,
    ) -> None:
        """The call's token usage by kind: ``input_tokens`` every prompt token (the
        cache's included), ``output_tokens`` every completion token (reasoning
        included); a kind not given keeps its count, a negative one is ignored."""

@final
class CacheStage(Stage):
    """A cache call: a Redis command or an embedding-cache lookup. Ends ``ok`` unless a
    result was given (``hit()``, ``miss()``, ``result(...)``)."""

    def hit(self) -> None:
        """Ends the call as a hit."""
    def miss(self) -> None:
        """Ends the call as a miss."""
    def lookup(self, found: bool) -> bool:
        """Ends the call as a hit or a miss; returns ``found``."""
    def result(self, result: str) -> None:
        """Ends the call with ``hit``, ``miss``, ``ok`` or ``error``."""

@final
class DocumentStage(Stage):
    """One document being ingested; ``set_chunks(n)`` before the block ends."""

    def set_chunks(self, n: int) -> None:
        """The number of chunks the document made."""

@final
class Rag:
    """RAG queries and their phases."""

    def query(self) -> RagQueryStage:
        """A RAG query: ``with tel.rag.query() as q:`` (or ``async with``, or a decorator)."""
    def phase(self, phase: str) -> TimedStage:
        """A phase (``retrieval``, ``rerank``, ``generation``) under the current stage."""

@final
class LlmModel:
    """A model's handle (its label resolved once): ``with handle.call() as call:``."""

    @property
    def name(self) -> str: ...
    def call(self) -> LlmStage:
        """One call to the model, under the current stage."""
    def tokens_generated(self) -> int:
        """Output tokens generated by this model so far."""

@final
class Embeddings:
    """Embedding generation and the embedding cache."""

    def generate(self) -> TimedStage:
        """Generating embeddings."""
    def cache_lookup(self) -> CacheStage:
        """An embedding-cache lookup: end it with ``hit()`` or ``miss()``."""
    def add_generated(self, count: int) -> None:
        """Counts embeddings generated outside a stage."""

@final
class VectorStore:
    """Vector searches and the store's size."""

    def search(self) -> TimedStage:
        """A vector search."""
    def set_documents(self, count: int) -> None:
        """The number of documents in the store."""

@final
class Redis:
    """Redis commands and memory."""

    def command(self, command: str) -> CacheStage:
        """A Redis command (``GET``, ``SET``, ...): end a lookup with ``hit()``/``miss()``."""
    def set_memory(self, used_bytes: int, max_bytes: int) -> None:
        """Redis memory use and its limit, in bytes."""

WEB_VITALS: tuple[str, ...]
WEB_VITALS_MAX_BEACON_BYTES: int
WEB_VITALS_MAX_BEACON_REPORTS: int

@final
class WebVitals:
    """Browsers' Web Vitals (LCP, INP, CLS, FCP, TTFB), by route template and navigation
    type, checked by the core."""

    def record(
        self, name: str, value: float, route: str, navigation_type: str = "navigate"
    ) -> str | None:
        """Records one report (milliseconds; CLS its score): None when recorded, else
        why it was refused (and counted)."""
    def beacon(self, body: bytes, routes: list[str] | None = None) -> tuple[int, int]:
        """A whole beacon body: (the status to answer, the reports recorded)."""
    def reject(self, reason: str) -> None:
        """Counts a beacon refused before its body was read."""

@final
class Cache:
    """The service's caches (``redis``, ``embedding``): operations by result."""

    def record(self, cache: str, operation: str, result: str) -> None:
        """Counts one operation: ``record("redis", "set", "ok")``."""
    def count(self, cache: str, operation: str, result: str) -> int:
        """Operations counted for one cache, operation and result."""

@final
class Database:
    """Database queries and the connection pool."""

    def query(self, operation: str, summary: str | None = None) -> TimedStage:
        """A query: ``select``, ``insert``, ``update``, ``delete``, ``upsert``,
        ``transaction`` or ``other``; ``summary`` (low cardinality) names its span."""
    def set_pool(self, active: int, max_size: int) -> None:
        """Connections in use and the pool's size."""

@final
class Documents:
    """Document ingestion."""

    def ingest(self) -> DocumentStage:
        """Ingesting one document."""
    def set_queue_length(self, n: int) -> None:
        """The number of documents waiting to be ingested."""

DEFAULT_BUCKETS: tuple[float, ...]
HTTP_DEFAULT_EXCLUDED_PATHS: tuple[str, ...]
HTTP_MAX_SPAN_PATH: int
HTTP_ABANDON_CANCELLED: str
HTTP_ABANDON_CLIENT_DISCONNECTED: str

@final
class ExcludedPaths:
    """The paths a server middleware leaves unrecorded: each excludes itself and everything
    below it (the core's rule). No argument: the core's defaults."""

    def __init__(self, paths: list[str] | None = None) -> None: ...
    def contains(self, path: str) -> bool: ...
    def __contains__(self, path: str) -> bool: ...
    @property
    def paths(self) -> list[str]: ...

@final
class HttpRoute:
    @property
    def template(self) -> str: ...

@final
class HttpRequest:
    def span_context(self) -> SpanContext | None: ...
    def set_trace(self, span: SpanContext) -> None: ...
    def record_error(self, error_type: str) -> None: ...
    def abandon(self, error_type: str = "cancelled") -> None: ...
    @property
    def ended(self) -> bool: ...
    def elapsed(self) -> float: ...
    def set_route(self, route: HttpRoute) -> None: ...
    @property
    def route(self) -> str | None: ...
    def finish(self, status: int) -> float: ...

@final
class Counter:
    def inc(self, amount: float = 1.0) -> None: ...
    def get(self) -> float: ...

@final
class CounterFamily:
    def labels(self, *args: str, **kwargs: str) -> Counter: ...
    def inc(self, amount: float = 1.0) -> None: ...
    @property
    def name(self) -> str: ...

@final
class HistogramTimer(_Block):
    """A block timed into a histogram, in seconds (``Histogram.time()``)."""

@final
class InProgress(_Block):
    """A block counted in a gauge while it runs (``Gauge.track_inprogress()``)."""

@final
class Gauge:
    def set(self, value: float) -> None: ...
    def inc(self, amount: float = 1.0) -> None: ...
    def dec(self, amount: float = 1.0) -> None: ...
    def get(self) -> float: ...
    def track_inprogress(self) -> InProgress:
        """+1 while a block runs (``with``, ``async with`` or a decorator)."""

@final
class GaugeFamily:
    def labels(self, *args: str, **kwargs: str) -> Gauge: ...
    def set(self, value: float) -> None: ...
    def inc(self, amount: float = 1.0) -> None: ...
    def dec(self, amount: float = 1.0) -> None: ...
    def track_inprogress(self) -> InProgress: ...

@final
class Histogram:
    def observe(self, value: float) -> None: ...
    def count(self) -> int: ...
    def sum(self) -> float: ...
    def time(self) -> HistogramTimer:
        """Times a block (``with``, ``async with`` or a decorator), in seconds."""

@final
class HistogramFamily:
    def labels(self, *args: str, **kwargs: str) -> Histogram: ...
    def observe(self, value: float) -> None: ...
    def time(self) -> HistogramTimer: ...

@final
class MetricsServer:
    @property
    def port(self) -> int: ...
    @property
    def host(self) -> str: ...
    def shutdown(self) -> None: ...

@final
class Native:
    def __init__(
        self,
        series_budget: int | None = None,
        multiproc_dir: str | os.PathLike[str] | None = None,
    ) -> None: ...
    def render(self, accept: str | None = None) -> tuple[bytes, str]: ...
    def set_llm_pricing_json(self, text: str) -> None: ...
    def set_llm_pricing_file(self, path: str | os.PathLike[str]) -> None: ...
    def set_llm_pricing_from_env(self) -> bool: ...
    def serve(self, addr: str) -> MetricsServer: ...
    def install_tracing(
        self,
        service_name: str | None = None,
        endpoint: str | None = None,
        protocol: str | None = None,
    ) -> None: ...
    def tracing_installed(self) -> bool: ...
    def force_flush(self) -> None: ...
    def shutdown_tracing(self, timeout: float = 5.0) -> None: ...
    def exported_spans(self) -> int: ...
    def before_fork(self) -> None: ...
    def after_fork_in_parent(self) -> None: ...
    def after_fork_in_child(self) -> None: ...
    def rag(self) -> Rag: ...
    def llm_model(self, model: str) -> LlmModel: ...
    def embeddings(self) -> Embeddings: ...
    def vector_store(self) -> VectorStore: ...
    def db(self) -> Database: ...
    def redis(self) -> Redis: ...
    def cache(self) -> Cache: ...
    def web_vitals(self) -> WebVitals: ...
    def documents(self) -> Documents: ...
    def websocket_message(self, direction: str) -> None: ...
    def websocket_active(self, delta: float) -> None: ...
    def record_error(self, component: str, error_type: str) -> None: ...
    def set_app_info(self, version: str, environment: str, model: str) -> None: ...
    def http_start(
        self, method: str, path: str, parent: SpanContext | None = None
    ) -> HttpRequest: ...
    def http_route(self, template: str) -> HttpRoute: ...
    def counter(
        self, name: str, documentation: str, labelnames: list[str] = ...
    ) -> CounterFamily: ...
    def gauge(self, name: str, documentation: str, labelnames: list[str] = ...) -> GaugeFamily: ...
    def histogram(
        self,
        name: str,
        documentation: str,
        labelnames: list[str],
        buckets: list[float] | None,
        native: bool | int | None = None,
    ) -> HistogramFamily: ...
