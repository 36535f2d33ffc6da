"""tars-telemetry for Python: the platform's metric families and spans, recorded by the
Rust core (atomics only), for FastAPI and other ASGI services.

    from tars_telemetry import Telemetry
    tel = Telemetry(service_name="tars-backend")

    with tel.rag.query() as q:
        with q.phase("retrieval"):
            ...
        async with tel.llm("llama3:8b").call() as call:
            call.first_token()
            call.add_output_tokens(128)

See ``tars_telemetry.asgi`` for the middleware and the /metrics app.
"""

from __future__ import annotations

import atexit
import json
import os
import weakref
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from . import _native, _otel
from ._native import (
    DEFAULT_BUCKETS,
    MULTIPROC_ALLOW_SHARED_ENV,
    MULTIPROC_DIR_ENV,
    Cache,
    Counter,
    CounterFamily,
    Database,
    Documents,
    Embeddings,
    Gauge,
    GaugeFamily,
    Histogram,
    HistogramFamily,
    HistogramTimer,
    InProgress,
    LlmModel,
    MetricsServer,
    MultiprocessModeUnavailable,
    MultiprocessWarning,
    Rag,
    Redis,
    SpanContext,
    VectorStore,
    WebVitals,
    render_multiprocess_dir,
    render_multiprocess_dir_as,
    render_multiprocess_dir_report,
)
from ._stages import (
    CacheStage,
    DocumentStage,
    LlmStage,
    RagQueryStage,
    Stage,
    TimedStage,
    current_span_context,
    error_type,
)

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "DEFAULT_BUCKETS",
    "MULTIPROC_ALLOW_SHARED_ENV",
    "MULTIPROC_DIR_ENV",
    "Cache",
    "CacheStage",
    "Counter",
    "CounterFamily",
    "Database",
    "DocumentStage",
    "Documents",
    "Embeddings",
    "Gauge",
    "GaugeFamily",
    "Histogram",
    "HistogramFamily",
    "HistogramTimer",
    "InProgress",
    "LlmModel",
    "LlmStage",
    "MetricsServer",
    "MultiprocessModeUnavailable",
    "MultiprocessWarning",
    "Rag",
    "RagQueryStage",
    "Redis",
    "SpanContext",
    "Stage",
    "Telemetry",
    "TimedStage",
    "VectorStore",
    "WebVitals",
    "current_span_context",
    "error_type",
    "render_multiprocess_dir",
    "render_multiprocess_dir_as",
    "render_multiprocess_dir_report",
]

# MULTIPROC_DIR_ENV: the environment variable naming the multi-process directory, read by
# ``Telemetry()`` when it is given no ``multiproc_dir=`` (empty or unset: single-process).
# MULTIPROC_ALLOW_SHARED_ENV: set to "1", workers accept a directory other users can write
# to (refused otherwise). Both names come from the core.


def _traces_wanted(endpoint: str | None) -> bool:
    env = os.environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if env.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return False
    return bool(
        endpoint
        or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
        or env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    )


class WebSocketConnection:
    """An open WebSocket connection (counted while the block runs)."""

    __slots__ = ("_n",)

    def __init__(self, native: _native.Native) -> None:
        self._n = native

    def __enter__(self) -> Self:
        self._n.websocket_active(1.0)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._n.websocket_active(-1.0)

    async def __aenter__(self) -> Self:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def inbound(self) -> None:
        """A message received."""
        self._n.websocket_message("inbound")

    def outbound(self) -> None:
        """A message sent."""
        self._n.websocket_message("outbound")


class WebSocket:
    """WebSocket connections and messages."""

    __slots__ = ("_n",)

    def __init__(self, native: _native.Native) -> None:
        self._n = native

    def connection(self) -> WebSocketConnection:
        return WebSocketConnection(self._n)

    def message(self, direction: str) -> None:
        """``inbound`` or ``outbound``."""
        self._n.websocket_message(direction)


class Errors:
    """Errors by component and type."""

    __slots__ = ("_n",)

    def __init__(self, native: _native.Native) -> None:
        self._n = native

    def record(self, component: str, error: str | BaseException) -> None:
        """Counts an error of ``component`` (``rag``, ``llm``, ``embedding``,
        ``vector_store``, ``redis``, ``database``, ``http``, ``websocket``, ``documents``,
        ``auth``, ``other``); an exception counts by its type."""
        if isinstance(error, BaseException):
            error = error_type(type(error))
        self._n.record_error(component, error)


def _fork_hooks(native: _native.Native) -> None:
    # A weak reference: a telemetry that is gone leaves a hook that does nothing.
    ref = weakref.ref(native)

    def call(name: str) -> Callable[[], None]:
        def hook() -> None:
            n = ref()
            if n is not None:
                getattr(n, name)()

        return hook

    os.register_at_fork(
        before=call("before_fork"),
        after_in_parent=call("after_fork_in_parent"),
        after_in_child=call("after_fork_in_child"),
    )


class Telemetry:
    """The service's telemetry: every family the dashboards and alerts expect, and spans
    exported over OTLP when an endpoint is configured (``OTEL_EXPORTER_OTLP_ENDPOINT``, or
    ``otlp_endpoint=``; ``traces=False`` turns them off).

    Keyword options: ``series_budget`` (series per family), ``traces``,
    ``otlp_endpoint``, ``otlp_protocol`` (``grpc`` or ``http/protobuf``), ``join_opentelemetry``
    (share OpenTelemetry-Python's context both ways), ``multiproc_dir``. ``OTEL_*`` are read
    from the environment. Safe across ``fork()`` (gunicorn ``--preload``): a child starts
    from zero and re-creates its span export.

    Multi-process mode: with ``multiproc_dir`` (or, when it is None, the environment
    variable ``TARS_TELEMETRY_MULTIPROC_DIR``; empty means off), every worker process of
    the service (gunicorn, ``uvicorn --workers``) records into its own memory-mapped file
    of that directory, and any worker's /metrics serves the merged counts of all of them;
    dead workers' counts are kept. Give each service a directory of its own (an
    ``emptyDir``). ``MultiprocessModeUnavailable`` when the directory cannot be used (a
    file of another version's workers still running, or a directory that cannot be
    created or locked).
    """

    def __init__(
        self,
        service_name: str | None = None,
        *,
        series_budget: int | None = None,
        traces: bool | None = None,
        otlp_endpoint: str | None = None,
        otlp_protocol: str | None = None,
        join_opentelemetry: bool = False,
        multiproc_dir: str | os.PathLike[str] | None = None,
        llm_pricing: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    ) -> None:
        if service_name is not None and not isinstance(service_name, str):
            raise TypeError("service_name must be a str")
        if multiproc_dir is None:
            multiproc_dir = os.environ.get(MULTIPROC_DIR_ENV, "")
        directory = os.fspath(multiproc_dir)
        # The directory this telemetry shares with the service's other workers, or None.
        self.multiproc_dir: str | None = directory if directory.strip() else None
        self._n = _native.Native(series_budget, self.multiproc_dir)
        # A bad pricing table fails here, at start, never while recording.
        if llm_pricing is None:
            self._n.set_llm_pricing_from_env()
        else:
            self.set_llm_pricing(llm_pricing)
        self.service_name = (
            service_name or os.environ.get("OTEL_SERVICE_NAME") or ("unknown_service")
        )
        want = _traces_wanted(otlp_endpoint) if traces is None else traces
        if want:
            self._n.install_tracing(service_name, otlp_endpoint, otlp_protocol)
            atexit.register(_shutdown_at_exit, weakref.ref(self._n))
        if join_opentelemetry:
            _otel.join()
        _fork_hooks(self._n)
        self._models: dict[str, LlmModel] = {}
        # Native: a stage is made by one native call (tel.vector_store.search()).
        self.rag: Rag = self._n.rag()
        self.embeddings: Embeddings = self._n.embeddings()
        self.vector_store: VectorStore = self._n.vector_store()
        self.redis: Redis = self._n.redis()
        self.cache: Cache = self._n.cache()
        self.web_vitals: WebVitals = self._n.web_vitals()
        self.db: Database = self._n.db()
        self.documents: Documents = self._n.documents()
        self.websocket = WebSocket(self._n)
        self.errors = Errors(self._n)

    @property
    def native(self) -> _native.Native:
        """The core's telemetry (the middleware's way in)."""
        return self._n

    def set_llm_pricing(self, pricing: str | os.PathLike[str] | Mapping[str, Any]) -> None:
        """Replaces the LLM pricing table: a JSON file's path, or the table itself
        (``{"models": {"llama3:8b": {"input": 0.05, "output": 0.08}}}``, dollars per
        million tokens by kind: ``input``, ``cache_read``, ``cache_write``, ``output``,
        ``reasoning``). A model or kind without a price is counted as unpriced, never as
        free. ``ValueError`` (``OSError`` for an unreadable file) naming what is wrong."""
        if isinstance(pricing, Mapping):
            self._n.set_llm_pricing_json(json.dumps(pricing))
        else:
            self._n.set_llm_pricing_file(os.fspath(pricing))

    def llm(self, model: str) -> LlmModel:
        """The handle of a model (``llama3:8b``), resolved once and kept."""
        m = self._models.get(model)
        if m is None:
            m = self._n.llm_model(model)
            if len(self._models) < 1024:
                self._models[model] = m
        return m

    def counter(
        self, name: str, documentation: str, labelnames: list[str] | tuple[str, ...] = ()
    ) -> CounterFamily:
        """A counter family of the service's own (``_total`` appended when missing)."""
        return self._n.counter(name, documentation, list(labelnames))

    def gauge(
        self, name: str, documentation: str, labelnames: list[str] | tuple[str, ...] = ()
    ) -> GaugeFamily:
        """A gauge family of the service's own."""
        return self._n.gauge(name, documentation, list(labelnames))

    def histogram(
        self,
        name: str,
        documentation: str,
        labelnames: list[str] | tuple[str, ...] = (),
        buckets: list[float] | tuple[float, ...] | None = None,
        native: bool | int = False,
    ) -> HistogramFamily:
        """A histogram family of the service's own, with these bucket upper bounds
        (``DEFAULT_BUCKETS``, the core's, when none are given).

        ``native=True`` (or a schema, -4 to 8; True is the core's default, 3) adds native
        (exponential) buckets, which a Prometheus that scrapes native histograms reads
        through the protobuf exposition; with ``native`` set and no ``buckets`` the family is
        native only (the text formats then show its count and sum)."""
        return self._n.histogram(
            name,
            documentation,
            list(labelnames),
            None if buckets is None else list(buckets),
            native,
        )

    def set_app_info(self, version: str, environment: str, model: str) -> None:
        """Sets the application's info series."""
        self._n.set_app_info(version, environment, model)

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """The exposition the ``Accept`` header asks for (OpenMetrics or Prometheus
        text) and its content type; rendered with the GIL released."""
        return self._n.render(accept)

    def serve(self, addr: str = "127.0.0.1:9464") -> MetricsServer:
        """Starts the core's own /metrics server (``OSError`` when the address is taken)."""
        return self._n.serve(addr)

    def current_span_context(self) -> SpanContext | None:
        """The span context new stages start under."""
        return current_span_context()

    @property
    def tracing(self) -> bool:
        """Whether spans are exported."""
        return self._n.tracing_installed()

    def force_flush(self) -> None:
        """Exports the queued spans now."""
        self._n.force_flush()

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stops span export, sending what is queued within ``timeout`` seconds."""
        self._n.shutdown_tracing(timeout)


def _shutdown_at_exit(ref: weakref.ref[_native.Native]) -> None:
    n = ref()
    if n is not None:
        try:
            n.shutdown_tracing(2.0)
        except RuntimeError:
            pass
