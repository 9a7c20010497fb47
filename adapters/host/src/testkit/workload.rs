//! Client side of the register service: an [`Observer`] that routes events, and a
//! [`Workload`] of concurrent clients that records a history for the linearizability
//! checker.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use stepwise_linearizability::models::{Register, RegisterInput, RegisterOutput};
use stepwise_linearizability::{CheckResult, History, SharedHistory};
use stepwise_raft::{NodeId, Term};

use super::register::{OpId, RegisterEvent, RegisterOp, RegisterReply, RegisterRequest};

/// Routes the events of every node of a register cluster: replies to the client waiting
/// for them, applied writes into a per-node list that tests can wait on.
#[derive(Debug, Default)]
pub struct Observer {
    state: Mutex<ObserverState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct ObserverState {
    waiting: BTreeMap<OpId, mpsc::Sender<RegisterReply>>,
    applied: BTreeMap<NodeId, Vec<OpId>>,
    /// The highest term announced with a leader, and that leader.
    leader: Option<(Term, NodeId)>,
}

impl Observer {
    /// A shared observer.
    pub fn new() -> Arc<Self> {
        Arc::new(Observer::default())
    }

    fn lock(&self) -> MutexGuard<'_, ObserverState> {
        // Every update is a single insert, remove or push: a panicking holder leaves the
        // state consistent, so poisoning is ignored.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Handles an event of `node`.
    pub fn on_event(&self, node: NodeId, event: RegisterEvent) {
        let mut state = self.lock();
        match event {
            RegisterEvent::Reply { id, reply } => {
                if let Some(tx) = state.waiting.remove(&id) {
                    // The client may have given up; then nobody listens.
                    let _ = tx.send(reply);
                }
            }
            RegisterEvent::Applied { id, .. } => {
                state.applied.entry(node).or_default().push(id);
                self.changed.notify_all();
            }
            RegisterEvent::Leader {
                term,
                leader: Some(leader),
            } => {
                if state.leader.is_none_or(|(t, _)| term > t) {
                    state.leader = Some((term, leader));
                    self.changed.notify_all();
                }
            }
            RegisterEvent::Leader { leader: None, .. } => {}
        }
    }

    /// An event sink for `node`, for a runtime to call.
    pub fn sink(self: &Arc<Self>, node: NodeId) -> impl FnMut(RegisterEvent) + Send + 'static {
        let this = Arc::clone(self);
        move |event| this.on_event(node, event)
    }

    /// Forgets what `node` applied: call it before restarting `node`, which applies its
    /// whole log again.
    pub fn restarted(&self, node: NodeId) {
        self.lock().applied.remove(&node);
    }

    /// The leader of the highest term any node announced a leader for, if any.
    pub fn leader(&self) -> Option<NodeId> {
        self.lock().leader.map(|(_, leader)| leader)
    }

    /// The writes `node` applied, in order.
    pub fn applied(&self, node: NodeId) -> Vec<OpId> {
        self.lock().applied.get(&node).cloned().unwrap_or_default()
    }

    fn expect(&self, id: OpId) -> mpsc::Receiver<RegisterReply> {
        let (tx, rx) = mpsc::channel();
        self.lock().waiting.insert(id, tx);
        rx
    }

    fn forget(&self, id: OpId) {
        self.lock().waiting.remove(&id);
    }

    /// Waits until `done` holds for the applied lists (by node), or `timeout` passes.
    /// Returns whether it holds. `done` runs under the observer's lock: it must not call
    /// the observer.
    pub fn wait_until(
        &self,
        timeout: Duration,
        mut done: impl FnMut(&BTreeMap<NodeId, Vec<OpId>>) -> bool,
    ) -> bool {
        self.wait(timeout, |state| done(&state.applied))
    }

    /// Waits until some node announces a leader (or `timeout` passes) and returns the
    /// leader of the highest such term.
    pub fn wait_leader(&self, timeout: Duration) -> Option<NodeId> {
        self.wait(timeout, |state| state.leader.is_some());
        self.leader()
    }

    /// Waits until the leader of the highest term announced so far is not `old` (or
    /// `timeout` passes) and returns it.
    pub fn wait_new_leader(&self, old: NodeId, timeout: Duration) -> Option<NodeId> {
        self.wait(timeout, |state| {
            state.leader.is_some_and(|(_, leader)| leader != old)
        })
        .then(|| self.leader())
        .flatten()
    }

    fn wait(&self, timeout: Duration, mut done: impl FnMut(&ObserverState) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        loop {
            if done(&state) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = self
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Waits until every node in `nodes` has applied the same writes and these include
    /// every id in `required`; returns that common sequence, or a description of the
    /// difference after `timeout`.
    pub fn wait_converged(
        &self,
        nodes: &[NodeId],
        required: &[OpId],
        timeout: Duration,
    ) -> Result<Vec<OpId>, String> {
        let converged = |applied: &BTreeMap<NodeId, Vec<OpId>>| {
            let Some(first) = applied.get(&nodes[0]) else {
                return false;
            };
            nodes.iter().all(|n| applied.get(n) == Some(first))
                && required.iter().all(|id| first.contains(id))
        };
        if self.wait_until(timeout, converged) {
            return Ok(self.applied(nodes[0]));
        }
        let state = self.lock();
        let lens: Vec<(NodeId, usize)> = nodes
            .iter()
            .map(|n| (*n, state.applied.get(n).map_or(0, Vec::len)))
            .collect();
        let missing: Vec<OpId> = required
            .iter()
            .filter(|id| {
                !nodes
                    .iter()
                    .all(|n| state.applied.get(n).is_some_and(|a| a.contains(id)))
            })
            .copied()
            .collect();
        Err(format!(
            "no convergence within {timeout:?}: applied lengths {lens:?}, acknowledged writes missing somewhere: {missing:?}"
        ))
    }
}

/// Concurrent clients reading and writing the register.
///
/// Each client runs its operations one after another. It sends each to the node it
/// believes leads, follows `NotLeader` hints (the operation had no effect, so it is
/// retried as the same operation), and gives up on an operation after `op_timeout`
/// without an answer or on `Unknown`, leaving it *pending* in the history (it may or may
/// not take effect). Every write writes a value no other write uses (its id).
#[derive(Clone, Debug)]
pub struct Workload {
    /// Number of concurrent clients.
    pub clients: usize,
    /// Operations per client.
    pub ops_per_client: usize,
    /// Percentage of reads (the rest are writes).
    pub read_percent: u32,
    /// How long one attempt waits for an answer.
    pub op_timeout: Duration,
    /// The whole run stops starting operations after this long.
    pub deadline: Duration,
    /// Seed of the clients' choices.
    pub seed: u64,
    /// Id of the first client (the others follow). Operation ids are
    /// `(client + 1) << 32 | sequence`, so workloads run one after another against the
    /// same cluster need disjoint client ranges.
    pub first_client: u64,
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            clients: 3,
            ops_per_client: 50,
            read_percent: 40,
            op_timeout: Duration::from_millis(1000),
            deadline: Duration::from_secs(20),
            seed: 1,
            first_client: 0,
        }
    }
}

/// What a [`Workload`] did.
#[derive(Debug)]
pub struct Outcome {
    /// Every operation, complete or pending.
    pub history: History<RegisterInput<u64>, RegisterOutput<u64>>,
    /// Writes acknowledged as `Written`.
    pub acked_writes: Vec<OpId>,
    /// Operations that got a definite answer.
    pub completed: usize,
}

impl Outcome {
    /// Checks the history against a register starting at 0.
    pub fn check(&self, timeout: Duration) -> CheckResult {
        stepwise_linearizability::check(&Register::new(0u64), &self.history, Some(timeout))
    }

    /// The checks every cluster test makes of a run: at least half the operations
    /// completed, the history is linearizable, and the `members` converge (within
    /// `converge`) on the same applied writes, every acknowledged one included, each once.
    ///
    /// # Panics
    /// When a check fails (this is for tests).
    pub fn assert_sound(&self, members: &[NodeId], observer: &Observer, converge: Duration) {
        assert!(
            self.completed >= self.history.len() / 2,
            "too few operations completed: {} of {}",
            self.completed,
            self.history.len()
        );
        let verdict = self.check(Duration::from_secs(20));
        assert!(verdict.is_ok(), "not linearizable: {verdict:?}");
        let applied = observer
            .wait_converged(members, &self.acked_writes, converge)
            .unwrap();
        let mut unique = applied.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), applied.len(), "a write was applied twice");
    }
}

impl Workload {
    /// Runs the clients on scoped threads until they finish. `submit(node, request)`
    /// hands a request to a node and returns `false` if that node is not running;
    /// `observer` must receive every node's events.
    pub fn run(
        &self,
        nodes: &[NodeId],
        observer: &Observer,
        submit: &(dyn Fn(NodeId, RegisterRequest) -> bool + Sync),
    ) -> Outcome {
        assert!(!nodes.is_empty(), "a workload needs at least one node");
        let history = SharedHistory::new();
        let acked = Mutex::new(Vec::new());
        let completed = Mutex::new(0usize);
        let deadline = Instant::now() + self.deadline;
        std::thread::scope(|scope| {
            for client in 0..self.clients {
                let (history, acked, completed) = (&history, &acked, &completed);
                scope.spawn(move || {
                    let mut c = Client {
                        id: self.first_client + client as u64,
                        nodes,
                        leader: nodes[client % nodes.len()],
                        rng: oorandom::Rand32::new(
                            self.seed ^ ((self.first_client + client as u64) << 40),
                        ),
                        observer,
                        submit,
                        op_timeout: self.op_timeout,
                    };
                    for seq in 0..self.ops_per_client as u64 {
                        if Instant::now() >= deadline {
                            break;
                        }
                        let id = ((c.id + 1) << 32) | seq;
                        let op = if c.rng.rand_range(0..100) < self.read_percent {
                            RegisterOp::Read
                        } else {
                            RegisterOp::Write(id)
                        };
                        let input = match op {
                            RegisterOp::Read => RegisterInput::Read,
                            RegisterOp::Write(v) => RegisterInput::Write(v),
                        };
                        let op_id = history.begin(c.id, input);
                        let output = match c.call(RegisterRequest { id, op }, deadline) {
                            Some(RegisterReply::Value(v)) => RegisterOutput::Value(v),
                            Some(RegisterReply::Written) => {
                                acked
                                    .lock()
                                    .unwrap_or_else(PoisonError::into_inner)
                                    .push(id);
                                RegisterOutput::Ack
                            }
                            _ => continue, // pending: may or may not have taken effect
                        };
                        // A fresh op id from `begin` above: ending it cannot fail.
                        let _ = history.end(op_id, output);
                        *completed.lock().unwrap_or_else(PoisonError::into_inner) += 1;
                    }
                });
            }
        });
        Outcome {
            history: history.snapshot(),
            acked_writes: acked.into_inner().unwrap_or_else(PoisonError::into_inner),
            completed: completed
                .into_inner()
                .unwrap_or_else(PoisonError::into_inner),
        }
    }
}

struct Client<'a> {
    id: u64,
    nodes: &'a [NodeId],
    leader: NodeId,
    rng: oorandom::Rand32,
    observer: &'a Observer,
    submit: &'a (dyn Fn(NodeId, RegisterRequest) -> bool + Sync),
    op_timeout: Duration,
}

impl Client<'_> {
    fn next_node(&mut self) {
        let i = self
            .nodes
            .iter()
            .position(|n| *n == self.leader)
            .unwrap_or(0);
        self.leader = self.nodes[(i + 1) % self.nodes.len()];
    }

    /// Sends `req` until it gets a definite answer (`Value` or `Written`), an `Unknown`,
    /// or times out (`None`).
    fn call(&mut self, req: RegisterRequest, deadline: Instant) -> Option<RegisterReply> {
        // Retries after a refusal cannot change the outcome, so they are bounded only by
        // time: up to three attempt timeouts (elections take about one second at most).
        let give_up = (Instant::now() + 3 * self.op_timeout).min(deadline + self.op_timeout);
        while Instant::now() < give_up {
            let rx = self.observer.expect(req.id);
            if !(self.submit)(self.leader, req) {
                self.observer.forget(req.id);
                self.next_node();
                backoff();
                continue;
            }
            match rx.recv_timeout(self.op_timeout) {
                Ok(RegisterReply::NotLeader(hint)) => {
                    match hint.filter(|h| self.nodes.contains(h) && *h != self.leader) {
                        Some(h) => self.leader = h,
                        None => {
                            self.next_node();
                            backoff(); // no leader known: an election is under way
                        }
                    }
                }
                Ok(RegisterReply::Unknown) => return Some(RegisterReply::Unknown),
                Ok(answer) => return Some(answer),
                Err(_) => {
                    self.observer.forget(req.id);
                    self.next_node();
                    return None;
                }
            }
        }
        None
    }
}

/// Pause before retrying a refused request (a client's retry policy, not synchronisation).
fn backoff() {
    std::thread::sleep(Duration::from_millis(10));
}
