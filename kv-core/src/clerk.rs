//! The client: a sans-IO state machine that sends an operation to the servers until it gets
//! a definite answer.
//!
//! A [`Clerk`] runs one operation at a time ([`Input::Start`] queues more; results come in
//! start order as [`Action::Done`]). It remembers the leader, moves on to the next server
//! when a server is not the leader (following the server's hint when it has one) or when no
//! reply came within [`ClerkConfig::retry_ticks`], and pauses
//! [`ClerkConfig::backoff_ticks`] after every server in turn refused, so an election in
//! progress is not flooded ([`Retry`] does that bookkeeping).
//!
//! **Exactly-once.** With [`ClerkConfig::sessions`] on, every write carries the clerk's
//! [`Session`] (its id and the write's sequence number): however many copies reach the
//! servers, the write executes once and every copy gets the original answer. With sessions
//! off (the 2025 single server keeps no per-client state), only versioned Puts are safe to
//! retry: a retransmitted versioned Put that is refused with [`KvError::Version`] (or
//! [`KvError::NoKey`]) may have been applied by an earlier copy, so the clerk reports
//! [`KvError::Maybe`], as the lab specifies. Unconditional Puts and Appends without sessions
//! are at-least-once.
//!
//! ```
//! use stepwise_kv::clerk::{Action, Clerk, ClerkConfig, Input};
//! use stepwise_kv::server::Server;
//! use stepwise_kv::{KvOutput, Op};
//!
//! let mut clerk = Clerk::new(ClerkConfig::new(7, vec![0]));
//! let mut server = Server::new();
//! let mut done = Vec::new();
//! let mut pending = clerk.step(Input::Start(Op::put("k", "v", 0)));
//! while let Some(action) = pending.pop() {
//!     match action {
//!         // A real adapter sends this over the network; here the server answers at once.
//!         Action::Send { to, request } => {
//!             let reply = server.handle(request);
//!             pending.extend(clerk.step(Input::Receive { from: to, reply }));
//!         }
//!         Action::Done(result) => done.push(result),
//!     }
//! }
//! assert_eq!(done, [Ok(KvOutput::Written { version: 1 })]);
//! ```

use std::collections::VecDeque;

use stepwise_raft::NodeId;

use crate::kv::{KvError, KvResult, Op};
use crate::message::{Reply, Request};
use crate::retry::Retry;
use crate::rsm::Session;

/// How a [`Clerk`] behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClerkConfig {
    /// The clerk's id, unique among the service's clients (the session's client id).
    pub client: u64,
    /// The servers' addresses, which are also their Raft ids (a server's leader hint names
    /// one of them).
    pub servers: Vec<NodeId>,
    /// Tag writes with a session for exactly-once execution (see the [module docs](self)).
    pub sessions: bool,
    /// Resend to the next server when no reply came within this many ticks.
    pub retry_ticks: u32,
    /// After every server in turn refused, wait this many ticks before trying again.
    pub backoff_ticks: u32,
    /// Give up on an operation after this many ticks with [`KvError::Timeout`]; `None`
    /// retries forever (as the lab's clerks do).
    pub deadline_ticks: Option<u32>,
    /// Send Gets to this server first instead of the leader: a follower that serves reads
    /// (the servers need [`Config::follower_reads`](stepwise_raft::Config::follower_reads)),
    /// for instance the one nearest the client, to take reads off the leader. A refusal, or
    /// no answer within `retry_ticks`, sends the Get on to the leader as usual; answers from
    /// this server do not change which server the clerk takes for the leader. `None` (the
    /// default): Gets go to the leader like everything else.
    pub read_from: Option<NodeId>,
}

impl ClerkConfig {
    /// Defaults for a 10 ms tick: sessions on, retry after 100 ms, back off 50 ms, no
    /// deadline.
    pub fn new(client: u64, servers: Vec<NodeId>) -> Self {
        ClerkConfig {
            client,
            servers,
            sessions: true,
            retry_ticks: 10,
            backoff_ticks: 5,
            deadline_ticks: None,
            read_from: None,
        }
    }

    /// Turns sessions on or off (builder style).
    pub fn with_sessions(mut self, on: bool) -> Self {
        self.sessions = on;
        self
    }
}

/// Everything that can happen to a [`Clerk`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// One unit of logical time.
    Tick,
    /// A server's reply arrived.
    Receive {
        /// The server that sent it.
        from: NodeId,
        /// The reply.
        reply: Reply,
    },
    /// Run an operation (after those already started).
    Start(Op),
}

/// What the adapter must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send this request to the server `to`.
    Send {
        /// The server.
        to: NodeId,
        /// The request.
        request: Request,
    },
    /// The oldest started operation finished with this result.
    Done(KvResult),
}

/// Counters of what a clerk did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClerkStats {
    /// Requests sent (every transmission).
    pub sent: u64,
    /// Retransmissions after a timeout.
    pub timeouts: u64,
    /// Refusals from servers that were not the leader.
    pub wrong_leader: u64,
    /// Replies ignored because they answered an earlier operation or a server we had left.
    pub ignored: u64,
}

/// The operation in progress.
#[derive(Debug)]
struct Current {
    request: Request,
    /// Copies sent so far.
    transmissions: u32,
    /// Ticks since the operation started.
    elapsed: u32,
    /// A Get sent to [`ClerkConfig::read_from`] rather than the leader, and the ticks since.
    pinned: Option<(NodeId, u32)>,
}

/// Numbers a client's requests: an id per request (replies echo it, so late replies to
/// earlier requests are told apart) and, for writes when sessions are on, a [`Session`]
/// whose sequence number grows by one per write. Every clerk of the project (this one and
/// the sharded service's) numbers its requests with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestIds {
    client: u64,
    sessions: bool,
    next_id: u64,
    seq: u64,
}

impl RequestIds {
    /// Ids from 1, sequence numbers from 1, for client `client`.
    pub fn new(client: u64, sessions: bool) -> Self {
        RequestIds {
            client,
            sessions,
            next_id: 1,
            seq: 0,
        }
    }

    /// The id of the next request and, if it is a write and sessions are on, its session.
    pub fn next(&mut self, write: bool) -> (u64, Option<Session>) {
        let id = self.next_id;
        self.next_id += 1;
        let session = (self.sessions && write).then(|| {
            self.seq += 1;
            Session {
                client: self.client,
                seq: self.seq,
            }
        });
        (id, session)
    }
}

/// A sans-IO client of the KV service. See the [module docs](self).
#[derive(Debug)]
pub struct Clerk {
    cfg: ClerkConfig,
    /// Where to send and when to resend.
    retry: Retry,
    ids: RequestIds,
    queue: VecDeque<Op>,
    current: Option<Current>,
    stats: ClerkStats,
}

impl Clerk {
    /// A clerk that starts with the first server.
    ///
    /// # Panics
    /// If `config.servers` is empty (a clerk with nobody to talk to is a setup bug).
    pub fn new(config: ClerkConfig) -> Self {
        assert!(
            !config.servers.is_empty(),
            "a clerk needs at least one server"
        );
        Clerk {
            retry: Retry::new(
                config.servers.clone(),
                config.retry_ticks,
                config.backoff_ticks,
            ),
            ids: RequestIds::new(config.client, config.sessions),
            cfg: config,
            queue: VecDeque::new(),
            current: None,
            stats: ClerkStats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ClerkConfig {
        &self.cfg
    }

    /// The server the clerk will try first.
    pub fn leader_hint(&self) -> NodeId {
        self.retry.target()
    }

    /// Whether no operation is in progress or queued.
    pub fn is_idle(&self) -> bool {
        self.current.is_none() && self.queue.is_empty()
    }

    /// The request in progress, if any.
    pub fn in_flight(&self) -> Option<&Request> {
        self.current.as_ref().map(|c| &c.request)
    }

    /// Counters.
    pub fn stats(&self) -> ClerkStats {
        self.stats
    }

    /// Feeds one input and returns the actions to carry out.
    pub fn step(&mut self, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        self.step_into(input, &mut out);
        out
    }

    /// Like [`Clerk::step`], but appends the actions to `out`.
    pub fn step_into(&mut self, input: Input, out: &mut Vec<Action>) {
        match input {
            Input::Tick => self.tick(out),
            Input::Receive { from, reply } => self.receive(from, reply, out),
            Input::Start(op) => {
                if self.current.is_none() && self.queue.is_empty() {
                    // The common case; leaves the queue unallocated (a clerk's memory
                    // counts in the lab's per-client bounds).
                    self.begin(op, out);
                } else {
                    self.queue.push_back(op);
                }
            }
        }
    }

    fn begin_next(&mut self, out: &mut Vec<Action>) {
        if let Some(op) = self.queue.pop_front() {
            self.begin(op, out);
        }
    }

    fn begin(&mut self, op: Op, out: &mut Vec<Action>) {
        let read = op.is_read();
        let (id, session) = self.ids.next(!read);
        self.current = Some(Current {
            request: Request { id, session, op },
            transmissions: 0,
            elapsed: 0,
            pinned: self.cfg.read_from.filter(|_| read).map(|s| (s, 0)),
        });
        self.retry.restart();
        self.transmit(out);
    }

    fn transmit(&mut self, out: &mut Vec<Action>) {
        let Some(cur) = self.current.as_mut() else {
            return;
        };
        cur.transmissions += 1;
        self.retry.sent();
        self.stats.sent += 1;
        out.push(Action::Send {
            to: cur.pinned.map_or(self.retry.target(), |(s, _)| s),
            request: cur.request.clone(),
        });
    }

    fn tick(&mut self, out: &mut Vec<Action>) {
        let Some(cur) = self.current.as_mut() else {
            return;
        };
        cur.elapsed = cur.elapsed.saturating_add(1);
        if self.cfg.deadline_ticks.is_some_and(|d| cur.elapsed >= d) {
            self.finish(Err(KvError::Timeout), out);
            return;
        }
        if let Some((_, ticks)) = &mut cur.pinned {
            // The read server's own timeout; the leader's rotation is left alone.
            *ticks += 1;
            if *ticks >= self.cfg.retry_ticks {
                cur.pinned = None;
                self.stats.timeouts += 1;
                self.transmit(out);
            }
            return;
        }
        let backing_off = self.retry.backing_off();
        if self.retry.tick() {
            if !backing_off {
                self.stats.timeouts += 1;
            }
            self.transmit(out);
        }
    }

    fn receive(&mut self, from: NodeId, reply: Reply, out: &mut Vec<Action>) {
        let Some(cur) = self.current.as_mut() else {
            self.stats.ignored += 1;
            return;
        };
        if reply.id != cur.request.id {
            self.stats.ignored += 1;
            return;
        }
        if let Some((server, _)) = cur.pinned {
            if from != server {
                self.stats.ignored += 1;
                return;
            }
            if matches!(reply.result, Err(KvError::WrongLeader { .. })) {
                // The read server cannot serve it now: on to the leader.
                cur.pinned = None;
                self.stats.wrong_leader += 1;
                self.transmit(out);
            } else {
                self.finish(reply.result, out);
            }
            return;
        }
        match reply.result {
            Err(KvError::WrongLeader { leader }) => {
                if from != self.retry.target() || self.retry.backing_off() {
                    // From a server we already left: the one we wait for may still answer.
                    self.stats.ignored += 1;
                    return;
                }
                self.stats.wrong_leader += 1;
                if self.retry.refused(from, leader) {
                    self.transmit(out);
                }
            }
            Err(KvError::Stale) => {
                // Only a duplicate client id can produce this; keep waiting for our answer.
                self.stats.ignored += 1;
            }
            result => {
                if !(cur.request.op.is_read() && self.cfg.read_from == Some(from)) {
                    // (A late answer from the read server says nothing about the leader.)
                    self.retry.answered(from);
                }
                let maybe = !self.cfg.sessions
                    && cur.request.op.is_versioned_put()
                    && cur.transmissions > 1
                    && matches!(result, Err(KvError::Version | KvError::NoKey));
                let result = if maybe { Err(KvError::Maybe) } else { result };
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
    use crate::kv::KvOutput;

    fn sent(actions: &[Action]) -> Vec<(NodeId, u64)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Send { to, request } => Some((*to, request.id)),
                Action::Done(_) => None,
            })
            .collect()
    }

    fn reply(id: u64, result: KvResult) -> Reply {
        Reply { id, result }
    }

    #[test]
    fn follows_leader_hints_and_remembers_the_leader() {
        let mut c = Clerk::new(ClerkConfig::new(1, vec![10, 11, 12]));
        let a = c.step(Input::Start(Op::get("k")));
        assert_eq!(sent(&a), [(10, 1)]);
        let a = c.step(Input::Receive {
            from: 10,
            reply: reply(1, Err(KvError::WrongLeader { leader: Some(12) })),
        });
        assert_eq!(sent(&a), [(12, 1)]);
        let ok = Ok(KvOutput::Value {
            value: "v".into(),
            version: 3,
        });
        let a = c.step(Input::Receive {
            from: 12,
            reply: reply(1, ok.clone()),
        });
        assert_eq!(a, [Action::Done(ok)]);
        let a = c.step(Input::Start(Op::get("k")));
        assert_eq!(sent(&a), [(12, 2)]);
    }

    #[test]
    fn times_out_to_the_next_server_and_backs_off_after_a_full_round_of_refusals() {
        let mut cfg = ClerkConfig::new(1, vec![0, 1, 2]);
        cfg.retry_ticks = 3;
        cfg.backoff_ticks = 4;
        let mut c = Clerk::new(cfg);
        c.step(Input::Start(Op::get("k")));
        assert!(sent(&c.step(Input::Tick)).is_empty());
        assert!(sent(&c.step(Input::Tick)).is_empty());
        assert_eq!(sent(&c.step(Input::Tick)), [(1, 1)]);
        assert_eq!(c.stats().timeouts, 1);
        let refuse = Err(KvError::WrongLeader { leader: None });
        // A late refusal from server 0, which we already left, changes nothing.
        assert!(
            c.step(Input::Receive {
                from: 0,
                reply: reply(1, refuse.clone())
            })
            .is_empty()
        );
        let mut to = 1;
        for _ in 0..2 {
            let a = c.step(Input::Receive {
                from: to,
                reply: reply(1, refuse.clone()),
            });
            to = (to + 1) % 3;
            assert_eq!(sent(&a), [(to, 1)]);
        }
        // The third refusal in a row: everyone refused, wait.
        assert!(
            c.step(Input::Receive {
                from: to,
                reply: reply(1, refuse.clone())
            })
            .is_empty()
        );
        for _ in 0..3 {
            assert!(c.step(Input::Tick).is_empty());
        }
        assert_eq!(sent(&c.step(Input::Tick)), [(1, 1)]);
    }

    #[test]
    fn without_sessions_a_refused_retransmission_is_maybe() {
        let mut cfg = ClerkConfig::new(1, vec![0]).with_sessions(false);
        cfg.retry_ticks = 1;
        let mut c = Clerk::new(cfg);
        let a = c.step(Input::Start(Op::put("k", "v", 3)));
        assert!(matches!(&a[0], Action::Send { request, .. } if request.session.is_none()));
        // First transmission refused: a genuine version mismatch.
        let a = c.step(Input::Receive {
            from: 0,
            reply: reply(1, Err(KvError::Version)),
        });
        assert_eq!(a, [Action::Done(Err(KvError::Version))]);
        // Second operation: the first copy times out, the resend is refused.
        c.step(Input::Start(Op::put("k", "v", 3)));
        assert_eq!(sent(&c.step(Input::Tick)), [(0, 2)]);
        let a = c.step(Input::Receive {
            from: 0,
            reply: reply(2, Err(KvError::Version)),
        });
        assert_eq!(a, [Action::Done(Err(KvError::Maybe))]);
    }

    #[test]
    fn with_sessions_writes_carry_increasing_sequence_numbers_and_reads_none() {
        let mut c = Clerk::new(ClerkConfig::new(9, vec![0]));
        let mut seqs = Vec::new();
        for (i, op) in [Op::put("a", "1", 0), Op::get("a"), Op::append("a", "2")]
            .into_iter()
            .enumerate()
        {
            let a = c.step(Input::Start(op));
            let Action::Send { request, .. } = &a[0] else {
                panic!("expected a send")
            };
            seqs.push(request.session.map(|s| (s.client, s.seq)));
            c.step(Input::Receive {
                from: 0,
                reply: reply(i as u64 + 1, Ok(KvOutput::Written { version: 1 })),
            });
        }
        assert_eq!(seqs, [Some((9, 1)), None, Some((9, 2))]);
    }

    #[test]
    fn queued_operations_run_in_order_and_a_deadline_gives_timeout() {
        let mut cfg = ClerkConfig::new(1, vec![0]);
        cfg.deadline_ticks = Some(2);
        let mut c = Clerk::new(cfg);
        c.step(Input::Start(Op::get("a")));
        assert!(c.step(Input::Start(Op::get("b"))).is_empty());
        c.step(Input::Tick);
        let a = c.step(Input::Tick);
        assert_eq!(a[0], Action::Done(Err(KvError::Timeout)));
        assert!(matches!(&a[1], Action::Send { request, .. } if request.op == Op::get("b")));
        // The late answer to the abandoned operation is ignored.
        assert!(
            c.step(Input::Receive {
                from: 0,
                reply: reply(1, Err(KvError::NoKey))
            })
            .is_empty()
        );
        assert!(!c.is_idle());
    }

    #[test]
    fn reads_go_to_the_read_server_and_writes_to_the_leader() {
        let mut cfg = ClerkConfig::new(1, vec![0, 1, 2]);
        cfg.read_from = Some(2);
        let mut c = Clerk::new(cfg);
        let value = Ok(KvOutput::Value {
            value: "v".into(),
            version: 1,
        });
        assert_eq!(sent(&c.step(Input::Start(Op::get("k")))), [(2, 1)]);
        let a = c.step(Input::Receive {
            from: 2,
            reply: reply(1, value.clone()),
        });
        assert_eq!(a, [Action::Done(value)]);
        // The read server's answer did not make it the leader: writes still go to 0.
        assert_eq!(sent(&c.step(Input::Start(Op::put_any("k", "w")))), [(0, 2)]);
        let a = c.step(Input::Receive {
            from: 0,
            reply: reply(2, Ok(KvOutput::Written { version: 2 })),
        });
        assert_eq!(a, [Action::Done(Ok(KvOutput::Written { version: 2 }))]);
        // A refusal from the read server sends the Get on to the leader at once.
        assert_eq!(sent(&c.step(Input::Start(Op::get("k")))), [(2, 3)]);
        let a = c.step(Input::Receive {
            from: 2,
            reply: reply(3, Err(KvError::WrongLeader { leader: Some(0) })),
        });
        assert_eq!(sent(&a), [(0, 3)]);
        assert_eq!(c.stats().wrong_leader, 1);
    }

    #[test]
    fn a_silent_read_server_times_out_to_the_leader_without_moving_it() {
        let mut cfg = ClerkConfig::new(1, vec![0, 1, 2]);
        cfg.read_from = Some(2);
        cfg.retry_ticks = 3;
        let mut c = Clerk::new(cfg);
        c.step(Input::Start(Op::get("k")));
        assert!(sent(&c.step(Input::Tick)).is_empty());
        assert!(sent(&c.step(Input::Tick)).is_empty());
        assert_eq!(sent(&c.step(Input::Tick)), [(0, 1)]);
        assert_eq!(c.stats().timeouts, 1);
        // A late answer from the read server is the read's answer all the same (it was
        // served linearizably), and leaves the leader where it was.
        let value = Ok(KvOutput::Value {
            value: "v".into(),
            version: 1,
        });
        let a = c.step(Input::Receive {
            from: 2,
            reply: reply(1, value.clone()),
        });
        assert_eq!(a, [Action::Done(value)]);
        assert_eq!(c.leader_hint(), 0);
    }
}
