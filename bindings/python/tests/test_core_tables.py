"""The rules and tables both packages share come from the core's native module: a default
the package retyped would drift from the Node package's."""

from __future__ import annotations

import tars_telemetry
from tars_telemetry import Telemetry, _native
from tars_telemetry.asgi import CANCELLED, CLIENT_DISCONNECTED, DEFAULT_EXCLUDED


def test_default_buckets_are_the_cores() -> None:
    assert tars_telemetry.DEFAULT_BUCKETS == _native.DEFAULT_BUCKETS
    assert tars_telemetry.DEFAULT_BUCKETS == (
        0.005,
        0.01,
        0.025,
        0.05,
        0.1,
        0.25,
        0.5,
        1.0,
        2.5,
        5.0,
        10.0,
    )
    tel = Telemetry(traces=False)
    tel.histogram("job_seconds", "Jobs.").observe(0.3)
    text, _ = tel.render()
    for b in tars_telemetry.DEFAULT_BUCKETS:
        le = repr(b) if b != int(b) else f"{b:.1f}"
        assert f'job_seconds_bucket{{le="{le}"}}'.encode() in text, (le, text)


def test_http_rules_are_the_cores() -> None:
    assert DEFAULT_EXCLUDED == _native.HTTP_DEFAULT_EXCLUDED_PATHS
    assert set(DEFAULT_EXCLUDED) == {
        "/metrics",
        "/health",
        "/healthz",
        "/livez",
        "/ready",
        "/readyz",
    }
    assert (CANCELLED, CLIENT_DISCONNECTED) == ("cancelled", "client_disconnected")
    ex = _native.ExcludedPaths(["/internal/"])
    assert ex.paths == ["/internal"]
    assert "/internal" in ex and ex.contains("/internal/x") and not ex.contains("/internalx")
    default = _native.ExcludedPaths()
    assert default.contains("/metrics/") and default.contains("/health/live")
    assert not default.contains("/api/health")


def test_cache_operations_are_counted_by_cache_operation_and_result() -> None:
    tel = Telemetry(traces=False)
    tel.cache.record("redis", "set", "ok")
    tel.cache.record("embedding", "get", "hit")
    assert tel.cache.count("redis", "set", "ok") == 1
    text, _ = tel.render()
    line = b'tars_cache_operations_total{cache="embedding",operation="get",result="hit"} 1'
    assert line in text
    for bad in [("memcached", "get", "hit"), ("redis", "scan", "ok"), ("redis", "get", "maybe")]:
        try:
            tel.cache.record(*bad)
        except ValueError as e:
            assert "expected one of" in str(e)
        else:
            raise AssertionError(f"{bad} accepted")
