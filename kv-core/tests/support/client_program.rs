//! The lab's client loops as state machines ([`Program`]) and the bookkeeping that runs
//! one on a simulated clerk node ([`Driver`]), shared by the simulator testers of kv-core
//! (`tests/kv_lab`) and shard-core (`tests/shard_lab`, which includes this file by path).
//!
//! A client node owns a clerk and a [`Driver`]. The driver records the operation in
//! flight, counts down sleeps and asks the program what to do at every event; the node
//! carries out the answer ([`Step`]): hand an operation to its clerk, or report that the
//! program finished or failed. `R` is what a program reports when it stops.
#![allow(dead_code)] // each test binary uses a different part

use std::collections::BTreeMap;

use stepwise_kv::{KvResult, Op};
use stepwise_sim::{NodeId, Rand64, Time};

use crate::kv_history::Record;

/// What a client program is told.
pub enum Event<'a> {
    /// The program was just started.
    Start,
    /// The last operation finished with this result.
    Done(&'a Op, &'a KvResult),
    /// A sleep is over (or the tester signalled "done" while the program was idle).
    Woke,
}

/// What a client program does next.
pub enum Next {
    /// Run this operation.
    Op(Op),
    /// Wait this many ticks.
    Sleep(u32),
    /// Stop and report.
    Stop,
    /// Stop: the program found a violation.
    Fail(String),
}

/// A lab client loop as a state machine: called at every event, decides the next step.
/// `stopping` is true once the tester signalled "done".
pub trait Program<R>: Send {
    /// The next step after `event`.
    fn next(&mut self, event: Event<'_>, stopping: bool, rng: &mut Rand64) -> Next;
    /// What the program reports when it stops.
    fn report(&self) -> R;
}

/// What a client node must do after its [`Driver`] heard an event.
pub enum Step<R> {
    /// Nothing.
    Idle,
    /// Start this operation: [`Driver::call`], then hand it to the clerk.
    Start(Op),
    /// The program stopped with this report.
    Finished(R),
    /// The program found a violation (the message names the client).
    Failed(String),
}

/// Runs single operations and client programs on one clerk node.
pub struct Driver<R> {
    me: NodeId,
    rng: Rand64,
    program: Option<Box<dyn Program<R>>>,
    stopping: bool,
    /// The operation in flight: its call time and the operation.
    call: Option<(Time, Op)>,
    sleeping: Option<u32>,
}

impl<R> Driver<R> {
    /// A driver for clerk node `me`, whose programs draw randomness from `seed`.
    pub fn new(me: NodeId, seed: u64) -> Self {
        Driver {
            me,
            rng: Rand64::new(u128::from(seed)),
            program: None,
            stopping: false,
            call: None,
            sleeping: None,
        }
    }

    /// The operation in flight, if any.
    pub fn in_flight(&self) -> Option<&(Time, Op)> {
        self.call.as_ref()
    }

    /// Records that `op` starts now (one operation at a time per clerk).
    pub fn call(&mut self, now: Time, op: &Op) {
        assert!(self.call.is_none(), "one operation at a time per clerk");
        self.call = Some((now, op.clone()));
    }

    /// The clerk finished the operation in flight: its record, and what the program (if
    /// any) does next.
    pub fn done(&mut self, now: Time, result: KvResult) -> (Record, Step<R>) {
        let (call, op) = self.call.take().expect("a result answers a call");
        let step = self.advance(Event::Done(&op, &result));
        let record = Record {
            client: self.me,
            op,
            call,
            ret: now,
            result,
        };
        (record, step)
    }

    /// Starts `program`.
    pub fn run(&mut self, program: Box<dyn Program<R>>) -> Step<R> {
        self.program = Some(program);
        self.stopping = false;
        self.advance(Event::Start)
    }

    /// The tester signalled "done": the program stops at its next opportunity.
    pub fn stop(&mut self) -> Step<R> {
        self.stopping = true;
        if self.call.is_none() && self.program.is_some() {
            // Idle or sleeping: ask now.
            self.sleeping = None;
            self.advance(Event::Woke)
        } else {
            Step::Idle
        }
    }

    /// One tick: a sleep may end.
    pub fn tick(&mut self) -> Step<R> {
        if let Some(left) = self.sleeping.as_mut() {
            *left -= 1;
            if *left == 0 {
                self.sleeping = None;
                return self.advance(Event::Woke);
            }
        }
        Step::Idle
    }

    fn advance(&mut self, event: Event<'_>) -> Step<R> {
        let Some(program) = self.program.as_mut() else {
            return Step::Idle;
        };
        match program.next(event, self.stopping, &mut self.rng) {
            Next::Op(op) => Step::Start(op),
            Next::Sleep(ticks) => {
                self.sleeping = Some(ticks.max(1));
                Step::Idle
            }
            Next::Stop => {
                let report = program.report();
                self.program = None;
                Step::Finished(report)
            }
            Next::Fail(why) => {
                self.program = None;
                Step::Failed(format!("client {}: {why}", self.me))
            }
        }
    }
}

/// A simulator tester whose clerk nodes run [`Program`]s: starting them and stopping them
/// (signal "done", wait for every report) is the same in every tester.
pub trait ProgramTester<R>: stepwise_sim::Harness + Sized {
    /// Hands clerk `ck` a program to run (`Some`) or the "done" signal (`None`).
    fn signal(&mut self, ck: NodeId, program: Option<Box<dyn Program<R>>>);

    /// The reports of programs that finished, by clerk (filled by `absorb`).
    fn reports(&self) -> &BTreeMap<NodeId, R>;

    /// The same, to take reports out.
    fn reports_mut(&mut self) -> &mut BTreeMap<NodeId, R>;

    /// Fails the test with `why`.
    fn fail_test(&self, why: &str) -> !;

    /// Starts a program on each clerk node.
    fn run_programs(&mut self, programs: Vec<(NodeId, Box<dyn Program<R>>)>) {
        for (ck, p) in programs {
            self.reports_mut().remove(&ck);
            self.signal(ck, Some(p));
        }
        self.absorb();
    }

    /// Signals "done" to the clerks and waits (at most `limit`) until every program
    /// finished; returns their reports in clerk order.
    fn stop_programs(&mut self, clerks: &[NodeId], limit: Time) -> Vec<R> {
        for &ck in clerks {
            self.signal(ck, None);
        }
        self.absorb();
        let all_done = |t: &Self| clerks.iter().all(|ck| t.reports().contains_key(ck));
        if !self.run_until(all_done, limit) {
            self.fail_test("client programs did not finish after the done signal");
        }
        clerks
            .iter()
            .map(|ck| self.reports_mut().remove(ck).expect("finished"))
            .collect()
    }
}
