// The same service from ESM: the package's `import` entry points.
import express from 'express';
import { Telemetry } from 'tars-telemetry';
import { expressMiddleware, metricsHandler } from 'tars-telemetry/express';

const tel = new Telemetry({ serviceName: 'tars-ui' });
const app = express();
app.use(expressMiddleware(tel));
app.get('/metrics', metricsHandler(tel));

app.post('/api/ask', express.json(), async (req, res) => {
  const answer = await tel.rag.query(async (q) => {
    const docs = await q.phase('retrieval', async () => [req.body.query]);
    q.setResult({ sources: docs.length });
    return docs.join(' ');
  });
  res.json({ answer });
});

const server = app.listen(Number(process.env.PORT), '127.0.0.1', () => console.log('listening'));
process.once('SIGTERM', () => {
  server.close();
  tel.shutdown().finally(() => process.exit(0));
});
