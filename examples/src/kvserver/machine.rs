//! [`KvMachine`]: the replicated KV [`Replica`] as a [`Machine`] a runtime can host, and
//! the [`Router`] that hands each reply to the task waiting for it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use stepwise_host::{HostAction, HostInput, Machine};
use stepwise_kv::replica::{Action, Input, Replica};
use stepwise_kv::{KvResult, Reply, Request};
use stepwise_raft::{Index, Term};
use tokio::sync::oneshot;

/// A [`Replica`] hosted by a runtime. Each request carries a tag the reply event
/// carries back.
///
/// Requests are held until the runtime ends its batch ([`Machine::end_batch`]), then
/// stepped together as one [`Input::Requests`]: the writes of every connection that
/// arrived in one batch share one log entry (one Raft round, one sync). This keeps each
/// connection's order; it may reorder requests of different connections, which are
/// concurrent (a connection waits for a request's answer before sending a read after
/// a write, see `conn`). While the leader has a round in flight, writes wait for it
/// ([`with_round_batching`](KvMachine::with_round_batching)).
#[derive(Debug)]
pub struct KvMachine {
    replica: Replica,
    buf: Vec<Action>,
    held: Vec<(u64, Request)>,
    round_batching: bool,
    durable_reports: bool,
    leader: Arc<AtomicU64>,
    sessions: Arc<AtomicU64>,
}

impl KvMachine {
    /// Wraps a replica.
    pub fn new(replica: Replica) -> Self {
        let durable_reports = replica.rsm().raft().config().durable_reports;
        KvMachine {
            replica,
            buf: Vec::new(),
            held: Vec::new(),
            round_batching: true,
            durable_reports,
            leader: Arc::default(),
            sessions: Arc::default(),
        }
    }

    /// Whether writes wait for the replication round in flight (default on): while this
    /// node leads and has uncommitted entries, the writes that arrive are held and
    /// proposed together, as one entry, when the round completes: one sync per node per
    /// round instead of one per batch of arrivals. Reads go at once.
    pub fn with_round_batching(mut self, on: bool) -> Self {
        self.round_batching = on;
        self
    }

    /// The leader this replica knows of (0: none), updated after every step; for
    /// monitoring (`INFO`).
    pub fn leader_hint(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.leader)
    }

    /// The number of clients in the replica's session table, updated after every step;
    /// for monitoring (`INFO`).
    pub fn sessions_hint(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.sessions)
    }

    /// The replica inside.
    pub fn replica(&self) -> &Replica {
        &self.replica
    }
}

/// What the [`KvMachine`] hands its clients.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvEvent {
    /// The answer to the request submitted with tag `to`.
    Reply {
        /// The tag given with the request.
        to: u64,
        /// The answer.
        reply: Reply,
    },
    /// The replica stopped for good (a broken invariant); restart the process.
    Halted(String),
}

/// What clients submit to a [`KvMachine`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvRequest {
    /// One request, answered with `tag`.
    One(u64, Request),
    /// Requests that arrived together (a client's pipeline): their writes share one log
    /// entry, each is answered with its own tag.
    Batch(Vec<(u64, Request)>),
    /// End the session of this client id (its connection is gone): proposed if the
    /// replica leads, else ignored; no reply (see [`Input::EndSession`]).
    EndSession(u64),
}

impl Machine for KvMachine {
    type Request = KvRequest;
    type Event = KvEvent;

    fn step(&mut self, input: HostInput<KvRequest>, out: &mut Vec<HostAction<KvEvent>>) {
        let input = match input {
            HostInput::Tick => Input::Tick,
            HostInput::Receive { from, msg } => Input::Receive { from, msg },
            HostInput::Request(KvRequest::One(from, request)) => {
                self.held.push((from, request));
                return;
            }
            HostInput::Request(KvRequest::EndSession(client)) => Input::EndSession { client },
            HostInput::Request(KvRequest::Batch(requests)) => {
                if self.held.is_empty() {
                    self.held = requests;
                } else {
                    self.held.extend(requests);
                }
                return;
            }
        };
        self.run(input, out);
    }

    /// A reply reveals committed state only, and with durability reports (see
    /// [`takes_durable_reports`](Machine::takes_durable_reports)) an entry commits only
    /// once a majority holds it durably: a reply needs nothing of this node's own log
    /// durable and goes at once (pipelined sync), whatever else still waits for the disk.
    /// Without reports it waits until the applied index is durable here.
    fn event_index(&self, event: &KvEvent) -> Option<Index> {
        match event {
            KvEvent::Reply { .. } if self.durable_reports => Some(0),
            KvEvent::Reply { .. } => Some(self.replica.rsm().applied_index()),
            KvEvent::Halted(_) => None,
        }
    }

    fn takes_durable_reports(&self) -> bool {
        self.durable_reports
    }

    fn log_durable(&mut self, index: Index, term: Term, out: &mut Vec<HostAction<KvEvent>>) {
        self.run(Input::LogDurable { index, term }, out);
    }

    /// Overlap syncs only while leading (see [`Machine::overlap_sync`]).
    fn overlap_sync(&self) -> bool {
        self.replica.is_leader()
    }

    fn end_batch(&mut self, out: &mut Vec<HostAction<KvEvent>>) {
        if self.held.is_empty() {
            return;
        }
        if self.round_batching && self.held.len() < MAX_HELD && self.replicating() {
            // A round is in flight: the writes wait for it and leave together with
            // whatever else arrives meanwhile (one entry, one sync per node per round);
            // reads need no log entry and go now.
            if self.held.iter().any(|(_, r)| r.op.is_read()) {
                let (reads, writes) = std::mem::take(&mut self.held)
                    .into_iter()
                    .partition(|(_, r)| r.op.is_read());
                self.held = writes;
                self.run(Input::Requests(reads), out);
            }
            return;
        }
        let requests = std::mem::take(&mut self.held);
        self.run(Input::Requests(requests), out);
    }
}

/// Most requests held back for the replication round in flight; beyond, they go at once.
const MAX_HELD: usize = 4096;

impl KvMachine {
    /// Whether this node leads and has log entries not yet committed.
    fn replicating(&self) -> bool {
        let raft = self.replica.rsm().raft();
        raft.is_leader() && raft.commit_index() < raft.log().last_index()
    }

    fn run(&mut self, input: Input, out: &mut Vec<HostAction<KvEvent>>) {
        self.replica.step_into(input, &mut self.buf);
        let leader = self.replica.rsm().leader().unwrap_or(0);
        self.leader.store(leader, Ordering::Relaxed);
        let sessions = self.replica.sessions() as u64;
        self.sessions.store(sessions, Ordering::Relaxed);
        out.extend(self.buf.drain(..).map(|action| match action {
            Action::Persist(a) => HostAction::Persist(a),
            Action::Send { to, msg } => HostAction::Send { to, msg },
            Action::Reply { to, reply } => HostAction::Event(KvEvent::Reply { to, reply }),
            Action::Halted(reason) => HostAction::Event(KvEvent::Halted(reason)),
        }));
    }
}

/// Hands replies to the tasks waiting for them, by tag. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Router {
    waiting: Arc<Mutex<HashMap<u64, oneshot::Sender<KvResult>>>>,
}

impl Router {
    /// Registers `tag`; the receiver gets its result.
    pub fn register(&self, tag: u64) -> oneshot::Receiver<KvResult> {
        let (tx, rx) = oneshot::channel();
        self.lock().insert(tag, tx);
        rx
    }

    /// Forgets `tag` (its waiter gave up).
    pub fn forget(&self, tag: u64) {
        self.lock().remove(&tag);
    }

    /// Delivers a reply to its waiter, if it still waits. Never blocks for long: the
    /// node's task calls this.
    pub fn deliver(&self, tag: u64, result: KvResult) {
        if let Some(tx) = self.lock().remove(&tag) {
            let _ = tx.send(result);
        }
    }

    /// How many requests wait for a reply.
    pub fn waiting(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<KvResult>>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stepwise_kv::{KvOutput, Op, RsmConfig};
    use stepwise_raft::Config;

    #[test]
    fn a_one_member_machine_answers_with_the_tag() {
        let replica = Replica::new(RsmConfig::new(Config::new(1, [1]).with_seed(1))).unwrap();
        let mut m = KvMachine::new(replica);
        let mut out = Vec::new();
        for _ in 0..1000 {
            if m.replica().is_leader() {
                break;
            }
            m.step(HostInput::Tick, &mut out);
        }
        assert!(m.replica().is_leader());
        out.clear();
        let request = Request {
            id: 9,
            session: None,
            op: Op::put_any("k", "v"),
        };
        m.step(HostInput::Request(KvRequest::One(77, request)), &mut out);
        assert!(out.is_empty(), "held until the batch ends");
        m.end_batch(&mut out);
        let reply = out.iter().find_map(|a| match a {
            HostAction::Event(KvEvent::Reply { to, reply }) => Some((*to, reply.clone())),
            _ => None,
        });
        let (to, reply) = reply.expect("a one-member cluster commits at once");
        assert_eq!(to, 77);
        assert_eq!(reply.result, Ok(KvOutput::Written { version: 1 }));
    }
}
