// Type-checks Grafana dashboards against Grafana's published schema: the Dashboard type of
// @grafana/schema, and for each panel the options and field config types of its plugin
// (timeseries, stat). Each dashboard JSON becomes a TypeScript module whose objects must
// `satisfy` those types under `tsc --strict`: an unknown property, a wrong type or a
// missing required field fails the check. String enums of the schema are compared by
// their values, as JSON spells them.
//
// Usage: node check.mjs DASHBOARD_DIR   (after `npm ci` in this directory)
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const dir = resolve(process.argv[2] ?? join(here, '..', 'dashboards'));
const tsc = join(here, 'node_modules', '.bin', 'tsc');

const header = `import type { Dashboard } from '@grafana/schema';
import type { Options as TimeSeriesOptions, FieldConfig as TimeSeriesFieldConfig } from '@grafana/schema/dist/esm/raw/composable/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen';
import type { Options as StatOptions } from '@grafana/schema/dist/esm/raw/composable/stat/panelcfg/x/StatPanelCfg_types.gen';

// JSON spells enum members by value: accept the values of string enums.
type Loose<T> = T extends string
  ? \`\${T}\`
  : T extends ReadonlyArray<infer U>
    ? Array<Loose<U>>
    : T extends object
      ? { [K in keyof T]: Loose<T[K]> }
      : T;
`;

const pluginTypes = {
  timeseries: { options: 'Loose<TimeSeriesOptions>', custom: 'Loose<TimeSeriesFieldConfig>' },
  stat: { options: 'Loose<StatOptions>', custom: null },
};

function moduleFor(dashboard) {
  let out = header;
  out += `\nexport const dashboard = ${JSON.stringify(dashboard, null, 2)} satisfies Loose<Dashboard>;\n`;
  const panels = (dashboard.panels ?? []).flatMap((p) => [p, ...(p.panels ?? [])]);
  for (const p of panels) {
    const types = pluginTypes[p.type];
    if (!types) {
      throw new Error(`panel ${p.id} "${p.title}": type ${p.type} is not one this check knows`);
    }
    out += `export const panel_${p.id}_options = ${JSON.stringify(p.options ?? {})} satisfies ${types.options};\n`;
    const custom = p.fieldConfig?.defaults?.custom;
    if (types.custom && custom) {
      out += `export const panel_${p.id}_custom = ${JSON.stringify(custom)} satisfies ${types.custom};\n`;
    }
  }
  return out;
}

function typecheck(files) {
  try {
    execFileSync(
      tsc,
      ['--noEmit', '--strict', '--skipLibCheck', '--module', 'esnext', '--moduleResolution', 'bundler',
        '--target', 'es2022', '--types', '', ...files],
      { cwd: here, encoding: 'utf8', stdio: 'pipe' },
    );
    return { ok: true, output: '' };
  } catch (e) {
    return { ok: false, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

const written = [];
try {
  // Self-test: a dashboard in the legacy model (string datasource, graph-era `yaxes`) must
  // fail, or a passing check proves nothing.
  const legacy = {
    schemaVersion: 16,
    title: 'legacy',
    panels: [{ id: 1, type: 'timeseries', title: 'x', datasource: 'Prometheus', yaxes: [], targets: [] }],
  };
  const legacyFile = join(here, 'selftest-legacy.generated.ts');
  writeFileSync(legacyFile, moduleFor(legacy));
  written.push(legacyFile);
  if (typecheck([legacyFile]).ok) {
    console.error('schema check self-test: a legacy dashboard passed the type check');
    process.exit(1);
  }

  const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
  if (files.length === 0) {
    console.error(`no dashboards in ${dir}`);
    process.exit(1);
  }
  const modules = files.map((f) => {
    const file = join(here, `${basename(f, '.json')}.generated.ts`);
    writeFileSync(file, moduleFor(JSON.parse(readFileSync(join(dir, f), 'utf8'))));
    written.push(file);
    return file;
  });
  const result = typecheck(modules);
  if (!result.ok) {
    console.error(result.output);
    console.error(`dashboards do not match @grafana/schema: ${files.join(', ')}`);
    process.exit(1);
  }
  console.log(`@grafana/schema: ${files.length} dashboards match Dashboard, TimeSeries and Stat types (${files.join(', ')})`);
} finally {
  for (const f of written) rmSync(f, { force: true });
}
