'use strict';
// Writes native.d.ts, the types of the native addon, from what napi-derive wrote while it
// expanded the Rust code (one JSON object a line, in NAPI_TYPE_DEF_TMP_FOLDER/<crate>):
// the same translation @napi-rs/cli makes, for the kinds this crate uses.
const fs = require('node:fs');
const path = require('node:path');

function indent(s, pad) {
  return s
    .split('\n')
    .map((l) => (l.trim() ? pad + l.trimStart() : l))
    .join('\n');
}

function doc(d, pad = '') {
  return d ? indent(d.trimEnd(), pad) + '\n' : '';
}

function render(lines) {
  const defs = lines.filter(Boolean).map((l) => JSON.parse(l));
  const classes = new Map();
  const out = [];
  for (const d of defs) {
    if (d.kind === 'struct') classes.set(d.name, { head: d, members: [d.def] });
  }
  for (const d of defs) {
    if (d.kind === 'impl' && classes.has(d.name)) classes.get(d.name).members.push(d.def);
  }
  const items = [];
  for (const d of defs) {
    switch (d.kind) {
      case 'fn':
        items.push([d.name, `${doc(d.js_doc)}export declare ${d.def}`]);
        break;
      case 'interface':
        items.push([d.name, `${doc(d.js_doc)}export interface ${d.name} {\n${indent(d.def, '  ')}\n}`]);
        break;
      case 'struct': {
        const c = classes.get(d.name);
        const body = c.members.filter(Boolean).map((m) => indent(m, '  ')).join('\n');
        items.push([d.name, `${doc(d.js_doc)}export declare class ${d.name} {\n${body}\n}`]);
        break;
      }
      case 'enum':
        items.push([d.name, `${doc(d.js_doc)}export declare const enum ${d.name} {\n${indent(d.def, '  ')}\n}`]);
        break;
      case 'const':
        // napi-derive writes the whole declaration (`export const NAME: type`).
        items.push([d.name, `${doc(d.js_doc)}export declare const ${d.def.replace(/^export\s+const\s+/, '')}`]);
        break;
      case 'type':
        items.push([d.name, `${doc(d.js_doc)}export type ${d.def}`]);
        break;
      case 'impl':
        break;
      default:
        throw new Error(`gen-types: unknown kind ${d.kind} (${d.name})`);
    }
  }
  items.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  out.push('// Generated from the Rust sources by scripts/gen-types.js (TARS_TELEMETRY_TYPES=1');
  out.push('// node scripts/build-addon.js); do not edit.');
  out.push('/// <reference types="node" />');
  out.push('');
  for (const [, text] of items) out.push(text, '');
  return out.join('\n');
}

function write(folder, dest) {
  const files = fs.readdirSync(folder).map((f) => path.join(folder, f));
  if (files.length === 0) throw new Error(`gen-types: napi-derive wrote no types into ${folder} (was the crate rebuilt?)`);
  const lines = files.flatMap((f) => fs.readFileSync(f, 'utf8').split('\n'));
  fs.writeFileSync(dest, render(lines));
  console.log(`tars-telemetry: wrote ${dest}`);
}

module.exports = { render, write };
