"""Web Vitals beacons through the ASGI endpoint over real HTTP: the same checks, counts and
answers as the Node package's beacon handler (both are the core's)."""

from __future__ import annotations

import json

import httpx
from conftest import Server, scrape
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families as parse_text
from tars_telemetry import Telemetry
from tars_telemetry.asgi import metrics_app, web_vitals_app


def sample(text: str, name: str, **labels: str) -> float | None:
    for fam in parse_text(text):
        for s in fam.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return None


def test_beacons_good_reports_recorded_bad_ones_refused_and_counted() -> None:
    tel = Telemetry(traces=False)
    app = FastAPI()
    app.mount("/metrics", metrics_app(tel))
    app.add_route("/vitals", web_vitals_app(tel), methods=["POST", "GET"])
    batch = [
        {"name": "LCP", "value": 2400, "route": "/chat/:id", "navigationType": "navigate"},
        {"name": "INP", "value": 180, "route": "/chat/:id", "navigationType": "navigate"},
        {"name": "CLS", "value": 0.08, "route": "/chat/:id", "navigationType": "reload"},
        {"name": "FCP", "value": 900, "route": "/", "navigationType": "back-forward"},
        {"name": "TTFB", "value": 300, "route": "/", "navigationType": "navigate"},
    ]
    bad = [
        ("{not json", 400),
        ("x" * (64 * 1024), 413),
        (json.dumps([{"name": "FID", "value": 3, "route": "/"}]), 400),
        (json.dumps([{"name": "LCP", "value": None, "route": "/"}]), 400),
        (json.dumps([{"name": "LCP", "value": -5, "route": "/"}]), 400),
        (json.dumps([{"name": "LCP", "value": "12", "route": "/"}]), 400),
        (json.dumps([{"name": "LCP", "value": 1, "route": "no-slash"}]), 400),
        (json.dumps([{"name": "LCP", "value": 1, "route": "/" + "a" * 5000}]), 400),
        (
            json.dumps([{"name": "LCP", "value": 1, "route": "/", "navigationType": "teleport"}]),
            400,
        ),
        (json.dumps([batch[0]] * 50), 400),
        (json.dumps([None]), 400),
        ("null", 400),
    ]
    with Server(app) as srv, httpx.Client(base_url=srv.url, timeout=10) as c:
        post = lambda body: (
            c.post("/vitals", content=body, headers={"content-type": "text/plain"}).status_code
        )
        assert post(json.dumps(batch)) == 204
        for body, status in bad:
            assert post(body) == status, body[:60]
        assert c.get("/vitals").status_code == 405
        text = scrape(srv.url)
    s = sample
    assert (
        s(text, "tars_web_vitals_lcp_seconds_count", route="/chat/:id", navigation_type="navigate")
        == 1
    )
    assert (
        s(
            text,
            "tars_web_vitals_lcp_seconds_bucket",
            route="/chat/:id",
            navigation_type="navigate",
            le="2.5",
        )
        == 1
    )
    assert (
        s(text, "tars_web_vitals_inp_seconds_sum", route="/chat/:id", navigation_type="navigate")
        == 0.18
    )
    assert s(text, "tars_web_vitals_cls_sum", route="/chat/:id", navigation_type="reload") == 0.08
    assert (
        s(text, "tars_web_vitals_fcp_seconds_count", route="/", navigation_type="back-forward") == 1
    )
    assert s(text, "tars_web_vitals_ttfb_seconds_count", route="/", navigation_type="navigate") == 1

    def rejected(reason: str) -> float | None:
        return s(text, "tars_web_vitals_rejected_total", reason=reason)

    assert rejected("malformed") == 3
    assert rejected("oversized") == 1
    assert rejected("unknown_metric") == 1
    assert rejected("bad_value") == 3
    assert rejected("bad_route") == 2
    assert rejected("bad_navigation_type") == 1
    assert rejected("too_many") == 1


def test_allowed_routes_and_single_reports() -> None:
    tel = Telemetry(traces=False)
    assert tel.web_vitals.record("LCP", 1200, "/chat/:id") is None
    assert tel.web_vitals.record("LCP", 1200, "/chat/:id", "sideways") == "bad_navigation_type"
    assert tel.web_vitals.record("FID", 3, "/") == "unknown_metric"
    status, recorded = tel.web_vitals.beacon(
        json.dumps(
            [{"name": "LCP", "value": 1, "route": "/a"}, {"name": "LCP", "value": 1, "route": "/b"}]
        ).encode(),
        ["/a"],
    )
    assert (status, recorded) == (204, 1)
    text = tel.render()[0].decode()
    assert sample(text, "tars_web_vitals_rejected_total", reason="bad_route") == 1
