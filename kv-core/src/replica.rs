//! The replicated KV server: an [`Rsm`] running the [`Kv`] store, answering clients'
//! [`Request`]s with [`Reply`]s.
//!
//! Writes go through the Raft log (tagged with the client's session, if any, for
//! exactly-once execution); Gets are read-only queries served after a ReadIndex round, so a
//! deposed leader never answers from stale state. With
//! [`Config::follower_reads`](stepwise_raft::Config::follower_reads) a follower serves Gets
//! as well (it asks the leader for the read index, see [`crate::rsm`]); clerks send their
//! Gets to one with [`ClerkConfig::read_from`](crate::clerk::ClerkConfig::read_from). A
//! replica that cannot execute a request
//! answers [`KvError::WrongLeader`] with the leader it knows of, and the
//! [`Clerk`](crate::clerk::Clerk) retries there.
//!
//! The action contract is the [`Rsm`]'s (see [`crate::rsm`]): carry out actions in order,
//! persistence durable before anything later.
//!
//! Other servers built on an [`Rsm`] (the sharded service's controller and groups) share
//! its translation of the layer's actions: [`step_rsm`] with [`ServerAction`], and
//! [`flatten`] for client results.
//!
//! ```
//! use stepwise_kv::replica::{Action, Input, Replica};
//! use stepwise_kv::{KvOutput, Op, Request, RsmConfig};
//! use stepwise_raft::{Config, Persisted};
//!
//! let mut replica = Replica::new(RsmConfig::new(Config::new(1, [1]))).unwrap();
//! let mut disk = Persisted::default();
//! let mut replies = Vec::new();
//! let mut run = |r: &mut Replica, input, disk: &mut Persisted| {
//!     for action in r.step(input) {
//!         match action {
//!             Action::Persist(a) => { disk.apply(&a); }
//!             Action::Send { .. } => {} // to a peer replica
//!             Action::Reply { to, reply } => replies.push((to, reply)),
//!             Action::Halted(_) => {}
//!         }
//!     }
//! };
//! while !replica.is_leader() {
//!     run(&mut replica, Input::Tick, &mut disk);
//! }
//! let put = Request { id: 1, session: None, op: Op::put("k", "v", 0) };
//! run(&mut replica, Input::Request { from: 42, request: put }, &mut disk);
//! assert_eq!(replies[0].0, 42);
//! assert_eq!(replies[0].1.result, Ok(KvOutput::Written { version: 1 }));
//! ```

use stepwise_raft::{Action as RaftAction, Message, NodeId, Persisted};

use crate::kv::{Kv, KvError, KvResult, Op};
use crate::message::{Reply, Request};
use crate::rsm::{self, Rsm, RsmConfig, RsmError, StateMachine, Submission, SubmitError};

/// Where a request came from: the client's address (as the adapter numbers connections or
/// clients) and the request's id. The [`Rsm`] tag of a replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Origin {
    /// The client's address, opaque to the replica.
    pub client: u64,
    /// The request's id.
    pub id: u64,
}

/// Everything that can happen to a [`Replica`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// One unit of logical time.
    Tick,
    /// A Raft message from a peer replica.
    Receive {
        /// The sender's Raft id.
        from: NodeId,
        /// The message.
        msg: Message,
    },
    /// The adapter's log is durable through `index` (entry term `term`): see
    /// [`rsm::Input::LogDurable`].
    LogDurable {
        /// The last durable log index.
        index: stepwise_raft::Index,
        /// The term of the entry at `index`.
        term: stepwise_raft::Term,
    },
    /// A client's request; the reply goes back to `from`.
    Request {
        /// The client's address.
        from: u64,
        /// The request.
        request: Request,
    },
    /// Several requests that arrived together: their writes share one log entry (one
    /// Raft round), their reads one ReadIndex round, each gets its own reply. The
    /// requests of a batch are taken as concurrent: its reads are served from the state
    /// before its writes, so a client that needs to read its own write waits for the
    /// write's reply first (as the [`Clerk`](crate::clerk::Clerk) and kv-server's
    /// connections do).
    Requests(Vec<(u64, Request)>),
    /// End the session of the client that tagged its writes with `client`
    /// ([`Session::client`](crate::rsm::Session)), so the replicated session table does not
    /// keep it forever ([`rsm::Input::EndSession`]): proposed on the leader, ignored
    /// elsewhere, no reply. Only once that client can never retry (see "Ending sessions"
    /// in [`crate::rsm`]).
    EndSession {
        /// The session's client id.
        client: u64,
    },
}

/// What the adapter must do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// A Raft persistence action: durable before any later action (see
    /// [`rsm::Action::Persist`]).
    Persist(RaftAction),
    /// Send a Raft message to a peer replica.
    Send {
        /// The destination.
        to: NodeId,
        /// The message.
        msg: Message,
    },
    /// Send this reply to the client at `to`.
    Reply {
        /// The client's address.
        to: u64,
        /// The reply.
        reply: Reply,
    },
    /// The replica stopped (see [`rsm::Action::Halted`]).
    Halted(String),
}

/// The actions of a server built on an [`Rsm`] that carry the layer's own duties through
/// unchanged: persistence, messages to peer replicas, and halting. See [`step_rsm`].
pub trait ServerAction: Sized {
    /// The layer's [`rsm::Action::Persist`].
    fn persist(action: RaftAction) -> Self;
    /// The layer's [`rsm::Action::Send`].
    fn send(to: NodeId, msg: Message) -> Self;
    /// The layer's [`rsm::Action::Halted`].
    fn halted(reason: String) -> Self;
}

impl ServerAction for Action {
    fn persist(action: RaftAction) -> Self {
        Action::Persist(action)
    }
    fn send(to: NodeId, msg: Message) -> Self {
        Action::Send { to, msg }
    }
    fn halted(reason: String) -> Self {
        Action::Halted(reason)
    }
}

/// Steps `rsm` with `input` and appends its actions to `out`, in order, as the server's
/// own: persistence, messages and halts one to one ([`ServerAction`]), replies through
/// `reply` (which may push any number of actions), leader changes dropped. `buf` is a
/// buffer reused across calls (left empty).
pub fn step_rsm<S, T, A>(
    rsm: &mut Rsm<S, T>,
    input: rsm::Input<S::Command, S::Query, T>,
    buf: &mut Vec<rsm::Action<S::Output, T>>,
    out: &mut Vec<A>,
    mut reply: impl FnMut(T, Result<S::Output, SubmitError>, &mut Vec<A>),
) where
    S: StateMachine,
    A: ServerAction,
{
    buf.clear();
    rsm.step_into(input, buf);
    for action in buf.drain(..) {
        match action {
            rsm::Action::Persist(a) => out.push(A::persist(a)),
            rsm::Action::Send { to, msg } => out.push(A::send(to, msg)),
            rsm::Action::Reply { tag, result } => reply(tag, result, out),
            rsm::Action::LeaderChanged { .. } => {}
            rsm::Action::Halted(reason) => out.push(A::halted(reason)),
        }
    }
}

/// Turns the layer's outcome of a command or query into the client's result: the state
/// machine's own result, or the client-facing error for [`SubmitError`].
pub fn flatten<R, E: From<SubmitError>>(result: Result<Result<R, E>, SubmitError>) -> Result<R, E> {
    result.unwrap_or_else(|e| Err(E::from(e)))
}

impl From<SubmitError> for KvError {
    fn from(e: SubmitError) -> Self {
        match e {
            SubmitError::NotLeader { leader } => KvError::WrongLeader { leader },
            SubmitError::Stale => KvError::Stale,
        }
    }
}

/// A replicated KV server. See the [module docs](self).
#[derive(Debug)]
pub struct Replica {
    rsm: Rsm<Kv, Origin>,
    buf: Vec<rsm::Action<KvResult, Origin>>,
}

impl Replica {
    /// A brand-new replica.
    pub fn new(config: RsmConfig) -> Result<Self, RsmError> {
        Self::restore(config, Persisted::default())
    }

    /// Rebuilds a replica after a restart from what it persisted.
    pub fn restore(config: RsmConfig, persisted: Persisted) -> Result<Self, RsmError> {
        Ok(Replica {
            rsm: Rsm::restore(config, persisted, Kv::new())?,
            buf: Vec::new(),
        })
    }

    /// The replicated-state-machine layer underneath.
    pub fn rsm(&self) -> &Rsm<Kv, Origin> {
        &self.rsm
    }

    /// The store (as applied here).
    pub fn kv(&self) -> &Kv {
        self.rsm.state()
    }

    /// Whether this replica leads the current term.
    pub fn is_leader(&self) -> bool {
        self.rsm.is_leader()
    }

    /// Number of clients in the session table (as applied here).
    pub fn sessions(&self) -> usize {
        self.rsm.sessions().len()
    }

    /// Feeds one input and returns the actions to carry out, in order.
    pub fn step(&mut self, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        self.step_into(input, &mut out);
        out
    }

    /// Like [`Replica::step`], but appends the actions to `out`.
    pub fn step_into(&mut self, input: Input, out: &mut Vec<Action>) {
        match input {
            Input::Tick => self.rsm_step(rsm::Input::Tick, out),
            Input::Receive { from, msg } => self.rsm_step(rsm::Input::Receive { from, msg }, out),
            Input::Request { from, request } => {
                let input = match request_input(from, request) {
                    Ok((tag, key)) => rsm::Input::Query { tag, query: key },
                    Err(write) => rsm::Input::Submit(write),
                };
                self.rsm_step(input, out);
            }
            Input::Requests(requests) => {
                // Reads share one ReadIndex round, writes one log entry.
                let mut reads = Vec::with_capacity(requests.len());
                let mut writes = Vec::with_capacity(requests.len());
                for (from, request) in requests {
                    match request_input(from, request) {
                        Ok(read) => reads.push(read),
                        Err(write) => writes.push(write),
                    }
                }
                if !reads.is_empty() {
                    self.rsm_step(rsm::Input::QueryBatch(reads), out);
                }
                if !writes.is_empty() {
                    self.rsm_step(rsm::Input::SubmitBatch(writes), out);
                }
            }
            Input::EndSession { client } => self.rsm_step(rsm::Input::EndSession { client }, out),
            Input::LogDurable { index, term } => {
                self.rsm_step(rsm::Input::LogDurable { index, term }, out)
            }
        }
    }

    fn rsm_step(&mut self, input: KvInput, out: &mut Vec<Action>) {
        step_rsm(
            &mut self.rsm,
            input,
            &mut self.buf,
            out,
            |tag, result, out| {
                out.push(Action::Reply {
                    to: tag.client,
                    reply: Reply {
                        id: tag.id,
                        result: flatten(result),
                    },
                })
            },
        );
    }
}

/// The layer's input for the KV store.
type KvInput = rsm::Input<Op, <Kv as StateMachine>::Query, Origin>;

/// A request as the layer sees it: a Get is a query (`Ok`), anything else a write.
fn request_input(
    from: u64,
    request: Request,
) -> Result<(Origin, <Kv as StateMachine>::Query), Submission<Op, Origin>> {
    let tag = Origin {
        client: from,
        id: request.id,
    };
    match request.op {
        Op::Get { key } => Ok((tag, key)),
        op => Err(Submission {
            tag,
            session: request.session,
            command: op,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rsm::Session;
    use stepwise_raft::Config;

    /// Three replicas exchanging messages through a queue until it is empty.
    fn settle(replicas: &mut [Replica], queue: &mut Vec<(u64, Action)>) -> Vec<Reply> {
        let mut replies = Vec::new();
        while !queue.is_empty() {
            for (from, action) in std::mem::take(queue) {
                match action {
                    Action::Send { to, msg } => {
                        let out = replicas[to as usize].step(Input::Receive { from, msg });
                        queue.extend(out.into_iter().map(|a| (to, a)));
                    }
                    Action::Reply { reply, .. } => replies.push(reply),
                    Action::Persist(_) | Action::Halted(_) => {}
                }
            }
        }
        replies
    }

    /// The leader applies the commands it proposed from memory (`view_command`), the
    /// followers decode them from the log: every kind of operation leaves the same store
    /// and the same session table everywhere.
    #[test]
    fn the_leader_applying_from_memory_ends_in_the_followers_state() {
        let ids = [0u64, 1, 2];
        let mut replicas: Vec<Replica> = ids
            .iter()
            .map(|&id| Replica::new(RsmConfig::new(Config::new(id, ids).with_seed(id))).unwrap())
            .collect();
        let mut queue = Vec::new();
        while !replicas.iter().any(Replica::is_leader) {
            for (id, r) in replicas.iter_mut().enumerate() {
                queue.extend(r.step(Input::Tick).into_iter().map(|a| (id as u64, a)));
            }
            settle(&mut replicas, &mut queue);
        }
        let l = replicas.iter().position(Replica::is_leader).unwrap();
        let ops = [
            Op::put("a", "1", 0),
            Op::put("a", "2", 1),
            Op::put("a", "3", 7),
            Op::put_any("b", vec![9u8; 300]),
            Op::append("b", "x"),
            Op::append_return("c", "y"),
            Op::incr("n", 5),
            Op::incr("b", 1),
            Op::delete("a"),
            Op::get("b"),
        ];
        let requests = ops
            .into_iter()
            .enumerate()
            .map(|(k, op)| {
                let session = Some(Session {
                    client: 7,
                    seq: k as u64 + 1,
                });
                (
                    7,
                    Request {
                        id: k as u64,
                        session,
                        op,
                    },
                )
            })
            .collect();
        let out = replicas[l].step(Input::Requests(requests));
        queue.extend(out.into_iter().map(|a| (l as u64, a)));
        let mut replies = settle(&mut replicas, &mut queue);
        // One more round (a heartbeat) tells the followers the commit index.
        for _ in 0..10 {
            let out = replicas[l].step(Input::Tick);
            queue.extend(out.into_iter().map(|a| (l as u64, a)));
            replies.extend(settle(&mut replicas, &mut queue));
        }
        assert_eq!(replies.len(), 10, "{replies:?}");
        assert!(replies.iter().any(|r| r.result == Err(KvError::Version)));
        assert!(replies.iter().any(|r| r.result == Err(KvError::NotInteger)));
        for r in &replicas {
            assert_eq!(r.rsm().applied_index(), replicas[l].rsm().applied_index());
            assert_eq!(r.kv(), replicas[l].kv());
            assert_eq!(r.rsm().sessions(), replicas[l].rsm().sessions());
        }
        assert_eq!(replicas[l].kv().get(b"b").map(|(v, _)| v.len()), Some(301));
    }

    #[test]
    fn end_session_removes_the_clients_entry() {
        let mut r = Replica::new(RsmConfig::new(Config::new(1, [1]))).unwrap();
        while !r.is_leader() {
            r.step(Input::Tick);
        }
        for client in [5, 6] {
            let request = Request {
                id: client,
                session: Some(Session { client, seq: 1 }),
                op: Op::incr("n", 1),
            };
            r.step(Input::Request {
                from: client,
                request,
            });
        }
        assert_eq!(r.sessions(), 2);
        let actions = r.step(Input::EndSession { client: 5 });
        assert!(actions.iter().all(|a| matches!(a, Action::Persist(_))));
        assert_eq!(r.sessions(), 1);
        assert_eq!(r.rsm().sessions().get(6).map(|e| e.seq), Some(1));
    }
}
