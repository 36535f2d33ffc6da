"""ASGI: the request middleware and the /metrics app.

    from tars_telemetry.asgi import TelemetryMiddleware, metrics_app
    app.add_middleware(TelemetryMiddleware, telemetry=tel)
    app.mount("/metrics", metrics_app(tel))

The middleware is pure ASGI. A request is recorded under its route template (the route
the framework matched; an unmatched request under ``__unmatched__``, never its raw path),
timed to the last byte of its response (streaming included). A request whose client went
away before the response was complete, or that was cancelled, is recorded as abandoned
(status 499). ``DEFAULT_EXCLUDED`` (``/metrics`` and the health probes, each with everything
below it) is not recorded, by the same rule as the Node adapters. A W3C
``traceparent`` header makes the request's span a child of the caller's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from . import Telemetry, _native, _otel
from ._stages import _current

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# The core's rules, the same in every adapter: the paths not recorded (each with
# everything below it), and the abandon reasons.
DEFAULT_EXCLUDED: tuple[str, ...] = _native.HTTP_DEFAULT_EXCLUDED_PATHS
CLIENT_DISCONNECTED: str = _native.HTTP_ABANDON_CLIENT_DISCONNECTED
CANCELLED: str = _native.HTTP_ABANDON_CANCELLED
"""The ``error.type`` of a request whose client went away before the last byte."""


def _is_disconnect(e: BaseException) -> bool:
    # The server's send() fails with an OSError (uvicorn's ClientDisconnected) once the
    # client is gone; Starlette turns that into its ClientDisconnect.
    return isinstance(e, OSError) or type(e).__name__ == "ClientDisconnect"


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope.get("headers") or ():
        if k == name:
            try:
                return bytes(v).decode("latin-1")
            except (TypeError, ValueError):
                return None
    return None


def _template(scope: Scope, root_path: str) -> str | None:
    """The matched route's template: the route's path under the mounts' prefixes."""
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not isinstance(path, str):
        return None
    endpoint_root = scope.get("root_path", "")
    if hasattr(route, "routes") or not isinstance(endpoint_root, str):
        # A mount that is the endpoint itself (a sub-application): its path.
        return path or "/"
    prefix = endpoint_root[len(root_path) :] if endpoint_root.startswith(root_path) else ""
    return prefix + path


class TelemetryMiddleware:
    """Records every HTTP request (``http_requests_total``, durations, active requests)
    and its server span."""

    def __init__(
        self,
        app: ASGIApp,
        telemetry: Telemetry,
        exclude_paths: Iterable[str] = DEFAULT_EXCLUDED,
    ) -> None:
        if not isinstance(telemetry, Telemetry):
            raise TypeError("telemetry must be a tars_telemetry.Telemetry")
        self.app = app
        self._n = telemetry.native
        self._excluded = _native.ExcludedPaths(list(exclude_paths))
        self._routes: dict[str, _native.HttpRoute] = {}
        # Route handles by the matched route object and the mount prefixes: a route's
        # template is worked out once, not on every request. Keyed by id(), since routes
        # need not be hashable; the route is kept in the value so its id stays its own.
        self._by_route: dict[tuple[int, str, str], tuple[object, _native.HttpRoute | None]] = {}

    def _is_excluded(self, path: str) -> bool:
        return self._excluded.contains(path)

    def _route(self, template: str) -> _native.HttpRoute:
        r = self._routes.get(template)
        if r is None:
            r = self._n.http_route(template)
            if len(self._routes) < 4096:
                self._routes[template] = r
        return r

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if self._is_excluded(path):
            await self.app(scope, receive, send)
            return

        tp = _header(scope, b"traceparent")
        parent = _native.SpanContext.from_traceparent(tp) if tp else None
        if parent is None:
            # current_span_context(), inlined: this runs on every request.
            parent = _otel.current() if _otel.is_joined else _current.get()
        req = self._n.http_start(scope.get("method", "GET"), path, parent)
        root_path = scope.get("root_path", "")
        sc = req.span_context()
        token = _current.set(sc) if sc is not None else None
        if sc is None and parent is not None and parent.sampled:
            # Not traced here: the exemplars point at the caller's (or another SDK's) span.
            req.set_trace(parent)
        status = 0
        disconnected = False

        def bind_route() -> None:
            route = scope.get("route")
            endpoint_root = scope.get("root_path", "")
            key = (id(route), root_path, endpoint_root)
            hit = self._by_route.get(key)
            if hit is not None and hit[0] is route:
                handle = hit[1]
            else:
                t = _template(scope, root_path)
                handle = None if t is None else self._route(t)
                if route is not None and len(self._by_route) < 4096:
                    self._by_route[key] = (route, handle)
            if handle is not None:
                req.set_route(handle)

        async def receive_wrapper() -> Message:
            nonlocal disconnected
            message = await receive()
            if message.get("type") == "http.disconnect":
                disconnected = True
            return message

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            kind = message.get("type")
            if kind == "http.response.start":
                status = int(message.get("status", 0))
            await send(message)
            if kind == "http.response.body" and not message.get("more_body", False):
                # Timed to the last byte.
                bind_route()
                req.finish(status)

        try:
            await self.app(scope, receive_wrapper, send_wrapper)
        except asyncio.CancelledError:
            bind_route()
            req.abandon(CANCELLED)
            raise
        except BaseException as e:
            bind_route()
            if not req.ended:
                if _is_disconnect(e) or disconnected:
                    req.abandon(CLIENT_DISCONNECTED)
                elif status == 0:
                    # No response started: the server answers 500.
                    req.record_error(type(e).__qualname__)
                    req.finish(500)
                else:
                    req.abandon(type(e).__qualname__)
            raise
        else:
            if not req.ended:
                bind_route()
                if disconnected or status != 0:
                    # The client went away before the last byte.
                    req.abandon(CLIENT_DISCONNECTED)
                else:
                    req.finish(500)
        finally:
            if token is not None:
                try:
                    _current.reset(token)
                except ValueError:
                    pass


def metrics_app(telemetry: Telemetry) -> ASGIApp:
    """An ASGI app that serves the exposition (OpenMetrics when the scraper asks for it),
    for ``app.mount("/metrics", metrics_app(tel))``."""
    n = telemetry.native

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope.get("method") not in ("GET", "HEAD"):
            await send(
                {
                    "type": "http.response.start",
                    "status": 405,
                    "headers": [(b"allow", b"GET, HEAD"), (b"content-length", b"0")],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        accept = _header(scope, b"accept")
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None  # another event loop (trio): render here, the GIL released
        if loop is not None:
            # Off the event loop: in multi-process mode a render maps every worker's file
            # and may wait for the directory's lock while another process folds a dead
            # worker; other requests go on meanwhile.
            body, content_type = await loop.run_in_executor(None, n.render, accept)
        else:
            body, content_type = n.render(accept)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", content_type.encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
        )

    return app


class _WebVitalsApp:
    """The beacon endpoint (an ASGI app object, so that ``app.add_route`` serves it at its
    exact path)."""

    def __init__(self, telemetry: Telemetry, routes: Iterable[str] | None) -> None:
        self._vitals = telemetry.web_vitals
        self._allowed = None if routes is None else [str(r) for r in routes]
        self._limit: int = _native.WEB_VITALS_MAX_BEACON_BYTES

    @staticmethod
    async def _reply(
        send: Send, status: int, extra: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        headers = [(b"content-length", b"0"), *(extra or [])]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope.get("method") != "POST":
            await self._reply(send, 405, [(b"allow", b"POST")])
            return
        length = _header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > self._limit:
            self._vitals.reject("oversized")
            await self._reply(send, 413, [(b"connection", b"close")])
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self._limit:
                self._vitals.reject("oversized")
                await self._reply(send, 413, [(b"connection", b"close")])
                return
            if not message.get("more_body", False):
                break
        status, _ = self._vitals.beacon(bytes(body), self._allowed)
        await self._reply(send, status)


def web_vitals_app(telemetry: Telemetry, routes: Iterable[str] | None = None) -> ASGIApp:
    """An ASGI app that takes ``navigator.sendBeacon`` Web Vitals reports (JSON: one report
    or an array of up to 20: ``{name, value, route, navigationType}``), records them and
    answers 204; a malformed or oversized beacon is refused (400/413) and counted in
    ``tars_web_vitals_rejected_total``, by the core's checks, as the Node package's
    ``webVitalsHandler``. ``routes``, when given, lists the only route templates taken.
    Serve it with ``app.add_route("/vitals", web_vitals_app(tel), methods=["POST"])``."""
    return _WebVitalsApp(telemetry, routes)
