//! Ready-made models: a [`Register`], the 2020-2024 lab key/value store ([`Kv`]) and the
//! 2025 lab versioned key/value store ([`VersionedKv`]).
//!
//! The key/value models follow the lab's Porcupine models (`models/kv.go` and
//! `models1/kv.go`) rule for rule, partition by key and check keys in sorted order.

mod kv;
mod register;
mod versioned;

pub use kv::{Kv, KvInput, KvValue};
pub use register::{Register, RegisterInput, RegisterOutput};
pub use versioned::{KvErr, VersionedInput, VersionedKv, VersionedOutput, VersionedState};
