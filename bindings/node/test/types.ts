// Compiled by tsc --strict only (scripts/test-node.sh): the declarations fit together.
import { Telemetry, renderMultiprocessDir, MULTIPROC_DIR_ENV, type Stage } from '../index.js';
import { expressMiddleware, metricsHandler } from '../express.js';
import * as native from '../native.js';

const t = new Telemetry({ serviceName: 'tars-ui' });
const worker = new Telemetry({ serviceName: 'tars-ui', multiprocDir: process.env[MULTIPROC_DIR_ENV] ?? '/run/tars' });
const dir: string | undefined = worker.multiprocDir;
export const merged: Promise<string> = renderMultiprocessDir(dir ?? '/run/tars', { openMetrics: true });
const c = new t.Counter({ name: 'x_total', help: 'x', labelNames: ['a'] as const });
c.inc({ a: 'b' }, 2);
c.labels('b').inc();
const g = new t.Gauge({ name: 'g', help: 'g' });
g.set(1);
const h = new t.Histogram({ name: 'h', help: 'h', buckets: [1, 2] });
h.observe(1);
const s: Stage | undefined = t.currentStage();
void s;
void expressMiddleware(t);
void metricsHandler(t);
const id: number = native.httpRoute(0, '/x');
void id;
export async function f(): Promise<number> {
  return t.rag.query(async (q) => {
    q.setResult({ sources: 1 });
    return 1;
  });
}
export async function domains(): Promise<string | null> {
  await t.embeddings.generate(async () => t.embeddings.addGenerated(3));
  await t.vectorStore.search(() => 1);
  await t.db.query('select', async () => 0, { summary: 'SELECT documents' });
  await t.documents.ingest((job) => job.setChunks(2));
  t.cache.record('redis', 'set', 'ok');
  const ws = t.websocket.connectionOpened();
  ws.inbound();
  ws.close();
  return t.redis.command('GET', async (call) => {
    call.lookup(false);
    return null;
  });
}
