//! 3C: persistence (LAB-SCENARIOS.md 5.3).

use std::collections::BTreeSet;

use stepwise_sim::{Harness, MS, NetConfig, SEC, sim_seeds};

use crate::LAB_SEEDS;
use crate::harness::{Tester, cmd};

/// TestPersist13C.
#[test]
fn persist1() {
    sim_seeds!(LAB_SEEDS, |seed| {
        let n = 3;
        let mut t = Tester::new(n, true, false, seed);
        t.one(cmd(11), n, true);
        for i in 0..n {
            t.crash(i);
        }
        for i in 0..n {
            t.restart(i);
        }
        t.one(cmd(12), n, true);
        let leader1 = t.check_one_leader();
        t.crash(leader1);
        t.restart(leader1);
        t.one(cmd(13), n, true);
        let leader2 = t.check_one_leader();
        t.crash(leader2);
        t.one(cmd(14), n - 1, true);
        t.restart(leader2);
        t.wait(4, n, None);
        let i3 = (t.check_one_leader() + 1) % n;
        t.crash(i3);
        t.one(cmd(15), n - 1, true);
        t.restart(i3);
        t.one(cmd(16), n, true);
    });
}

/// TestPersist23C.
#[test]
fn persist2() {
    sim_seeds!(LAB_SEEDS, |seed| {
        let n = 5;
        let mut t = Tester::new(n, true, false, seed);
        let mut index = 1;
        for _ in 0..5 {
            t.one(cmd(10 + index), n, true);
            index += 1;
            let leader1 = t.check_one_leader();
            t.crash((leader1 + 1) % n);
            t.crash((leader1 + 2) % n);
            t.one(cmd(10 + index), n - 2, true);
            index += 1;
            t.crash(leader1);
            t.crash((leader1 + 3) % n);
            t.crash((leader1 + 4) % n);
            t.restart((leader1 + 1) % n);
            t.restart((leader1 + 2) % n);
            t.sleep(SEC);
            t.restart((leader1 + 3) % n);
            t.one(cmd(10 + index), n - 2, true);
            index += 1;
            t.restart((leader1 + 4) % n);
            t.restart(leader1);
        }
        t.one(cmd(1000), n, true);
    });
}

/// TestPersist33C.
#[test]
fn persist3() {
    sim_seeds!(LAB_SEEDS, |seed| {
        let n = 3;
        let mut t = Tester::new(n, true, false, seed);
        t.one(cmd(101), 3, true);
        let leader = t.check_one_leader();
        t.disconnect((leader + 2) % n);
        t.one(cmd(102), 2, true);
        t.crash(leader % n);
        t.crash((leader + 1) % n);
        t.connect((leader + 2) % n);
        t.restart(leader % n);
        t.one(cmd(103), 2, true);
        t.restart((leader + 1) % n);
        t.one(cmd(104), n, true);
    });
}

/// Shared body of TestFigure83C and TestFigure8Unreliable3C.
fn figure8(seed: u64, unreliable: bool) {
    let n = 5;
    let mut t = Tester::new(n, !unreliable, false, seed);
    let r = t.rand_u64() % 10_000;
    t.one(cmd(r), 1, true);
    let mut nup = n;
    for iters in 0..1000 {
        if unreliable && iters == 200 {
            t.sim.net_mut().long_reordering = true;
        }
        let mut leader = None;
        for i in 0..n {
            let live = if unreliable {
                t.sim.is_connected(i)
            } else {
                t.sim.is_up(i)
            };
            let r = t.rand_u64() % 10_000;
            if live && t.start(i, cmd(r)).is_some() {
                leader = Some(i);
            }
        }
        let ms = if t.rand_range(0, 1000) < 100 {
            t.rand_range(0, 500)
        } else {
            t.rand_range(0, 13)
        };
        t.sleep(ms * MS);
        if unreliable {
            if let Some(l) = leader
                && t.rand_range(0, 1000) < 500
            {
                t.disconnect(l);
                nup -= 1;
            }
            if nup < 3 {
                let s = t.rand_range(0, n as u64) as usize;
                if !t.sim.is_connected(s) {
                    t.connect(s);
                    nup += 1;
                }
            }
        } else {
            if let Some(l) = leader {
                t.crash(l);
                nup -= 1;
            }
            if nup < 3 {
                let s = t.rand_range(0, n as u64) as usize;
                if !t.sim.is_up(s) {
                    t.restart(s);
                    nup += 1;
                }
            }
        }
    }
    for i in 0..n {
        if unreliable {
            t.connect(i);
        } else if !t.sim.is_up(i) {
            t.restart(i);
        }
    }
    let r = t.rand_u64() % 10_000;
    t.one(cmd(r), n, true);
}

/// TestFigure83C: leaders crash constantly; committed entries survive (Figure 8).
#[test]
fn figure8_reliable() {
    sim_seeds!(LAB_SEEDS, |seed| figure8(seed, false));
}

/// TestFigure8Unreliable3C: the same on an unreliable network with long reordering.
#[test]
fn figure8_unreliable() {
    sim_seeds!(LAB_SEEDS, |seed| figure8(seed, true));
}

/// TestUnreliableAgree3C: agreement despite an unreliable network.
#[test]
fn unreliable_agree() {
    sim_seeds!(LAB_SEEDS, |seed| {
        let n = 5;
        let mut t = Tester::new(n, false, false, seed);
        // The lab runs 4 concurrent one() calls plus one sequential per iteration. Here the
        // concurrent ones are Starts on the leader whose commits are checked at the end.
        let mut pending = Vec::new();
        for iters in 1..50u64 {
            for j in 0..4 {
                let c = 100 * iters + j;
                if let Some(l) = (0..n).find(|&i| t.is_leader(i)) {
                    t.start(l, cmd(c));
                }
                pending.push((0, c));
            }
            t.one(cmd(iters), 1, true);
        }
        // "Wait for all": every concurrent command commits somewhere, retried like one().
        *t.sim.net_mut() = NetConfig::reliable();
        for (_, c) in pending {
            if !t.committed_anywhere(&cmd(c)) {
                t.one(cmd(c), 1, true);
            }
        }
        t.one(cmd(100), n, true);
    });
}

/// Shared body of TestReliableChurn3C and TestUnreliableChurn3C.
fn churn(seed: u64, unreliable: bool) {
    let n = 5;
    let mut t = Tester::new(n, !unreliable, false, seed);
    // Three clients, interleaved in virtual time: each repeatedly Starts a random command on
    // every live server and records it if it commits at the index it got.
    let mut committed: BTreeSet<u64> = BTreeSet::new();
    let mut client_next = [0u64; 3];
    let mut client_wait: [Option<(u64, u64, u64)>; 3] = [None; 3]; // (index, cmd, deadline)
    let client_step = |t: &mut Tester,
                       c: usize,
                       next: &mut [u64; 3],
                       wait: &mut [Option<(u64, u64, u64)>; 3],
                       committed: &mut BTreeSet<u64>| {
        let now = t.sim.now();
        if now < next[c] {
            return;
        }
        if let Some((index, x, deadline)) = wait[c] {
            let (nd, v) = t.n_committed(index);
            if nd > 0 {
                if v.flatten().is_some_and(|b| b[..] == x.to_le_bytes()) {
                    committed.insert(x);
                }
                wait[c] = None;
            } else if now >= deadline {
                wait[c] = None;
            } else {
                next[c] = now + 10 * MS;
                return;
            }
        }
        let x = t.rand_u64();
        let mut got = None;
        for i in 0..n {
            if let Some((index, _)) = t.start(i, cmd(x)) {
                got = Some(index);
            }
        }
        match got {
            Some(index) => wait[c] = Some((index, x, now + 380 * MS)),
            None => next[c] = now + (79 + 17 * c as u64) * MS,
        }
    };
    for _ in 0..20 {
        if t.rand_range(0, 1000) < 200 {
            let i = t.rand_range(0, n as u64) as usize;
            t.disconnect(i);
        }
        if t.rand_range(0, 1000) < 500 {
            let i = t.rand_range(0, n as u64) as usize;
            if !t.sim.is_up(i) {
                t.restart(i);
            }
            t.connect(i);
        }
        if t.rand_range(0, 1000) < 200 {
            let i = t.rand_range(0, n as u64) as usize;
            if t.sim.is_up(i) {
                t.crash(i);
            }
        }
        let until = t.sim.now() + 700 * MS;
        while t.sim.now() < until {
            for c in 0..3 {
                client_step(
                    &mut t,
                    c,
                    &mut client_next,
                    &mut client_wait,
                    &mut committed,
                );
            }
            t.sleep(5 * MS);
        }
    }
    t.sleep(SEC);
    *t.sim.net_mut() = NetConfig::reliable();
    for i in 0..n {
        if !t.sim.is_up(i) {
            t.restart(i);
        }
        t.connect(i);
    }
    t.sleep(SEC);
    let r = t.rand_u64();
    let last_index = t.one(cmd(r), n, true);
    let mut really = BTreeSet::new();
    for index in 1..=last_index {
        let v = t.wait(index, n, None).expect("command at every index");
        really.insert(u64::from_le_bytes(v[..].try_into().unwrap()));
    }
    for x in &committed {
        assert!(
            really.contains(x),
            "didn't find a value {x} in the final log"
        );
    }
}

/// TestReliableChurn3C.
#[test]
fn reliable_churn() {
    sim_seeds!(LAB_SEEDS, |seed| churn(seed, false));
}

/// TestUnreliableChurn3C.
#[test]
fn unreliable_churn() {
    sim_seeds!(LAB_SEEDS, |seed| churn(seed, true));
}
