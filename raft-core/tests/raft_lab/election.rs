//! 3A: leader election (LAB-SCENARIOS.md 5.1).

use stepwise_sim::{Harness, MS, SEC, sim_seeds};

use crate::LAB_SEEDS;
use crate::harness::Tester;

/// TestInitialElection3A: a leader is elected, terms agree and stay put without failures.
#[test]
fn initial_election() {
    sim_seeds!(LAB_SEEDS, |seed| {
        let mut t = Tester::new(3, true, false, seed);
        t.check_one_leader();
        t.sleep(50 * MS);
        let term1 = t.check_terms();
        assert!(term1 >= 1, "term is {term1}, but should be at least 1");
        t.sleep(2 * SEC);
        let term2 = t.check_terms();
        // The lab only warns here; with pre-vote and check-quorum a stable cluster must not
        // change terms at all, so we assert it.
        assert_eq!(
            term1, term2,
            "term changed even though there were no failures"
        );
        t.check_one_leader();
    });
}

/// TestReElection3A: a new leader after the old one is cut off; no leader without quorum.
#[test]
fn re_election() {
    sim_seeds!(LAB_SEEDS, |seed| {
        let mut t = Tester::new(3, true, false, seed);
        let l1 = t.check_one_leader();
        t.disconnect(l1);
        t.check_one_leader();
        t.connect(l1);
        let l2 = t.check_one_leader();
        t.disconnect(l2);
        t.disconnect((l2 + 1) % 3);
        t.sleep(2 * SEC);
        t.check_no_leader();
        t.connect((l2 + 1) % 3);
        t.check_one_leader();
        t.connect(l2);
        t.check_one_leader();
    });
}

/// TestManyElections3A: 7 servers, 9 rounds of cutting off 3 random servers.
#[test]
fn many_elections() {
    sim_seeds!(LAB_SEEDS, |seed| {
        let n = 7;
        let mut t = Tester::new(n, true, false, seed);
        t.check_one_leader();
        for _ in 0..9 {
            let i1 = t.rand_range(0, n as u64) as usize;
            let i2 = t.rand_range(0, n as u64) as usize;
            let i3 = t.rand_range(0, n as u64) as usize;
            t.disconnect(i1);
            t.disconnect(i2);
            t.disconnect(i3);
            t.check_one_leader();
            t.connect(i1);
            t.connect(i2);
            t.connect(i3);
        }
        t.check_one_leader();
    });
}
