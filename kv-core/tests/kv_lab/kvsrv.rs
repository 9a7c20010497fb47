//! The single-server labs: 2025 `kvsrv1` (versioned Put, LAB-SCENARIOS.md 4.1) and 2024
//! `kvsrv` (Get/Put/Append with the old value returned, 4.3). The memory tests live in
//! `tests/kvsrv_memory.rs` (they need their own allocator).

use stepwise_kv::{KvError, KvOutput, Op};
use stepwise_sim::{SEC, sim_seeds};

use crate::LAB_SEEDS;
use crate::harness::{KvTester, Program, Report, Service, Setup};
use crate::programs::{AppendClient, OneClientPut, check_clnt_appends, one_key_appends};

fn kvsrv(clients: usize, reliable: bool, sessions: bool, seed: u64) -> KvTester {
    KvTester::new(Setup {
        servers: 1,
        clients,
        reliable,
        service: Service::Single,
        sessions,
        seed,
    })
}

/// TestReliablePut (2025 kvsrv1): Put, Get, a stale Put, a Put on a missing key with a
/// version above 0, a Get of a missing key.
#[test]
fn reliable_put() {
    sim_seeds!(LAB_SEEDS, |seed| {
        let mut t = kvsrv(1, true, false, seed);
        let ck = t.clerk(0);
        let val = "6.5840";
        assert_eq!(
            t.op(ck, Op::put("k", val, 0)),
            Ok(KvOutput::Written { version: 1 })
        );
        t.check_get(ck, "k", val, 1);
        assert_eq!(t.op(ck, Op::put("k", val, 0)), Err(KvError::Version));
        assert_eq!(t.op(ck, Op::put("y", val, 1)), Err(KvError::NoKey));
        assert_eq!(t.op(ck, Op::get("y")), Err(KvError::NoKey));
        t.check_versioned();
    });
}

/// TestPutConcurrentReliable (2025 kvsrv1): 10 clients run OneClientPut on "k" for 1 s;
/// the key's version equals the number of OK Puts exactly.
#[test]
fn put_concurrent_reliable() {
    sim_seeds!(LAB_SEEDS, |seed| {
        let nclients = 10;
        let mut t = kvsrv(nclients + 1, true, false, seed);
        let programs: Vec<(usize, Box<dyn Program<Report>>)> = (0..nclients)
            .map(|k| {
                let ck = t.clerk(k + 1);
                let p: Box<dyn Program<Report>> =
                    Box::new(OneClientPut::new(ck as u64, vec!["k".into()], false));
                (ck, p)
            })
            .collect();
        let reports = t.spawn_clients_and_wait(programs, SEC);
        let ck = t.clerk(0);
        let (_, ver) = t.get(ck, "k");
        let nok: u64 = reports.iter().map(|r| r.ok).sum();
        let nmaybe: u64 = reports.iter().map(|r| r.maybe).sum();
        assert!(nok > 0, "no Put succeeded");
        assert_eq!(nmaybe, 0, "ErrMaybe on a reliable network");
        assert_eq!(ver, nok, "version {ver} != number of OK Puts {nok}");
        t.check_versioned();
    });
}

/// TestUnreliableNet (2025 kvsrv1): 100 tries of a Put at version `try`, resent while the
/// clerk says ErrMaybe; a Put never applies twice, and ErrMaybe does occur.
#[test]
fn unreliable_net() {
    sim_seeds!(LAB_SEEDS, |seed| {
        let mut t = kvsrv(1, false, false, seed);
        let ck = t.clerk(0);
        let mut retried = false;
        for tr in 0..100u64 {
            for i in 0.. {
                let err = t.op(ck, Op::put("k", i.to_string(), tr));
                if err != Err(KvError::Maybe) {
                    if i > 0 && err != Err(KvError::Version) {
                        t.fail(&format!(
                            "Put shouldn't have happened more than once: {err:?}"
                        ));
                    }
                    break;
                }
                retried = true;
            }
            let (v, ver) = t.get(ck, "k");
            assert_eq!(ver, tr + 1, "wrong version");
            assert_eq!(v, "0", "wrong value");
        }
        assert!(retried, "Clerk.Put never returned ErrMaybe");
        t.check_versioned();
    });
}

/// The 2024 kvsrv GenericTest: 3 iterations of 1 s; each client Puts its key to "" and
/// then Appends (checking the returned old value) or Gets (checking the predicted
/// value); after each iteration every client's appends are present once and in order.
fn generic_2024(nclients: usize, reliable: bool, seed: u64) {
    let mut t = kvsrv(nclients + 1, reliable, true, seed);
    let ck = t.clerk(0);
    for _ in 0..3 {
        let programs: Vec<(usize, Box<dyn Program<Report>>)> = (0..nclients)
            .map(|cli| {
                let p: Box<dyn Program<Report>> =
                    Box::new(AppendClient::new(cli as u64, cli.to_string(), None, true));
                (t.clerk(cli + 1), p)
            })
            .collect();
        let reports = t.spawn_clients_and_wait(programs, SEC);
        for (cli, r) in reports.iter().enumerate() {
            let (v, _) = t.get(ck, &cli.to_string());
            if let Err(e) = check_clnt_appends(cli as u64, &v, r.ops) {
                t.fail(&e);
            }
        }
    }
    t.check_legacy();
}

/// TestBasic2 (2024 kvsrv): one client, reliable.
#[test]
fn basic2() {
    sim_seeds!(LAB_SEEDS, |seed| generic_2024(1, true, seed));
}

/// TestConcurrent2 (2024 kvsrv): 5 clients, reliable.
#[test]
fn concurrent2() {
    sim_seeds!(LAB_SEEDS, |seed| generic_2024(5, true, seed));
}

/// TestUnreliable2 (2024 kvsrv): 5 clients, unreliable network.
#[test]
fn unreliable2() {
    sim_seeds!(LAB_SEEDS, |seed| generic_2024(5, false, seed));
}

/// TestUnreliableOneKey2 (2024 kvsrv): 5 clients each append 10 elements to "k" on an
/// unreliable network; all present, once, in per-client order.
#[test]
fn unreliable_one_key2() {
    sim_seeds!(LAB_SEEDS, |seed| {
        let (nclient, upto) = (5, 10);
        let mut t = kvsrv(nclient + 1, false, true, seed);
        one_key_appends(&mut t, nclient, upto);
    });
}
