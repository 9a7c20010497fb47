//! The replicated KV server: an [`Rsm`] running the [`Kv`] store, answering clients'
//! [`Request`]s with [`Reply`]s.
//!
//! Writes go through the Raft log (tagged with the client's session, if any, for
//! exactly-once execution); Gets are read-only queries served after a ReadIndex round, so a
//! deposed leader never answers from stale state. A replica that cannot execute a request
//! answers [`KvError::WrongLeader`] with the leader it knows of, and the
//! [`Clerk`](crate::clerk::Clerk) retries there.
//!
//! The action contract is the [`Rsm`]'s (see [`crate::rsm`]): carry out actions in order,
//! persistence durable before anything later.
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
use crate::rsm::{self, Rsm, RsmConfig, RsmError, Submission, SubmitError};

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
    /// A client's request; the reply goes back to `from`.
    Request {
        /// The client's address.
        from: u64,
        /// The request.
        request: Request,
    },
    /// Several requests that arrived together: their writes share one log entry (one
    /// Raft round), each gets its own reply.
    Requests(Vec<(u64, Request)>),
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

    /// Feeds one input and returns the actions to carry out, in order.
    pub fn step(&mut self, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        self.step_into(input, &mut out);
        out
    }

    /// Like [`Replica::step`], but appends the actions to `out`.
    pub fn step_into(&mut self, input: Input, out: &mut Vec<Action>) {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        match input {
            Input::Tick => self.rsm.step_into(rsm::Input::Tick, &mut buf),
            Input::Receive { from, msg } => self
                .rsm
                .step_into(rsm::Input::Receive { from, msg }, &mut buf),
            Input::Request { from, request } => {
                let origin = Origin {
                    client: from,
                    id: request.id,
                };
                let input = match request.op {
                    Op::Get { key } => rsm::Input::Query {
                        tag: origin,
                        query: key,
                    },
                    op => rsm::Input::Submit(Submission {
                        tag: origin,
                        session: request.session,
                        command: op,
                    }),
                };
                self.rsm.step_into(input, &mut buf);
            }
            Input::Requests(requests) => {
                let mut writes = Vec::with_capacity(requests.len());
                for (from, request) in requests {
                    let tag = Origin {
                        client: from,
                        id: request.id,
                    };
                    match request.op {
                        Op::Get { key } => self
                            .rsm
                            .step_into(rsm::Input::Query { tag, query: key }, &mut buf),
                        op => writes.push(Submission {
                            tag,
                            session: request.session,
                            command: op,
                        }),
                    }
                }
                if !writes.is_empty() {
                    self.rsm
                        .step_into(rsm::Input::SubmitBatch(writes), &mut buf);
                }
            }
        }
        for action in buf.drain(..) {
            out.push(match action {
                rsm::Action::Persist(a) => Action::Persist(a),
                rsm::Action::Send { to, msg } => Action::Send { to, msg },
                rsm::Action::Reply { tag, result } => Action::Reply {
                    to: tag.client,
                    reply: Reply {
                        id: tag.id,
                        result: flatten(result),
                    },
                },
                rsm::Action::LeaderChanged { .. } => continue,
                rsm::Action::Halted(reason) => Action::Halted(reason),
            });
        }
        self.buf = buf;
    }
}

/// Turns the layer's outcome into the client's result.
fn flatten(result: Result<KvResult, SubmitError>) -> KvResult {
    match result {
        Ok(r) => r,
        Err(SubmitError::NotLeader { leader }) => Err(KvError::WrongLeader { leader }),
        Err(SubmitError::Stale) => Err(KvError::Stale),
    }
}
