#!/usr/bin/env python3
"""Parses every LogQL expression of the Loki ruler files with Loki's own parser.

The parser is Loki's pkg/logql/syntax (v3.6.3), built as a C shared library and shipped in
the logql-to-logsql wheel (scripts/install-deploy-deps.sh unpacks it into
.tools/logql/). That library translates LogQL to LogsQL; errors that start with
"failed to parse LogQL" come from Loki's parser and fail this check, anything else is a
limit of the translation and is not a syntax error.

Also rejects stream selectors on high-cardinality fields (request_id, trace_id, span_id,
user_id): those are JSON fields of the line, never stream labels.

Usage: check_logql.py LIB.so RULES.yaml...
"""
import ctypes
import re
import sys

import yaml

HIGH_CARDINALITY = ("request_id", "trace_id", "span_id", "user_id")


class _Result(ctypes.Structure):
    _fields_ = [("logsql", ctypes.c_char_p), ("kind", ctypes.c_char_p), ("error", ctypes.c_char_p)]


def parse_error(lib, query):
    res = lib.TranslateLogQLToLogsQL(query.encode())
    err = res.error.decode() if res.error else ""
    return err if err.startswith("failed to parse LogQL") else ""


def selectors(query):
    """The label names used inside {...} stream selectors."""
    names = []
    for body in re.findall(r"\{([^{}]*)\}", query):
        names += re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", body)
    return names


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    lib = ctypes.CDLL(argv[1])
    lib.TranslateLogQLToLogsQL.restype = _Result
    # Self-test: the parser must reject a broken query, or this check proves nothing.
    if not parse_error(lib, 'sum by level (count_over_time({app="x"}[5m]))'):
        print("the LogQL parser accepted a broken query", file=sys.stderr)
        return 1
    failures = 0
    count = 0
    for path in argv[2:]:
        doc = yaml.safe_load(open(path))
        for group in doc["groups"]:
            for rule in group["rules"]:
                name = rule.get("alert") or rule.get("record")
                expr = rule["expr"].strip()
                count += 1
                err = parse_error(lib, expr)
                if err:
                    failures += 1
                    print(f"{path}: {name}: {err}")
                bad = [n for n in selectors(expr) if n in HIGH_CARDINALITY]
                if bad:
                    failures += 1
                    print(f"{path}: {name}: stream selector on high-cardinality field(s) {bad}")
                for key in ("summary", "description", "runbook_url"):
                    if rule.get("alert") and key not in rule.get("annotations", {}):
                        failures += 1
                        print(f"{path}: {name}: no {key} annotation")
                if rule.get("alert") and "severity" not in rule.get("labels", {}):
                    failures += 1
                    print(f"{path}: {name}: no severity label")
    print(f"LogQL: {count} expressions parsed, {failures} problems")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
