//! Amounts of money as integer micro-units (1e-6 of a currency unit).
//! Parsing and display never go through floating point.

/// Micro-units per currency unit.
pub const MICRO: i64 = 1_000_000;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}` is not an amount like 12.50 (at most 6 decimals)")]
pub struct BadAmount(pub String);

/// Parses "12", "12.5", "-0.000001" into micro-units.
pub fn parse_amount(s: &str) -> Result<i64, BadAmount> {
    let bad = || BadAmount(s.to_string());
    let t = s.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if int.is_empty() && frac.is_empty()
        || frac.len() > 6
        || !int.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
    {
        return Err(bad());
    }
    let whole: i64 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| bad())?
    };
    let frac_micro: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<6}").parse().map_err(|_| bad())?
    };
    let v = whole
        .checked_mul(MICRO)
        .and_then(|w| w.checked_add(frac_micro))
        .ok_or_else(bad)?;
    Ok(if neg { -v } else { v })
}

/// "12.345678" → exact decimal string, trailing zeros trimmed to at least 2 decimals.
pub fn format_micro(micro: i64) -> String {
    let sign = if micro < 0 { "-" } else { "" };
    let abs = micro.unsigned_abs();
    let whole = abs / MICRO as u64;
    let frac = format!("{:06}", abs % MICRO as u64);
    let frac = frac.trim_end_matches('0');
    let frac = if frac.len() < 2 {
        format!("{frac:0<2}")
    } else {
        frac.to_string()
    };
    format!("{sign}{whole}.{frac}")
}

/// An amount with its currency: "12.50 USD".
pub fn format_amount(micro: i64, currency: &str) -> String {
    format!("{} {currency}", format_micro(micro))
}

/// A per-1M-token price given as a decimal number in the config or the
/// catalog, as integer micro-units. The one place a float becomes money:
/// rounded once to the nearest micro-unit, then only integers.
pub fn price_to_micro(price: f64) -> i64 {
    (price * MICRO as f64).round() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exact_decimals() {
        assert_eq!(parse_amount("12"), Ok(12_000_000));
        assert_eq!(parse_amount("12.5"), Ok(12_500_000));
        assert_eq!(parse_amount("0.000001"), Ok(1));
        assert_eq!(parse_amount("-3.25"), Ok(-3_250_000));
        assert_eq!(parse_amount(".5"), Ok(500_000));
        for bad in [
            "",
            "1.2345678",
            "abc",
            "1e3",
            "1.2.3",
            "--1",
            "99999999999999999",
        ] {
            assert!(parse_amount(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formats_without_floats() {
        assert_eq!(format_micro(12_500_000), "12.50");
        assert_eq!(format_micro(1), "0.000001");
        assert_eq!(format_micro(-1_234_500), "-1.2345");
        assert_eq!(format_amount(0, "CNY"), "0.00 CNY");
    }

    #[test]
    fn prices_round_to_the_nearest_micro() {
        assert_eq!(price_to_micro(0.075), 75_000);
        assert_eq!(price_to_micro(2.5 * 0.3 * 7.1), 5_325_000);
    }
}
