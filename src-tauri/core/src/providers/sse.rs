//! A byte-level Server-Sent Events parser.
//!
//! Upstream bytes arrive split at arbitrary points; this assembles them into
//! events without copying more than the current partial line, accepts `\n`,
//! `\r\n` and `\r` line ends, ignores comments and unknown fields, and
//! refuses a line longer than [`MAX_LINE`] instead of growing without bound.

use bytes::{Buf, BytesMut};

/// Longest single line accepted from an upstream (one SSE `data:` line).
pub const MAX_LINE: usize = 8 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event:` field, if any.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SseError {
    #[error("upstream sent an SSE line longer than {MAX_LINE} bytes")]
    LineTooLong,
}

#[derive(Debug, Default)]
pub struct SseParser {
    buf: BytesMut,
    /// The previous chunk ended in `\r`; a leading `\n` now belongs to it.
    pending_cr: bool,
    event: Option<String>,
    data: String,
    has_data: bool,
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes; pushes every event they complete onto `out`.
    pub fn push(&mut self, mut chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        if self.pending_cr {
            self.pending_cr = false;
            if let Some(rest) = chunk.strip_prefix(b"\n") {
                chunk = rest;
            }
        }
        self.buf.extend_from_slice(chunk);
        while let Some(pos) = self.buf.iter().position(|&b| b == b'\n' || b == b'\r') {
            let line = self.buf.split_to(pos);
            let term = self.buf[0];
            self.buf.advance(1);
            if term == b'\r' {
                if self.buf.is_empty() {
                    self.pending_cr = true;
                } else if self.buf[0] == b'\n' {
                    self.buf.advance(1);
                }
            }
            self.line(&line, out);
        }
        if self.buf.len() > MAX_LINE {
            self.buf.clear();
            return Err(SseError::LineTooLong);
        }
        Ok(())
    }

    /// Ends the input: a final event without its blank line is still
    /// delivered (upstreams that close right after the last `data:` line).
    pub fn finish(&mut self, out: &mut Vec<SseEvent>) {
        if !self.buf.is_empty() {
            let line = std::mem::take(&mut self.buf);
            self.line(&line, out);
        }
        self.dispatch(out);
    }

    fn line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line[0] == b':' {
            return;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        let value = String::from_utf8_lossy(value);
        match field {
            b"data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(&value);
                self.has_data = true;
            }
            b"event" => self.event = Some(value.into_owned()),
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        if self.has_data {
            out.push(SseEvent {
                event: self.event.take(),
                data: std::mem::take(&mut self.data),
            });
        }
        self.event = None;
        self.has_data = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        for c in chunks {
            p.push(c, &mut out).expect("within limits");
        }
        p.finish(&mut out);
        out
    }

    #[test]
    fn events_split_across_chunks_reassemble() {
        let out = parse_all(&[b"data: {\"a\"", b":1}\n", b"\ndata: [DONE]\n\n"]);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].data, "{\"a\":1}");
        assert_eq!(out[1].data, "[DONE]");
    }

    #[test]
    fn crlf_split_between_chunks_is_one_line_end() {
        let out = parse_all(&[b"event: ping\r", b"\ndata: x\r\n\r\n"]);
        assert_eq!(
            out,
            vec![SseEvent {
                event: Some("ping".into()),
                data: "x".into()
            }]
        );
    }

    #[test]
    fn comments_and_unknown_fields_are_ignored_multiline_data_joined() {
        let out = parse_all(&[b": keep-alive\nid: 3\ndata: a\ndata: b\n\n"]);
        assert_eq!(out[0].data, "a\nb");
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn trailing_event_without_blank_line_is_delivered() {
        let out = parse_all(&[b"data: last"]);
        assert_eq!(out[0].data, "last");
    }

    #[test]
    fn overlong_line_is_an_error_not_unbounded_growth() {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        let big = vec![b'x'; MAX_LINE + 1];
        assert_eq!(p.push(&big, &mut out), Err(SseError::LineTooLong));
    }
}
