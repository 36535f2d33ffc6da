#!/usr/bin/env node
'use strict';
// Builds the native addon from source with cargo (run by `npm install`), unless a prebuilt
// one for this platform is present. Inside a checkout of the repository it builds into the
// repository's shared target directory; elsewhere into ./target.
//
//   TARS_TELEMETRY_PROFILE=debug|release  (default release)
//   TARS_TELEMETRY_SKIP_BUILD=1           (skip; use a prebuilt addon)
//   TARS_TELEMETRY_TYPES=1                (also regenerate native.d.ts from the Rust side)
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const { triple } = require('../lib/triple.js');
const out = path.join(root, `tars-telemetry.${triple}.node`);

if (process.env.TARS_TELEMETRY_SKIP_BUILD === '1') {
  console.log('tars-telemetry: TARS_TELEMETRY_SKIP_BUILD=1, not building the addon');
  process.exit(0);
}
try {
  require.resolve(`@tars-telemetry/${triple}`, { paths: [root] });
  console.log(`tars-telemetry: using the prebuilt @tars-telemetry/${triple}`);
  process.exit(0);
} catch {
  // No prebuilt package: build from source.
}

const cargo = process.env.CARGO || 'cargo';
const probe = spawnSync(cargo, ['--version'], { encoding: 'utf8' });
if (probe.status !== 0) {
  const prebuilt = Object.keys(require('../package.json').optionalDependencies || {});
  console.error(
    `tars-telemetry: no prebuilt addon for ${triple} is installed` +
      (prebuilt.length ? ` (prebuilt: ${prebuilt.join(', ')})` : '') +
      ', and building the native addon needs Rust (cargo was not found) and a C compiler.\n' +
      'Install Rust 1.88 or newer with rustup (https://rustup.rs), then run `npm rebuild tars-telemetry`.',
  );
  process.exit(1);
}

// The crate's rust-version: an older toolchain fails deep in a dependency's build, so say
// what is needed before starting.
const want = (fs.readFileSync(path.join(root, 'Cargo.toml'), 'utf8').match(/^rust-version\s*=\s*"([^"]+)"/m) || [])[1];
const have = (probe.stdout.match(/^cargo (\d+\.\d+(?:\.\d+)?)/) || [])[1];
const older = (a, b) => {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    if ((x[i] || 0) !== (y[i] || 0)) return (x[i] || 0) < (y[i] || 0);
  }
  return false;
};
if (want && have && older(have, want)) {
  console.error(
    `tars-telemetry: building the native addon needs Rust ${want} or newer; found cargo ${have}.\n` +
      'With rustup: `rustup update stable`, then run `npm rebuild tars-telemetry`.',
  );
  process.exit(1);
}

const profile = process.env.TARS_TELEMETRY_PROFILE === 'debug' ? 'debug' : 'release';
const repo = path.resolve(root, '..', '..');
const inCheckout =
  fs.existsSync(path.join(repo, 'Cargo.toml')) &&
  fs.readFileSync(path.join(repo, 'Cargo.toml'), 'utf8').includes('[workspace]') &&
  fs.existsSync(path.join(repo, 'tars-telemetry', 'Cargo.toml'));
const targetDir = process.env.CARGO_TARGET_DIR || path.join(inCheckout ? repo : root, 'target');
const typesDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tars-telemetry-types-'));
const wantTypes = process.env.TARS_TELEMETRY_TYPES === '1';
if (wantTypes) {
  // napi-derive writes the type of every exported item when it expands; touch the crate
  // root so that it does expand.
  const lib = path.join(root, 'src', 'lib.rs');
  const now = new Date();
  fs.utimesSync(lib, now, now);
}
const args = ['build', '--manifest-path', path.join(root, 'Cargo.toml'), '--lib', '--locked'];
if (profile === 'release') args.push('--release');
console.log(`tars-telemetry: cargo ${args.join(' ')} (target ${targetDir})`);
const r = spawnSync(cargo, args, {
  stdio: 'inherit',
  env: { ...process.env, CARGO_TARGET_DIR: targetDir, NAPI_TYPE_DEF_TMP_FOLDER: typesDir },
});
if (r.status !== 0) {
  console.error('tars-telemetry: cargo build failed');
  process.exit(r.status || 1);
}
const libName =
  process.platform === 'win32'
    ? 'tars_telemetry_node.dll'
    : process.platform === 'darwin'
      ? 'libtars_telemetry_node.dylib'
      : 'libtars_telemetry_node.so';
fs.copyFileSync(path.join(targetDir, profile, libName), out);
console.log(`tars-telemetry: built ${path.relative(process.cwd(), out) || out} (${profile})`);
if (wantTypes) {
  require('./gen-types.js').write(typesDir, path.join(root, 'native.d.ts'));
}
fs.rmSync(typesDir, { recursive: true, force: true });
