//! Switchyard: a personal multi-model AI gateway.
//!
//! Provider keys stay in the OS keyring; every request on the
//! OpenAI-compatible loopback port is routed to a primary channel with
//! visible backups, and can tell which model answered, which route carried
//! it, which balance paid, and why. This crate is everything that is not
//! GUI; the desktop shell and the `switchyard` binary are thin wrappers
//! around [`cli::main`].

pub mod app;
pub mod chat;
pub mod cli;
pub mod config;
pub mod keys;
pub mod ledger;
pub mod providers;
pub mod record;
pub mod request;
pub mod routing;
pub mod secrets;
pub mod server;
