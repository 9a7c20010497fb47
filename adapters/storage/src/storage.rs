//! [`RaftStorage`]: carries out persistence actions durably.

use std::collections::{BTreeSet, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use stepwise_raft::{Action, Entry, HardState, Index, Persisted, Snapshot, SnapshotMeta, Term};

use crate::error::{StorageError, io_err};
use crate::format::{self, OpRef, RecordHead, SegmentHeader, SnapRef};
use crate::record::CHUNK_PAYLOAD;
use crate::seglog::SegLog;
use crate::{segment, snapfile};

/// Options for [`RaftStorage::open`]. Build with `StorageOptions::default()` and the
/// `with_*` methods.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StorageOptions {
    /// A sync starts a new segment file once the current one holds at least this many
    /// bytes. Default 64 MiB. Segments are deleted whole once no log entry in them is
    /// needed, so this is also the granularity of reclaiming space after a snapshot.
    pub segment_size: u64,
    /// Whether to call `fsync`/`fdatasync`. Default `true`. Turn it off only in tests and
    /// benchmarks: without it a power loss can lose or tear anything (a killed process
    /// still loses nothing it synced, since the kernel's page cache survives it).
    pub sync: bool,
    /// Linux: the active segment's file is extended (`fallocate`) this many bytes ahead
    /// of the log, so a sync writes into space that is already part of the file and need
    /// not also commit a new file size (an `fdatasync` then costs about a quarter less
    /// here, see docs/PERFORMANCE.md). The extension reads as zeros, which recovery takes
    /// as the end of the log. Default 8 MiB; 0 turns it off. Ignored on other systems.
    pub preallocate: u64,
}

impl Default for StorageOptions {
    fn default() -> Self {
        StorageOptions {
            segment_size: 64 << 20,
            sync: true,
            preallocate: 8 << 20,
        }
    }
}

impl StorageOptions {
    /// Sets [`segment_size`](Self::segment_size).
    pub fn with_segment_size(mut self, bytes: u64) -> Self {
        self.segment_size = bytes;
        self
    }

    /// Sets [`sync`](Self::sync).
    pub fn with_sync(mut self, sync: bool) -> Self {
        self.sync = sync;
        self
    }

    /// Sets [`preallocate`](Self::preallocate).
    pub fn with_preallocate(mut self, bytes: u64) -> Self {
        self.preallocate = bytes;
        self
    }
}

/// What the running storage remembers about each log entry.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EntryMeta {
    pub term: Term,
    pub size: u64,
}

impl EntryMeta {
    pub(crate) fn of(e: &Entry) -> Self {
        EntryMeta {
            term: e.term,
            size: e.payload.len() as u64,
        }
    }

    /// This entry's share of `raft_state_size`, as [`Persisted::raft_state_size`] counts.
    pub(crate) fn state_size(self) -> u64 {
        17 + self.size
    }
}

/// Durable storage for one Raft node: a segmented write-ahead log plus snapshot files in
/// one directory. See the [crate docs](crate) for the contract and the on-disk format.
pub struct RaftStorage {
    pub(crate) dir: PathBuf,
    /// Open handle on `dir`, for syncing it after creating, renaming or deleting files.
    pub(crate) dir_handle: File,
    pub(crate) opts: StorageOptions,
    // The state after every applied action (synced or not).
    pub(crate) hard_state: HardState,
    pub(crate) snapshot: Option<SnapRef>,
    pub(crate) snapshot_size: u64,
    pub(crate) log: SegLog<EntryMeta>,
    /// Sum of [`EntryMeta::state_size`] over the log.
    pub(crate) log_size: u64,
    // Files.
    /// Segment numbers on disk, ascending; the last one is `active`.
    pub(crate) segments: VecDeque<u64>,
    /// The active segment, shared with a [`DataSync`] in flight (no `dup` per sync).
    pub(crate) active: Arc<File>,
    pub(crate) active_len: u64,
    /// Length of the active segment's file: `active_len` plus preallocated space.
    pub(crate) active_file_len: u64,
    pub(crate) next_batch: u64,
    /// Snapshot file numbers on disk.
    pub(crate) snapshot_files: BTreeSet<u64>,
    pub(crate) next_snapshot_file: u64,
    // The batch being built: encoded operations, snapshot files to write, and the header
    // of the segment the batch starts (if it starts one).
    pub(crate) pending: Vec<u8>,
    pub(crate) pending_snapshots: Vec<(u64, Snapshot)>,
    pub(crate) pending_segment: Option<SegmentHeader>,
    pub(crate) scratch: Vec<u8>,
    pub(crate) poisoned: bool,
    /// Test hook: fail the file-system step after this many more steps.
    #[cfg(test)]
    pub(crate) crash_after: Option<u32>,
}

impl RaftStorage {
    /// Opens the storage in `dir`, creating the directory and an empty log if needed, and
    /// recovers what was durable: returns the storage and the state to hand to
    /// [`Node::restore`](stepwise_raft::Node::restore).
    ///
    /// A torn tail of the log (a crash in the middle of a write) is cut off at the last
    /// complete batch and logged (`tracing` warning). Damage anywhere else is a
    /// [`StorageError::Corrupt`] naming the file and byte offset. Leftover files from an
    /// interrupted operation (temporary files, unreferenced snapshots, segments no longer
    /// needed) are deleted.
    ///
    /// Only one `RaftStorage` may use a directory at a time; this is not checked.
    pub fn open(dir: &Path, opts: StorageOptions) -> Result<(Self, Persisted), StorageError> {
        crate::recover::open(dir, opts)
    }

    /// Records a persistence action (`SaveHardState`, `TruncateLog`, `AppendLog`,
    /// `SaveSnapshot`) for the next [`sync`](Self::sync), with exactly the effect of
    /// [`Persisted::apply`]. Returns `Ok(false)` for other actions, which it ignores.
    ///
    /// Nothing is written until `sync`; the action is durable when `sync` returns.
    ///
    /// # Errors
    ///
    /// [`StorageError::InvalidAction`] (and no change) for actions the Raft core never
    /// emits and that would make the log unrestorable: entries that are not consecutive
    /// or do not follow the last entry, and a snapshot older than the stored one. A
    /// snapshot at the stored one's index is ignored (as by [`Persisted::apply`]).
    pub fn apply(&mut self, action: &Action) -> Result<bool, StorageError> {
        if self.poisoned {
            return Err(StorageError::Poisoned);
        }
        match action {
            Action::SaveHardState(hs) => {
                if *hs != self.hard_state {
                    self.push_op(&OpRef::HardState(*hs));
                    self.hard_state = *hs;
                }
            }
            Action::TruncateLog { from } => {
                if self.log.last_index().is_some_and(|last| *from <= last) {
                    self.push_op(&OpRef::Truncate { from: *from });
                    let size = &mut self.log_size;
                    self.log.truncate_from(*from, |m| *size -= m.state_size());
                }
            }
            Action::AppendLog(entries) => self.append(entries)?,
            Action::SaveSnapshot(snap) => self.save_snapshot(snap)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        let Some(first) = entries.first() else {
            return Ok(());
        };
        let expected = self.last_index() + 1;
        if first.index != expected {
            return Err(StorageError::invalid(format!(
                "appended entries start at index {}, the log needs {expected} next",
                first.index
            )));
        }
        if let Some(w) = entries.windows(2).find(|w| w[1].index != w[0].index + 1) {
            return Err(StorageError::invalid(format!(
                "appended entries are not consecutive: {} follows {}",
                w[1].index, w[0].index
            )));
        }
        self.push_op(&OpRef::Append(entries));
        let seg = self.target_segment();
        for e in entries {
            let meta = EntryMeta::of(e);
            self.log_size += meta.state_size();
            self.log.push(e.index, meta, seg);
        }
        Ok(())
    }

    fn save_snapshot(&mut self, snap: &Snapshot) -> Result<(), StorageError> {
        let meta = snap.meta;
        let current = self.snapshot_meta().index;
        if meta.index < current {
            return Err(StorageError::invalid(format!(
                "snapshot through index {} is older than the stored one through {current}",
                meta.index
            )));
        }
        if meta.index == current {
            // Covers nothing new: ignored, as by `Persisted::apply` and `RaftLog::compact_to`.
            return Ok(());
        }
        // The rule of `Persisted::apply`: keep the entries after the snapshot only if the log
        // holds its last entry (same index and term); otherwise discard every entry.
        let holds = self
            .log
            .get(meta.index)
            .is_some_and(|m| m.term == meta.term);
        let file = self.next_snapshot_file;
        self.next_snapshot_file += 1;
        self.push_op(&OpRef::Snapshot { file, meta, holds });
        let size = &mut self.log_size;
        if holds {
            self.log
                .drop_through(meta.index, |m| *size -= m.state_size());
        } else {
            self.log.clear(|m| *size -= m.state_size());
        }
        self.snapshot = Some(SnapRef { file, meta });
        self.snapshot_size = snap.data.len() as u64;
        self.pending_snapshots.push((file, snap.clone()));
        Ok(())
    }

    /// Adds an operation to the pending batch. The first operation of a batch decides
    /// whether the batch starts a new segment, whose header is the state right now.
    fn push_op(&mut self, op: &OpRef<'_>) {
        if self.pending.is_empty() && self.active_len >= self.opts.segment_size {
            self.pending_segment = Some(SegmentHeader {
                segment: self.active_segment() + 1,
                first_batch: self.next_batch,
                hard_state: self.hard_state,
                snapshot: self.snapshot,
            });
        }
        format::encode_into(op, &mut self.pending);
    }

    fn active_segment(&self) -> u64 {
        *self
            .segments
            .back()
            .expect("there is always an active segment")
    }

    /// The segment the pending batch goes to.
    fn target_segment(&self) -> u64 {
        self.pending_segment
            .as_ref()
            .map_or_else(|| self.active_segment(), |h| h.segment)
    }

    /// Whether actions were applied since the last [`sync`](Self::sync).
    pub fn needs_sync(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Makes every action applied so far durable. Does nothing (no system call) when there
    /// is nothing new.
    ///
    /// One batch costs one `fdatasync` of the active segment. A batch holding a snapshot
    /// first writes the snapshot file and syncs it and the directory; a batch that starts a
    /// new segment creates it with a synced header first (temporary name, rename,
    /// directory sync). Afterwards, segments whose entries are all covered by the snapshot
    /// (or truncated) and replaced snapshot files are deleted.
    ///
    /// # Errors
    ///
    /// Any I/O error. The storage is then poisoned ([`StorageError::Poisoned`] from then
    /// on): whether the batch is durable is unknown until the directory is opened again.
    pub fn sync(&mut self) -> Result<(), StorageError> {
        if self.poisoned {
            return Err(StorageError::Poisoned);
        }
        if self.pending.is_empty() {
            return Ok(());
        }
        let result = self.write_batch().and_then(|()| self.collect_garbage());
        if result.is_err() {
            self.poisoned = true;
        }
        result
    }

    /// Starts making every action applied so far durable, for a caller that syncs off
    /// its own thread: writes the pending batch to the active segment (the page cache)
    /// and returns the [`DataSync`] that completes it. Until the returned sync has run,
    /// the batch is written but **not durable**; call this again only after it ran (the
    /// next batch may go to another segment).
    ///
    /// Returns `Ok(None)` when nothing is pending, and when the batch is durable
    /// already: with sync off, and for the rare batches that hold a snapshot, start a new
    /// segment or free old files, which take the whole [`sync`](Self::sync) path here
    /// (their file and directory syncs must precede later steps).
    ///
    /// # Errors
    ///
    /// As [`sync`](Self::sync); the storage is then poisoned.
    pub fn write_unsynced(&mut self) -> Result<Option<DataSync>, StorageError> {
        if self.poisoned {
            return Err(StorageError::Poisoned);
        }
        if self.pending.is_empty() {
            return Ok(None);
        }
        if !self.opts.sync
            || !self.pending_snapshots.is_empty()
            || self.pending_segment.is_some()
            || self.has_garbage()
        {
            return self.sync().map(|()| None);
        }
        match self.write_records(false) {
            Ok(()) => Ok(Some(DataSync {
                file: Arc::clone(&self.active),
                path: self.segment_path(self.active_segment()),
            })),
            Err(e) => {
                self.poisoned = true;
                Err(e)
            }
        }
    }

    /// Whether [`collect_garbage`](Self::collect_garbage) has files to delete.
    fn has_garbage(&self) -> bool {
        let keep_from = self
            .log
            .oldest_segment()
            .unwrap_or_else(|| self.active_segment());
        let current = self.snapshot.map(|s| s.file);
        self.segments.front().is_some_and(|&seq| seq < keep_from)
            || self.snapshot_files.iter().any(|&f| Some(f) != current)
    }

    fn write_batch(&mut self) -> Result<(), StorageError> {
        let snapshots = std::mem::take(&mut self.pending_snapshots);
        for (file, snap) in &snapshots {
            self.write_snapshot_file(*file, snap)?;
        }
        if !snapshots.is_empty() {
            self.sync_dir()?;
        }
        if let Some(header) = self.pending_segment.take() {
            self.create_segment(&header)?;
        }
        self.write_records(self.opts.sync)
    }

    /// Writes the pending operations to the active segment as one batch of records,
    /// then `fdatasync`s it if `sync`.
    fn write_records(&mut self, sync: bool) -> Result<(), StorageError> {
        self.scratch.clear();
        let chunks = self.pending.chunks(CHUNK_PAYLOAD);
        let count = chunks.len();
        for (i, chunk) in chunks.enumerate() {
            let head = RecordHead::ChunkV1 {
                batch: self.next_batch,
                last: i + 1 == count,
            };
            format::push_record(&mut self.scratch, &head, chunk);
        }
        let path = self.segment_path(self.active_segment());
        self.reserve(self.scratch.len() as u64)?;
        self.step()?;
        (&*self.active)
            .write_all(&self.scratch)
            .map_err(io_err(&path))?;
        if sync {
            self.step()?;
            self.active.sync_data().map_err(io_err(&path))?;
        }
        self.active_len += self.scratch.len() as u64;
        self.next_batch += 1;
        self.pending.clear();
        Ok(())
    }

    /// Makes sure the active segment's file extends `len` bytes past the log, extending
    /// it by [`StorageOptions::preallocate`] when it does not (Linux; elsewhere a no-op).
    fn reserve(&mut self, len: u64) -> Result<(), StorageError> {
        let end = self.active_len + len;
        if self.opts.preallocate == 0 || end <= self.active_file_len {
            return Ok(());
        }
        let new_len = end + self.opts.preallocate;
        #[cfg(target_os = "linux")]
        {
            self.step()?;
            let from = self.active_file_len.max(self.active_len);
            let flags = rustix::fs::FallocateFlags::empty();
            if let Err(e) = rustix::fs::fallocate(&*self.active, flags, from, new_len - from) {
                // Not supported by the file system, or no room for the whole extension:
                // go on without (the write itself reports a real lack of space).
                tracing::warn!(
                    dir = %self.dir.display(),
                    error = %e,
                    "cannot preallocate log space; continuing without"
                );
                self.opts.preallocate = 0;
                return Ok(());
            }
        }
        self.active_file_len = new_len;
        Ok(())
    }

    fn write_snapshot_file(&mut self, file: u64, snap: &Snapshot) -> Result<(), StorageError> {
        let path = self.dir.join(format::snapshot_name(file));
        self.step()?;
        // Registered before creating it, so a failure part-way still gets it cleaned up.
        self.snapshot_files.insert(file);
        let mut f = File::create(&path).map_err(io_err(&path))?;
        f.write_all(&snapfile::encode_head(file, snap))
            .and_then(|()| f.write_all(&snap.data))
            .map_err(io_err(&path))?;
        if self.opts.sync {
            self.step()?;
            f.sync_data().map_err(io_err(&path))?;
        }
        Ok(())
    }

    /// Creates segment `header.segment` with its header durable and makes it active.
    pub(crate) fn create_segment(&mut self, header: &SegmentHeader) -> Result<(), StorageError> {
        let path = self.segment_path(header.segment);
        let tmp = path.with_extension("log.tmp");
        let head = segment::encode_head(header);
        self.step()?;
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(io_err(&tmp))?;
        f.write_all(&head).map_err(io_err(&tmp))?;
        if self.opts.sync {
            self.step()?;
            f.sync_data().map_err(io_err(&tmp))?;
        }
        self.step()?;
        fs::rename(&tmp, &path).map_err(io_err(&path))?;
        self.sync_dir()?;
        self.segments.push_back(header.segment);
        self.active = Arc::new(f);
        self.active_len = head.len() as u64;
        self.active_file_len = self.active_len;
        Ok(())
    }

    /// Deletes segments that hold no needed entry (oldest first, syncing the directory
    /// after each so the remaining ones always form a contiguous run), and snapshot files
    /// other than the current one.
    pub(crate) fn collect_garbage(&mut self) -> Result<(), StorageError> {
        let keep_from = self
            .log
            .oldest_segment()
            .unwrap_or_else(|| self.active_segment());
        while let Some(&seq) = self.segments.front() {
            if seq >= keep_from {
                break;
            }
            let path = self.segment_path(seq);
            self.step()?;
            remove_if_exists(&path)?;
            self.segments.pop_front();
            self.sync_dir()?;
        }
        let current = self.snapshot.map(|s| s.file);
        let stale: Vec<u64> = self
            .snapshot_files
            .iter()
            .copied()
            .filter(|&f| Some(f) != current)
            .collect();
        for file in stale {
            self.step()?;
            remove_if_exists(&self.dir.join(format::snapshot_name(file)))?;
            self.snapshot_files.remove(&file);
        }
        Ok(())
    }

    pub(crate) fn sync_dir(&mut self) -> Result<(), StorageError> {
        if self.opts.sync {
            self.step()?;
            self.dir_handle.sync_all().map_err(io_err(&self.dir))?;
        }
        Ok(())
    }

    pub(crate) fn segment_path(&self, seq: u64) -> PathBuf {
        self.dir.join(format::segment_name(seq))
    }

    /// One file-system step of a sync. Tests inject a crash before any of them.
    fn step(&mut self) -> Result<(), StorageError> {
        #[cfg(test)]
        if let Some(n) = self.crash_after.as_mut() {
            if *n == 0 {
                return Err(StorageError::Io {
                    path: self.dir.clone(),
                    source: io::Error::other("injected crash"),
                });
            }
            *n -= 1;
        }
        Ok(())
    }

    /// Approximate size of the Raft state (hard state and log), the same number
    /// [`Persisted::raft_state_size`] gives: 24 bytes plus 17 per entry plus payloads. This
    /// is the lab's `RaftStateSize()`, for deciding when to snapshot. Counts applied
    /// actions, synced or not.
    pub fn raft_state_size(&self) -> u64 {
        24 + self.log_size
    }

    /// Size of the current snapshot's data ([`Persisted::snapshot_size`]).
    pub fn snapshot_size(&self) -> u64 {
        self.snapshot_size
    }

    /// Term and vote, as last applied.
    pub fn hard_state(&self) -> HardState {
        self.hard_state
    }

    /// What the current snapshot covers (index 0 when there is none).
    pub fn snapshot_meta(&self) -> SnapshotMeta {
        self.snapshot.map(|s| s.meta).unwrap_or_default()
    }

    /// Index of the last log entry (the snapshot's index when no entry follows it).
    pub fn last_index(&self) -> Index {
        self.log
            .last_index()
            .unwrap_or_else(|| self.snapshot_meta().index)
    }

    /// Number of log segment files on disk, including the active one.
    pub fn wal_segments(&self) -> usize {
        self.segments.len()
    }

    /// The storage directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl std::fmt::Debug for RaftStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The pending batch and file handles are left out: they can be large or useless.
        f.debug_struct("RaftStorage")
            .field("dir", &self.dir)
            .field("hard_state", &self.hard_state)
            .field("snapshot", &self.snapshot)
            .field("last_index", &self.last_index())
            .field("segments", &self.segments)
            .field("active_len", &self.active_len)
            .field("next_batch", &self.next_batch)
            .field("pending_bytes", &self.pending.len())
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

fn remove_if_exists(path: &Path) -> Result<(), StorageError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(path)(e)),
        _ => Ok(()),
    }
}

/// The `fdatasync` that makes a batch written by [`RaftStorage::write_unsynced`] durable.
/// Runs on any thread.
#[derive(Debug)]
pub struct DataSync {
    file: Arc<File>,
    path: PathBuf,
}

impl DataSync {
    /// Runs the `fdatasync`. After an error, whether the batch is durable is unknown:
    /// stop using the storage and open the directory again.
    ///
    /// # Errors
    ///
    /// The I/O error.
    pub fn run(self) -> Result<(), StorageError> {
        self.file.sync_data().map_err(io_err(&self.path))
    }
}
