//! Recovery tests: every crash point of every batch, every single-byte corruption, missing
//! and leftover files. The reference is `Persisted::apply` over the same actions.

mod common;

use std::fs;
use std::path::Path;

use common::*;
use stepwise_raft::{Action, Config, Node};
use stepwise_storage::{Persisted, RaftStorage, StorageError, StorageOptions};

fn open(dir: &Path) -> Result<Persisted, StorageError> {
    RaftStorage::open(dir, fast()).map(|(_, p)| p)
}

#[test]
fn synced_state_survives_reopen_and_unsynced_state_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let batches = script();
    let refs = reference(&batches);
    let (mut s, p) = RaftStorage::open(dir.path(), StorageOptions::default()).unwrap();
    assert_eq!(p, Persisted::default());
    for (k, batch) in batches.iter().enumerate() {
        apply_batch(&mut s, batch);
        assert!(!s.needs_sync());
        assert_eq!(s.raft_state_size(), refs[k + 1].raft_state_size() as u64);
        assert_eq!(s.snapshot_size(), refs[k + 1].snapshot_size() as u64);
    }
    // Applied but never synced: lost on "crash" (drop), which is allowed.
    assert!(s.apply(&append(50..=52, 5)).unwrap());
    assert!(s.needs_sync());
    drop(s);
    let (s, p) = RaftStorage::open(dir.path(), StorageOptions::default()).unwrap();
    assert_eq!(p, *refs.last().unwrap());
    assert_eq!(s.last_index(), 49);
    assert_eq!(s.hard_state(), p.hard_state);
    assert_eq!(s.snapshot_meta(), p.snapshot.as_ref().unwrap().meta);
    // The recovered state is something Raft restores from.
    Node::restore(Config::new(1, [1, 2, 3]), p).unwrap();
}

#[test]
fn non_persistence_actions_are_ignored_and_sync_without_changes_is_free() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = RaftStorage::open(dir.path(), fast()).unwrap();
    let before = fs::metadata(&segments(dir.path())[0]).unwrap().len();
    assert!(!s.apply(&Action::NotLeader { leader: None }).unwrap());
    assert!(s.apply(&Action::AppendLog(vec![])).unwrap());
    assert!(s.apply(&Action::TruncateLog { from: 1 }).unwrap()); // nothing to truncate
    assert!(s.apply(&hard_state(0, None)).unwrap()); // unchanged
    assert!(!s.needs_sync());
    s.sync().unwrap();
    assert_eq!(
        fs::metadata(&segments(dir.path())[0]).unwrap().len(),
        before
    );
}

#[test]
fn invalid_actions_are_refused_without_effect() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = RaftStorage::open(dir.path(), fast()).unwrap();
    apply_batch(&mut s, &[append(1..=5, 1), snapshot(3, 1)]);
    let bad = [
        append(7..=8, 1), // gap after 5
        append(5..=6, 1), // overlaps: must truncate first
        Action::AppendLog(vec![entry(6, 1), entry(8, 1)]),
        snapshot(2, 1), // older than the stored snapshot
    ];
    for a in &bad {
        match s.apply(a) {
            Err(StorageError::InvalidAction { .. }) => {}
            other => panic!("{a:?}: expected InvalidAction, got {other:?}"),
        }
    }
    assert!(!s.needs_sync());
    assert_eq!(s.last_index(), 5);
    drop(s);
    let refs = reference(&[vec![append(1..=5, 1), snapshot(3, 1)]]);
    assert_eq!(open(dir.path()).unwrap(), refs[1]);
}

#[test]
fn a_snapshot_at_the_stored_index_is_ignored_as_by_persisted() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = RaftStorage::open(dir.path(), fast()).unwrap();
    let first = vec![append(1..=5, 1), snapshot(3, 1)];
    apply_batch(&mut s, &first);
    let meta = s.snapshot_meta();
    // The same index again, with the right term and a wrong one: nothing to write.
    let again = vec![snapshot(3, 1), snapshot(3, 4)];
    for a in &again {
        assert!(s.apply(a).unwrap());
    }
    assert!(!s.needs_sync());
    assert_eq!((s.snapshot_meta(), s.last_index()), (meta, 5));
    drop(s);
    // The reference changes nothing either, and recovery agrees with it.
    let refs = reference(&[first, again]);
    assert_eq!(refs[2], refs[1]);
    assert_eq!(open(dir.path()).unwrap(), refs[2]);
}

/// Runs the script with the given segment size, recording the directory before each sync
/// and after it, and returns the reference states.
struct Recorded {
    _root: tempfile::TempDir,
    /// `before[k]`/`after[k]`: directory copies around the sync of batch k.
    before: Vec<std::path::PathBuf>,
    after: Vec<std::path::PathBuf>,
    refs: Vec<Persisted>,
}

fn record(segment_size: u64) -> Recorded {
    record_with(exact().with_segment_size(segment_size))
}

fn record_with(opts: StorageOptions) -> Recorded {
    let root = tempfile::tempdir().unwrap();
    let live = root.path().join("live");
    let batches = script();
    let refs = reference(&batches);
    let (mut s, _) = RaftStorage::open(&live, opts).unwrap();
    let (mut before, mut after) = (Vec::new(), Vec::new());
    for (k, batch) in batches.iter().enumerate() {
        for a in batch {
            s.apply(a).unwrap();
        }
        let b = root.path().join(format!("before-{k}"));
        copy_dir(&live, &b);
        s.sync().unwrap();
        let a = root.path().join(format!("after-{k}"));
        copy_dir(&live, &a);
        before.push(b);
        after.push(a);
    }
    Recorded {
        _root: root,
        before,
        after,
        refs,
    }
}

/// Builds the disk as a crash during the sync of a batch can leave it: the directory
/// before the sync, plus every file the sync created, with the active segment cut at `cut`
/// bytes and then filled up to its full length with `fill` bytes (`None`: left short).
fn torn(before: &Path, after: &Path, out: &Path, cut: usize, fill: Option<u8>) {
    copy_dir(before, out);
    let old = files(before);
    for name in files(after) {
        if !old.contains(&name) {
            fs::copy(after.join(&name), out.join(&name)).unwrap();
        }
    }
    let active = segments(after).pop().unwrap();
    let full = fs::read(&active).unwrap();
    let mut bytes = full[..cut].to_vec();
    if let Some(b) = fill {
        bytes.resize(full.len(), b);
    }
    rewrite(&out.join(active.file_name().unwrap()), &bytes);
}

/// A storage recovered as `p` from `dir` takes more writes, and they survive the next
/// recovery.
fn keeps_working(mut s: RaftStorage, p: Persisted, dir: &Path, opts: StorageOptions) {
    let mut next = p;
    let more = [
        hard_state(9, Some(2)),
        Action::AppendLog(vec![entry_with(s.last_index() + 1, 9, 0x77)]),
    ];
    for a in &more {
        next.apply(a);
        s.apply(a).unwrap();
    }
    s.sync().unwrap();
    drop(s);
    let (_, again) = RaftStorage::open(dir, opts).unwrap();
    assert_eq!(again, next, "after recovery");
}

/// A crash at every byte of every batch's write (plain cut, zero fill, garbage fill)
/// recovers the state before that batch, or after it once it is complete; the recovered
/// storage keeps working.
fn crash_at_every_byte(segment_size: u64) {
    let r = record(segment_size);
    let scratch = tempfile::tempdir().unwrap();
    let mut cases = 0;
    for k in 0..r.before.len() {
        let active_after = segments(&r.after[k]).pop().unwrap();
        let name = active_after.file_name().unwrap();
        let end = fs::metadata(&active_after).unwrap().len() as usize;
        // Where the batch starts: the end of the segment before the sync, or the end of
        // the header if the sync created the segment.
        let start = match fs::metadata(r.before[k].join(name)) {
            Ok(m) => m.len() as usize,
            Err(_) => record_starts(&fs::read(&active_after).unwrap())[1],
        };
        assert!(start < end, "batch {k} wrote something");
        for cut in start..=end {
            for fill in [None, Some(0), Some(0xA5)] {
                // Every cut plain; filled cuts near the batch start (frame fields) and on a
                // stride elsewhere, to keep the test fast.
                if fill.is_some() && cut - start >= 16 && cut % 5 != 0 {
                    continue;
                }
                let out = scratch.path().join(format!("case-{cases}"));
                cases += 1;
                torn(&r.before[k], &r.after[k], &out, cut, fill);
                // (A fill can rebuild the original bytes, e.g. zeros over zeros.)
                let complete =
                    fs::read(out.join(name)).unwrap() == fs::read(&active_after).unwrap();
                let expected = if complete { &r.refs[k + 1] } else { &r.refs[k] };
                let (s, p) = RaftStorage::open(&out, exact().with_segment_size(segment_size))
                    .unwrap_or_else(|e| panic!("batch {k}, cut {cut}, fill {fill:?}: {e}"));
                assert_eq!(&p, expected, "batch {k}, cut {cut}, fill {fill:?}");
                // Keep going from the recovered state, then recover again (on a stride).
                if cut % 4 != 0 && !complete {
                    fs::remove_dir_all(&out).unwrap();
                    continue;
                }
                keeps_working(s, p, &out, exact().with_segment_size(segment_size));
                fs::remove_dir_all(&out).unwrap();
            }
        }
    }
    assert!(cases > 1000, "{cases} cases");
}

#[test]
fn crash_at_every_byte_one_segment() {
    crash_at_every_byte(64 << 20);
}

#[test]
fn crash_at_every_byte_many_segments() {
    // Tiny segments: most batches start a new segment, and compaction deletes old ones.
    crash_at_every_byte(200);
}

#[test]
fn segments_roll_over_and_old_ones_are_deleted_after_snapshots() {
    let r = record(200);
    let counts: Vec<usize> = r.after.iter().map(|d| segments(d).len()).collect();
    let mut names: Vec<_> = r
        .after
        .iter()
        .flat_map(|d| segments(d))
        .map(|p| p.file_name().unwrap().to_owned())
        .collect();
    names.sort();
    names.dedup();
    assert!(names.len() >= 4, "segments roll over: {names:?}");
    assert!(
        counts.iter().all(|&c| c <= 2),
        "old segments are deleted: {counts:?}"
    );
    // Batch 7 (index 6) is a snapshot past the end of the log: every entry is gone, so
    // only the active segment remains. Only the current snapshot file is kept.
    assert_eq!(counts[6], 1, "{counts:?}");
    for d in &r.after {
        assert!(snapshot_files(d).len() <= 1);
    }
    // And the directory of every step reopens to the reference.
    for (k, d) in r.after.iter().enumerate() {
        assert_eq!(open(d).unwrap(), r.refs[k + 1], "after batch {k}");
    }
}

/// Flipping any single byte of a durable file is either detected as corruption at the
/// right file and record, or (only inside the last batch) treated as a torn write of that
/// batch.
fn flip_every_byte(segment_size: u64) {
    let r = record(segment_size);
    let last = r.after.last().unwrap();
    let segs = segments(last);
    let n = r.refs.len() - 1;
    let scratch = tempfile::tempdir().unwrap();
    let mut files_checked = Vec::new();
    for path in segs.iter().chain(snapshot_files(last).iter()) {
        let name = path.file_name().unwrap();
        let good = fs::read(path).unwrap();
        let starts = record_starts(&good);
        let is_last_segment = Some(path) == segs.last();
        let is_snapshot = path.extension().unwrap() == "snap";
        for i in 0..good.len() {
            let out = scratch.path().join(format!("flip-{i}"));
            copy_dir(last, &out);
            let mut bad = good.clone();
            bad[i] ^= 0x10;
            rewrite(&out.join(name), &bad);
            let result = open(&out);
            let record = starts.iter().rev().find(|&&s| s <= i).copied().unwrap_or(0);
            let in_last_batch =
                is_last_segment && record == *starts.last().unwrap() && record > starts[0];
            match result {
                Ok(p) if in_last_batch => {
                    assert_eq!(p, r.refs[n - 1], "flip {i} of the last batch")
                }
                Err(StorageError::Corrupt {
                    path: p, offset, ..
                }) if !in_last_batch => {
                    assert_eq!(p.file_name(), Some(name), "flip {i}");
                    if !is_snapshot {
                        assert_eq!(offset as usize, record, "flip {i} of {name:?}");
                    }
                }
                other => panic!("flip {i} of {name:?}: unexpected {other:?}"),
            }
            fs::remove_dir_all(&out).unwrap();
        }
        files_checked.push(name.to_owned());
    }
    assert!(files_checked.len() >= 2, "{files_checked:?}");
}

#[test]
fn flip_every_byte_one_segment() {
    flip_every_byte(64 << 20);
}

#[test]
fn flip_every_byte_many_segments() {
    flip_every_byte(200);
}

#[test]
fn missing_files_are_errors() {
    let r = record(1); // one segment per batch
    let last = r.after.last().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    // A segment in the middle.
    let segs = segments(last);
    assert!(segs.len() >= 3, "{segs:?}");
    let out = scratch.path().join("no-middle");
    copy_dir(last, &out);
    fs::remove_file(out.join(segs[1].file_name().unwrap())).unwrap();
    match open(&out) {
        Err(StorageError::Corrupt { path, .. }) => {
            assert_eq!(path.file_name(), segs[1].file_name())
        }
        other => panic!("{other:?}"),
    }
    // The current snapshot.
    let snap = snapshot_files(last).pop().unwrap();
    let out = scratch.path().join("no-snap");
    copy_dir(last, &out);
    fs::remove_file(out.join(snap.file_name().unwrap())).unwrap();
    match open(&out) {
        Err(StorageError::MissingSnapshot { path, .. }) => {
            assert_eq!(path.file_name(), snap.file_name())
        }
        other => panic!("{other:?}"),
    }
    // The oldest segment when it holds live entries: the log no longer follows the snapshot.
    let out = scratch.path().join("no-first");
    copy_dir(last, &out);
    fs::remove_file(out.join(segs[0].file_name().unwrap())).unwrap();
    assert!(matches!(open(&out), Err(StorageError::Corrupt { .. })));
    // Every segment, leaving the snapshot.
    let out = scratch.path().join("no-log");
    copy_dir(last, &out);
    for s in &segs {
        fs::remove_file(out.join(s.file_name().unwrap())).unwrap();
    }
    assert!(matches!(open(&out), Err(StorageError::Corrupt { .. })));
}

#[test]
fn leftovers_of_an_interrupted_sync_are_cleaned_up() {
    let r = record(200);
    let last = r.after.last().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let out = scratch.path().join("d");
    copy_dir(last, &out);
    // A segment whose rename never happened, and a snapshot no durable record names.
    fs::write(out.join("wal-00000000000000ff.log.tmp"), b"partial").unwrap();
    fs::write(out.join("snap-00000000000000ff.snap"), b"partial").unwrap();
    fs::write(out.join("notes.txt"), b"not ours").unwrap();
    let (mut s, p) = RaftStorage::open(&out, fast()).unwrap();
    assert_eq!(p, *r.refs.last().unwrap());
    assert_eq!(files(&out), {
        let mut f = files(last);
        f.push("notes.txt".into());
        f.sort();
        f
    });
    // The next snapshot does not reuse the number of the deleted leftover.
    apply_batch(&mut s, &[snapshot(49, 5)]);
    assert!(snapshot_files(&out)[0].ends_with("snap-0000000000000100.snap"));
}

#[test]
fn truncation_into_an_earlier_segment_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let opts = fast().with_segment_size(100);
    let (mut s, _) = RaftStorage::open(dir.path(), opts.clone()).unwrap();
    let mut reference = Persisted::default();
    let mut run = |s: &mut RaftStorage, batch: Vec<Action>| {
        for a in &batch {
            reference.apply(a);
        }
        apply_batch(s, &batch);
        reference.clone()
    };
    for i in 0..10 {
        run(&mut s, vec![append(i * 10 + 1..=i * 10 + 10, 1)]);
    }
    assert!(s.wal_segments() >= 5);
    let expected = run(
        &mut s,
        vec![Action::TruncateLog { from: 15 }, append(15..=16, 2)],
    );
    drop(s);
    assert_eq!(open(dir.path()).unwrap(), expected);
    assert_eq!(expected.entries.len(), 16);
}

#[test]
fn real_fsync_paths_work() {
    // Same script with fsync on (the other tests turn it off for speed).
    let dir = tempfile::tempdir().unwrap();
    let batches = script();
    let refs = reference(&batches);
    let opts = StorageOptions::default().with_segment_size(300);
    let (mut s, _) = RaftStorage::open(&dir.path().join("new/sub"), opts.clone()).unwrap();
    for batch in &batches {
        apply_batch(&mut s, batch);
    }
    drop(s);
    let (_, p) = RaftStorage::open(&dir.path().join("new/sub"), opts).unwrap();
    assert_eq!(p, *refs.last().unwrap());
}

#[test]
fn batches_bigger_than_a_chunk_are_atomic() {
    use bytes::Bytes;
    use stepwise_raft::{Entry, Payload};
    let big = |range: std::ops::RangeInclusive<u64>| {
        Action::AppendLog(
            range
                .map(|index| Entry {
                    term: 1,
                    index,
                    payload: Payload::Command(Bytes::from(vec![index as u8; 100_000])),
                })
                .collect(),
        )
    };
    let batches = vec![vec![hard_state(1, None), big(1..=30)], vec![big(31..=60)]];
    let refs = reference(&batches);
    let root = tempfile::tempdir().unwrap();
    let live = root.path().join("live");
    let (mut s, _) = RaftStorage::open(&live, exact()).unwrap();
    apply_batch(&mut s, &batches[0]);
    let first_end = fs::metadata(&segments(&live)[0]).unwrap().len() as usize;
    apply_batch(&mut s, &batches[1]);
    drop(s);
    assert_eq!(open(&live).unwrap(), refs[2]);
    let seg = segments(&live)[0].clone();
    let good = fs::read(&seg).unwrap();
    let starts = record_starts(&good);
    // 3 MB per batch: several chunk records each.
    assert!(starts.len() > 2 * 3, "{} records", starts.len());
    let out = root.path().join("case");
    // Torn anywhere inside the second batch (at chunk boundaries and inside chunks):
    // the first batch survives whole, the second is gone whole.
    for &cut in starts
        .iter()
        .filter(|&&s| s > first_end)
        .flat_map(|s| [*s, *s + 5, *s + 5000])
        .chain([first_end + 1, good.len() - 1])
        .collect::<Vec<_>>()
        .iter()
    {
        copy_dir(&live, &out);
        rewrite(&out.join(seg.file_name().unwrap()), &good[..cut]);
        assert_eq!(open(&out).unwrap(), refs[1], "cut at {cut}");
        fs::remove_dir_all(&out).unwrap();
    }
    // Damage in a middle chunk of the first batch, with the second batch intact after it:
    // corruption at that chunk.
    let middle = starts[2];
    copy_dir(&live, &out);
    let mut bad = good.clone();
    bad[middle + 100] ^= 1;
    rewrite(&out.join(seg.file_name().unwrap()), &bad);
    match open(&out) {
        Err(StorageError::Corrupt { offset, .. }) => assert_eq!(offset as usize, middle),
        other => panic!("{other:?}"),
    }
}

#[test]
fn batches_written_unsynced_and_synced_off_thread_recover_like_synced_ones() {
    let dir = tempfile::tempdir().unwrap();
    let batches = script();
    let refs = reference(&batches);
    // Small segments, so some batches start a segment (and take the inline path).
    let opts = StorageOptions::default().with_segment_size(256);
    let (mut s, _) = RaftStorage::open(dir.path(), opts.clone()).unwrap();
    let (mut deferred, mut inline) = (0, 0);
    for batch in &batches {
        for a in batch {
            assert!(s.apply(a).unwrap());
        }
        match s.write_unsynced().unwrap() {
            Some(sync) => {
                deferred += 1;
                assert!(!s.needs_sync(), "written");
                std::thread::spawn(move || sync.run())
                    .join()
                    .unwrap()
                    .unwrap();
            }
            None => inline += 1,
        }
    }
    assert!(
        deferred > 0 && inline > 0,
        "{deferred} deferred, {inline} inline"
    );
    assert!(s.write_unsynced().unwrap().is_none(), "nothing pending");
    drop(s);
    let (_, p) = RaftStorage::open(dir.path(), opts).unwrap();
    assert_eq!(p, *refs.last().unwrap());
}

/// With preallocation the active segment ends in zeros: recovery takes them as the end of
/// the log, a crash in the middle of a batch written into them is a torn write, and
/// garbage there (a write that reached the disk only in part) is cut off like one.
fn preallocated_tail(segment_size: u64) {
    let opts = fast().with_segment_size(segment_size).with_preallocate(256);
    let r = record_with(opts.clone());
    let scratch = tempfile::tempdir().unwrap();
    let mut cases = 0;
    for k in 0..r.before.len() {
        let active = segments(&r.after[k]).pop().unwrap();
        let name = active.file_name().unwrap();
        let after = fs::read(&active).unwrap();
        let end = data_end(&after);
        assert!(
            end < after.len(),
            "batch {k}: space preallocated past the log"
        );
        let before = fs::read(r.before[k].join(name)).unwrap_or_default();
        let start = if before.is_empty() {
            record_starts(&after)[1]
        } else {
            data_end(&before)
        };
        assert!(start < end, "batch {k} wrote something");
        for cut in start..=end {
            // The batch written up to `cut`, the preallocated zeros after it.
            let mut bytes = after[..cut].to_vec();
            bytes.resize(after.len(), 0);
            let out = scratch.path().join(format!("case-{cases}"));
            cases += 1;
            torn(&r.before[k], &r.after[k], &out, 0, None);
            rewrite(&out.join(name), &bytes);
            // (The batch's last bytes may be zeros: then a shorter cut is the whole batch.)
            let complete = bytes == after;
            let expected = if complete { &r.refs[k + 1] } else { &r.refs[k] };
            let (s, p) = RaftStorage::open(&out, opts.clone())
                .unwrap_or_else(|e| panic!("batch {k}, cut {cut}: {e}"));
            assert_eq!(&p, expected, "batch {k}, cut {cut}");
            if complete || cut % 7 == 0 {
                // Goes on writing into the rest of the space, and recovers again.
                keeps_working(s, p, &out, opts.clone());
            }
            fs::remove_dir_all(&out).unwrap();
        }
        // Garbage in the zeros after the last batch: cut off, nothing lost.
        let mut bytes = after.clone();
        bytes[(end + 3).min(after.len() - 1)] = 0xA5;
        let out = scratch.path().join(format!("garbage-{k}"));
        copy_dir(&r.after[k], &out);
        rewrite(&out.join(name), &bytes);
        assert_eq!(
            open(&out).unwrap(),
            r.refs[k + 1],
            "batch {k}: garbage after"
        );
        fs::remove_dir_all(&out).unwrap();
    }
    assert!(cases > 300, "{cases} cases");
}

#[test]
fn preallocated_tail_one_segment() {
    preallocated_tail(64 << 20);
}

#[test]
fn preallocated_tail_many_segments() {
    preallocated_tail(200);
}
