// The package's types under `tsc --strict`: domain helpers, explicit scopes, custom
// families, the Express adapter.
import express from 'express';
import { Telemetry, type RagQuery } from 'tars-telemetry';
import { expressMiddleware, metricsHandler } from 'tars-telemetry/express';

const tel = new Telemetry({ serviceName: 'tars-ui' });
const app = express();
app.use(expressMiddleware(tel));
app.get('/metrics', metricsHandler(tel));

const requests = new tel.Counter({ name: 'ui_backend_calls_total', help: 'Calls to the backend.', labelNames: ['outcome'] as const });
const latency = new tel.Histogram({ name: 'ui_render_seconds', help: 'Render time.', buckets: [0.01, 0.1, 1] });

export async function answer(question: string): Promise<string> {
  return tel.rag.query(async (q: RagQuery) => {
    const docs = await q.phase('retrieval', async () => [question]);
    q.setResult({ sources: docs.length, relevance: 0.9 });
    let text = '';
    for await (const chunk of tel.llm.stream('llama3', ['a', 'b'])) text += chunk;
    const res = await tel.fetch('http://127.0.0.1:8000/api/v1/health');
    requests.inc({ outcome: res.ok ? 'ok' : 'error' });
    return text;
  });
}

export function scoped(): number {
  using phase = tel.rag.startPhase('rerank');
  const stop = latency.startTimer();
  void phase.traceparent;
  return stop();
}
