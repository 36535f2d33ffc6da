#!/usr/bin/env python3
"""Parse an exposition with the reference parsers of prometheus_client.

usage: check_exposition.py (prometheus|openmetrics) FILE

Prints one JSON object: {family: {"type": ..., "samples": N, "exemplars": N}}.
Exits 1 with the parser's message when the text does not parse.
"""
import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_parse
from prometheus_client.parser import text_string_to_metric_families as prom_parse


def main() -> int:
    fmt, path = sys.argv[1], sys.argv[2]
    with open(path, encoding="utf-8") as f:
        text = f.read()
    parse = om_parse if fmt == "openmetrics" else prom_parse
    out = {}
    try:
        for fam in parse(text):
            out[fam.name] = {
                "type": fam.type,
                "samples": len(fam.samples),
                "exemplars": sum(1 for s in fam.samples if getattr(s, "exemplar", None)),
                "sample_names": sorted({s.name for s in fam.samples}),
            }
    except Exception as e:  # the parsers raise ValueError and friends
        print(f"parse error: {e}", file=sys.stderr)
        return 1
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
