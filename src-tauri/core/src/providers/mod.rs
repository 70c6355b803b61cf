//! Upstream provider types, one module each behind the [`Provider`] trait.
//!
//! A provider turns the client's OpenAI-shaped chat request into its own
//! wire request, and its responses — whole or streamed — back into OpenAI
//! chat completions and chunks, measuring usage on the way. Routing,
//! retries and failover know nothing of wire formats; providers know nothing
//! of routes.

pub mod anthropic;
pub mod gemini;
pub mod openai;
pub mod sse;

use std::sync::Arc;

use bytes::Bytes;
use secrecy::SecretString;
use serde_json::{Map, Value};

use crate::config::ChannelType;
use crate::record::Usage;
pub use sse::{SseEvent, SseParser};

/// One chat call to one target.
pub struct ChatCall<'a> {
    /// The client's request object, unchanged.
    pub body: &'a Map<String, Value>,
    /// The model id the upstream knows.
    pub upstream_model: &'a str,
    pub stream: bool,
}

/// The API format a client's own request is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NativeFormat {
    /// Anthropic Messages (`/v1/messages`).
    Anthropic,
    /// Gemini `generateContent` (`/v1beta/models/{model}:…`).
    Gemini,
    /// OpenAI Responses (`/v1/responses`).
    Responses,
}

/// A client's own request in its API's format, for providers that speak
/// that format.
pub struct NativeRequest<'a> {
    pub format: NativeFormat,
    pub body: &'a Map<String, Value>,
    /// The client's `anthropic-beta` header: beta features it turned on.
    pub beta: Option<&'a str>,
}

/// A whole (non-streamed) answer, ready for the client.
#[derive(Debug)]
pub struct ChatReply {
    pub body: Bytes,
    pub usage: Option<Usage>,
    /// The model the upstream says answered.
    pub model: Option<String>,
}

/// A successful HTTP answer that refuses the request (a safety block that
/// Gemini reports with 200): the client gets `status` and `body`, an
/// OpenAI error JSON, with no retry and no failover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRefusal {
    pub status: u16,
    pub body: Bytes,
}

/// Why a 2xx answer cannot be given to the client as it is.
#[derive(Debug)]
pub enum ReplyError {
    /// Not a valid answer; another attempt may do better.
    Malformed(String),
    /// A valid answer that refuses the request: relay it.
    Refused(ClientRefusal),
}

impl From<String> for ReplyError {
    fn from(why: String) -> Self {
        ReplyError::Malformed(why)
    }
}

impl From<&str> for ReplyError {
    fn from(why: &str) -> Self {
        ReplyError::Malformed(why.to_string())
    }
}

/// What a 4xx from this provider means for routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorMeaning {
    /// The prompt is too long for this target; another may take it.
    ContextLength,
    /// The channel's secret was refused, whatever the status says (Gemini
    /// answers an invalid API key with 400): mark it and fail over.
    KeyRejected,
    /// The request's own fault (validation, content policy): relay it.
    ClientError,
}

/// What one upstream stream event means.
#[derive(Debug, Default)]
pub struct Decoded {
    /// OpenAI `chat.completion.chunk` JSON texts to forward, in order (one
    /// upstream event may make none, one or several).
    pub forward: Vec<String>,
    /// The event shows the model is answering (content, tool call,
    /// reasoning, refusal or a finish reason).
    pub progress: bool,
    /// The upstream said the stream is complete (`[DONE]`).
    pub done: bool,
    /// The upstream reported an error inside the stream.
    pub error: Option<String>,
    /// The event could not be understood and was dropped.
    pub malformed: bool,
    /// The upstream refused the request before the first token (a blocked
    /// prompt): relay this to the client instead of a stream. Only set
    /// while nothing has been forwarded as progress.
    pub refused: Option<ClientRefusal>,
}

/// Turns one upstream's stream events into OpenAI chunks, keeping account.
pub trait StreamDecoder: Send {
    fn decode(&mut self, event: &SseEvent) -> Decoded;
    fn usage(&self) -> Option<Usage>;
    fn model(&self) -> Option<&str>;
    /// A choice carried a `finish_reason`: the answer is whole even if the
    /// stream ends without its terminator.
    fn finished(&self) -> bool;
    /// Characters of output seen, for estimating usage when none comes.
    fn output_chars(&self) -> usize;
}

pub trait Provider: Send + Sync {
    fn chat_request(
        &self,
        http: &reqwest::Client,
        base_url: &str,
        secret: Option<&SecretString>,
        call: &ChatCall<'_>,
    ) -> reqwest::RequestBuilder;

    /// Reads a successful whole answer. A `String` error converts into
    /// [`ReplyError::Malformed`].
    fn chat_reply(&self, body: Bytes) -> Result<ChatReply, ReplyError>;

    /// What a 4xx body means.
    fn error_meaning(&self, status: u16, body: &[u8]) -> ErrorMeaning;

    /// How long an error body asks the caller to wait before retrying, for
    /// providers that say so in the body instead of `Retry-After`.
    fn retry_delay(&self, _body: &[u8]) -> Option<std::time::Duration> {
        None
    }

    /// A 4xx body as the client gets it: an OpenAI error JSON. The default
    /// relays it unchanged (the upstream already speaks OpenAI's format).
    fn client_error_body(&self, body: Bytes) -> Bytes {
        body
    }

    /// A decoder for one streamed answer. `client_wants_usage`: the client
    /// asked for the usage chunk itself (otherwise it is stripped).
    fn stream_decoder(&self, client_wants_usage: bool) -> Box<dyn StreamDecoder>;

    /// The request listing the upstream's models (for channels that expose
    /// them with `models = [globs]`).
    fn models_request(
        &self,
        http: &reqwest::Client,
        base_url: &str,
        secret: Option<&SecretString>,
    ) -> reqwest::RequestBuilder {
        use secrecy::ExposeSecret;
        let req = http.get(format!("{base_url}/models"));
        match secret {
            Some(s) => req.bearer_auth(s.expose_secret()),
            None => req,
        }
    }

    /// The model ids in a models-list answer (OpenAI's shape by default:
    /// `data[].id`, which Anthropic shares).
    fn model_ids(&self, list: &Value) -> Vec<String> {
        list.get("data")
            .and_then(|d| d.as_array())
            .into_iter()
            .flatten()
            .filter_map(|m| m.get("id").and_then(|i| i.as_str()))
            .map(str::to_string)
            .collect()
    }

    /// The client format whose requests [`Provider::native_request`]
    /// passes through, if any.
    fn native_format(&self) -> Option<NativeFormat> {
        None
    }

    /// The client's own request, passed through with only the model
    /// replaced — for a provider whose API is the client's format (so an
    /// Anthropic or Gemini client of its own upstream loses nothing in
    /// translation). `None`: translate through the chat shape instead.
    fn native_request(
        &self,
        _http: &reqwest::Client,
        _base_url: &str,
        _secret: Option<&SecretString>,
        _native: &NativeRequest<'_>,
        _upstream_model: &str,
        _stream: bool,
    ) -> Option<reqwest::RequestBuilder> {
        None
    }

    /// A native answer: the body is kept as the upstream sent it.
    fn native_reply(&self, _body: Bytes) -> Result<ChatReply, ReplyError> {
        Err(ReplyError::Malformed(
            "this provider type has no native API for the client's format".into(),
        ))
    }

    /// A decoder that accounts for a native stream and forwards its events
    /// as they came, framed (`event: …\ndata: …\n\n` or `data: …\n\n`).
    fn native_stream_decoder(&self) -> Option<Box<dyn StreamDecoder>> {
        None
    }

    /// An embeddings request for an OpenAI-shaped `/v1/embeddings` body, or
    /// `None` when this provider type has no embeddings.
    fn embeddings_request(
        &self,
        _http: &reqwest::Client,
        _base_url: &str,
        _secret: Option<&SecretString>,
        _body: &Map<String, Value>,
        _upstream_model: &str,
    ) -> Option<reqwest::RequestBuilder> {
        None
    }

    /// Reads a successful embeddings answer into OpenAI's shape.
    fn embeddings_reply(&self, _body: Bytes, _upstream_model: &str) -> Result<ChatReply, String> {
        Err("this provider type has no embeddings".into())
    }
}

/// Sends the channel's secret in `header`, marked sensitive so it is never
/// printed. A secret that is not a valid header value is left out: the
/// upstream answers 401/403 and the channel's secret is reported as
/// rejected, which says what to fix.
/// An endpoint under a channel's base URL, parsed once and reused: reqwest
/// would otherwise parse the URL string again on every call. A provider
/// instance serves one channel; the cache still checks that the base URL is
/// the one it was built from.
#[derive(Default)]
pub struct CachedUrl(std::sync::OnceLock<(String, reqwest::Url)>);

impl CachedUrl {
    /// A POST to `endpoint(base_url)`. A URL that does not parse is passed
    /// on as a string, for reqwest to report.
    pub(crate) fn post(
        &self,
        http: &reqwest::Client,
        base_url: &str,
        endpoint: impl FnOnce(&str) -> String,
    ) -> reqwest::RequestBuilder {
        if let Some((base, url)) = self.0.get() {
            if base == base_url {
                return http.post(url.clone());
            }
        }
        let text = endpoint(base_url);
        match reqwest::Url::parse(&text) {
            Ok(url) => {
                let _ = self.0.set((base_url.to_string(), url.clone()));
                http.post(url)
            }
            Err(_) => http.post(text),
        }
    }
}

pub(crate) fn with_key(
    req: reqwest::RequestBuilder,
    header: &'static str,
    secret: Option<&SecretString>,
) -> reqwest::RequestBuilder {
    use secrecy::ExposeSecret;
    let Some(secret) = secret else { return req };
    match reqwest::header::HeaderValue::from_str(secret.expose_secret()) {
        Ok(mut v) => {
            v.set_sensitive(true);
            req.header(header, v)
        }
        Err(_) => {
            tracing::warn!("the channel's secret is not a valid HTTP header value");
            req
        }
    }
}

/// The provider implementation for a channel type.
pub fn for_type(kind: ChannelType) -> Option<Arc<dyn Provider>> {
    match kind {
        // OpenAI itself serves the Responses API; a compatible service may
        // only have chat completions.
        ChannelType::OpenAi => Some(Arc::new(openai::OpenAi::with_responses())),
        ChannelType::OpenAiCompatible => Some(Arc::new(openai::OpenAi::default())),
        ChannelType::Gemini => Some(Arc::new(gemini::Gemini)),
        ChannelType::Anthropic => Some(Arc::new(anthropic::Anthropic::default())),
    }
}

/// Characters of text in an OpenAI chat request's messages, for estimating
/// prompt tokens when the upstream reports none.
pub fn prompt_chars(body: &Map<String, Value>) -> usize {
    fn text_len(v: &Value) -> usize {
        match v {
            Value::String(s) => s.chars().count(),
            Value::Array(items) => items.iter().map(text_len).sum(),
            Value::Object(o) => {
                o.get("text").map_or(0, text_len) + o.get("content").map_or(0, text_len)
            }
            _ => 0,
        }
    }
    // Chat messages, or the inputs of an embeddings request.
    body.get("messages")
        .and_then(|m| m.as_array())
        .map_or(0, |msgs| msgs.iter().map(text_len).sum())
        + body.get("input").map_or(0, text_len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url_of(req: reqwest::RequestBuilder) -> Result<String, String> {
        req.build()
            .map(|r| r.url().to_string())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn cached_url_is_built_for_the_base_it_is_given() {
        let http = reqwest::Client::new();
        let cache = CachedUrl::default();
        let chat = |base: &str| format!("{base}/chat/completions");
        for _ in 0..2 {
            assert_eq!(
                url_of(cache.post(&http, "http://a.test/v1", chat)),
                Ok("http://a.test/v1/chat/completions".into())
            );
        }
        // Another base never gets the cached URL.
        assert_eq!(
            url_of(cache.post(&http, "http://b.test/v1", chat)),
            Ok("http://b.test/v1/chat/completions".into())
        );
        assert_eq!(
            url_of(cache.post(&http, "http://a.test/v1", chat)),
            Ok("http://a.test/v1/chat/completions".into())
        );
        // One that does not parse is reqwest's error, as before.
        assert!(url_of(CachedUrl::default().post(&http, "not a url", chat)).is_err());
    }
}
