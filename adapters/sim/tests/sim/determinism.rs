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

/// Golden value: the trace hash of a fixed scenario. It pins the simulator's draw order
/// and hashing so that a replay line printed today still replays the same run tomorrow.
/// If a change to the simulator alters it on purpose, update the constant and say in the
/// commit message that stored failing seeds no longer replay.
#[test]
fn the_trace_hash_of_a_fixed_scenario_is_stable() {
    let (hash, _, stats) = chaos(20_26);
    assert_eq!(hash, GOLDEN, "stats: {stats:?}");
}

const GOLDEN: u64 = 0x90d8_89b1_fa2d_7aeb;

#[test]
fn the_event_log_keeps_the_last_lines_readably() {
    let mut sim = toy::quiet(2, 2 * MS);
    assert_eq!(sim.event_log().count(), 0);
    sim.keep_event_log(3);
    crate::toy::send(&mut sim, 0, 1, 42, 5);
    sim.run_for(5 * MS);
    let lines: Vec<&str> = sim.event_log().collect();
    assert_eq!(lines.len(), 3, "{lines:#?}");
    // input at 0, send at 0 (evicted), then receive and output at 2 ms.
    assert!(
        lines[0].contains("n0: send to n1: Msg { id: 42, size: 5"),
        "{lines:#?}"
    );
    assert!(
        lines[1].contains("2000us n1: recv from n0: Msg { id: 42"),
        "{lines:#?}"
    );
    assert!(
        lines[2].contains("n1: output Got { from: 0, id: 42"),
        "{lines:#?}"
    );
    sim.keep_event_log(0);
    assert_eq!(sim.event_log().count(), 0);
}
