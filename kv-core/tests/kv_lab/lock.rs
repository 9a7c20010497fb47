//! The 2025 lock lab (`kvsrv1/lock`, LAB-SCENARIOS.md 4.2): a lock built from the clerk's
//! versioned Put and Get, on the single server. Each client loops: acquire, check that the
//! guarded key "l0" is empty, write its id, sleep 10 ms, clear it, release; two holders at
//! once would find the key non-empty. The replicated variant runs in `kvraft.rs`.

use stepwise_sim::{SEC, sim_seeds};

use crate::LAB_SEEDS;
use crate::harness::{KvTester, Program, Service, Setup};
use crate::programs::LockClient;

/// NSEC: how long the clients run.
const NSEC: u64 = 2;

pub fn run_lock_clients(t: &mut KvTester, nclients: usize) {
    let programs: Vec<(usize, Box<dyn Program>)> = (0..nclients)
        .map(|k| {
            let ck = t.clerk(k);
            let p: Box<dyn Program> = Box::new(LockClient::new(ck as u64));
            (ck, p)
        })
        .collect();
    let reports = t.spawn_clients_and_wait(programs, NSEC * SEC);
    let cycles: u64 = reports.iter().map(|r| r.ops).sum();
    assert!(cycles > 0, "no client ever acquired and released the lock");
    t.check_versioned();
}

fn lock_test(nclients: usize, reliable: bool, seed: u64) {
    let mut t = KvTester::new(Setup {
        servers: 1,
        clients: nclients,
        reliable,
        service: Service::Single,
        sessions: false,
        seed,
    });
    run_lock_clients(&mut t, nclients);
}

/// TestOneClientReliable (2025 lock).
#[test]
fn one_client_reliable() {
    sim_seeds!(LAB_SEEDS, |seed| lock_test(1, true, seed));
}

/// TestManyClientsReliable (2025 lock): 10 clients.
#[test]
fn many_clients_reliable() {
    sim_seeds!(LAB_SEEDS, |seed| lock_test(10, true, seed));
}

/// TestOneClientUnreliable (2025 lock).
#[test]
fn one_client_unreliable() {
    sim_seeds!(LAB_SEEDS, |seed| lock_test(1, false, seed));
}

/// TestManyClientsUnreliable (2025 lock): 10 clients.
#[test]
fn many_clients_unreliable() {
    sim_seeds!(LAB_SEEDS, |seed| lock_test(10, false, seed));
}
