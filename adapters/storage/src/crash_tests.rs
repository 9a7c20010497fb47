//! Crash before every file-system step of every sync (create, write, rename, delete...),
//! using the storage's fault hook. Each crash must recover the state before the batch, or
//! after it once its write is complete, and the run must be able to go on from there.
//! (Crashes in the middle of a write, and lost unsynced data, are covered byte by byte in
//! `tests/recovery.rs`.)

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;

use crate::{RaftStorage, StorageError};

#[test]
fn crash_before_every_step_of_every_sync() {
    let batches = script();
    let refs = reference(&batches);
    for segment_size in [1, 200, 64 << 20] {
        let opts = fast().with_segment_size(segment_size);
        let mut n = 0;
        loop {
            let dir = tempfile::tempdir().unwrap();
            let (mut s, _) = RaftStorage::open(dir.path(), opts.clone()).unwrap();
            s.crash_after = Some(n);
            let mut crashed = None;
            for (k, batch) in batches.iter().enumerate() {
                for a in batch {
                    s.apply(a).unwrap();
                }
                let next_batch = s.next_batch;
                if s.sync().is_err() {
                    crashed = Some((k, s.next_batch != next_batch));
                    break;
                }
            }
            let Some((k, written)) = crashed else {
                break; // n is past the last step: every step has been crashed before
            };
            assert!(matches!(s.sync(), Err(StorageError::Poisoned)));
            assert!(matches!(
                s.apply(&hard_state(7, None)),
                Err(StorageError::Poisoned)
            ));
            drop(s);
            let (mut s, p) = RaftStorage::open(dir.path(), opts.clone())
                .unwrap_or_else(|e| panic!("segment size {segment_size}, step {n}: {e}"));
            let done = if written { k + 1 } else { k };
            assert_eq!(p, refs[done], "segment size {segment_size}, step {n}");
            for batch in &batches[done..] {
                apply_batch(&mut s, batch);
            }
            drop(s);
            let (_, p) = RaftStorage::open(dir.path(), opts.clone()).unwrap();
            assert_eq!(
                &p,
                refs.last().unwrap(),
                "segment size {segment_size}, step {n}"
            );
            n += 1;
        }
        // Every batch writes at least once; snapshots and new segments add steps.
        assert!(n as usize > batches.len(), "{n} steps");
    }
}
