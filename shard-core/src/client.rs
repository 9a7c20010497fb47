//! The sharded service's client: a sans-IO state machine that routes each operation to the
//! group serving its key's shard.
//!
//! A [`ShardClerk`] runs one operation at a time (more are queued; results come in start
//! order as [`Action::Done`]):
//!
//! * **Routing.** The key's shard is [`key_to_shard`](crate::key::key_to_shard) (FNV-1a 64
//!   modulo the number of shards); the group is the shard's owner in the cached
//!   configuration. The clerk asks the controller for the latest configuration when it has
//!   none, when the owner is gid 0, when a server answers `WrongGroup`, and when a whole
//!   round of the group's servers went unanswered (the group may have left).
//! * **Retries.** Within a group it follows leader hints, resends on timeout and backs off
//!   after a full round of refusals ([`Retry`]), remembering each group's leader. After a
//!   `WrongGroup` with no newer configuration (the shard is still moving in), it waits
//!   [`ShardClerkConfig::backoff_ticks`] and tries again.
//! * **Exactly-once.** Every write carries the clerk's [`Session`](stepwise_kv::Session)
//!   (client id, sequence number), the same across all retries and groups; the shard's
//!   session table moves with the shard, so a write executes once even if its shard moves
//!   between retries.
//!
//! ```
//! use stepwise_kv::Op;
//! use stepwise_shard::client::{Action, Input, ShardClerk, ShardClerkConfig};
//!
//! let mut clerk = ShardClerk::new(ShardClerkConfig::new(7, vec![0, 1, 2]));
//! // No configuration yet: the clerk first asks the controller.
//! let actions = clerk.step(Input::Start(Op::put_any("k", "v")));
//! assert!(matches!(actions[..], [Action::SendCtrler { to: 0, .. }]));
//! ```

use std::collections::{BTreeMap, VecDeque};

use stepwise_kv::clerk::RequestIds;
use stepwise_kv::{KvError, KvResult, Op, Reply, Request};

use crate::config::{Addr, Gid, ShardConfig};
use crate::ctrler::clerk::{self as cclerk, CtrlerClerk, CtrlerClerkConfig};
use crate::ctrler::{CtrlOp, CtrlOutput};
use crate::message::{CtrlReply, CtrlRequest};
use crate::retry::Retry;

/// How a [`ShardClerk`] behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardClerkConfig {
    /// The clerk's id, unique among the service's clients (the session's client id).
    pub client: u64,
    /// The controller servers' addresses.
    pub ctrlers: Vec<Addr>,
    /// Tag writes with a session for exactly-once execution.
    pub sessions: bool,
    /// Resend to the next server when no reply came within this many ticks.
    pub retry_ticks: u32,
    /// Pause after a round of refusals, or after `WrongGroup` without a newer
    /// configuration.
    pub backoff_ticks: u32,
    /// Give up on an operation after this many ticks with [`KvError::Timeout`]; `None`
    /// retries forever (as the lab's clerks do).
    pub deadline_ticks: Option<u32>,
}

impl ShardClerkConfig {
    /// Defaults for a 10 ms tick: sessions on, retry after 100 ms, back off 50 ms, no
    /// deadline.
    pub fn new(client: u64, ctrlers: Vec<Addr>) -> Self {
        ShardClerkConfig {
            client,
            ctrlers,
            sessions: true,
            retry_ticks: 10,
            backoff_ticks: 5,
            deadline_ticks: None,
        }
    }
}

/// Everything that can happen to a [`ShardClerk`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// One unit of logical time.
    Tick,
    /// Run an operation (after those already started).
    Start(Op),
    /// A shard group server's reply arrived.
    Receive {
        /// The server that sent it.
        from: Addr,
        /// The reply.
        reply: Reply,
    },
    /// A controller server's reply arrived.
    Ctrler {
        /// The controller server.
        from: Addr,
        /// The reply.
        reply: CtrlReply,
    },
}

/// What the adapter must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send this request to the shard group server `to`.
    Send {
        /// The server.
        to: Addr,
        /// The request.
        request: Request,
    },
    /// Send this query to the controller server `to`.
    SendCtrler {
        /// The controller server.
        to: Addr,
        /// The request.
        request: CtrlRequest,
    },
    /// The oldest started operation finished with this result.
    Done(KvResult),
}

/// Counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShardClerkStats {
    /// Requests sent to groups (every transmission).
    pub sent: u64,
    /// `WrongGroup` answers.
    pub wrong_group: u64,
    /// Configuration queries started.
    pub refreshes: u64,
}

/// Where the operation in flight stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Sent to a server of `gid`.
    Sent { gid: Gid, misses: usize },
    /// Waiting for a configuration before sending.
    NeedConfig,
    /// Waiting this many ticks before sending again.
    Pause(u32),
}

#[derive(Debug)]
struct Current {
    request: Request,
    phase: Phase,
    elapsed: u32,
}

/// A sans-IO client of the sharded service. See the [module docs](self).
#[derive(Debug)]
pub struct ShardClerk {
    cfg: ShardClerkConfig,
    config: Option<ShardConfig>,
    ctrl: CtrlerClerk,
    ctrl_out: Vec<cclerk::Action>,
    refreshing: bool,
    groups: BTreeMap<Gid, Retry>,
    queue: VecDeque<Op>,
    current: Option<Current>,
    ids: RequestIds,
    stats: ShardClerkStats,
}

impl ShardClerk {
    /// A clerk without a configuration yet.
    ///
    /// # Panics
    /// If `config.ctrlers` is empty.
    pub fn new(config: ShardClerkConfig) -> Self {
        let mut ccfg = CtrlerClerkConfig::new(config.client, config.ctrlers.clone());
        ccfg.sessions = false;
        ccfg.retry_ticks = config.retry_ticks;
        ccfg.backoff_ticks = config.backoff_ticks;
        ShardClerk {
            ctrl: CtrlerClerk::new(ccfg),
            ids: RequestIds::new(config.client, config.sessions),
            cfg: config,
            config: None,
            ctrl_out: Vec::new(),
            refreshing: false,
            groups: BTreeMap::new(),
            queue: VecDeque::new(),
            current: None,
            stats: ShardClerkStats::default(),
        }
    }

    /// The cached configuration.
    pub fn shard_config(&self) -> Option<&ShardConfig> {
        self.config.as_ref()
    }

    /// Whether no operation is in flight or queued.
    pub fn is_idle(&self) -> bool {
        self.current.is_none() && self.queue.is_empty()
    }

    /// The request in flight, if any.
    pub fn in_flight(&self) -> Option<&Request> {
        self.current.as_ref().map(|c| &c.request)
    }

    /// Counters.
    pub fn stats(&self) -> ShardClerkStats {
        self.stats
    }

    /// Feeds one input and returns the actions to carry out.
    pub fn step(&mut self, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        self.step_into(input, &mut out);
        out
    }

    /// Like [`ShardClerk::step`], but appends the actions to `out`.
    pub fn step_into(&mut self, input: Input, out: &mut Vec<Action>) {
        match input {
            Input::Tick => self.tick(out),
            Input::Start(op) => {
                self.queue.push_back(op);
                if self.current.is_none() {
                    self.begin_next(out);
                }
            }
            Input::Receive { from, reply } => self.receive(from, reply, out),
            Input::Ctrler { from, reply } => {
                if self.refreshing {
                    self.ctrl_step(cclerk::Input::Receive { from, reply }, out);
                }
            }
        }
    }

    fn begin_next(&mut self, out: &mut Vec<Action>) {
        let Some(op) = self.queue.pop_front() else {
            return;
        };
        let (id, session) = self.ids.next(!op.is_read());
        self.current = Some(Current {
            request: Request { id, session, op },
            phase: Phase::NeedConfig,
            elapsed: 0,
        });
        self.route(out);
    }

    /// Sends the operation in flight to its group, or asks for a configuration first.
    fn route(&mut self, out: &mut Vec<Action>) {
        let Some(cur) = self.current.as_mut() else {
            return;
        };
        let gid = self
            .config
            .as_ref()
            .map_or(0, |c| c.owner_of(cur.request.op.key()));
        let servers = self.config.as_ref().map_or(&[][..], |c| c.servers(gid));
        if gid == 0 || servers.is_empty() {
            cur.phase = Phase::NeedConfig;
            self.refresh(out);
            return;
        }
        let retry = self.groups.entry(gid).or_insert_with(|| {
            Retry::new(
                servers.to_vec(),
                self.cfg.retry_ticks,
                self.cfg.backoff_ticks,
            )
        });
        retry.sent();
        cur.phase = Phase::Sent { gid, misses: 0 };
        self.stats.sent += 1;
        out.push(Action::Send {
            to: retry.target(),
            request: cur.request.clone(),
        });
    }

    fn resend(&mut self, gid: Gid, out: &mut Vec<Action>) {
        let (Some(cur), Some(retry)) = (self.current.as_ref(), self.groups.get_mut(&gid)) else {
            return;
        };
        retry.sent();
        self.stats.sent += 1;
        out.push(Action::Send {
            to: retry.target(),
            request: cur.request.clone(),
        });
    }

    /// Asks the controller for the latest configuration (once at a time).
    fn refresh(&mut self, out: &mut Vec<Action>) {
        if self.refreshing {
            return;
        }
        self.refreshing = true;
        self.stats.refreshes += 1;
        self.ctrl_step(
            cclerk::Input::Start {
                op: CtrlOp::latest(),
                expect: None,
            },
            out,
        );
    }

    fn ctrl_step(&mut self, input: cclerk::Input, out: &mut Vec<Action>) {
        let done = self
            .ctrl
            .step_embedded(input, &mut self.ctrl_out, |to, request| {
                out.push(Action::SendCtrler { to, request })
            });
        if let Some(result) = done {
            self.refreshing = false;
            if let Ok(CtrlOutput::Config(config)) = result {
                self.learn(config, out);
            }
        }
    }

    /// A configuration arrived from the controller.
    fn learn(&mut self, config: ShardConfig, out: &mut Vec<Action>) {
        let newer = self.config.as_ref().is_none_or(|c| config.num > c.num);
        if newer {
            self.groups.retain(|g, _| config.groups.contains_key(g));
            for (g, retry) in &mut self.groups {
                retry.set_servers(config.servers(*g));
            }
            self.config = Some(config);
        }
        let Some(cur) = self.current.as_mut() else {
            return;
        };
        match cur.phase {
            Phase::NeedConfig if newer => self.route(out),
            // Same configuration: the shard is still moving in. Try again shortly.
            Phase::NeedConfig => cur.phase = Phase::Pause(self.cfg.backoff_ticks.max(1)),
            Phase::Sent { gid, .. } if newer => {
                let owner = self
                    .config
                    .as_ref()
                    .map_or(0, |c| c.owner_of(cur.request.op.key()));
                if owner != gid {
                    self.route(out); // the shard moved while we waited
                }
            }
            Phase::Sent { .. } | Phase::Pause(_) => {}
        }
    }

    fn tick(&mut self, out: &mut Vec<Action>) {
        if self.refreshing {
            self.ctrl_step(cclerk::Input::Tick, out);
        }
        let Some(cur) = self.current.as_mut() else {
            return;
        };
        cur.elapsed = cur.elapsed.saturating_add(1);
        if self.cfg.deadline_ticks.is_some_and(|d| cur.elapsed >= d) {
            self.finish(Err(KvError::Timeout), out);
            return;
        }
        match &mut cur.phase {
            Phase::NeedConfig => {}
            Phase::Pause(left) => {
                *left = left.saturating_sub(1);
                if *left == 0 {
                    // Try the owner in the cached configuration again.
                    self.route(out);
                }
            }
            Phase::Sent { gid, misses } => {
                let gid = *gid;
                let Some(retry) = self.groups.get_mut(&gid) else {
                    // The group left the configuration.
                    self.route(out);
                    return;
                };
                if retry.tick() {
                    *misses += 1;
                    if *misses >= retry.servers().len() {
                        // Nobody in the group answers: it may have left.
                        *misses = 0;
                        self.refresh(out);
                    }
                    self.resend(gid, out);
                }
            }
        }
    }

    fn receive(&mut self, from: Addr, reply: Reply, out: &mut Vec<Action>) {
        let Some(cur) = self.current.as_mut() else {
            return;
        };
        let Phase::Sent { gid, .. } = cur.phase else {
            return;
        };
        if reply.id != cur.request.id {
            return;
        }
        match reply.result {
            Err(KvError::WrongLeader { leader }) => {
                if self
                    .groups
                    .get_mut(&gid)
                    .is_some_and(|r| r.refused(from, leader))
                {
                    self.resend(gid, out);
                }
            }
            Err(KvError::WrongGroup) => {
                self.stats.wrong_group += 1;
                cur.phase = Phase::NeedConfig;
                self.refresh(out);
            }
            // Only a duplicate client id can produce this; keep waiting for our answer.
            Err(KvError::Stale) => {}
            result => {
                if let Some(r) = self.groups.get_mut(&gid) {
                    r.answered(from);
                }
                self.finish(result, out);
            }
        }
    }

    fn finish(&mut self, result: KvResult, out: &mut Vec<Action>) {
        self.current = None;
        out.push(Action::Done(result));
        self.begin_next(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::key_to_shard;
    use stepwise_kv::KvOutput;

    fn config(num: u64, shards: Vec<Gid>) -> ShardConfig {
        let mut groups = BTreeMap::new();
        for &g in &shards {
            groups.insert(g, vec![g * 10, g * 10 + 1]);
        }
        ShardConfig {
            num,
            shards,
            groups,
        }
    }

    fn ctrl_reply(actions: &[Action], config: ShardConfig) -> Input {
        let id = actions
            .iter()
            .find_map(|a| match a {
                Action::SendCtrler { request, .. } => Some(request.id),
                _ => None,
            })
            .expect("a controller query");
        Input::Ctrler {
            from: 0,
            reply: CtrlReply {
                id,
                result: Ok(CtrlOutput::Config(config)),
            },
        }
    }

    fn sent(actions: &[Action]) -> Vec<(Addr, u64, Option<u64>)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Send { to, request } => {
                    Some((*to, request.id, request.session.map(|s| s.seq)))
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn routes_by_key_hash_and_follows_wrong_group_to_the_new_owner() {
        let mut c = ShardClerk::new(ShardClerkConfig::new(5, vec![0]));
        let key = "k0";
        let shard = key_to_shard(key.as_bytes(), 2);
        let mut shards = vec![1, 1];
        let a = c.step(Input::Start(Op::append(key, "x")));
        let a = c.step(ctrl_reply(&a, config(1, shards.clone())));
        assert_eq!(sent(&a), [(10, 1, Some(1))]);
        // The shard moved to group 2: WrongGroup, a refresh, the same request to group 2.
        let a = c.step(Input::Receive {
            from: 10,
            reply: Reply {
                id: 1,
                result: Err(KvError::WrongGroup),
            },
        });
        assert!(sent(&a).is_empty());
        shards[shard] = 2;
        let a = c.step(ctrl_reply(&a, config(2, shards)));
        assert_eq!(sent(&a), [(20, 1, Some(1))], "same id and session");
        let a = c.step(Input::Receive {
            from: 20,
            reply: Reply {
                id: 1,
                result: Ok(KvOutput::Written { version: 1 }),
            },
        });
        assert_eq!(a, [Action::Done(Ok(KvOutput::Written { version: 1 }))]);
        assert_eq!(c.stats().wrong_group, 1);
    }

    #[test]
    fn wrong_group_without_a_newer_configuration_waits_and_tries_again() {
        let mut cfg = ShardClerkConfig::new(5, vec![0]);
        cfg.backoff_ticks = 2;
        let mut c = ShardClerk::new(cfg);
        let a = c.step(Input::Start(Op::get("k")));
        let a = c.step(ctrl_reply(&a, config(1, vec![1])));
        assert_eq!(sent(&a), [(10, 1, None)]);
        let wrong = Input::Receive {
            from: 10,
            reply: Reply {
                id: 1,
                result: Err(KvError::WrongGroup),
            },
        };
        let a = c.step(wrong.clone());
        let a = c.step(ctrl_reply(&a, config(1, vec![1])));
        assert!(a.is_empty(), "no newer configuration: pause");
        assert!(c.step(Input::Tick).is_empty());
        assert_eq!(sent(&c.step(Input::Tick)), [(10, 1, None)]);
        // Refused again; this time the controller has moved on.
        let a = c.step(wrong);
        let a = c.step(ctrl_reply(&a, config(2, vec![1])));
        assert_eq!(sent(&a), [(10, 1, None)]);
        assert_eq!(c.stats().wrong_group, 2);
    }

    #[test]
    fn a_silent_group_triggers_a_refresh_while_retrying() {
        let mut cfg = ShardClerkConfig::new(5, vec![0]);
        cfg.retry_ticks = 1;
        let mut c = ShardClerk::new(cfg);
        let a = c.step(Input::Start(Op::get("k")));
        c.step(ctrl_reply(&a, config(1, vec![1])));
        let a = c.step(Input::Tick);
        assert_eq!(sent(&a), [(11, 1, None)]);
        let a = c.step(Input::Tick);
        assert_eq!(sent(&a), [(10, 1, None)]);
        assert!(a.iter().any(|x| matches!(x, Action::SendCtrler { .. })));
    }

    /// Malformed or unexpected replies (empty configurations, unknown ids, refusals from
    /// anyone) never panic the clerk.
    #[test]
    fn arbitrary_replies_never_panic() {
        use quickcheck::{Gen, QuickCheck};

        fn prop(script: Vec<(u8, u64, u64)>) -> bool {
            let mut c = ShardClerk::new(ShardClerkConfig::new(5, vec![0, 1]));
            for (kind, a, b) in script {
                let shards: Vec<Gid> = (0..b % 4).map(|i| (a >> i) % 3).collect();
                let input = match kind % 5 {
                    0 => Input::Tick,
                    1 => Input::Start(Op::append(format!("k{}", a % 9), "x")),
                    2 => Input::Ctrler {
                        from: b % 3,
                        reply: CtrlReply {
                            id: a % 4,
                            result: Ok(CtrlOutput::Config(config(b % 5, shards))),
                        },
                    },
                    3 => Input::Receive {
                        from: a % 30,
                        reply: Reply {
                            id: b % 4,
                            result: match a % 4 {
                                0 => Err(KvError::WrongGroup),
                                1 => Err(KvError::WrongLeader {
                                    leader: Some(b % 30),
                                }),
                                2 => Err(KvError::Stale),
                                _ => Ok(KvOutput::Written { version: 1 }),
                            },
                        },
                    },
                    _ => Input::Ctrler {
                        from: 0,
                        reply: CtrlReply {
                            id: a % 4,
                            result: Err(crate::ctrler::CtrlError::WrongLeader { leader: None }),
                        },
                    },
                };
                c.step(input);
            }
            true
        }
        QuickCheck::new()
            .rng(Gen::from_size_and_seed(200, 0x5eed_0c11))
            .tests(500)
            .quickcheck(prop as fn(Vec<(u8, u64, u64)>) -> bool);
    }
}
