//! Effective prices and exact costs.
//!
//! A target's unit prices are fixed when the config is compiled: a
//! per-target override in the bucket's currency, or else the catalog's USD
//! list price × the channel's `price_multiplier` × the bucket's `usd_rate`.
//! They are integers (micro-units of the bucket currency per 1M tokens) from
//! then on; receipts store them as a snapshot, and cost is integer
//! arithmetic over the disjoint token counts.

use super::catalog::Catalog;
use super::money::price_to_micro;
use crate::config::PriceOverride;
pub use crate::record::{AppliedPrice, PriceSource, UnitPrices};

/// The price of `upstream_model` on a channel, in a bucket whose currency
/// is `currency` with `usd_rate` units per USD. `None`: unpriced.
pub fn effective_price(
    catalog: &Catalog,
    upstream_model: &str,
    multiplier: Option<f64>,
    usd_rate: f64,
    currency: &str,
    price_override: Option<&PriceOverride>,
) -> Option<AppliedPrice> {
    let from_catalog = catalog.lookup(upstream_model).map(|e| {
        let scale = multiplier.unwrap_or(1.0) * usd_rate;
        let p = |usd: f64| price_to_micro(usd * scale);
        UnitPrices {
            input: p(e.input),
            cached_input: p(e.cached_input.unwrap_or(e.input)),
            cache_write: p(e.cache_write.unwrap_or(e.input)),
            output: p(e.output),
            reasoning: p(e.reasoning.unwrap_or(e.output)),
        }
    });
    match price_override {
        Some(o) => {
            // Fields the override leaves out come from the catalog where it
            // knows the model, else from the override's own input/output.
            let base = from_catalog.unwrap_or_default();
            let input = o.input.map(price_to_micro);
            let output = o.output.map(price_to_micro);
            let known_base = from_catalog.is_some();
            let pick = |v: Option<f64>, catalog: i64, fallback: Option<i64>| match v {
                Some(v) => Some(price_to_micro(v)),
                None if known_base => Some(catalog),
                None => fallback,
            };
            let unit = UnitPrices {
                input: pick(o.input, base.input, None)?,
                cached_input: pick(o.cached_input, base.cached_input, input)?,
                cache_write: pick(o.cache_write, base.cache_write, input)?,
                output: pick(o.output, base.output, None)?,
                reasoning: pick(o.reasoning, base.reasoning, output)?,
            };
            Some(AppliedPrice {
                unit,
                currency: currency.to_string(),
                source: PriceSource::Override,
            })
        }
        None => from_catalog.map(|unit| AppliedPrice {
            unit,
            currency: currency.to_string(),
            source: PriceSource::Catalog,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Usage;

    fn usage(input: u64, cached: u64, write: u64, output: u64, reasoning: u64) -> Usage {
        Usage {
            input,
            cached_input: cached,
            cache_write: write,
            output,
            reasoning,
        }
    }

    #[test]
    fn catalog_price_times_multiplier_times_rate() {
        let c = Catalog::bundled();
        let p = effective_price(c, "gpt-4o", Some(0.3), 7.1, "CNY", None).expect("priced");
        // 2.50 USD × 0.3 × 7.1 = 5.325 CNY per 1M input tokens.
        assert_eq!(p.unit.input, 5_325_000);
        assert_eq!(p.unit.output, 21_300_000);
        assert_eq!(p.currency, "CNY");
        assert_eq!(p.source, PriceSource::Catalog);
    }

    #[test]
    fn exact_cost_for_each_price_shape() {
        let c = Catalog::bundled();
        // Cached input: gpt-4o, 1000 uncached + 2000 cached + 500 output, USD.
        let p = effective_price(c, "gpt-4o", None, 1.0, "USD", None).expect("priced");
        assert_eq!(
            p.unit.cost(&usage(1000, 2000, 0, 500, 0)),
            2500 + 2500 + 5000
        );
        // Cache writes: claude-sonnet-4-5, 10k written at 3.75, 100 out at 15.
        let p = effective_price(c, "claude-sonnet-4-5", None, 1.0, "USD", None).expect("priced");
        assert_eq!(p.unit.cost(&usage(0, 0, 10_000, 100, 0)), 37_500 + 1_500);
        // Reasoning at the output price: o3, 300 reasoning + 200 out at 8.
        let p = effective_price(c, "o3", None, 1.0, "USD", None).expect("priced");
        assert_eq!(p.unit.cost(&usage(0, 0, 0, 200, 300)), 4_000);
    }

    #[test]
    fn override_is_in_bucket_currency_and_fills_from_catalog() {
        let c = Catalog::bundled();
        let o = PriceOverride {
            input: Some(3.0),
            output: Some(12.0),
            ..Default::default()
        };
        let p = effective_price(c, "gpt-5.5", Some(0.3), 7.1, "CNY", Some(&o)).expect("priced");
        assert_eq!(p.unit.input, 3_000_000);
        assert_eq!(p.unit.output, 12_000_000);
        // cached_input from the catalog × multiplier × rate: 0.5 × 0.3 × 7.1.
        assert_eq!(p.unit.cached_input, 1_065_000);
        assert_eq!(p.source, PriceSource::Override);
        // 1M input tokens at 3 CNY: exactly 3 CNY.
        assert_eq!(p.unit.cost(&usage(1_000_000, 0, 0, 0, 0)), 3_000_000);
    }

    #[test]
    fn override_for_an_unknown_model_defaults_cached_to_input_and_reasoning_to_output() {
        let c = Catalog::bundled();
        let o = PriceOverride {
            input: Some(1.0),
            output: Some(2.0),
            ..Default::default()
        };
        let p = effective_price(c, "local-llama", None, 1.0, "USD", Some(&o)).expect("priced");
        assert_eq!(p.unit.cached_input, 1_000_000);
        assert_eq!(p.unit.reasoning, 2_000_000);
        let partial = PriceOverride {
            input: Some(1.0),
            ..Default::default()
        };
        assert!(effective_price(c, "local-llama", None, 1.0, "USD", Some(&partial)).is_none());
    }

    #[test]
    fn unknown_model_without_override_is_unpriced() {
        assert!(effective_price(Catalog::bundled(), "llama3.2", None, 1.0, "USD", None).is_none());
    }

    #[test]
    fn cost_rounds_once_over_the_sum() {
        let p = UnitPrices {
            input: 1,
            output: 1,
            ..Default::default()
        };
        // 400k × 1 + 400k × 1 = 0.8 micro → rounds to 1, not 0 + 0.
        assert_eq!(p.cost(&usage(400_000, 0, 0, 400_000, 0)), 1);
    }
}
