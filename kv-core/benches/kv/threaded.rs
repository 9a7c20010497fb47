//! The same workload with each replica on its own thread and the clerks on the calling
//! thread, exchanging messages through channels: how an adapter that gives every node a
//! thread runs the cores (openraft's benchmark likewise runs its nodes on a multi-threaded
//! runtime). Every thread handles whatever arrived since its last turn as one batch: all
//! queued Raft messages, then all client requests as one `Input::Requests` (one log entry
//! for the writes, one ReadIndex round for the reads).

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

use stepwise_kv::clerk;
use stepwise_kv::replica::{self, Replica};
use stepwise_kv::{KvError, Reply, Request};
use stepwise_raft::{Message, NodeId, Persisted};

use crate::{CLIENT_BASE, Mix, TICK, Workload, clerks, replicas};

/// At most this many messages are taken from an inbox per turn, so a busy thread still
/// gets to its requests and ticks.
const TURN: usize = 4096;

enum ToReplica {
    Raft(NodeId, Message),
    Requests(Vec<(u64, Request)>),
    Stop,
}

/// Replies for the clerks: (client address, replica, reply).
type Replies = Vec<(u64, NodeId, Reply)>;

/// One replica's thread: persists to memory, sends to peers and clients, ticks every 10 ms.
fn serve(
    id: NodeId,
    mut replica: Replica,
    inbox: Receiver<ToReplica>,
    peers: Vec<Sender<ToReplica>>,
    clients: Sender<Replies>,
) {
    let mut disk = Persisted::default();
    let mut out = Vec::new();
    let mut next_tick = Instant::now() + TICK;
    loop {
        let wait = next_tick.saturating_duration_since(Instant::now());
        let first = match inbox.recv_timeout(wait) {
            Ok(m) => Some(m),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let mut requests: Vec<(u64, Request)> = Vec::new();
        for msg in first.into_iter().chain(inbox.try_iter().take(TURN)) {
            match msg {
                ToReplica::Raft(from, msg) => {
                    replica.step_into(replica::Input::Receive { from, msg }, &mut out)
                }
                ToReplica::Requests(mut r) if requests.is_empty() => {
                    std::mem::swap(&mut requests, &mut r)
                }
                ToReplica::Requests(mut r) => requests.append(&mut r),
                ToReplica::Stop => return,
            }
        }
        if !requests.is_empty() {
            replica.step_into(replica::Input::Requests(requests), &mut out);
        }
        if Instant::now() >= next_tick {
            replica.step_into(replica::Input::Tick, &mut out);
            next_tick += TICK;
        }
        // In order: persistence first (done on the spot), then messages and replies.
        let mut replies = Vec::new();
        for action in out.drain(..) {
            match action {
                replica::Action::Persist(a) => {
                    disk.apply(&a);
                }
                replica::Action::Send { to, msg } => {
                    // A peer that stopped first: the run is over.
                    let _ = peers[to as usize].send(ToReplica::Raft(id, msg));
                }
                replica::Action::Reply { to, reply } => replies.push((to, id, reply)),
                replica::Action::Halted(why) => panic!("replica halted: {why}"),
            }
        }
        if !replies.is_empty() {
            let _ = clients.send(replies);
        }
    }
}

/// Runs `nclients` clerks against three replica threads for `warmup + measure`; returns
/// (ops per wall second, ops per process CPU second, latencies in ns).
pub(crate) fn run(
    nclients: usize,
    mix: Mix,
    warmup: Duration,
    measure: Duration,
) -> (f64, Option<f64>, Vec<u32>) {
    let (to_clients, from_replicas) = mpsc::channel::<Replies>();
    let (senders, inboxes): (Vec<_>, Vec<_>) = (0..3).map(|_| mpsc::channel()).unzip();
    let threads: Vec<_> = replicas()
        .into_iter()
        .zip(inboxes)
        .enumerate()
        .map(|(id, (replica, inbox))| {
            let peers = senders.clone();
            let clients = to_clients.clone();
            thread::spawn(move || serve(id as NodeId, replica, inbox, peers, clients))
        })
        .collect();
    drop(to_clients);

    let mut clerks = clerks(nclients);
    let mut workload = Workload::new(mix);
    let mut started = vec![Instant::now(); nclients];
    let mut latencies: Vec<u32> = Vec::new();
    let mut completed: u64 = 0;
    let mut out = Vec::new();
    let mut batches: Vec<Vec<(u64, Request)>> = vec![Vec::new(); 3];
    let send = |out: &mut Vec<clerk::Action>,
                c: usize,
                batches: &mut Vec<Vec<(u64, Request)>>,
                done: &mut Vec<(usize, Result<_, KvError>)>| {
        for action in out.drain(..) {
            match action {
                clerk::Action::Send { to, request } => {
                    batches[to as usize].push((CLIENT_BASE + c as u64, request))
                }
                clerk::Action::Done(result) => done.push((c, result)),
            }
        }
    };
    let mut done = Vec::new();
    for (c, clerk) in clerks.iter_mut().enumerate() {
        clerk.step_into(clerk::Input::Start(workload.next_op()), &mut out);
        send(&mut out, c, &mut batches, &mut done);
    }
    let start = Instant::now();
    let mut next_tick = start + TICK;
    let mut measuring: Option<(Instant, Option<f64>)> = None;
    let result = loop {
        for (r, batch) in batches.iter_mut().enumerate() {
            if !batch.is_empty() {
                let room = batch.len();
                let requests = std::mem::replace(batch, Vec::with_capacity(room));
                senders[r]
                    .send(ToReplica::Requests(requests))
                    .expect("replica running");
            }
        }
        let wait = next_tick.saturating_duration_since(Instant::now());
        let first = match from_replicas.recv_timeout(wait) {
            Ok(replies) => Some(replies),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => panic!("a replica thread died"),
        };
        for replies in first.into_iter().chain(from_replicas.try_iter()) {
            for (addr, from, reply) in replies {
                let c = (addr - CLIENT_BASE) as usize;
                clerks[c].step_into(clerk::Input::Receive { from, reply }, &mut out);
                send(&mut out, c, &mut batches, &mut done);
            }
        }
        let now = Instant::now();
        while let Some((c, result)) = done.pop() {
            assert!(
                result.is_ok() || result == Err(KvError::NoKey),
                "{result:?}"
            );
            if measuring.is_some() {
                let ns = (now - started[c]).as_nanos();
                latencies.push(u32::try_from(ns).unwrap_or(u32::MAX));
                completed += 1;
            }
            started[c] = now;
            clerks[c].step_into(clerk::Input::Start(workload.next_op()), &mut out);
            send(&mut out, c, &mut batches, &mut done);
        }
        if now >= next_tick {
            for (c, clerk) in clerks.iter_mut().enumerate() {
                clerk.step_into(clerk::Input::Tick, &mut out);
                send(&mut out, c, &mut batches, &mut done);
            }
            next_tick += TICK;
        }
        match measuring {
            None if now - start >= warmup => {
                latencies.reserve(4_000_000 * measure.as_secs().max(1) as usize);
                measuring = Some((now, process_cpu_secs()));
            }
            Some((t0, cpu0)) if now - t0 >= measure => {
                let secs = (now - t0).as_secs_f64();
                let n = completed as f64;
                let cpu = cpu0.zip(process_cpu_secs()).map(|(a, b)| n / (b - a));
                break (n / secs, cpu, latencies);
            }
            _ => {}
        }
    };
    for s in &senders {
        let _ = s.send(ToReplica::Stop);
    }
    for t in threads {
        t.join().expect("replica thread");
    }
    result
}

/// CPU time of the whole process (all threads), in seconds, from /proc/self/stat.
pub(crate) fn process_cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces) start after ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // Linux reports clock ticks of 1/100 s (USER_HZ) here.
    Some((utime + stime) / 100.0)
}
