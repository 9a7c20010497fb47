//! Property: over arbitrary sequences of harness operations, a message is delivered exactly
//! when the link was up at send time and at delivery time and neither end crashed or
//! restarted in between; and every run replays identically.

use quickcheck::{Arbitrary, Gen, QuickCheck};
use stepwise_sim::{MS, NodeId, Sim};

use crate::toy::{self, Toy, send, take_got};

const N: usize = 4;
const DELAY_MS: u64 = 5;

#[derive(Clone, Debug)]
enum Op {
    Send(NodeId, NodeId),
    Crash(NodeId),
    Restart(NodeId),
    Disconnect(NodeId),
    Connect(NodeId),
    SetLink(NodeId, NodeId, bool),
    Partition(u8),
    ConnectAll,
    /// Let one millisecond of virtual time pass.
    Tick,
}

impl Arbitrary for Op {
    fn arbitrary(g: &mut Gen) -> Op {
        let node = |g: &mut Gen| usize::arbitrary(g) % N;
        match u8::arbitrary(g) % 16 {
            0..=4 => Op::Send(node(g), node(g)),
            5 => Op::Crash(node(g)),
            6 => Op::Restart(node(g)),
            7 => Op::Disconnect(node(g)),
            8 => Op::Connect(node(g)),
            9 => Op::SetLink(node(g), node(g), bool::arbitrary(g)),
            10 => Op::Partition(u8::arbitrary(g)),
            11 => Op::ConnectAll,
            _ => Op::Tick,
        }
    }
}

/// What the harness can see of the world at one instant.
#[derive(Clone, PartialEq, Eq)]
struct View {
    links: Vec<bool>,
    alive: Vec<Option<u64>>,
}

fn view(sim: &Sim<Toy>) -> View {
    View {
        links: (0..N * N).map(|k| sim.link(k / N, k % N)).collect(),
        alive: (0..N)
            .map(|i| sim.is_up(i).then(|| sim.incarnation(i)))
            .collect(),
    }
}

fn apply(sim: &mut Sim<Toy>, op: &Op) {
    match *op {
        Op::Send(..) | Op::Tick => {}
        Op::Crash(i) => sim.crash(i),
        Op::Restart(i) => sim.restart(i),
        Op::Disconnect(i) => sim.disconnect(i),
        Op::Connect(i) => sim.connect(i),
        Op::SetLink(a, b, up) => sim.set_link(a, b, up),
        Op::Partition(bits) => {
            let side = |i: usize| (bits >> (2 * i)) & 3;
            let g0: Vec<NodeId> = (0..N).filter(|&i| side(i) == 0).collect();
            let g1: Vec<NodeId> = (0..N).filter(|&i| side(i) == 1).collect();
            sim.partition(&[&g0, &g1]);
        }
        Op::ConnectAll => sim.connect_all(),
    }
}

/// Runs the ops; returns (trace hash, mismatches between expected and actual deliveries).
fn run(ops: &[Op]) -> (u64, Vec<String>) {
    let mut sim = toy::quiet_seeded(3, N, DELAY_MS * MS);
    // views[k]: the world after the ops of millisecond k.
    let mut views: Vec<View> = Vec::new();
    // (id, from, to, send millisecond, world at send time)
    let mut sent: Vec<(u64, NodeId, NodeId, usize, View)> = Vec::new();
    let mut ms = 0;
    for op in ops
        .iter()
        .chain(std::iter::repeat_n(&Op::Tick, 2 * DELAY_MS as usize))
    {
        if let Op::Send(a, b) = *op {
            let at_send = view(&sim);
            let id = sent.len() as u64;
            if send(&mut sim, a, b, id, 1) {
                sent.push((id, a, b, ms, at_send));
            }
        } else if let Op::Tick = op {
            views.push(view(&sim));
            sim.run_for(MS);
            ms += 1;
        } else {
            apply(&mut sim, op);
        }
    }
    let mut got: Vec<u64> = take_got(&mut sim).into_iter().map(|g| g.3).collect();
    got.sort_unstable();
    let mut bad = Vec::new();
    for (id, a, b, k, at_send) in sent {
        // Delivered during the run from k + DELAY - 1 to k + DELAY, i.e. in the world left
        // by the ops of millisecond k + DELAY - 1.
        let at_delivery = &views[k + DELAY_MS as usize - 1];
        let link = |v: &View| v.links[a * N + b];
        let expected = link(&at_send)
            && link(at_delivery)
            && at_send.alive[a] == at_delivery.alive[a]
            && at_send.alive[b].is_some()
            && at_send.alive[b] == at_delivery.alive[b];
        let delivered = got.binary_search(&id).is_ok();
        if expected != delivered {
            bad.push(format!("msg {id} {a}->{b} at {k} ms: expected {expected}"));
        }
    }
    (sim.trace_hash(), bad)
}

#[test]
fn delivery_follows_the_link_and_incarnation_rules() {
    fn prop(ops: Vec<Op>) -> bool {
        let (h1, bad) = run(&ops);
        let (h2, _) = run(&ops);
        assert!(bad.is_empty(), "{bad:#?}");
        h1 == h2
    }
    let seed = stepwise_sim::seed_from_env(0x5eed);
    QuickCheck::new()
        .rng(Gen::from_size_and_seed(200, seed))
        .tests(300)
        .quickcheck(prop as fn(Vec<Op>) -> bool);
}
