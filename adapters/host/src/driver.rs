//! The [`Driver`]: steps a [`Machine`] and carries out its actions against a [`Storage`]
//! and an [`Outlet`], with group commit. Both runtimes use it; neither has its own copy.

use std::collections::VecDeque;

use stepwise_raft::{Action, AppendResult, Index, Message, NodeId, Term};

use crate::machine::{HostAction, HostInput, Machine};
use crate::storage::{Storage, SyncJob};

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
    /// Of `sent`: leader `AppendEntries` handed to the outlet before the batch's sync
    /// (see [`Driver`]).
    pub sent_early: u64,
    /// Events handed to the outlet.
    pub events: u64,
    /// `HostAction::Persist` actions that were not persistence actions (a machine bug),
    /// ignored.
    pub ignored: u64,
    /// Pipelined mode: acknowledgements set aside until the leader's own copy of what
    /// they acknowledge was durable.
    pub deferred: u64,
    /// Pipelined mode: events handed out ahead of actions waiting for a sync
    /// ([`Machine::event_index`]).
    pub events_ahead: u64,
}

/// Owns a [`Machine`] and its [`Storage`], and runs the action contract.
///
/// A runtime calls [`step`](Driver::step) for each input it has at hand (a *batch*: for
/// example everything waiting in its queues, up to a limit), then [`flush`](Driver::flush)
/// once. `flush` first calls [`Machine::end_batch`], then carries out the batch in three
/// passes:
///
/// 0. what needs nothing of this batch's persistence goes out first: every action
///    before the batch's first persistence action (a reply to a commit the batch
///    learned of, for example, follows only earlier, already durable, persistence), and
///    the leader's replication: every `AppendEntries` message in the batch's leading
///    run of log appends, `AppendEntries` and events (anything else, a hard-state save
///    for example, ends the run) goes to the [`Outlet`] at once;
/// 1. every [`HostAction::Persist`] of the batch, in order, is applied to the storage,
///    then the storage is synced **once** (no sync if the batch persisted nothing);
/// 2. every other action, in order: `Send` and `Event` go to the [`Outlet`].
///
/// Pass 0 lets the followers write and sync new entries while the leader syncs its own
/// copy (Raft thesis, section 10.2.1: the leader may send before its own write is
/// durable, as long as it counts itself towards a commit only once it is). That proviso
/// holds here because the driver is sequential: a follower's acknowledgement is stepped
/// in a later batch, after this flush has synced the leader's copy, so any commit the
/// machine decides counts only durable copies. Only `AppendEntries` go early: they
/// announce nothing the leader's storage must already hold (their term was saved when
/// the node stood for election, in an earlier batch, and a save in this batch ends the
/// run), while votes and acknowledgements must wait for the sync.
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
/// If the storage fails, `flush` returns the error and **drops the rest of the batch**:
/// only the early `AppendEntries` have left (a leader that crashes before its sync, as
/// far as the others can tell), nothing else, since it may not be durable. The runtime
/// should then stop the node (fail-stop); restarting from the storage recovers what is
/// durable.
#[derive(Debug)]
pub struct Driver<M: Machine, S: Storage> {
    machine: M,
    storage: S,
    batch: Vec<HostAction<M::Event>>,
    /// What is left of the batch after pass 0 (kept to reuse its allocation).
    rest: Vec<HostAction<M::Event>>,
    /// Pipelined mode: actions waiting for a sync, oldest first, each run with the
    /// number of the sync that covers it.
    held: VecDeque<(u64, Vec<HostAction<M::Event>>)>,
    /// Pipelined mode: acknowledgements waiting for a sync, with its number.
    deferred: VecDeque<(u64, HostInput<M::Request>)>,
    /// Pipelined mode: syncs started and completed (at most one in flight).
    started: u64,
    done: u64,
    /// Pipelined mode: persistence actions applied since the last sync started.
    dirty: bool,
    /// Pipelined mode: the lowest log index written (or truncated) since the last sync
    /// started, and by the sync in flight; the log is durable below both.
    pending_first: Option<Index>,
    inflight_first: Option<Index>,
    /// The last entry appended since the last sync started, and the one the sync in
    /// flight covers: reported to the machine once durable ([`Machine::log_durable`]).
    pending_last: Option<(Index, Term)>,
    inflight_last: Option<(Index, Term)>,
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
            rest: Vec::new(),
            held: VecDeque::new(),
            deferred: VecDeque::new(),
            started: 0,
            done: 0,
            dirty: false,
            pending_first: None,
            inflight_first: None,
            pending_last: None,
            inflight_last: None,
            stats: DriverStats::default(),
        }
    }

    /// Steps the machine; its actions join the current batch.
    pub fn step(&mut self, input: HostInput<M::Request>) {
        self.stats.inputs += 1;
        self.machine.step(input, &mut self.batch);
    }

    /// Ends the current batch: lets the machine step what it held back
    /// ([`Machine::end_batch`]). [`flush`](Driver::flush) calls it; a runtime calls it
    /// itself before asking [`needs_persist`](Driver::needs_persist).
    pub fn end_batch(&mut self) {
        self.machine.end_batch(&mut self.batch);
    }

    /// Whether the current batch holds anything to flush.
    pub fn has_actions(&self) -> bool {
        !self.batch.is_empty()
    }

    /// Whether flushing the current batch will write to the storage (and so may block on
    /// a sync). A runtime with an event loop can run such flushes off its loop. Call
    /// [`end_batch`](Driver::end_batch) first: requests the machine held back are not in
    /// the batch before.
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
        loop {
            self.end_batch();
            if self.batch.is_empty() {
                return Ok(());
            }
            self.stats.batches += 1;
            self.send_early(outlet, true);
            if let Err(e) = self.persist() {
                self.rest.clear();
                return Err(e);
            }
            self.release_rest(outlet);
            // What the durability report makes the machine do is a batch of its own.
            let last = self.pending_last.take();
            self.report_durable(last);
        }
    }

    /// Tells the machine how far its log is durable (if it takes such reports).
    fn report_durable(&mut self, last: Option<(Index, Term)>) {
        if let Some((index, term)) = last
            && self.machine.takes_durable_reports()
        {
            self.machine.log_durable(index, term, &mut self.batch);
        }
    }

    /// Pass 0 of `flush`: moves the batch into `rest`, handing to the outlet on the way
    /// everything before the first persistence action (if `durable`: everything
    /// persisted before this batch is durable) and the `AppendEntries` of the leading run
    /// of log appends, `AppendEntries` and events.
    fn send_early(&mut self, outlet: &mut impl Outlet<M::Event>, durable: bool) {
        // Before the batch's first persistence action (if everything persisted before
        // the batch is durable), every action may go.
        let mut before_persist = durable;
        let mut leading = true;
        for action in self.batch.drain(..) {
            if before_persist {
                match action {
                    HostAction::Persist(_) => before_persist = false,
                    HostAction::Send { to, msg } => {
                        self.stats.sent += 1;
                        self.stats.sent_early += 1;
                        outlet.send(to, msg);
                        continue;
                    }
                    HostAction::Event(event) => {
                        self.stats.events += 1;
                        outlet.event(event);
                        continue;
                    }
                }
            }
            if leading {
                match action {
                    HostAction::Send {
                        to,
                        msg: msg @ Message::AppendEntries { .. },
                    } => {
                        self.stats.sent += 1;
                        self.stats.sent_early += 1;
                        outlet.send(to, msg);
                        continue;
                    }
                    HostAction::Persist(Action::AppendLog(_)) | HostAction::Event(_) => {}
                    _ => leading = false,
                }
            }
            self.rest.push(action);
        }
    }

    /// Pass 1 of `flush`: apply the batch's persistence actions in order, then sync once.
    fn persist(&mut self) -> Result<(), S::Error> {
        let mut applied = false;
        for action in &self.rest {
            if let HostAction::Persist(action) = action {
                if let Action::AppendLog(entries) = action
                    && let Some(last) = entries.last()
                {
                    self.pending_last = Some((last.index, last.term));
                }
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

    /// The number of the sync that will cover what is applied now.
    fn covering_sync(&self) -> u64 {
        self.started + u64::from(self.dirty)
    }

    /// Pipelined mode: whether this node's log is durable through `index`.
    fn durable_through(&self, index: Index) -> bool {
        [self.pending_first, self.inflight_first]
            .into_iter()
            .flatten()
            .all(|first| index < first)
    }

    /// Pipelined mode's [`step`](Driver::step): an acknowledgement from a follower
    /// (`AppendReply`, `SnapshotReply`) that arrives while the leader's own copy of what
    /// it may acknowledge is not yet durable is set aside and stepped by
    /// [`synced`](Driver::synced) once it is. So the machine counts the leader towards a
    /// commit only with a durable copy, as the Raft thesis (section 10.2.1) requires
    /// when the leader sends before its own sync.
    pub fn step_pipelined(&mut self, input: HostInput<M::Request>) {
        let wait = !self.machine.takes_durable_reports()
            && match &input {
                HostInput::Receive {
                    msg:
                        Message::AppendReply {
                            result: AppendResult::Success { match_index },
                            ..
                        },
                    ..
                } => !self.durable_through(*match_index),
                HostInput::Receive {
                    msg: Message::SnapshotReply { .. },
                    ..
                } => true,
                _ => false,
            };
        if wait {
            let needed = self.covering_sync();
            if needed > self.done {
                self.stats.deferred += 1;
                self.deferred.push_back((needed, input));
                return;
            }
        }
        self.step(input);
    }

    /// Pipelined mode's [`flush`](Driver::flush), for a runtime that waits for the disk
    /// off its own thread and goes on stepping meanwhile:
    ///
    /// * the batch's early `AppendEntries` go out at once (pass 0 of `flush`);
    /// * its persistence actions are applied to the storage; if no sync is in flight,
    ///   one starts ([`Storage::start_sync`]) and its job is returned: the runtime runs
    ///   it (on another thread), then calls [`synced`](Driver::synced) and this again;
    ///   while one is in flight, later batches' actions wait for the next (group commit,
    ///   at most one sync in flight);
    /// * every other action is held until the sync that covers the persistence actions
    ///   applied so far completes, then carried out in order.
    ///
    /// So a message or event still leaves only once everything persisted before it is
    /// durable, and the machine is stepped while the disk works. Use
    /// [`step_pipelined`](Driver::step_pipelined) with it, not `step`, and do not mix it
    /// with [`flush`](Driver::flush).
    ///
    /// # Errors
    ///
    /// A storage error: everything held is dropped unsent; stop the node.
    pub fn flush_pipelined(
        &mut self,
        outlet: &mut impl Outlet<M::Event>,
    ) -> Result<Option<SyncJob<S::Error>>, S::Error> {
        loop {
            self.end_batch();
            if !self.batch.is_empty() {
                self.stats.batches += 1;
                let durable = self.covering_sync() <= self.done;
                self.send_early(outlet, durable);
                if let Err(e) = self.apply_rest() {
                    self.drop_held();
                    return Err(e);
                }
                let covering = self.covering_sync();
                if covering <= self.done {
                    self.release_rest(outlet);
                } else {
                    self.release_durable_events(outlet);
                    match self.held.back_mut() {
                        Some((n, actions)) if *n == covering => actions.append(&mut self.rest),
                        _ => {
                            let actions = std::mem::take(&mut self.rest);
                            self.held.push_back((covering, actions));
                        }
                    }
                }
            }
            if !self.dirty || self.started > self.done {
                return Ok(None);
            }
            self.started += 1;
            self.dirty = false;
            self.inflight_first = self.pending_first.take();
            self.inflight_last = self.pending_last.take();
            self.stats.syncs += 1;
            match self.storage.start_sync() {
                Ok(Some(job)) => return Ok(Some(job)),
                // Durable already: release, step what waited for it, and go round again.
                Ok(None) => self.synced(outlet),
                Err(e) => {
                    self.drop_held();
                    return Err(e);
                }
            }
        }
    }

    /// Pipelined mode: the job [`flush_pipelined`](Driver::flush_pipelined) returned
    /// completed successfully. Carries out the actions that waited for it, in order, and
    /// steps the acknowledgements it covers; call `flush_pipelined` next.
    pub fn synced(&mut self, outlet: &mut impl Outlet<M::Event>) {
        self.done = self.started;
        self.inflight_first = None;
        let last = self.inflight_last.take();
        self.report_durable(last);
        while self.held.front().is_some_and(|(n, _)| *n <= self.done) {
            let (_, actions) = self.held.pop_front().expect("checked just above");
            self.rest = actions;
            self.release_rest(outlet);
        }
        while self.deferred.front().is_some_and(|(n, _)| *n <= self.done) {
            let (_, input) = self.deferred.pop_front().expect("checked just above");
            self.step(input);
        }
    }

    /// Pipelined mode: whether a sync is in flight or actions wait for one.
    pub fn is_syncing(&self) -> bool {
        self.started > self.done || self.dirty || !self.held.is_empty()
    }

    /// Carries out the events in `rest` that the machine lets go once its log is
    /// durable through an index it already is ([`Machine::event_index`]).
    fn release_durable_events(&mut self, outlet: &mut impl Outlet<M::Event>) {
        let (pending, inflight) = (self.pending_first, self.inflight_first);
        let durable = |i: Index| [pending, inflight].into_iter().flatten().all(|f| i < f);
        let mut kept = Vec::with_capacity(self.rest.len());
        for action in self.rest.drain(..) {
            match action {
                HostAction::Event(event)
                    if self.machine.event_index(&event).is_some_and(durable) =>
                {
                    self.stats.events += 1;
                    self.stats.events_ahead += 1;
                    outlet.event(event);
                }
                other => kept.push(other),
            }
        }
        self.rest = kept;
    }

    /// Applies the persistence actions in `rest` to the storage (no sync).
    fn apply_rest(&mut self) -> Result<(), S::Error> {
        for action in &self.rest {
            if let HostAction::Persist(action) = action {
                let first = match action {
                    Action::AppendLog(entries) => entries.first().map(|e| e.index),
                    Action::TruncateLog { from } => Some(*from),
                    Action::SaveSnapshot(_) => Some(0),
                    _ => None,
                };
                if let Some(first) = first {
                    self.pending_first = Some(self.pending_first.map_or(first, |p| p.min(first)));
                }
                if let Action::AppendLog(entries) = action
                    && let Some(last) = entries.last()
                {
                    self.pending_last = Some((last.index, last.term));
                }
                if self.storage.apply(action)? {
                    self.stats.persisted += 1;
                    self.dirty = true;
                } else {
                    self.stats.ignored += 1;
                }
            }
        }
        Ok(())
    }

    /// Carries out the sends and events in `rest`, in order.
    fn release_rest(&mut self, outlet: &mut impl Outlet<M::Event>) {
        for action in self.rest.drain(..) {
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
    }

    fn drop_held(&mut self) {
        self.rest.clear();
        self.held.clear();
        self.deferred.clear();
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

    /// One log for the storage and the outlet, to check what leaves before the sync.
    #[derive(Clone, Default)]
    struct Journal(std::sync::Arc<std::sync::Mutex<Vec<String>>>);
    impl Journal {
        fn push(&self, line: String) {
            self.0.lock().unwrap().push(line);
        }
        fn lines(&self) -> Vec<String> {
            self.0.lock().unwrap().clone()
        }
    }
    impl Storage for Journal {
        type Error = Failed;
        fn apply(&mut self, action: &Action) -> Result<bool, Failed> {
            self.push(match action {
                Action::AppendLog(entries) => format!("append {}", entries.len()),
                Action::SaveHardState(hs) => format!("persist term {}", hs.term),
                _ => return Ok(false),
            });
            Ok(true)
        }
        fn sync(&mut self) -> Result<(), Failed> {
            self.push("sync".into());
            Ok(())
        }
    }
    impl Outlet<u64> for Journal {
        fn send(&mut self, to: NodeId, msg: Message) {
            let kind = match msg {
                Message::AppendEntries { .. } => "append",
                _ => "other",
            };
            self.push(format!("send {kind} {to} term {}", msg.term()));
        }
        fn event(&mut self, event: u64) {
            self.push(format!("event {event}"));
        }
    }

    fn append(term: u64) -> Message {
        Message::AppendEntries {
            term,
            prev_index: 0,
            prev_term: 0,
            entries: Vec::new(),
            commit: 0,
            seq: 0,
        }
    }

    /// For `Request(t)`: append to the log, an event, AppendEntries of term t to 2 and
    /// 3; for `Tick`: save term 9, then AppendEntries of term 9. Requests are held back
    /// until `end_batch`.
    #[derive(Default)]
    struct Leader {
        held: Vec<u64>,
    }
    impl Machine for Leader {
        type Request = u64;
        type Event = u64;
        fn step(&mut self, input: HostInput<u64>, out: &mut Vec<HostAction<u64>>) {
            match input {
                HostInput::Request(t) => self.held.push(t),
                HostInput::Tick => {
                    out.push(HostAction::Persist(Action::SaveHardState(HardState {
                        term: 9,
                        vote: None,
                    })));
                    out.push(HostAction::Send {
                        to: 2,
                        msg: append(9),
                    });
                }
                HostInput::Receive { from, .. } => out.push(HostAction::Event(100 + from)),
            }
        }
        /// The event of an acknowledgement (100 + sender) reveals entry 1 only.
        fn event_index(&self, event: &u64) -> Option<Index> {
            (*event >= 100).then_some(1)
        }
        fn end_batch(&mut self, out: &mut Vec<HostAction<u64>>) {
            for t in self.held.drain(..) {
                out.push(HostAction::Persist(Action::AppendLog(vec![
                    stepwise_raft::Entry {
                        term: 1,
                        index: t,
                        payload: stepwise_raft::Payload::Command(bytes::Bytes::new()),
                    },
                ])));
                out.push(HostAction::Event(t));
                out.push(HostAction::Send {
                    to: 2,
                    msg: append(t),
                });
                out.push(HostAction::Send {
                    to: 3,
                    msg: append(t),
                });
            }
        }
    }

    #[test]
    fn the_leaders_append_entries_leave_before_its_sync_and_nothing_else_does() {
        let journal = Journal::default();
        let mut driver = Driver::new(Leader::default(), journal.clone());
        driver.step(HostInput::Request(1));
        driver.step(HostInput::Request(2));
        assert!(!driver.needs_persist(), "held back until the batch ends");
        driver.end_batch();
        assert!(driver.needs_persist());
        driver.step(HostInput::Tick);
        driver.step(HostInput::Request(3));
        driver.flush(&mut journal.clone()).unwrap();
        assert_eq!(
            journal.lines(),
            [
                "send append 2 term 1",
                "send append 3 term 1",
                "send append 2 term 2",
                "send append 3 term 2",
                "append 1",
                "append 1",
                "persist term 9",
                "append 1",
                "sync",
                "event 1",
                "event 2",
                "send append 2 term 9",
                "event 3",
                "send append 2 term 3",
                "send append 3 term 3",
            ]
        );
        let stats = driver.stats();
        assert_eq!((stats.sent, stats.sent_early, stats.syncs), (7, 4, 1));
    }

    #[test]
    fn a_failed_sync_lets_only_the_early_append_entries_out() {
        struct FailingSync(Journal);
        impl Storage for FailingSync {
            type Error = Failed;
            fn apply(&mut self, action: &Action) -> Result<bool, Failed> {
                self.0.apply(action)
            }
            fn sync(&mut self) -> Result<(), Failed> {
                Err(Failed)
            }
        }
        let journal = Journal::default();
        let mut driver = Driver::new(Leader::default(), FailingSync(journal.clone()));
        driver.step(HostInput::Request(1));
        assert!(driver.flush(&mut journal.clone()).is_err());
        assert_eq!(
            journal.lines(),
            ["send append 2 term 1", "send append 3 term 1", "append 1"]
        );
        assert!(!driver.has_actions());
    }

    /// A journal whose sync is split: the write here, the `fdatasync` in a job.
    struct Split(Journal);
    impl Storage for Split {
        type Error = Failed;
        fn apply(&mut self, action: &Action) -> Result<bool, Failed> {
            self.0.apply(action)
        }
        fn sync(&mut self) -> Result<(), Failed> {
            self.0.sync()
        }
        fn start_sync(&mut self) -> Result<Option<SyncJob<Failed>>, Failed> {
            self.0.push("write".into());
            let journal = self.0.clone();
            Ok(Some(Box::new(move || {
                journal.push("fdatasync".into());
                Ok(())
            })))
        }
    }

    fn ack(from: NodeId) -> HostInput<u64> {
        HostInput::Receive {
            from,
            msg: Message::AppendReply {
                term: 1,
                result: stepwise_raft::AppendResult::Success { match_index: 1 },
                seq: 0,
            },
        }
    }

    #[test]
    fn what_precedes_the_batchs_first_persistence_action_leaves_before_the_sync() {
        let journal = Journal::default();
        let mut driver = Driver::new(Leader::default(), journal.clone());
        driver.step(HostInput::Request(1));
        driver.step(ack(2)); // stepped before the held request: its event comes first
        driver.flush(&mut journal.clone()).unwrap();
        assert_eq!(
            journal.lines(),
            [
                "event 102",
                "send append 2 term 1",
                "send append 3 term 1",
                "append 1",
                "sync",
                "event 1",
            ]
        );
    }

    #[test]
    fn pipelined_flushes_overlap_one_sync_and_hold_everything_but_append_entries() {
        let journal = Journal::default();
        let mut out = journal.clone();
        let mut driver = Driver::new(Leader::default(), Split(journal.clone()));
        driver.step_pipelined(HostInput::Request(1));
        let job1 = driver
            .flush_pipelined(&mut out)
            .unwrap()
            .expect("a sync starts");
        // An acknowledgement while the leader's copy is not durable waits for it.
        driver.step_pipelined(ack(2));
        assert_eq!(driver.stats().deferred, 1);
        // The next batch goes out (its AppendEntries) while the sync is in flight.
        driver.step_pipelined(HostInput::Request(2));
        assert!(
            driver.flush_pipelined(&mut out).unwrap().is_none(),
            "one in flight"
        );
        assert!(driver.is_syncing());
        job1().unwrap();
        driver.synced(&mut out);
        let job2 = driver
            .flush_pipelined(&mut out)
            .unwrap()
            .expect("the next sync");
        job2().unwrap();
        driver.synced(&mut out);
        assert!(driver.flush_pipelined(&mut out).unwrap().is_none());
        assert!(!driver.is_syncing());
        assert_eq!(
            journal.lines(),
            [
                "send append 2 term 1",
                "send append 3 term 1",
                "append 1",
                "write",
                "send append 2 term 2",
                "send append 3 term 2",
                "append 1",
                "fdatasync",
                "event 1",
                // The acknowledgement was stepped after the first sync; its event needs
                // entry 1 only, durable now: it goes ahead of the second batch's.
                "event 102",
                "write",
                "fdatasync",
                "event 2",
            ]
        );
        let stats = driver.stats();
        assert_eq!((stats.syncs, stats.events_ahead), (2, 1));
    }

    struct NoOutlet;
    impl Outlet<()> for NoOutlet {
        fn send(&mut self, _: NodeId, _: Message) {}
        fn event(&mut self, _: ()) {}
    }
}
