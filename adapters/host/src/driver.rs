//! The [`Driver`]: steps a [`Machine`] and carries out its actions against a [`Storage`]
//! and an [`Outlet`], with group commit. Both runtimes use it; neither has its own copy.

use stepwise_raft::{Message, NodeId};

use crate::machine::{HostAction, HostInput, Machine};
use crate::storage::Storage;

/// Where a [`Driver`] sends what is not persistence: messages to peers and events to local
/// clients. Both calls must return quickly (queue, do not wait).
pub trait Outlet<E> {
    /// Transmit `msg` to peer `to`, best effort.
    fn send(&mut self, to: NodeId, msg: Message);
    /// Hand `event` to the local clients.
    fn event(&mut self, event: E);
}

/// Counters a [`Driver`] keeps. All are totals since the driver was built.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DriverStats {
    /// Inputs stepped.
    pub inputs: u64,
    /// Non-empty batches flushed.
    pub batches: u64,
    /// Persistence actions applied to the storage.
    pub persisted: u64,
    /// Storage syncs (at most one per batch).
    pub syncs: u64,
    /// Messages handed to the outlet.
    pub sent: u64,
    /// Events handed to the outlet.
    pub events: u64,
    /// `HostAction::Persist` actions that were not persistence actions (a machine bug),
    /// ignored.
    pub ignored: u64,
}

/// Owns a [`Machine`] and its [`Storage`], and runs the action contract.
///
/// A runtime calls [`step`](Driver::step) for each input it has at hand (a *batch*: for
/// example everything waiting in its queues, up to a limit), then [`flush`](Driver::flush)
/// once. `flush` carries out the batch in two passes:
///
/// 1. every [`HostAction::Persist`] of the batch, in order, is applied to the storage,
///    then the storage is synced **once** (no sync if the batch persisted nothing);
/// 2. every other action, in order: `Send` and `Event` go to the [`Outlet`].
///
/// This is group commit: one sync for any number of steps. It keeps the Raft contract
/// ("a persistence action is durable before any later action runs"): every action runs
/// after all persistence actions before it are durable. It may also run after some that
/// came *later* are durable; that is allowed, because the state on disk is then a later
/// state of the same node, whose decisions include the ones the earlier actions announce:
/// the outcome is the one of a run where those messages and events were merely delayed
/// (a vote sent after a later term was already saved is still a vote of the earlier
/// term, which the node can never cast again).
///
/// If the storage fails, `flush` returns the error and **drops the whole batch**: nothing
/// of it may leave the node, since it may not be durable. The runtime should then stop the
/// node (fail-stop); restarting from the storage recovers what is durable.
#[derive(Debug)]
pub struct Driver<M: Machine, S: Storage> {
    machine: M,
    storage: S,
    batch: Vec<HostAction<M::Event>>,
    stats: DriverStats,
}

impl<M: Machine, S: Storage> Driver<M, S> {
    /// A driver for `machine` that persists to `storage`. `storage` must hold the state
    /// `machine` was built or restored from.
    pub fn new(machine: M, storage: S) -> Self {
        Driver {
            machine,
            storage,
            batch: Vec::new(),
            stats: DriverStats::default(),
        }
    }

    /// Steps the machine; its actions join the current batch.
    pub fn step(&mut self, input: HostInput<M::Request>) {
        self.stats.inputs += 1;
        self.machine.step(input, &mut self.batch);
    }

    /// Whether the current batch holds anything to flush.
    pub fn has_actions(&self) -> bool {
        !self.batch.is_empty()
    }

    /// Whether flushing the current batch will write to the storage (and so may block on
    /// a sync). A runtime with an event loop can run such flushes off its loop.
    pub fn needs_persist(&self) -> bool {
        self.batch
            .iter()
            .any(|a| matches!(a, HostAction::Persist(_)))
    }

    /// Carries out the current batch: persistence first (one sync), then sends and events
    /// in order. See the [type docs](Driver) for why this order keeps the contract.
    ///
    /// # Errors
    ///
    /// A storage error; the batch is then dropped unsent.
    pub fn flush(&mut self, outlet: &mut impl Outlet<M::Event>) -> Result<(), S::Error> {
        if self.batch.is_empty() {
            return Ok(());
        }
        self.stats.batches += 1;
        if let Err(e) = self.persist() {
            self.batch.clear();
            return Err(e);
        }
        for action in self.batch.drain(..) {
            match action {
                HostAction::Persist(_) => {}
                HostAction::Send { to, msg } => {
                    self.stats.sent += 1;
                    outlet.send(to, msg);
                }
                HostAction::Event(event) => {
                    self.stats.events += 1;
                    outlet.event(event);
                }
            }
        }
        Ok(())
    }

    /// Pass 1 of `flush`: apply the batch's persistence actions in order, then sync once.
    fn persist(&mut self) -> Result<(), S::Error> {
        let mut applied = false;
        for action in &self.batch {
            if let HostAction::Persist(action) = action {
                if self.storage.apply(action)? {
                    self.stats.persisted += 1;
                    applied = true;
                } else {
                    self.stats.ignored += 1;
                }
            }
        }
        if applied {
            self.storage.sync()?;
            self.stats.syncs += 1;
        }
        Ok(())
    }

    /// The machine.
    pub fn machine(&self) -> &M {
        &self.machine
    }

    /// The machine, mutably (e.g. to read state a test needs). Do not step it directly:
    /// its actions would bypass the storage.
    pub fn machine_mut(&mut self) -> &mut M {
        &mut self.machine
    }

    /// The storage.
    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// Counters.
    pub fn stats(&self) -> DriverStats {
        self.stats
    }

    /// Takes the machine and the storage back. Actions not yet flushed are dropped (as in a
    /// crash); call [`flush`](Driver::flush) first for a clean stop.
    pub fn into_parts(self) -> (M, S) {
        (self.machine, self.storage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stepwise_raft::{Action, HardState, Persisted};

    /// A storage that logs every call, to check the order of operations.
    #[derive(Default)]
    struct Recorder {
        log: Vec<String>,
        fail_sync: bool,
    }

    #[derive(Debug)]
    struct Failed;
    impl std::fmt::Display for Failed {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("sync failed")
        }
    }
    impl std::error::Error for Failed {}

    impl Storage for Recorder {
        type Error = Failed;
        fn apply(&mut self, action: &Action) -> Result<bool, Failed> {
            match action {
                Action::SaveHardState(hs) => {
                    self.log.push(format!("persist term {}", hs.term));
                    Ok(true)
                }
                _ => Ok(false),
            }
        }
        fn sync(&mut self) -> Result<(), Failed> {
            if self.fail_sync {
                return Err(Failed);
            }
            self.log.push("sync".into());
            Ok(())
        }
    }

    /// Emits, for input `Request(t)`: save term t, send a vote reply of term t, event t.
    struct Script;
    impl Machine for Script {
        type Request = u64;
        type Event = u64;
        fn step(&mut self, input: HostInput<u64>, out: &mut Vec<HostAction<u64>>) {
            if let HostInput::Request(t) = input {
                out.push(HostAction::Persist(Action::SaveHardState(HardState {
                    term: t,
                    vote: None,
                })));
                out.push(HostAction::Send {
                    to: 2,
                    msg: Message::VoteReply {
                        term: t,
                        granted: true,
                        pre_vote: false,
                    },
                });
                out.push(HostAction::Event(t));
            }
        }
    }

    #[derive(Default)]
    struct Log(Vec<String>);
    impl Outlet<u64> for Log {
        fn send(&mut self, to: NodeId, msg: Message) {
            self.0.push(format!("send {to} term {}", msg.term()));
        }
        fn event(&mut self, event: u64) {
            self.0.push(format!("event {event}"));
        }
    }

    #[test]
    fn a_batch_syncs_once_before_anything_leaves() {
        let mut driver = Driver::new(Script, Recorder::default());
        driver.step(HostInput::Request(1));
        driver.step(HostInput::Request(2));
        assert!(driver.needs_persist());
        let mut out = Log::default();
        driver.flush(&mut out).unwrap();
        assert_eq!(
            driver.storage().log,
            ["persist term 1", "persist term 2", "sync"]
        );
        assert_eq!(
            out.0,
            ["send 2 term 1", "event 1", "send 2 term 2", "event 2"]
        );
        let stats = driver.stats();
        assert_eq!((stats.batches, stats.persisted, stats.syncs), (1, 2, 1));
        assert_eq!((stats.sent, stats.events, stats.inputs), (2, 2, 2));
        assert!(!driver.has_actions());
    }

    #[test]
    fn a_batch_without_persistence_does_not_sync() {
        let mut driver = Driver::new(Script, Recorder::default());
        driver.step(HostInput::Tick);
        assert!(!driver.has_actions());
        driver.flush(&mut Log::default()).unwrap();
        assert_eq!(driver.stats().syncs, 0);
        assert_eq!(driver.stats().batches, 0);
    }

    #[test]
    fn a_failed_sync_drops_the_batch_unsent() {
        let mut driver = Driver::new(
            Script,
            Recorder {
                fail_sync: true,
                ..Recorder::default()
            },
        );
        driver.step(HostInput::Request(1));
        let mut out = Log::default();
        assert!(driver.flush(&mut out).is_err());
        assert!(out.0.is_empty(), "nothing leaves before it is durable");
        assert!(!driver.has_actions());
    }

    #[test]
    fn non_persistence_actions_marked_persist_are_ignored_and_counted() {
        struct Bad;
        impl Machine for Bad {
            type Request = ();
            type Event = ();
            fn step(&mut self, _: HostInput<()>, out: &mut Vec<HostAction<()>>) {
                out.push(HostAction::Persist(Action::NotLeader { leader: None }));
            }
        }
        let mut driver = Driver::new(Bad, Persisted::default());
        driver.step(HostInput::Tick);
        driver.flush(&mut NoOutlet).unwrap();
        assert_eq!(driver.stats().ignored, 1);
        assert_eq!(driver.stats().syncs, 0);
    }

    struct NoOutlet;
    impl Outlet<()> for NoOutlet {
        fn send(&mut self, _: NodeId, _: Message) {}
        fn event(&mut self, _: ()) {}
    }
}
