'use strict';
// LLM usage by token kind and spend from a pricing table: setUsage with every kind,
// missing and invalid fields; tables from an object, a file and TARS_LLM_PRICING_FILE;
// refused tables; the usage attributes on the call's span in the OTLP receiver.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Telemetry } = require('..');
const h = require('./helpers.js');

const TABLE = { models: { 'gpt-4o-mini': { input: 0.15, cache_read: 0.075, output: 0.6 } } };
const kind = (model, type) => ({ model, type });

test('setUsage counts each kind and prices it; an unpriced kind is counted apart', async () => {
  const tel = new Telemetry({ tracing: false, llmPricing: TABLE });
  await tel.llm.call('gpt-4o-mini', (c) =>
    c.setUsage({
      inputTokens: 3_000_000,
      cacheReadInputTokens: 2_000_000,
      cacheWriteInputTokens: 500_000,
      outputTokens: 1_000_000,
      reasoningOutputTokens: 400_000,
    }),
  );
  const text = tel.metricsSync();
  const tokens = (t) => h.sample(text, 'tars_llm_tokens_total', kind('gpt-4o-mini', t));
  const spend = (t) => h.sample(text, 'tars_llm_spend_dollars_total', kind('gpt-4o-mini', t));
  assert.equal(tokens('input'), 500_000);
  assert.equal(tokens('cache_read'), 2_000_000);
  assert.equal(tokens('cache_write'), 500_000);
  assert.equal(tokens('output'), 600_000);
  assert.equal(tokens('reasoning'), 400_000);
  assert.equal(spend('input'), 0.075);
  assert.equal(spend('cache_read'), 0.15);
  assert.equal(spend('output'), 0.36);
  assert.equal(spend('reasoning'), 0.24); // at the output price
  assert.equal(spend('cache_write'), 0);
  assert.equal(h.sample(text, 'tars_llm_unpriced_tokens_total', kind('gpt-4o-mini', 'cache_write')), 500_000);
  assert.equal(h.sample(text, 'tars_llm_input_tokens_total', { model: 'gpt-4o-mini' }), 3_000_000);
  assert.equal(h.sample(text, 'tars_llm_tokens_generated_total', { model: 'gpt-4o-mini' }), 1_000_000);
});

test('a kind not given keeps its count; a negative or fractional one is ignored', async () => {
  const tel = new Telemetry({ tracing: false });
  await tel.llm.call('llama3', (c) => {
    c.setUsage({ inputTokens: 100 });
    c.setUsage({ outputTokens: 7, cacheReadInputTokens: -5, reasoningOutputTokens: 1.5 });
  });
  const text = tel.metricsSync();
  assert.equal(h.sample(text, 'tars_llm_unpriced_tokens_total', kind('llama3', 'input')), 100);
  assert.equal(h.sample(text, 'tars_llm_unpriced_tokens_total', kind('llama3', 'output')), 7);
  assert.equal(h.sample(text, 'tars_llm_tokens_total', kind('llama3', 'cache_read')), 0);
  assert.equal(h.sample(text, 'tars_llm_tokens_total', kind('llama3', 'reasoning')), 0);
});

test('tables from a file, from TARS_LLM_PRICING_FILE, and replaced while running', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tars-pricing-'));
  const file = path.join(dir, 'prices.json');
  fs.writeFileSync(file, JSON.stringify({ models: { m: { output: 2 } } }));
  const saved = process.env.TARS_LLM_PRICING_FILE;
  try {
    const fromFile = new Telemetry({ tracing: false, llmPricing: file });
    await fromFile.llm.call('m', (c) => c.setUsage({ outputTokens: 1_000_000 }));
    assert.equal(h.sample(fromFile.metricsSync(), 'tars_llm_spend_dollars_total', kind('m', 'output')), 2);

    process.env.TARS_LLM_PRICING_FILE = file;
    const fromEnv = new Telemetry({ tracing: false });
    await fromEnv.llm.call('m', (c) => c.setUsage({ outputTokens: 500_000 }));
    fromEnv.setLlmPricing({ models: { m: { output: 4 } } });
    await fromEnv.llm.call('m', (c) => c.setUsage({ outputTokens: 500_000 }));
    assert.equal(h.sample(fromEnv.metricsSync(), 'tars_llm_spend_dollars_total', kind('m', 'output')), 3);
  } finally {
    if (saved === undefined) delete process.env.TARS_LLM_PRICING_FILE;
    else process.env.TARS_LLM_PRICING_FILE = saved;
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('bad tables throw at start, saying why', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tars-pricing-'));
  try {
    assert.throws(
      () => new Telemetry({ tracing: false, llmPricing: { models: { m: { input: -1 } } } }),
      (e) => e.code === 'ERR_TARS_INVALID_PRICING' && /"m".*input.*negative/.test(e.message),
    );
    assert.throws(
      () => new Telemetry({ tracing: false, llmPricing: { models: { m: { prompt: 1 } } } }),
      (e) => e.code === 'ERR_TARS_INVALID_PRICING' && /unknown token kind/.test(e.message),
    );
    const bad = path.join(dir, 'bad.json');
    fs.writeFileSync(bad, 'models = 1');
    assert.throws(
      () => new Telemetry({ tracing: false, llmPricing: bad }),
      (e) => e.code === 'ERR_TARS_INVALID_PRICING' && e.message.includes('bad.json'),
    );
    assert.throws(
      () => new Telemetry({ tracing: false, llmPricing: path.join(dir, 'missing.json') }),
      (e) => e.code === 'ENOENT' && e.message.includes('missing.json'),
    );
    assert.throws(() => new Telemetry({ tracing: false, llmPricing: 42 }), { code: 'ERR_INVALID_ARG_TYPE' });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the span carries the usage by kind', async (t) => {
  if (!h.needTool(t, h.hasPython(), 'the .venv with opentelemetry-proto and grpcio')) return;
  const receiver = await h.startReceiver();
  const restoreEnv = h.exportTo(receiver);
  try {
    const tel = new Telemetry({ serviceName: 'tars-ui' });
    await tel.rag.query(() =>
      tel.llm.call('gpt-4o-mini', (c) =>
        c.setUsage({
          inputTokens: 900,
          cacheReadInputTokens: 600,
          cacheWriteInputTokens: 100,
          outputTokens: 50,
          reasoningOutputTokens: 20,
        }),
      ),
    );
    await tel.shutdown();
    const span = await h.waitFor(
      () => receiver.spans().find((s) => s.name === 'chat gpt-4o-mini'),
      30000,
      'the LLM span in the receiver',
    );
    const a = span.attributes;
    assert.equal(a['gen_ai.usage.input_tokens'], 900);
    assert.equal(a['gen_ai.usage.output_tokens'], 50);
    assert.equal(a['gen_ai.usage.cache_read.input_tokens'], 600);
    assert.equal(a['gen_ai.usage.cache_creation.input_tokens'], 100);
    assert.equal(a['gen_ai.usage.reasoning.output_tokens'], 20);
    assert.ok(a['gen_ai.provider.name']);
    assert.equal(a['gen_ai.system'], undefined);
  } finally {
    restoreEnv();
    receiver.stop();
  }
});
