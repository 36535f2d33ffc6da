"""Joining OpenTelemetry-Python's context, both ways, when asked for.

Joined, a new stage starts under OpenTelemetry-Python's current span (its spans can be
our parents), and an entered stage becomes OpenTelemetry-Python's current span (ours can
be theirs): one trace id throughout. Without OpenTelemetry-Python nothing here runs.
"""

from __future__ import annotations

from typing import Any

from . import _native
from ._native import SpanContext

_joined = False
# The same flag as a plain attribute, read by the middleware on every request without a
# call (the native stages keep their own, set by join()).
is_joined = False
_trace: Any = None
_context: Any = None


def join() -> None:
    """Joins OpenTelemetry-Python's context; ImportError when it is not installed."""
    global _joined, _trace, _context, is_joined
    from opentelemetry import context, trace

    _trace, _context = trace, context
    _joined = True
    is_joined = True
    _native._join_opentelemetry()


def joined() -> bool:
    return _joined


def current() -> SpanContext | None:
    """OpenTelemetry-Python's current span context, as ours."""
    sc = _trace.get_current_span().get_span_context()
    if not sc.is_valid:
        return None
    return SpanContext(sc.trace_id, sc.span_id, sc.trace_flags.sampled, sc.is_remote)


def attach(sc: SpanContext) -> object:
    """Makes `sc` OpenTelemetry-Python's current span; returns the token to detach."""
    t = _trace
    otel_sc = t.SpanContext(
        trace_id=sc.trace_id,
        span_id=sc.span_id,
        is_remote=False,
        trace_flags=t.TraceFlags(t.TraceFlags.SAMPLED if sc.sampled else t.TraceFlags.DEFAULT),
    )
    return _context.attach(t.set_span_in_context(t.NonRecordingSpan(otel_sc)))


def detach(token: object) -> None:
    _context.detach(token)
