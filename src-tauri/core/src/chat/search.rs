//! Full-text search over conversation titles and message texts (FTS5).
//!
//! FTS5's `unicode61` tokenizer splits on spaces and punctuation, which
//! Chinese and Japanese text does not have: a whole sentence would be one
//! token, and no word in it could be found. So every CJK character is
//! indexed as a token of its own, and a query's CJK word becomes a phrase of
//! its characters, which matches exactly where they stand together, in
//! order. Latin words match by prefix. Snippets are cut from the stored
//! text, with each hit wrapped in U+0001 … U+0002 for the UI to mark.

use rusqlite::{params, Connection};

/// Han, kana, Hangul and their compatibility and half-width forms.
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x1100..=0x11FF
        | 0x2E80..=0x2FDF
        | 0x3040..=0x30FF
        | 0x3130..=0x318F
        | 0x31F0..=0x31FF
        | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF
        | 0xAC00..=0xD7AF
        | 0xF900..=0xFAFF
        | 0xFF66..=0xFF9F
        | 0x20000..=0x3FFFF)
}

/// The text as it is indexed: CJK characters set apart by spaces.
fn spaced(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 2);
    for c in text.chars() {
        if is_cjk(c) {
            out.push(' ');
            out.push(c);
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out
}

/// (Re)indexes `text` under `rowid` (a message's `n`, or a conversation's
/// `-n` for its title); empty text leaves nothing indexed.
pub(super) fn index(conn: &Connection, rowid: i64, text: &str) -> rusqlite::Result<()> {
    unindex(conn, rowid)?;
    if !text.trim().is_empty() {
        conn.prepare_cached("INSERT INTO chat_fts (rowid, text) VALUES (?1, ?2)")?
            .execute(params![rowid, spaced(text)])?;
    }
    Ok(())
}

pub(super) fn unindex(conn: &Connection, rowid: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM chat_fts WHERE rowid = ?1")?
        .execute([rowid])?;
    Ok(())
}

/// The tokens of one query word, as the tokenizer would see them.
fn tokens(word: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut run = String::new();
    for c in word.chars() {
        if is_cjk(c) {
            if !run.is_empty() {
                out.push(std::mem::take(&mut run));
            }
            out.push(c.to_string());
        } else if c.is_alphanumeric() {
            run.push(c);
        } else if !run.is_empty() {
            out.push(std::mem::take(&mut run));
        }
    }
    if !run.is_empty() {
        out.push(run);
    }
    out
}

/// The FTS5 query for what the user typed: every word must match (a CJK
/// word as the phrase of its characters, the last token by prefix).
/// `None` when it has nothing searchable.
pub(super) fn query(text: &str) -> Option<String> {
    let terms: Vec<String> = text
        .split_whitespace()
        .map(tokens)
        .filter(|t| !t.is_empty())
        .map(|t| format!("\"{}\"*", t.join(" ")))
        .collect();
    (!terms.is_empty()).then(|| terms.join(" AND "))
}

const BEFORE: usize = 40;
const AFTER: usize = 100;

/// Text around the first hit of any query word, hits marked.
pub(super) fn snippet(text: &str, q: &str) -> String {
    let chars: Vec<char> = text
        .chars()
        .map(|c| if c.is_whitespace() { ' ' } else { c })
        .collect();
    let lower: Vec<char> = chars
        .iter()
        .map(|c| c.to_lowercase().next().unwrap_or(*c))
        .collect();
    let needles: Vec<Vec<char>> = q
        .split_whitespace()
        .map(|w| {
            w.chars()
                .filter(|c| c.is_alphanumeric() || is_cjk(*c))
                .map(|c| c.to_lowercase().next().unwrap_or(c))
                .collect::<Vec<char>>()
        })
        .filter(|w| !w.is_empty())
        .collect();
    let hit_at = |i: usize| -> Option<usize> {
        needles
            .iter()
            .filter(|n| lower[i..].starts_with(n))
            .map(Vec::len)
            .max()
    };
    let first = (0..lower.len()).find(|&i| hit_at(i).is_some());
    let start = first.map_or(0, |f| f.saturating_sub(BEFORE));
    let end = first.map_or(AFTER.min(chars.len()), |f| (f + AFTER).min(chars.len()));
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    let mut i = start;
    while i < end {
        match hit_at(i) {
            Some(len) => {
                out.push('\u{1}');
                out.extend(&chars[i..(i + len).min(chars.len())]);
                out.push('\u{2}');
                i += len;
            }
            None => {
                out.push(chars[i]);
                i += 1;
            }
        }
    }
    if end < chars.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cjk_words_become_phrases_and_latin_words_prefixes() {
        assert_eq!(
            query("中文 gram").as_deref(),
            Some("\"中 文\"* AND \"gram\"*")
        );
        assert_eq!(query("e-mail").as_deref(), Some("\"e mail\"*"));
        assert_eq!(query("  \"*' ").as_deref(), None);
    }

    #[test]
    fn quotes_and_operators_in_a_query_are_only_text() {
        assert_eq!(
            query("a\" OR NEAR(b").as_deref(),
            Some("\"a\"* AND \"OR\"* AND \"NEAR b\"*")
        );
    }

    #[test]
    fn snippet_marks_every_hit_in_its_window() {
        let s = snippet("Paris is the capital. Capital cities…", "capital");
        assert_eq!(
            s,
            "Paris is the \u{1}capital\u{2}. \u{1}Capital\u{2} cities…"
        );
        let long = format!("{}needle{}", "x ".repeat(60), " y".repeat(80));
        let s = snippet(&long, "needle");
        assert!(s.starts_with('…') && s.ends_with('…'), "{s}");
        assert!(s.contains("\u{1}needle\u{2}"));
    }
}
