#!/usr/bin/env python3
"""Lints the Grafana dashboards and turns their PromQL into a rule file for promtool.

Lint (current Grafana JSON model, file provisioning):
  - a bare dashboard object (no {"dashboard": ...} HTTP-API envelope), with uid, title,
    schemaVersion and panels;
  - panels are timeseries or stat only: no legacy `graph` panel (Angular, removed in
    Grafana 11), no panel-level `alert` (legacy alerting), no `yaxes`;
  - every panel and target uses the data source variable as an object reference,
    {"type": "prometheus", "uid": "${datasource}"}, never a data source name string;
  - templating has the `datasource` variable, and every other variable a query;
  - panel ids are unique and panels fit the 24-column grid without overlapping;
  - every latency quantile (histogram_quantile over a *_seconds_bucket) in a time series
    panel asks for exemplars.

Then writes every target's and every variable's query, with Grafana's variables replaced,
as a recording rule into OUT.yml, for `promtool check rules` (the real PromQL parser).

Usage: check_dashboards.py OUT.yml DASHBOARD.json...
"""
import json
import re
import sys

import yaml

ALLOWED_PANELS = {"timeseries", "stat"}
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
VAR = re.compile(r"\$\{?(\w+)(?::\w+)?\}?")


def to_promql(expr):
    """Grafana variables to values PromQL parses (as the Rust contract test does)."""
    return VAR.sub(lambda m: "5m" if m.group(1).startswith("__") else "grafana_var", expr)


def walk(obj, path=""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield f"{path}.{k}", k, v
            yield from walk(v, f"{path}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from walk(v, f"{path}[{i}]")


def lint(path, d):
    errors = []
    err = errors.append
    if "dashboard" in d and "panels" not in d:
        err("wrapped in an HTTP-API {\"dashboard\": ...} envelope: file provisioning needs the bare object")
        d = d["dashboard"]
    for key in ("uid", "title", "schemaVersion", "panels", "templating"):
        if key not in d:
            err(f"no `{key}`")
    if d.get("id") not in (None,):
        err("`id` must be null or absent: Grafana assigns it")
    for p, k, v in walk(d):
        if k == "datasource" and isinstance(v, str):
            err(f"{p}: data source given by name {v!r}: use an object reference")
        if k == "yaxes":
            err(f"{p}: `yaxes` belongs to the legacy graph panel")
    panels = []
    for p in d.get("panels", []):
        panels.append(p)
        panels.extend(p.get("panels", []))
    ids = [p.get("id") for p in panels]
    if len(set(ids)) != len(ids) or None in ids:
        err(f"panel ids must be unique and set: {ids}")
    cells = {}
    for p in panels:
        where = f"panel {p.get('id')} {p.get('title')!r}"
        if p.get("type") == "graph":
            err(f"{where}: legacy `graph` panel: use `timeseries`")
        elif p.get("type") not in ALLOWED_PANELS:
            err(f"{where}: panel type {p.get('type')!r} is not one of {sorted(ALLOWED_PANELS)}")
        if "alert" in p:
            err(f"{where}: panel-level `alert` (legacy alerting): alerts live in deploy/prometheus")
        if p.get("datasource") != DATASOURCE:
            err(f"{where}: datasource must be {DATASOURCE}")
        if not p.get("title"):
            err(f"{where}: no title")
        if not p.get("description"):
            err(f"{where}: no description")
        targets = p.get("targets") or []
        if not targets:
            err(f"{where}: no targets")
        for t in targets:
            if t.get("datasource") != DATASOURCE:
                err(f"{where} {t.get('refId')}: datasource must be {DATASOURCE}")
            expr = t.get("expr", "")
            if not expr:
                err(f"{where} {t.get('refId')}: no expr")
            if (p.get("type") == "timeseries" and not t.get("exemplar")
                    and re.search(r"histogram_quantile\([^,]+,.*_seconds_bucket", expr)):
                err(f"{where} {t.get('refId')}: a latency quantile without exemplars")
        g = p.get("gridPos", {})
        x, y, w, h = (g.get(k) for k in ("x", "y", "w", "h"))
        if None in (x, y, w, h) or x < 0 or w < 1 or x + w > 24 or h < 1:
            err(f"{where}: gridPos {g} does not fit the 24-column grid")
            continue
        for cx in range(x, x + w):
            for cy in range(y, y + h):
                if (cx, cy) in cells:
                    err(f"{where}: overlaps panel {cells[(cx, cy)]}")
                    break
                cells[(cx, cy)] = p.get("id")
            else:
                continue
            break
    variables = d.get("templating", {}).get("list", [])
    ds = [v for v in variables if v.get("type") == "datasource"]
    if not ds or ds[0].get("name") != "datasource" or ds[0].get("query") != "prometheus":
        err("templating: no `datasource` variable of type datasource for prometheus")
    for v in variables:
        if v.get("type") == "query":
            if v.get("datasource") != DATASOURCE:
                err(f"variable {v.get('name')}: datasource must be {DATASOURCE}")
            q = v.get("query")
            q = q.get("query") if isinstance(q, dict) else q
            if not q:
                err(f"variable {v.get('name')}: no query")
    return [f"{path}: {e}" for e in errors], panels, variables


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    out, paths = argv[1], argv[2:]
    errors, rules = [], []
    for path in paths:
        d = json.load(open(path))
        errs, panels, variables = lint(path, d)
        errors += errs
        uid = re.sub(r"\W", "_", d.get("uid", "dashboard"))
        for p in panels:
            for t in p.get("targets", []):
                if t.get("expr"):
                    rules.append({"record": f"dashboard:{uid}:panel_{p.get('id')}_{t.get('refId')}",
                                  "expr": to_promql(t["expr"])})
        for v in variables:
            q = v.get("query")
            q = q.get("query") if isinstance(q, dict) else q
            m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*", q or "")
            if m:
                rules.append({"record": f"dashboard:{uid}:variable_{v['name']}", "expr": to_promql(m.group(1))})
    with open(out, "w") as f:
        yaml.safe_dump({"groups": [{"name": "dashboard_queries", "rules": rules}]}, f, sort_keys=False, width=1000)
    for e in errors:
        print(e)
    print(f"dashboards: {len(paths)} linted, {len(rules)} queries written to {out}, {len(errors)} problems")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
