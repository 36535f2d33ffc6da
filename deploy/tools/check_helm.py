#!/usr/bin/env python3
"""Lints and renders the tars-agent Helm chart with Helm's own engine (helm-python-sdk
bundles Helm v4 as a library: no helm binary needed).

  - `helm lint --strict` (warnings fail) with the default values and with the
    ServiceMonitor enabled, for the chart's lowest and a current Kubernetes version;
  - values.schema.json rejects malformed values (self-test);
  - the rendered DaemonSet's pod spec equals deploy/kubernetes/daemonset.yaml's, so the
    chart and the plain manifests cannot drift apart;
  - writes the rendered built-in kinds to OUT_DIR/builtin-*.yaml (for kubernetes-validate)
    and the rendered ServiceMonitor to OUT_DIR/servicemonitor.yaml.

Usage: check_helm.py CHART_DIR PLAIN_DAEMONSET.yaml OUT_DIR
"""
import os
import sys

import yaml
from helm_python import chart as helm

KUBE_VERSIONS = ("v1.28.0", "v1.33.0")


def lint(path, values, problems):
    for kube in KUBE_VERSIONS:
        result = helm.lint(path, values, strict=True, kube_version=kube, namespace="tars-system")
        for m in result.get("messages", []):
            line = f"helm lint ({kube}, {values}): [{m['severity']}] {m['path']}: {m['error']}"
            print(line)
            if m["severity"] >= 2:
                problems.append(line)
        problems.extend(f"helm lint ({kube}): {e}" for e in result.get("errors", []))


def documents(rendered):
    for name, text in sorted(rendered.items()):
        if name.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                yield name, doc


def main(argv):
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    path, plain, out = argv[1:]
    os.makedirs(out, exist_ok=True)
    problems = []

    lint(path, None, problems)
    lint(path, {"serviceMonitor": {"enabled": True}}, problems)

    chart = helm.Chart.load(path)
    for bad in ({"port": "9400"}, {"port": 70000}, {"resources": {"requests": {"cpu": "lots"}}},
                {"securityContext": {"runAsNonRoot": False}}, {"probes": {"redis": "redis"}},
                {"serviceMonitor": {"enabled": "yes"}}, {"unknownKey": 1}):
        try:
            chart.validate_schema(bad)
        except Exception:  # HelmValuesError: rejected, as it should be
            continue
        problems.append(f"values.schema.json accepts {bad}")

    rendered = chart.render(name="tars-agent", namespace="tars-system", is_install=True)
    kinds = []
    daemonset = None
    for i, (name, doc) in enumerate(documents(rendered)):
        kinds.append(doc["kind"])
        if doc["kind"] == "DaemonSet":
            daemonset = doc
        with open(os.path.join(out, f"builtin-{i}-{doc['kind'].lower()}.yaml"), "w") as f:
            yaml.safe_dump(doc, f, sort_keys=False)
    if sorted(kinds) != ["DaemonSet", "Service", "ServiceAccount"]:
        problems.append(f"default render has kinds {kinds}")

    with_sm = chart.render({"serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}}},
                           name="tars-agent", namespace="tars-system", is_install=True)
    monitors = [doc for _, doc in documents(with_sm) if doc["kind"] == "ServiceMonitor"]
    if len(monitors) != 1:
        problems.append(f"serviceMonitor.enabled renders {len(monitors)} ServiceMonitors")
    else:
        with open(os.path.join(out, "servicemonitor.yaml"), "w") as f:
            yaml.safe_dump(monitors[0], f, sort_keys=False)

    reference = yaml.safe_load(open(plain))
    if daemonset is None:
        problems.append("no DaemonSet rendered")
    else:
        got, want = daemonset["spec"]["template"]["spec"], reference["spec"]["template"]["spec"]
        for key in sorted(set(got) | set(want)):
            if got.get(key) != want.get(key):
                problems.append(f"DaemonSet pod spec differs from {plain} in `{key}`:\n"
                                f"  chart: {got.get(key)}\n  plain: {want.get(key)}")
        if daemonset["spec"]["selector"] != reference["spec"]["selector"]:
            problems.append("DaemonSet selectors differ")

    for p in problems:
        print(p)
    print(f"helm: chart linted for {', '.join(KUBE_VERSIONS)}, rendered {sorted(kinds)} + ServiceMonitor, "
          f"{len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
