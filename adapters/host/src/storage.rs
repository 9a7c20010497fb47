//! The [`Storage`] trait: where a runtime carries out Raft's persistence actions.

use std::convert::Infallible;

use stepwise_raft::{Action, Persisted};
use stepwise_storage::{RaftStorage, StorageError};

/// Carries out Raft persistence actions with the semantics of [`Persisted::apply`].
///
/// `apply` may buffer; `sync` makes everything applied so far durable. The
/// [`Driver`](crate::Driver) calls `sync` once per batch, before any action that follows
/// the batch's persistence actions.
pub trait Storage {
    /// Why a write failed. After an error the runtime stops the node.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Records a persistence action. Returns `Ok(false)` (and does nothing) for any other
    /// action.
    fn apply(&mut self, action: &Action) -> Result<bool, Self::Error>;

    /// Makes every action applied so far durable.
    fn sync(&mut self) -> Result<(), Self::Error>;

    /// Starts making every action applied so far durable, for a runtime that waits for
    /// the disk off its own thread ([`Driver::flush_pipelined`](crate::Driver::flush_pipelined)):
    /// does the part that must happen here, in order (writing), and returns the rest
    /// (the `fdatasync`) as a job any thread may run. The actions are durable once the
    /// job returns `Ok`; `None` means they are durable already. The caller runs the job
    /// before calling this again.
    ///
    /// The default syncs here and returns `None`.
    fn start_sync(&mut self) -> Result<Option<SyncJob<Self::Error>>, Self::Error> {
        self.sync().map(|()| None)
    }
}

/// The part of a sync that may run on another thread (see [`Storage::start_sync`]).
pub type SyncJob<E> = Box<dyn FnOnce() -> Result<(), E> + Send>;

/// In-memory storage: "durable" for as long as the value lives. For tests, simulations
/// and embedded clusters that need no crash recovery.
impl Storage for Persisted {
    type Error = Infallible;

    fn apply(&mut self, action: &Action) -> Result<bool, Infallible> {
        Ok(Persisted::apply(self, action))
    }

    fn sync(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

/// The on-disk write-ahead log of `stepwise-storage`: one `fdatasync` per batch.
impl Storage for RaftStorage {
    type Error = StorageError;

    fn apply(&mut self, action: &Action) -> Result<bool, StorageError> {
        RaftStorage::apply(self, action)
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        RaftStorage::sync(self)
    }

    /// Writes the batch here; the job is its `fdatasync`
    /// ([`RaftStorage::write_unsynced`]).
    fn start_sync(&mut self) -> Result<Option<SyncJob<StorageError>>, StorageError> {
        Ok(self
            .write_unsynced()?
            .map(|sync| Box::new(move || sync.run()) as SyncJob<StorageError>))
    }
}
