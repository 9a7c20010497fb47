//! The memory tests of the single-server labs (LAB-SCENARIOS.md 4.1 and 4.3), measured
//! with a counting allocator: the live heap bytes of this process, as the lab reads Go's
//! `HeapAlloc` after a GC.
//!
//! This target has a single test function so that no other test allocates while one
//! measures. Run with `--nocapture` to see the measured numbers.
//!
//! The counting allocator is the only `unsafe` in the crate's targets: a `GlobalAlloc`
//! that forwards to the system allocator and keeps a running total.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicIsize, Ordering};

use bytes::Bytes;
use stepwise_kv::clerk::{self, Clerk, ClerkConfig};
use stepwise_kv::server::Server;
use stepwise_kv::{KvError, KvOutput, KvResult, Op};
use stepwise_sim::Rand64;

/// Forwards to [`System`], counting live bytes.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so
// `System`'s guarantees hold; the counter is only arithmetic on the side.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged (see the impl comment).
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged (see the impl comment).
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged (see the impl comment).
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged (see the impl comment).
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Live heap bytes now.
fn heap() -> isize {
    LIVE.load(Ordering::Relaxed)
}

const MIB: usize = 1 << 20;

/// Runs one operation of `clerk` against `server`. With `loss`, each request and each
/// reply is lost with probability 10% (the lab's unreliable network) and the clerk's
/// timer resends.
fn run(clerk: &mut Clerk, server: &mut Server, op: Op, mut loss: Option<&mut Rand64>) -> KvResult {
    let mut pending: VecDeque<clerk::Action> = clerk.step(clerk::Input::Start(op)).into();
    loop {
        while let Some(action) = pending.pop_front() {
            match action {
                clerk::Action::Send { to, request } => {
                    let mut lost = || loss.as_deref_mut().is_some_and(|r| r.rand_float() < 0.1);
                    if lost() {
                        continue;
                    }
                    let reply = server.handle(request);
                    if lost() {
                        continue;
                    }
                    pending.extend(clerk.step(clerk::Input::Receive { from: to, reply }));
                }
                clerk::Action::Done(result) => return result,
            }
        }
        pending.extend(clerk.step(clerk::Input::Tick));
    }
}

fn clerk(id: u64, sessions: bool) -> Clerk {
    Clerk::new(ClerkConfig::new(id, vec![0]).with_sessions(sessions))
}

fn value(n: usize, seed: u64) -> Bytes {
    let mut rng = Rand64::new(u128::from(seed));
    Bytes::from(
        (0..n)
            .map(|_| b'a' + rng.rand_range(0..26) as u8)
            .collect::<Vec<u8>>(),
    )
}

fn len_of(r: &KvResult) -> usize {
    match r {
        Ok(KvOutput::Value { value, .. }) => value.len(),
        other => panic!("Get returned {other:?}"),
    }
}

/// TestMemPutManyClientsReliable (2025 kvsrv1): 100,000 clerks without sessions; each
/// first Puts at version 1 (ErrNoKey), then clerk i Puts a 1000-byte value at version i.
/// Growth <= 200 B per client (2026: <= 10 B per client).
fn mem_put_many_clients_reliable() {
    const NCLIENT: usize = 100_000;
    let mut server = Server::new();
    let v = value(1000, 1);
    let mut cks: Vec<Clerk> = (0..NCLIENT as u64).map(|i| clerk(i, false)).collect();
    for ck in &mut cks {
        assert_eq!(
            run(ck, &mut server, Op::put("k", "", 1), None),
            Err(KvError::NoKey)
        );
    }
    let m0 = heap();
    for (i, ck) in cks.iter_mut().enumerate() {
        let r = run(ck, &mut server, Op::put("k", v.clone(), i as u64), None);
        assert!(r.is_ok(), "Put {i}: {r:?}");
    }
    let m1 = heap();
    let per_client = (m1 - m0) as f64 / NCLIENT as f64;
    eprintln!("TestMemPutManyClientsReliable: {per_client:.2} bytes per client");
    assert!(m1 <= m0 + (NCLIENT * 200) as isize, "{per_client} B/client");
    assert!(per_client <= 10.0, "2026 bound: {per_client} B/client");
    assert_eq!(server.sessions().len(), 0, "no per-client state");
}

/// TestMemPutManyClients (2024 kvsrv): 100,000 clerks with sessions each Put a 1000-byte
/// value; growth <= 200 B per client (the session table's entry per client).
fn mem_put_many_clients() {
    const NCLIENT: usize = 100_000;
    let mut server = Server::new();
    let v = value(1000, 2);
    let mut cks: Vec<Clerk> = (0..NCLIENT as u64).map(|i| clerk(i, true)).collect();
    let m0 = heap();
    for ck in &mut cks {
        run(ck, &mut server, Op::put_any("k", v.clone()), None).expect("Put");
    }
    let m1 = heap();
    let per_client = (m1 - m0) as f64 / NCLIENT as f64;
    eprintln!("TestMemPutManyClients: {per_client:.2} bytes per client (session table)");
    assert!(m1 <= m0 + (NCLIENT * 200) as isize, "{per_client} B/client");
    assert_eq!(server.sessions().len(), NCLIENT);
}

/// TestMemGetManyClients (2024 kvsrv): 100,000 clerks each Get; growth < 10 B per client.
fn mem_get_many_clients() {
    const NCLIENT: usize = 100_000;
    let mut server = Server::new();
    let mut ck0 = clerk(u64::MAX, true);
    run(&mut ck0, &mut server, Op::put_any("k", ""), None).expect("Put");
    let mut cks: Vec<Clerk> = (0..NCLIENT as u64).map(|i| clerk(i, true)).collect();
    let m0 = heap();
    for ck in &mut cks {
        run(ck, &mut server, Op::get("k"), None).expect("Get");
    }
    let m1 = heap();
    let per_client = (m1 - m0) as f64 / NCLIENT as f64;
    eprintln!("TestMemGetManyClients: {per_client:.2} bytes per client");
    assert!(m1 < m0 + (NCLIENT * 10) as isize, "{per_client} B/client");
}

/// TestMemGet2 (2024 kvsrv, unreliable network): a 10 MiB value read by two clerks, then
/// overwritten with "0": the heap is below 10 MiB.
fn mem_get2(base: isize) {
    const MEM: usize = 10;
    let mut rng = Rand64::new(7);
    let mut server = Server::new();
    let (mut ck0, mut ck1) = (clerk(0, true), clerk(1, true));
    {
        let rd = value(MIB * MEM, 3);
        run(
            &mut ck0,
            &mut server,
            Op::put_any("k", rd.clone()),
            Some(&mut rng),
        )
        .expect("Put");
        let v = run(&mut ck0, &mut server, Op::get("k"), Some(&mut rng));
        assert_eq!(len_of(&v), rd.len());
        let v = run(&mut ck1, &mut server, Op::get("k"), Some(&mut rng));
        assert_eq!(len_of(&v), rd.len());
    }
    run(&mut ck0, &mut server, Op::put_any("k", "0"), Some(&mut rng)).expect("Put");
    let m = (heap() - base) as usize / MIB;
    eprintln!("TestMemGet2: {} bytes live", heap() - base);
    assert!(m < MEM, "heap {m} MiB");
}

/// TestMemPut2 (2024 kvsrv): a 10 MiB Put, then Put "" from another clerk: the heap is
/// below 10 MiB.
fn mem_put2(base: isize) {
    const MEM: usize = 10;
    let mut server = Server::new();
    let (mut ck0, mut ck1) = (clerk(0, true), clerk(1, true));
    run(
        &mut ck0,
        &mut server,
        Op::put_any("k", value(MIB * MEM, 4)),
        None,
    )
    .expect("Put");
    run(&mut ck1, &mut server, Op::put_any("k", ""), None).expect("Put");
    let m = (heap() - base) as usize / MIB;
    eprintln!("TestMemPut2: {} bytes live", heap() - base);
    assert!(m < MEM, "heap {m} MiB");
}

/// TestMemAppend2 (2024 kvsrv): two 10 MiB Appends (returning the old value): the heap is
/// at most 30 MiB (the 20 MiB value plus the 10 MiB old value kept as the last reply).
fn mem_append2(base: isize) {
    const MEM: usize = 10;
    let mut server = Server::new();
    let mut ck0 = clerk(0, true);
    run(
        &mut ck0,
        &mut server,
        Op::append_return("k", value(MIB * MEM, 5)),
        None,
    )
    .expect("Append");
    run(
        &mut ck0,
        &mut server,
        Op::append_return("k", value(MIB * MEM, 6)),
        None,
    )
    .expect("Append");
    let m = (heap() - base) as usize / MIB;
    eprintln!("TestMemAppend2: {} bytes live", heap() - base);
    assert!(m <= 3 * MEM, "heap {m} MiB");
}

/// TestMemManyAppends (2024 kvsrv): 1000 Appends of 1000 bytes: the heap stays below
/// 3,000,000 bytes.
fn mem_many_appends(base: isize) {
    const N: usize = 1000;
    const MEM: usize = 1000;
    let mut server = Server::new();
    let mut ck0 = clerk(0, true);
    let v = value(MEM, 8);
    for _ in 0..N {
        run(
            &mut ck0,
            &mut server,
            Op::append_return("k", v.clone()),
            None,
        )
        .expect("Append");
    }
    drop(v);
    let live = heap() - base;
    eprintln!("TestMemManyAppends: {live} bytes live");
    assert!(live < 3_000_000, "heap {live} B");
}

#[test]
fn kvsrv_memory() {
    mem_put_many_clients_reliable();
    mem_put_many_clients();
    mem_get_many_clients();
    // The absolute bounds are checked against what this process held before the test
    // (the test harness's own allocations), as Go's HeapAlloc starts near zero.
    let base = heap();
    mem_get2(base);
    mem_put2(heap());
    mem_append2(heap());
    mem_many_appends(heap());
}
