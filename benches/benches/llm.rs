//! The end of an LLM call: its duration, outcome and token counts, and (since usage by
//! kind) each kind's tokens and spend at the model's price. No tracing.
//!
//! cargo bench -p tars-benches --bench llm
//!
//! `input and output tokens` uses only the calls that predate usage by kind, so the same
//! function measures an earlier build too (docs/BENCHMARKS.md compares them).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tars_telemetry::{LlmPricing, Telemetry, TokenUsage};

fn llm_call(c: &mut Criterion) {
    let mut g = c.benchmark_group("llm_call_start_and_end");
    let t = Telemetry::new();
    let model = t.llm_model("llama3:8b").unwrap();
    g.bench_function("input and output tokens (no pricing table)", |b| {
        b.iter(|| {
            let mut call = model.start();
            call.set_input_tokens(black_box(600));
            call.set_output_tokens(black_box(120));
            black_box(call.succeed())
        })
    });
    let priced = Telemetry::builder()
        .llm_pricing(
            LlmPricing::from_json(
                r#"{"models": {"llama3:8b": {"input": 0.02, "cache_read": 0.01, "cache_write": 0.025, "output": 0.04}}}"#,
            )
            .unwrap(),
        )
        .build()
        .unwrap();
    let model = priced.llm_model("llama3:8b").unwrap();
    g.bench_function("input and output tokens, priced", |b| {
        b.iter(|| {
            let mut call = model.start();
            call.set_input_tokens(black_box(600));
            call.set_output_tokens(black_box(120));
            black_box(call.succeed())
        })
    });
    g.bench_function("usage by kind, priced", |b| {
        b.iter(|| {
            let mut call = model.start();
            call.set_usage(black_box(TokenUsage {
                input_tokens: 600,
                output_tokens: 120,
                cache_read_input_tokens: 400,
                cache_write_input_tokens: 50,
                reasoning_output_tokens: 30,
            }));
            black_box(call.succeed())
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = tars_benches::criterion_config();
    targets = llm_call
}
criterion_main!(benches);
