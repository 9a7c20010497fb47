//! The lab's sharded key/value test suites (LAB-SCENARIOS.md section 7) on the
//! deterministic simulator: the 2020-2024 shard controller and shardkv (with both
//! challenges), the 2025 shardkv1 scenarios adapted to a replicated controller, and
//! randomized fault schedules. Each scenario keeps the lab's parameters and thresholds in
//! virtual time and ends with a linearizability check.
//!
//! `STEPWISE_SEEDS=<n>` runs more seeds; a failing seed prints a one-line replay command.
//! `STEPWISE_TRACE=1` prints the last simulator events when a check fails.

mod ctrler;
// Client programs and their driver, shared with kv-core's simulator tests.
#[path = "../../../kv-core/tests/support/client_program.rs"]
mod client_program;
mod harness;
// The KV histories and their checks, shared with kv-core's simulator tests.
#[path = "../../../kv-core/tests/support/kv_history.rs"]
mod kv_history;
mod lab2025;
mod legacy;
mod perf;
mod programs;
mod random;
mod threaded;

/// Seeds each lab scenario runs by default (the lab runs each test once per invocation).
pub const LAB_SEEDS: u64 = 1;
