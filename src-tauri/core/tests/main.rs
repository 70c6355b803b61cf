//! Integration tests: the real gateway on a socket against mock upstreams.

mod anthropic;
mod api;
mod chat;
mod cli;
mod config_api;
mod embeddings;
mod failover;
mod gemini;
mod gemini_ingress;
mod helpers;
pub mod ledger;
mod management;
mod messages;
mod mock;
mod mock_anthropic;
mod refusals;
mod responses_native;
mod security;
mod streaming;
