//! Support for test harnesses built around a [`Sim`].

use crate::{Node, Sim, Time};

/// A test harness that owns a [`Sim`] and folds the nodes' outputs into its own state
/// (records of operations, failures, reports) with [`Harness::absorb`]. The provided
/// [`Harness::run_until`] and [`Harness::sleep`] absorb after every event, so a predicate
/// always sees what the nodes have output so far.
///
/// ```
/// use stepwise_sim::{Effect, Harness, MS, Node, Sim, SimConfig, Time};
///
/// /// A node that outputs every tick.
/// struct Ticker;
/// impl Node for Ticker {
///     type Msg = ();
///     type Input = ();
///     type Output = ();
///     type Durable = ();
///     type Write = ();
///     fn on_tick(&mut self, _: Time, out: &mut Vec<Effect<Self>>) {
///         out.push(Effect::Output(()));
///     }
///     fn on_message(&mut self, _: Time, _: usize, _: (), _: &mut Vec<Effect<Self>>) {}
///     fn on_input(&mut self, _: Time, _: (), _: &mut Vec<Effect<Self>>) {}
///     fn write(_: &mut (), _: ()) {}
///     fn wire_size(_: &()) -> usize {
///         0
///     }
/// }
///
/// struct Tester {
///     sim: Sim<Ticker>,
///     ticks: usize,
/// }
/// impl Harness for Tester {
///     type Node = Ticker;
///     fn sim_mut(&mut self) -> &mut Sim<Ticker> {
///         &mut self.sim
///     }
///     fn absorb(&mut self) {
///         self.ticks += self.sim.take_outputs().len();
///     }
/// }
///
/// let sim = Sim::new(SimConfig::with_seed(1), 1, |_, _, _| Ticker);
/// let mut t = Tester { sim, ticks: 0 };
/// assert!(t.run_until(|t| t.ticks == 3, 100 * MS));
/// let start = t.sim.now();
/// assert!(!t.run_until(|t| t.ticks == 1000, 100 * MS));
/// assert_eq!(t.sim.now(), start + 100 * MS); // the clock is at the deadline
/// assert_eq!(t.ticks, 13); // and every tick until then was absorbed
/// ```
pub trait Harness {
    /// The simulated node type.
    type Node: Node;

    /// The simulation.
    fn sim_mut(&mut self) -> &mut Sim<Self::Node>;

    /// Takes the outputs the nodes produced since the last call into the harness's state.
    fn absorb(&mut self);

    /// Runs until `pred` holds, absorbing and checking it before the first event and after
    /// every event. Returns true as soon as it holds (the clock stays at that event's
    /// time); false once no event is due within `limit`, with the clock at the deadline.
    fn run_until(&mut self, mut pred: impl FnMut(&Self) -> bool, limit: Time) -> bool
    where
        Self: Sized,
    {
        let deadline = self.sim_mut().now().saturating_add(limit);
        self.absorb();
        if pred(self) {
            return true;
        }
        while self
            .sim_mut()
            .next_event_time()
            .is_some_and(|t| t <= deadline)
        {
            self.sim_mut().step();
            self.absorb();
            if pred(self) {
                return true;
            }
        }
        let sim = self.sim_mut();
        sim.run_for(deadline - sim.now());
        false
    }

    /// Runs for `d`, absorbing after every event.
    fn sleep(&mut self, d: Time)
    where
        Self: Sized,
    {
        self.run_until(|_| false, d);
    }
}
