//! Message and byte counters.

use stepwise_sim::{MS, NetConfig, SEC};

use crate::toy::{self, Behaviour, send};

#[test]
fn bytes_are_counted_at_send_time_even_if_dropped() {
    let mut sim = toy::quiet(3, MS);
    sim.disconnect(1);
    for id in 0..3 {
        send(&mut sim, 0, 1, id, 100);
    }
    sim.run_for(10 * MS);
    let stats = sim.stats();
    assert_eq!(stats.node(0).msgs_sent, 3);
    assert_eq!(stats.node(0).bytes_sent, 300);
    assert_eq!(stats.node(1).msgs_delivered, 0);
    assert_eq!(stats.total.msgs_delivered, 0);
    assert_eq!(stats.msgs_cut, 3);
}

#[test]
fn deliveries_are_counted_per_receiver() {
    let mut sim = toy::quiet(3, MS);
    send(&mut sim, 0, 1, 1, 10);
    send(&mut sim, 0, 2, 2, 20);
    send(&mut sim, 1, 2, 3, 5);
    sim.run_for(10 * MS);
    let s = sim.stats();
    assert_eq!((s.node(0).msgs_sent, s.node(0).bytes_sent), (2, 30));
    assert_eq!((s.node(1).msgs_sent, s.node(1).bytes_sent), (1, 5));
    assert_eq!(
        (s.node(0).msgs_delivered, s.node(0).bytes_delivered),
        (0, 0)
    );
    assert_eq!(
        (s.node(1).msgs_delivered, s.node(1).bytes_delivered),
        (1, 10)
    );
    assert_eq!(
        (s.node(2).msgs_delivered, s.node(2).bytes_delivered),
        (2, 25)
    );
    assert_eq!((s.total.msgs_sent, s.total.bytes_sent), (3, 35));
    assert_eq!((s.total.msgs_delivered, s.total.bytes_delivered), (3, 35));
}

#[test]
fn duplicates_count_once_sent_twice_delivered() {
    let mut sim = toy::sim(
        4,
        2,
        NetConfig {
            duplicate: 1.0,
            ..NetConfig::reliable()
        },
        Behaviour::default(),
    );
    send(&mut sim, 0, 1, 1, 7);
    sim.run_for(10 * MS);
    let s = sim.stats();
    assert_eq!((s.node(0).msgs_sent, s.node(0).bytes_sent), (1, 7));
    assert_eq!(
        (s.node(1).msgs_delivered, s.node(1).bytes_delivered),
        (2, 14)
    );
    assert_eq!(s.msgs_duplicated, 1);
}

#[test]
fn every_copy_is_delivered_or_dropped_for_one_reason() {
    for seed in 0..5 {
        let net = NetConfig {
            duplicate: 0.1,
            ..NetConfig::unreliable()
        };
        let behaviour = Behaviour {
            gossip: true,
            report_ticks: false,
        };
        let mut sim = toy::sim(seed, 5, net, behaviour);
        for _ in 0..20 {
            sim.run_for(200 * MS);
            let victim = sim.rng().rand_range(0..5) as usize;
            match sim.rng().rand_range(0..4) {
                0 => sim.crash(victim),
                1 => sim.restart(victim),
                2 => sim.disconnect(victim),
                _ => sim.connect(victim),
            }
        }
        // Quiesce: crash everyone, let every message in flight come due.
        for i in 0..5 {
            sim.crash(i);
        }
        sim.run_for(10 * SEC);
        assert_eq!(sim.pending_events(), 0);
        let s = sim.stats();
        assert!(s.msgs_lost > 0 && s.msgs_cut > 0 && s.msgs_dead > 0 && s.msgs_duplicated > 0);
        assert_eq!(
            s.total.msgs_sent + s.msgs_duplicated,
            s.total.msgs_delivered + s.msgs_lost + s.msgs_cut + s.msgs_dead,
            "seed {seed}: {s:?}"
        );
        let sum = |f: fn(&stepwise_sim::NodeStats) -> u64| s.nodes.iter().map(f).sum::<u64>();
        assert_eq!(sum(|n| n.msgs_sent), s.total.msgs_sent);
        assert_eq!(sum(|n| n.bytes_sent), s.total.bytes_sent);
        assert_eq!(sum(|n| n.msgs_delivered), s.total.msgs_delivered);
        assert_eq!(sum(|n| n.bytes_delivered), s.total.bytes_delivered);
    }
}

#[test]
fn stats_since_gives_the_difference() {
    let mut sim = toy::quiet(2, MS);
    send(&mut sim, 0, 1, 1, 10);
    sim.run_for(10 * MS);
    let before = sim.stats();
    send(&mut sim, 0, 1, 2, 3);
    send(&mut sim, 1, 0, 3, 4);
    sim.run_for(10 * MS);
    let d = sim.stats().since(&before);
    assert_eq!((d.node(0).msgs_sent, d.node(0).bytes_sent), (1, 3));
    assert_eq!(
        (d.node(1).msgs_delivered, d.node(1).bytes_delivered),
        (1, 3)
    );
    assert_eq!((d.total.msgs_sent, d.total.msgs_delivered), (2, 2));
    assert_eq!(d.total.bytes_delivered, 7);
}
