//! Local storage of what the gateway did: the SQLite database and its
//! migrations, and the normalised token usage every request is measured in.

pub mod db;
pub mod usage;

pub use usage::Usage;
