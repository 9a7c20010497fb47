//! [`KvMachine`]: the replicated KV [`Replica`] as a [`Machine`] a runtime can host, and
//! the [`Router`] that hands each reply to the task waiting for it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use stepwise_host::{HostAction, HostInput, Machine};
use stepwise_kv::replica::{Action, Input, Replica};
use stepwise_kv::{KvOutput, KvResult, Reply, Request};
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
/// ([`with_round_batching`](KvMachine::with_round_batching)), and after a round they may
/// wait a moment for the clients it answered ([`with_linger`](KvMachine::with_linger);
/// the machine then asks to be woken, [`Machine::wake_at`]).
#[derive(Debug)]
pub struct KvMachine {
    replica: Replica,
    buf: Vec<Action>,
    held: Vec<(u64, Request)>,
    round_batching: bool,
    durable_reports: bool,
    status: Arc<Status>,
    linger: Duration,
    /// Writes in the last proposal: how many the linger waits for.
    last_proposal: usize,
    /// While lingering: when it ends.
    linger_until: Option<Instant>,
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
            status: Arc::default(),
            linger: Duration::ZERO,
            last_proposal: 0,
            linger_until: None,
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

    /// With round batching: how long the leader may wait, once a round has completed,
    /// for the clients it just answered to send their next writes (default zero: it
    /// does not wait). The writes held then go at once if there are as many as the last
    /// proposal carried, else when that many have arrived or `linger` has passed.
    ///
    /// Why: clients that each keep one request outstanding fall into two cohorts under
    /// round batching alone (those answered by a round come back while the next round,
    /// carrying the others, is in flight), so each waits for two rounds. Waiting a
    /// moment for them merges the cohorts: one round per request. Reads never wait.
    pub fn with_linger(mut self, linger: Duration) -> Self {
        self.linger = linger;
        self
    }

    /// What the replica publishes for the rest of the server (`INFO`, forwarding),
    /// updated after every step.
    pub fn status(&self) -> Arc<Status> {
        Arc::clone(&self.status)
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
            self.linger_until = None;
            return;
        }
        if self.round_batching
            && self.held.len() < MAX_HELD
            && (self.replicating() || self.lingering())
        {
            // A round is in flight (or just ended, and the clients it answered are
            // expected back): the writes wait and leave together with whatever else
            // arrives meanwhile (one entry, one sync per node per round); reads need no
            // log entry and go now.
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
        self.status.count_proposal(&requests);
        self.last_proposal = writes(&requests);
        self.linger_until = None;
        self.run(Input::Requests(requests), out);
    }

    fn wake_at(&self) -> Option<std::time::Instant> {
        self.linger_until.filter(|_| !self.held.is_empty())
    }
}

/// What a [`KvMachine`] publishes after every step, for `INFO` and for the server's own
/// decisions (forwarding needs the leader). Relaxed atomics: each value is current, the
/// set of them is not one snapshot.
#[derive(Debug, Default)]
pub struct Status {
    leader: AtomicU64,
    sessions: AtomicU64,
    term: AtomicU64,
    last_index: AtomicU64,
    commit_index: AtomicU64,
    applied_index: AtomicU64,
    batches: AtomicU64,
    writes: AtomicU64,
    reads: AtomicU64,
    reads_forwarded: AtomicU64,
    forwarded_reads_failed: AtomicU64,
}

impl Status {
    /// The leader the replica knows of (0: none).
    pub fn leader(&self) -> u64 {
        self.leader.load(Ordering::Relaxed)
    }

    /// The number of clients in the replica's session table.
    pub fn sessions(&self) -> u64 {
        self.sessions.load(Ordering::Relaxed)
    }

    /// `INFO` lines (`name:value\r\n`) for the Raft state and this node's proposals.
    pub fn info_lines(&self) -> String {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "stepwise_term:{}\r\nstepwise_last_index:{}\r\nstepwise_commit_index:{}\r\n\
             stepwise_applied_index:{}\r\nstepwise_request_batches:{}\r\n\
             stepwise_requests_batched:{}\r\nstepwise_reads_served:{}\r\n\
             stepwise_reads_forwarded:{}\r\nstepwise_forwarded_reads_failed:{}\r\n",
            get(&self.term),
            get(&self.last_index),
            get(&self.commit_index),
            get(&self.applied_index),
            get(&self.batches),
            get(&self.writes),
            get(&self.reads),
            get(&self.reads_forwarded),
            get(&self.forwarded_reads_failed),
        )
    }

    fn publish(&self, replica: &Replica) {
        let rsm = replica.rsm();
        let raft = rsm.raft();
        let set = |a: &AtomicU64, v: u64| a.store(v, Ordering::Relaxed);
        set(&self.leader, rsm.leader().unwrap_or(0));
        set(&self.sessions, replica.sessions() as u64);
        set(&self.term, raft.term());
        set(&self.last_index, raft.log().last_index());
        set(&self.commit_index, raft.commit_index());
        set(&self.applied_index, rsm.applied_index());
        let stats = raft.stats();
        set(&self.reads_forwarded, stats.reads_forwarded);
        set(&self.forwarded_reads_failed, stats.forwarded_reads_failed);
    }

    fn count_proposal(&self, requests: &[(u64, Request)]) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        let n = requests.len() as u64;
        self.writes.fetch_add(n, Ordering::Relaxed);
    }
}

/// The number of writes among `requests`.
fn writes(requests: &[(u64, Request)]) -> usize {
    requests.iter().filter(|(_, r)| !r.op.is_read()).count()
}

/// Most requests held back for the replication round in flight; beyond, they go at once.
const MAX_HELD: usize = 4096;

impl KvMachine {
    /// Whether to go on holding the writes after a round: leading, fewer held than the
    /// last proposal carried, and the linger (started now if not yet) not over.
    fn lingering(&mut self) -> bool {
        if self.linger.is_zero()
            || writes(&self.held) >= self.last_proposal
            || !self.replica.is_leader()
        {
            return false;
        }
        let now = Instant::now();
        now < *self.linger_until.get_or_insert(now + self.linger)
    }

    /// Whether this node leads and has log entries not yet committed.
    fn replicating(&self) -> bool {
        let raft = self.replica.rsm().raft();
        raft.is_leader() && raft.commit_index() < raft.log().last_index()
    }

    fn run(&mut self, input: Input, out: &mut Vec<HostAction<KvEvent>>) {
        self.replica.step_into(input, &mut self.buf);
        self.status.publish(&self.replica);
        let mut reads = 0;
        out.extend(self.buf.drain(..).map(|action| match action {
            Action::Persist(a) => HostAction::Persist(a),
            Action::Send { to, msg } => HostAction::Send { to, msg },
            Action::Reply { to, reply } => {
                // Only a Get answers with a value.
                reads += u64::from(matches!(reply.result, Ok(KvOutput::Value { .. })));
                HostAction::Event(KvEvent::Reply { to, reply })
            }
            Action::Halted(reason) => HostAction::Event(KvEvent::Halted(reason)),
        }));
        if reads > 0 {
            self.status.reads.fetch_add(reads, Ordering::Relaxed);
        }
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
        let mut m = lone_leader(Duration::ZERO);
        let mut out = Vec::new();
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

    /// A one-member leader (it commits every proposal at once, so no round is ever in
    /// flight) with the given linger.
    fn lone_leader(linger: Duration) -> KvMachine {
        let replica = Replica::new(RsmConfig::new(Config::new(1, [1]).with_seed(1))).unwrap();
        let mut m = KvMachine::new(replica).with_linger(linger);
        let mut out = Vec::new();
        for _ in 0..1000 {
            if m.replica().is_leader() {
                break;
            }
            m.step(HostInput::Tick, &mut out);
        }
        assert!(m.replica().is_leader());
        m
    }

    fn put(tag: u64) -> KvRequest {
        KvRequest::One(
            tag,
            Request {
                id: tag,
                session: None,
                op: Op::put_any(format!("k{tag}"), "v"),
            },
        )
    }

    fn get(tag: u64) -> KvRequest {
        KvRequest::One(
            tag,
            Request {
                id: tag,
                session: None,
                op: Op::Get { key: "k1".into() },
            },
        )
    }

    /// Steps `requests` as one batch and returns the tags answered.
    fn batch(m: &mut KvMachine, requests: Vec<KvRequest>) -> Vec<u64> {
        let mut out = Vec::new();
        for r in requests {
            m.step(HostInput::Request(r), &mut out);
        }
        m.end_batch(&mut out);
        out.iter()
            .filter_map(|a| match a {
                HostAction::Event(KvEvent::Reply { to, .. }) => Some(*to),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn after_a_round_writes_wait_until_as_many_as_it_carried_are_back() {
        let mut m = lone_leader(Duration::from_secs(3600));
        assert_eq!(batch(&mut m, vec![put(1), put(2), put(3)]), [1, 2, 3]);
        assert_eq!(m.wake_at(), None);
        // One of the three is back: it waits, and the runtime is asked to wake the
        // machine when the linger ends.
        assert_eq!(batch(&mut m, vec![put(4)]), Vec::<u64>::new());
        let wake = m.wake_at().expect("lingering");
        assert!(wake > Instant::now() + Duration::from_secs(3000));
        // A read does not wait.
        assert_eq!(batch(&mut m, vec![get(5)]), [5]);
        // The other two: all three go as one proposal.
        assert_eq!(batch(&mut m, vec![put(6), put(7)]), [4, 6, 7]);
        assert_eq!(m.wake_at(), None);
        let status = m.status();
        assert!(
            status
                .info_lines()
                .contains("stepwise_request_batches:2\r\n")
        );
        assert!(
            status
                .info_lines()
                .contains("stepwise_requests_batched:6\r\n")
        );
        // The one Get, answered with k1's value.
        assert!(status.info_lines().contains("stepwise_reads_served:1\r\n"));
    }

    #[test]
    fn held_writes_go_once_the_linger_is_over() {
        let mut m = lone_leader(Duration::from_micros(1));
        assert_eq!(batch(&mut m, vec![put(1), put(2)]), [1, 2]);
        let mut answered = batch(&mut m, vec![put(3)]);
        // Bounded: the linger is one microsecond of real time.
        for _ in 0..1_000_000 {
            if !answered.is_empty() {
                break;
            }
            answered = batch(&mut m, vec![]);
        }
        assert_eq!(answered, [3]);
        assert_eq!(m.wake_at(), None);
        // The next round waits for one write only (the last proposal carried one).
        assert_eq!(batch(&mut m, vec![put(4)]), [4]);
    }

    #[test]
    fn without_linger_every_batch_is_proposed_at_once() {
        let mut m = lone_leader(Duration::ZERO);
        assert_eq!(batch(&mut m, vec![put(1), put(2), put(3)]), [1, 2, 3]);
        assert_eq!(batch(&mut m, vec![put(4)]), [4]);
        assert_eq!(m.wake_at(), None);
    }
}
