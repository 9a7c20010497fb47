//! A shard group server: one replica of a group, an [`Rsm`] running [`ShardGroup`], plus
//! the leader's duties that move the group through configurations.
//!
//! Every replica answers clients (writes through the log, Gets through ReadIndex) and
//! answers other groups' pulls from its own state. The **leader** additionally:
//!
//! 1. **polls the controller** every [`GroupConfig::poll_ticks`] (and right after a
//!    configuration was applied) for the configurations after its current one `n`, but
//!    only while the group is stable, and proposes them as [`GroupCmd::Config`]s:
//!    configurations are learnt in order, one at a time, and agreed through the group's
//!    own log (a group that fell behind fetches up to 32 in one round trip and proposes
//!    them in one entry; each applies only if the group is still stable by then);
//! 2. **pulls** the shards it gains from their previous owners ([`PeerMsg::Pull`], one
//!    request per previous owner, resent until answered) and proposes the data as
//!    [`GroupCmd::Install`]; installed shards are served at once;
//! 3. **asks the previous owners to delete** installed shards ([`PeerMsg::Delete`]);
//!    the previous owner deletes through its own log and confirms; the leader then
//!    proposes [`GroupCmd::GcDone`].
//!
//! Every replica that deletes shards it handed over snapshots right away
//! ([`rsm::Input::Compact`]) when snapshots are on ([`RsmConfig::max_raft_state`]), so
//! its persisted state shrinks with its memory instead of at the next size-triggered
//! snapshot.
//!
//! All of it is inputs and actions: controller replies come in as [`Input::Ctrler`],
//! other groups' messages as [`Input::Peer`]; queries to the controller go out as
//! [`Action::SendCtrler`], messages to other groups as [`Action::SendPeer`]. The Raft
//! actions follow the [`Rsm`]'s contract: in order, persistence durable before anything
//! later. Restart is [`GroupServer::restore`].

use std::collections::BTreeMap;

use stepwise_kv::replica::{Origin, ServerAction, step_rsm};
use stepwise_kv::rsm::{self, Rsm, RsmConfig, RsmError, Submission, SubmitError};
use stepwise_kv::{KvError, KvResult, Op, Reply, Request};
use stepwise_raft::{Action as RaftAction, Message, NodeId, Persisted};

use super::{DeleteState, GroupCmd, GroupOutput, GroupQuery, ShardGroup, ShardStatus};
use crate::config::{Addr, Gid};
use crate::ctrler::clerk::{self as cclerk, CtrlerClerk, CtrlerClerkConfig};
use crate::ctrler::{CtrlOp, CtrlOutput};
use crate::key::NSHARDS;
use crate::message::{CtrlReply, CtrlRequest, PeerMsg, Refusal};
use crate::retry::Retry;

/// Configurations asked for in one poll of the controller.
const CONFIGS_PER_POLL: u32 = 32;

/// How a [`GroupServer`] is configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupConfig {
    /// The group's id (never 0).
    pub gid: Gid,
    /// The replicated-state-machine layer's configuration. The Raft ids are the servers'
    /// addresses.
    pub rsm: RsmConfig,
    /// Number of shards (the controller's).
    pub nshards: usize,
    /// The controller servers' addresses.
    pub ctrlers: Vec<Addr>,
    /// The leader asks the controller for the next configuration every this many ticks.
    pub poll_ticks: u32,
    /// Resend a pull or delete request after this many ticks without an answer.
    pub retry_ticks: u32,
}

impl GroupConfig {
    /// Defaults for a 10 ms tick: [`NSHARDS`] shards, poll every 100 ms (as the lab's
    /// servers do), resend peer requests after 100 ms.
    pub fn new(gid: Gid, rsm: RsmConfig, ctrlers: Vec<Addr>) -> Self {
        GroupConfig {
            gid,
            rsm,
            nshards: NSHARDS,
            ctrlers,
            poll_ticks: 10,
            retry_ticks: 10,
        }
    }
}

/// Why a [`GroupServer`] could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    /// Gid 0, no shards or no controller servers.
    #[error("bad group configuration: {0}")]
    Config(&'static str),
    /// The layer underneath refused.
    #[error(transparent)]
    Rsm(#[from] RsmError),
}

/// The [`Rsm`] tag of a group server: who waits for a command's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tag {
    /// A client's request.
    Client(Origin),
    /// A previous owner's delete, to confirm to the new owner's server `to`.
    PeerDelete {
        /// The server that asked.
        to: Addr,
        /// The configuration of the request.
        num: u64,
        /// The shards of the request.
        shards: Vec<u32>,
    },
    /// The leader's own configuration and transfer commands: nobody waits.
    Internal,
}

/// Everything that can happen to a [`GroupServer`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// One unit of logical time.
    Tick,
    /// A Raft message from a peer replica of this group.
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
    /// Several client requests that arrived together: their writes share one log entry.
    Requests(Vec<(u64, Request)>),
    /// A message from a server of another group.
    Peer {
        /// The sender's address.
        from: Addr,
        /// The message.
        msg: PeerMsg,
    },
    /// A controller server's reply to this server's query.
    Ctrler {
        /// The controller server.
        from: Addr,
        /// The reply.
        reply: CtrlReply,
    },
}

/// Something worth a log line: reported by every replica as it applies the change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupEvent {
    /// The replica applied configuration `num`.
    Config {
        /// The configuration.
        num: u64,
    },
    /// A shard's data arrived and is served here.
    ShardIn {
        /// The configuration it moved in.
        num: u64,
        /// The shard.
        shard: u32,
        /// The group it came from.
        from: Gid,
        /// Its number of keys.
        keys: usize,
        /// Its payload bytes.
        bytes: usize,
    },
    /// A shard handed over was deleted here.
    ShardOut {
        /// The configuration it moved in.
        num: u64,
        /// The shard.
        shard: u32,
        /// The group that has it now.
        to: Gid,
    },
}

/// What the adapter must do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// A Raft persistence action: durable before any later action.
    Persist(RaftAction),
    /// Send a Raft message to a peer replica of this group.
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
    /// Send this message to a server of another group.
    SendPeer {
        /// The server.
        to: Addr,
        /// The message.
        msg: PeerMsg,
    },
    /// Send this query to a controller server.
    SendCtrler {
        /// The controller server.
        to: Addr,
        /// The request.
        request: CtrlRequest,
    },
    /// Informational (logs, tests).
    Event(GroupEvent),
    /// The replica stopped (see [`rsm::Action::Halted`]).
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

/// Counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupStats {
    /// Pull requests sent.
    pub pulls_sent: u64,
    /// Pull requests answered with data.
    pub pulls_served: u64,
    /// Delete requests sent.
    pub deletes_sent: u64,
    /// Controller queries started.
    pub polls: u64,
}

/// One pull or delete in progress, towards one previous owner.
#[derive(Debug)]
struct Task {
    num: u64,
    shards: Vec<u32>,
    retry: Retry,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Pull,
    Delete,
}

/// One replica of a shard group. See the [module docs](self).
#[derive(Debug)]
pub struct GroupServer {
    gid: Gid,
    ctrlers: Vec<Addr>,
    poll_ticks: u32,
    retry_ticks: u32,
    /// Snapshot as soon as handed-over shards are deleted (snapshots are on).
    compact_on_gc: bool,
    rsm: Rsm<ShardGroup, Tag>,
    buf: Vec<rsm::Action<GroupOutput, Tag>>,
    ctrl: CtrlerClerk,
    ctrl_out: Vec<cclerk::Action>,
    /// A controller query is in flight.
    polling: bool,
    /// Ticks since the last controller query started.
    since_poll: u32,
    /// Poll at the next tick (a configuration was just applied).
    poll_soon: bool,
    pulls: BTreeMap<Gid, Task>,
    deletes: BTreeMap<Gid, Task>,
    /// What the events last reported: applied index, configuration, per-shard status.
    seen_applied: u64,
    seen_num: u64,
    seen: Vec<Option<ShardStatus>>,
    stats: GroupStats,
}

impl GroupServer {
    /// A brand-new replica.
    pub fn new(config: GroupConfig) -> Result<Self, GroupError> {
        Self::restore(config, Persisted::default())
    }

    /// Rebuilds a replica after a restart from what it persisted.
    pub fn restore(config: GroupConfig, persisted: Persisted) -> Result<Self, GroupError> {
        if config.gid == 0 {
            return Err(GroupError::Config("gid 0 is not a group"));
        }
        if config.nshards == 0 {
            return Err(GroupError::Config("no shards"));
        }
        if config.ctrlers.is_empty() {
            return Err(GroupError::Config("no controller servers"));
        }
        let me = config.rsm.raft.id;
        let compact_on_gc = config.rsm.max_raft_state.is_some();
        let rsm = Rsm::restore(
            config.rsm,
            persisted,
            ShardGroup::new(config.gid, config.nshards),
        )?;
        let mut server = GroupServer {
            gid: config.gid,
            ctrl: Self::ctrl_clerk(me, &config.ctrlers, config.retry_ticks),
            ctrlers: config.ctrlers,
            poll_ticks: config.poll_ticks.max(1),
            retry_ticks: config.retry_ticks.max(1),
            compact_on_gc,
            rsm,
            buf: Vec::new(),
            ctrl_out: Vec::new(),
            polling: false,
            since_poll: 0,
            poll_soon: true,
            pulls: BTreeMap::new(),
            deletes: BTreeMap::new(),
            seen_applied: 0,
            seen_num: 0,
            seen: vec![None; config.nshards],
            stats: GroupStats::default(),
        };
        server.remember_state();
        Ok(server)
    }

    fn ctrl_clerk(me: Addr, ctrlers: &[Addr], retry_ticks: u32) -> CtrlerClerk {
        let mut cfg = CtrlerClerkConfig::new(me, ctrlers.to_vec());
        cfg.sessions = false; // queries only
        cfg.retry_ticks = retry_ticks;
        CtrlerClerk::new(cfg)
    }

    /// The group's id.
    pub fn gid(&self) -> Gid {
        self.gid
    }

    /// The replicated-state-machine layer underneath.
    pub fn rsm(&self) -> &Rsm<ShardGroup, Tag> {
        &self.rsm
    }

    /// The group state as applied here.
    pub fn group(&self) -> &ShardGroup {
        self.rsm.state()
    }

    /// Whether this replica leads its group.
    pub fn is_leader(&self) -> bool {
        self.rsm.is_leader()
    }

    /// Counters.
    pub fn stats(&self) -> GroupStats {
        self.stats
    }

    /// Feeds one input and returns the actions to carry out, in order.
    pub fn step(&mut self, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        self.step_into(input, &mut out);
        out
    }

    /// Like [`GroupServer::step`], but appends the actions to `out`.
    pub fn step_into(&mut self, input: Input, out: &mut Vec<Action>) {
        match input {
            Input::Tick => {
                self.rsm_step(rsm::Input::Tick, out);
                self.leader_duties(out);
            }
            Input::Receive { from, msg } => self.rsm_step(rsm::Input::Receive { from, msg }, out),
            Input::Request { from, request } => {
                let input = client_input(from, request);
                self.rsm_step(input, out);
            }
            Input::Requests(requests) => {
                let mut writes = Vec::with_capacity(requests.len());
                for (from, request) in requests {
                    match client_input(from, request) {
                        rsm::Input::Submit(sub) => writes.push(sub),
                        read => self.rsm_step(read, out),
                    }
                }
                if !writes.is_empty() {
                    self.rsm_step(rsm::Input::SubmitBatch(writes), out);
                }
            }
            Input::Peer { from, msg } => self.peer(from, msg, out),
            Input::Ctrler { from, reply } => {
                if self.polling {
                    self.ctrl_step(cclerk::Input::Receive { from, reply }, out);
                }
            }
        }
        self.report(out);
    }

    /// Steps the layer and translates its actions.
    fn rsm_step(&mut self, input: rsm::Input<GroupCmd, GroupQuery, Tag>, out: &mut Vec<Action>) {
        step_rsm(&mut self.rsm, input, &mut self.buf, out, Self::answer);
    }

    /// Answers whoever waits for a command's or query's outcome.
    fn answer(tag: Tag, result: Result<GroupOutput, SubmitError>, out: &mut Vec<Action>) {
        match tag {
            Tag::Client(origin) => {
                let result: KvResult = match result {
                    Ok(GroupOutput::Kv(r)) => r,
                    // Only Kv commands and Get queries carry client tags.
                    Ok(_) => Err(KvError::WrongGroup),
                    Err(e) => Err(KvError::from(e)),
                };
                out.push(Action::Reply {
                    to: origin.client,
                    reply: Reply {
                        id: origin.id,
                        result,
                    },
                });
            }
            Tag::PeerDelete { to, num, shards } => {
                let result = match result {
                    Ok(GroupOutput::NotReady) => Err(Refusal::NotReady),
                    Ok(_) => Ok(()),
                    Err(SubmitError::NotLeader { leader }) => Err(Refusal::WrongLeader { leader }),
                    Err(SubmitError::Stale) => Err(Refusal::NotReady),
                };
                out.push(Action::SendPeer {
                    to,
                    msg: PeerMsg::DeleteReply {
                        num,
                        shards,
                        result,
                    },
                });
            }
            Tag::Internal => {}
        }
    }

    // ----- the leader's duties --------------------------------------------------------

    fn leader_duties(&mut self, out: &mut Vec<Action>) {
        if !self.rsm.is_leader() {
            if self.polling || !self.pulls.is_empty() || !self.deletes.is_empty() {
                self.polling = false;
                self.ctrl = Self::ctrl_clerk(self.rsm.raft().id(), &self.ctrlers, self.retry_ticks);
                self.pulls.clear();
                self.deletes.clear();
            }
            self.poll_soon = true;
            return;
        }
        // 1. The next configuration.
        self.since_poll = self.since_poll.saturating_add(1);
        if self.polling {
            self.ctrl_step(cclerk::Input::Tick, out);
        } else if self.group().is_stable() && (self.poll_soon || self.since_poll >= self.poll_ticks)
        {
            self.polling = true;
            self.poll_soon = false;
            self.since_poll = 0;
            self.stats.polls += 1;
            let num = self.group().config().num + 1;
            self.ctrl_step(
                cclerk::Input::Start {
                    op: CtrlOp::Since {
                        num,
                        max: CONFIGS_PER_POLL,
                    },
                    expect: None,
                },
                out,
            );
        }
        // 2 and 3. Pulls and deletes towards previous owners.
        self.reconcile(Kind::Pull, out);
        self.reconcile(Kind::Delete, out);
        for kind in [Kind::Pull, Kind::Delete] {
            let due: Vec<Gid> = self
                .tasks_mut(kind)
                .iter_mut()
                .filter_map(|(&g, t)| t.retry.tick().then_some(g))
                .collect();
            for g in due {
                self.send_task(kind, g, out);
            }
        }
    }

    fn tasks_mut(&mut self, kind: Kind) -> &mut BTreeMap<Gid, Task> {
        match kind {
            Kind::Pull => &mut self.pulls,
            Kind::Delete => &mut self.deletes,
        }
    }

    /// Makes the tasks match the state: one per previous owner with shards to pull (or
    /// to have deleted) in the current configuration.
    fn reconcile(&mut self, kind: Kind, out: &mut Vec<Action>) {
        let (status, tasks) = match kind {
            Kind::Pull => (ShardStatus::Pulling, &mut self.pulls),
            Kind::Delete => (ShardStatus::Gcing, &mut self.deletes),
        };
        let group = self.rsm.state();
        let num = group.config().num;
        let wanted = group.by_previous_owner(status);
        tasks.retain(|g, t| t.num == num && wanted.get(g) == Some(&t.shards));
        let mut fresh = Vec::new();
        for (g, shards) in wanted {
            let servers = group.prev_config().servers(g);
            if tasks.contains_key(&g) || servers.is_empty() {
                continue;
            }
            let retry = Retry::new(servers.to_vec(), self.retry_ticks, self.retry_ticks);
            tasks.insert(g, Task { num, shards, retry });
            fresh.push(g);
        }
        for g in fresh {
            self.send_task(kind, g, out);
        }
    }

    fn send_task(&mut self, kind: Kind, g: Gid, out: &mut Vec<Action>) {
        let gid = self.gid;
        let Some(task) = self.tasks_mut(kind).get_mut(&g) else {
            return;
        };
        task.retry.sent();
        let (num, shards) = (task.num, task.shards.clone());
        let msg = match kind {
            Kind::Pull => PeerMsg::Pull { num, gid, shards },
            Kind::Delete => PeerMsg::Delete { num, gid, shards },
        };
        out.push(Action::SendPeer {
            to: task.retry.target(),
            msg,
        });
        match kind {
            Kind::Pull => self.stats.pulls_sent += 1,
            Kind::Delete => self.stats.deletes_sent += 1,
        }
    }

    fn ctrl_step(&mut self, input: cclerk::Input, out: &mut Vec<Action>) {
        let done = self
            .ctrl
            .step_embedded(input, &mut self.ctrl_out, |to, request| {
                out.push(Action::SendCtrler { to, request })
            });
        if let Some(result) = done {
            self.polling = false;
            if let Ok(CtrlOutput::Configs(next)) = result {
                self.propose_configs(next, out);
            }
        }
    }

    /// Proposes the configurations that follow the current one, in order, in one entry.
    /// Each is applied only if the group is stable at that point of the log; the first
    /// that starts a move stops the others, which the next poll fetches again.
    fn propose_configs(&mut self, configs: Vec<crate::config::ShardConfig>, out: &mut Vec<Action>) {
        let group = self.rsm.state();
        if !self.rsm.is_leader() || !group.is_stable() {
            return;
        }
        let mut subs = Vec::with_capacity(configs.len());
        for (expect, c) in (group.config().num + 1..).zip(configs) {
            if c.num != expect {
                break;
            }
            subs.push(Submission::new(Tag::Internal, GroupCmd::Config(c)));
        }
        if !subs.is_empty() {
            self.rsm_step(rsm::Input::SubmitBatch(subs), out);
        }
    }

    // ----- other groups ---------------------------------------------------------------

    fn refusal(&self, r: Refusal) -> Refusal {
        if self.rsm.is_leader() {
            r
        } else {
            Refusal::WrongLeader {
                leader: self.rsm.leader(),
            }
        }
    }

    fn peer(&mut self, from: Addr, msg: PeerMsg, out: &mut Vec<Action>) {
        match msg {
            PeerMsg::Pull { num, shards, .. } => {
                // Any replica that reached `num` holds the frozen data: answer from state.
                let result = self.group().pull(num, &shards).map_err(|r| self.refusal(r));
                if result.is_ok() {
                    self.stats.pulls_served += 1;
                }
                out.push(Action::SendPeer {
                    to: from,
                    msg: PeerMsg::PullReply { num, result },
                });
            }
            PeerMsg::Delete { num, shards, .. } => {
                let result = match self.group().delete_state(num, &shards) {
                    DeleteState::Done => Ok(()),
                    DeleteState::NotReady => Err(self.refusal(Refusal::NotReady)),
                    DeleteState::Pending if self.rsm.is_leader() => {
                        let tag = Tag::PeerDelete {
                            to: from,
                            num,
                            shards: shards.clone(),
                        };
                        let sub = Submission::new(tag, GroupCmd::Delete { num, shards });
                        self.rsm_step(rsm::Input::Submit(sub), out);
                        return; // answered once applied
                    }
                    DeleteState::Pending => Err(self.refusal(Refusal::NotReady)),
                };
                out.push(Action::SendPeer {
                    to: from,
                    msg: PeerMsg::DeleteReply {
                        num,
                        shards,
                        result,
                    },
                });
            }
            PeerMsg::PullReply { num, result } => {
                self.task_reply(Kind::Pull, from, num, result.map(Some), out)
            }
            PeerMsg::DeleteReply { num, result, .. } => {
                self.task_reply(Kind::Delete, from, num, result.map(|()| None), out)
            }
        }
    }

    /// A previous owner answered a pull (`Some(data)`) or a delete (`None`).
    fn task_reply(
        &mut self,
        kind: Kind,
        from: Addr,
        num: u64,
        result: Result<Option<Vec<crate::message::ShardData>>, Refusal>,
        out: &mut Vec<Action>,
    ) {
        if !self.rsm.is_leader() {
            return;
        }
        let retry_ticks = self.retry_ticks;
        let Some((&g, task)) = self
            .tasks_mut(kind)
            .iter_mut()
            .find(|(_, t)| t.num == num && t.retry.servers().contains(&from))
        else {
            return; // an answer to a task that is over
        };
        match result {
            Ok(data) => {
                task.retry.answered(from);
                // Give the command time to commit before asking again.
                task.retry.wait(3 * retry_ticks);
                let shards = task.shards.clone();
                let cmd = match data {
                    Some(mut data) => {
                        data.retain(|d| shards.contains(&d.shard));
                        GroupCmd::Install { num, shards: data }
                    }
                    None => GroupCmd::GcDone { num, shards },
                };
                let sub = Submission::new(Tag::Internal, cmd);
                self.rsm_step(rsm::Input::Submit(sub), out);
            }
            Err(Refusal::NotReady) => {
                if from == task.retry.target() {
                    task.retry.wait(retry_ticks);
                }
            }
            Err(Refusal::WrongLeader { leader }) => {
                if task.retry.refused(from, leader) {
                    self.send_task(kind, g, out);
                }
            }
        }
    }

    // ----- events ---------------------------------------------------------------------

    fn remember_state(&mut self) {
        let group = self.rsm.state();
        self.seen_applied = self.rsm.applied_index();
        self.seen_num = group.config().num;
        self.seen.iter_mut().for_each(|s| *s = None);
        for (s, status) in group.statuses() {
            if let Some(slot) = self.seen.get_mut(s as usize) {
                *slot = Some(status);
            }
        }
    }

    /// Reports what changed since the last report, and snapshots if shards handed over
    /// were deleted (garbage collection frees memory at once; the snapshot frees the
    /// persisted copy too).
    fn report(&mut self, out: &mut Vec<Action>) {
        if self.rsm.applied_index() == self.seen_applied {
            return;
        }
        let group = self.rsm.state();
        let num = group.config().num;
        let mut deleted = false;
        if num != self.seen_num {
            out.push(Action::Event(GroupEvent::Config { num }));
            self.poll_soon = true;
        }
        for (s, old) in self.seen.iter().enumerate() {
            let shard = s as u32;
            let new = group.status(shard);
            if new == *old {
                continue;
            }
            match (old, new) {
                (_, Some(ShardStatus::Gcing)) => {
                    let (keys, bytes) = group.shard_size(shard);
                    out.push(Action::Event(GroupEvent::ShardIn {
                        num,
                        shard,
                        from: group.prev_config().owner(s),
                        keys,
                        bytes,
                    }));
                }
                (Some(_), None) => {
                    deleted = true;
                    out.push(Action::Event(GroupEvent::ShardOut {
                        num,
                        shard,
                        to: group.config().owner(s),
                    }));
                }
                _ => {}
            }
        }
        self.remember_state();
        if deleted && self.compact_on_gc {
            self.rsm_step(rsm::Input::Compact, out);
        }
    }
}

/// A client request as the layer's input: Gets are queries, everything else a command.
fn client_input(from: u64, request: Request) -> rsm::Input<GroupCmd, GroupQuery, Tag> {
    let tag = Tag::Client(Origin {
        client: from,
        id: request.id,
    });
    match request.op {
        Op::Get { key } => rsm::Input::Query {
            tag,
            query: GroupQuery::Get(key),
        },
        op => rsm::Input::Submit(Submission::new(
            tag,
            GroupCmd::Kv {
                session: request.session,
                op,
            },
        )),
    }
}
