//! LLM usage by token kind and spend from a pricing table: exact sums across threads,
//! unpriced models and kinds, pricing files refused with a reason, prices replaced while
//! running.

use std::io::Write;
use std::thread;

use tars_telemetry::llm::{LlmPricing, PricingError, TokenKind, TokenUsage};
use tars_telemetry::{Format, Telemetry};

/// Fractional prices per million tokens: each a whole number of pico-dollars per token.
const TABLE: &str = r#"{"models": {
  "gpt-4o-mini": {"input": 0.15, "cache_read": 0.075, "cache_write": 0.1875, "output": 0.6, "reasoning": 2.4},
  "llama3:8b":   {"input": 0.05, "output": 0.08}
}}"#;

fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// A deterministic usage per call: every kind, in varied amounts.
fn usage(i: u64) -> TokenUsage {
    let cache_read = (i * 37) % 500;
    let cache_write = (i * 11) % 90;
    let reasoning = (i * 7) % 60;
    TokenUsage {
        input_tokens: cache_read + cache_write + (i * 13) % 300,
        output_tokens: reasoning + 1 + (i * 5) % 200,
        cache_read_input_tokens: cache_read,
        cache_write_input_tokens: cache_write,
        reasoning_output_tokens: reasoning,
    }
}

#[test]
fn spend_is_the_exact_sum_of_tokens_times_price_for_every_kind() {
    let pricing = LlmPricing::from_json(TABLE).unwrap();
    let t = Telemetry::builder()
        .llm_pricing(pricing.clone())
        .build()
        .unwrap();
    let model = t.llm_model("gpt-4o-mini").unwrap();
    const THREADS: u64 = 4;
    const CALLS: u64 = 5_000;
    thread::scope(|s| {
        for th in 0..THREADS {
            let model = model.clone();
            s.spawn(move || {
                for i in 0..CALLS {
                    let mut call = model.start();
                    call.set_usage(usage(th * CALLS + i));
                    if i % 3 == 0 {
                        call.fail();
                    } else {
                        call.succeed();
                    }
                }
            });
        }
    });
    // The expected spend, in whole pico-dollars (a dollar per million tokens is 10^6 of
    // them per token), summed as integers.
    let prices = pricing.model("gpt-4o-mini").unwrap();
    let mut tokens = [0u128; 5];
    for i in 0..THREADS * CALLS {
        for (k, n) in usage(i).by_kind().into_iter().enumerate() {
            tokens[k] += u128::from(n);
        }
    }
    let text = t.render_string(Format::Prometheus);
    for kind in TokenKind::ALL {
        let pico_per_token = (prices.get(kind).unwrap() * 1e6).round() as u128;
        let want_pico = tokens[kind.index()] * pico_per_token;
        let labels = format!("{{model=\"gpt-4o-mini\",type=\"{kind}\"}}");
        let got = value(&text, &format!("tars_llm_spend_dollars_total{labels}")).unwrap();
        assert_eq!(got, want_pico as f64 / 1e12, "spend of {kind}");
        let got_tokens = value(&text, &format!("tars_llm_tokens_total{labels}")).unwrap();
        assert_eq!(got_tokens, tokens[kind.index()] as f64, "tokens of {kind}");
        assert_eq!(
            value(&text, &format!("tars_llm_unpriced_tokens_total{labels}")),
            Some(0.0),
            "{kind} is priced"
        );
        assert_eq!(model.spend_dollars()[kind.index()], want_pico as f64 / 1e12);
    }
    // The totals keep their meaning: every prompt token, every completion token.
    let input: u64 = (0..THREADS * CALLS).map(|i| usage(i).input_tokens).sum();
    let output: u64 = (0..THREADS * CALLS).map(|i| usage(i).output_tokens).sum();
    assert_eq!(
        value(&text, "tars_llm_input_tokens_total{model=\"gpt-4o-mini\"}"),
        Some(input as f64)
    );
    assert_eq!(model.tokens_generated(), output);
    assert_eq!(
        tokens.iter().sum::<u128>(),
        u128::from(input) + u128::from(output),
        "the kinds are a partition of the call's tokens"
    );
}

#[test]
fn a_model_or_kind_without_a_price_is_counted_unpriced_never_free() {
    let t = Telemetry::builder()
        .llm_pricing(LlmPricing::from_json(TABLE).unwrap())
        .build()
        .unwrap();
    // Not in the table at all.
    let mut call = t.llm_model("mistral:7b").unwrap().start();
    call.set_usage(TokenUsage {
        input_tokens: 120,
        output_tokens: 30,
        ..Default::default()
    });
    call.succeed();
    // In the table, without cache prices; reasoning billed at the output price.
    let mut call = t.llm_model("llama3:8b").unwrap().start();
    call.set_usage(TokenUsage {
        input_tokens: 1_000_000,
        output_tokens: 2_000_000,
        cache_read_input_tokens: 400,
        reasoning_output_tokens: 1_000_000,
        ..Default::default()
    });
    call.succeed();
    let text = t.render_string(Format::Prometheus);
    let v = |s: &str| value(&text, s);
    assert_eq!(
        v(r#"tars_llm_unpriced_tokens_total{model="mistral:7b",type="input"}"#),
        Some(120.0)
    );
    assert_eq!(
        v(r#"tars_llm_unpriced_tokens_total{model="mistral:7b",type="output"}"#),
        Some(30.0)
    );
    assert_eq!(
        v(r#"tars_llm_spend_dollars_total{model="mistral:7b",type="input"}"#),
        Some(0.0)
    );
    assert_eq!(
        v(r#"tars_llm_unpriced_tokens_total{model="llama3:8b",type="cache_read"}"#),
        Some(400.0)
    );
    // 999,600 uncached input tokens at $0.05/M; 1M output and 1M reasoning at $0.08/M.
    assert_eq!(
        v(r#"tars_llm_spend_dollars_total{model="llama3:8b",type="input"}"#),
        Some(0.04998)
    );
    assert_eq!(
        v(r#"tars_llm_spend_dollars_total{model="llama3:8b",type="output"}"#),
        Some(0.08)
    );
    assert_eq!(
        v(r#"tars_llm_spend_dollars_total{model="llama3:8b",type="reasoning"}"#),
        Some(0.08)
    );
}

#[test]
fn without_a_table_every_token_is_unpriced() {
    let t = Telemetry::new();
    let mut call = t.llm_model("llama3").unwrap().start();
    call.set_input_tokens(10);
    call.add_output_tokens(5);
    call.succeed();
    let text = t.render_string(Format::Prometheus);
    assert_eq!(
        value(
            &text,
            r#"tars_llm_unpriced_tokens_total{model="llama3",type="input"}"#
        ),
        Some(10.0)
    );
    assert_eq!(
        value(
            &text,
            r#"tars_llm_tokens_total{model="llama3",type="output"}"#
        ),
        Some(5.0)
    );
}

#[test]
fn prices_replaced_while_running_apply_from_then_on() {
    let t = Telemetry::new();
    let model = t.llm_model("llama3").unwrap();
    let call_with = |n: u64| {
        let mut c = model.start();
        c.set_input_tokens(n);
        c.succeed();
    };
    call_with(1_000_000); // no table yet: unpriced
    t.llm()
        .set_pricing(LlmPricing::from_json(r#"{"models": {"llama3": {"input": 2}}}"#).unwrap());
    call_with(1_000_000); // $2
    t.llm()
        .set_pricing(LlmPricing::from_json(r#"{"models": {"llama3": {"input": 0.5}}}"#).unwrap());
    call_with(2_000_000); // $1
    let text = t.render_string(Format::Prometheus);
    assert_eq!(
        value(
            &text,
            r#"tars_llm_spend_dollars_total{model="llama3",type="input"}"#
        ),
        Some(3.0)
    );
    assert_eq!(
        value(
            &text,
            r#"tars_llm_unpriced_tokens_total{model="llama3",type="input"}"#
        ),
        Some(1_000_000.0)
    );
    // A model made after the table was set takes its prices.
    t.llm()
        .set_pricing(LlmPricing::from_json(r#"{"models": {"later": {"output": 1}}}"#).unwrap());
    let mut c = t.llm_model("later").unwrap().start();
    c.set_output_tokens(1_000_000);
    c.succeed();
    assert_eq!(
        t.llm_model("later").unwrap().spend_dollars()[TokenKind::Output.index()],
        1.0
    );
}

#[test]
fn an_abandoned_call_still_counts_and_prices_its_tokens() {
    let t = Telemetry::builder()
        .llm_pricing(LlmPricing::from_json(r#"{"models": {"m": {"output": 1}}}"#).unwrap())
        .build()
        .unwrap();
    let model = t.llm_model("m").unwrap();
    let mut call = model.start();
    call.add_output_tokens(500_000);
    call.abandon();
    assert_eq!(model.spend_dollars()[TokenKind::Output.index()], 0.5);
}

#[test]
fn bad_pricing_tables_are_refused_with_the_reason() {
    let refused = |json: &str| LlmPricing::from_json(json).unwrap_err();
    assert!(matches!(
        refused(r#"{"models": {"m": {"input": -0.5}}}"#),
        PricingError::BadPrice { ref model, kind: "input", why: "negative", .. } if model == "m"
    ));
    assert!(matches!(
        refused(r#"{"models": {"m": {"output": "cheap"}}}"#),
        PricingError::BadPrice {
            why: "not a number",
            ..
        }
    ));
    assert!(matches!(
        refused(r#"{"models": {"m": {"output": 1e9}}}"#),
        PricingError::BadPrice { .. }
    ));
    assert!(matches!(
        refused(r#"{"models": {"m": {"prompt": 1}}}"#),
        PricingError::UnknownKind { ref kind, .. } if kind == "prompt"
    ));
    assert!(matches!(
        refused("{\"models\": "),
        PricingError::Malformed { .. }
    ));
    assert!(matches!(
        refused(r#"{"gpt-4o": {"input": 1}}"#),
        PricingError::Malformed { .. }
    ));
    assert!(matches!(refused("[]"), PricingError::Malformed { .. }));
    let msg = refused(r#"{"models": {"m": {"input": -0.5}}}"#).to_string();
    assert!(
        msg.contains("\"m\"") && msg.contains("input") && msg.contains("negative"),
        "{msg}"
    );

    // From files: missing, malformed (named in the error), good.
    let dir = std::env::temp_dir().join(format!("tars-pricing-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let missing = dir.join("missing.json");
    assert!(matches!(
        LlmPricing::from_file(&missing).unwrap_err(),
        PricingError::Io { ref path, .. } if path.ends_with("missing.json")
    ));
    let bad = dir.join("bad.json");
    std::fs::File::create(&bad)
        .unwrap()
        .write_all(b"models = 1")
        .unwrap();
    let e = LlmPricing::from_file(&bad).unwrap_err();
    assert!(e.to_string().contains("bad.json"), "{e}");
    let good = dir.join("good.json");
    std::fs::write(&good, TABLE).unwrap();
    assert_eq!(LlmPricing::from_file(&good).unwrap().len(), 2);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn token_usage_partition_takes_the_whole_as_at_least_its_parts() {
    // Parts larger than the whole (a provider that reports input without its cache).
    let u = TokenUsage {
        input_tokens: 10,
        cache_read_input_tokens: 50,
        output_tokens: 3,
        reasoning_output_tokens: 8,
        ..Default::default()
    };
    assert_eq!(u.total_input(), 50);
    assert_eq!(u.total_output(), 8);
    assert_eq!(u.by_kind(), [0, 50, 0, 0, 8]);
}
