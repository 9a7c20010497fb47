//! The lab's Raft test suite (LAB-SCENARIOS.md section 5: 3A election, 3B agreement,
//! 3C persistence, 3D snapshots) ported to the deterministic simulator, plus randomized
//! fault schedules. Every scenario keeps the lab's parameters and thresholds, in virtual
//! time, and runs over several seeds (`STEPWISE_SEEDS=<n>` for more; a failing seed prints
//! a one-line replay command).

mod agreement;
mod election;
mod faults;
mod harness;
mod persistence;
mod snapshots;

/// Seeds each lab scenario runs by default (the lab runs each test once per invocation).
pub const LAB_SEEDS: u64 = 3;
