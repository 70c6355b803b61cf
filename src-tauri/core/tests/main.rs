//! Integration tests: the real gateway on a socket against mock upstreams.

mod api;
mod cli;
mod failover;
mod helpers;
mod ledger;
mod messages;
mod mock;
mod security;
mod streaming;
