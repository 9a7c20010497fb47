//! Placeholder docs (filled in below).
#![forbid(unsafe_code)]

pub mod kv;
pub mod message;
pub mod rsm;

pub use kv::{Kv, KvError, KvOutput, KvResult, Op};
pub use message::{Reply, Request};
pub use rsm::{Rsm, RsmConfig, Session, StateMachine};
