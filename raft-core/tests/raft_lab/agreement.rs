//! 3B: log agreement (LAB-SCENARIOS.md 5.2).

use bytes::Bytes;
use stepwise_sim::{Harness, MS, SEC, sim_seeds};

use crate::LAB_SEEDS;
use crate::harness::{Tester, cmd};

/// TestBasicAgree3B.
#[test]
fn basic_agree() {
    sim_seeds!(LAB_SEEDS, |seed| {
        let mut t = Tester::new(3, true, false, seed);
        for index in 1..=3 {
            let (nd, _) = t.n_committed(index);
            assert_eq!(nd, 0, "some have committed before Start()");
            let xindex = t.one(cmd(index * 100), 3, false);
            assert_eq!(xindex, index, "got index {xindex} but expected {index}");
        }
    });
}

/// TestRPCBytes3B: each 5000-byte command crosses the network about once per follower.
#[test]
fn rpc_bytes() {
    sim_seeds!(LAB_SEEDS, |seed| {
        let mut t = Tester::new(3, true, false, seed);
        t.one(cmd(99), 3, false);
        let bytes0 = t.bytes_total();
        let mut sent = 0u64;
        for index in 2..12 {
            let mut s = vec![0u8; 5000];
            for b in &mut s {
                *b = b'a' + (t.rand_u64() % 26) as u8;
            }
            let xindex = t.one(Bytes::from(s), 3, false);
            assert_eq!(xindex, index, "got index {xindex} but expected {index}");
            sent += 5000;
        }
        let got = t.bytes_total() - bytes0;
        let expected = 3 * sent;
        assert!(
            got <= expected + 50_000,
            "too many RPC bytes; got {got}, expected {expected}"
        );
    });
}

/// TestFollowerFailure3B.
#[test]
fn follower_failure() {
    sim_seeds!(LAB_SEEDS, |seed| {
        let mut t = Tester::new(3, true, false, seed);
        t.one(cmd(101), 3, false);
        let leader1 = t.check_one_leader();
        t.disconnect((leader1 + 1) % 3);
        t.one(cmd(102), 2, false);
        t.sleep(SEC);
        t.one(cmd(103), 2, false);
        let leader2 = t.check_one_leader();
        t.disconnect((leader2 + 1) % 3);
        t.disconnect((leader2 + 2) % 3);
        let (index, _) = t.start(leader2, cmd(104)).expect("leader rejected Start()");
        assert_eq!(index, 4, "expected index 4, got {index}");
        t.sleep(2 * SEC);
        let (n, _) = t.n_committed(index);
        assert_eq!(n, 0, "{n} committed but no majority");
    });
}

/// TestLeaderFailure3B.
#[test]
fn leader_failure() {
    sim_seeds!(LAB_SEEDS, |seed| {
        let mut t = Tester::new(3, true, false, seed);
        t.one(cmd(101), 3, false);
        let leader1 = t.check_one_leader();
        t.disconnect(leader1);
        t.one(cmd(102), 2, false);
        t.sleep(SEC);
        t.one(cmd(103), 2, false);
        let leader2 = t.check_one_leader();
        t.disconnect(leader2);
        for i in 0..3 {
            t.start(i, cmd(104));
        }
        t.sleep(2 * SEC);
        let (n, _) = t.n_committed(4);
        assert_eq!(n, 0, "{n} committed but no majority");
    });
}

/// TestFailAgree3B: a disconnected follower catches up after reconnecting.
#[test]
fn fail_agree() {
    sim_seeds!(LAB_SEEDS, |seed| {
        let mut t = Tester::new(3, true, false, seed);
        t.one(cmd(101), 3, false);
        let leader = t.check_one_leader();
        t.disconnect((leader + 1) % 3);
        t.one(cmd(102), 2, false);
        t.one(cmd(103), 2, false);
        t.sleep(SEC);
        t.one(cmd(104), 2, false);
        t.one(cmd(105), 2, false);
        t.connect((leader + 1) % 3);
        t.one(cmd(106), 3, true);
        t.sleep(SEC);
        t.one(cmd(107), 3, true);
    });
}

/// TestFailNoAgree3B: no agreement without a majority.
#[test]
fn fail_no_agree() {
    sim_seeds!(LAB_SEEDS, |seed| {
        let n = 5;
        let mut t = Tester::new(n, true, false, seed);
        t.one(cmd(10), n, false);
        let leader = t.check_one_leader();
        for k in 1..=3 {
            t.disconnect((leader + k) % n);
        }
        let (index, _) = t.start(leader, cmd(20)).expect("leader rejected Start()");
        assert_eq!(index, 2, "expected index 2, got {index}");
        t.sleep(2 * SEC);
        let (nd, _) = t.n_committed(index);
        assert_eq!(nd, 0, "{nd} committed but no majority");
        for k in 1..=3 {
            t.connect((leader + k) % n);
        }
        let leader2 = t.check_one_leader();
        let (index2, _) = t.start(leader2, cmd(30)).expect("leader2 rejected Start()");
        assert!((2..=3).contains(&index2), "unexpected index {index2}");
        t.one(cmd(1000), n, true);
    });
}

/// TestConcurrentStarts3B: concurrent Starts on the leader all commit.
#[test]
fn concurrent_starts() {
    sim_seeds!(LAB_SEEDS, |seed| {
        let mut t = Tester::new(3, true, false, seed);
        let mut success = false;
        'attempts: for attempt in 0..5 {
            if attempt > 0 {
                t.sleep(3 * SEC);
            }
            let leader = t.check_one_leader();
            let Some((_, term)) = t.start(leader, cmd(1)) else {
                continue;
            };
            let mut indexes = Vec::new();
            for i in 0..5 {
                match t.start(leader, cmd(100 + i)) {
                    Some((index, term1)) if term1 == term => indexes.push((index, 100 + i)),
                    _ => continue 'attempts,
                }
            }
            if (0..3).any(|j| t.state(j).is_some_and(|(t1, _)| t1 != term)) {
                continue;
            }
            let mut cmds = Vec::new();
            for &(index, _) in &indexes {
                match t.wait(index, 3, Some(term)) {
                    Some(c) => cmds.push(u64::from_le_bytes(c[..].try_into().unwrap())),
                    None => continue 'attempts,
                }
            }
            for (_, x) in &indexes {
                assert!(cmds.contains(x), "cmd {x} missing in {cmds:?}");
            }
            success = true;
            break;
        }
        assert!(success, "term changed too often");
    });
}

/// TestRejoin3B: a partitioned leader's stale entries are overwritten when it rejoins.
#[test]
fn rejoin() {
    sim_seeds!(LAB_SEEDS, |seed| {
        let mut t = Tester::new(3, true, false, seed);
        t.one(cmd(101), 3, true);
        let leader1 = t.check_one_leader();
        t.disconnect(leader1);
        t.start(leader1, cmd(102));
        t.start(leader1, cmd(103));
        t.start(leader1, cmd(104));
        t.one(cmd(103), 2, true);
        let leader2 = t.check_one_leader();
        t.disconnect(leader2);
        t.connect(leader1);
        t.one(cmd(104), 2, true);
        t.connect(leader2);
        t.one(cmd(105), 3, true);
    });
}

/// TestBackup3B: the leader backs up quickly over long divergent logs.
#[test]
fn backup() {
    sim_seeds!(LAB_SEEDS, |seed| {
        let n = 5;
        let mut t = Tester::new(n, true, false, seed);
        let r = t.rand_u64();
        t.one(cmd(r), n, true);
        let leader1 = t.check_one_leader();
        for k in 2..=4 {
            t.disconnect((leader1 + k) % n);
        }
        for _ in 0..50 {
            let r = t.rand_u64();
            t.start(leader1, cmd(r));
        }
        t.sleep(500 * MS);
        t.disconnect(leader1);
        t.disconnect((leader1 + 1) % n);
        for k in 2..=4 {
            t.connect((leader1 + k) % n);
        }
        for _ in 0..50 {
            let r = t.rand_u64();
            t.one(cmd(r), 3, true);
        }
        let leader2 = t.check_one_leader();
        let mut other = (leader1 + 2) % n;
        if leader2 == other {
            other = (leader2 + 1) % n;
        }
        t.disconnect(other);
        for _ in 0..50 {
            let r = t.rand_u64();
            t.start(leader2, cmd(r));
        }
        t.sleep(500 * MS);
        for i in 0..n {
            t.disconnect(i);
        }
        t.connect(leader1);
        t.connect((leader1 + 1) % n);
        t.connect(other);
        for _ in 0..50 {
            let r = t.rand_u64();
            t.one(cmd(r), 3, true);
        }
        for i in 0..n {
            t.connect(i);
        }
        let r = t.rand_u64();
        t.one(cmd(r), n, true);
    });
}

/// TestCount3B: RPC counts for an election, for agreement, and when idle.
#[test]
fn count() {
    sim_seeds!(LAB_SEEDS, |seed| {
        let mut t = Tester::new(3, true, false, seed);
        let leader = t.check_one_leader();
        let mut total1 = t.rpc_total();
        assert!(
            (1..=30).contains(&total1),
            "too many or few RPCs ({total1}) to elect initial leader"
        );
        let mut success = false;
        let mut total2 = 0;
        'attempts: for attempt in 0..5 {
            if attempt > 0 {
                t.sleep(3 * SEC);
            }
            let leader = t.check_one_leader();
            total1 = t.rpc_total();
            let iters = 10;
            let Some((starti, term)) = t.start(leader, cmd(1)) else {
                continue;
            };
            let mut cmds = Vec::new();
            for i in 1..iters + 2 {
                let x = t.rand_u64();
                cmds.push(x);
                match t.start(leader, cmd(x)) {
                    Some((index1, term1)) if term1 == term => {
                        assert_eq!(index1, starti + i, "Start() failed");
                    }
                    _ => continue 'attempts,
                }
            }
            for i in 1..=iters {
                match t.wait(starti + i, 3, Some(term)) {
                    Some(c) => assert_eq!(
                        u64::from_le_bytes(c[..].try_into().unwrap()),
                        cmds[(i - 1) as usize],
                        "wrong value committed"
                    ),
                    None => continue 'attempts,
                }
            }
            if (0..3).any(|j| t.state(j).is_some_and(|(t1, _)| t1 != term)) {
                continue;
            }
            total2 = t.rpc_total();
            assert!(
                total2 - total1 <= (iters + 1 + 3) * 3,
                "too many RPCs ({}) for {iters} entries",
                total2 - total1
            );
            success = true;
            break;
        }
        assert!(success, "term changed too often");
        let _ = leader;
        t.sleep(SEC);
        let total3 = t.rpc_total();
        assert!(
            total3 - total2 <= 3 * 20,
            "too many RPCs ({}) for 1 second of idleness",
            total3 - total2
        );
    });
}
