//! A byte-level Server-Sent Events parser.
//!
//! Upstream bytes arrive split at arbitrary points; this assembles them into
//! events without copying more than the current partial line, accepts `\n`,
//! `\r\n` and `\r` line ends, ignores comments and unknown fields, and
//! refuses a line or an event larger than [`MAX_LINE`] instead of growing
//! without bound. Where the input is split never changes what comes out —
//! events, or the error.

use bytes::{Buf, BytesMut};

/// Longest single line, and largest event (its `data:` lines joined),
/// accepted from an upstream.
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
    #[error("upstream sent an SSE event larger than {MAX_LINE} bytes")]
    EventTooLarge,
}

#[derive(Debug)]
pub struct SseParser {
    buf: BytesMut,
    /// The previous chunk ended in `\r`; a leading `\n` now belongs to it.
    pending_cr: bool,
    event: Option<String>,
    data: String,
    has_data: bool,
    /// Most bytes a line, or an event's data, may hold.
    limit: usize,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::with_limit(MAX_LINE)
    }
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// A parser holding lines and events to `limit` bytes.
    pub fn with_limit(limit: usize) -> Self {
        SseParser {
            buf: BytesMut::new(),
            pending_cr: false,
            event: None,
            data: String::new(),
            has_data: false,
            limit,
        }
    }

    /// Feeds bytes; pushes every event they complete onto `out`. After an
    /// error the parser is spent.
    pub fn push(&mut self, mut chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        // An empty chunk (HTTP/2 allows empty DATA frames) must not end a
        // pending `\r` early: its `\n` may still come.
        if self.pending_cr && !chunk.is_empty() {
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
            self.line(&line, out)?;
        }
        // A partial line already over the limit can only grow.
        if self.buf.len() > self.limit {
            self.buf.clear();
            return Err(SseError::LineTooLong);
        }
        Ok(())
    }

    /// Ends the input: a final event without its blank line is still
    /// delivered (upstreams that close right after the last `data:` line).
    pub fn finish(&mut self, out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        if !self.buf.is_empty() {
            let line = std::mem::take(&mut self.buf);
            self.line(&line, out)?;
        }
        self.dispatch(out);
        Ok(())
    }

    fn line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        if line.len() > self.limit {
            return Err(SseError::LineTooLong);
        }
        if line.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        if line[0] == b':' {
            return Ok(());
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
                let joined = self.data.len() + usize::from(self.has_data) + value.len();
                if joined > self.limit {
                    return Err(SseError::EventTooLarge);
                }
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(&value);
                self.has_data = true;
            }
            b"event" => self.event = Some(value.into_owned()),
            _ => {}
        }
        Ok(())
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
        p.finish(&mut out).expect("within limits");
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

    #[test]
    fn empty_chunk_between_cr_and_lf_keeps_them_one_line_end() {
        let out = parse_all(&[b"event: ping\r", b"", b"\ndata: x\n\n"]);
        assert_eq!(
            out,
            vec![SseEvent {
                event: Some("ping".into()),
                data: "x".into()
            }]
        );
    }

    #[test]
    fn event_of_many_data_lines_is_bounded_too() {
        let mut p = SseParser::with_limit(16);
        let mut out = Vec::new();
        assert_eq!(p.push(b"data: 12345678\n", &mut out), Ok(()));
        assert_eq!(
            p.push(b"data: 12345678\n", &mut out),
            Err(SseError::EventTooLarge)
        );
        assert!(out.is_empty());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        const LIMIT: usize = 48;

        /// What the parser made of `input` cut at `cuts`: the events before
        /// any error, and the error. Checks the memory bound after each push.
        fn run(input: &[u8], cuts: &[usize], limit: usize) -> (Vec<SseEvent>, Option<SseError>) {
            let mut p = SseParser::with_limit(limit);
            let mut out = Vec::new();
            let mut at = 0;
            let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
            cuts.sort_unstable();
            for end in cuts.into_iter().chain([input.len()]) {
                if let Err(e) = p.push(&input[at..end], &mut out) {
                    return (out, Some(e));
                }
                assert!(
                    p.buf.len() <= limit && p.data.len() <= limit,
                    "holds {} + {} bytes with a limit of {limit}",
                    p.buf.len(),
                    p.data.len()
                );
                at = end;
            }
            let end = p.finish(&mut out).err();
            (out, end)
        }

        /// Bytes that look like SSE often enough to reach every branch.
        fn sse_bytes() -> impl Strategy<Value = Vec<u8>> {
            let piece = prop_oneof![
                Just(b"data:".to_vec()),
                Just(b"data: ".to_vec()),
                Just(b"event: ".to_vec()),
                Just(b": keep-alive".to_vec()),
                Just(b"id: 7".to_vec()),
                Just(b"\n".to_vec()),
                Just(b"\r".to_vec()),
                Just(b"\r\n".to_vec()),
                Just(b"\n\n".to_vec()),
                Just(b"{\"a\":[1,2]}".to_vec()),
                Just("\u{e9}\u{1F600}".as_bytes().to_vec()),
                Just(vec![b'x'; 30]),
                prop::collection::vec(any::<u8>(), 1..6),
            ];
            prop::collection::vec(piece, 0..40).prop_map(|p| p.concat())
        }

        proptest! {
            #[test]
            fn where_the_input_is_split_never_changes_the_output(
                input in sse_bytes(),
                cuts in prop::collection::vec(any::<usize>(), 0..12),
            ) {
                let whole = run(&input, &[], LIMIT);
                prop_assert_eq!(&run(&input, &cuts, LIMIT), &whole);
                let every_byte: Vec<usize> = (1..input.len()).collect();
                prop_assert_eq!(&run(&input, &every_byte, LIMIT), &whole);
                // Without a binding limit nothing is refused.
                prop_assert_eq!(run(&input, &cuts, MAX_LINE).1, None);
            }

            #[test]
            fn arbitrary_bytes_never_panic_or_exceed_the_limit(
                input in prop::collection::vec(any::<u8>(), 0..600),
                cuts in prop::collection::vec(any::<usize>(), 0..12),
            ) {
                prop_assert_eq!(run(&input, &cuts, LIMIT), run(&input, &[], LIMIT));
            }

            #[test]
            fn well_formed_events_come_back_as_sent_whatever_the_line_ends(
                events in prop::collection::vec(
                    (
                        prop::option::of("[a-z]{1,8}"),
                        prop::collection::vec("[^\r\n]{0,12}", 1..4),
                    ),
                    0..8,
                ),
                ends in prop::collection::vec(0..3usize, 64),
                cuts in prop::collection::vec(any::<usize>(), 0..12),
            ) {
                let mut input = String::new();
                let mut i = 0;
                let mut last = "";
                let mut end = || {
                    i += 1;
                    let mut e = ["\n", "\r", "\r\n"][ends[i % ends.len()]];
                    // `\r` then `\n` is one CRLF line end, not two.
                    if last == "\r" && e == "\n" {
                        e = "\r";
                    }
                    last = e;
                    e
                };
                for (name, lines) in &events {
                    if let Some(n) = name {
                        input.push_str(&format!("event: {n}{}", end()));
                    }
                    for l in lines {
                        input.push_str(&format!("data: {l}{}", end()));
                    }
                    input.push_str(end());
                }
                let (got, err) = run(input.as_bytes(), &cuts, MAX_LINE);
                prop_assert_eq!(err, None);
                let want: Vec<SseEvent> = events
                    .iter()
                    .map(|(name, lines)| SseEvent { event: name.clone(), data: lines.join("\n") })
                    .collect();
                prop_assert_eq!(got, want);
            }
        }
    }
}
