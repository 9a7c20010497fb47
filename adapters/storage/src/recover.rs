//! Opening a storage directory: creating it, or replaying what is durable.

use std::collections::{BTreeSet, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use stepwise_raft::{Entry, HardState, Persisted, Snapshot};

use crate::error::{StorageError, io_err};
use crate::format::{self, FileKind, Op, SegmentHeader, SnapRef};
use crate::seglog::SegLog;
use crate::storage::{EntryMeta, RaftStorage, StorageOptions};
use crate::{segment, snapfile};

/// The state rebuilt by replaying segments.
struct Replay {
    hard_state: HardState,
    snapshot: Option<SnapRef>,
    /// Where the current snapshot reference was read: (segment file, offset).
    snapshot_source: (PathBuf, u64),
    log: SegLog<Entry>,
}

impl Replay {
    fn apply(&mut self, ops: Vec<Op>, seg: u64, path: &Path, at: u64) -> Result<(), StorageError> {
        for op in ops {
            match op {
                Op::HardState(hs) => self.hard_state = hs,
                Op::Append(entries) => {
                    for e in entries {
                        if let Some(last) = self.log.last_index()
                            && e.index != last + 1
                        {
                            return Err(StorageError::corrupt(
                                path,
                                at,
                                format!("entry {} appended after entry {last}", e.index),
                            ));
                        }
                        self.log.push(e.index, e, seg);
                    }
                }
                Op::Truncate { from } => self.log.truncate_from(from, drop),
                Op::Snapshot { file, meta, holds } => {
                    if holds {
                        self.log.drop_through(meta.index, drop);
                    } else {
                        self.log.clear(drop);
                    }
                    self.snapshot = Some(SnapRef { file, meta });
                    self.snapshot_source = (path.to_path_buf(), at);
                }
            }
        }
        Ok(())
    }
}

/// See [`RaftStorage::open`].
pub(crate) fn open(
    dir: &Path,
    opts: StorageOptions,
) -> Result<(RaftStorage, Persisted), StorageError> {
    if !dir.exists() {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        if opts.sync
            && let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty())
        {
            File::open(parent)
                .and_then(|d| d.sync_all())
                .map_err(io_err(parent))?;
        }
    }
    let dir_handle = File::open(dir).map_err(io_err(dir))?;
    let mut segments = BTreeSet::new();
    let mut snapshot_files = BTreeSet::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        match format::classify(&name) {
            FileKind::Segment(seq) => {
                segments.insert(seq);
            }
            FileKind::Snapshot(file) => {
                snapshot_files.insert(file);
            }
            // Only ever a segment that was being created: its rename never happened.
            FileKind::Temp => fs::remove_file(entry.path()).map_err(io_err(&entry.path()))?,
            FileKind::Other => {}
        }
    }
    let mut storage = RaftStorage {
        dir: dir.to_path_buf(),
        dir_handle,
        opts,
        hard_state: HardState::default(),
        snapshot: None,
        snapshot_size: 0,
        log: SegLog::default(),
        log_size: 0,
        segments: VecDeque::new(),
        active: Arc::new(File::open(dir).map_err(io_err(dir))?), // replaced below
        active_len: 0,
        active_file_len: 0,
        next_batch: 0,
        snapshot_files: BTreeSet::new(),
        next_snapshot_file: 0,
        pending: Vec::new(),
        pending_snapshots: Vec::new(),
        pending_segment: None,
        scratch: Vec::new(),
        poisoned: false,
        #[cfg(test)]
        crash_after: None,
    };
    if segments.is_empty() {
        if let Some(&file) = snapshot_files.first() {
            return Err(StorageError::corrupt(
                &dir.join(format::snapshot_name(file)),
                0,
                "snapshot file without any log segment (was the log deleted?)",
            ));
        }
        storage.create_segment(&SegmentHeader {
            segment: 0,
            first_batch: 0,
            hard_state: HardState::default(),
            snapshot: None,
        })?;
        return Ok((storage, Persisted::default()));
    }
    let (&first, &last) = (segments.first().unwrap(), segments.last().unwrap());
    if let Some(missing) = (first..=last).find(|s| !segments.contains(s)) {
        return Err(StorageError::corrupt(
            &dir.join(format::segment_name(missing)),
            0,
            format!("log segment missing (segments {first:#x} to {last:#x} must all exist)"),
        ));
    }
    let mut replay: Option<Replay> = None;
    let mut next_batch = 0;
    for &seq in &segments {
        let path = dir.join(format::segment_name(seq));
        let buf = fs::read(&path).map_err(io_err(&path))?;
        let (header, start) = segment::read_head(&path, &buf)?;
        let header_at = format::SEGMENT_MAGIC.len() as u64;
        if header.segment != seq {
            return Err(StorageError::corrupt(
                &path,
                header_at,
                format!("header says segment {:#x}", header.segment),
            ));
        }
        let state = match replay.as_mut() {
            None => {
                next_batch = header.first_batch;
                replay.insert(Replay {
                    hard_state: header.hard_state,
                    snapshot: header.snapshot,
                    snapshot_source: (path.clone(), header_at),
                    log: SegLog::default(),
                })
            }
            Some(state) => {
                if header.first_batch != next_batch
                    || header.hard_state != state.hard_state
                    || header.snapshot != state.snapshot
                {
                    return Err(StorageError::corrupt(
                        &path,
                        header_at,
                        "segment header disagrees with the segments before it",
                    ));
                }
                state
            }
        };
        let is_last = seq == last;
        let tail = segment::read_batches(&path, &buf, start, next_batch, is_last, |at, ops| {
            state.apply(ops, seq, &path, at)
        })?;
        next_batch = tail.next_batch;
        if let Some(reason) = &tail.torn {
            tracing::warn!(
                file = %path.display(),
                offset = tail.valid_len,
                dropped_bytes = buf.len() as u64 - tail.valid_len,
                "cutting off the torn tail of the log: {reason}"
            );
            let f = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(io_err(&path))?;
            f.set_len(tail.valid_len).map_err(io_err(&path))?;
            if storage.opts.sync {
                f.sync_all().map_err(io_err(&path))?;
            }
        }
        if is_last {
            let mut f = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(io_err(&path))?;
            f.seek(SeekFrom::Start(tail.valid_len))
                .map_err(io_err(&path))?;
            storage.active_file_len = f
                .metadata()
                .map_err(io_err(&path))?
                .len()
                .max(tail.valid_len);
            storage.active = Arc::new(f);
            storage.active_len = tail.valid_len;
        }
    }
    let state = replay.expect("at least one segment was read");

    let snap_index = state.snapshot.map_or(0, |s| s.meta.index);
    if let Some(first_index) = state.log.first_index()
        && first_index != snap_index + 1
    {
        return Err(StorageError::corrupt(
            &dir.join(format::segment_name(first)),
            0,
            format!(
                "the log starts at entry {first_index} but the snapshot ends at {snap_index} \
                 (entries are missing)"
            ),
        ));
    }
    let snapshot = match state.snapshot {
        None => None,
        Some(r) => Some(load_snapshot(dir, r, &state.snapshot_source)?),
    };

    // Everything checks out: build the running state.
    let (start, entries, runs) = state.log.into_parts();
    let metas: VecDeque<EntryMeta> = entries.iter().map(EntryMeta::of).collect();
    storage.log_size = metas.iter().map(|m| m.state_size()).sum();
    storage.log = SegLog::from_parts(start, metas, runs);
    storage.hard_state = state.hard_state;
    storage.snapshot = state.snapshot;
    storage.snapshot_size = snapshot.as_ref().map_or(0, |s| s.data.len() as u64);
    storage.segments = segments.into_iter().collect();
    storage.next_batch = next_batch;
    storage.next_snapshot_file = snapshot_files
        .last()
        .copied()
        .max(state.snapshot.map(|s| s.file))
        .map_or(0, |f| f + 1);
    storage.snapshot_files = snapshot_files;
    // Remove what an interrupted sync left behind: snapshot files no durable record names,
    // and segments whose deletion did not finish.
    storage.collect_garbage()?;
    let persisted = Persisted {
        hard_state: state.hard_state,
        snapshot,
        entries: Vec::from(entries),
    };
    Ok((storage, persisted))
}

fn load_snapshot(
    dir: &Path,
    r: SnapRef,
    source: &(PathBuf, u64),
) -> Result<Snapshot, StorageError> {
    let path = dir.join(format::snapshot_name(r.file));
    if !path.exists() {
        return Err(StorageError::MissingSnapshot {
            path,
            referenced_by: source.0.clone(),
            offset: source.1,
        });
    }
    let snap = snapfile::read(&path, r.file)?;
    if snap.meta != r.meta {
        return Err(StorageError::corrupt(
            &path,
            format::SNAPSHOT_MAGIC.len() as u64,
            format!(
                "snapshot covers {:?} but the log says {:?}",
                snap.meta, r.meta
            ),
        ));
    }
    Ok(snap)
}
