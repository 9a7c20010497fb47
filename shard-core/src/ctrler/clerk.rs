//! The controller's client: a sans-IO state machine that sends one operation at a time to
//! the controller servers until it gets a definite answer.
//!
//! It remembers the leader, follows leader hints, resends on timeout and backs off after a
//! full round of refusals ([`Retry`]). With [`CtrlerClerkConfig::sessions`] on, every
//! change carries the clerk's [`Session`](stepwise_kv::Session), so a Join that is
//! retried after a lost reply still executes once. Operations started while one is in
//! flight are queued; results come back in start order.
//!
//! ```
//! use stepwise_shard::ctrler::clerk::{Action, CtrlerClerk, CtrlerClerkConfig, Input};
//! use stepwise_shard::ctrler::CtrlOp;
//!
//! let mut clerk = CtrlerClerk::new(CtrlerClerkConfig::new(7, vec![0, 1, 2]));
//! let actions = clerk.step(Input::Start { op: CtrlOp::join(1, vec![10, 11, 12]), expect: None });
//! let Action::Send { to, request } = &actions[0] else { unreachable!() };
//! assert_eq!(*to, 0);
//! assert_eq!(request.session.map(|s| (s.client, s.seq)), Some((7, 1)));
//! ```

use std::collections::VecDeque;

use stepwise_kv::clerk::RequestIds;

use super::{CtrlError, CtrlOp, CtrlResult};
use crate::config::Addr;
use crate::message::{CtrlReply, CtrlRequest};
use crate::retry::Retry;

/// How a [`CtrlerClerk`] behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CtrlerClerkConfig {
    /// The clerk's id, unique among the controller's clients (the session's client id).
    pub client: u64,
    /// The controller servers' addresses (also their Raft ids).
    pub servers: Vec<Addr>,
    /// Tag changes with a session for exactly-once execution.
    pub sessions: bool,
    /// Resend to the next server when no reply came within this many ticks.
    pub retry_ticks: u32,
    /// After every server in turn refused, wait this many ticks.
    pub backoff_ticks: u32,
    /// Give up on an operation after this many ticks with [`CtrlError::Timeout`]; `None`
    /// retries forever.
    pub deadline_ticks: Option<u32>,
}

impl CtrlerClerkConfig {
    /// Defaults for a 10 ms tick: sessions on, retry after 100 ms, back off 50 ms, no
    /// deadline.
    pub fn new(client: u64, servers: Vec<Addr>) -> Self {
        CtrlerClerkConfig {
            client,
            servers,
            sessions: true,
            retry_ticks: 10,
            backoff_ticks: 5,
            deadline_ticks: None,
        }
    }
}

/// Everything that can happen to a [`CtrlerClerk`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// One unit of logical time.
    Tick,
    /// A controller server's reply arrived.
    Receive {
        /// The server that sent it.
        from: Addr,
        /// The reply.
        reply: CtrlReply,
    },
    /// Run an operation (after those already started).
    Start {
        /// The operation.
        op: CtrlOp,
        /// Apply a change only if the latest configuration is this one.
        expect: Option<u64>,
    },
}

/// What the adapter must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send this request to the controller server `to`.
    Send {
        /// The server.
        to: Addr,
        /// The request.
        request: CtrlRequest,
    },
    /// The oldest started operation finished with this result.
    Done(CtrlResult),
}

/// A sans-IO client of the controller. See the [module docs](self).
#[derive(Clone, Debug)]
pub struct CtrlerClerk {
    cfg: CtrlerClerkConfig,
    retry: Retry,
    ids: RequestIds,
    queue: VecDeque<(CtrlOp, Option<u64>)>,
    /// The request in flight and the ticks since it started.
    current: Option<(CtrlRequest, u32)>,
}

impl CtrlerClerk {
    /// A clerk that starts with the first server.
    ///
    /// # Panics
    /// If `config.servers` is empty.
    pub fn new(config: CtrlerClerkConfig) -> Self {
        let retry = Retry::new(
            config.servers.clone(),
            config.retry_ticks,
            config.backoff_ticks,
        );
        CtrlerClerk {
            ids: RequestIds::new(config.client, config.sessions),
            cfg: config,
            retry,
            queue: VecDeque::new(),
            current: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &CtrlerClerkConfig {
        &self.cfg
    }

    /// Whether no operation is in flight or queued.
    pub fn is_idle(&self) -> bool {
        self.current.is_none() && self.queue.is_empty()
    }

    /// The request in flight, if any.
    pub fn in_flight(&self) -> Option<&CtrlRequest> {
        self.current.as_ref().map(|(r, _)| r)
    }

    /// Feeds one input and returns the actions to carry out.
    pub fn step(&mut self, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        self.step_into(input, &mut out);
        out
    }

    /// Like [`CtrlerClerk::step`], but appends the actions to `out`.
    pub fn step_into(&mut self, input: Input, out: &mut Vec<Action>) {
        match input {
            Input::Tick => self.tick(out),
            Input::Receive { from, reply } => self.receive(from, reply, out),
            Input::Start { op, expect } => {
                self.queue.push_back((op, expect));
                if self.current.is_none() {
                    self.begin_next(out);
                }
            }
        }
    }

    /// Steps a clerk embedded in another state machine that runs one operation at a time
    /// (the shard client's and the groups' configuration queries): requests go out through
    /// `send`, in order, and the result of the operation, if it finished in this step, is
    /// returned. `buf` is a buffer reused across calls.
    pub fn step_embedded(
        &mut self,
        input: Input,
        buf: &mut Vec<Action>,
        mut send: impl FnMut(Addr, CtrlRequest),
    ) -> Option<CtrlResult> {
        buf.clear();
        self.step_into(input, buf);
        let mut done = None;
        for a in buf.drain(..) {
            match a {
                Action::Send { to, request } => send(to, request),
                Action::Done(result) => {
                    debug_assert!(done.is_none(), "one operation at a time");
                    done = Some(result);
                }
            }
        }
        done
    }

    fn begin_next(&mut self, out: &mut Vec<Action>) {
        let Some((op, expect)) = self.queue.pop_front() else {
            return;
        };
        let (id, session) = self.ids.next(!op.is_read());
        self.current = Some((
            CtrlRequest {
                id,
                session,
                op,
                expect,
            },
            0,
        ));
        self.transmit(out);
    }

    fn transmit(&mut self, out: &mut Vec<Action>) {
        if let Some((request, _)) = &self.current {
            self.retry.sent();
            out.push(Action::Send {
                to: self.retry.target(),
                request: request.clone(),
            });
        }
    }

    fn tick(&mut self, out: &mut Vec<Action>) {
        let Some((_, elapsed)) = self.current.as_mut() else {
            return;
        };
        *elapsed = elapsed.saturating_add(1);
        if self.cfg.deadline_ticks.is_some_and(|d| *elapsed >= d) {
            self.finish(Err(CtrlError::Timeout), out);
        } else if self.retry.tick() {
            self.transmit(out);
        }
    }

    fn receive(&mut self, from: Addr, reply: CtrlReply, out: &mut Vec<Action>) {
        if self.current.as_ref().is_none_or(|(r, _)| r.id != reply.id) {
            return; // an answer to an earlier operation
        }
        match reply.result {
            Err(CtrlError::WrongLeader { leader }) => {
                if self.retry.refused(from, leader) {
                    self.transmit(out);
                }
            }
            // Only a duplicate client id can produce this; keep waiting for our answer.
            Err(CtrlError::Stale) => {}
            result => {
                self.retry.answered(from);
                self.finish(result, out);
            }
        }
    }

    fn finish(&mut self, result: CtrlResult, out: &mut Vec<Action>) {
        self.current = None;
        out.push(Action::Done(result));
        self.begin_next(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctrler::CtrlOutput;
    use stepwise_kv::rsm::Session;

    fn sent(actions: &[Action]) -> Vec<(Addr, u64)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Send { to, request } => Some((*to, request.id)),
                Action::Done(_) => None,
            })
            .collect()
    }

    #[test]
    fn retries_with_the_same_session_and_queues_operations() {
        let mut cfg = CtrlerClerkConfig::new(3, vec![0, 1]);
        cfg.retry_ticks = 2;
        let mut c = CtrlerClerk::new(cfg);
        let a = c.step(Input::Start {
            op: CtrlOp::join(1, vec![5]),
            expect: None,
        });
        assert_eq!(sent(&a), [(0, 1)]);
        assert!(
            c.step(Input::Start {
                op: CtrlOp::latest(),
                expect: None
            })
            .is_empty()
        );
        c.step(Input::Tick);
        let a = c.step(Input::Tick);
        assert_eq!(sent(&a), [(1, 1)]);
        let Action::Send { request, .. } = &a[0] else {
            unreachable!()
        };
        assert_eq!(request.session, Some(Session { client: 3, seq: 1 }));
        let a = c.step(Input::Receive {
            from: 1,
            reply: CtrlReply {
                id: 1,
                result: Ok(CtrlOutput::Changed { num: 1 }),
            },
        });
        assert_eq!(a[0], Action::Done(Ok(CtrlOutput::Changed { num: 1 })));
        // The query goes to the server that answered, without a session.
        let Action::Send { to, request } = &a[1] else {
            unreachable!()
        };
        assert_eq!((*to, request.id, request.session), (1, 2, None));
    }

    #[test]
    fn an_embedded_clerk_forwards_its_requests_and_returns_the_result() {
        let mut c = CtrlerClerk::new(CtrlerClerkConfig::new(3, vec![4, 5]));
        let mut buf = Vec::new();
        let mut sent = Vec::new();
        let start = Input::Start {
            op: CtrlOp::latest(),
            expect: None,
        };
        let done = c.step_embedded(start, &mut buf, |to, r| sent.push((to, r.id)));
        assert_eq!((done, &sent[..]), (None, &[(4, 1)][..]));
        let reply = CtrlReply {
            id: 1,
            result: Ok(CtrlOutput::Changed { num: 2 }),
        };
        let input = Input::Receive { from: 4, reply };
        let done = c.step_embedded(input, &mut buf, |to, r| sent.push((to, r.id)));
        assert_eq!(done, Some(Ok(CtrlOutput::Changed { num: 2 })));
        assert_eq!(sent.len(), 1);
        assert!(c.is_idle() && buf.is_empty());
    }

    #[test]
    fn a_deadline_gives_timeout_and_late_answers_are_ignored() {
        let mut cfg = CtrlerClerkConfig::new(3, vec![0]);
        cfg.deadline_ticks = Some(2);
        let mut c = CtrlerClerk::new(cfg);
        c.step(Input::Start {
            op: CtrlOp::latest(),
            expect: None,
        });
        c.step(Input::Tick);
        assert_eq!(c.step(Input::Tick), [Action::Done(Err(CtrlError::Timeout))]);
        let late = CtrlReply {
            id: 1,
            result: Ok(CtrlOutput::Changed { num: 1 }),
        };
        assert!(
            c.step(Input::Receive {
                from: 0,
                reply: late
            })
            .is_empty()
        );
        assert!(c.is_idle());
    }
}
