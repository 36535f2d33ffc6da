#!/usr/bin/env python3
"""Structural checks of the deploy/ configuration files that no installable tool validates
here, and a promtool-checkable copy of the Prometheus scrape configuration.

  - deploy/otel-collector/config.yaml: OTLP gRPC on 4317 and HTTP on 4318, memory_limiter
    first and batch last in the traces pipeline, an otlp exporter to jaeger-collector:4317,
    and every component a pipeline names is defined;
  - deploy/promtail/config.yaml: the json stage extracts request_id and trace_id, which
    stay fields: no stage or relabeling makes them (or span_id, user_id, duration) labels;
    only low-cardinality labels are set; debug lines are dropped;
  - deploy/grafana/provisioning: the dashboard provider and the data sources, whose
    exemplar and derived-field links point at a provisioned Jaeger;
  - ServiceMonitors (deploy/prometheus/operator/servicemonitor.yaml and the Helm-rendered one):
    the shape of monitoring.coreos.com/v1, since kubernetes-validate knows no CRDs; the
    agent's selects the agent's Service and port, honours the agent's labels, and keeps
    job="tars-agent";
  - the kustomizations: deploy/kubernetes (built-in kinds only) and the Prometheus
    Operator overlay deploy/prometheus/operator on top of it;
  - each workload's (node and GPU DaemonSets, prober) prometheus.io annotations name its
    metrics port, and the agent's Service selects its pods;
  - deploy/prometheus/prometheus-scrape.yml: relabeling only sets the target labels the
    contract test allows; it ships without the native histogram settings (Prometheus
    before 3.8 refuses them) and its comment says how to add them; a copy with
    kubernetes_sd_configs replaced by static targets (Debian's promtool 2.42 lacks
    Kubernetes discovery) goes to OUT for `promtool check config`, and one with
    Kubernetes discovery and the native settings added on the services' job (only the
    rule files' paths made absolute) to OUT's name with -shipped, for Prometheus 3's
    promtool.

Usage: check_configs.py DEPLOY_DIR OUT_PROMETHEUS.yml [RENDERED_SERVICEMONITOR.yaml...]
"""
import copy
import os
import re
import sys

import yaml

TARGET_LABELS = {"job", "instance", "namespace", "pod", "service", "node", "container"}
HIGH_CARDINALITY = {"request_id", "trace_id", "span_id", "user_id", "duration", "message", "timestamp"}
LOKI_LABELS = {"namespace", "app", "pod", "container", "job", "level"}
DURATION = re.compile(r"^([0-9]+(ms|s|m|h))+$")
RELABEL_ACTIONS = {"replace", "keep", "drop", "keepequal", "dropequal", "hashmod", "labelmap",
                   "labeldrop", "labelkeep", "lowercase", "uppercase"}
SM_SPEC = {"jobLabel", "targetLabels", "podTargetLabels", "endpoints", "selector", "namespaceSelector",
           "sampleLimit", "targetLimit", "labelLimit", "labelNameLengthLimit", "labelValueLengthLimit",
           "keepDroppedTargets", "attachMetadata", "scrapeProtocols", "scrapeClass", "bodySizeLimit",
           "fallbackScrapeProtocol", "scrapeNativeHistograms", "scrapeClassicHistograms", "nativeHistogramBucketLimit",
           "nativeHistogramMinBucketFactor", "convertClassicHistogramsToNHCB", "selectorMechanism"}
SM_ENDPOINT = {"port", "targetPort", "path", "scheme", "params", "interval", "scrapeTimeout",
               "honorLabels", "honorTimestamps", "trackTimestampsStaleness", "relabelings",
               "metricRelabelings", "tlsConfig", "bearerTokenFile", "bearerTokenSecret", "authorization",
               "basicAuth", "oauth2", "followRedirects", "enableHttp2", "filterRunning", "proxyUrl",
               "noProxy", "proxyFromEnvironment", "proxyConnectHeader"}
SM_RELABEL = {"sourceLabels", "separator", "targetLabel", "regex", "modulus", "replacement", "action"}


def seconds(d):
    total = 0
    for n, unit in re.findall(r"([0-9]+)(ms|s|m|h)", d):
        total += int(n) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    return total


class Checker:
    def __init__(self):
        self.problems = []
        self.checks = 0

    def expect(self, cond, msg):
        self.checks += 1
        if not cond:
            self.problems.append(msg)


def load(path):
    with open(path) as f:
        return yaml.safe_load(f)


def check_otel(c, path):
    d = load(path)
    where = os.path.relpath(path)
    protocols = d.get("receivers", {}).get("otlp", {}).get("protocols", {})
    c.expect(str(protocols.get("grpc", {}).get("endpoint", "")).endswith(":4317"), f"{where}: OTLP gRPC not on 4317")
    c.expect(str(protocols.get("http", {}).get("endpoint", "")).endswith(":4318"), f"{where}: OTLP HTTP not on 4318")
    ml = d.get("processors", {}).get("memory_limiter", {})
    c.expect(ml.get("limit_mib", 0) > ml.get("spike_limit_mib", 0) > 0 and "check_interval" in ml,
             f"{where}: memory_limiter needs check_interval and limit_mib > spike_limit_mib > 0")
    c.expect("batch" in d.get("processors", {}), f"{where}: no batch processor")
    otlp_exporters = {k: v for k, v in d.get("exporters", {}).items() if k.split("/")[0] in ("otlp", "otlp_grpc")}
    c.expect(any(v.get("endpoint") == "jaeger-collector:4317" for v in otlp_exporters.values()),
             f"{where}: no otlp exporter to jaeger-collector:4317")
    service = d.get("service", {})
    pipelines = service.get("pipelines", {})
    traces = pipelines.get("traces", {})
    procs = traces.get("processors", [])
    c.expect(traces.get("receivers") == ["otlp"], f"{where}: traces pipeline must receive otlp")
    c.expect(procs[:1] == ["memory_limiter"], f"{where}: memory_limiter must come first")
    c.expect(procs[-1:] == ["batch"], f"{where}: batch must come last")
    c.expect(any(e in otlp_exporters for e in traces.get("exporters", [])), f"{where}: traces not exported over otlp")
    for name, p in pipelines.items():
        for kind in ("receivers", "processors", "exporters"):
            for comp in p.get(kind, []):
                c.expect(comp in d.get(kind, {}), f"{where}: pipeline {name} uses undefined {kind[:-1]} {comp}")
    for ext in service.get("extensions", []):
        c.expect(ext in d.get("extensions", {}), f"{where}: undefined extension {ext}")


def check_promtail(c, path):
    d = load(path)
    where = os.path.relpath(path)
    c.expect(d.get("clients") and all("/loki/api/v1/push" in cl.get("url", "") for cl in d["clients"]),
             f"{where}: clients must push to /loki/api/v1/push")
    for sc in d.get("scrape_configs", []):
        job = sc.get("job_name")
        for r in sc.get("relabel_configs", []):
            t = r.get("target_label")
            if t and not t.startswith("__"):
                c.expect(t in LOKI_LABELS, f"{where}: {job}: relabeling sets label {t}")
        for s in sc.get("static_configs", []):
            for k in s.get("labels", {}):
                c.expect(k in LOKI_LABELS or k.startswith("__"), f"{where}: {job}: static label {k}")
        stages = sc.get("pipeline_stages", [])
        json_fields = set()
        labels = set()
        dropped_debug = False

        def walk(stages):
            nonlocal dropped_debug
            for st in stages:
                for kind, body in st.items():
                    if kind == "json":
                        json_fields.update((body or {}).get("expressions", {}))
                    elif kind == "labels":
                        labels.update(body or {})
                    elif kind in ("static_labels",):
                        labels.update(body or {})
                    elif kind == "labelallow":
                        labels.update(body or [])
                    elif kind == "drop" and (body or {}).get("source") == "level" and body.get("value") == "debug":
                        dropped_debug = True
                    elif kind == "match":
                        walk(body.get("stages", []))
                    elif kind == "structured_metadata":
                        pass
        walk(stages)
        c.expect({"request_id", "trace_id", "span_id", "user_id", "level", "message"} <= json_fields,
                 f"{where}: {job}: the json stage must extract level, message, request_id, trace_id, span_id, user_id")
        bad = labels & HIGH_CARDINALITY
        c.expect(not bad, f"{where}: {job}: high-cardinality fields made labels: {sorted(bad)}")
        c.expect(labels <= LOKI_LABELS, f"{where}: {job}: labels {sorted(labels - LOKI_LABELS)} are not low-cardinality ones")
        c.expect("level" in labels, f"{where}: {job}: level should be a label")
        c.expect(dropped_debug, f"{where}: {job}: debug lines are not dropped")


def check_grafana(c, deploy):
    prov = os.path.join(deploy, "grafana/provisioning")
    dash = load(os.path.join(prov, "dashboards/tars.yaml"))
    c.expect(dash.get("apiVersion") == 1, "dashboard provisioning: apiVersion must be 1")
    for p in dash.get("providers", []):
        c.expect(p.get("type") == "file" and p.get("options", {}).get("path"),
                 f"dashboard provider {p.get('name')}: needs type file and options.path")
    ds = load(os.path.join(prov, "datasources/tars.yaml"))
    by_uid = {d["uid"]: d for d in ds.get("datasources", [])}
    prom = [d for d in by_uid.values() if d["type"] == "prometheus"]
    c.expect(len(prom) == 1, "datasources: exactly one prometheus data source")
    for d in prom:
        dests = d.get("jsonData", {}).get("exemplarTraceIdDestinations", [])
        c.expect(any(x.get("name") == "trace_id" and by_uid.get(x.get("datasourceUid"), {}).get("type") == "jaeger"
                     for x in dests), "datasources: prometheus exemplars (trace_id) must link to the Jaeger data source")
    for d in by_uid.values():
        for f in d.get("jsonData", {}).get("derivedFields", []):
            c.expect(f.get("datasourceUid") in by_uid, f"datasources: {d['name']}: derived field to unknown uid")
            try:
                re.compile(f.get("matcherRegex", ""))
            except re.error as e:
                c.expect(False, f"datasources: {d['name']}: matcherRegex: {e}")
        t2l = d.get("jsonData", {}).get("tracesToLogsV2")
        if t2l:
            c.expect(by_uid.get(t2l.get("datasourceUid"), {}).get("type") == "loki",
                     f"datasources: {d['name']}: traces-to-logs must point at Loki")


def check_relabelings(c, where, relabelings):
    for r in relabelings or []:
        c.expect(set(r) <= SM_RELABEL, f"{where}: unknown relabeling keys {sorted(set(r) - SM_RELABEL)}")
        c.expect(r.get("action", "replace").lower() in RELABEL_ACTIONS, f"{where}: relabeling action {r.get('action')}")
        t = r.get("targetLabel")
        if t and not t.startswith("__"):
            c.expect(t in TARGET_LABELS, f"{where}: relabeling sets {t}, not a target label the contract allows")
        try:
            re.compile(r.get("regex", "(.*)"))
        except re.error as e:
            c.expect(False, f"{where}: regex: {e}")


def check_servicemonitor(c, where, sm, service):
    c.expect(sm.get("apiVersion") == "monitoring.coreos.com/v1", f"{where}: apiVersion")
    c.expect(sm.get("kind") == "ServiceMonitor", f"{where}: kind")
    meta = sm.get("metadata", {})
    c.expect(meta.get("name") and meta.get("namespace"), f"{where}: metadata.name and namespace")
    spec = sm.get("spec", {})
    c.expect(set(spec) <= SM_SPEC, f"{where}: unknown spec keys {sorted(set(spec) - SM_SPEC)}")
    sel = spec.get("selector", {})
    c.expect(isinstance(sel.get("matchLabels", {}), dict) and (sel.get("matchLabels") or sel.get("matchExpressions")),
             f"{where}: spec.selector selects nothing")
    for e in sel.get("matchExpressions", []):
        c.expect(e.get("operator") in ("In", "NotIn", "Exists", "DoesNotExist") and e.get("key"),
                 f"{where}: bad matchExpression {e}")
    ns = spec.get("namespaceSelector", {})
    c.expect(set(ns) <= {"any", "matchNames"}, f"{where}: namespaceSelector keys")
    eps = spec.get("endpoints", [])
    c.expect(eps, f"{where}: no endpoints")
    for ep in eps:
        c.expect(set(ep) <= SM_ENDPOINT, f"{where}: unknown endpoint keys {sorted(set(ep) - SM_ENDPOINT)}")
        c.expect(ep.get("path", "/metrics") == "/metrics", f"{where}: path")
        c.expect(ep.get("scheme", "http") in ("http", "https"), f"{where}: scheme")
        for k in ("interval", "scrapeTimeout"):
            if k in ep:
                c.expect(DURATION.match(str(ep[k])), f"{where}: {k} {ep[k]!r} is not a duration")
        if "interval" in ep and "scrapeTimeout" in ep:
            c.expect(seconds(ep["scrapeTimeout"]) <= seconds(ep["interval"]), f"{where}: scrapeTimeout > interval")
        check_relabelings(c, where, ep.get("relabelings"))
        check_relabelings(c, where, ep.get("metricRelabelings"))
    if service is not None:
        svc_labels = service["metadata"].get("labels", {})
        c.expect(all(svc_labels.get(k) == v for k, v in sel.get("matchLabels", {}).items()),
                 f"{where}: selector {sel.get('matchLabels')} does not select Service {service['metadata']['name']}")
        ports = {p.get("name") for p in service["spec"].get("ports", [])}
        c.expect(all(ep.get("port") in ports for ep in eps), f"{where}: endpoint port not among Service ports {ports}")
        c.expect(all(ep.get("honorLabels") is True for ep in eps),
                 f"{where}: the agent's endpoints need honorLabels: its service/namespace/pod labels must win")
        c.expect(spec.get("jobLabel") == "app.kubernetes.io/name" and svc_labels.get("app.kubernetes.io/name") == "tars-agent",
                 f"{where}: job must come out as tars-agent (jobLabel app.kubernetes.io/name)")
        if ns.get("matchNames"):
            c.expect(service["metadata"].get("namespace") in ns["matchNames"], f"{where}: namespaceSelector misses the Service")


def check_kubernetes(c, deploy, rendered):
    k8s = os.path.join(deploy, "kubernetes")
    operator = os.path.join(deploy, "prometheus/operator")
    service = load(os.path.join(k8s, "service.yaml"))
    for d in (k8s, operator):
        kust = load(os.path.join(d, "kustomization.yaml"))
        for r in kust.get("resources", []):
            c.expect(os.path.exists(os.path.join(d, r)), f"{d}/kustomization.yaml: {r} does not exist")
    # The base holds built-in kinds only (no CRDs needed); the overlay adds the monitors.
    c.expect("../../kubernetes" in load(os.path.join(operator, "kustomization.yaml")).get("resources", []),
             "prometheus/operator/kustomization.yaml must build on deploy/kubernetes")
    monitors = [d for d in yaml.safe_load_all(open(os.path.join(operator, "servicemonitor.yaml"))) if d]
    for sm in monitors:
        name = sm.get("metadata", {}).get("name")
        check_servicemonitor(c, f"servicemonitor.yaml {name}", sm, service if name == "tars-agent" else None)
    c.expect({sm["metadata"]["name"] for sm in monitors} == {"tars-agent", "tars-services"},
             "servicemonitor.yaml: expected tars-agent and tars-services")
    for path in rendered:
        rendered_service = {"metadata": {"name": "tars-agent", "namespace": "tars-system",
                                         "labels": {"app.kubernetes.io/name": "tars-agent",
                                                    "app.kubernetes.io/instance": "tars-agent"}},
                            "spec": {"ports": [{"name": "metrics"}]}}
        check_servicemonitor(c, f"{path} (Helm)", load(path), rendered_service)
    svc_selector = service["spec"]["selector"]
    # One `images:` entry retargets every workload to where the user pushed the image.
    image_names = {i.get("name") for i in load(os.path.join(k8s, "kustomization.yaml")).get("images", [])}
    for file in ("daemonset.yaml", "daemonset-gpu.yaml", "probes.yaml"):
        for w in (d for d in yaml.safe_load_all(open(os.path.join(k8s, file))) if d and d["kind"] != "ConfigMap"):
            tmpl = w["spec"]["template"]
            ann = tmpl["metadata"].get("annotations", {})
            port = tmpl["spec"]["containers"][0]["ports"][0]
            c.expect(ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/port") == str(port["containerPort"])
                     and port["name"] == "metrics", f"{file}: prometheus.io annotations must name the metrics port")
            labels = tmpl["metadata"]["labels"]
            for ctr in tmpl["spec"]["containers"]:
                c.expect(ctr["image"].rsplit(":", 1)[0] in image_names,
                         f"{file}: image {ctr['image']} is not retargeted by kustomization.yaml's images:")
            c.expect(all(labels.get(k) == v for k, v in svc_selector.items()),
                     f"{file}: the Service (and so the ServiceMonitor) does not select its pods")
    c.expect(service["spec"]["ports"][0]["targetPort"] == "metrics", "service: targetPort must be the metrics port")


NATIVE_SCRAPE_KEYS = ("scrape_native_histograms", "always_scrape_classic_histograms")


def check_scrape_config(c, deploy, out):
    path = os.path.join(deploy, "prometheus/prometheus-scrape.yml")
    d = load(path)
    copy_ = copy.deepcopy(d)
    copy_["rule_files"] = [os.path.abspath(os.path.join(deploy, "prometheus/rules", os.path.basename(r)))
                           for r in d.get("rule_files", [])]
    for r in copy_["rule_files"]:
        c.expect(os.path.exists(r), f"prometheus-scrape.yml: rule file {r} is not in deploy/prometheus/rules")
    # As shipped but for the rule files' paths, with the native histogram settings the
    # file's comment says to add on the services' job: for Prometheus 3's promtool, which
    # knows Kubernetes discovery and those settings.
    native = copy.deepcopy(copy_)
    for sc in native.get("scrape_configs", []):
        if sc["job_name"] == "tars-services":
            for k in NATIVE_SCRAPE_KEYS:
                sc[k] = True
    with open(os.path.splitext(out)[0] + "-shipped.yml", "w") as f:
        yaml.safe_dump(native, f, sort_keys=False)
    jobs = set()
    for sc in copy_.get("scrape_configs", []):
        jobs.add(sc["job_name"])
        for r in sc.get("relabel_configs", []):
            t = r.get("target_label")
            if t and not t.startswith("__"):
                c.expect(t in TARGET_LABELS, f"prometheus-scrape.yml: {sc['job_name']}: sets {t}, not an allowed target label")
        if sc.pop("kubernetes_sd_configs", None) is not None:
            sc["static_configs"] = [{"targets": ["127.0.0.1:9400"]}]
        # Debian's promtool (2.42) predates these Prometheus 3 settings.
        for k in NATIVE_SCRAPE_KEYS:
            sc.pop(k, None)
    c.expect({"tars-agent", "tars-services", "cluster-autoscaler"} <= jobs, f"prometheus-scrape.yml: jobs {jobs}")
    # The shipped file works on any Prometheus: the native settings are the reader's to add
    # (its comment says how), and checked above with them added.
    for sc in d["scrape_configs"]:
        for k in NATIVE_SCRAPE_KEYS:
            c.expect(k not in sc, f"prometheus-scrape.yml: {sc['job_name']}: {k} needs Prometheus >= 3.8; document it, do not ship it")
    for k in NATIVE_SCRAPE_KEYS:
        c.expect(f"{k}: true" in open(path).read(), f"prometheus-scrape.yml: its comment should say how to turn on {k}")
    agent = next((sc for sc in d["scrape_configs"] if sc["job_name"] == "tars-agent"), {})
    c.expect(agent.get("honor_labels") is True, "prometheus-scrape.yml: tars-agent needs honor_labels: true")
    with open(out, "w") as f:
        yaml.safe_dump(copy_, f, sort_keys=False)


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    deploy, out, rendered = argv[1], argv[2], argv[3:]
    c = Checker()
    check_otel(c, os.path.join(deploy, "otel-collector/config.yaml"))
    check_promtail(c, os.path.join(deploy, "promtail/config.yaml"))
    check_grafana(c, deploy)
    check_kubernetes(c, deploy, rendered)
    check_scrape_config(c, deploy, out)
    for p in c.problems:
        print(p)
    print(f"configs: {c.checks} checks, {len(c.problems)} problems")
    return 1 if c.problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
