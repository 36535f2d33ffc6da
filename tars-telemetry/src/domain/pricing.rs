//! What LLM tokens cost: a table of prices per model and token kind, from which each
//! call's spend is counted when it ends.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use crate::labels::TokenKind;

/// The environment variable naming a pricing file, read by [`LlmPricing::from_env`] (and so
/// by the Python and Node packages when they are given no table).
pub const PRICING_FILE_ENV: &str = "TARS_LLM_PRICING_FILE";

/// Pico-dollars (10^-12 dollars) per token for one dollar per million tokens.
const PICO_PER_TOKEN_PER_DOLLAR_PER_MILLION: f64 = 1e6;
/// The highest price taken, in dollars per million tokens: far above any model's, and low
/// enough that a call's spend cannot overflow in any plausible count of tokens.
pub const MAX_PRICE_PER_MILLION: f64 = 1e6;

/// Prices of one model, in dollars per million tokens, by kind. A kind without a price is
/// counted as unpriced (`tars_llm_unpriced_tokens_total`), never as free; reasoning tokens
/// without a price of their own are billed at the output price, as providers bill them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ModelPrices {
    per_million: [Option<f64>; 5],
}

impl ModelPrices {
    /// Sets the price of one kind, in dollars per million tokens.
    ///
    /// ```
    /// use tars_telemetry::llm::{ModelPrices, TokenKind};
    /// let p = ModelPrices::default()
    ///     .with(TokenKind::Input, 2.5).unwrap()
    ///     .with(TokenKind::Output, 10.0).unwrap();
    /// assert_eq!(p.get(TokenKind::Reasoning), Some(10.0));   // billed as output
    /// assert_eq!(p.get(TokenKind::CacheRead), None);         // unpriced
    /// assert!(ModelPrices::default().with(TokenKind::Input, -1.0).is_err());
    /// ```
    pub fn with(mut self, kind: TokenKind, per_million: f64) -> Result<Self, PricingError> {
        check_price(per_million).map_err(|why| PricingError::BadPrice {
            model: String::new(),
            kind: kind.as_str(),
            value: per_million.to_string(),
            why,
        })?;
        self.per_million[kind.index()] = Some(per_million);
        Ok(self)
    }

    /// The price of one kind in dollars per million tokens, if it has one.
    pub fn get(&self, kind: TokenKind) -> Option<f64> {
        self.per_million[kind.index()].or(match kind {
            TokenKind::Reasoning => self.per_million[TokenKind::Output.index()],
            _ => None,
        })
    }

    /// Pico-dollars per token, by kind; `None` for an unpriced kind.
    pub(crate) fn pico_per_token(&self) -> [Option<u64>; 5] {
        TokenKind::ALL.map(|k| {
            self.get(k)
                .map(|p| (p * PICO_PER_TOKEN_PER_DOLLAR_PER_MILLION).round() as u64)
        })
    }
}

/// A pricing table: prices per model and token kind, in dollars per million tokens.
///
/// The file form is JSON, loaded at start ([`LlmPricing::from_file`], or the file named
/// by `TARS_LLM_PRICING_FILE`):
///
/// ```json
/// { "models": {
///     "llama3:8b": { "input": 0.05, "output": 0.08 },
///     "gpt-4o":    { "input": 2.5, "cache_read": 1.25, "output": 10.0 } } }
/// ```
///
/// Kinds: `input` (prompt tokens neither read from nor written to the cache),
/// `cache_read`, `cache_write`, `output` (completion tokens other than reasoning),
/// `reasoning`. Prices are kept to 10^-6 dollars per million tokens (a pico-dollar per
/// token), so spend adds up exactly.
///
/// ```
/// use tars_telemetry::llm::{LlmPricing, TokenKind};
/// let p = LlmPricing::from_json(r#"{"models": {"llama3": {"input": 0.05, "output": 0.08}}}"#).unwrap();
/// assert_eq!(p.model("llama3").unwrap().get(TokenKind::Output), Some(0.08));
/// assert!(p.model("mistral").is_none());
/// assert!(LlmPricing::from_json(r#"{"models": {"llama3": {"input": -1}}}"#).is_err());
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LlmPricing {
    models: HashMap<String, ModelPrices>,
}

impl LlmPricing {
    /// An empty table: every token unpriced.
    pub fn new() -> Self {
        LlmPricing::default()
    }

    /// Sets one model's prices.
    pub fn with_model(mut self, model: &str, prices: ModelPrices) -> Self {
        self.models.insert(model.to_string(), prices);
        self
    }

    /// One model's prices, if the table has the model.
    pub fn model(&self, model: &str) -> Option<&ModelPrices> {
        self.models.get(model)
    }

    /// The models priced.
    pub fn len(&self) -> usize {
        self.models.len()
    }

    /// Whether no model is priced.
    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    /// Parses the JSON form. Unknown keys, unknown kinds, and prices that are negative,
    /// not numbers, or above [`MAX_PRICE_PER_MILLION`] are refused, naming the model and
    /// kind: a table is taken whole or not at all.
    pub fn from_json(text: &str) -> Result<Self, PricingError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| PricingError::Malformed {
                reason: e.to_string(),
            })?;
        let top = value.as_object().ok_or_else(|| PricingError::Malformed {
            reason: "the table must be a JSON object with a \"models\" object".into(),
        })?;
        if let Some(key) = top.keys().find(|k| *k != "models") {
            return Err(PricingError::Malformed {
                reason: format!("unknown key {key:?} (the table has one key, \"models\")"),
            });
        }
        let models = top
            .get("models")
            .and_then(|m| m.as_object())
            .ok_or_else(|| PricingError::Malformed {
                reason: "\"models\" must be an object of model names".into(),
            })?;
        let mut table = LlmPricing::new();
        for (model, kinds) in models {
            let kinds = kinds.as_object().ok_or_else(|| PricingError::Malformed {
                reason: format!("the prices of model {model:?} must be an object of token kinds"),
            })?;
            let mut prices = ModelPrices::default();
            for (kind_name, price) in kinds {
                let kind =
                    TokenKind::parse(kind_name).ok_or_else(|| PricingError::UnknownKind {
                        model: model.clone(),
                        kind: kind_name.clone(),
                    })?;
                let bad = |why| PricingError::BadPrice {
                    model: model.clone(),
                    kind: kind.as_str(),
                    value: price.to_string(),
                    why,
                };
                let p = price.as_f64().ok_or_else(|| bad("not a number"))?;
                check_price(p).map_err(bad)?;
                prices.per_million[kind.index()] = Some(p);
            }
            table.models.insert(model.clone(), prices);
        }
        Ok(table)
    }

    /// Reads and parses a pricing file (JSON).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, PricingError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| PricingError::Io {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        LlmPricing::from_json(&text).map_err(|e| e.in_file(path))
    }

    /// The table named by `TARS_LLM_PRICING_FILE`, if the variable is set and not empty.
    pub fn from_env() -> Result<Option<Self>, PricingError> {
        match std::env::var_os(PRICING_FILE_ENV) {
            Some(p) if !p.is_empty() => LlmPricing::from_file(p).map(Some),
            _ => Ok(None),
        }
    }
}

fn check_price(p: f64) -> Result<(), &'static str> {
    if !p.is_finite() {
        Err("not a finite number")
    } else if p < 0.0 {
        Err("negative")
    } else if p > MAX_PRICE_PER_MILLION {
        Err("above 1,000,000 dollars per million tokens")
    } else {
        Ok(())
    }
}

/// Why a pricing table was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PricingError {
    /// The file could not be read.
    Io {
        /// The file.
        path: String,
        /// The operating system's reason.
        reason: String,
    },
    /// Not a pricing table: bad JSON, or not the table's shape.
    Malformed {
        /// What is wrong (with the file's path, when read from one).
        reason: String,
    },
    /// A token kind the table does not know.
    UnknownKind {
        /// The model.
        model: String,
        /// The kind as written.
        kind: String,
    },
    /// A price that is negative, not a number, or too high.
    BadPrice {
        /// The model.
        model: String,
        /// The token kind.
        kind: &'static str,
        /// The value as written.
        value: String,
        /// Why it is refused.
        why: &'static str,
    },
}

impl PricingError {
    fn in_file(self, path: &Path) -> Self {
        match self {
            PricingError::Malformed { reason } => PricingError::Malformed {
                reason: format!("{}: {reason}", path.display()),
            },
            other => other,
        }
    }
}

impl fmt::Display for PricingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PricingError::Io { path, reason } => {
                write!(f, "cannot read the pricing file {path}: {reason}")
            }
            PricingError::Malformed { reason } => write!(f, "not a pricing table: {reason}"),
            PricingError::UnknownKind { model, kind } => write!(
                f,
                "pricing of model {model:?}: unknown token kind {kind:?} (kinds: input, cache_read, cache_write, output, reasoning)"
            ),
            PricingError::BadPrice {
                model,
                kind,
                value,
                why,
            } => write!(f, "pricing of model {model:?}, {kind}: {value} is {why}"),
        }
    }
}

impl std::error::Error for PricingError {}
