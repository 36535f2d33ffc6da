'use strict';
// Express adapter: request metrics and spans, /metrics, and a Web Vitals beacon endpoint.
//
//   const { expressMiddleware, metricsHandler } = require('tars-telemetry/express');
//   app.use(expressMiddleware(tel));
//   app.get('/metrics', metricsHandler(tel));
// The package's public API only: the HTTP adapter (the core's server rules), the content
// negotiation and the Web Vitals beacon.
const { Telemetry } = require('./index.js');
const { webVitalsBeacon } = require('./lib/beacon.js');
const http = require('node:http');

function pathname(url) {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

/** The route template Express matched: `req.baseUrl + req.route.path`. */
function routeTemplate(req, baseUrl = req.baseUrl) {
  const r = req.route;
  if (!r) return undefined;
  let p = r.path;
  if (Array.isArray(p)) p = p.join('|');
  if (typeof p !== 'string') p = String(p);
  return (baseUrl || '') + p;
}

// Per-request state, on the request and response themselves: no closure per request.
const kRoute = Symbol('tars.route');
const kBaseUrl = Symbol('tars.baseUrl');
const kRequest = Symbol('tars.request');

/** Accessors that keep `req.baseUrl` as it is when the router sets `req.route`. */
const routeAccessors = {
  configurable: true,
  enumerable: true,
  get() {
    return this[kRoute];
  },
  set(v) {
    this[kRoute] = v;
    this[kBaseUrl] = this.baseUrl;
  },
};

/** Prototypes whose `route` is tracked already (Express gives each app its own). */
const tracked = new WeakSet();

/**
 * Keeps `req.baseUrl` as it is when the router matches a route (sets `req.route`): a
 * router restores `baseUrl` when an error leaves it, before the response ends. The
 * accessors go once on the app's request prototype (Express's `app.request`), not on
 * every request: an accessor defined on an object turns it into a slow dictionary and
 * costs a few microseconds per request in garbage alone. Requests of a plain
 * `http.Server` (whose prototype is Node's own) get them on the request itself.
 */
function trackRoute(req) {
  const proto = Object.getPrototypeOf(req);
  if (tracked.has(proto)) return;
  if (proto !== http.IncomingMessage.prototype && !Object.prototype.hasOwnProperty.call(proto, 'route')) {
    Object.defineProperty(proto, 'route', routeAccessors);
    tracked.add(proto);
    return;
  }
  Object.defineProperty(req, 'route', routeAccessors);
}

/** Ends the request's stage when its response closes (finished, or cut short). */
function onResponseClose() {
  const r = this[kRequest];
  if (r === undefined) return;
  this[kRequest] = undefined;
  const req = r.req;
  const baseUrl = req[kBaseUrl];
  const tmpl = routeTemplate(req, baseUrl === undefined ? req.baseUrl : baseUrl);
  try {
    if (r.stage) r.stage.ended = true;
    // One call: the template, and the status or the client gone first (the core's rules).
    r.adapter.end(r.id, tmpl, this.statusCode, !this.writableFinished);
  } catch (e) {
    // A request must never fail because of its telemetry.
    process.emitWarning(`tars-telemetry: ${e && e.message}`, 'TarsTelemetryWarning');
  }
}

/**
 * Times every request from its arrival to its response's end (an aborted request, one
 * whose connection closed first, is recorded as abandoned), labeled by method, route
 * template and status. With tracing, each request has a server span (a child of an
 * incoming `traceparent`), current for everything the handlers start.
 *
 * @param {import('./index.js').Telemetry} tel
 * @param {{ exclude?: string[] }} [options] paths not recorded, each with everything below it
 *   (default: DEFAULT_EXCLUDED_PATHS, the scrape and the probes; the core decides)
 */
function expressMiddleware(tel, options = {}) {
  const adapter = tel.http.adapter({ exclude: options.exclude });
  return function tarsTelemetry(req, res, next) {
    const path = pathname(req.originalUrl || req.url || '/');
    const id = adapter.start(req.method, path, req.headers.traceparent);
    // 0: an excluded path, not recorded.
    if (id === 0) return next();
    const stage = tel.tracingEnabled ? adapter.stage(id) : undefined;
    trackRoute(req);
    // 'close' comes after 'finish' for every response, and alone for one cut short.
    res[kRequest] = { req, id, stage, adapter };
    res.on('close', onResponseClose);
    if (!stage) return next();
    return adapter.run(stage, next);
  };
}

/**
 * Serves the exposition (rendered off the main thread) in the format the scraper's `Accept`
 * asks for: protobuf (native histograms), OpenMetrics, or the Prometheus text format.
 */
function metricsHandler(tel) {
  return function metrics(req, res, next) {
    const format = Telemetry.formatFor(req.headers.accept);
    tel.metricsBuffer({ format }).then(
      (body) => {
        res.statusCode = 200;
        res.setHeader('Content-Type', Telemetry.contentTypeOf(format));
        res.setHeader('Content-Length', body.length);
        res.end(body);
      },
      (e) => (typeof next === 'function' ? next(e) : res.destroy(e)),
    );
  };
}

/**
 * Accepts `navigator.sendBeacon` Web Vitals reports (JSON: one report or an array of up
 * to 20: `{ name, value, route, navigationType }`), records them, and answers 204; a
 * malformed or oversized beacon is rejected (400/413) and counted in
 * tars_web_vitals_rejected_total. Route templates are label values: only those the page
 * reports are taken (`routes`, when given, lists the allowed ones); past the family's
 * series budget new ones fold into the overflow series.
 */
function webVitalsHandler(tel, options = {}) {
  return webVitalsBeacon(tel, options);
}

module.exports = { expressMiddleware, metricsHandler, webVitalsHandler, routeTemplate };
