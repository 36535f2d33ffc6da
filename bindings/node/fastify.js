'use strict';
// Fastify adapter: the same request metrics and spans as the Express middleware.
//
//   const { fastifyTelemetry } = require('tars-telemetry/fastify');
//   await app.register(fastifyTelemetry, { telemetry: tel });   // also serves GET /metrics
// The package's public API only: the HTTP adapter (the core's server rules), the content
// negotiation and the Web Vitals beacon.
const { Telemetry } = require('./index.js');
const { webVitalsBeacon } = require('./lib/beacon.js');

const STAGE = Symbol('tarsTelemetryStage');

/**
 * @param {import('fastify').FastifyInstance} app
 * @param {{ telemetry: import('./index.js').Telemetry, metricsPath?: string | false, exclude?: string[] }} options
 */
function fastifyTelemetry(app, options, done) {
  const tel = options && options.telemetry;
  if (!tel || typeof tel._id !== 'number') {
    done(Object.assign(new TypeError('fastifyTelemetry needs { telemetry }'), { code: 'ERR_INVALID_ARG_TYPE' }));
    return;
  }
  // The paths not recorded, each with everything below it: the core's rule and defaults.
  const adapter = tel.http.adapter({ exclude: options.exclude });
  const metricsPath = options.metricsPath === undefined ? '/metrics' : options.metricsPath;

  app.addHook('onRequest', (request, reply, next) => {
    const url = request.raw.url || '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const id = adapter.start(request.method, path, request.headers.traceparent);
    // 0: an excluded path, not recorded.
    if (id === 0) return next();
    const stage = adapter.stage(id);
    request[STAGE] = stage;
    if (tel.tracingEnabled) adapter.run(stage, next);
    else next();
  });

  const end = (request, finished) => {
    const stage = request[STAGE];
    if (!stage || stage.ended) return;
    stage.ended = true;
    try {
      const tmpl = request.routeOptions && request.routeOptions.url;
      const status = request.raw.res ? request.raw.res.statusCode : 0;
      adapter.end(stage.id, tmpl, status, !finished);
    } catch (e) {
      process.emitWarning(`tars-telemetry: ${e && e.message}`, 'TarsTelemetryWarning');
    }
  };
  app.addHook('onResponse', (request, reply, next) => {
    const stage = request[STAGE];
    if (stage && !stage.ended) {
      stage.ended = true;
      try {
        const tmpl = request.routeOptions && request.routeOptions.url;
        adapter.end(stage.id, tmpl, reply.statusCode, false);
      } catch (e) {
        process.emitWarning(`tars-telemetry: ${e && e.message}`, 'TarsTelemetryWarning');
      }
    }
    next();
  });
  app.addHook('onRequestAbort', (request, next) => {
    end(request, false);
    next();
  });

  if (metricsPath) {
    app.get(metricsPath, async (request, reply) => {
      const format = Telemetry.formatFor(request.headers.accept);
      const body = await tel.metricsBuffer({ format });
      reply.header('Content-Type', Telemetry.contentTypeOf(format));
      return body;
    });
  }
  done();
}
// Hooks apply to the whole application, not an encapsulated child context.
fastifyTelemetry[Symbol.for('skip-override')] = true;
fastifyTelemetry[Symbol.for('fastify.display-name')] = 'tars-telemetry';

/** A Fastify route handler for Web Vitals beacons (register it with no body parsing). */
function fastifyWebVitals(tel, options = {}) {
  const handler = webVitalsBeacon(tel, options);
  return (request, reply) => {
    reply.hijack();
    handler(request.raw, reply.raw);
  };
}

module.exports = { fastifyTelemetry, fastifyWebVitals, default: fastifyTelemetry };
