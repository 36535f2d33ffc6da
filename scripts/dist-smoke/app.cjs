// The README's Express service, as a user writes it against the installed npm packages
// (CommonJS). scripts/check-dist.sh runs it in a fresh directory with no Rust toolchain.
'use strict';
const express = require('express');
const { Telemetry } = require('tars-telemetry');
const { expressMiddleware, metricsHandler, webVitalsHandler } = require('tars-telemetry/express');

const tel = new Telemetry({ serviceName: 'tars-ui' });
const app = express();
app.use(expressMiddleware(tel));
app.get('/metrics', metricsHandler(tel));
app.post('/vitals', webVitalsHandler(tel));

async function* generate(docs) {
  for (const d of docs) yield `${d} `;
}

app.post('/api/ask', express.json(), async (req, res) => {
  const answer = await tel.rag.query(async (q) => {
    const docs = await q.phase('retrieval', async () => [req.body.query, req.body.query]);
    q.setResult({ sources: docs.length });
    let text = '';
    for await (const chunk of tel.llm.stream('llama3', generate(docs))) text += chunk;
    return text;
  });
  res.json({ answer });
});

const spend = new tel.Counter({ name: 'llm_spend_dollars', help: 'Money spent.', labelNames: ['model'] });
spend.labels('gpt-4o').inc(0.25);

const server = app.listen(Number(process.env.PORT), '127.0.0.1', () => console.log('listening'));
process.once('SIGTERM', () => {
  server.close();
  tel.shutdown().finally(() => process.exit(0));
});
