//! The one request path (DESIGN.md §9): a [`Call`] in, an [`Accepted`]
//! answer or a [`Refused`] error out.
//!
//! Every caller takes it — the OpenAI and Anthropic ingress handlers of the
//! loopback port, and the app's own features (chat, later research and
//! evaluation), which call [`Core::call`] in-process. It checks the key's
//! model scope, resolves the route, opens the request's record (its
//! `pending` receipt), and runs the attempt loop with its admission checks
//! (balances, budgets), retries and failover. Nothing here knows HTTP
//! requests or responses; the ingress formats are thin adapters over it, so
//! the failure semantics exist once.

mod error;

use std::sync::Arc;

use arc_swap::ArcSwap;
use serde_json::{Map, Value};
use tokio::sync::mpsc;

pub use error::{ErrorBody, ErrorDetail, GatewayError};

use crate::keys::{GatewayKey, KeyCache};
use crate::ledger::Ledger;
pub use crate::providers::NativeFormat;
use crate::providers::{prompt_chars, NativeRequest};
use crate::record::{RecordGuard, Recorder, RequestRecord, RequestStatus, ServedBy, Source};
use crate::routing::{self, Dispatch, Gateway};

pub use crate::routing::{Answer, AttemptStarted, CallKind};

/// What the request path runs on: the compiled config (swapped whole when
/// it is edited), the gateway keys, the ledger, and the recorders every
/// finished request reaches.
pub struct Core {
    pub gateway: ArcSwap<Gateway>,
    pub keys: Arc<KeyCache>,
    pub ledger: Arc<Ledger>,
    /// The ledger, the health book and the log line, and any others (tests).
    pub recorder: Arc<dyn Recorder>,
}

/// Who is calling, as its receipts will say.
#[derive(Clone)]
pub struct Caller {
    pub key: Arc<GatewayKey>,
    pub source: Source,
    /// The conversation or run the call belongs to.
    pub run_id: Option<String>,
    /// What the call is for within its run (`answer`, `title`, …).
    pub step: Option<String>,
}

impl Caller {
    /// A client of the loopback port, presenting `key`.
    pub fn api(key: Arc<GatewayKey>) -> Caller {
        Caller {
            key,
            source: Source::Api,
            run_id: None,
            step: None,
        }
    }
}

/// A client's own request in its API's format (Anthropic Messages,
/// Gemini `generateContent`): a provider that speaks that format natively
/// gets it as it is.
pub struct NativeCall {
    pub format: NativeFormat,
    pub body: Map<String, Value>,
    /// Its `anthropic-beta` header.
    pub beta: Option<String>,
}

/// One request, as a caller makes it.
pub struct Call {
    pub request_id: String,
    pub kind: CallKind,
    pub caller: Caller,
    /// The request in the canonical (OpenAI chat) shape, `model` included.
    pub body: Map<String, Value>,
    pub native: Option<NativeCall>,
    pub stream: bool,
    /// The usage chunk reaches the caller's stream (it asked for it, or its
    /// format reports usage itself).
    pub wants_usage: bool,
    /// Told each time an attempt at a target begins.
    pub progress: Option<mpsc::UnboundedSender<AttemptStarted>>,
    /// Only the route's target on this channel (no failover).
    pub pin: Option<String>,
}

/// A call that got an answer: a whole reply, or a stream past its first
/// token. The guard finishes the request's record once the caller has
/// delivered the answer (or drops it: `client_cancelled`); `record` is a
/// snapshot of it for response headers and summaries.
pub struct Accepted {
    pub answer: Answer,
    pub guard: RecordGuard,
    pub record: RequestRecord,
}

/// A call refused, with the request's record when it got that far (it is
/// already finished and on its way to the ledger).
pub struct Refused {
    pub error: GatewayError,
    pub record: Option<RequestRecord>,
}

impl From<GatewayError> for Refused {
    fn from(error: GatewayError) -> Refused {
        Refused {
            error,
            record: None,
        }
    }
}

/// The record of `call` as its caller made it, before any routing.
fn record_of(call: &Call, model: String) -> RequestRecord {
    let key = &call.caller.key;
    let mut rec = RequestRecord::new(call.request_id.clone(), model, call.stream);
    rec.key_id = Some(key.id);
    rec.key = Some(key.name.clone());
    rec.project = key.project.clone();
    rec.source = call.caller.source;
    rec.run_id = call.caller.run_id.clone();
    rec.step = call.caller.step.clone();
    rec
}

pub fn new_request_id() -> String {
    format!("req_{}", uuid::Uuid::now_v7().simple())
}

impl Core {
    /// The gateway as configured now. A request holds on to the one it
    /// started with, even if the config is edited meanwhile.
    pub fn gateway(&self) -> Arc<Gateway> {
        self.gateway.load_full()
    }

    /// Turns `call` away before any route is tried; its `refused` receipt
    /// says why.
    fn refuse(&self, call: &Call, model: String, error: GatewayError) -> Refused {
        let mut rec = record_of(call, model);
        rec.status = RequestStatus::Refused;
        rec.error = Some(error.to_string());
        let rec = Arc::new(rec);
        self.recorder.record(&rec);
        Refused {
            error,
            record: Some(RequestRecord::clone(&rec)),
        }
    }

    /// Routes and runs `call`.
    pub async fn call(&self, call: Call) -> Result<Accepted, Refused> {
        let model = call
            .body
            .get("model")
            .and_then(|m| m.as_str())
            .unwrap_or_default()
            .to_string();
        let key = &call.caller.key;
        if !key.allows_model(&model) {
            let error = GatewayError::ModelNotAllowed {
                key: key.name.clone(),
                model: model.clone(),
                allowed: key.models_display(),
            };
            return Err(self.refuse(&call, model, error));
        }
        let gateway = self.gateway();
        let Some(route) = gateway.resolve(&model) else {
            let error = GatewayError::UnknownModel(model.clone());
            return Err(self.refuse(&call, model, error));
        };
        if let Some(pin) = call
            .pin
            .as_ref()
            .filter(|pin| !route.targets.iter().any(|t| &t.channel.id == *pin))
        {
            let error = GatewayError::BadRequest(format!(
                "Route `{}` has no target on channel `{pin}`.",
                route.model
            ));
            return Err(self.refuse(&call, model, error));
        }

        let mut rec = record_of(&call, model);
        rec.route = route.model.clone();
        rec.prompt_chars = prompt_chars(&call.body);
        let first = match &call.pin {
            Some(pin) => route.targets.iter().find(|t| &t.channel.id == pin),
            None => route.targets.first(),
        };
        rec.provisional = first.map(|t| ServedBy {
            channel: t.channel.id.clone(),
            brand: t.channel.brand.clone(),
            upstream_model: t.model.clone(),
            bucket: t.channel.bucket,
            target_index: 0,
            cross_bucket: false,
            price: t.price.clone(),
        });
        let mut guard = RecordGuard::new(rec, Arc::clone(&self.recorder));

        let dispatch = Dispatch {
            kind: call.kind,
            route: &route,
            body: &call.body,
            native: call.native.as_ref().map(|n| NativeRequest {
                format: n.format,
                body: &n.body,
                beta: n.beta.as_deref(),
            }),
            stream: call.stream,
            client_wants_usage: call.wants_usage,
            key,
            ledger: &self.ledger,
            progress: call.progress.as_ref(),
            pin: call.pin.as_deref(),
        };
        match routing::execute(&gateway, &dispatch, &mut guard).await {
            Ok(answer) => {
                let record = guard.rec().clone();
                Ok(Accepted {
                    answer,
                    guard,
                    record,
                })
            }
            Err(error) => {
                let record = guard.rec().clone();
                guard.finish(RequestStatus::Error, Some(error.to_string()));
                Err(Refused {
                    error,
                    record: Some(record),
                })
            }
        }
    }
}
