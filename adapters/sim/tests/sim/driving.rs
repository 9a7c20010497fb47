//! Ticks, inputs, the event order, step, run_for and run_until.

use std::collections::BTreeMap;

use stepwise_sim::{MS, NetConfig, SEC, Sim, SimConfig, Time};

use crate::toy::{self, Behaviour, Input, Output, Toy, send};

fn ticking(n: usize, tick_interval: Time) -> Sim<Toy> {
    let config = SimConfig {
        seed: 9,
        tick_interval,
        net: NetConfig::reliable(),
    };
    let behaviour = Behaviour {
        gossip: false,
        report_ticks: true,
    };
    toy::sim_with_config(config, n, behaviour)
}

#[test]
fn every_node_ticks_once_per_interval_at_its_own_phase() {
    let mut sim = ticking(5, 10 * MS);
    sim.run_for(SEC);
    let mut times: BTreeMap<usize, Vec<Time>> = BTreeMap::new();
    for (t, node, o) in sim.take_outputs() {
        assert_eq!(o, Output::Ticked);
        times.entry(node).or_default().push(t);
    }
    assert_eq!(times.len(), 5);
    let mut phases = Vec::new();
    for ts in times.values() {
        assert_eq!(ts.len(), 100);
        assert!(ts[0] < 10 * MS);
        assert!(ts.windows(2).all(|w| w[1] - w[0] == 10 * MS));
        phases.push(ts[0]);
    }
    phases.sort_unstable();
    phases.dedup();
    assert!(phases.len() > 1, "phases are random per node: {phases:?}");
}

#[test]
fn the_tick_interval_is_configurable() {
    let mut sim = ticking(2, 3 * MS);
    assert_eq!(sim.tick_interval(), 3 * MS);
    sim.run_for(300 * MS);
    let ticks = sim.stats().ticks;
    assert!((199..=200).contains(&ticks), "{ticks}");
}

#[test]
fn equal_times_are_first_in_first_out() {
    let mut sim = toy::quiet(1, MS);
    for id in 0..200 {
        sim.schedule_input(50 * MS, 0, Input::Say(id));
    }
    sim.run_for(100 * MS);
    let said: Vec<(Time, u64)> = sim
        .take_outputs()
        .into_iter()
        .map(|(t, _, o)| match o {
            Output::Said(id) => (t, id),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(said, (0..200).map(|id| (50 * MS, id)).collect::<Vec<_>>());
}

#[test]
fn scheduled_inputs_run_at_their_time_or_now_if_past() {
    let mut sim = toy::quiet(1, MS);
    sim.run_for(10 * MS);
    sim.schedule_input(25 * MS, 0, Input::Say(1));
    sim.schedule_input(2 * MS, 0, Input::Say(2));
    assert!(sim.step());
    assert_eq!(sim.now(), 10 * MS);
    assert_eq!(sim.outputs()[0], (10 * MS, 0, Output::Said(2)));
    sim.run_for(20 * MS);
    assert_eq!(sim.outputs()[1], (25 * MS, 0, Output::Said(1)));
    assert_eq!(sim.now(), 30 * MS);
}

#[test]
fn input_runs_at_once_at_the_current_time() {
    let mut sim = toy::quiet(2, MS);
    sim.run_for(7 * MS);
    assert!(sim.input(1, Input::Say(4)));
    assert_eq!(sim.outputs(), &[(7 * MS, 1, Output::Said(4))]);
    assert_eq!(sim.take_outputs().len(), 1);
    assert!(sim.outputs().is_empty());
}

#[test]
fn step_reports_an_empty_queue() {
    let mut sim = toy::quiet(2, MS);
    sim.crash(0);
    sim.crash(1);
    // Only the (now stale) first ticks remain.
    while sim.step() {}
    assert_eq!(sim.pending_events(), 0);
    assert_eq!(sim.next_event_time(), None);
    assert!(!sim.step());
    let empty: Sim<Toy> = toy::sim(0, 0, NetConfig::reliable(), Behaviour::default());
    assert!(empty.is_empty());
}

#[test]
fn run_until_returns_false_at_the_deadline() {
    let mut sim = toy::sim(2, 3, NetConfig::reliable(), Behaviour::default());
    sim.run_for(5 * MS);
    let mut calls = 0;
    let met = sim.run_until(
        |_| {
            calls += 1;
            false
        },
        SEC,
    );
    assert!(!met);
    assert_eq!(sim.now(), 5 * MS + SEC);
    // Checked before the first event and after each of the ~300 ticks.
    assert!((300..=303).contains(&calls), "{calls} calls");
}

#[test]
fn run_until_stops_at_the_event_that_satisfies_the_predicate() {
    let mut sim = toy::quiet(2, 4 * MS);
    sim.run_for(MS);
    send(&mut sim, 0, 1, 1, 1);
    let met = sim.run_until(|s| !s.outputs().is_empty(), SEC);
    assert!(met);
    assert_eq!(sim.now(), 5 * MS);
    // Already true: returns at once without processing anything.
    let events = sim.stats().events;
    assert!(sim.run_until(|s| !s.outputs().is_empty(), SEC));
    assert_eq!(sim.stats().events, events);
}

#[test]
fn run_until_can_drain_outputs_in_the_predicate() {
    let mut sim = ticking(2, 10 * MS);
    let mut seen = 0;
    let met = sim.run_until(
        |s| {
            seen += s.take_outputs().len();
            seen >= 25
        },
        SEC,
    );
    assert!(met);
    assert_eq!(seen, 25);
    assert!(sim.now() < 130 * MS);
}
