//! Local storage of what the gateway did and what it cost (DESIGN.md §5.8,
//! §6): the SQLite database and its migrations, receipts, the append-only
//! money ledger per bucket, the price catalog and exact pricing, and spend
//! reports.

pub mod catalog;
pub mod db;
pub mod money;
pub mod pricing;
pub mod receipts;
pub mod spend;
pub mod store;

pub use receipts::Receipt;
pub use store::{Ledger, Refusal};
