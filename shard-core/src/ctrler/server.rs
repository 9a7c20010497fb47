//! The replicated controller: an [`Rsm`] running the [`Ctrler`] state machine, answering
//! [`CtrlRequest`]s with [`CtrlReply`]s.
//!
//! Changes go through the Raft log with the client's session (exactly once across
//! retries); queries are read-only and served after a ReadIndex round, so a partitioned or
//! deposed replica answers [`CtrlError::WrongLeader`] instead of an outdated configuration
//! list. Configurations are in the replicated log and snapshots, so they survive any
//! minority of crashes and full restarts, in order.
//!
//! The action contract is the [`Rsm`]'s ([`stepwise_kv::rsm`]): carry out actions in order,
//! persistence durable before anything later.
//!
//! ```
//! use stepwise_kv::RsmConfig;
//! use stepwise_raft::{Config, Persisted};
//! use stepwise_shard::ctrler::server::{Action, CtrlerServer, Input};
//! use stepwise_shard::ctrler::{CtrlOp, CtrlOutput};
//! use stepwise_shard::message::CtrlRequest;
//!
//! let mut server = CtrlerServer::new(RsmConfig::new(Config::new(1, [1])), 10).unwrap();
//! let mut disk = Persisted::default();
//! let mut replies = Vec::new();
//! let mut run = |s: &mut CtrlerServer, input, disk: &mut Persisted| {
//!     for action in s.step(input) {
//!         match action {
//!             Action::Persist(a) => { disk.apply(&a); }
//!             Action::Send { .. } => {} // to a peer controller
//!             Action::Reply { reply, .. } => replies.push(reply),
//!             Action::Halted(_) => {}
//!         }
//!     }
//! };
//! while !server.is_leader() {
//!     run(&mut server, Input::Tick, &mut disk);
//! }
//! let join = CtrlRequest { id: 1, session: None, op: CtrlOp::join(7, vec![70]), expect: None };
//! run(&mut server, Input::Request { from: 42, request: join }, &mut disk);
//! assert_eq!(replies[0].result, Ok(CtrlOutput::Changed { num: 1 }));
//! assert_eq!(server.ctrler().latest().shards, [7; 10]);
//! ```

use stepwise_kv::replica::{Origin, ServerAction, flatten, step_rsm};
use stepwise_kv::rsm::{self, Rsm, RsmConfig, RsmError, Submission, SubmitError};
use stepwise_raft::{Action as RaftAction, Message, NodeId, Persisted};

use super::{CtrlCommand, CtrlError, CtrlResult, Ctrler};
use crate::message::{CtrlReply, CtrlRequest};

/// Everything that can happen to a [`CtrlerServer`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// One unit of logical time.
    Tick,
    /// A Raft message from a peer controller server.
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
        request: CtrlRequest,
    },
}

/// What the adapter must do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// A Raft persistence action: durable before any later action.
    Persist(RaftAction),
    /// Send a Raft message to a peer controller server.
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
        reply: CtrlReply,
    },
    /// The server stopped (see [`rsm::Action::Halted`]).
    Halted(String),
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

/// A replicated controller server. See the [module docs](self).
#[derive(Debug)]
pub struct CtrlerServer {
    rsm: Rsm<Ctrler, Origin>,
    buf: Vec<rsm::Action<CtrlResult, Origin>>,
}

impl CtrlerServer {
    /// A brand-new server whose configuration 0 has `nshards` shards.
    pub fn new(config: RsmConfig, nshards: usize) -> Result<Self, RsmError> {
        Self::restore(config, Persisted::default(), nshards)
    }

    /// Rebuilds a server after a restart from what it persisted.
    pub fn restore(
        config: RsmConfig,
        persisted: Persisted,
        nshards: usize,
    ) -> Result<Self, RsmError> {
        Ok(CtrlerServer {
            rsm: Rsm::restore(config, persisted, Ctrler::new(nshards))?,
            buf: Vec::new(),
        })
    }

    /// The replicated-state-machine layer underneath.
    pub fn rsm(&self) -> &Rsm<Ctrler, Origin> {
        &self.rsm
    }

    /// The configurations as applied here.
    pub fn ctrler(&self) -> &Ctrler {
        self.rsm.state()
    }

    /// Whether this server leads the current term.
    pub fn is_leader(&self) -> bool {
        self.rsm.is_leader()
    }

    /// Feeds one input and returns the actions to carry out, in order.
    pub fn step(&mut self, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        self.step_into(input, &mut out);
        out
    }

    /// Like [`CtrlerServer::step`], but appends the actions to `out`.
    pub fn step_into(&mut self, input: Input, out: &mut Vec<Action>) {
        let input = match input {
            Input::Tick => rsm::Input::Tick,
            Input::Receive { from, msg } => rsm::Input::Receive { from, msg },
            Input::Request { from, request } => {
                let tag = Origin {
                    client: from,
                    id: request.id,
                };
                match request.op.as_read() {
                    Some(query) => rsm::Input::Query { tag, query },
                    None => rsm::Input::Submit(Submission {
                        tag,
                        session: request.session,
                        command: CtrlCommand {
                            op: request.op,
                            expect: request.expect,
                        },
                    }),
                }
            }
        };
        step_rsm(
            &mut self.rsm,
            input,
            &mut self.buf,
            out,
            |tag, result, out| {
                out.push(Action::Reply {
                    to: tag.client,
                    reply: CtrlReply {
                        id: tag.id,
                        result: flatten(result),
                    },
                })
            },
        );
    }
}

impl From<SubmitError> for CtrlError {
    fn from(e: SubmitError) -> Self {
        match e {
            SubmitError::NotLeader { leader } => CtrlError::WrongLeader { leader },
            SubmitError::Stale => CtrlError::Stale,
        }
    }
}
