"""LLM usage by token kind and spend from a pricing table, through the package: the
usage's fields given, missing and negative; tables from a mapping, a file and the
environment; refused tables; the usage attributes on the call's span."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import Receiver
from prometheus_client.parser import text_string_to_metric_families as parse_text
from tars_telemetry import Telemetry
from test_spans import traced

TABLE = {"models": {"gpt-4o-mini": {"input": 0.15, "cache_read": 0.075, "output": 0.6}}}


def values(tel: Telemetry, name: str) -> dict[tuple[str, str], float]:
    body, _ = tel.render()
    return {
        (s.labels["model"], s.labels["type"]): s.value
        for f in parse_text(body.decode())
        for s in f.samples
        if s.name == name
    }


def test_set_usage_counts_each_kind_and_prices_it() -> None:
    tel = Telemetry(service_name="t", traces=False, llm_pricing=TABLE)
    with tel.llm("gpt-4o-mini").call() as call:
        call.set_usage(
            input_tokens=3_000_000,
            cache_read_input_tokens=2_000_000,
            cache_write_input_tokens=500_000,
            output_tokens=1_000_000,
            reasoning_output_tokens=400_000,
        )
    tokens = values(tel, "tars_llm_tokens_total")
    assert tokens[("gpt-4o-mini", "input")] == 500_000
    assert tokens[("gpt-4o-mini", "cache_read")] == 2_000_000
    assert tokens[("gpt-4o-mini", "cache_write")] == 500_000
    assert tokens[("gpt-4o-mini", "output")] == 600_000
    assert tokens[("gpt-4o-mini", "reasoning")] == 400_000
    spend = values(tel, "tars_llm_spend_dollars_total")
    assert spend[("gpt-4o-mini", "input")] == 0.075  # 0.5M x $0.15/M
    assert spend[("gpt-4o-mini", "cache_read")] == 0.15  # 2M x $0.075/M
    assert spend[("gpt-4o-mini", "output")] == 0.36  # 0.6M x $0.6/M
    assert spend[("gpt-4o-mini", "reasoning")] == 0.24  # at the output price
    # No cache-write price: unpriced, not free.
    assert spend[("gpt-4o-mini", "cache_write")] == 0
    assert values(tel, "tars_llm_unpriced_tokens_total")[("gpt-4o-mini", "cache_write")] == 500_000


def test_a_kind_not_given_keeps_its_count_and_negative_ones_are_ignored() -> None:
    tel = Telemetry(service_name="t", traces=False, llm_pricing=TABLE)
    with tel.llm("gpt-4o-mini").call() as call:
        call.add_output_tokens(3)
        call.set_usage(input_tokens=100)
        call.set_usage(cache_read_input_tokens=-5, reasoning_output_tokens=-1)
    tokens = values(tel, "tars_llm_tokens_total")
    assert tokens[("gpt-4o-mini", "input")] == 100
    assert tokens[("gpt-4o-mini", "cache_read")] == 0
    assert tokens[("gpt-4o-mini", "output")] == 3
    assert tokens[("gpt-4o-mini", "reasoning")] == 0
    with pytest.raises(TypeError):
        call2 = tel.llm("gpt-4o-mini").call()
        with call2:
            call2.set_usage(100)  # type: ignore[call-arg]
    with pytest.raises(TypeError), tel.llm("gpt-4o-mini").call() as call3:
        call3.set_usage(input_tokens="many")  # type: ignore[arg-type]


def test_an_unpriced_model_counts_its_tokens_apart() -> None:
    tel = Telemetry(service_name="t", traces=False)
    with tel.llm("llama3:8b").call() as call:
        call.set_usage(input_tokens=40, output_tokens=2)
    unpriced = values(tel, "tars_llm_unpriced_tokens_total")
    assert unpriced[("llama3:8b", "input")] == 40
    assert unpriced[("llama3:8b", "output")] == 2


def test_tables_from_a_file_and_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = tmp_path / "prices.json"
    f.write_text(json.dumps({"models": {"m": {"output": 2}}}))
    for tel in (
        Telemetry(service_name="t", traces=False, llm_pricing=f),
        Telemetry(service_name="t", traces=False, llm_pricing=str(f)),
    ):
        with tel.llm("m").call() as call:
            call.set_output_tokens(1_000_000)
        assert values(tel, "tars_llm_spend_dollars_total")[("m", "output")] == 2
    monkeypatch.setenv("TARS_LLM_PRICING_FILE", str(f))
    tel = Telemetry(service_name="t", traces=False)
    with tel.llm("m").call() as call:
        call.set_output_tokens(500_000)
    assert values(tel, "tars_llm_spend_dollars_total")[("m", "output")] == 1
    # Replaced while running.
    tel.set_llm_pricing({"models": {"m": {"output": 4}}})
    with tel.llm("m").call() as call:
        call.set_output_tokens(500_000)
    assert values(tel, "tars_llm_spend_dollars_total")[("m", "output")] == 3


def test_bad_tables_fail_at_start_saying_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValueError, match=r'"m".*input.*negative'):
        Telemetry(service_name="t", traces=False, llm_pricing={"models": {"m": {"input": -1}}})
    with pytest.raises(ValueError, match="unknown token kind"):
        Telemetry(service_name="t", traces=False, llm_pricing={"models": {"m": {"prompt": 1}}})
    bad = tmp_path / "bad.json"
    bad.write_text("models = 1")
    with pytest.raises(ValueError, match="bad.json"):
        Telemetry(service_name="t", traces=False, llm_pricing=bad)
    with pytest.raises(OSError, match="missing.json"):
        Telemetry(service_name="t", traces=False, llm_pricing=tmp_path / "missing.json")
    monkeypatch.setenv("TARS_LLM_PRICING_FILE", str(bad))
    with pytest.raises(ValueError, match="not a pricing table"):
        Telemetry(service_name="t", traces=False)


def span_attributes(tel: Telemetry, receiver: Receiver, name: str) -> dict[str, Any]:
    """The attributes of the span `name`, once `tel`'s spans are flushed to the receiver
    (each test names its model apart, so the name is the test's own span)."""
    tel.native.shutdown_tracing()
    spans = receiver.wait_for(lambda ss: any(s["name"] == name for s in ss))
    attributes: dict[str, Any] = next(s for s in spans if s["name"] == name)["attributes"]
    return attributes


def test_the_span_carries_the_usage_by_kind(receiver: Receiver) -> None:
    tel = traced(receiver)
    with tel.rag.query(), tel.llm("usage-by-kind").call() as call:
        call.set_usage(
            input_tokens=900,
            cache_read_input_tokens=600,
            cache_write_input_tokens=100,
            output_tokens=50,
            reasoning_output_tokens=20,
        )
    a = span_attributes(tel, receiver, "chat usage-by-kind")
    assert a["gen_ai.usage.input_tokens"] == 900
    assert a["gen_ai.usage.output_tokens"] == 50
    assert a["gen_ai.usage.cache_creation.input_tokens"] == 100
    assert a["gen_ai.usage.reasoning.output_tokens"] == 20
    assert a["gen_ai.provider.name"]
    assert "gen_ai.system" not in a


def test_the_legacy_gen_ai_system_attribute_when_asked_for(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TARS_GENAI_LEGACY_SYSTEM", "true")
    monkeypatch.setenv("TARS_GENAI_PROVIDER", "openai")
    tel = traced(receiver)
    with tel.rag.query(), tel.llm("legacy-model").call() as call:
        call.set_usage(input_tokens=1)
    a = span_attributes(tel, receiver, "chat legacy-model")
    assert a["gen_ai.system"] == "openai"
    assert a["gen_ai.provider.name"] == "openai"
