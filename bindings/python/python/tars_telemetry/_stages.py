"""Stages: context managers (sync and async) and decorators over the core's guards.

The current stage's span context lives in a ContextVar and is passed to the core
explicitly, so stages nest correctly across ``await`` and between interleaved tasks.
Every stage ends by an explicit call when its block ends: success, a failure with the
exception's type, or ``cancelled`` for ``asyncio.CancelledError``; nothing relies on
garbage collection.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from contextvars import ContextVar, Token
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, cast

from . import _native, _otel
from ._native import SpanContext

if TYPE_CHECKING:
    from typing_extensions import Self

_current: ContextVar[SpanContext | None] = ContextVar("tars_telemetry_stage", default=None)

F = TypeVar("F", bound=Callable[..., Any])


class _Guard(Protocol):
    def span_context(self) -> SpanContext | None: ...
    def set_trace(self, span: SpanContext) -> None: ...
    def record_error(self, error_type: str) -> None: ...
    def abandon(self, error_type: str = "cancelled") -> None: ...


G = TypeVar("G", bound=_Guard)


def current_span_context() -> SpanContext | None:
    """The span context new stages start under: the current stage's (or, when joined,
    OpenTelemetry-Python's current span)."""
    if _otel.joined():
        return _otel.current()
    return _current.get()


def error_type(exc_type: type[BaseException]) -> str:
    """The ``error.type`` of an exception: its class's qualified name."""
    return exc_type.__qualname__


def _cancelled(exc_type: type[BaseException]) -> bool:
    return issubclass(exc_type, (asyncio.CancelledError, GeneratorExit, KeyboardInterrupt))


class Stage(Generic[G]):
    """A stage of work. ``with``/``async with`` it once; unentered, it decorates a sync,
    async or async-generator function (a fresh stage per call)."""

    __slots__ = ("_args", "_guard", "_otel_token", "_start", "_token")

    def __init__(self, start: Callable[..., G], *args: Any) -> None:
        # `start(*args, parent)` starts the guard: a native function and its arguments
        # rather than a closure, one call fewer on every stage.
        self._start = start
        self._args = args
        self._guard: G | None = None
        self._token: Token[SpanContext | None] | None = None
        self._otel_token: object | None = None

    # ---- the guard's life

    def _begin(self) -> None:
        if self._guard is not None:
            raise RuntimeError("a stage is entered once; make a new one for each use")
        # current_span_context(), inlined: this runs on every stage.
        joined = _otel.is_joined
        parent = _otel.current() if joined else _current.get()
        g = self._start(*self._args, parent)
        self._guard = g
        sc = g.span_context()
        if sc is not None:
            self._token = _current.set(sc)
            if joined:
                self._otel_token = _otel.attach(sc)
        elif parent is not None and joined:
            # No span of ours: the exemplars point at OpenTelemetry-Python's.
            g.set_trace(parent)

    def _finish(self, exc_type: type[BaseException] | None) -> None:
        g = self._guard
        if g is None:
            return
        if self._token is not None:
            token, self._token = self._token, None
            try:
                _current.reset(token)
            except ValueError:
                # Ended in another context (an async generator closed elsewhere).
                pass
        if self._otel_token is not None:
            _otel.detach(self._otel_token)
            self._otel_token = None
        if exc_type is None:
            self._succeed(g)
        elif _cancelled(exc_type):
            g.abandon("cancelled")
        else:
            self._fail(g, error_type(exc_type))

    def _succeed(self, g: G) -> None:
        raise NotImplementedError

    def _fail(self, g: G, error: str) -> None:
        raise NotImplementedError

    @property
    def guard(self) -> G:
        """The core's guard (started when the stage is entered)."""
        if self._guard is None:
            raise RuntimeError("the stage has not started: use it in a with block")
        return self._guard

    def span_context(self) -> SpanContext | None:
        """The stage's span context, when it is traced."""
        return None if self._guard is None else self._guard.span_context()

    def record_error(self, error: str) -> None:
        """Marks the stage's span with an error type, without ending it."""
        self.guard.record_error(error)

    def abandon(self, error: str = "cancelled") -> None:
        """Ends the stage now as abandoned."""
        self.guard.abandon(error)

    # ---- context managers

    def __enter__(self) -> Self:
        self._begin()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._finish(exc_type)

    async def __aenter__(self) -> Self:
        self._begin()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._finish(exc_type)

    # ---- decorator

    def _fresh(self) -> Self:
        return type(self)(self._start, *self._args)

    def __call__(self, fn: F) -> F:
        if inspect.isasyncgenfunction(fn):

            @functools.wraps(fn)
            async def agen(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
                async with self._fresh():
                    async for item in fn(*args, **kwargs):
                        yield item

            return cast(F, agen)
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def coro(*args: Any, **kwargs: Any) -> Any:
                async with self._fresh():
                    return await fn(*args, **kwargs)

            return cast(F, coro)
        if inspect.isgeneratorfunction(fn):

            @functools.wraps(fn)
            def gen(*args: Any, **kwargs: Any) -> Iterator[Any]:
                with self._fresh():
                    yield from fn(*args, **kwargs)

            return cast(F, gen)

        @functools.wraps(fn)
        def sync(*args: Any, **kwargs: Any) -> Any:
            with self._fresh():
                return fn(*args, **kwargs)

        return cast(F, sync)


class TimedStage(Stage[_native.Timer]):
    """A timed stage (a RAG phase, embeddings, a vector search, a database query)."""

    __slots__ = ()

    def _succeed(self, g: _native.Timer) -> None:
        g.stop()

    def _fail(self, g: _native.Timer, error: str) -> None:
        g.record_error(error)
        g.stop()


def _query_phase(q: _native.RagQuery, phase: str, _parent: SpanContext | None) -> _native.Timer:
    # A query's phase is parented by the query itself, whatever is current.
    return q.phase(phase)


class RagQueryStage(Stage[_native.RagQuery]):
    """One RAG query: phases under it, sources and relevance on it."""

    __slots__ = ()

    def phase(self, phase: str) -> TimedStage:
        """A phase of this query: ``retrieval``, ``rerank`` or ``generation``."""
        return TimedStage(_query_phase, self.guard, phase)

    def set_sources(self, n: int) -> None:
        """The number of sources the answer used."""
        self.guard.set_sources(n)

    def set_relevance(self, score: float) -> None:
        """The relevance score of the best source."""
        self.guard.set_relevance(score)

    def _succeed(self, g: _native.RagQuery) -> None:
        g.succeed()

    def _fail(self, g: _native.RagQuery, error: str) -> None:
        g.fail(error)


class LlmStage(Stage[_native.LlmCall]):
    """One call to a model, streamed or not."""

    __slots__ = ()

    def first_token(self) -> None:
        """The first token arrived (later calls do nothing)."""
        self.guard.first_token()

    def set_input_tokens(self, n: int) -> None:
        """The prompt's token count."""
        self.guard.set_input_tokens(n)

    def add_output_tokens(self, n: int = 1) -> None:
        """Adds streamed output tokens."""
        self.guard.add_output_tokens(n)

    def set_output_tokens(self, n: int) -> None:
        """Sets the output token count."""
        self.guard.set_output_tokens(n)

    def _succeed(self, g: _native.LlmCall) -> None:
        g.succeed()

    def _fail(self, g: _native.LlmCall, error: str) -> None:
        g.fail(error)


class CacheStage(Stage[_native.CacheCall]):
    """A cache call: a Redis command or an embedding-cache lookup. Ends ``ok`` unless a
    result was given (``hit()``, ``miss()``, ``result(...)``)."""

    __slots__ = ()

    def hit(self) -> None:
        """Ends the call as a hit."""
        self.guard.finish_lookup(True)

    def miss(self) -> None:
        """Ends the call as a miss."""
        self.guard.finish_lookup(False)

    def lookup(self, found: bool) -> bool:
        """Ends the call as a hit or a miss; returns ``found``."""
        return self.guard.finish_lookup(found)

    def result(self, result: str) -> None:
        """Ends the call with ``hit``, ``miss``, ``ok`` or ``error``."""
        self.guard.finish(result)

    def _succeed(self, g: _native.CacheCall) -> None:
        if not g.ended:
            g.finish("ok")

    def _fail(self, g: _native.CacheCall, error: str) -> None:
        if not g.ended:
            g.record_error(error)
            g.finish("error")


class DocumentStage(Stage[_native.DocumentJob]):
    """One document being ingested; ``set_chunks(n)`` before the block ends."""

    __slots__ = ("_chunks",)

    def __init__(self, start: Callable[..., _native.DocumentJob], *args: Any) -> None:
        super().__init__(start, *args)
        self._chunks = 0

    def set_chunks(self, n: int) -> None:
        """The number of chunks the document made."""
        self._chunks = n

    def _succeed(self, g: _native.DocumentJob) -> None:
        g.succeed(self._chunks)

    def _fail(self, g: _native.DocumentJob, error: str) -> None:
        g.fail(error)
