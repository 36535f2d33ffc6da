#!/usr/bin/env python3
"""An OTLP trace receiver for tests, independent of the Rust exporter's code.

It is built on the official protobuf definitions (the `opentelemetry-proto` package) and
`grpcio`, and accepts traces over:

  - gRPC:           opentelemetry.proto.collector.trace.v1.TraceService/Export
  - HTTP/protobuf:  POST /v1/traces, Content-Type application/x-protobuf
  - HTTP/JSON:      POST /v1/traces, Content-Type application/json (OTLP/JSON carries
                    trace and span ids as hex; they are converted before parsing, since
                    protobuf's JSON mapping expects base64)

Every received span is appended as one JSON line to --out:

  {"transport": "grpc", "service": "tars-backend", "resource": {...}, "scope": "...",
   "trace_id": "<32 hex>", "span_id": "<16 hex>", "parent_span_id": "<16 hex or empty>",
   "name": "...", "kind": "SERVER", "start_ns": 0, "end_ns": 0, "attributes": {...},
   "status_code": "ERROR", "status_message": "...", "events": [...]}

On start it prints one line, {"grpc": "127.0.0.1:PORT", "http": "127.0.0.1:PORT"}, so
that port 0 can be asked for. GET /spans returns every span received so far as a JSON
array. --delay-ms makes every export wait that long before answering (a slow collector).

Only 127.0.0.1 (or another address given explicitly) is bound.

usage: otlp_receiver.py --out spans.jsonl [--grpc 127.0.0.1:0] [--http 127.0.0.1:0]
                        [--delay-ms 0]
"""

import argparse
import base64
import json
import re
import signal
import sys
import threading
import time
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.trace.v1 import trace_pb2

KINDS = {v: k.replace("SPAN_KIND_", "") for k, v in trace_pb2.Span.SpanKind.items()}
STATUS = {v: k.replace("STATUS_CODE_", "") for k, v in trace_pb2.Status.StatusCode.items()}


def any_value(v):
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in v.kvlist_value.values}
    if kind == "bytes_value":
        return v.bytes_value.hex()
    return getattr(v, kind)


def attrs(kvs):
    return {kv.key: any_value(kv.value) for kv in kvs}


class Store:
    def __init__(self, path):
        self.lock = threading.Lock()
        self.spans = []
        self.file = open(path, "a", encoding="utf-8")

    def add(self, request, transport):
        rows = []
        for rs in request.resource_spans:
            resource = attrs(rs.resource.attributes)
            for ss in rs.scope_spans:
                for s in ss.spans:
                    rows.append({
                        "transport": transport,
                        "service": resource.get("service.name"),
                        "resource": resource,
                        "scope": ss.scope.name,
                        "trace_id": s.trace_id.hex(),
                        "span_id": s.span_id.hex(),
                        "parent_span_id": s.parent_span_id.hex(),
                        "name": s.name,
                        "kind": KINDS.get(s.kind, str(s.kind)),
                        "start_ns": s.start_time_unix_nano,
                        "end_ns": s.end_time_unix_nano,
                        "attributes": attrs(s.attributes),
                        "status_code": STATUS.get(s.status.code, str(s.status.code)),
                        "status_message": s.status.message,
                        "events": [{"name": e.name, "attributes": attrs(e.attributes)} for e in s.events],
                        "trace_state": s.trace_state,
                    })
        with self.lock:
            self.spans.extend(rows)
            for r in rows:
                self.file.write(json.dumps(r) + "\n")
            self.file.flush()
        return len(rows)

    def all(self):
        with self.lock:
            return list(self.spans)


HEX_ID = re.compile(r'"(traceId|spanId|parentSpanId)"\s*:\s*"([0-9a-fA-F]*)"')


def hex_ids_to_base64(body):
    """OTLP/JSON ids are hex; protobuf's JSON mapping of bytes fields wants base64."""
    def fix(m):
        return '"%s":"%s"' % (m.group(1), base64.b64encode(bytes.fromhex(m.group(2))).decode())
    return HEX_ID.sub(fix, body)


class TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, store, delay):
        self.store = store
        self.delay = delay

    def Export(self, request, context):
        if self.delay:
            time.sleep(self.delay)
        self.store.add(request, "grpc")
        return trace_service_pb2.ExportTraceServiceResponse()


def http_handler(store, delay):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def reply(self, code, body, ctype):
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path == "/spans":
                self.reply(200, json.dumps(store.all()).encode(), "application/json")
            else:
                self.reply(404, b"not found\n", "text/plain")

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            if self.path != "/v1/traces":
                self.reply(404, b"not found\n", "text/plain")
                return
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            request = trace_service_pb2.ExportTraceServiceRequest()
            try:
                if ctype == "application/json":
                    json_format.Parse(hex_ids_to_base64(body.decode()), request)
                else:
                    request.ParseFromString(body)
            except Exception as e:  # a garbage body: tell the sender, keep serving
                self.reply(400, ("bad request: %s\n" % e).encode(), "text/plain")
                return
            if delay:
                time.sleep(delay)
            store.add(request, "http")
            response = trace_service_pb2.ExportTraceServiceResponse()
            if ctype == "application/json":
                self.reply(200, json_format.MessageToJson(response).encode(), "application/json")
            else:
                self.reply(200, response.SerializeToString(), "application/x-protobuf")

    return Handler


def split(addr):
    host, _, port = addr.rpartition(":")
    return host, int(port)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--grpc", default="127.0.0.1:0")
    p.add_argument("--http", default="127.0.0.1:0")
    p.add_argument("--delay-ms", type=int, default=0)
    a = p.parse_args()
    store = Store(a.out)
    delay = a.delay_ms / 1000.0

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(TraceService(store, delay), server)
    host, port = split(a.grpc)
    grpc_port = server.add_insecure_port("%s:%d" % (host, port))
    server.start()

    http = ThreadingHTTPServer(split(a.http), http_handler(store, delay))
    http.daemon_threads = True
    threading.Thread(target=http.serve_forever, daemon=True).start()

    print(json.dumps({"grpc": "%s:%d" % (host, grpc_port),
                      "http": "%s:%d" % http.server_address[:2]}), flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    # Stop when the parent closes our stdin (it died), or on a signal.
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    stop.wait()
    server.stop(0)
    http.shutdown()


if __name__ == "__main__":
    main()
