//! Relaying a stream once its first token has arrived.
//!
//! From here on the client has content, so there is no failover: every
//! upstream event is forwarded as it arrives, and a cut, a stall or an
//! upstream error ends the stream with an explicit in-band error event —
//! never a normal finish that would present a truncated answer as whole.
//! The request's record is finished here, whatever happens (including the
//! client going away, which ends the upstream call too).

use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use secrecy::SecretString;
use tokio::sync::mpsc;

use crate::providers::{SseParser, StreamDecoder};
use std::sync::Arc;

use crate::record::{RecordGuard, RequestRecord, RequestStatus};
use crate::secrets::scrub;

/// A stream whose first token has arrived, not yet sent to the client.
pub struct StreamStart {
    /// Chunks received up to and including the first token.
    pub prelude: Vec<String>,
    pub(crate) body: BoxStream<'static, reqwest::Result<Bytes>>,
    pub(crate) parser: SseParser,
    pub decoder: Box<dyn StreamDecoder>,
    /// The upstream already completed the stream.
    pub(crate) done: bool,
    pub(crate) idle: Duration,
    pub(crate) secret: Option<SecretString>,
    pub(crate) channel: String,
}

/// What the client's stream carries, before framing in its API format.
pub enum StreamOut<'a> {
    /// An OpenAI `chat.completion.chunk` JSON text.
    Chunk(&'a str),
    /// The answer is complete.
    Done,
    /// The stream ends early, and the answer above it is incomplete.
    Error {
        message: &'a str,
        code: &'static str,
    },
}

/// Frames stream items for the caller: bytes in a client's API format, or
/// typed pieces for an in-process caller. Stateful: a format may need to
/// open and close blocks around the chunks it is given.
pub trait Encoder: Send + 'static {
    type Out: Send + 'static;
    fn encode(&mut self, item: &StreamOut<'_>) -> Self::Out;
}

impl<F: FnMut(&StreamOut<'_>) -> Bytes + Send + 'static> Encoder for F {
    type Out = Bytes;
    fn encode(&mut self, item: &StreamOut<'_>) -> Bytes {
        self(item)
    }
}

enum End {
    Complete,
    Cut(String, &'static str, RequestStatus),
    ClientGone,
}

/// Forwards `start` to the caller through `tx` until it ends (or the
/// caller drops the receiver), then finishes the request's record and
/// returns it.
pub async fn pump<E: Encoder>(
    mut start: StreamStart,
    mut guard: RecordGuard,
    tx: mpsc::Sender<E::Out>,
    mut encoder: E,
) -> Arc<RequestRecord> {
    let end = relay(&mut start, &tx, &mut encoder).await;
    let (status, error) = match end {
        End::Complete => {
            // A client that left right after the last byte still got it all.
            let _ = tx.send(encoder.encode(&StreamOut::Done)).await;
            (RequestStatus::Ok, None)
        }
        End::Cut(message, code, status) => {
            let _ = tx
                .send(encoder.encode(&StreamOut::Error {
                    message: &message,
                    code,
                }))
                .await;
            (status, Some(message))
        }
        End::ClientGone => (
            RequestStatus::ClientCancelled,
            Some("the client closed the stream before the answer was complete".to_string()),
        ),
    };
    let rec = guard.rec();
    rec.usage = start.decoder.usage();
    if let Some(m) = start.decoder.model() {
        rec.answered_model = Some(m.to_string());
    }
    guard.set_output_chars(start.decoder.output_chars());
    guard.finish(status, error)
}

async fn relay<E: Encoder>(
    start: &mut StreamStart,
    tx: &mpsc::Sender<E::Out>,
    encoder: &mut E,
) -> End {
    for chunk in start.prelude.drain(..) {
        if tx
            .send(encoder.encode(&StreamOut::Chunk(&chunk)))
            .await
            .is_err()
        {
            return End::ClientGone;
        }
    }
    if start.done {
        return End::Complete;
    }
    let idle = start.idle;
    let mut events = Vec::new();
    loop {
        let next = tokio::select! {
            biased;
            _ = tx.closed() => return End::ClientGone,
            next = tokio::time::timeout(idle, start.body.next()) => next,
        };
        let (parsed, ended) = match next {
            Err(_) => {
                return End::Cut(
                    format!(
                        "The upstream stopped sending for {}s after the answer began; the answer \
                         above is incomplete.",
                        idle.as_secs_f64()
                    ),
                    "upstream_stalled",
                    RequestStatus::UpstreamCut,
                );
            }
            Ok(Some(Err(_))) => {
                return End::Cut(
                    "The upstream connection broke mid-answer; the answer above is incomplete."
                        .into(),
                    "upstream_cut",
                    RequestStatus::UpstreamCut,
                );
            }
            Ok(Some(Ok(bytes))) => (start.parser.push(&bytes, &mut events), false),
            Ok(None) => (start.parser.finish(&mut events), true),
        };
        if parsed.is_err() {
            return End::Cut(
                "The upstream sent an oversized stream event; the answer above is incomplete."
                    .into(),
                "upstream_malformed",
                RequestStatus::UpstreamCut,
            );
        }
        for ev in events.drain(..) {
            let d = start.decoder.decode(&ev);
            if d.malformed {
                tracing::warn!(channel = %start.channel, "skipped a malformed upstream stream event");
                continue;
            }
            if let Some(message) = d.error {
                let message = scrub(message.as_bytes(), start.secret.as_ref());
                return End::Cut(
                    format!(
                        "The upstream reported an error mid-answer: {}",
                        String::from_utf8_lossy(&message)
                    ),
                    "upstream_error",
                    RequestStatus::Error,
                );
            }
            for chunk in d.forward {
                if tx
                    .send(encoder.encode(&StreamOut::Chunk(&chunk)))
                    .await
                    .is_err()
                {
                    return End::ClientGone;
                }
            }
            if d.done {
                return End::Complete;
            }
        }
        if ended {
            // No terminator: whole if a choice finished, otherwise cut.
            return if start.decoder.finished() {
                End::Complete
            } else {
                End::Cut(
                    "The upstream closed the stream before the answer was complete; the answer \
                     above is incomplete."
                        .into(),
                    "upstream_cut",
                    RequestStatus::UpstreamCut,
                )
            };
        }
    }
}
