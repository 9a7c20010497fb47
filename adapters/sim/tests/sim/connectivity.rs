//! The lab's connectivity model: connected flags, ConnectOne, partitions, one-way links,
//! and the link check at send and at delivery time.

use stepwise_sim::{MS, NetConfig, Sim};

use crate::toy::{self, Behaviour, Toy, send, take_got};

/// Which directed pairs actually deliver a message right now (every node sends to every
/// other node, then the network drains).
fn reachability(sim: &mut Sim<Toy>) -> Vec<Vec<bool>> {
    let n = sim.len();
    sim.take_outputs();
    for a in 0..n {
        for b in 0..n {
            if a != b {
                send(sim, a, b, (a * n + b) as u64, 1);
            }
        }
    }
    sim.run_for(10 * MS);
    let mut reach = vec![vec![false; n]; n];
    for (_, to, from, id, _) in take_got(sim) {
        assert_eq!(id, (from * n + to) as u64);
        reach[from][to] = true;
    }
    for (a, row) in reach.iter_mut().enumerate() {
        row[a] = true;
    }
    reach
}

/// The expected matrix: `up(a, b)` for every pair.
fn expect(n: usize, up: impl Fn(usize, usize) -> bool) -> Vec<Vec<bool>> {
    (0..n)
        .map(|a| (0..n).map(|b| a == b || up(a, b)).collect())
        .collect()
}

/// The simulator's own view of the links agrees with what gets delivered.
fn links(sim: &Sim<Toy>) -> Vec<Vec<bool>> {
    let n = sim.len();
    expect(n, |a, b| sim.link(a, b))
}

fn five() -> Sim<Toy> {
    toy::sim(5, 5, NetConfig::reliable(), Behaviour::default())
}

#[test]
fn everyone_starts_connected() {
    let mut sim = five();
    assert!((0..5).all(|i| sim.is_connected(i)));
    assert_eq!(reachability(&mut sim), expect(5, |_, _| true));
}

#[test]
fn disconnect_cuts_every_link_of_the_node() {
    let mut sim = five();
    sim.disconnect(2);
    assert!(!sim.is_connected(2));
    let want = expect(5, |a, b| a != 2 && b != 2);
    assert_eq!(links(&sim), want);
    assert_eq!(reachability(&mut sim), want);
}

#[test]
fn connect_links_only_with_nodes_marked_connected() {
    // The lab's ConnectOne: 0 and 1 both disconnected; reconnecting 0 must not link it
    // with 1, which is still marked disconnected.
    let mut sim = five();
    sim.disconnect(0);
    sim.disconnect(1);
    sim.connect(0);
    assert!(sim.is_connected(0) && !sim.is_connected(1));
    let want = expect(5, |a, b| a != 1 && b != 1);
    assert_eq!(reachability(&mut sim), want);
    sim.connect(1);
    assert_eq!(reachability(&mut sim), expect(5, |_, _| true));
}

#[test]
fn partition_connects_inside_groups_only_and_cuts_off_the_rest() {
    let mut sim = five();
    sim.partition(&[&[0, 1], &[2, 3]]);
    let group = |i: usize| match i {
        0 | 1 => Some(0),
        2 | 3 => Some(1),
        _ => None,
    };
    let want = expect(5, |a, b| group(a).is_some() && group(a) == group(b));
    assert_eq!(links(&sim), want);
    assert_eq!(reachability(&mut sim), want);
    assert!((0..4).all(|i| sim.is_connected(i)));
    assert!(!sim.is_connected(4));
    // ConnectOne(4) now links 4 with everyone marked connected, across both groups, and
    // leaves the partition between the groups alone.
    sim.connect(4);
    let want = expect(5, |a, b| a == 4 || b == 4 || group(a) == group(b));
    assert_eq!(reachability(&mut sim), want);
    sim.connect_all();
    assert_eq!(reachability(&mut sim), expect(5, |_, _| true));
}

#[test]
fn set_link_is_one_directional() {
    let mut sim = five();
    sim.set_link(0, 1, false);
    assert!(!sim.link(0, 1) && sim.link(1, 0));
    assert!(sim.is_connected(0) && sim.is_connected(1));
    assert_eq!(reachability(&mut sim), expect(5, |a, b| (a, b) != (0, 1)));
    sim.set_link(0, 1, true);
    assert_eq!(reachability(&mut sim), expect(5, |_, _| true));
}

#[test]
fn random_partitions_match_delivery() {
    let mut sim = five();
    for _ in 0..30 {
        let side: Vec<u64> = (0..5).map(|_| sim.rng().rand_range(0..3)).collect();
        let g0: Vec<usize> = (0..5).filter(|&i| side[i] == 0).collect();
        let g1: Vec<usize> = (0..5).filter(|&i| side[i] == 1).collect();
        sim.partition(&[&g0, &g1]);
        let want = expect(5, |a, b| side[a] < 2 && side[a] == side[b]);
        assert_eq!(links(&sim), want);
        assert_eq!(reachability(&mut sim), want, "sides {side:?}");
    }
}

/// Sends 0 -> 1 with a fixed 10 ms delay, runs `before` of it, applies `change`, runs the
/// rest; returns whether the message arrived.
fn delivered_after(change: impl Fn(&mut Sim<Toy>), cut_first: bool) -> (bool, u64) {
    let mut sim = toy::quiet(2, 10 * MS);
    if cut_first {
        sim.set_link(0, 1, false);
    }
    send(&mut sim, 0, 1, 7, 1);
    sim.run_for(3 * MS);
    change(&mut sim);
    sim.run_for(20 * MS);
    (!take_got(&mut sim).is_empty(), sim.stats().msgs_cut)
}

#[test]
fn the_link_is_checked_at_delivery_time() {
    // Up at send, down at delivery: dropped.
    let cut = |s: &mut Sim<Toy>| s.set_link(0, 1, false);
    assert_eq!(delivered_after(cut, false), (false, 1));
    let disconnect = |s: &mut Sim<Toy>| s.disconnect(1);
    assert_eq!(delivered_after(disconnect, false), (false, 1));
    // Down and up again while in flight: delivered (up at both ends of the trip).
    let flap = |s: &mut Sim<Toy>| {
        s.disconnect(0);
        s.run_for(2 * MS);
        s.connect(0);
    };
    assert_eq!(delivered_after(flap, false), (true, 0));
    // Control: nothing changes.
    assert_eq!(delivered_after(|_| {}, false), (true, 0));
}

#[test]
fn the_link_is_checked_at_send_time() {
    // Down at send, up at delivery: dropped.
    let heal = |s: &mut Sim<Toy>| s.set_link(0, 1, true);
    assert_eq!(delivered_after(heal, true), (false, 1));
}

#[test]
fn a_node_can_always_send_to_itself() {
    let mut sim = five();
    sim.disconnect(3);
    send(&mut sim, 3, 3, 1, 1);
    sim.run_for(5 * MS);
    assert_eq!(take_got(&mut sim).len(), 1);
}

#[test]
fn connect_to_and_disconnect_from_touch_only_the_listed_nodes() {
    // Nodes 0..3 are servers, 3 and 4 are clients.
    let mut sim = five();
    sim.disconnect_from(0, &[1, 2]);
    assert!(!sim.is_connected(0));
    let want = expect(5, |a, b| !matches!((a.min(b), a.max(b)), (0, 1) | (0, 2)));
    assert_eq!(reachability(&mut sim), want);
    // 1 is marked disconnected: connect_to(0, [1, 2]) links 0 with 2 only.
    sim.disconnect_from(1, &[2]);
    sim.connect_to(0, &[1, 2]);
    assert!(sim.is_connected(0) && !sim.is_connected(1));
    let want = expect(5, |a, b| !matches!((a.min(b), a.max(b)), (0, 1) | (1, 2)));
    assert_eq!(reachability(&mut sim), want);
}

#[test]
fn partition_within_keeps_other_nodes_links() {
    // Servers 0..3 partitioned as {0}, {1, 2}; client 3 and 4 keep all their links.
    let mut sim = five();
    sim.partition_within(&[0, 1, 2], &[&[0], &[1, 2]]);
    assert!((0..5).all(|i| sim.is_connected(i)));
    let server_side = |i: usize| if i == 0 { 0 } else { 1 };
    let want = expect(5, |a, b| {
        a >= 3 || b >= 3 || server_side(a) == server_side(b)
    });
    assert_eq!(links(&sim), want);
    assert_eq!(reachability(&mut sim), want);
    // A server left out of every group is cut off from the servers only.
    sim.partition_within(&[0, 1, 2], &[&[1, 2]]);
    assert!(!sim.is_connected(0));
    let want = expect(5, |a, b| a >= 3 || b >= 3 || (a != 0 && b != 0));
    assert_eq!(reachability(&mut sim), want);
}
