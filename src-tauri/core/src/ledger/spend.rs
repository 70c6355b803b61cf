//! Offline spend reports: totals per bucket (each in its own currency,
//! never blended) grouped by a dimension, over any time range.
//!
//! Whole hours come from the `spend_hourly` rollup the writer maintains, so
//! a month of a million receipts answers in milliseconds; the partial hours
//! at either edge of the range come from the receipts themselves, so the
//! answer is exact.

use std::collections::BTreeMap;

use chrono::{Local, TimeZone};
use rusqlite::Connection;
use serde::Serialize;

use crate::config::{Bucket, BucketsConfig};

const HOUR_MS: i64 = 3_600_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dim {
    Model,
    Channel,
    Brand,
    Key,
    Project,
    Bucket,
    Day,
    Source,
}

impl std::str::FromStr for Dim {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "model" => Dim::Model,
            "channel" => Dim::Channel,
            "brand" => Dim::Brand,
            "key" => Dim::Key,
            "project" => Dim::Project,
            "bucket" => Dim::Bucket,
            "day" => Dim::Day,
            "source" => Dim::Source,
            other => {
                return Err(format!(
                    "cannot group by `{other}`; use model, channel, brand, key, project, bucket, day or source"
                ))
            }
        })
    }
}

impl Dim {
    pub fn title(self) -> &'static str {
        match self {
            Dim::Model => "MODEL",
            Dim::Channel => "CHANNEL",
            Dim::Brand => "BRAND",
            Dim::Key => "KEY",
            Dim::Project => "PROJECT",
            Dim::Bucket => "BUCKET",
            Dim::Day => "DAY",
            Dim::Source => "SOURCE",
        }
    }

    /// The column in both the rollup and the receipts (NULLs as '').
    fn column(self) -> &'static str {
        match self {
            Dim::Model => "requested_model",
            Dim::Channel => "COALESCE(channel, '')",
            Dim::Brand => "COALESCE(brand, '')",
            Dim::Key => "COALESCE(key_name, '')",
            Dim::Project => "COALESCE(project, '')",
            Dim::Bucket => "COALESCE(bucket, '')",
            Dim::Source => "source",
            // Grouped by hour in SQL, folded into local days here.
            Dim::Day => "",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SpendRow {
    pub group: String,
    /// `""` for requests no bucket paid (refused or failed everywhere).
    pub bucket: String,
    pub currency: String,
    pub requests: i64,
    pub errors: i64,
    pub fallbacks: i64,
    /// Served by targets without a known price.
    pub unpriced: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    /// Micro-units of `currency`.
    pub cost: i64,
}

impl SpendRow {
    fn add(&mut self, o: &SpendRow) {
        self.requests += o.requests;
        self.errors += o.errors;
        self.fallbacks += o.fallbacks;
        self.unpriced += o.unpriced;
        self.input_tokens += o.input_tokens;
        self.output_tokens += o.output_tokens;
        self.cost += o.cost;
    }
}

fn local_day(hour: i64) -> String {
    Local
        .timestamp_millis_opt(hour * HOUR_MS)
        .single()
        .map_or_else(String::new, |t| t.format("%Y-%m-%d").to_string())
}

/// Spend between `from_ms` (inclusive) and `to_ms` (exclusive), grouped by
/// `dim` and bucket.
pub fn spend(
    conn: &Connection,
    from_ms: i64,
    to_ms: i64,
    dim: Dim,
) -> rusqlite::Result<Vec<SpendRow>> {
    let first_hour = from_ms.div_euclid(HOUR_MS) + i64::from(from_ms.rem_euclid(HOUR_MS) != 0);
    let end_hour = to_ms.div_euclid(HOUR_MS);
    let group = if dim == Dim::Day {
        "hour"
    } else {
        dim.column()
    };
    let mut parts: Vec<(String, Vec<i64>)> = Vec::new();
    if first_hour < end_hour {
        parts.push((
            format!(
                "SELECT {group}, bucket, currency, SUM(requests), SUM(errors), SUM(fallbacks),
                        SUM(unpriced), SUM(input_tokens), SUM(output_tokens), SUM(cost)
                 FROM spend_hourly WHERE hour >= ?1 AND hour < ?2 GROUP BY 1, 2, 3"
            ),
            vec![first_hour, end_hour],
        ));
    }
    let raw_group = if dim == Dim::Day {
        "started_at / 3600000"
    } else {
        dim.column()
    };
    let raw = format!(
        "SELECT {raw_group}, COALESCE(bucket, ''), COALESCE(currency, ''), COUNT(*),
                SUM(status IN ('error', 'upstream_cut', 'interrupted')), SUM(fallback_count > 0),
                SUM(channel IS NOT NULL AND price_input IS NULL),
                SUM(input_tokens + cached_input_tokens + cache_write_tokens),
                SUM(output_tokens + reasoning_tokens), SUM(cost)
         FROM receipts WHERE started_at >= ?1 AND started_at < ?2
           AND status NOT IN ('pending', 'refused')
         GROUP BY 1, 2, 3"
    );
    if first_hour < end_hour {
        parts.push((raw.clone(), vec![from_ms, first_hour * HOUR_MS]));
        parts.push((raw, vec![end_hour * HOUR_MS, to_ms]));
    } else {
        parts.push((raw, vec![from_ms, to_ms]));
    }

    let mut merged = Merged::new();
    for (sql, args) in parts {
        if args[0] >= args[1] {
            continue;
        }
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args.iter()), |r| {
            let group = if dim == Dim::Day {
                local_day(r.get::<_, i64>(0)?)
            } else {
                r.get::<_, String>(0)?
            };
            Ok(SpendRow {
                group,
                bucket: r.get(1)?,
                currency: r.get(2)?,
                requests: r.get(3)?,
                errors: r.get(4)?,
                fallbacks: r.get(5)?,
                unpriced: r.get(6)?,
                input_tokens: r.get(7)?,
                output_tokens: r.get(8)?,
                cost: r.get(9)?,
            })
        })?;
        for row in rows {
            merge(&mut merged, row?);
        }
    }
    Ok(merged.into_values().collect())
}

/// Gives rows that a bucket paid but that carry no currency (requests
/// served by unpriced targets cost nothing known) the bucket's currency,
/// and merges them with that bucket's priced rows of the same group.
pub fn adopt_bucket_currency(rows: Vec<SpendRow>, buckets: &BucketsConfig) -> Vec<SpendRow> {
    let mut merged = Merged::new();
    for mut row in rows {
        if row.currency.is_empty() {
            if let Ok(b) = row.bucket.parse::<Bucket>() {
                row.currency = buckets.currency(b).to_string();
            }
        }
        merge(&mut merged, row);
    }
    merged.into_values().collect()
}

type Merged = BTreeMap<(String, String, String), SpendRow>;

/// Adds `row` to the row of its (group, bucket, currency).
fn merge(merged: &mut Merged, row: SpendRow) {
    merged
        .entry((row.group.clone(), row.bucket.clone(), row.currency.clone()))
        .or_insert_with(|| SpendRow {
            group: row.group.clone(),
            bucket: row.bucket.clone(),
            currency: row.currency.clone(),
            ..Default::default()
        })
        .add(&row);
}

/// Totals per (bucket, currency) of some rows.
pub fn totals(rows: &[SpendRow]) -> Vec<SpendRow> {
    let mut t: BTreeMap<(String, String), SpendRow> = BTreeMap::new();
    for r in rows {
        t.entry((r.bucket.clone(), r.currency.clone()))
            .or_insert_with(|| SpendRow {
                group: "total".into(),
                bucket: r.bucket.clone(),
                currency: r.currency.clone(),
                ..Default::default()
            })
            .add(r);
    }
    t.into_values().collect()
}

/// The `[from, to)` range in Unix ms of a report: whole local days
/// `from`..=`to` (`YYYY-MM-DD`, either may be left out) when either is
/// given, otherwise the last `since` (default `7d`) up to `now`.
pub fn range(
    now: chrono::DateTime<Local>,
    since: Option<&str>,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<(i64, i64), String> {
    if from.is_some() || to.is_some() {
        let to_day = to.map(parse_day).transpose()?.unwrap_or(now.date_naive());
        let from_day = from.map(parse_day).transpose()?.unwrap_or(to_day);
        if from_day > to_day {
            return Err(format!("from {from_day} is after to {to_day}"));
        }
        let end = to_day.succ_opt().unwrap_or(to_day);
        Ok((
            super::store::local_midnight_ms(from_day),
            super::store::local_midnight_ms(end),
        ))
    } else {
        let span = parse_since(since.unwrap_or("7d"))?;
        Ok((now.timestamp_millis() - span, now.timestamp_millis() + 1))
    }
}

fn parse_day(s: &str) -> Result<chrono::NaiveDate, String> {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| format!("`{s}` is not a date like 2026-11-21"))
}

/// Parses `7d`, `24h`, `90m`, `2w` into milliseconds.
pub fn parse_since(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 7d, 24h, 90m or 2w"))?;
    let unit_ms = match unit {
        "m" => 60_000,
        "h" => HOUR_MS,
        "d" => 24 * HOUR_MS,
        "w" => 7 * 24 * HOUR_MS,
        _ => return Err(format!("`{s}` is not a duration like 7d, 24h, 90m or 2w")),
    };
    Ok(n * unit_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpriced_rows_join_their_buckets_priced_row() {
        let row = |bucket: &str, currency: &str, cost: i64, unpriced: i64| SpendRow {
            group: "m".into(),
            bucket: bucket.into(),
            currency: currency.into(),
            requests: 1,
            unpriced,
            cost,
            ..Default::default()
        };
        let rows = vec![
            row("wallet", "CNY", 700, 0),
            row("wallet", "", 0, 1),
            row("credit", "", 0, 1),
            row("", "", 0, 0),
        ];
        let out = adopt_bucket_currency(rows, &BucketsConfig::default());
        let find = |b: &str| out.iter().find(|r| r.bucket == b).cloned().expect("row");
        assert_eq!(out.len(), 3, "{out:?}");
        let wallet = find("wallet");
        assert_eq!((wallet.currency.as_str(), wallet.requests), ("CNY", 2));
        assert_eq!((wallet.cost, wallet.unpriced), (700, 1));
        assert_eq!(find("credit").currency, "USD");
        assert_eq!(find("").currency, "", "nobody paid: no currency");
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_since("7d"), Ok(7 * 24 * HOUR_MS));
        assert_eq!(parse_since("90m"), Ok(90 * 60_000));
        assert!(parse_since("7").is_err());
        assert!(parse_since("d").is_err());
        assert!(parse_since("3y").is_err());
    }

    #[test]
    fn dims_parse_and_refuse_unknowns() {
        assert_eq!("model".parse::<Dim>(), Ok(Dim::Model));
        assert!("colour".parse::<Dim>().is_err());
    }
}
