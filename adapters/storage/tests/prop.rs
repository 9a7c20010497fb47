//! Property: for random sequences of persistence actions, random sync points and random
//! crashes (drop without sync), the storage behaves exactly like `Persisted::apply`: the
//! same sizes while running, the state of the last sync after a crash, and the same state
//! after a final reopen.

mod common;

use bytes::Bytes;
use quickcheck::{Gen, QuickCheck, TestResult};
use stepwise_raft::{Action, Entry, HardState, Payload, Snapshot, SnapshotMeta};
use stepwise_storage::{Persisted, RaftStorage};

fn last_index(p: &Persisted) -> u64 {
    p.first_index() - 1 + p.entries.len() as u64
}

fn term_at(p: &Persisted, index: u64) -> Option<u64> {
    let pos = index.checked_sub(p.first_index())?;
    p.entries.get(pos as usize).map(|e| e.term)
}

/// Turns a generated triple into an action (or a sync/crash marker) valid for `p`.
fn action(p: &Persisted, (op, a, b): (u8, u8, u8)) -> Option<Action> {
    let last_term = p.entries.last().map_or(0, |e| e.term);
    let term = p.hard_state.term.max(last_term);
    let first = p.first_index();
    let len = p.entries.len() as u64;
    Some(match op % 9 {
        0 => Action::SaveHardState(HardState {
            term: term + u64::from(a % 2),
            vote: (b % 3 != 0).then_some(u64::from(b % 5)),
        }),
        1..=3 => {
            let next = last_index(p) + 1;
            let n = 1 + u64::from(a % 5);
            Action::AppendLog(
                (next..next + n)
                    .map(|index| Entry {
                        term,
                        index,
                        payload: if b % 6 == 0 {
                            Payload::Noop
                        } else {
                            Payload::Command(Bytes::from(vec![b; usize::from(b % 40)]))
                        },
                    })
                    .collect(),
            )
        }
        4 => Action::TruncateLog {
            // From before the first entry to past the last.
            from: (first - 1) + u64::from(a) % (len + 3),
        },
        5 => {
            // At the current snapshot's index, inside the log, or past its end; with the
            // right term or (b % 4 == 0) a wrong one.
            let index = (first - 1) + u64::from(a) % (len + 3);
            let right = term_at(p, index).unwrap_or(term);
            Action::SaveSnapshot(Snapshot {
                meta: SnapshotMeta {
                    index,
                    term: if b % 4 == 0 { right + 1 } else { right },
                },
                data: Bytes::from(vec![a ^ b; usize::from(b)]),
            })
        }
        6 | 7 => return None,                    // sync
        _ => Action::NotLeader { leader: None }, // crash marker (not a persistence action)
    })
}

fn prop(segment_choice: u8, steps: Vec<(u8, u8, u8)>) -> TestResult {
    let segment_size = [1, 100, 1000, 64 << 20][usize::from(segment_choice % 4)];
    let opts = common::fast().with_segment_size(segment_size);
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = RaftStorage::open(dir.path(), opts.clone()).unwrap();
    let mut reference = Persisted::default();
    let mut synced = Persisted::default();
    for step in steps {
        match action(&reference, step) {
            None => {
                s.sync().unwrap();
                synced = reference.clone();
            }
            Some(Action::NotLeader { .. }) => {
                assert!(!s.apply(&Action::NotLeader { leader: None }).unwrap());
                drop(s);
                let (s2, p) = RaftStorage::open(dir.path(), opts.clone()).unwrap();
                if p != synced {
                    return TestResult::error(format!(
                        "after crash: recovered {p:?}, synced {synced:?}"
                    ));
                }
                s = s2;
                reference = synced.clone();
            }
            Some(a) => {
                assert!(reference.apply(&a));
                assert!(s.apply(&a).unwrap());
            }
        }
        if s.raft_state_size() != reference.raft_state_size() as u64
            || s.snapshot_size() != reference.snapshot_size() as u64
            || s.last_index() != last_index(&reference)
            || s.hard_state() != reference.hard_state
        {
            return TestResult::error(format!("running state differs from {reference:?}"));
        }
    }
    s.sync().unwrap();
    let wal_segments = s.wal_segments();
    drop(s);
    let (_, p) = RaftStorage::open(dir.path(), opts).unwrap();
    if p != reference {
        return TestResult::error(format!("reopened {p:?}, expected {reference:?}"));
    }
    // Compaction keeps the directory small: at most one snapshot file, and only the
    // active segment when no entry is live.
    let snaps = common::snapshot_files(dir.path()).len();
    let segs = common::segments(dir.path()).len();
    if snaps > 1 || segs != wal_segments || (p.entries.is_empty() && segs != 1) {
        return TestResult::error(format!("{snaps} snapshot files, {segs} segments"));
    }
    TestResult::passed()
}

#[test]
fn storage_behaves_like_persisted_apply() {
    let seed = std::env::var("STEPWISE_STORAGE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5707_a6e1_u64);
    eprintln!("quickcheck seed {seed} (replay with STEPWISE_STORAGE_SEED={seed})");
    QuickCheck::new()
        .rng(Gen::from_size_and_seed(120, seed))
        .tests(300)
        .quickcheck(prop as fn(u8, Vec<(u8, u8, u8)>) -> TestResult);
}
