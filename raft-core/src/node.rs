//! The Raft node: its state and the `step` dispatch.
//!
//! Section numbers in comments refer to the extended Raft paper ("In Search of an
//! Understandable Consensus Algorithm") and, where noted, to Ongaro's thesis.

use bytes::Bytes;

use crate::action::{Action, Input};
use crate::config::{Config, ConfigError};
use crate::log::RaftLog;
use crate::message::{
    AppendResult, Entry, HardState, Index, Message, NodeId, Payload, Snapshot, SnapshotMeta, Term,
};
use crate::persist::Persisted;
use crate::progress::{Mode, Progress};
use crate::quorum::{majority, quorum_index};

/// A node's role, as observers see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Follows a leader (or waits for one).
    Follower,
    /// Asking for pre-votes before starting an election.
    PreCandidate,
    /// Asking for votes in its own term.
    Candidate,
    /// Leads the current term.
    Leader,
}

/// Leader-only state (one variant per role: a follower cannot touch it).
#[derive(Debug)]
struct Leader {
    /// One entry per peer, sorted by id.
    progress: Vec<Progress>,
    heartbeat_elapsed: u32,
    /// Ticks since the last quorum check.
    quorum_elapsed: u32,
    /// Current round number, carried by every request and echoed by replies.
    seq: u64,
    /// Reads waiting for the next confirmation round.
    reads_waiting: Vec<ReadRequest>,
    /// The round in flight: its number and the reads it confirms, with their read index.
    round: Option<(u64, Vec<(ReadRequest, Index)>)>,
}

/// A read waiting for the leader's confirmation round: the service's own (`from: None`)
/// or one a follower forwarded (`Config::follower_reads`).
#[derive(Clone, Copy, Debug)]
struct ReadRequest {
    ctx: u64,
    from: Option<NodeId>,
}

/// A read this follower forwarded to the leader, waiting for its answer.
#[derive(Clone, Copy, Debug)]
struct Forwarded {
    /// The service's tag.
    ctx: u64,
    /// The tag on the wire: unique to this incarnation of the node (see
    /// `Node::next_read_id`), so an answer to a read forwarded before a restart can never
    /// be taken for the answer to one forwarded after it.
    id: u64,
    /// The term it was forwarded in: a read still waiting when the term changes fails.
    term: Term,
    /// When it was sent (`Node::now`).
    sent: u64,
}

#[derive(Debug)]
enum RoleState {
    Follower,
    PreCandidate {
        granted: Vec<NodeId>,
    },
    /// Votes are in `Node::votes_for_me`, which outlives the role within a term.
    Candidate,
    Leader(Box<Leader>),
}

/// Counters a node keeps about input it refused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Messages dropped because they were malformed, came from an unknown peer, or
    /// contradicted committed state (a correct peer never sends them).
    pub dropped_messages: u64,
    /// Service inputs ignored as misuse (e.g. a snapshot past the applied index).
    pub ignored_inputs: u64,
    /// Read requests this node forwarded to the leader as a follower
    /// (`Config::follower_reads`): one per `Input::ReadIndex`, which a service may use for
    /// a whole batch of reads.
    pub reads_forwarded: u64,
    /// Forwarded reads that failed: refused by the leader, overtaken by a term change, or
    /// unanswered in time. Many of them mean the reads go to the leader after all.
    pub forwarded_reads_failed: u64,
}

/// A Raft node as a pure state machine. See the crate docs for how to drive it.
#[derive(Debug)]
pub struct Node {
    cfg: Config,
    /// The other members, sorted.
    peers: Vec<NodeId>,
    term: Term,
    vote: Option<NodeId>,
    log: RaftLog,
    /// The latest snapshot (sent to followers that are too far behind).
    snapshot: Option<Snapshot>,
    commit: Index,
    applied: Index,
    /// The highest log index known durable (only maintained with
    /// `Config::durable_reports`; at most the last index).
    durable: Index,
    role: RoleState,
    leader: Option<NodeId>,
    election_elapsed: u32,
    election_timeout: u32,
    /// Consecutive elections that timed out without a result; widens the timeout range so
    /// elections can finish on a network slower than the timeout (reset by a leader).
    failed_elections: u32,
    /// Real votes granted to this node in the current term (it voted for itself). Kept
    /// across pre-vote rounds of the same term so late replies still count.
    votes_for_me: Vec<NodeId>,
    /// Ticks since the node started (timestamps in-flight requests).
    now: u64,
    rng: oorandom::Rand64,
    /// The (term, leader) last announced with `LeaderChanged`.
    announced: (Term, Option<NodeId>),
    /// Reads forwarded to the leader (`Config::follower_reads`), oldest first.
    forwarded: Vec<Forwarded>,
    /// The wire tag of the next forwarded read: starts at a number drawn from the seed
    /// (which adapters draw anew for every start) and counts up.
    next_read_id: u64,
    stats: Stats,
}

impl Node {
    /// A brand-new node with an empty log. Fails if the configuration is invalid.
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        Self::restore(config, Persisted::default())
    }

    /// Rebuilds a node after a restart from what it persisted (section 5.1: state survives
    /// crashes through stable storage). The service restores its own state from
    /// `persisted.snapshot`; entries after it are applied again as they are (re)committed.
    pub fn restore(config: Config, persisted: Persisted) -> Result<Self, ConfigError> {
        config.validate()?;
        let log = persisted.log().ok_or(ConfigError::BadPersistedState(
            "log entries do not follow the snapshot consecutively",
        ))?;
        if persisted.hard_state.term < log.last_term() {
            return Err(ConfigError::BadPersistedState(
                "log holds a term above the persisted current term",
            ));
        }
        let mut peers: Vec<NodeId> = config
            .members
            .iter()
            .copied()
            .filter(|&m| m != config.id)
            .collect();
        peers.sort_unstable();
        let base = log.snapshot_meta().index;
        let restored_last = log.last_index();
        let mut node = Node {
            rng: oorandom::Rand64::new(u128::from(config.seed) ^ (u128::from(config.id) << 64)),
            peers,
            term: persisted.hard_state.term,
            vote: persisted.hard_state.vote,
            log,
            snapshot: persisted.snapshot,
            commit: base,
            applied: base,
            // Everything restored was read back from stable storage.
            durable: restored_last,
            role: RoleState::Follower,
            leader: None,
            election_elapsed: 0,
            election_timeout: 0,
            failed_elections: 0,
            votes_for_me: Vec::new(),
            now: 0,
            announced: (persisted.hard_state.term, None),
            forwarded: Vec::new(),
            next_read_id: incarnation_tag(config.seed, config.id),
            stats: Stats::default(),
            cfg: config,
        };
        node.reset_election_timer();
        Ok(node)
    }

    /// Feeds one input and returns the actions to carry out, in order.
    pub fn step(&mut self, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        self.step_into(input, &mut out);
        out
    }

    /// Like [`Node::step`], but appends the actions to `out` (lets hot loops reuse a buffer).
    pub fn step_into(&mut self, input: Input, out: &mut Vec<Action>) {
        match input {
            Input::Tick => self.tick(out),
            Input::Receive { from, msg } => self.receive(from, msg, out),
            Input::Propose(data) => self.propose(data, out),
            Input::ProposeBatch(batch) => self.propose_batch(batch, out),
            Input::ReadIndex { ctx } => self.read_index(ctx, out),
            Input::Snapshot { index, data } => self.take_snapshot(index, data, out),
            Input::LogDurable { index, term } => self.log_durable(index, term, out),
        }
        if self.announced != (self.term, self.leader) {
            self.announced = (self.term, self.leader);
            out.push(Action::LeaderChanged {
                term: self.term,
                leader: self.leader,
            });
        }
    }

    // ----- accessors -------------------------------------------------------------------

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.cfg.id
    }
    /// The configuration the node runs with.
    pub fn config(&self) -> &Config {
        &self.cfg
    }
    /// The current term.
    pub fn term(&self) -> Term {
        self.term
    }
    /// The current role.
    pub fn role(&self) -> Role {
        match self.role {
            RoleState::Follower => Role::Follower,
            RoleState::PreCandidate { .. } => Role::PreCandidate,
            RoleState::Candidate => Role::Candidate,
            RoleState::Leader(_) => Role::Leader,
        }
    }
    /// Whether this node leads the current term.
    pub fn is_leader(&self) -> bool {
        matches!(self.role, RoleState::Leader(_))
    }
    /// The leader of the current term, if known.
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }
    /// Term and vote, as last persisted.
    pub fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            vote: self.vote,
        }
    }
    /// The highest index known to be committed.
    pub fn commit_index(&self) -> Index {
        self.commit
    }
    /// The highest index handed to the service with `Apply` (or covered by a snapshot).
    pub fn applied_index(&self) -> Index {
        self.applied
    }
    /// The in-memory log.
    pub fn log(&self) -> &RaftLog {
        &self.log
    }
    /// The latest snapshot, if any.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }
    /// Counters of refused input.
    pub fn stats(&self) -> Stats {
        self.stats
    }
    /// For a leader: each follower's match index, by id. Empty otherwise.
    pub fn match_indexes(&self) -> Vec<(NodeId, Index)> {
        match &self.role {
            RoleState::Leader(l) => l.progress.iter().map(|p| (p.id, p.match_index)).collect(),
            _ => Vec::new(),
        }
    }

    // ----- time ------------------------------------------------------------------------

    fn tick(&mut self, out: &mut Vec<Action>) {
        self.now += 1;
        if !self.forwarded.is_empty() {
            self.expire_forwarded(out);
        }
        if let RoleState::Leader(l) = &mut self.role {
            l.heartbeat_elapsed += 1;
            l.quorum_elapsed += 1;
            if self.cfg.check_quorum && l.quorum_elapsed >= self.cfg.election_ticks_max {
                l.quorum_elapsed = 0;
                let active = 1 + l.progress.iter().filter(|p| p.active).count();
                for p in &mut l.progress {
                    p.active = false;
                }
                if active < majority(self.cfg.members.len()) {
                    // Thesis 6.2: a leader that cannot reach a majority steps down, so
                    // clients go elsewhere instead of waiting on it.
                    self.become_follower(self.term, None, out);
                    return;
                }
            }
            if l.heartbeat_elapsed >= self.cfg.heartbeat_ticks {
                l.heartbeat_elapsed = 0;
                self.heartbeat(out);
            }
            return;
        }
        self.election_elapsed += 1;
        if self.election_elapsed >= self.election_timeout {
            if !matches!(self.role, RoleState::Follower) {
                self.failed_elections = self.failed_elections.saturating_add(1);
            }
            if self.cfg.pre_vote {
                self.campaign_pre_vote(out);
            } else {
                self.campaign(out);
            }
        }
    }

    /// Draws a new election timeout: uniform in `[min, max]`, with the random part doubled
    /// for each consecutive failed election (at most 8x), so that candidates on a slow or
    /// lossy network spread out instead of splitting votes forever.
    fn reset_election_timer(&mut self) {
        self.election_elapsed = 0;
        let lo = u64::from(self.cfg.election_ticks_min);
        let hi = u64::from(self.cfg.election_ticks_max);
        let spread = (hi - lo + 1) << self.failed_elections.min(3);
        self.election_timeout =
            u32::try_from(lo + self.rng.rand_range(0..spread)).unwrap_or(u32::MAX);
    }

    /// Whether this node heard from a live leader recently enough to refuse to help
    /// replace it (thesis 4.2.3 / 9.6).
    fn in_leader_lease(&self) -> bool {
        match self.role {
            RoleState::Leader(_) => true,
            _ => self.leader.is_some() && self.election_elapsed < self.cfg.election_ticks_min,
        }
    }

    // ----- elections (5.2) ---------------------------------------------------------------

    fn campaign_pre_vote(&mut self, out: &mut Vec<Action>) {
        self.reset_election_timer();
        self.leader = None;
        self.role = RoleState::PreCandidate {
            granted: vec![self.cfg.id],
        };
        if self.peers.is_empty() {
            self.campaign(out);
            return;
        }
        let msg = Message::RequestVote {
            term: self.term + 1,
            last_index: self.log.last_index(),
            last_term: self.log.last_term(),
            pre_vote: true,
        };
        for &to in &self.peers {
            out.push(Action::Send {
                to,
                msg: msg.clone(),
            });
        }
    }

    fn campaign(&mut self, out: &mut Vec<Action>) {
        self.reset_election_timer();
        self.term += 1;
        self.vote = Some(self.cfg.id);
        self.votes_for_me.clear();
        self.votes_for_me.push(self.cfg.id);
        self.leader = None;
        self.role = RoleState::Candidate;
        out.push(Action::SaveHardState(self.hard_state()));
        if self.peers.is_empty() {
            self.become_leader(out);
            return;
        }
        let msg = Message::RequestVote {
            term: self.term,
            last_index: self.log.last_index(),
            last_term: self.log.last_term(),
            pre_vote: false,
        };
        for &to in &self.peers {
            out.push(Action::Send {
                to,
                msg: msg.clone(),
            });
        }
    }

    /// Section 5.4.1: a vote goes only to a candidate whose log is at least as up to date.
    fn log_up_to_date(&self, last_index: Index, last_term: Term) -> bool {
        (last_term, last_index) >= (self.log.last_term(), self.log.last_index())
    }

    fn on_request_vote(
        &mut self,
        from: NodeId,
        term: Term,
        last_index: Index,
        last_term: Term,
        pre_vote: bool,
        out: &mut Vec<Action>,
    ) {
        let up_to_date = self.log_up_to_date(last_index, last_term);
        let granted = if pre_vote {
            term >= self.term && up_to_date && !self.in_leader_lease()
        } else {
            term == self.term && self.vote.is_none_or(|v| v == from) && up_to_date
        };
        if granted && !pre_vote {
            self.vote = Some(from);
            out.push(Action::SaveHardState(self.hard_state()));
            self.reset_election_timer();
        }
        let reply_term = if granted && pre_vote { term } else { self.term };
        out.push(Action::Send {
            to: from,
            msg: Message::VoteReply {
                term: reply_term,
                granted,
                pre_vote,
            },
        });
    }

    fn on_vote_reply(
        &mut self,
        from: NodeId,
        term: Term,
        granted: bool,
        pre_vote: bool,
        out: &mut Vec<Action>,
    ) {
        if !granted {
            return;
        }
        let quorum = majority(self.cfg.members.len());
        match &mut self.role {
            RoleState::PreCandidate { granted } if pre_vote && term == self.term + 1 => {
                if !granted.contains(&from) {
                    granted.push(from);
                }
                if granted.len() >= quorum {
                    self.campaign(out);
                }
            }
            RoleState::Candidate | RoleState::PreCandidate { .. }
                if !pre_vote && term == self.term && self.vote == Some(self.cfg.id) =>
            {
                // A vote for us in our term counts even if our timer already moved us on
                // to a new pre-vote round of the same term.
                if !self.votes_for_me.contains(&from) {
                    self.votes_for_me.push(from);
                }
                if self.votes_for_me.len() >= quorum {
                    self.become_leader(out);
                }
            }
            _ => {}
        }
    }

    fn become_follower(&mut self, term: Term, leader: Option<NodeId>, out: &mut Vec<Action>) {
        if term > self.term {
            self.term = term;
            self.vote = None;
            self.votes_for_me.clear();
            out.push(Action::SaveHardState(self.hard_state()));
        }
        if let RoleState::Leader(l) = &mut self.role {
            let failed = l.reads_waiting.drain(..).chain(
                l.round
                    .take()
                    .into_iter()
                    .flat_map(|(_, r)| r.into_iter().map(|(read, _)| read)),
            );
            for read in failed.collect::<Vec<_>>() {
                match read.from {
                    None => out.push(Action::ReadFailed {
                        ctx: read.ctx,
                        leader,
                    }),
                    // The follower learns at once instead of waiting for its timeout.
                    Some(to) => out.push(read_index_reply(to, self.term, read.ctx, None)),
                }
            }
        }
        self.role = RoleState::Follower;
        self.leader = leader;
        self.reset_election_timer();
    }

    fn become_leader(&mut self, out: &mut Vec<Action>) {
        self.failed_elections = 0;
        let next = self.log.last_index() + 1;
        self.role = RoleState::Leader(Box::new(Leader {
            progress: self
                .peers
                .iter()
                .map(|&id| Progress::new(id, next))
                .collect(),
            heartbeat_elapsed: 0,
            quorum_elapsed: 0,
            seq: 1,
            reads_waiting: Vec::new(),
            round: None,
        }));
        self.leader = Some(self.cfg.id);
        if self.cfg.leader_noop {
            self.append_local(Payload::Noop, out);
        }
        self.broadcast_append(out);
        self.maybe_commit(out);
    }

    // ----- proposals and replication (5.3) -------------------------------------------------

    fn propose(&mut self, data: Bytes, out: &mut Vec<Action>) {
        if !self.is_leader() {
            out.push(Action::NotLeader {
                leader: self.leader,
            });
            return;
        }
        let index = self.append_local(Payload::Command(data), out);
        out.push(Action::Proposed {
            index,
            term: self.term,
        });
        self.broadcast_append(out);
        if self.peers.is_empty() {
            // Alone, the leader's own copy is the majority.
            self.maybe_commit(out);
        }
    }

    fn propose_batch(&mut self, batch: Vec<Bytes>, out: &mut Vec<Action>) {
        if !self.is_leader() {
            let leader = self.leader;
            out.extend(batch.iter().map(|_| Action::NotLeader { leader }));
            return;
        }
        if batch.is_empty() {
            return;
        }
        let first = self.log.last_index() + 1;
        let term = self.term;
        let mut entries = Vec::with_capacity(batch.len());
        for (k, data) in batch.into_iter().enumerate() {
            let entry = Entry {
                term,
                index: first + k as Index,
                payload: Payload::Command(data),
            };
            self.log.push(entry.clone());
            entries.push(entry);
        }
        let count = entries.len() as Index;
        out.push(Action::AppendLog(entries));
        out.extend((0..count).map(|k| Action::Proposed {
            index: first + k,
            term,
        }));
        self.broadcast_append(out);
        if self.peers.is_empty() {
            self.maybe_commit(out);
        }
    }

    fn append_local(&mut self, payload: Payload, out: &mut Vec<Action>) -> Index {
        let entry = Entry {
            term: self.term,
            index: self.log.last_index() + 1,
            payload,
        };
        let index = entry.index;
        self.log.push(entry.clone());
        out.push(Action::AppendLog(vec![entry]));
        index
    }

    /// Sends new entries to every follower whose window allows it.
    fn broadcast_append(&mut self, out: &mut Vec<Action>) {
        for i in 0..self.peers.len() {
            self.send_append(i, false, out);
        }
    }

    /// Heartbeat timeout: retry stalled streams and probes, and make sure every follower
    /// hears from the leader (section 5.2).
    fn heartbeat(&mut self, out: &mut Vec<Action>) {
        let retry_snapshot_after = self.cfg.election_ticks_min / self.cfg.heartbeat_ticks;
        let (now, patience) = (self.now, u64::from(self.cfg.heartbeat_ticks));
        if let RoleState::Leader(l) = &mut self.role {
            for p in &mut l.progress {
                match p.mode {
                    Mode::Probe { .. } => p.mode = Mode::Probe { sent: false },
                    Mode::Replicate => {
                        let oldest_overdue = p
                            .inflight
                            .front()
                            .is_some_and(|&(_, sent)| now - sent >= patience);
                        if oldest_overdue && p.match_index == p.match_at_heartbeat {
                            // Nothing acknowledged for a whole heartbeat interval although
                            // a request is overdue: assume it was lost and probe again.
                            p.become_probe(p.match_index + 1);
                        }
                    }
                    Mode::Snapshot { .. } => {
                        p.snapshot_wait += 1;
                        if p.snapshot_wait > retry_snapshot_after {
                            p.become_probe(p.match_index + 1);
                        }
                    }
                }
                p.match_at_heartbeat = p.match_index;
            }
        }
        for i in 0..self.peers.len() {
            self.send_append(i, true, out);
        }
    }

    /// Sends what follower `i` (index into `progress`) needs: entries if its window allows,
    /// the snapshot if its next entry was compacted, or (with `force`) an empty heartbeat.
    fn send_append(&mut self, i: usize, force: bool, out: &mut Vec<Action>) {
        let RoleState::Leader(l) = &mut self.role else {
            return;
        };
        let p = &mut l.progress[i];
        let seq = l.seq;
        let mut sent = false;
        let last_index = self.log.last_index();
        let batch = self.cfg.max_append_entries as Index;
        // Coalesce: while requests are in flight, hold back a partial batch; it leaves with
        // the next acknowledgement, together with whatever is proposed meanwhile. A lone
        // proposal on an idle stream still goes out at once.
        let hold_back = |p: &Progress| {
            matches!(p.mode, Mode::Replicate)
                && !p.inflight.is_empty()
                && last_index + 1 - p.next_index.min(last_index + 1) < batch
        };
        if p.can_send(self.cfg.max_inflight) && !hold_back(p) {
            let prev_index = p.next_index - 1;
            match self.log.term_at(prev_index) {
                None if prev_index < self.log.snapshot_meta().index => {
                    // The follower needs entries we compacted: send the snapshot (section 7).
                    if let Some(snapshot) = &self.snapshot {
                        p.mode = Mode::Snapshot {
                            index: snapshot.meta.index,
                        };
                        p.snapshot_wait = 0;
                        p.inflight.clear();
                        out.push(Action::Send {
                            to: p.id,
                            msg: Message::InstallSnapshot {
                                term: self.term,
                                snapshot: snapshot.clone(),
                                seq,
                            },
                        });
                        return;
                    }
                }
                None => {
                    // next_index past our log can only follow a bogus reply; restart probing.
                    p.become_probe(self.log.last_index() + 1);
                }
                Some(prev_term) => {
                    let entries = self.log.slice(
                        p.next_index,
                        self.cfg.max_append_entries,
                        self.cfg.max_append_bytes,
                    );
                    let probing = matches!(p.mode, Mode::Probe { .. });
                    if !entries.is_empty() || probing {
                        let last = prev_index + entries.len() as Index;
                        match p.mode {
                            Mode::Probe { .. } => p.mode = Mode::Probe { sent: true },
                            _ => {
                                p.inflight.push_back((last, self.now));
                                p.next_index = last + 1;
                            }
                        }
                        out.push(Action::Send {
                            to: p.id,
                            msg: Message::AppendEntries {
                                term: self.term,
                                prev_index,
                                prev_term,
                                entries,
                                commit: self.commit,
                                seq,
                            },
                        });
                        sent = true;
                        // Keep streaming while the window allows (Replicate mode only).
                        while !probing && p.can_send(self.cfg.max_inflight) && !hold_back(p) {
                            let entries = self.log.slice(
                                p.next_index,
                                self.cfg.max_append_entries,
                                self.cfg.max_append_bytes,
                            );
                            if entries.is_empty() {
                                break;
                            }
                            let prev_index = p.next_index - 1;
                            let last = prev_index + entries.len() as Index;
                            p.inflight.push_back((last, self.now));
                            p.next_index = last + 1;
                            out.push(Action::Send {
                                to: p.id,
                                msg: Message::AppendEntries {
                                    term: self.term,
                                    prev_index,
                                    prev_term: self.log.term_at(prev_index).unwrap_or(0),
                                    entries,
                                    commit: self.commit,
                                    seq,
                                },
                            });
                        }
                    }
                }
            }
        }
        if force && !sent {
            // An empty AppendEntries at a point known to match: resets the follower's
            // election timer, carries the commit index safely, confirms the round.
            let (prev_index, prev_term) = match self.log.term_at(p.match_index) {
                Some(t) => (p.match_index, t),
                None => (0, 0),
            };
            out.push(Action::Send {
                to: p.id,
                msg: Message::AppendEntries {
                    term: self.term,
                    prev_index,
                    prev_term,
                    entries: Vec::new(),
                    commit: self.commit.min(prev_index),
                    seq,
                },
            });
        }
    }

    fn on_append_entries(
        &mut self,
        from: NodeId,
        (mut prev_index, mut prev_term): (Index, Term),
        mut entries: Vec<Entry>,
        leader_commit: Index,
        seq: u64,
        out: &mut Vec<Action>,
    ) {
        // Validate shape: consecutive indexes after prev_index, terms non-decreasing and
        // not above the sender's term. A correct leader never violates this.
        let mut expect = (prev_index, prev_term);
        for e in &entries {
            if e.index != expect.0 + 1 || e.term < expect.1 || e.term > self.term {
                self.stats.dropped_messages += 1;
                return;
            }
            expect = (e.index, e.term);
        }
        let snap = self.log.snapshot_meta();
        if prev_index < snap.index {
            // The prefix is already covered by our snapshot, which holds committed entries
            // only, so it matches the leader's log.
            let skip = (snap.index - prev_index) as usize;
            if skip >= entries.len() {
                let reply = AppendResult::Success {
                    match_index: snap.index,
                };
                self.reply_append(from, reply, seq, out);
                return;
            }
            entries.drain(..skip);
            prev_index = snap.index;
            prev_term = snap.term;
        }
        match self.log.term_at(prev_index) {
            None => {
                let reply = AppendResult::Conflict {
                    rejected: prev_index,
                    hint_term: None,
                    hint_index: self.log.last_index() + 1,
                };
                self.reply_append(from, reply, seq, out);
            }
            Some(t) if t != prev_term => {
                let reply = AppendResult::Conflict {
                    rejected: prev_index,
                    hint_term: Some(t),
                    hint_index: self.log.first_index_of_term_at(prev_index),
                };
                self.reply_append(from, reply, seq, out);
            }
            Some(_) => {
                let last_new = prev_index + entries.len() as Index;
                // Skip entries we already hold; truncate at the first conflict (5.3).
                let mut start = entries.len();
                for (k, e) in entries.iter().enumerate() {
                    match self.log.term_at(e.index) {
                        Some(t) if t == e.term => continue,
                        Some(_) => {
                            if e.index <= self.commit {
                                // Would erase a committed entry: only a broken or forged
                                // leader sends this. Refuse the whole message.
                                self.stats.dropped_messages += 1;
                                return;
                            }
                            self.log.truncate_from(e.index);
                            self.durable = self.durable.min(e.index - 1);
                            out.push(Action::TruncateLog { from: e.index });
                            start = k;
                        }
                        None => start = k,
                    }
                    break;
                }
                if start < entries.len() {
                    entries.drain(..start);
                    for e in &entries {
                        self.log.push(e.clone());
                    }
                    out.push(Action::AppendLog(entries));
                }
                let reply = AppendResult::Success {
                    match_index: last_new,
                };
                self.reply_append(from, reply, seq, out);
                let new_commit = leader_commit.min(last_new);
                if new_commit > self.commit {
                    self.commit = new_commit;
                    self.apply_committed(out);
                }
            }
        }
    }

    fn reply_append(&self, to: NodeId, result: AppendResult, seq: u64, out: &mut Vec<Action>) {
        out.push(Action::Send {
            to,
            msg: Message::AppendReply {
                term: self.term,
                result,
                seq,
            },
        });
    }

    fn on_append_reply(
        &mut self,
        from: NodeId,
        result: AppendResult,
        seq: u64,
        out: &mut Vec<Action>,
    ) {
        let last = self.log.last_index();
        let Some((i, p)) = replying_peer(&mut self.role, from, seq) else {
            return;
        };
        match result {
            AppendResult::Success { match_index } => {
                if match_index > last {
                    // Claims entries we never sent: not a correct follower.
                    self.stats.dropped_messages += 1;
                    return;
                }
                let advanced = p.record_match(match_index);
                if matches!(p.mode, Mode::Probe { .. }) && match_index + 1 >= p.next_index {
                    // The probe position is confirmed: stream from here on. (A success
                    // below it answers an older heartbeat and proves nothing new.)
                    p.next_index = match_index + 1;
                    p.become_replicate();
                }
                if advanced {
                    self.maybe_commit(out);
                }
            }
            AppendResult::Conflict {
                rejected,
                hint_term,
                hint_index,
            } => {
                if rejected <= p.match_index || rejected >= p.next_index {
                    // Stale: we already know more, or it answers an older position.
                    self.check_reads(out);
                    return;
                }
                // Fast backup (5.3): skip the follower's whole conflicting term.
                let next = match hint_term {
                    Some(t) => self.log.last_index_of_term(t).map_or(hint_index, |i| i + 1),
                    None => hint_index,
                };
                let next = next.clamp(p.match_index + 1, rejected);
                p.become_probe(next);
            }
        }
        self.check_reads(out);
        self.send_append(i, false, out);
    }

    fn on_snapshot_reply(
        &mut self,
        from: NodeId,
        match_index: Index,
        seq: u64,
        out: &mut Vec<Action>,
    ) {
        let last = self.log.last_index();
        let Some((i, p)) = replying_peer(&mut self.role, from, seq) else {
            return;
        };
        if match_index > last {
            self.stats.dropped_messages += 1;
            return;
        }
        let advanced = p.record_match(match_index);
        if let Mode::Snapshot { index } = p.mode {
            if p.match_index >= index {
                p.become_replicate();
            } else {
                p.become_probe(p.match_index + 1);
            }
        }
        if advanced {
            self.maybe_commit(out);
        }
        self.check_reads(out);
        self.send_append(i, false, out);
    }

    /// Advances the commit index to the highest index stored on a majority, if that entry
    /// is from the current term (5.4.2: never count replicas of an older term's entry).
    fn maybe_commit(&mut self, out: &mut Vec<Action>) {
        let RoleState::Leader(l) = &self.role else {
            return;
        };
        let mut matched: smallvec::SmallVec<[Index; 8]> =
            l.progress.iter().map(|p| p.match_index).collect();
        matched.push(self.own_match());
        let q = quorum_index(&mut matched);
        if q > self.commit && self.log.term_at(q) == Some(self.term) {
            let first_in_term = self.log.term_at(self.commit) != Some(self.term);
            self.commit = q;
            self.apply_committed(out);
            if first_in_term {
                // Reads wait until the leader has committed an entry of its own term.
                self.check_reads(out);
            }
        }
    }

    /// How much of its own log the leader counts toward a commit.
    fn own_match(&self) -> Index {
        if self.cfg.durable_reports {
            self.durable.min(self.log.last_index())
        } else {
            self.log.last_index()
        }
    }

    /// The adapter's report that the log is durable through `index` (entry term `term`).
    fn log_durable(&mut self, index: Index, term: Term, out: &mut Vec<Action>) {
        let current =
            index <= self.log.snapshot_meta().index || self.log.term_at(index) == Some(term);
        if !self.cfg.durable_reports || !current || index > self.log.last_index() {
            self.stats.ignored_inputs += 1;
            return;
        }
        if index > self.durable {
            self.durable = index;
            self.maybe_commit(out);
        }
    }

    fn apply_committed(&mut self, out: &mut Vec<Action>) {
        if self.applied >= self.commit {
            return;
        }
        let (from, to) = (self.applied + 1, self.commit);
        let before = out.len();
        out.extend(self.log.iter_range(from, to).cloned().map(Action::Apply));
        // Invariant: snapshot index <= applied < commit <= last index, so every entry in
        // (applied, commit] is held in the log.
        assert_eq!(
            (out.len() - before) as Index,
            to - from + 1,
            "committed entries after the snapshot are in the log"
        );
        self.applied = to;
    }

    // ----- snapshots (section 7) -----------------------------------------------------------

    fn take_snapshot(&mut self, index: Index, data: Bytes, out: &mut Vec<Action>) {
        if index <= self.log.snapshot_meta().index || index > self.applied {
            self.stats.ignored_inputs += 1;
            return;
        }
        let Some(term) = self.log.term_at(index) else {
            self.stats.ignored_inputs += 1;
            return;
        };
        let snapshot = Snapshot {
            meta: SnapshotMeta { index, term },
            data,
        };
        self.log.compact_to(snapshot.meta);
        self.snapshot = Some(snapshot.clone());
        out.push(Action::SaveSnapshot(snapshot));
    }

    fn on_install_snapshot(
        &mut self,
        from: NodeId,
        snapshot: Snapshot,
        seq: u64,
        out: &mut Vec<Action>,
    ) {
        let meta = snapshot.meta;
        if meta.term > self.term {
            self.stats.dropped_messages += 1;
            return;
        }
        if meta.index > self.commit {
            self.log.compact_to(meta);
            // A log the snapshot replaced held nothing durable past it.
            self.durable = self.durable.min(self.log.last_index());
            self.commit = meta.index;
            self.applied = meta.index;
            self.snapshot = Some(snapshot.clone());
            out.push(Action::SaveSnapshot(snapshot.clone()));
            out.push(Action::RestoreSnapshot(snapshot));
        }
        // A stale snapshot is never installed over newer state; our committed prefix
        // matches the leader's log either way.
        out.push(Action::Send {
            to: from,
            msg: Message::SnapshotReply {
                term: self.term,
                match_index: self.commit,
                seq,
            },
        });
    }

    // ----- linearizable reads (thesis 6.4) -------------------------------------------------

    fn read_index(&mut self, ctx: u64, out: &mut Vec<Action>) {
        match (&mut self.role, self.leader) {
            (RoleState::Leader(l), _) => {
                l.reads_waiting.push(ReadRequest { ctx, from: None });
                self.check_reads(out);
            }
            (RoleState::Follower, Some(leader)) if self.cfg.follower_reads => {
                // Thesis 6.4: the leader confirms its leadership and names the index to
                // wait for; the service here serves the read once it applied that far.
                let id = self.next_read_id;
                self.next_read_id = id.wrapping_add(1);
                self.stats.reads_forwarded += 1;
                self.forwarded.push(Forwarded {
                    ctx,
                    id,
                    term: self.term,
                    sent: self.now,
                });
                out.push(Action::Send {
                    to: leader,
                    msg: Message::ReadIndex {
                        term: self.term,
                        ctx: id,
                    },
                });
            }
            _ => out.push(Action::ReadFailed {
                ctx,
                leader: self.leader,
            }),
        }
    }

    /// On the leader: a follower's forwarded read joins the next confirmation round. Any
    /// other node answers at once that it cannot serve it.
    fn on_read_index_request(&mut self, from: NodeId, ctx: u64, out: &mut Vec<Action>) {
        let RoleState::Leader(l) = &mut self.role else {
            out.push(read_index_reply(from, self.term, ctx, None));
            return;
        };
        l.reads_waiting.push(ReadRequest {
            ctx,
            from: Some(from),
        });
        self.check_reads(out);
    }

    /// On a follower: the leader's answer to a forwarded read. Answers nobody waits for
    /// any more (expired, or a duplicate) are ignored. `index` is trusted only from the
    /// current term: the leader confirmed its leadership after it received the request, so
    /// every write completed before the read began is at or below `index`; an answer from
    /// an older term is failed instead, which keeps the rule simple to check.
    fn on_read_index_reply(
        &mut self,
        msg_term: Term,
        id: u64,
        index: Option<Index>,
        out: &mut Vec<Action>,
    ) {
        let Some(at) = self.forwarded.iter().position(|f| f.id == id) else {
            return;
        };
        let f = self.forwarded.remove(at);
        let ctx = f.ctx;
        match index {
            Some(index) if msg_term == self.term && f.term == self.term => {
                out.push(Action::ReadReady { ctx, index })
            }
            _ => {
                self.stats.forwarded_reads_failed += 1;
                out.push(Action::ReadFailed {
                    ctx,
                    leader: self.leader,
                })
            }
        }
    }

    /// Fails forwarded reads whose term has passed or whose answer is overdue (lost
    /// request or reply), so the service can answer its clients.
    fn expire_forwarded(&mut self, out: &mut Vec<Action>) {
        let (term, now, patience) = (self.term, self.now, u64::from(self.cfg.election_ticks_min));
        let leader = self.leader;
        let before = self.forwarded.len();
        self.forwarded.retain(|f| {
            let keep = f.term == term && now - f.sent < patience;
            if !keep {
                out.push(Action::ReadFailed { ctx: f.ctx, leader });
            }
            keep
        });
        self.stats.forwarded_reads_failed += (before - self.forwarded.len()) as u64;
    }

    /// Completes the confirmation round if a majority answered it, and starts the next
    /// round for waiting reads once the leader has committed an entry of its term.
    fn check_reads(&mut self, out: &mut Vec<Action>) {
        let quorum = majority(self.cfg.members.len());
        let committed_in_term = self.log.term_at(self.commit) == Some(self.term);
        let RoleState::Leader(l) = &mut self.role else {
            return;
        };
        if let Some((seq, _)) = &l.round {
            let acks = 1 + l.progress.iter().filter(|p| p.ack_seq >= *seq).count();
            if acks >= quorum {
                let (_, reads) = l.round.take().expect("checked above");
                for (read, index) in reads {
                    let ctx = read.ctx;
                    match read.from {
                        None => out.push(Action::ReadReady { ctx, index }),
                        Some(to) => out.push(read_index_reply(to, self.term, ctx, Some(index))),
                    }
                }
            }
        }
        if l.round.is_none() && !l.reads_waiting.is_empty() && committed_in_term {
            l.seq += 1;
            let reads = l
                .reads_waiting
                .drain(..)
                .map(|c| (c, self.commit))
                .collect();
            l.round = Some((l.seq, reads));
            if self.peers.is_empty() {
                self.check_reads(out);
            } else {
                for i in 0..self.peers.len() {
                    self.send_append(i, true, out);
                }
            }
        }
    }

    // ----- message dispatch ----------------------------------------------------------------

    fn receive(&mut self, from: NodeId, msg: Message, out: &mut Vec<Action>) {
        if from == self.cfg.id || self.peers.binary_search(&from).is_err() {
            self.stats.dropped_messages += 1;
            return;
        }
        let term = msg.term();
        if term > self.term {
            match msg {
                // A pre-vote request or a granted pre-vote carries a prospective term:
                // it changes nobody's term.
                Message::RequestVote { pre_vote: true, .. }
                | Message::VoteReply {
                    pre_vote: true,
                    granted: true,
                    ..
                } => {}
                Message::RequestVote { .. } if self.cfg.pre_vote && self.in_leader_lease() => {
                    // We hear from a live leader: ignore a disruptive candidate.
                    return;
                }
                Message::AppendEntries { .. } | Message::InstallSnapshot { .. } => {
                    self.become_follower(term, Some(from), out);
                }
                _ => self.become_follower(term, None, out),
            }
        } else if term < self.term {
            match msg {
                Message::RequestVote { pre_vote, .. } => {
                    out.push(Action::Send {
                        to: from,
                        msg: Message::VoteReply {
                            term: self.term,
                            granted: false,
                            pre_vote,
                        },
                    });
                }
                Message::AppendEntries {
                    prev_index, seq, ..
                } => {
                    // Tell the stale leader about the newer term so it steps down.
                    let reply = AppendResult::Conflict {
                        rejected: prev_index,
                        hint_term: None,
                        hint_index: 0,
                    };
                    self.reply_append(from, reply, seq, out);
                }
                Message::InstallSnapshot { seq, .. } => out.push(Action::Send {
                    to: from,
                    msg: Message::SnapshotReply {
                        term: self.term,
                        match_index: 0,
                        seq,
                    },
                }),
                Message::ReadIndex { ctx, .. } => {
                    out.push(read_index_reply(from, self.term, ctx, None))
                }
                Message::ReadIndexReply { term, ctx, index } => {
                    self.on_read_index_reply(term, ctx, index, out)
                }
                _ => {}
            }
            return;
        }
        match msg {
            Message::RequestVote {
                term,
                last_index,
                last_term,
                pre_vote,
            } => self.on_request_vote(from, term, last_index, last_term, pre_vote, out),
            Message::VoteReply {
                term,
                granted,
                pre_vote,
            } => self.on_vote_reply(from, term, granted, pre_vote, out),
            Message::AppendEntries {
                prev_index,
                prev_term,
                entries,
                commit,
                seq,
                ..
            } => {
                if !self.accept_leader(from, out) {
                    return;
                }
                self.on_append_entries(from, (prev_index, prev_term), entries, commit, seq, out);
            }
            Message::InstallSnapshot { snapshot, seq, .. } => {
                if !self.accept_leader(from, out) {
                    return;
                }
                self.on_install_snapshot(from, snapshot, seq, out);
            }
            Message::AppendReply { result, seq, .. } => {
                self.on_append_reply(from, result, seq, out)
            }
            Message::SnapshotReply {
                match_index, seq, ..
            } => self.on_snapshot_reply(from, match_index, seq, out),
            Message::ReadIndex { ctx, .. } => self.on_read_index_request(from, ctx, out),
            Message::ReadIndexReply { term, ctx, index } => {
                self.on_read_index_reply(term, ctx, index, out)
            }
        }
    }

    /// A request from the leader of our current term: follow it and reset the election
    /// timer. Refuses a second leader in the same term (impossible with correct peers).
    fn accept_leader(&mut self, from: NodeId, out: &mut Vec<Action>) -> bool {
        match self.role {
            RoleState::Leader(_) => {
                self.stats.dropped_messages += 1;
                false
            }
            RoleState::Follower if self.leader == Some(from) => {
                self.election_elapsed = 0;
                self.failed_elections = 0;
                true
            }
            RoleState::Follower if self.leader.is_some() => {
                self.stats.dropped_messages += 1;
                false
            }
            _ => {
                self.failed_elections = 0;
                self.become_follower(self.term, Some(from), out);
                true
            }
        }
    }
}

#[cfg(test)]
#[path = "node_tests.rs"]
mod tests;

/// The answer to a forwarded read, from a node in `term`: the read index, or `None` when
/// it cannot serve the read.
fn read_index_reply(to: NodeId, term: Term, ctx: u64, index: Option<Index>) -> Action {
    Action::Send {
        to,
        msg: Message::ReadIndexReply { term, ctx, index },
    }
}

/// The first wire tag of a node's forwarded reads: `seed` and `id` mixed (SplitMix64's
/// finalizer), without touching the node's PRNG, whose sequence fixes the election
/// timeouts of a seed.
fn incarnation_tag(seed: u64, id: NodeId) -> u64 {
    let mut z = seed ^ id.rotate_left(32) ^ 0x9e37_79b9_7f4a_7c15;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// On a leader, the progress of peer `from` (and its position), after noting that it
/// answered: it is active, and it acknowledged round `seq`. `None` on a non-leader or for
/// a node that is not a peer.
fn replying_peer(role: &mut RoleState, from: NodeId, seq: u64) -> Option<(usize, &mut Progress)> {
    let RoleState::Leader(l) = role else {
        return None;
    };
    let i = l.progress.iter().position(|p| p.id == from)?;
    let p = &mut l.progress[i];
    p.active = true;
    p.ack_seq = p.ack_seq.max(seq);
    Some((i, p))
}
