#!/usr/bin/env python3
"""Lints and renders the tars-agent Helm chart with Helm's own engine (helm-python-sdk
bundles Helm v4 as a library: no helm binary needed).

  - `helm lint --strict` (warnings fail) with the default values and with the
    ServiceMonitor enabled, for the chart's lowest and a current Kubernetes version;
  - values.schema.json rejects malformed values (self-test);
  - the rendered workloads' pod specs and selectors equal the plain manifests' (the node
    DaemonSet daemonset.yaml, the GPU one daemonset-gpu.yaml, the prober's Deployment
    probes.yaml), so the chart and the plain manifests cannot drift apart; gpu.enabled=false renders one DaemonSet, on
    every node, without the gpu collector; probes.enabled=false no prober;
  - writes the rendered built-in kinds to OUT_DIR/builtin-*.yaml (for kubernetes-validate)
    and the rendered ServiceMonitor to OUT_DIR/servicemonitor.yaml.

Usage: check_helm.py CHART_DIR PLAIN_MANIFESTS_DIR OUT_DIR
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
                {"serviceMonitor": {"enabled": "yes"}}, {"unknownKey": 1},
                {"gpu": {"nodeSelector": {"nvidia.com/gpu.present": True}}}, {"probes": {"enabled": "no"}}):
        try:
            chart.validate_schema(bad)
        except Exception:  # HelmValuesError: rejected, as it should be
            continue
        problems.append(f"values.schema.json accepts {bad}")

    rendered = chart.render(name="tars-agent", namespace="tars-system", is_install=True)
    kinds = []
    workloads = {}
    for i, (name, doc) in enumerate(documents(rendered)):
        kinds.append(doc["kind"])
        workloads[(doc["kind"], doc["metadata"]["name"])] = doc
        with open(os.path.join(out, f"builtin-{i}-{doc['kind'].lower()}.yaml"), "w") as f:
            yaml.safe_dump(doc, f, sort_keys=False)
    if sorted(kinds) != ["ConfigMap", "DaemonSet", "DaemonSet", "Deployment", "Service", "ServiceAccount"]:
        problems.append(f"default render has kinds {kinds}")

    def plain_docs(file):
        return [d for d in yaml.safe_load_all(open(os.path.join(plain, file))) if d]

    for file in ("daemonset.yaml", "daemonset-gpu.yaml", "probes.yaml"):
        for want_doc in plain_docs(file):
            key = (want_doc["kind"], want_doc["metadata"]["name"])
            got_doc = workloads.get(key)
            if got_doc is None:
                problems.append(f"the chart renders no {key[0]} {key[1]} ({file})")
                continue
            if key[0] == "ConfigMap":
                if got_doc["data"] != want_doc["data"]:
                    problems.append(f"ConfigMap {key[1]} differs from {file}")
                continue
            got, want = got_doc["spec"]["template"]["spec"], want_doc["spec"]["template"]["spec"]
            for k in sorted(set(got) | set(want)):
                if got.get(k) != want.get(k):
                    problems.append(f"{key[0]} {key[1]}: pod spec differs from {file} in `{k}`:\n"
                                    f"  chart: {got.get(k)}\n  plain: {want.get(k)}")
            if got_doc["spec"]["selector"] != want_doc["spec"]["selector"]:
                problems.append(f"{key[0]} {key[1]}: selectors differ from {file}")
            labels = got_doc["spec"]["template"]["metadata"]["labels"]
            if any(labels.get(k) != v for k, v in want_doc["spec"]["selector"]["matchLabels"].items()):
                problems.append(f"{key[0]} {key[1]}: pod labels {labels} do not match its selector")

    # Each pod is claimed by one controller only: the selectors pick disjoint pods.
    selectors = [d["spec"]["selector"]["matchLabels"] for d in workloads.values() if "selector" in d.get("spec", {})
                 and d["kind"] != "Service"]
    for a in selectors:
        for b in selectors:
            if a is not b and all(b.get(k) == v for k, v in a.items()):
                problems.append(f"selector {a} also selects the pods of {b}")

    no_gpu = [doc for _, doc in documents(chart.render({"gpu": {"enabled": False}, "probes": {"enabled": False}},
                                                        name="tars-agent", namespace="tars-system", is_install=True))]
    daemonsets = [d for d in no_gpu if d["kind"] == "DaemonSet"]
    if len(daemonsets) != 1 or any(d["kind"] in ("Deployment", "ConfigMap") for d in no_gpu):
        problems.append(f"gpu.enabled=false, probes.enabled=false renders {[d['kind'] for d in no_gpu]}")
    else:
        pod = daemonsets[0]["spec"]["template"]["spec"]
        args = pod["containers"][0]["args"]
        if "affinity" in pod or "gpu" in args[args.index("--collectors") + 1].split(","):
            problems.append("gpu.enabled=false: the DaemonSet must run on every node, without the gpu collector")

    with_sm = chart.render({"serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}}},
                           name="tars-agent", namespace="tars-system", is_install=True)
    monitors = [doc for _, doc in documents(with_sm) if doc["kind"] == "ServiceMonitor"]
    if len(monitors) != 1:
        problems.append(f"serviceMonitor.enabled renders {len(monitors)} ServiceMonitors")
    else:
        with open(os.path.join(out, "servicemonitor.yaml"), "w") as f:
            yaml.safe_dump(monitors[0], f, sort_keys=False)

    for p in problems:
        print(p)
    print(f"helm: chart linted for {', '.join(KUBE_VERSIONS)}, rendered {sorted(kinds)} + ServiceMonitor, "
          f"{len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
