"""Stages: context managers (sync and async) and decorators over the core's guards.

The current stage's span context lives in a ContextVar and is passed to the core
explicitly, so stages nest correctly across ``await`` and between interleaved tasks.
Every stage ends by an explicit call when its block ends: success, a failure with the
exception's type, or ``cancelled`` for ``asyncio.CancelledError``; nothing relies on
garbage collection. Entering and leaving a stage are native (``_native.StageBase``);
the classes here map each kind to its guard's methods.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, cast

from . import _native, _otel
from ._native import SpanContext

_current: ContextVar[SpanContext | None] = ContextVar("tars_telemetry_stage", default=None)
# The native stages read and set it, and follow _otel.is_joined.
_native._configure_stages(_current, _otel)

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


class Stage(_native.StageBase, Generic[G]):
    """A stage of work. ``with``/``async with`` it once; unentered, it decorates a sync,
    async or async-generator function (a fresh stage per call).

    ``Stage(start, *args)``: entering it calls ``start(*args, parent)`` for the guard (a
    native function and its arguments rather than a closure). Entering and leaving are
    native (``_native.StageBase``): the parent found, the guard made current, and ended
    by the block's outcome."""

    __slots__ = ()

    if TYPE_CHECKING:

        @property
        def guard(self) -> G:
            """The core's guard (started when the stage is entered)."""

        @property
        def _guard(self) -> G | None: ...

    def span_context(self) -> SpanContext | None:
        """The stage's span context, when it is traced."""
        g = self._guard
        return None if g is None else g.span_context()

    def record_error(self, error: str) -> None:
        """Marks the stage's span with an error type, without ending it."""
        self.guard.record_error(error)

    def abandon(self, error: str = "cancelled") -> None:
        """Ends the stage now as abandoned."""
        self.guard.abandon(error)

    # ---- decorator (``_fresh()``: a new stage of the same start and arguments)

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


class DocumentStage(Stage[_native.DocumentJob]):
    """One document being ingested; ``set_chunks(n)`` before the block ends."""

    __slots__ = ()

    def set_chunks(self, n: int) -> None:
        """The number of chunks the document made."""
        self._chunks = n
