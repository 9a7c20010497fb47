//! Loss, duplication, delays, reordering, long reordering and long delays.

use std::collections::BTreeMap;

use stepwise_sim::{LONG_DELAY_MAX, MS, NetConfig, SEC, Sim, Time};

use crate::toy::{self, Behaviour, Input, Toy, take_got};

fn sim_with(net: NetConfig) -> Sim<Toy> {
    toy::sim(11, 2, net, Behaviour::default())
}

/// Node 0 sends `count` messages to node 1, one every `gap` microseconds; runs until
/// everything is delivered; returns `(delivery time, id, send time)` in delivery order.
fn blast(sim: &mut Sim<Toy>, count: u64, gap: Time) -> Vec<(Time, u64, Time)> {
    let start = sim.now();
    for id in 0..count {
        let input = Input::Send {
            to: 1,
            id,
            size: 10,
            echo: false,
        };
        sim.schedule_input(start + id * gap, 0, input);
    }
    sim.run_for(count * gap + 10 * SEC);
    take_got(sim)
        .into_iter()
        .map(|(t, node, from, id, sent_at)| {
            assert_eq!((node, from), (1, 0));
            (t, id, sent_at)
        })
        .collect()
}

#[test]
fn loss_rate_matches_the_config() {
    let mut sim = sim_with(NetConfig {
        loss: 0.3,
        ..NetConfig::reliable()
    });
    let got = blast(&mut sim, 20_000, 100);
    let rate = 1.0 - got.len() as f64 / 20_000.0;
    // Standard deviation of the rate is about 0.0032.
    assert!((rate - 0.3).abs() < 0.02, "loss rate {rate}");
    let stats = sim.stats();
    assert_eq!(stats.msgs_lost + got.len() as u64, 20_000);
}

#[test]
fn the_reliable_network_delivers_everything_exactly_once() {
    let mut sim = sim_with(NetConfig::reliable());
    let got = blast(&mut sim, 5_000, 100);
    let mut ids: Vec<u64> = got.iter().map(|g| g.1).collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..5_000).collect::<Vec<_>>());
}

#[test]
fn the_unreliable_network_loses_about_ten_percent() {
    let mut sim = sim_with(NetConfig::unreliable());
    let got = blast(&mut sim, 20_000, 100);
    let rate = 1.0 - got.len() as f64 / 20_000.0;
    assert!((rate - 0.1).abs() < 0.015, "loss rate {rate}");
    for &(t, _, sent_at) in &got {
        assert!(t - sent_at <= 26 * MS);
    }
}

#[test]
fn duplicates_happen_at_the_configured_rate() {
    let mut sim = sim_with(NetConfig {
        duplicate: 0.25,
        ..NetConfig::reliable()
    });
    let got = blast(&mut sim, 10_000, 100);
    let mut copies: BTreeMap<u64, usize> = BTreeMap::new();
    for &(_, id, _) in &got {
        *copies.entry(id).or_default() += 1;
    }
    assert_eq!(copies.len(), 10_000, "nothing may be lost");
    assert!(copies.values().all(|&c| c == 1 || c == 2));
    let doubled = copies.values().filter(|&&c| c == 2).count();
    let rate = doubled as f64 / 10_000.0;
    assert!((rate - 0.25).abs() < 0.02, "duplicate rate {rate}");
    assert_eq!(sim.stats().msgs_duplicated, doubled as u64);
}

#[test]
fn delays_stay_within_bounds_and_cover_them() {
    let mut sim = sim_with(NetConfig {
        min_delay: 5 * MS,
        max_delay: 9 * MS,
        ..NetConfig::reliable()
    });
    let got = blast(&mut sim, 5_000, 1000);
    assert_eq!(got.len(), 5_000);
    let delays: Vec<Time> = got.iter().map(|&(t, _, s)| t - s).collect();
    let min = *delays.iter().min().unwrap();
    let max = *delays.iter().max().unwrap();
    assert!(min >= 5 * MS && max <= 9 * MS, "delays in [{min}, {max}]");
    assert!(
        min < 5 * MS + 100 && max > 9 * MS - 100,
        "delays in [{min}, {max}]"
    );
}

fn inversions(got: &[(Time, u64, Time)]) -> usize {
    got.windows(2).filter(|w| w[1].1 < w[0].1).count()
}

#[test]
fn random_delays_reorder_messages() {
    let mut sim = sim_with(NetConfig {
        max_delay: 20 * MS,
        ..NetConfig::reliable()
    });
    let got = blast(&mut sim, 500, MS);
    assert_eq!(got.len(), 500);
    assert!(inversions(&got) > 50, "{} inversions", inversions(&got));
}

#[test]
fn a_fixed_delay_keeps_messages_in_order() {
    let mut sim = sim_with(NetConfig {
        min_delay: 3 * MS,
        max_delay: 3 * MS,
        ..NetConfig::reliable()
    });
    // All sent at the same instant: equal delivery times are FIFO.
    let got = blast(&mut sim, 500, 0);
    assert_eq!(got.len(), 500);
    assert_eq!(inversions(&got), 0);
    assert!(got.iter().all(|&(t, _, s)| t == s + 3 * MS));
}

#[test]
fn long_reordering_holds_back_two_thirds_by_200_to_2200_ms() {
    let mut sim = sim_with(NetConfig {
        long_reordering: true,
        ..NetConfig::reliable()
    });
    let got = blast(&mut sim, 6_000, MS);
    assert_eq!(got.len(), 6_000);
    let delays: Vec<Time> = got.iter().map(|&(t, _, s)| t - s).collect();
    let held = delays.iter().filter(|&&d| d >= 200 * MS).count();
    let rate = held as f64 / 6_000.0;
    assert!((rate - 2.0 / 3.0).abs() < 0.03, "held-back rate {rate}");
    assert!(
        delays
            .iter()
            .all(|&d| d <= MS || (200 * MS..2200 * MS).contains(&d))
    );
    // Skewed toward the low end: most held-back messages wait less than 1.2 s.
    let low = delays
        .iter()
        .filter(|&&d| (200 * MS..1200 * MS).contains(&d))
        .count();
    assert!(low > held * 2 / 3, "{low} of {held} below 1.2 s");
    assert!(inversions(&got) > 1000);
}

#[test]
fn long_delays_are_rare_and_below_seven_seconds() {
    let mut sim = sim_with(NetConfig {
        long_delays: true,
        ..NetConfig::reliable()
    });
    let got = blast(&mut sim, 20_000, 100);
    assert_eq!(got.len(), 20_000);
    let long = got.iter().filter(|&&(t, _, s)| t - s > 10 * MS).count();
    // Expected 1% of 20 000 = 200, minus the few extra delays below 10 ms.
    assert!((150..260).contains(&long), "{long} long delays");
    assert!(got.iter().all(|&(t, _, s)| t - s <= LONG_DELAY_MAX + MS));
    assert!(got.iter().any(|&(t, _, s)| t - s > 3 * SEC));
}

#[test]
fn network_changes_apply_to_later_messages() {
    let mut sim = sim_with(NetConfig::reliable());
    let before = blast(&mut sim, 1_000, 100);
    assert_eq!(before.len(), 1_000);
    sim.net_mut().loss = 1.0;
    assert_eq!(sim.net().loss, 1.0);
    assert!(blast(&mut sim, 1_000, 100).is_empty());
}
