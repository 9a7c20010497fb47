//! Real-time throughput: every server and client on its own OS thread, messages through
//! in-process channels, storage in memory (no fsync), 10 ms ticks. Ignored by default;
//! run with
//! `cargo test --release -p stepwise-shard --test shard_lab threaded_throughput -- --ignored --nocapture`.
//!
//! A server thread waits for a message or its next tick, then drains everything queued
//! and steps it, handing the client requests of one drain to the group server together
//! (`Input::Requests`: one log entry for all their writes).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::thread;
use std::time::{Duration, Instant};

use stepwise_kv::{Op, RsmConfig};
use stepwise_raft::{Config, Persisted};
use stepwise_shard::client::{self, ShardClerk, ShardClerkConfig};
use stepwise_shard::config::{Addr, Gid};
use stepwise_shard::ctrler::CtrlOp;
use stepwise_shard::ctrler::clerk::{self as cclerk, CtrlerClerk, CtrlerClerkConfig};
use stepwise_shard::ctrler::server::{self as cserver, CtrlerServer};
use stepwise_shard::group::server::{self as gserver, GroupConfig, GroupServer};

use crate::harness::Msg;

const TICK: Duration = Duration::from_millis(10);

type Inbox = Receiver<(Addr, Msg)>;

/// Senders to every node, by address.
#[derive(Clone)]
struct Router(Arc<Vec<Sender<(Addr, Msg)>>>);

impl Router {
    fn send(&self, from: Addr, to: Addr, msg: Msg) {
        if let Some(tx) = self.0.get(to as usize) {
            let _ = tx.send((from, msg));
        }
    }
}

/// Waits for the next message or tick; returns the messages (possibly none) and whether
/// a tick is due.
fn wait(inbox: &Inbox, next_tick: &mut Instant) -> Option<(Vec<(Addr, Msg)>, bool)> {
    let mut got = Vec::new();
    let now = Instant::now();
    if now < *next_tick {
        match inbox.recv_timeout(*next_tick - now) {
            Ok(m) => got.push(m),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return None,
        }
    }
    while let Ok(m) = inbox.try_recv() {
        got.push(m);
    }
    let tick = Instant::now() >= *next_tick;
    if tick {
        *next_tick += TICK;
    }
    Some((got, tick))
}

fn run_ctrler(me: Addr, mut s: CtrlerServer, inbox: Inbox, router: Router, stop: Arc<AtomicBool>) {
    let mut disk = Persisted::default();
    let mut next_tick = Instant::now() + TICK;
    let mut out = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let Some((msgs, tick)) = wait(&inbox, &mut next_tick) else {
            return;
        };
        for (from, msg) in msgs {
            match msg {
                Msg::Raft(msg) => s.step_into(cserver::Input::Receive { from, msg }, &mut out),
                Msg::CtrlReq(request) => {
                    s.step_into(cserver::Input::Request { from, request }, &mut out)
                }
                _ => {}
            }
        }
        if tick {
            s.step_into(cserver::Input::Tick, &mut out);
        }
        for a in out.drain(..) {
            match a {
                cserver::Action::Persist(p) => {
                    disk.apply(&p);
                }
                cserver::Action::Send { to, msg } => router.send(me, to, Msg::Raft(msg)),
                cserver::Action::Reply { to, reply } => router.send(me, to, Msg::CtrlRep(reply)),
                cserver::Action::Halted(why) => panic!("controller halted: {why}"),
            }
        }
    }
}

fn run_group(me: Addr, mut s: GroupServer, inbox: Inbox, router: Router, stop: Arc<AtomicBool>) {
    let mut disk = Persisted::default();
    let mut next_tick = Instant::now() + TICK;
    let mut out = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let Some((msgs, tick)) = wait(&inbox, &mut next_tick) else {
            return;
        };
        let mut requests = Vec::new();
        for (from, msg) in msgs {
            let input = match msg {
                Msg::Raft(msg) => gserver::Input::Receive { from, msg },
                Msg::Req(request) => {
                    requests.push((from, request));
                    continue;
                }
                Msg::Peer(msg) => gserver::Input::Peer { from, msg },
                Msg::CtrlRep(reply) => gserver::Input::Ctrler { from, reply },
                _ => continue,
            };
            s.step_into(input, &mut out);
        }
        if !requests.is_empty() {
            s.step_into(gserver::Input::Requests(requests), &mut out);
        }
        if tick {
            s.step_into(gserver::Input::Tick, &mut out);
        }
        for a in out.drain(..) {
            match a {
                gserver::Action::Persist(p) => {
                    disk.apply(&p);
                }
                gserver::Action::Send { to, msg } => router.send(me, to, Msg::Raft(msg)),
                gserver::Action::Reply { to, reply } => router.send(me, to, Msg::Rep(reply)),
                gserver::Action::SendPeer { to, msg } => router.send(me, to, Msg::Peer(msg)),
                gserver::Action::SendCtrler { to, request } => {
                    router.send(me, to, Msg::CtrlReq(request))
                }
                gserver::Action::Event(_) => {}
                gserver::Action::Halted(why) => panic!("group halted: {why}"),
            }
        }
    }
}

/// A closed-loop client: Put/Get 50/50 on `keys`, counting completed operations.
fn run_client(
    me: Addr,
    ctrlers: Vec<Addr>,
    inbox: Inbox,
    router: Router,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
) {
    let mut clerk = ShardClerk::new(ShardClerkConfig::new(me, ctrlers));
    let mut next_tick = Instant::now() + TICK;
    let mut n = 0u64;
    let mut pending = std::collections::VecDeque::from([client::Input::Start(Op::put_any(
        format!("key{}", me % 200),
        "v",
    ))]);
    while !stop.load(Ordering::Relaxed) {
        while let Some(input) = pending.pop_front() {
            for a in clerk.step(input) {
                match a {
                    client::Action::Send { to, request } => router.send(me, to, Msg::Req(request)),
                    client::Action::SendCtrler { to, request } => {
                        router.send(me, to, Msg::CtrlReq(request))
                    }
                    client::Action::Done(_) => {
                        done.fetch_add(1, Ordering::Relaxed);
                        n += 1;
                        let key = format!("key{}", (me * 31 + n * 7) % 200);
                        let op = if n.is_multiple_of(2) {
                            Op::get(key)
                        } else {
                            Op::put_any(key, format!("v{n}"))
                        };
                        pending.push_back(client::Input::Start(op));
                    }
                }
            }
        }
        let Some((msgs, tick)) = wait(&inbox, &mut next_tick) else {
            return;
        };
        for (from, msg) in msgs {
            match msg {
                Msg::Rep(reply) => pending.push_back(client::Input::Receive { from, reply }),
                Msg::CtrlRep(reply) => pending.push_back(client::Input::Ctrler { from, reply }),
                _ => {}
            }
        }
        if tick {
            pending.push_back(client::Input::Tick);
        }
    }
}

/// Runs a controller, `groups` groups of 3 and `clients` clients for `secs` seconds after
/// a warm-up; returns operations per second.
fn throughput(groups: u64, clients: u64, secs: u64) -> f64 {
    let nctrl = 3u64;
    let n = nctrl + 3 * groups + clients + 1;
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..n).map(|_| channel()).unzip();
    let router = Router(Arc::new(txs));
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let ctrlers: Vec<Addr> = (0..nctrl).collect();
    let mut handles = Vec::new();
    let mut rxs: Vec<Option<Inbox>> = rxs.into_iter().map(Some).collect();
    let mut take = |i: u64| rxs[i as usize].take().expect("one inbox per node");
    for &id in &ctrlers {
        let s = CtrlerServer::new(
            RsmConfig::new(Config::new(id, ctrlers.clone()).with_seed(id)),
            10,
        )
        .unwrap();
        let (inbox, router, stop) = (take(id), router.clone(), stop.clone());
        handles.push(thread::spawn(move || {
            run_ctrler(id, s, inbox, router, stop)
        }));
    }
    let mut gids: Vec<(Gid, Vec<Addr>)> = Vec::new();
    for g in 0..groups {
        let members: Vec<Addr> = (0..3).map(|j| nctrl + 3 * g + j).collect();
        for &id in &members {
            let rsm = RsmConfig::new(Config::new(id, members.clone()).with_seed(id))
                .with_max_raft_state(Some(1 << 20));
            let s = GroupServer::new(GroupConfig::new(g + 1, rsm, ctrlers.clone())).unwrap();
            let (inbox, router, stop) = (take(id), router.clone(), stop.clone());
            handles.push(thread::spawn(move || run_group(id, s, inbox, router, stop)));
        }
        gids.push((g + 1, members));
    }
    // Join every group through an administrator on this thread.
    let admin = n - 1;
    let admin_inbox = take(admin);
    let mut clerk = CtrlerClerk::new(CtrlerClerkConfig::new(admin, ctrlers.clone()));
    let mut pending = vec![cclerk::Input::Start {
        op: CtrlOp::Join {
            groups: gids.into_iter().collect(),
        },
        expect: None,
    }];
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut joined = false;
    let mut next_tick = Instant::now() + TICK;
    while !joined {
        assert!(Instant::now() < deadline, "the join did not finish");
        for input in pending.drain(..) {
            for a in clerk.step(input) {
                match a {
                    cclerk::Action::Send { to, request } => {
                        router.send(admin, to, Msg::CtrlReq(request))
                    }
                    cclerk::Action::Done(r) => {
                        r.expect("join");
                        joined = true;
                    }
                }
            }
        }
        let (msgs, tick) = wait(&admin_inbox, &mut next_tick).expect("open");
        for (from, msg) in msgs {
            if let Msg::CtrlRep(reply) = msg {
                pending.push(cclerk::Input::Receive { from, reply });
            }
        }
        if tick {
            pending.push(cclerk::Input::Tick);
        }
    }
    for c in 0..clients {
        let id = nctrl + 3 * groups + c;
        let (inbox, router, stop, done) = (take(id), router.clone(), stop.clone(), done.clone());
        let ctrlers = ctrlers.clone();
        handles.push(thread::spawn(move || {
            run_client(id, ctrlers, inbox, router, stop, done)
        }));
    }
    thread::sleep(Duration::from_secs(2)); // warm up: groups settle, clients find them
    let before = done.load(Ordering::Relaxed);
    let start = Instant::now();
    thread::sleep(Duration::from_secs(secs));
    let ops = done.load(Ordering::Relaxed) - before;
    let rate = ops as f64 / start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    drop(router);
    for h in handles {
        h.join().expect("no thread panicked");
    }
    rate
}

#[test]
#[ignore = "real-time throughput; run in release mode"]
fn threaded_throughput() {
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "\n== Real threads, {cores} cores, 64 closed-loop clients (Put/Get 50/50, 200 keys), 5 s"
    );
    for groups in [1, 2, 4] {
        let rate = throughput(groups, 64, 5);
        println!("{groups} group(s): {rate:>8.0} ops/s");
    }
}
