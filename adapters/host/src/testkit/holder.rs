//! [`Holder`]: a machine that holds requests back until a deadline, to test that a
//! runtime honours [`Machine::wake_at`].

use std::time::{Duration, Instant};

use crate::{HostAction, HostInput, Machine};

/// Answers each request (a number) with an event carrying the same number, but only once
/// `hold` has passed since the first request it holds; until then
/// [`wake_at`](Machine::wake_at) asks the runtime to come back at that instant. Run it
/// with ticks far apart: only a runtime that honours `wake_at` answers in time.
#[derive(Debug)]
pub struct Holder {
    hold: Duration,
    held: Vec<u64>,
    until: Option<Instant>,
}

impl Holder {
    /// A holder that keeps requests for `hold`.
    pub fn new(hold: Duration) -> Self {
        Holder {
            hold,
            held: Vec::new(),
            until: None,
        }
    }
}

impl Machine for Holder {
    type Request = u64;
    type Event = u64;

    fn step(&mut self, input: HostInput<u64>, _: &mut Vec<HostAction<u64>>) {
        if let HostInput::Request(n) = input {
            self.held.push(n);
            self.until.get_or_insert(Instant::now() + self.hold);
        }
    }

    fn end_batch(&mut self, out: &mut Vec<HostAction<u64>>) {
        if self.until.is_some_and(|until| Instant::now() >= until) {
            self.until = None;
            out.extend(self.held.drain(..).map(HostAction::Event));
        }
    }

    fn wake_at(&self) -> Option<Instant> {
        self.until
    }
}
