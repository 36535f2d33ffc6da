"""Stages: context managers (sync and async) and decorators over the core's guards.

A stage is a native object (``_native.Stage`` and its kinds) that holds its core guard
itself: entered once, it starts the guard under the current span context and makes its
own span context current; its block's outcome ends it (success, a failure with the
exception's type, or ``cancelled`` for ``asyncio.CancelledError``). Nothing relies on
garbage collection. The current stage's span context lives in a ContextVar and is
passed to the core explicitly, so stages nest correctly across ``await`` and between
interleaved tasks. What is left here is what is best said in Python: the decorators.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from contextvars import ContextVar
from typing import Any, TypeVar, cast

from . import _native, _otel
from ._native import (
    CacheStage,
    DocumentStage,
    LlmStage,
    RagQueryStage,
    SpanContext,
    Stage,
    TimedStage,
)

__all__ = [
    "CacheStage",
    "DocumentStage",
    "LlmStage",
    "RagQueryStage",
    "Stage",
    "TimedStage",
    "current_span_context",
    "error_type",
]

_current: ContextVar[SpanContext | None] = ContextVar("tars_telemetry_stage", default=None)

F = TypeVar("F", bound=Callable[..., Any])


def current_span_context() -> SpanContext | None:
    """The span context new stages start under: the current stage's (or, when joined,
    OpenTelemetry-Python's current span)."""
    if _otel.joined():
        return _otel.current()
    return _current.get()


def error_type(exc_type: type[BaseException]) -> str:
    """The ``error.type`` of an exception: its class's qualified name."""
    return exc_type.__qualname__


def _decorate(stage: Any, fn: F) -> F:
    """``@stage`` (and ``@histogram.time()``, ``@gauge.track_inprogress()``): wraps a
    sync, async, generator or async-generator function in a fresh block of the same kind
    and arguments per call (``stage._fresh()``)."""
    if inspect.isasyncgenfunction(fn):

        @functools.wraps(fn)
        async def agen(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            async with stage._fresh():
                async for item in fn(*args, **kwargs):
                    yield item

        return cast(F, agen)
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def coro(*args: Any, **kwargs: Any) -> Any:
            async with stage._fresh():
                return await fn(*args, **kwargs)

        return cast(F, coro)
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def gen(*args: Any, **kwargs: Any) -> Iterator[Any]:
            with stage._fresh():
                yield from fn(*args, **kwargs)

        return cast(F, gen)

    @functools.wraps(fn)
    def sync(*args: Any, **kwargs: Any) -> Any:
        with stage._fresh():
            return fn(*args, **kwargs)

    return cast(F, sync)


# The native stages read and set the ContextVar, ask _otel when joined, and decorate
# through _decorate.
_native._configure_stages(_current, _otel, _decorate)
