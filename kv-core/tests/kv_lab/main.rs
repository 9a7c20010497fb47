//! The lab's KV test suites (LAB-SCENARIOS.md sections 4 and 6) on the deterministic
//! simulator: the single-server kvsrv (2025 versioned and 2024 Append), the lock, the
//! replicated-state-machine layer (4A) and kvraft (2025 4B/4C, 2020-2024), plus randomized
//! fault schedules. Each scenario keeps the lab's parameters and thresholds in virtual
//! time and ends with a linearizability check of the whole history.
//!
//! `STEPWISE_SEEDS=<n>` runs more seeds; a failing seed prints a one-line replay command.
//! `STEPWISE_TRACE=1` prints the last simulator events when a check fails.

#[path = "../support/client_program.rs"]
mod client_program;
mod harness;
#[path = "../support/kv_history.rs"]
mod kv_history;
mod kvraft;
mod kvraft_legacy;
mod kvsrv;
mod lock;
mod programs;
mod random;
mod rsm;

/// Seeds each lab scenario runs by default (the lab runs each test once per invocation).
pub const LAB_SEEDS: u64 = 1;
