//! Helpers shared by the integration tests.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};

use bytes::Bytes;
use stepwise_raft::{Action, Entry, HardState, Payload, Snapshot, SnapshotMeta};
use stepwise_storage::{Persisted, RaftStorage, StorageOptions};

/// An entry whose payload is derived from its position, so any mix-up shows.
pub fn entry(index: u64, term: u64) -> Entry {
    entry_with(index, term, 0)
}

/// Like [`entry`], with a salt to tell rewritten entries apart.
pub fn entry_with(index: u64, term: u64, salt: u8) -> Entry {
    let payload = if index % 7 == 3 {
        Payload::Noop
    } else {
        Payload::Command(Bytes::from(vec![salt ^ index as u8; (index % 23) as usize]))
    };
    Entry {
        term,
        index,
        payload,
    }
}

pub fn append(range: std::ops::RangeInclusive<u64>, term: u64) -> Action {
    Action::AppendLog(range.map(|i| entry(i, term)).collect())
}

pub fn hard_state(term: u64, vote: Option<u64>) -> Action {
    Action::SaveHardState(HardState { term, vote })
}

pub fn snapshot(index: u64, term: u64) -> Action {
    Action::SaveSnapshot(Snapshot {
        meta: SnapshotMeta { index, term },
        data: Bytes::from(format!("state through {index}").repeat(3)),
    })
}

/// Options without fsync: these tests simulate crashes by editing files, and fsync would
/// only make them slow.
pub fn fast() -> StorageOptions {
    StorageOptions::default().with_sync(false)
}

/// [`fast`] without preallocation: every segment file ends where its last batch does,
/// for the tests that cut and damage files byte by byte.
pub fn exact() -> StorageOptions {
    fast().with_preallocate(0)
}

/// Where the records of a segment end (the log's end when it was preallocated): the
/// first offset holding no record length.
pub fn data_end(bytes: &[u8]) -> usize {
    let mut at = 8;
    while at + 8 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        if len == 0 {
            break;
        }
        at += 8 + len;
    }
    at.min(bytes.len())
}

/// A scripted run: each inner Vec is one batch (applied, then synced). Exercises hard
/// state, appends, truncation into the middle of the log, a snapshot that keeps entries,
/// and one that discards them all. The last batch holds no snapshot.
pub fn script() -> Vec<Vec<Action>> {
    vec![
        vec![hard_state(1, Some(1)), append(1..=3, 1)],
        vec![append(4..=6, 1)],
        vec![
            hard_state(2, Some(2)),
            Action::TruncateLog { from: 5 },
            append(5..=8, 2),
        ],
        vec![snapshot(4, 1), append(9..=12, 2)],
        vec![append(13..=20, 2), hard_state(3, None)],
        vec![Action::TruncateLog { from: 11 }, append(11..=14, 3)],
        vec![snapshot(30, 3)],
        vec![append(31..=40, 3), hard_state(4, Some(3))],
        vec![snapshot(35, 3), append(41..=45, 4)],
        vec![hard_state(5, Some(1)), append(46..=50, 5)],
        vec![Action::TruncateLog { from: 48 }, append(48..=49, 5)],
    ]
}

/// Reference states: `refs[k]` is the state after the first `k` batches.
pub fn reference(batches: &[Vec<Action>]) -> Vec<Persisted> {
    let mut p = Persisted::default();
    let mut refs = vec![p.clone()];
    for batch in batches {
        for a in batch {
            assert!(p.apply(a));
        }
        refs.push(p.clone());
    }
    refs
}

pub fn apply_batch(storage: &mut RaftStorage, batch: &[Action]) {
    for a in batch {
        assert!(storage.apply(a).unwrap(), "{a:?} is a persistence action");
    }
    storage.sync().unwrap();
}

/// Copies every file of `from` into `to` (flat directories only).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// The file names in `dir`, sorted.
pub fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// Paths of the log segments in `dir`, oldest first.
pub fn segments(dir: &Path) -> Vec<PathBuf> {
    files(dir)
        .into_iter()
        .filter(|n| n.starts_with("wal-") && n.ends_with(".log"))
        .map(|n| dir.join(n))
        .collect()
}

/// Paths of the snapshot files in `dir`.
pub fn snapshot_files(dir: &Path) -> Vec<PathBuf> {
    files(dir)
        .into_iter()
        .filter(|n| n.ends_with(".snap"))
        .map(|n| dir.join(n))
        .collect()
}

/// Start offsets of the framed records of a segment or snapshot file (after the 8-byte
/// magic), read from the length fields.
pub fn record_starts(bytes: &[u8]) -> Vec<usize> {
    let mut at = 8;
    let mut starts = Vec::new();
    while at + 8 <= bytes.len() {
        starts.push(at);
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        at += 8 + len;
    }
    starts
}

/// Replaces a file's contents through a new inode: overwriting in place (truncate, write)
/// makes ext4 flush on close (`auto_da_alloc`), which makes byte-by-byte tests crawl.
pub fn rewrite(path: &Path, bytes: &[u8]) {
    let _ = std::fs::remove_file(path);
    std::fs::write(path, bytes).unwrap();
}
