//! A distributed lock built only on the clerk's versioned Put and Get (the 2025 lab's
//! `kvsrv1/lock`), as a sans-IO decision maker.
//!
//! The lock lives in the store under its key: the value is the holder's owner id, or empty
//! when the lock is free. [`Lock`] decides which operation to run next; the caller runs it
//! on its [`Clerk`](crate::clerk::Clerk) and feeds the result back with
//! [`Lock::on_result`]. It works on an unreliable network with or without sessions:
//!
//! * acquire: Get the key; if it is free, Put our owner id at the version read. If the Put
//!   is refused, someone else won the race: read again. If the answer is `Maybe` (our Put
//!   may or may not have been applied), read again: the lock is ours exactly when the value
//!   is our owner id, since nobody else writes a held lock.
//! * release: Put the empty value at the version we acquired at. `Maybe`: read; the lock
//!   is released unless the value is still our id at that version.
//!
//! Owner ids must be unique among the lock's users (e.g. the clerk's client id).
//!
//! ```
//! use stepwise_kv::lock::{Lock, LockStep};
//! use stepwise_kv::server::Server;
//! use stepwise_kv::{Op, Request};
//!
//! let mut server = Server::new();
//! let mut run = |op: Op| server.handle(Request { id: 0, session: None, op }).result;
//! let mut lock = Lock::new("l", "client-1", 1);
//! let mut step = LockStep::Run(lock.acquire());
//! while let LockStep::Run(op) = step {
//!     step = lock.on_result(&run(op));
//! }
//! assert_eq!(step, LockStep::Acquired);
//! let mut step = LockStep::Run(lock.release());
//! while let LockStep::Run(op) = step {
//!     step = lock.on_result(&run(op));
//! }
//! assert_eq!(step, LockStep::Released);
//! ```

use bytes::Bytes;

use crate::kv::{KvError, KvOutput, KvResult, Op};

/// What to do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LockStep {
    /// Run this operation and feed its result to [`Lock::on_result`].
    Run(Op),
    /// The lock is held by someone else: wait `ticks`, then run the operation.
    Wait {
        /// Ticks to wait.
        ticks: u32,
        /// The operation to run afterwards.
        op: Op,
    },
    /// The lock is ours.
    Acquired,
    /// The lock is released.
    Released,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Phase {
    Idle,
    /// Reading the lock before trying to take it.
    Reading,
    /// Our Put of the owner id at this version is in flight.
    Taking {
        version: u64,
    },
    /// Held; the key is at this version.
    Held {
        version: u64,
    },
    /// Our Put of the empty value at this version is in flight.
    Releasing {
        version: u64,
    },
    /// Reading to learn whether our release went through.
    CheckingRelease {
        version: u64,
    },
}

/// One user's handle on a named lock. See the [module docs](self).
#[derive(Clone, Debug)]
pub struct Lock {
    key: Bytes,
    owner: Bytes,
    poll_ticks: u32,
    phase: Phase,
}

impl Lock {
    /// A handle on the lock stored under `key`, for the user `owner` (non-empty, unique),
    /// polling every `poll_ticks` while someone else holds it.
    ///
    /// # Panics
    /// If `owner` is empty (the empty value means "free").
    pub fn new(key: impl Into<Bytes>, owner: impl Into<Bytes>, poll_ticks: u32) -> Self {
        let owner = owner.into();
        assert!(!owner.is_empty(), "a lock owner id must not be empty");
        Lock {
            key: key.into(),
            owner,
            poll_ticks,
            phase: Phase::Idle,
        }
    }

    /// Whether the lock is held by this handle.
    pub fn is_held(&self) -> bool {
        matches!(self.phase, Phase::Held { .. })
    }

    /// Starts acquiring: the first operation to run.
    pub fn acquire(&mut self) -> Op {
        self.phase = Phase::Reading;
        Op::get(self.key.clone())
    }

    /// Starts releasing a held lock: the first operation to run. Releasing a lock this
    /// handle does not hold reads the lock and reports [`LockStep::Released`].
    pub fn release(&mut self) -> Op {
        match self.phase {
            Phase::Held { version } => {
                self.phase = Phase::Releasing { version };
                self.put(Bytes::new(), version)
            }
            _ => {
                self.phase = Phase::CheckingRelease { version: u64::MAX };
                Op::get(self.key.clone())
            }
        }
    }

    fn put(&self, value: Bytes, version: u64) -> Op {
        Op::Put {
            key: self.key.clone(),
            value,
            version: Some(version),
        }
    }

    fn read(&mut self) -> LockStep {
        self.phase = Phase::Reading;
        LockStep::Run(Op::get(self.key.clone()))
    }

    /// Feeds the result of the last operation; returns what to do next.
    pub fn on_result(&mut self, result: &KvResult) -> LockStep {
        match self.phase.clone() {
            // Nothing in flight: report the state.
            Phase::Idle => LockStep::Released,
            Phase::Held { .. } => LockStep::Acquired,
            Phase::Reading => {
                let (value, version) = match result {
                    Ok(KvOutput::Value { value, version }) => (value.clone(), *version),
                    Err(KvError::NoKey) => (Bytes::new(), 0),
                    // Transient failures: read again.
                    _ => return self.read(),
                };
                if value == self.owner {
                    self.phase = Phase::Held { version };
                    LockStep::Acquired
                } else if value.is_empty() {
                    self.phase = Phase::Taking { version };
                    LockStep::Run(self.put(self.owner.clone(), version))
                } else {
                    LockStep::Wait {
                        ticks: self.poll_ticks,
                        op: Op::get(self.key.clone()),
                    }
                }
            }
            Phase::Taking { .. } => match result {
                Ok(KvOutput::Written { version }) => {
                    self.phase = Phase::Held { version: *version };
                    LockStep::Acquired
                }
                // Lost the race, or unsure whether we won: the value tells.
                _ => self.read(),
            },
            Phase::Releasing { version } => match result {
                Ok(_) | Err(KvError::Version) => {
                    // Version: only we write a held lock, so an earlier copy of this
                    // release went through (and someone may hold it again by now).
                    self.phase = Phase::Idle;
                    LockStep::Released
                }
                _ => {
                    self.phase = Phase::CheckingRelease { version };
                    LockStep::Run(Op::get(self.key.clone()))
                }
            },
            Phase::CheckingRelease { version } => match result {
                Ok(KvOutput::Value {
                    value,
                    version: now,
                }) if *value == self.owner && *now == version => {
                    self.phase = Phase::Releasing { version };
                    LockStep::Run(self.put(Bytes::new(), version))
                }
                Ok(_) | Err(KvError::NoKey) => {
                    self.phase = Phase::Idle;
                    LockStep::Released
                }
                _ => LockStep::Run(Op::get(self.key.clone())),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(v: &str, version: u64) -> KvResult {
        Ok(KvOutput::Value {
            value: Bytes::copy_from_slice(v.as_bytes()),
            version,
        })
    }

    #[test]
    fn waits_while_held_then_takes_a_free_lock() {
        let mut l = Lock::new("l", "me", 3);
        assert_eq!(l.acquire(), Op::get("l"));
        assert_eq!(
            l.on_result(&value("other", 4)),
            LockStep::Wait {
                ticks: 3,
                op: Op::get("l")
            }
        );
        assert_eq!(
            l.on_result(&value("", 5)),
            LockStep::Run(Op::put("l", "me", 5))
        );
        assert_eq!(
            l.on_result(&Ok(KvOutput::Written { version: 6 })),
            LockStep::Acquired
        );
        assert!(l.is_held());
        assert_eq!(l.release(), Op::put("l", "", 6));
        assert_eq!(
            l.on_result(&Ok(KvOutput::Written { version: 7 })),
            LockStep::Released
        );
    }

    #[test]
    fn maybe_is_resolved_by_reading_the_owner() {
        let mut l = Lock::new("l", "me", 1);
        l.acquire();
        assert_eq!(
            l.on_result(&Err(KvError::NoKey)),
            LockStep::Run(Op::put("l", "me", 0))
        );
        // Unsure whether our Put went through: it did.
        assert_eq!(
            l.on_result(&Err(KvError::Maybe)),
            LockStep::Run(Op::get("l"))
        );
        assert_eq!(l.on_result(&value("me", 1)), LockStep::Acquired);
        // Release: unsure, and it had not gone through: try again.
        l.release();
        assert_eq!(
            l.on_result(&Err(KvError::Maybe)),
            LockStep::Run(Op::get("l"))
        );
        assert_eq!(
            l.on_result(&value("me", 1)),
            LockStep::Run(Op::put("l", "", 1))
        );
        // Refused at that version: an earlier copy went through.
        assert_eq!(l.on_result(&Err(KvError::Version)), LockStep::Released);
    }

    #[test]
    fn a_lost_race_reads_again() {
        let mut l = Lock::new("l", "me", 1);
        l.acquire();
        l.on_result(&value("", 2));
        assert_eq!(
            l.on_result(&Err(KvError::Version)),
            LockStep::Run(Op::get("l"))
        );
        assert_eq!(
            l.on_result(&value("you", 3)),
            LockStep::Wait {
                ticks: 1,
                op: Op::get("l")
            }
        );
    }
}
