'use strict';
// Express adapter: request metrics and spans, /metrics, and a Web Vitals beacon endpoint.
//
//   const { expressMiddleware, metricsHandler } = require('tars-telemetry/express');
//   app.use(expressMiddleware(tel));
//   app.get('/metrics', metricsHandler(tel));
const { _internal, PROMETHEUS_CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE } = require('./index.js');
const { HttpRequest } = require('./index.js');
const { webVitalsBeacon } = require('./lib/beacon.js');

const { native, storage, methodIndex, call, wantsOpenMetrics } = _internal;

const DEFAULT_EXCLUDE = ['/metrics', '/health', '/healthz', '/livez', '/readyz', '/ready'];

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

/**
 * Keeps `req.baseUrl` as it is when the router matches a route (sets `req.route`): a
 * router restores `baseUrl` when an error leaves it, before the response ends.
 */
function trackRoute(req) {
  let route;
  const seen = { baseUrl: undefined };
  Object.defineProperty(req, 'route', {
    configurable: true,
    enumerable: true,
    get: () => route,
    set: (v) => {
      route = v;
      seen.baseUrl = req.baseUrl;
    },
  });
  return seen;
}

/**
 * Times every request from its arrival to its response's `finish` (an aborted request,
 * one whose connection closed first, is recorded as abandoned), labeled by method, route
 * template and status. With tracing, each request has a server span (a child of an
 * incoming `traceparent`), current for everything the handlers start.
 *
 * @param {import('./index.js').Telemetry} tel
 * @param {{ exclude?: string[] }} [options] paths not recorded (default /metrics and health)
 */
function expressMiddleware(tel, options = {}) {
  const exclude = new Set(options.exclude || DEFAULT_EXCLUDE);
  const telId = tel._id;
  const http = tel.http;
  return function tarsTelemetry(req, res, next) {
    const path = pathname(req.originalUrl || req.url || '/');
    if (exclude.has(path)) return next();
    const tracing = tel.tracingEnabled;
    const tp = tracing ? req.headers.traceparent : undefined;
    const id = call(native.httpStart, telId, methodIndex(req.method), tracing ? path.slice(0, 2048) : '', 0, typeof tp === 'string' ? tp : undefined);
    const stage = tracing ? new HttpRequest(tel, id) : undefined;
    const seen = trackRoute(req);
    let done = false;
    const end = (finished) => {
      if (done) return;
      done = true;
      if (stage) stage.ended = true;
      res.removeListener('finish', onFinish);
      res.removeListener('close', onClose);
      const tmpl = routeTemplate(req, seen.baseUrl);
      try {
        if (tmpl !== undefined) native.httpSetRoute(telId, id, http.routeId(tmpl));
        if (finished) native.httpFinish(id, res.statusCode);
        else native.stageAbandon(id, 'aborted');
      } catch (e) {
        // A request must never fail because of its telemetry.
        process.emitWarning(`tars-telemetry: ${e && e.message}`, 'TarsTelemetryWarning');
      }
    };
    const onFinish = () => end(true);
    const onClose = () => end(res.writableFinished);
    res.once('finish', onFinish);
    res.once('close', onClose);
    if (!stage) return next();
    return storage.run(stage, next);
  };
}

/**
 * Serves the exposition (rendered off the main thread): OpenMetrics when the scraper asks
 * for it in `Accept`, the Prometheus text format otherwise.
 */
function metricsHandler(tel) {
  return function metrics(req, res, next) {
    const om = wantsOpenMetrics(req.headers.accept);
    tel.metricsBuffer({ openMetrics: om }).then(
      (body) => {
        res.statusCode = 200;
        res.setHeader('Content-Type', om ? OPENMETRICS_CONTENT_TYPE : PROMETHEUS_CONTENT_TYPE);
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
