//! Crash, restart, crash in the middle of a step, incarnations.

use stepwise_sim::{MS, NetConfig, SEC, Sim};

use crate::toy::{self, Behaviour, Input, Output, Toy, send, take_got};

fn three() -> Sim<Toy> {
    toy::sim(21, 3, NetConfig::reliable(), Behaviour::default())
}

#[test]
fn crash_drops_volatile_state_and_keeps_durable_writes() {
    let mut sim = three();
    sim.run_for(SEC);
    assert!(sim.node(0).unwrap().ticks >= 99);
    assert!(sim.input(0, Input::Persist(vec![1, 2, 3])));
    sim.crash(0);
    assert!(!sim.is_up(0));
    assert!(sim.node(0).is_none() && sim.node_mut(0).is_none());
    assert_eq!(sim.durable(0), &vec![1, 2, 3]);
    assert!(
        !sim.input(0, Input::Say(1)),
        "a crashed node takes no input"
    );
    let seed0 = sim.node(1).unwrap().seed;
    sim.restart(0);
    assert!(sim.is_up(0));
    assert_eq!(sim.incarnation(0), 1);
    let node = sim.node(0).unwrap();
    assert_eq!(node.ticks, 0, "volatile state starts over");
    assert_eq!(
        node.booted_with,
        vec![1, 2, 3],
        "restart sees the durable state"
    );
    assert_ne!(node.seed, seed0);
    let stats = sim.stats();
    assert_eq!((stats.crashes, stats.restarts), (1, 1));
}

#[test]
fn every_incarnation_gets_a_fresh_seed() {
    let mut sim = three();
    let mut seeds = vec![sim.node(0).unwrap().seed];
    for _ in 0..5 {
        sim.restart(0);
        seeds.push(sim.node(0).unwrap().seed);
    }
    seeds.sort_unstable();
    seeds.dedup();
    assert_eq!(seeds.len(), 6);
}

#[test]
fn a_crashed_node_gets_no_ticks() {
    let mut sim = three();
    sim.crash(1);
    sim.run_for(SEC);
    let ticks = sim.stats().ticks;
    assert!((199..=201).contains(&ticks), "{ticks} ticks");
    // Crash and restart in the same instant: the old incarnation's tick schedule is gone,
    // the new one ticks once per interval.
    sim.restart(2);
    let before = sim.stats().ticks;
    sim.run_for(SEC);
    let ticks = sim.stats().ticks - before;
    assert!((199..=201).contains(&ticks), "{ticks} ticks");
}

#[test]
fn crash_during_next_step_carries_out_a_prefix_of_the_writes() {
    let (mut none, mut some, mut all) = (0, 0, 0);
    for seed in 0..300 {
        let mut sim = toy::sim(seed, 1, NetConfig::reliable(), Behaviour::default());
        sim.crash_during_next_step(0);
        assert!(sim.input(0, Input::Persist((0..10).collect())));
        assert!(!sim.is_up(0), "the node crashed after the step");
        let durable = sim.durable(0).clone();
        let k = durable.len();
        assert_eq!(
            durable,
            (0..k as u64).collect::<Vec<_>>(),
            "a prefix, in order"
        );
        // 10 writes + 1 output: the output is carried out only if everything is.
        let persisted = sim.outputs().iter().any(|o| o.2 == Output::Persisted(10));
        match k {
            0 => none += 1,
            10 if persisted => all += 1,
            10 => {}
            _ => some += 1,
        }
        assert!(!persisted || k == 10);
        sim.restart(0);
        assert_eq!(sim.node(0).unwrap().booted_with, durable);
    }
    assert!(none > 0 && some > 100 && all > 0, "{none} {some} {all}");
}

#[test]
fn crash_during_next_step_also_fires_on_a_tick() {
    let mut sim = three();
    sim.crash_during_next_step(2);
    assert!(sim.is_up(2));
    sim.run_for(sim.tick_interval());
    assert!(!sim.is_up(2));
    assert!(sim.is_up(0) && sim.is_up(1));
}

#[test]
fn restart_disarms_a_pending_crash() {
    let mut sim = three();
    sim.crash_during_next_step(0);
    sim.restart(0);
    sim.run_for(SEC);
    assert!(sim.is_up(0));
}

#[test]
fn messages_to_an_earlier_incarnation_are_dropped() {
    let mut sim = toy::quiet(2, 10 * MS);
    send(&mut sim, 0, 1, 1, 1);
    sim.run_for(5 * MS);
    sim.restart(1);
    sim.run_for(20 * MS);
    assert!(take_got(&mut sim).is_empty());
    assert_eq!(sim.stats().msgs_dead, 1);
    // Sent after the restart: delivered.
    send(&mut sim, 0, 1, 2, 1);
    sim.run_for(20 * MS);
    assert_eq!(take_got(&mut sim).len(), 1);
}

#[test]
fn messages_to_a_down_node_are_dropped_even_if_it_comes_back() {
    let mut sim = toy::quiet(2, 10 * MS);
    sim.crash(1);
    send(&mut sim, 0, 1, 1, 1);
    sim.restart(1);
    sim.run_for(20 * MS);
    assert!(take_got(&mut sim).is_empty());
    assert_eq!(sim.stats().msgs_dead, 1);
}

#[test]
fn messages_from_a_crashed_incarnation_are_dropped() {
    for restart in [false, true] {
        let mut sim = toy::quiet(2, 10 * MS);
        send(&mut sim, 0, 1, 1, 1);
        sim.run_for(5 * MS);
        sim.crash(0);
        if restart {
            sim.restart(0);
        }
        sim.run_for(20 * MS);
        assert!(take_got(&mut sim).is_empty(), "restart: {restart}");
        assert_eq!(sim.stats().msgs_dead, 1);
    }
}

#[test]
fn sends_before_a_mid_step_crash_die_with_the_sender() {
    // Echo request 0 -> 1; node 1 crashes while handling it, so its reply (if carried out
    // at all) comes from a dead incarnation and is never delivered.
    let mut replies_sent = 0;
    for seed in 0..40 {
        let mut sim = toy::quiet_seeded(seed, 2, 10 * MS);
        let input = Input::Send {
            to: 1,
            id: 5,
            size: 1,
            echo: true,
        };
        sim.input(0, input);
        sim.run_for(5 * MS);
        sim.crash_during_next_step(1);
        sim.run_for(30 * MS);
        let stats = sim.stats();
        assert_eq!(
            stats.ticks, 0,
            "the crash happened while handling the message"
        );
        assert!(!sim.is_up(1));
        assert_eq!(stats.node(1).msgs_delivered, 1);
        let replies = take_got(&mut sim).into_iter().filter(|g| g.1 == 0).count();
        assert_eq!(replies, 0);
        assert_eq!(stats.msgs_dead, stats.node(1).msgs_sent);
        replies_sent += stats.node(1).msgs_sent;
    }
    assert!(
        replies_sent > 0,
        "some runs carried out the reply before crashing"
    );
}

#[test]
fn scheduled_inputs_for_a_down_node_are_dropped() {
    let mut sim = three();
    sim.schedule_input(10 * MS, 0, Input::Say(1));
    sim.crash(0);
    sim.run_for(20 * MS);
    assert!(sim.outputs().is_empty());
    assert_eq!(sim.stats().inputs_dropped, 1);
}
