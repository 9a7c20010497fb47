//! The 2025 lock lab (`kvsrv1/lock`, LAB-SCENARIOS.md 4.2): a lock built from the clerk's
//! versioned Put and Get, on the single server. Each client loops: acquire, check that the
//! guarded key "l0" is empty, write its id, sleep 10 ms, clear it, release; two holders at
//! once would find the key non-empty. The replicated variant runs in `kvraft.rs`.

use stepwise_kv::{Lock, LockStep, Op};
use stepwise_sim::{Harness, MS, SEC, sim_seeds};

use crate::LAB_SEEDS;
use crate::harness::{KvTester, Program, Report, Service, Setup};
use crate::programs::LockClient;

/// NSEC: how long the clients run.
const NSEC: u64 = 2;

pub fn run_lock_clients(t: &mut KvTester, nclients: usize) {
    let programs: Vec<(usize, Box<dyn Program<Report>>)> = (0..nclients)
        .map(|k| {
            let ck = t.clerk(k);
            let p: Box<dyn Program<Report>> = Box::new(LockClient::new(ck as u64));
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

/// Runs a lock operation to completion on clerk `ck` (the tester calling
/// `Acquire`/`Release` directly).
fn drive(t: &mut KvTester, ck: usize, lock: &mut Lock, first: Op) -> LockStep {
    let mut next = LockStep::Run(first);
    loop {
        match next {
            LockStep::Run(op) => {
                let r = t.op(ck, op);
                next = lock.on_result(&r);
            }
            LockStep::Wait { ticks, op } => {
                t.sleep(u64::from(ticks) * 10 * MS);
                next = LockStep::Run(op);
            }
            done => return done,
        }
    }
}

fn single(seed: u64, clients: usize) -> KvTester {
    KvTester::new(Setup {
        servers: 1,
        clients,
        reliable: true,
        service: Service::Single,
        sessions: false,
        seed,
    })
}

/// TestReliableBasic (2026 lock): acquire and release one randomly named lock.
#[test]
fn reliable_basic() {
    sim_seeds!(LAB_SEEDS, |seed| {
        let mut t = single(seed, 1);
        let ck = t.clerk(0);
        let name = format!("lock-{}", t.sim.rng().rand_u64());
        let mut lk = Lock::new(name.clone(), "owner-a", 1);
        let first = lk.acquire();
        assert_eq!(drive(&mut t, ck, &mut lk, first), LockStep::Acquired);
        let (v, _) = t.get(ck, &name);
        assert_eq!(v, "owner-a");
        let first = lk.release();
        assert_eq!(drive(&mut t, ck, &mut lk, first), LockStep::Released);
        let (v, _) = t.get(ck, &name);
        assert_eq!(v, "");
        t.check_versioned();
    });
}

/// TestReliableNested (2026 lock): two locks with different names can be held at the
/// same time, acquired and released in nested and in interleaved order; a second user
/// cannot take a held lock.
#[test]
fn reliable_nested() {
    sim_seeds!(LAB_SEEDS, |seed| {
        let mut t = single(seed, 2);
        let (ck, other) = (t.clerk(0), t.clerk(1));
        let mut a = Lock::new("la", "me", 1);
        let mut b = Lock::new("lb", "me", 1);
        for interleaved in [false, true] {
            let first = a.acquire();
            assert_eq!(drive(&mut t, ck, &mut a, first), LockStep::Acquired);
            let first = b.acquire();
            assert_eq!(drive(&mut t, ck, &mut b, first), LockStep::Acquired);
            // Someone else finds both held.
            let mut c = Lock::new("la", "you", 1);
            let first = c.acquire();
            let r = t.op(other, first);
            assert!(matches!(c.on_result(&r), LockStep::Wait { .. }));
            let (x, y) = if interleaved {
                (&mut a, &mut b)
            } else {
                (&mut b, &mut a)
            };
            let first = x.release();
            assert_eq!(drive(&mut t, ck, x, first), LockStep::Released);
            let first = y.release();
            assert_eq!(drive(&mut t, ck, y, first), LockStep::Released);
        }
        t.check_versioned();
    });
}
