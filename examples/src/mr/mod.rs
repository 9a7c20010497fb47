//! The `mapreduce` binary's adapter code: transport, coordinator and worker processes,
//! and the applications that need the operating system.
//!
//! The protocol itself is the sans-IO crate [`stepwise_mr`]; this module only moves its
//! messages over sockets and carries out its file actions.

pub mod apps;
pub mod client;
pub mod server;
pub mod streaming;
pub mod units;
pub mod wire;
