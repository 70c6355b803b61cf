//! The unit prices a receipt applies: a snapshot taken when the config is
//! compiled (see `ledger::pricing`), stored with every receipt so a later
//! catalog change never rewrites history, and the exact cost they give.

use serde::Serialize;

use super::Usage;

/// Micro-units of the bucket currency per 1M tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default, utoipa::ToSchema)]
pub struct UnitPrices {
    pub input: i64,
    pub cached_input: i64,
    pub cache_write: i64,
    pub output: i64,
    pub reasoning: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PriceSource {
    /// The catalog's list price (× multiplier × rate).
    Catalog,
    /// The route target's `price = {…}`.
    Override,
}

/// The unit prices applied to a target, with their currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppliedPrice {
    pub unit: UnitPrices,
    pub currency: String,
    pub source: PriceSource,
}

impl UnitPrices {
    /// Exact cost in micro-units: Σ tokens × price / 1M, rounded half up
    /// once over the sum (never per component).
    pub fn cost(&self, u: &Usage) -> i64 {
        let terms = [
            (u.input, self.input),
            (u.cached_input, self.cached_input),
            (u.cache_write, self.cache_write),
            (u.output, self.output),
            (u.reasoning, self.reasoning),
        ];
        let total: i128 = terms
            .iter()
            .map(|&(tokens, price)| tokens as i128 * price as i128)
            .sum();
        ((total + 500_000) / 1_000_000) as i64
    }
}
