//! A toy protocol for the simulator's tests: nodes send tagged messages on request, echo
//! them back if asked, persist values on request, and optionally gossip on ticks.

use oorandom::Rand64;
use stepwise_sim::{Effect, NetConfig, Node, NodeId, SEC, Sim, SimConfig, Time};

/// A message: `id` tags it, `size` is its claimed wire size, `sent_at` is the send time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Msg {
    pub id: u64,
    pub size: usize,
    pub sent_at: Time,
    pub echo: bool,
}

#[derive(Debug)]
pub enum Input {
    /// Send one message.
    Send {
        to: NodeId,
        id: u64,
        size: usize,
        echo: bool,
    },
    /// Write each value durably, then output `Persisted`.
    Persist(Vec<u64>),
    /// Output `Said(id)` at once.
    Say(u64),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    Got {
        from: NodeId,
        id: u64,
        sent_at: Time,
        echo: bool,
    },
    Persisted(usize),
    Said(u64),
    Ticked,
}

/// Behaviour switches, fixed per simulation.
#[derive(Clone, Copy, Debug, Default)]
pub struct Behaviour {
    /// On every 10th tick send an echo request to every peer, and with probability 1/4
    /// per tick one gossip message to a random peer (which the receiver persists).
    pub gossip: bool,
    /// Output `Ticked` on every tick.
    pub report_ticks: bool,
}

pub struct Toy {
    pub me: NodeId,
    pub n: usize,
    pub seed: u64,
    /// Volatile: ticks seen by this incarnation.
    pub ticks: u64,
    /// The durable state this incarnation was built from.
    pub booted_with: Vec<u64>,
    behaviour: Behaviour,
    rng: Rand64,
    next_id: u64,
}

impl Toy {
    fn send(&mut self, now: Time, to: NodeId, echo: bool, out: &mut Vec<Effect<Self>>) {
        self.next_id += 1;
        let id = ((self.me as u64) << 40) | self.next_id;
        let size = 16 + self.rng.rand_range(0..64) as usize;
        out.push(Effect::Send {
            to,
            msg: Msg {
                id,
                size,
                sent_at: now,
                echo,
            },
        });
    }
}

impl Node for Toy {
    type Msg = Msg;
    type Input = Input;
    type Output = Output;
    type Durable = Vec<u64>;
    type Write = u64;

    fn on_tick(&mut self, now: Time, out: &mut Vec<Effect<Self>>) {
        self.ticks += 1;
        if self.behaviour.report_ticks {
            out.push(Effect::Output(Output::Ticked));
        }
        if self.behaviour.gossip && self.n > 1 {
            if self.ticks.is_multiple_of(10) {
                for to in 0..self.n {
                    if to != self.me {
                        self.send(now, to, true, out);
                    }
                }
            }
            if self.rng.rand_range(0..4) == 0 {
                let mut to = self.rng.rand_range(0..self.n as u64 - 1) as usize;
                if to >= self.me {
                    to += 1;
                }
                self.send(now, to, false, out);
            }
        }
    }

    fn on_message(&mut self, now: Time, from: NodeId, msg: Msg, out: &mut Vec<Effect<Self>>) {
        if self.behaviour.gossip && !msg.echo {
            out.push(Effect::Write(msg.id));
        }
        if msg.echo {
            out.push(Effect::Send {
                to: from,
                msg: Msg {
                    id: msg.id,
                    size: msg.size,
                    sent_at: now,
                    echo: false,
                },
            });
        }
        out.push(Effect::Output(Output::Got {
            from,
            id: msg.id,
            sent_at: msg.sent_at,
            echo: msg.echo,
        }));
    }

    fn on_input(&mut self, now: Time, input: Input, out: &mut Vec<Effect<Self>>) {
        match input {
            Input::Send { to, id, size, echo } => out.push(Effect::Send {
                to,
                msg: Msg {
                    id,
                    size,
                    sent_at: now,
                    echo,
                },
            }),
            Input::Persist(values) => {
                let count = values.len();
                out.extend(values.into_iter().map(Effect::Write));
                out.push(Effect::Output(Output::Persisted(count)));
            }
            Input::Say(id) => out.push(Effect::Output(Output::Said(id))),
        }
    }

    fn write(durable: &mut Vec<u64>, write: u64) {
        durable.push(write);
    }

    fn wire_size(msg: &Msg) -> usize {
        msg.size
    }
}

/// A simulation of `n` toy nodes.
pub fn sim(seed: u64, n: usize, net: NetConfig, behaviour: Behaviour) -> Sim<Toy> {
    let config = SimConfig {
        seed,
        net,
        ..SimConfig::default()
    };
    sim_with_config(config, n, behaviour)
}

/// A simulation of `n` toy nodes with a full configuration.
pub fn sim_with_config(config: SimConfig, n: usize, behaviour: Behaviour) -> Sim<Toy> {
    Sim::new(config, n, move |me, durable: &Vec<u64>, seed| Toy {
        me,
        n,
        seed,
        ticks: 0,
        booted_with: durable.clone(),
        behaviour,
        rng: Rand64::new(seed as u128),
        next_id: 0,
    })
}

/// A quiet simulation: no gossip, a fixed delay of `delay` microseconds, and ticks so rare
/// (every 1000 s) that tests that need no ticks can assert none happened.
pub fn quiet_seeded(seed: u64, n: usize, delay: Time) -> Sim<Toy> {
    let net = NetConfig {
        min_delay: delay,
        max_delay: delay,
        ..NetConfig::reliable()
    };
    let config = SimConfig {
        seed,
        tick_interval: 1000 * SEC,
        net,
    };
    sim_with_config(config, n, Behaviour::default())
}

/// [`quiet_seeded`] with seed 1.
pub fn quiet(n: usize, delay: Time) -> Sim<Toy> {
    quiet_seeded(1, n, delay)
}

/// Node `from` sends message `id` (size `size`) to `to`, now.
pub fn send(sim: &mut Sim<Toy>, from: NodeId, to: NodeId, id: u64, size: usize) -> bool {
    sim.input(
        from,
        Input::Send {
            to,
            id,
            size,
            echo: false,
        },
    )
}

/// The `Got` outputs taken from the queue, as `(time, receiver, from, id, sent_at)`.
pub fn take_got(sim: &mut Sim<Toy>) -> Vec<(Time, NodeId, NodeId, u64, Time)> {
    sim.take_outputs()
        .into_iter()
        .filter_map(|(t, node, o)| match o {
            Output::Got {
                from, id, sent_at, ..
            } => Some((t, node, from, id, sent_at)),
            _ => None,
        })
        .collect()
}
