//! The one error type of this crate.

use std::io;
use std::path::{Path, PathBuf};

/// Why a storage operation failed.
///
/// Corruption always names the file and the byte offset where the bad data starts, so an
/// operator can inspect it (`xxd -s <offset> <file>`). Bad on-disk data never panics.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// An operating-system call failed on `path`.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory the call was about.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Stored data is damaged (or was written by an incompatible version). A torn tail from
    /// a crash is *not* reported this way: it is repaired silently (and logged).
    #[error("corrupt storage: {} at byte {offset}: {reason}", path.display())]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// Byte offset in `path` where the damaged data starts.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The write-ahead log refers to a snapshot file that does not exist.
    #[error("snapshot file {} is missing (referenced by {} at byte {offset})", path.display(), referenced_by.display())]
    MissingSnapshot {
        /// The missing snapshot file.
        path: PathBuf,
        /// The log segment holding the reference.
        referenced_by: PathBuf,
        /// Byte offset of the referring record.
        offset: u64,
    },
    /// The action cannot be stored: it breaks the log's shape (entries not consecutive, or
    /// not following the last entry; a snapshot older than the stored one). The Raft core
    /// never emits such actions; nothing was changed.
    #[error("invalid persistence action: {reason}")]
    InvalidAction {
        /// What is wrong with it.
        reason: String,
    },
    /// An earlier write or sync failed, so what the disk holds is unknown (after a failed
    /// `fsync` the kernel may already have dropped the dirty pages). The storage refuses
    /// further work: drop it and [`open`](crate::RaftStorage::open) the directory again,
    /// which recovers whatever is durable.
    #[error("storage unusable after an earlier write failure; reopen it to recover")]
    Poisoned,
}

impl StorageError {
    /// Builds a [`StorageError::Corrupt`].
    pub(crate) fn corrupt(path: &Path, offset: u64, reason: impl Into<String>) -> Self {
        StorageError::Corrupt {
            path: path.to_path_buf(),
            offset,
            reason: reason.into(),
        }
    }

    /// Builds a [`StorageError::InvalidAction`].
    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        StorageError::InvalidAction {
            reason: reason.into(),
        }
    }
}

/// Adds the path to an `io::Error`: `file.sync_data().map_err(io_err(&path))?`.
pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StorageError + '_ {
    move |source| StorageError::Io {
        path: path.to_path_buf(),
        source,
    }
}
