//! # stepwise-storage: durable storage for a stepwise Raft node
//!
//! [`RaftStorage`] carries out the persistence actions of
//! [`stepwise_raft`] ([`Action::SaveHardState`], [`Action::TruncateLog`],
//! [`Action::AppendLog`], [`Action::SaveSnapshot`]) with exactly the effect of the
//! reference [`Persisted::apply`], but on disk, so a node survives `kill -9` and power
//! loss. [`RaftStorage::open`] returns the recovered [`Persisted`] state for
//! [`Node::restore`](stepwise_raft::Node::restore).
//!
//! ```
//! use stepwise_raft::{Action, Config, Input, Node};
//! use stepwise_storage::{RaftStorage, StorageOptions};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let config = Config::new(1, [1]).with_seed(7);
//! let (mut storage, persisted) = RaftStorage::open(dir.path(), StorageOptions::default())?;
//! let mut node = Node::restore(config.clone(), persisted)?;
//!
//! // The driving loop: apply each persistence action, and sync before the first Send
//! // (or anything else that makes the persisted state visible) that follows them.
//! let mut run = |node: &mut Node, input: Input, storage: &mut RaftStorage| {
//!     for action in node.step(input) {
//!         if storage.apply(&action)? {
//!             continue;
//!         }
//!         storage.sync()?; // no-op when nothing is pending
//!         match action {
//!             Action::Send { .. } => { /* transmit */ }
//!             _ => { /* apply entries, answer clients, ... */ }
//!         }
//!     }
//!     storage.sync() // end of the batch: make everything durable
//! };
//! for _ in 0..100 {
//!     run(&mut node, Input::Tick, &mut storage)?; // a one-member cluster elects itself
//! }
//! run(&mut node, Input::Propose("hello".into()), &mut storage)?;
//! assert!(node.is_leader());
//!
//! // "Crash" and restart: everything synced is there.
//! drop(storage);
//! let (_storage, persisted) = RaftStorage::open(dir.path(), StorageOptions::default())?;
//! assert_eq!(persisted.entries.len(), 2); // the leader's no-op and "hello"
//! let restored = Node::restore(config, persisted)?;
//! assert_eq!(restored.log().last_index(), 2);
//! # Ok(())
//! # }
//! ```
//!
//! ## The contract
//!
//! * [`apply`](RaftStorage::apply) every action in order; it buffers persistence actions
//!   in memory (no system call) and returns `Ok(false)` for the others.
//! * Call [`sync`](RaftStorage::sync) before carrying out the first non-persistence action
//!   that follows persistence actions (at least before any `Send`). Several steps may be
//!   applied before one sync: that is group commit, and it costs one `fdatasync` for the
//!   whole batch.
//! * After a crash, [`open`](RaftStorage::open) returns the state after some batch
//!   boundary at or after the last completed `sync`: nothing reported durable is lost,
//!   and a batch is never half there.
//! * After a failed `sync` the storage is poisoned: drop it and open the directory again.
//! * One `RaftStorage` per directory at a time (not checked).
//!
//! ## On disk
//!
//! One directory holds numbered log segments (`wal-<16 hex>.log`) and snapshot files
//! (`snap-<16 hex>.snap`). Every file starts with an 8-byte magic; after it come records
//! framed as `len u32 LE | crc32 u32 LE | body`, the body postcard-encoded and starting
//! with a versioned enum tag.
//!
//! * **Segments.** The first record is a header: the segment number, the first batch
//!   number, and a checkpoint of the hard state and the current snapshot reference. Then
//!   one *batch* per `sync`: the batch's operations (hard state, append, truncate,
//!   snapshot reference) cut into chunk records of at most 1 MiB, the last one flagged.
//!   Batches are numbered consecutively. A sync starts a new segment when the active one
//!   has reached [`StorageOptions::segment_size`] (default 64 MiB).
//! * **Hard state is a log record**, not a separate file (as in etcd's WAL): a vote then
//!   costs the same single `fdatasync` as an append, it is ordered with the entries (so
//!   recovery never sees entries of a term newer than the saved term), and the checkpoint
//!   in each segment header keeps it when older segments are deleted.
//! * **Truncation** is a log record: replay drops the suffix. Nothing is rewritten in
//!   place, so truncating into an earlier segment is as crash-safe as any append.
//! * **Snapshots** are written to a fresh file (synced, then the directory synced) before
//!   the batch whose snapshot record names it. The record also stores whether the log held
//!   the snapshot's last entry, so replay applies `Persisted`'s rule (keep the entries
//!   after it, or discard all) without needing entries from deleted segments. A crash
//!   before that batch is durable leaves an unreferenced file, deleted on open.
//! * **Compaction.** After a sync, segments older than the one holding the first live
//!   entry are deleted, oldest first (directory synced after each), and so are snapshot
//!   files other than the current one.
//! * **Preallocation** (Linux, [`StorageOptions::preallocate`], default 8 MiB): the active
//!   segment's file is extended with `fallocate` ahead of the log, so most syncs write
//!   inside the file and commit no new file size. The extension reads as zeros: when
//!   only zeros follow a complete batch, the segment's records end there (a record is
//!   never all zeros: its length is never 0). Safe `fallocate`
//!   comes from `rustix` (already a dependency of `tempfile`); a file system that refuses
//!   it just runs without.
//!
//! ## Recovery
//!
//! [`open`](RaftStorage::open) replays the segments in order, starting from the first
//! segment's checkpoint, and checks that each later header agrees with the replay. In the
//! last segment, a damaged or incomplete batch is a **torn write** when no intact record of
//! a later batch follows it (a later batch is written only after the earlier one was
//! synced): it is cut off (file truncated and synced) and logged with `tracing`. Zeros
//! after the last complete batch of any segment are its preallocated space, not damage.
//! Any other
//! damage, a missing segment in the middle, a header that disagrees, or a snapshot file
//! that is missing or fails its checksum is a [`StorageError`] naming the file and byte
//! offset. Bad data never panics.
//!
//! Limit: damage confined to the very last batch cannot be told from a torn write of it,
//! so that batch is dropped (as if the crash had come just before its sync completed).
//!
//! ## Performance
//!
//! `cargo run --release -p stepwise-storage --example wal_bench` prints the raw
//! `fdatasync` rate of the disk next to this crate's syncs and entries per second at
//! batch sizes 1, 16 and 256 (see `docs/PERFORMANCE.md` in the repository).
#![forbid(unsafe_code)]

#[cfg(test)]
extern crate self as stepwise_storage;

#[cfg(test)]
mod crash_tests;
mod error;
mod format;
mod record;
mod recover;
mod seglog;
mod segment;
mod snapfile;
mod storage;

pub use error::StorageError;
pub use storage::{DataSync, RaftStorage, StorageOptions};

#[doc(no_inline)]
pub use stepwise_raft::{Action, Persisted};
