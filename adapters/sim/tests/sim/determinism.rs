//! Same seed, same run; different seeds, different runs.

use std::collections::BTreeSet;

use stepwise_sim::{MS, NetConfig, SEC, Stats};

use crate::toy::{self, Behaviour, Input};

/// A chaotic run: gossip on an unreliable, duplicating, reordering network, with crashes,
/// restarts, partitions and inputs chosen from the simulator's own PRNG.
fn chaos(seed: u64) -> (u64, String, Stats) {
    let net = NetConfig {
        duplicate: 0.05,
        ..NetConfig::unreliable()
    };
    let behaviour = Behaviour {
        gossip: true,
        report_ticks: false,
    };
    let mut sim = toy::sim(seed, 5, net, behaviour);
    for round in 0..40u64 {
        let pause = sim.rng().rand_range(0..300) * MS;
        sim.run_for(pause);
        let victim = sim.rng().rand_range(0..5) as usize;
        match sim.rng().rand_range(0..8) {
            0 => sim.crash(victim),
            1 => sim.crash_during_next_step(victim),
            2 | 3 => {
                if !sim.is_up(victim) {
                    sim.restart(victim);
                }
            }
            4 => {
                let (a, b): (Vec<usize>, Vec<usize>) =
                    (0..5).partition(|_| sim.rng().rand_range(0..2) == 0);
                sim.partition(&[&a, &b]);
            }
            5 => sim.connect_all(),
            6 => {
                let on = !sim.net().long_reordering;
                sim.net_mut().long_reordering = on;
            }
            _ => {
                sim.input(victim, Input::Persist(vec![round, round + 1]));
            }
        }
    }
    sim.run_for(2 * SEC);
    let outputs = format!("{:?}", sim.outputs());
    (sim.trace_hash(), outputs, sim.stats())
}

#[test]
fn equal_seeds_give_equal_runs() {
    for seed in 0..4 {
        let (h1, o1, s1) = chaos(seed);
        let (h2, o2, s2) = chaos(seed);
        assert_eq!(h1, h2, "seed {seed}: trace hashes differ");
        assert_eq!(o1, o2, "seed {seed}: outputs differ");
        assert_eq!(s1, s2, "seed {seed}: stats differ");
        // The run did something worth hashing.
        assert!(s1.total.msgs_delivered > 200, "seed {seed}: {s1:?}");
        assert!(s1.crashes > 0 && s1.msgs_lost > 0 && s1.msgs_duplicated > 0);
    }
}

#[test]
fn different_seeds_give_different_runs() {
    let hashes: BTreeSet<u64> = (0..16).map(|seed| chaos(seed).0).collect();
    assert_eq!(hashes.len(), 16);
}

#[test]
fn a_different_harness_action_changes_the_hash() {
    let run = |extra: bool| {
        let mut sim = toy::sim(3, 3, NetConfig::reliable(), Behaviour::default());
        sim.run_for(50 * MS);
        if extra {
            sim.input(1, Input::Say(1));
        }
        sim.run_for(50 * MS);
        sim.trace_hash()
    };
    assert_eq!(run(false), run(false));
    assert_ne!(run(false), run(true));
}
