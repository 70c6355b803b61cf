//! Normalised token usage (DESIGN.md §6).
//!
//! The five counts are disjoint: `input` is uncached prompt tokens only,
//! `output` excludes reasoning tokens, and together they add up to everything
//! the provider billed. Each provider's usage shape converts into this one
//! type here, so no other code needs to know which fields overlap.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Usage {
    pub input: u64,
    pub cached_input: u64,
    pub cache_write: u64,
    pub output: u64,
    pub reasoning: u64,
}

impl Usage {
    pub fn total(&self) -> u64 {
        self.input + self.cached_input + self.cache_write + self.output + self.reasoning
    }

    /// OpenAI chat `usage`: `prompt_tokens` includes
    /// `prompt_tokens_details.cached_tokens`, and `completion_tokens` includes
    /// `completion_tokens_details.reasoning_tokens`. Returns `None` when the
    /// object carries no token counts at all.
    pub fn from_openai(usage: &serde_json::Value) -> Option<Usage> {
        let n = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_u64()).unwrap_or(0);
        let prompt = usage.get("prompt_tokens").and_then(|v| v.as_u64());
        let completion = usage.get("completion_tokens").and_then(|v| v.as_u64());
        if prompt.is_none() && completion.is_none() {
            return None;
        }
        let prompt = prompt.unwrap_or(0);
        let completion = completion.unwrap_or(0);
        // A provider reporting more cached than prompt tokens is wrong; clamp
        // so the disjoint counts still sum to what was billed.
        let cached = n(usage.pointer("/prompt_tokens_details/cached_tokens")).min(prompt);
        let reasoning =
            n(usage.pointer("/completion_tokens_details/reasoning_tokens")).min(completion);
        Some(Usage {
            input: prompt - cached,
            cached_input: cached,
            cache_write: 0,
            output: completion - reasoning,
            reasoning,
        })
    }

    /// A rough estimate from characters when the upstream reported nothing
    /// (a cut stream, a cancelled request): about four characters a token.
    pub fn estimate(prompt_chars: usize, output_chars: usize) -> Usage {
        let tokens = |chars: usize| (chars as u64).div_ceil(4);
        Usage {
            input: tokens(prompt_chars),
            output: tokens(output_chars),
            ..Usage::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn openai_cached_and_reasoning_tokens_are_split_out() {
        let u = Usage::from_openai(&json!({
            "prompt_tokens": 1000, "completion_tokens": 300, "total_tokens": 1300,
            "prompt_tokens_details": {"cached_tokens": 600},
            "completion_tokens_details": {"reasoning_tokens": 200}
        }))
        .expect("has counts");
        assert_eq!(
            u,
            Usage {
                input: 400,
                cached_input: 600,
                cache_write: 0,
                output: 100,
                reasoning: 200
            }
        );
        assert_eq!(u.total(), 1300);
    }

    #[test]
    fn absent_usage_is_none_and_estimate_rounds_up() {
        assert_eq!(Usage::from_openai(&json!(null)), None);
        assert_eq!(
            Usage::estimate(5, 8),
            Usage {
                input: 2,
                output: 2,
                ..Usage::default()
            }
        );
    }

    #[test]
    fn inconsistent_details_are_clamped_not_negative() {
        let u = Usage::from_openai(&json!({
            "prompt_tokens": 10, "completion_tokens": 5,
            "prompt_tokens_details": {"cached_tokens": 50},
            "completion_tokens_details": {"reasoning_tokens": 9}
        }))
        .expect("has counts");
        assert_eq!(u.total(), 15);
        assert_eq!((u.input, u.output), (0, 0));
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use crate::ledger::pricing::UnitPrices;
    use proptest::prelude::*;
    use serde_json::json;

    fn prices() -> impl Strategy<Value = UnitPrices> {
        (
            0i64..200_000_000,
            0i64..200_000_000,
            0i64..200_000_000,
            0i64..200_000_000,
            0i64..200_000_000,
        )
            .prop_map(|(a, b, c, d, e)| UnitPrices {
                input: a,
                cached_input: b,
                cache_write: c,
                output: d,
                reasoning: e,
            })
    }

    proptest! {
        /// The disjoint counts add up to what OpenAI billed, whatever the
        /// (possibly inconsistent) details say.
        #[test]
        fn openai_totals_are_preserved(
            prompt in 0u64..10_000_000,
            completion in 0u64..10_000_000,
            cached in 0u64..20_000_000,
            reasoning in 0u64..20_000_000,
        ) {
            let u = Usage::from_openai(&json!({
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "prompt_tokens_details": {"cached_tokens": cached},
                "completion_tokens_details": {"reasoning_tokens": reasoning},
            })).expect("counts");
            prop_assert_eq!(u.input + u.cached_input + u.cache_write, prompt);
            prop_assert_eq!(u.output + u.reasoning, completion);
            prop_assert_eq!(u.total(), prompt + completion);
            prop_assert!(u.cached_input <= prompt && u.reasoning <= completion);
        }

        /// More tokens of any kind never cost less, and cost is never negative.
        #[test]
        fn cost_is_monotonic_in_tokens(
            p in prices(),
            base in (0u64..5_000_000, 0u64..5_000_000, 0u64..5_000_000, 0u64..5_000_000, 0u64..5_000_000),
            which in 0usize..5,
            extra in 1u64..1_000_000,
        ) {
            let u = Usage { input: base.0, cached_input: base.1, cache_write: base.2, output: base.3, reasoning: base.4 };
            let mut more = u;
            match which {
                0 => more.input += extra,
                1 => more.cached_input += extra,
                2 => more.cache_write += extra,
                3 => more.output += extra,
                _ => more.reasoning += extra,
            }
            let c = p.cost(&u);
            prop_assert!(c >= 0);
            prop_assert!(p.cost(&more) >= c);
        }

        /// Cost is additive up to one rounding: splitting usage in two never
        /// changes the total by more than one micro-unit.
        #[test]
        fn cost_of_parts_matches_cost_of_whole(
            p in prices(),
            a in 0u64..5_000_000, b in 0u64..5_000_000,
        ) {
            let whole = Usage { input: a + b, ..Usage::default() };
            let pa = Usage { input: a, ..Usage::default() };
            let pb = Usage { input: b, ..Usage::default() };
            let diff = p.cost(&whole) - p.cost(&pa) - p.cost(&pb);
            prop_assert!((-1..=1).contains(&diff));
        }
    }
}
