'use strict';
// Loads the native addon: an explicit path (TARS_TELEMETRY_NATIVE), the one built from
// source next to this file, or a per-platform prebuilt package
// (@tars-telemetry/<platform>-<arch>[-<libc>]), in that order.
const fs = require('node:fs');
const path = require('node:path');

const { triple } = require('./lib/triple.js');

function load() {
  const tried = [];
  const explicit = process.env.TARS_TELEMETRY_NATIVE;
  const candidates = explicit ? [explicit] : [path.join(__dirname, `tars-telemetry.${triple}.node`)];
  for (const file of candidates) {
    tried.push(file);
    if (fs.existsSync(file)) return require(file);
  }
  const pkg = `@tars-telemetry/${triple}`;
  tried.push(pkg);
  try {
    return require(pkg);
  } catch (e) {
    if (e && e.code !== 'MODULE_NOT_FOUND') throw e;
  }
  // The published package lists its prebuilt platforms in optionalDependencies.
  const prebuilt = Object.keys(require('./package.json').optionalDependencies || {});
  const hint = prebuilt.includes(pkg)
    ? `${pkg} is a prebuilt package of this version: reinstall without --omit=optional / --no-optional. `
    : prebuilt.length > 0
      ? `Prebuilt packages exist for ${prebuilt.map((p) => p.replace('@tars-telemetry/', '')).join(', ')} only. `
      : '';
  const err = new Error(
    `tars-telemetry: no native addon for ${triple} (tried ${tried.join(', ')}). ${hint}` +
      'Or build it from source with `npm rebuild tars-telemetry`, which needs Rust 1.88 or newer ' +
      '(https://rustup.rs) and a C compiler (npm 11 runs the build only for packages named in ' +
      'its allow-scripts setting).',
  );
  err.code = 'ERR_TARS_NO_ADDON';
  throw err;
}

module.exports = load();
module.exports.triple = triple;
