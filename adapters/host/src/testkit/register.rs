//! [`RegisterMachine`]: one replicated `u64` register on Raft.

use std::collections::BTreeMap;

use bytes::Bytes;
use stepwise_raft::{
    Action, Config, ConfigError, Index, Input, Node, NodeId, Payload, Persisted, Term,
};

use crate::machine::{HostAction, HostInput, Machine, pass_through};

/// Identifies one client operation. Unique per operation (the workload uses
/// `client << 32 | sequence`).
pub type OpId = u64;

/// What a client asks the register.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RegisterOp {
    /// Read the value (linearizable, through Raft's ReadIndex).
    Read,
    /// Replace the value (through the Raft log).
    Write(u64),
}

/// A client request: an operation and its id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegisterRequest {
    /// The operation's id, echoed in the reply.
    pub id: OpId,
    /// The operation.
    pub op: RegisterOp,
}

/// The answer to a [`RegisterRequest`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegisterReply {
    /// The read's result.
    Value(u64),
    /// The write is committed and applied.
    Written,
    /// Not served here (this node is not the leader): no effect. Try the hinted leader.
    NotLeader(Option<NodeId>),
    /// The write was appended but leadership changed before it was applied here: it may or
    /// may not take effect.
    Unknown,
}

/// What a [`RegisterMachine`] tells its clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegisterEvent {
    /// The answer to a request submitted to this node.
    Reply {
        /// The request's id.
        id: OpId,
        /// The answer.
        reply: RegisterReply,
    },
    /// This node learned of a new term or leader.
    Leader {
        /// The current term.
        term: Term,
        /// Its leader, if known.
        leader: Option<NodeId>,
    },
    /// A write was applied at this log index (on every node, in log order).
    Applied {
        /// The entry's index.
        index: Index,
        /// The write's id.
        id: OpId,
    },
}

/// A replicated register: writes go through the Raft log, reads through ReadIndex.
///
/// A proposal is the write's id and value, 16 bytes little-endian. The machine takes no
/// snapshots, so after a restart it rebuilds its state by re-applying the whole log.
#[derive(Debug)]
pub struct RegisterMachine {
    node: Node,
    value: u64,
    applied_index: Index,
    applied: Vec<OpId>,
    /// Writes proposed here and not yet answered: id -> (index, term).
    writes: BTreeMap<OpId, (Index, Term)>,
    /// Reads confirmed by ReadIndex, waiting for the apply index: (index, id).
    reads: Vec<(Index, OpId)>,
    /// Entries that did not decode (never produced by this machine).
    malformed: u64,
    scratch: Vec<Action>,
}

impl RegisterMachine {
    /// A fresh member with an empty log.
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        Self::restore(config, Persisted::default())
    }

    /// A member restarting from its persisted state.
    pub fn restore(config: Config, persisted: Persisted) -> Result<Self, ConfigError> {
        Ok(RegisterMachine {
            node: Node::restore(config, persisted)?,
            value: 0,
            applied_index: 0,
            applied: Vec::new(),
            writes: BTreeMap::new(),
            reads: Vec::new(),
            malformed: 0,
            scratch: Vec::new(),
        })
    }

    /// The Raft node.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// The register's value.
    pub fn value(&self) -> u64 {
        self.value
    }

    /// Ids of the writes applied so far, in log order.
    pub fn applied(&self) -> &[OpId] {
        &self.applied
    }

    /// Log entries that did not decode as a write.
    pub fn malformed(&self) -> u64 {
        self.malformed
    }

    fn reply(out: &mut Vec<HostAction<RegisterEvent>>, id: OpId, reply: RegisterReply) {
        out.push(HostAction::Event(RegisterEvent::Reply { id, reply }));
    }

    fn handle(
        &mut self,
        request: Option<RegisterRequest>,
        out: &mut Vec<HostAction<RegisterEvent>>,
    ) {
        let mut actions = std::mem::take(&mut self.scratch);
        for action in actions.drain(..) {
            let action = match pass_through(action) {
                Ok(host) => {
                    out.push(host);
                    continue;
                }
                Err(action) => action,
            };
            match action {
                Action::Proposed { index, term } => {
                    if let Some(req) = request {
                        self.writes.insert(req.id, (index, term));
                    }
                }
                Action::NotLeader { leader } => {
                    if let Some(req) = request {
                        Self::reply(out, req.id, RegisterReply::NotLeader(leader));
                    }
                }
                Action::ReadFailed { ctx, leader } => {
                    Self::reply(out, ctx, RegisterReply::NotLeader(leader));
                }
                Action::ReadReady { ctx, index } => {
                    if self.applied_index >= index {
                        Self::reply(out, ctx, RegisterReply::Value(self.value));
                    } else {
                        self.reads.push((index, ctx));
                    }
                }
                Action::Apply(entry) => self.apply(entry.index, entry.term, &entry.payload, out),
                Action::LeaderChanged { term, leader } => {
                    if leader != Some(self.node.id()) {
                        // Appended writes may or may not commit under another leader.
                        for (id, _) in std::mem::take(&mut self.writes) {
                            Self::reply(out, id, RegisterReply::Unknown);
                        }
                    }
                    out.push(HostAction::Event(RegisterEvent::Leader { term, leader }));
                }
                Action::RestoreSnapshot(_) => {
                    // No member of this test service ever takes a snapshot, so no leader
                    // can send one.
                    self.malformed += 1;
                }
                // Persistence and Send were passed through above.
                _ => {}
            }
        }
        self.scratch = actions;
    }

    fn apply(
        &mut self,
        index: Index,
        term: Term,
        payload: &Payload,
        out: &mut Vec<HostAction<RegisterEvent>>,
    ) {
        self.applied_index = index;
        if let Payload::Command(data) = payload {
            match decode(data) {
                Some((id, value)) => {
                    self.value = value;
                    self.applied.push(id);
                    out.push(HostAction::Event(RegisterEvent::Applied { index, id }));
                    if self.writes.remove(&id).is_some() {
                        Self::reply(out, id, RegisterReply::Written);
                    }
                }
                None => self.malformed += 1,
            }
        }
        // A write proposed here at an index now applied with another entry is lost.
        let lost: Vec<OpId> = self
            .writes
            .iter()
            .filter(|(_, (i, t))| *i < index || (*i == index && *t != term))
            .map(|(id, _)| *id)
            .collect();
        for id in lost {
            self.writes.remove(&id);
            Self::reply(out, id, RegisterReply::Unknown);
        }
        let value = self.value;
        self.reads.retain(|&(at, id)| {
            if at <= index {
                Self::reply(out, id, RegisterReply::Value(value));
                false
            } else {
                true
            }
        });
    }
}

impl Machine for RegisterMachine {
    type Request = RegisterRequest;
    type Event = RegisterEvent;

    fn step(
        &mut self,
        input: HostInput<RegisterRequest>,
        out: &mut Vec<HostAction<RegisterEvent>>,
    ) {
        let (raft_input, request) = match input {
            HostInput::Tick => (Input::Tick, None),
            HostInput::Receive { from, msg } => (Input::Receive { from, msg }, None),
            HostInput::Request(req) => {
                let input = match req.op {
                    RegisterOp::Read => Input::ReadIndex { ctx: req.id },
                    RegisterOp::Write(v) => Input::Propose(encode(req.id, v)),
                };
                (input, Some(req))
            }
        };
        self.node.step_into(raft_input, &mut self.scratch);
        self.handle(request, out);
    }
}

fn encode(id: OpId, value: u64) -> Bytes {
    let mut buf = [0u8; 16];
    buf[..8].copy_from_slice(&id.to_le_bytes());
    buf[8..].copy_from_slice(&value.to_le_bytes());
    Bytes::copy_from_slice(&buf)
}

fn decode(data: &[u8]) -> Option<(OpId, u64)> {
    let id = u64::from_le_bytes(data.get(..8)?.try_into().ok()?);
    let value = u64::from_le_bytes(data.get(8..16)?.try_into().ok()?);
    (data.len() == 16).then_some((id, value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Driver, Outlet};
    use stepwise_raft::Message;

    #[derive(Default)]
    struct Events(Vec<RegisterEvent>);
    impl Outlet<RegisterEvent> for Events {
        fn send(&mut self, _: NodeId, _: Message) {}
        fn event(&mut self, e: RegisterEvent) {
            self.0.push(e);
        }
    }

    #[test]
    fn a_single_member_register_serves_writes_and_reads() {
        let machine = RegisterMachine::new(Config::new(1, [1]).with_seed(1)).unwrap();
        let mut driver = Driver::new(machine, Persisted::default());
        let mut events = Events::default();
        for _ in 0..200 {
            driver.step(HostInput::Tick);
            driver.flush(&mut events).unwrap();
        }
        assert!(driver.machine().node().is_leader());
        let write = RegisterRequest {
            id: 7,
            op: RegisterOp::Write(42),
        };
        driver.step(HostInput::Request(write));
        driver.step(HostInput::Request(RegisterRequest {
            id: 8,
            op: RegisterOp::Read,
        }));
        driver.flush(&mut events).unwrap();
        let replies: Vec<_> = events
            .0
            .iter()
            .filter_map(|e| match e {
                RegisterEvent::Reply { id, reply } => Some((*id, *reply)),
                RegisterEvent::Applied { .. } | RegisterEvent::Leader { .. } => None,
            })
            .collect();
        assert_eq!(
            replies,
            [(7, RegisterReply::Written), (8, RegisterReply::Value(42))]
        );
        assert_eq!(driver.machine().applied(), [7]);

        // Restart from the persisted log: the write is applied again once committed.
        let (_, disk) = driver.into_parts();
        let machine = RegisterMachine::restore(Config::new(1, [1]).with_seed(1), disk).unwrap();
        let mut driver = Driver::new(machine, Persisted::default());
        for _ in 0..200 {
            driver.step(HostInput::Tick);
            driver.flush(&mut Events::default()).unwrap();
        }
        assert_eq!(driver.machine().value(), 42);
        assert_eq!(driver.machine().applied(), [7]);
    }

    #[test]
    fn a_follower_refuses_requests() {
        let mut m = RegisterMachine::new(Config::new(1, [1, 2, 3])).unwrap();
        let mut out = Vec::new();
        m.step(
            HostInput::Request(RegisterRequest {
                id: 1,
                op: RegisterOp::Write(5),
            }),
            &mut out,
        );
        m.step(
            HostInput::Request(RegisterRequest {
                id: 2,
                op: RegisterOp::Read,
            }),
            &mut out,
        );
        assert_eq!(
            out,
            [
                HostAction::Event(RegisterEvent::Reply {
                    id: 1,
                    reply: RegisterReply::NotLeader(None)
                }),
                HostAction::Event(RegisterEvent::Reply {
                    id: 2,
                    reply: RegisterReply::NotLeader(None)
                }),
            ]
        );
    }

    #[test]
    fn commands_round_trip_and_bad_ones_are_refused() {
        assert_eq!(decode(&encode(3, 9)), Some((3, 9)));
        assert_eq!(decode(b"short"), None);
        assert_eq!(decode(&[0; 17]), None);
    }
}
