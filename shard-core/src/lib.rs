//! Placeholder docs (filled in below as the crate grows).
#![forbid(unsafe_code)]

pub mod balance;
pub mod client;
pub mod config;
pub mod ctrler;
pub mod group;
pub mod key;
pub mod message;
pub mod retry;
