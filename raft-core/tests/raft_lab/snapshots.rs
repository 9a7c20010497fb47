//! 3D: snapshots and log compaction (LAB-SCENARIOS.md 5.4).

use stepwise_sim::sim_seeds;

use crate::LAB_SEEDS;
use crate::harness::{Tester, cmd};

/// The lab's MAXLOGSIZE: the persisted Raft state must stay below this.
const MAX_LOG_SIZE: usize = 2000;

/// The lab's snapcommon.
fn snapcommon(seed: u64, disconnect: bool, reliable: bool, crash: bool) {
    let iters = 30;
    let n = 3;
    let mut t = Tester::new(n, reliable, true, seed);
    let r = t.rand_u64();
    t.one(cmd(r), n, true);
    let mut leader1 = t.check_one_leader();
    for i in 0..iters {
        let mut victim = (leader1 + 1) % n;
        let mut sender = leader1;
        if i % 3 == 1 {
            sender = (leader1 + 1) % n;
            victim = leader1;
        }
        if disconnect {
            t.disconnect(victim);
            let r = t.rand_u64();
            t.one(cmd(r), n - 1, true);
        }
        if crash {
            t.crash(victim);
            let r = t.rand_u64();
            t.one(cmd(r), n - 1, true);
        }
        let nn = 5 + t.rand_range(0, 10);
        for _ in 0..nn {
            let r = t.rand_u64();
            t.start(sender, cmd(r));
        }
        let r = t.rand_u64();
        if !disconnect && !crash {
            t.one(cmd(r), n, true);
        } else {
            t.one(cmd(r), n - 1, true);
        }
        let size = t.max_raft_state();
        assert!(
            size < MAX_LOG_SIZE,
            "log size too large: {size} bytes (iteration {i})"
        );
        if disconnect {
            t.connect(victim);
            let r = t.rand_u64();
            t.one(cmd(r), n, true);
            leader1 = t.check_one_leader();
        }
        if crash {
            t.restart(victim);
            let r = t.rand_u64();
            t.one(cmd(r), n, true);
            leader1 = t.check_one_leader();
        }
    }
}

/// TestSnapshotBasic3D.
#[test]
fn snapshot_basic() {
    sim_seeds!(LAB_SEEDS, |seed| snapcommon(seed, false, true, false));
}

/// TestSnapshotInstall3D.
#[test]
fn snapshot_install() {
    sim_seeds!(LAB_SEEDS, |seed| snapcommon(seed, true, true, false));
}

/// TestSnapshotInstallUnreliable3D.
#[test]
fn snapshot_install_unreliable() {
    sim_seeds!(LAB_SEEDS, |seed| snapcommon(seed, true, false, false));
}

/// TestSnapshotInstallCrash3D.
#[test]
fn snapshot_install_crash() {
    sim_seeds!(LAB_SEEDS, |seed| snapcommon(seed, false, true, true));
}

/// TestSnapshotInstallUnCrash3D.
#[test]
fn snapshot_install_uncrash() {
    sim_seeds!(LAB_SEEDS, |seed| snapcommon(seed, false, false, true));
}

/// TestSnapshotAllCrash3D (unreliable, as in 2025): crash-all keeps progress.
#[test]
fn snapshot_all_crash() {
    sim_seeds!(LAB_SEEDS, |seed| {
        let n = 3;
        let iters = 5;
        let mut t = Tester::new(n, false, true, seed);
        let r = t.rand_u64();
        t.one(cmd(r), n, true);
        for _ in 0..iters {
            let nn = 5 + t.rand_range(0, 10);
            for _ in 0..nn {
                let r = t.rand_u64();
                t.one(cmd(r), n, true);
            }
            let r = t.rand_u64();
            let index1 = t.one(cmd(r), n, true);
            for i in 0..n {
                t.crash(i);
            }
            for i in 0..n {
                t.restart(i);
            }
            let r = t.rand_u64();
            let index2 = t.one(cmd(r), n, true);
            assert!(index2 > index1, "index decreased from {index1} to {index2}");
        }
    });
}

/// TestSnapshotInit3D (unreliable, as in 2025): a restarted server loads its snapshot.
#[test]
fn snapshot_init() {
    sim_seeds!(LAB_SEEDS, |seed| {
        let n = 3;
        let mut t = Tester::new(n, false, true, seed);
        let r = t.rand_u64();
        t.one(cmd(r), n, true);
        for _ in 0..11 {
            let r = t.rand_u64();
            t.one(cmd(r), n, true);
        }
        for round in 0..2 {
            for i in 0..n {
                t.crash(i);
            }
            for i in 0..n {
                t.restart(i);
            }
            let r = t.rand_u64();
            t.one(cmd(r), n, true);
            let _ = round;
        }
    });
}
