//! A linearizability checker for histories of concurrent operations, in the style of
//! [Porcupine](https://github.com/anishathalye/porcupine) (which the MIT 6.5840 labs use).
//!
//! PLACEHOLDER DOCS
#![forbid(unsafe_code)]

mod check;
mod hash;
mod history;
mod memo;
mod model;
pub mod models;
mod search;
mod violation;

pub use check::{CheckResult, check};
pub use history::{History, HistoryError, OpId, Operation, SharedHistory};
pub use model::Model;
pub use violation::Violation;
