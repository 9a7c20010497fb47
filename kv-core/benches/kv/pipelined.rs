//! The same workload on two threads, one per core: the leader replica on one, the two
//! followers on the other, and the clerks split between them: `KV_BENCH_CLERKS_ON_LEADER`
//! percent of them live on the leader's thread (default: 75 for the put-heavy mix, whose
//! followers apply every write twice over and so have less room; 30 for the get-heavy
//! mix, whose followers serve reads (`KV_BENCH_FOLLOWER_READS`, Raft thesis 6.4): the
//! clerks on their thread send Gets to them, so most reads never cross to the leader's
//! thread; 100 with follower reads off, where moving clerks across costs more in
//! cross-core traffic than it saves).
//!
//! Each thread runs turns like the one-thread driver's rounds over what it owns. Whatever
//! is addressed to the other thread is collected in an outbox and handed over right after
//! the step that produced it, as one batch (a mutex-guarded `Vec` swapped with the
//! receiver's empty one, so the vectors circulate instead of being reallocated). A thread
//! with nothing to do spins briefly (~4 us), then yields, and only blocks when idle for
//! long, so a hand-off under load is not a futex wake-up.
//!
//! Batches are pipelined: the leader proposes a turn's requests in chunks of
//! `KV_BENCH_CHUNK` (default: half the clients; at least 64 for get-heavy), one log entry
//! each, and Raft streams each entry to the followers as soon as it is appended
//! (`max_append_entries` = 1, up to
//! `max_inflight` = 32 AppendEntries in flight per follower; `KV_BENCH_MAX_APPEND` to
//! change). So while the followers append and apply one entry, the leader proposes the
//! next, and commits, applies and answers the previous one.
//!
//! The protocol is untouched: all three replicas replicate, persist (in memory), commit and
//! apply every write, with sessions, exactly as in the one-thread driver. The leader is
//! elected on one thread first; then the followers move to the second thread. Should the
//! leadership move during the run, everything still works (messages are routed by where a
//! replica lives), only less evenly split.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use stepwise_kv::clerk::{self, Clerk, ClerkConfig};
use stepwise_kv::replica::{self, Replica};
use stepwise_kv::{KvError, Reply, Request};
use stepwise_raft::{Message, NodeId, Persisted};

use crate::{CLIENT_BASE, Mix, SERVERS, TICK, Workload, replicas_with};

/// How long an idle thread yields before it blocks.
const YIELD_FOR: Duration = Duration::from_micros(50);

/// Something for the other thread.
enum Envelope {
    Raft {
        to: NodeId,
        from: NodeId,
        msg: Message,
    },
    Request {
        to: NodeId,
        client: u64,
        request: Request,
    },
    Reply {
        client: u64,
        from: NodeId,
        reply: Reply,
    },
}

/// One thread's inbox: the other thread hands over a step's envelopes at once, as one
/// vector (never copied element by element: the vector itself moves).
#[derive(Default)]
struct Mailbox {
    queue: Mutex<Vec<Vec<Envelope>>>,
    /// Emptied vectors, back from the receiver, for the sender's next hand-overs.
    spare: Mutex<Vec<Vec<Envelope>>>,
    /// Set (after the append) when the queue is not empty: what an idle thread polls.
    ready: AtomicBool,
    /// The owner is blocked (or about to block) on `wake`.
    parked: AtomicBool,
    wake: Condvar,
}

impl Mailbox {
    /// Hands `batch` over (it is left empty: a spare vector the receiver gave back, so
    /// vectors circulate instead of being reallocated).
    fn post(&self, batch: &mut Vec<Envelope>) {
        let empty = self
            .spare
            .lock()
            .expect("mailbox")
            .pop()
            .unwrap_or_default();
        let full = std::mem::replace(batch, empty);
        {
            let mut q = self.queue.lock().expect("mailbox");
            q.push(full);
            self.ready.store(true, Ordering::Release);
        }
        if self.parked.load(Ordering::SeqCst) {
            let _q = self.queue.lock().expect("mailbox");
            self.wake.notify_one();
        }
    }

    /// Swaps the queue of batches with `into` (which must be empty).
    fn take(&self, into: &mut Vec<Vec<Envelope>>) {
        if !self.ready.load(Ordering::Acquire) {
            return;
        }
        let mut q = self.queue.lock().expect("mailbox");
        std::mem::swap(&mut *q, into);
        self.ready.store(false, Ordering::Relaxed);
    }

    /// Gives emptied vectors back for the sender to reuse.
    fn recycle(&self, emptied: &mut Vec<Vec<Envelope>>) {
        if !emptied.is_empty() {
            self.spare.lock().expect("mailbox").append(emptied);
        }
    }

    /// Waits until something arrived, `stop` is set or `deadline` passed: spins first, then
    /// yields, then blocks.
    fn wait(&self, deadline: Instant, stop: &AtomicBool, stats: &mut Stats) {
        stats.waits += 1;
        // Spin ~4 us (a hand-off under load arrives within that), then yield for up to
        // `YIELD_FOR` (cheap while the core is ours; a yield that lets another process run
        // costs a time slice, so it is bounded in time, not in count), then block.
        for _ in 0..200 {
            if self.ready.load(Ordering::Acquire) || stop.load(Ordering::Relaxed) {
                return;
            }
            std::hint::spin_loop();
        }
        let until = Instant::now() + YIELD_FOR;
        loop {
            if self.ready.load(Ordering::Acquire) || stop.load(Ordering::Relaxed) {
                return;
            }
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            if now >= until {
                break;
            }
            thread::yield_now();
        }
        stats.parks += 1;
        let mut q = self.queue.lock().expect("mailbox");
        self.parked.store(true, Ordering::SeqCst);
        while q.is_empty() && !stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            q = self
                .wake
                .wait_timeout(q, deadline - now)
                .expect("mailbox")
                .0;
        }
        self.parked.store(false, Ordering::SeqCst);
    }
}

/// How a thread spent its turns (printed with `KV_BENCH_VERBOSE`).
#[derive(Debug, Default)]
struct Stats {
    turns: u64,
    idle_turns: u64,
    /// Turns that found something to do (or a tick due).
    work_turns: u64,
    waits: u64,
    parks: u64,
    cpu_secs: f64,
    /// Wall time in turns that had work, and in all turns and waits (seconds).
    busy_secs: f64,
    total_secs: f64,
}

/// The clerks living on one thread: their state, their workload and their measurements.
struct ClerkSide {
    /// Global index of `clerks[0]` (client address `CLIENT_BASE + index`).
    base: usize,
    clerks: Vec<Clerk>,
    started: Vec<Instant>,
    workload: Workload,
    latencies: Vec<u32>,
    /// Operations finished while recording, and all operations finished.
    completed: u64,
    finished: u64,
    /// Finished (all, recorded) but not yet added to the shared counters.
    unpublished: (u64, u64),
    recording: bool,
    out: Vec<clerk::Action>,
}

/// What both threads share.
struct Shared {
    boxes: [Mailbox; 2],
    stop: AtomicBool,
    recording: AtomicBool,
    /// Operations finished on both threads (published once per turn): all, and recorded.
    finished: AtomicU64,
    completed: AtomicU64,
}

/// What one thread owns and runs: part 0 (the calling thread) has the leader, part 1 the
/// followers.
struct Part {
    me: usize,
    /// Where each replica lives (part index).
    home: [usize; SERVERS as usize],
    /// Clerks with a global index below this live on part 0, the others on part 1.
    split: usize,
    replicas: Vec<Option<Replica>>,
    disks: Vec<Persisted>,
    raft_inbox: Vec<VecDeque<(NodeId, Message)>>,
    request_inbox: Vec<Vec<(u64, Request)>>,
    /// Replies for the clerks here: (global clerk index, replica, reply).
    reply_inbox: Vec<(usize, NodeId, Reply)>,
    side: ClerkSide,
    /// For the other thread, handed over after each step that produced any.
    outbox: Vec<Envelope>,
    /// Batches taken from this thread's mailbox, and the emptied ones to give back.
    incoming: Vec<Vec<Envelope>>,
    emptied: Vec<Vec<Envelope>>,
    /// Room each request inbox gets (every clerk has at most one request outstanding, so
    /// it never grows while it fills).
    inbox_room: usize,
    replica_out: Vec<replica::Action>,
    stats: Stats,
    /// At most this many requests per `Input::Requests` (one log entry each), so a turn's
    /// requests leave as several entries the other thread can start on one by one.
    chunk: usize,
    next_tick: Instant,
    /// Count mode (`KV_BENCH_OPS`): tick every 50 turns with work instead of every 10 ms.
    counting: bool,
}

impl Part {
    fn clerk_home(&self, c: usize) -> usize {
        usize::from(c >= self.split)
    }

    fn step_replica(&mut self, r: usize, input: replica::Input) {
        let mut out = std::mem::take(&mut self.replica_out);
        self.replicas[r]
            .as_mut()
            .expect("replica lives here")
            .step_into(input, &mut out);
        for action in out.drain(..) {
            match action {
                replica::Action::Persist(a) => {
                    self.disks[r].apply(&a);
                }
                replica::Action::Send { to, msg } => {
                    if self.home[to as usize] == self.me {
                        self.raft_inbox[to as usize].push_back((r as NodeId, msg))
                    } else {
                        self.outbox.push(Envelope::Raft {
                            to,
                            from: r as NodeId,
                            msg,
                        })
                    }
                }
                replica::Action::Reply { to, reply } => {
                    let c = (to - CLIENT_BASE) as usize;
                    if self.clerk_home(c) == self.me {
                        self.reply_inbox.push((c, r as NodeId, reply))
                    } else {
                        self.outbox.push(Envelope::Reply {
                            client: to,
                            from: r as NodeId,
                            reply,
                        })
                    }
                }
                replica::Action::Halted(why) => panic!("replica halted: {why}"),
            }
        }
        self.replica_out = out;
    }

    /// Steps clerk `c` (global index; it lives here).
    fn step_clerk(&mut self, c: usize, input: clerk::Input) {
        let i = c - self.side.base;
        let mut out = std::mem::take(&mut self.side.out);
        self.side.clerks[i].step_into(input, &mut out);
        while let Some(action) = out.pop() {
            match action {
                clerk::Action::Send { to, request } => {
                    let client = CLIENT_BASE + c as u64;
                    if self.home[to as usize] == self.me {
                        self.request_inbox[to as usize].push((client, request))
                    } else {
                        self.outbox.push(Envelope::Request {
                            to,
                            client,
                            request,
                        })
                    }
                }
                clerk::Action::Done(result) => {
                    assert!(
                        result.is_ok() || result == Err(KvError::NoKey),
                        "{result:?}"
                    );
                    let side = &mut self.side;
                    let now = Instant::now();
                    side.finished += 1;
                    side.unpublished.0 += 1;
                    if side.recording {
                        let ns = (now - side.started[i]).as_nanos();
                        side.latencies.push(u32::try_from(ns).unwrap_or(u32::MAX));
                        side.completed += 1;
                        side.unpublished.1 += 1;
                    }
                    side.started[i] = now;
                    let op = side.workload.next_op();
                    side.clerks[i].step_into(clerk::Input::Start(op), &mut out);
                }
            }
        }
        self.side.out = out;
    }

    fn tick(&mut self) {
        for r in 0..self.replicas.len() {
            if self.replicas[r].is_some() {
                self.step_replica(r, replica::Input::Tick);
            }
        }
        for i in 0..self.side.clerks.len() {
            self.step_clerk(self.side.base + i, clerk::Input::Tick);
        }
    }

    /// One turn: take what the other thread handed over, let every replica here handle its
    /// Raft messages and then its requests (in chunks), let the clerks here handle their
    /// replies, and tick when due. Whatever is for the other thread is handed over right
    /// after the step that produced it, so the other thread can start on it while this one
    /// goes on: this is what pipelines the stages. Returns whether anything happened.
    fn turn(&mut self, shared: &Shared) -> bool {
        self.stats.turns += 1;
        let t0 = Instant::now();
        // (Count mode ticks in `work`, every 50 turns with work.)
        let tick_due = !self.counting && t0 >= self.next_tick;
        if !tick_due
            && !shared.boxes[self.me].ready.load(Ordering::Acquire)
            && !self.has_local_work()
        {
            // Nothing to do (kept out of `work`, so callgrind counts work only).
            self.stats.idle_turns += 1;
            return false;
        }
        let busy = self.work(shared, tick_due);
        if busy {
            self.stats.busy_secs += t0.elapsed().as_secs_f64();
        } else {
            self.stats.idle_turns += 1;
        }
        busy
    }

    /// The body of a turn that has something to do (see [`Part::turn`]).
    #[inline(never)]
    fn work(&mut self, shared: &Shared, tick_due: bool) -> bool {
        self.stats.work_turns += 1;
        let tick_due = tick_due || (self.counting && self.stats.work_turns.is_multiple_of(50));
        let (inbox, other) = (&shared.boxes[self.me], &shared.boxes[1 - self.me]);
        self.side.recording = shared.recording.load(Ordering::Relaxed);
        let mut busy = false;
        inbox.take(&mut self.incoming);
        let mut incoming = std::mem::take(&mut self.incoming);
        busy |= !incoming.is_empty();
        for mut batch in incoming.drain(..) {
            for envelope in batch.drain(..) {
                match envelope {
                    Envelope::Raft { to, from, msg } => {
                        self.raft_inbox[to as usize].push_back((from, msg))
                    }
                    Envelope::Request {
                        to,
                        client,
                        request,
                    } => self.request_inbox[to as usize].push((client, request)),
                    Envelope::Reply {
                        client,
                        from,
                        reply,
                    } => self
                        .reply_inbox
                        .push(((client - CLIENT_BASE) as usize, from, reply)),
                }
            }
            self.emptied.push(batch);
        }
        self.incoming = incoming;
        inbox.recycle(&mut self.emptied);
        for r in 0..self.replicas.len() {
            if self.replicas[r].is_none() {
                continue;
            }
            while let Some((from, msg)) = self.raft_inbox[r].pop_front() {
                busy = true;
                self.step_replica(r, replica::Input::Receive { from, msg });
                self.hand_over(other);
            }
            if !self.request_inbox[r].is_empty() {
                busy = true;
                let mut requests = std::mem::replace(
                    &mut self.request_inbox[r],
                    Vec::with_capacity(self.inbox_room),
                );
                while requests.len() > self.chunk {
                    let rest = requests.split_off(self.chunk);
                    self.step_replica(r, replica::Input::Requests(requests));
                    self.hand_over(other);
                    requests = rest;
                }
                self.step_replica(r, replica::Input::Requests(requests));
                self.hand_over(other);
            }
        }
        let mut replies = std::mem::take(&mut self.reply_inbox);
        busy |= !replies.is_empty();
        for (c, from, reply) in replies.drain(..) {
            self.step_clerk(c, clerk::Input::Receive { from, reply });
        }
        self.reply_inbox = replies;
        if tick_due {
            self.tick();
            self.next_tick += TICK;
        }
        self.hand_over(other);
        let (all, recorded) = std::mem::take(&mut self.side.unpublished);
        if all > 0 {
            shared.finished.fetch_add(all, Ordering::Relaxed);
            shared.completed.fetch_add(recorded, Ordering::Relaxed);
        }
        busy
    }

    fn hand_over(&mut self, other: &Mailbox) {
        if !self.outbox.is_empty() {
            other.post(&mut self.outbox);
        }
    }

    /// Whether this part has work of its own queued (for a replica here or its clerks).
    fn has_local_work(&self) -> bool {
        self.raft_inbox.iter().any(|q| !q.is_empty())
            || self.request_inbox.iter().any(|q| !q.is_empty())
            || !self.reply_inbox.is_empty()
    }

    /// Turns until `shared.stop`, waiting for the other thread when there is nothing to do.
    fn serve(&mut self, shared: &Shared) {
        let t0 = Instant::now();
        while !shared.stop.load(Ordering::Relaxed) {
            if !self.turn(shared) && !self.has_local_work() {
                shared.boxes[self.me].wait(self.next_tick, &shared.stop, &mut self.stats);
            }
        }
        self.stats.total_secs = t0.elapsed().as_secs_f64();
    }
}

/// Requests per entry by default: half the clients, so a round of all clients makes two
/// entries and the followers start on the first while the leader proposes the second. Reads
/// pay a ReadIndex round per chunk, so get-heavy chunks are at least 64 (measured: 64
/// get-heavy 1.30M-1.86M ops/s with one chunk of 64 per turn, 1.20M-1.28M with two of 32).
fn default_chunk(nclients: usize, mix: Mix) -> usize {
    let half = nclients.div_ceil(2);
    match mix {
        Mix::PutHeavy => half,
        Mix::GetHeavy => half.max(64),
    }
}

/// The share of the clerks that lives on the leader's thread, in percent.
fn clerks_on_leader(mix: Mix, follower_reads: bool) -> usize {
    let default = match (mix, follower_reads) {
        (Mix::PutHeavy, _) => 75,
        (Mix::GetHeavy, false) => 100,
        (Mix::GetHeavy, true) => 30,
    };
    env_or("KV_BENCH_CLERKS_ON_LEADER", default).min(100)
}

/// Whether the followers serve reads (`KV_BENCH_FOLLOWER_READS`; default: on for the
/// get-heavy mix, off for the put-heavy one, where it measured no better): the clerks on
/// the followers' thread then send their Gets to a follower there, so a read does not cross
/// to the leader's thread; only the followers' ReadIndex requests (one per batch of reads)
/// and the writes do.
fn follower_reads(mix: Mix) -> bool {
    let default = usize::from(matches!(mix, Mix::GetHeavy));
    env_or("KV_BENCH_FOLLOWER_READS", default) != 0
}

/// Runs the two-thread driver; returns (ops per wall second, ops per CPU second of the
/// whole process, latencies in ns, operations in the run).
pub(crate) fn run(
    nclients: usize,
    mix: Mix,
    warmup: Duration,
    measure: Duration,
    stop_after: Option<u64>,
) -> (f64, Option<f64>, Vec<u32>, u64) {
    let n = SERVERS as usize;
    let side = |base: usize, clerks: Vec<Clerk>, seed: u64| ClerkSide {
        base,
        started: vec![Instant::now(); clerks.len()],
        clerks,
        workload: Workload::new(mix).reseeded(seed),
        latencies: Vec::new(),
        completed: 0,
        finished: 0,
        unpublished: (0, 0),
        recording: false,
        out: Vec::new(),
    };
    let follower_reads = follower_reads(mix);
    let split = (nclients * clerks_on_leader(mix, follower_reads)).div_ceil(100);
    let part = |me: usize, replicas: Vec<Option<Replica>>, side: ClerkSide| Part {
        me,
        home: [me; SERVERS as usize],
        split,
        replicas,
        disks: vec![Persisted::default(); n],
        raft_inbox: vec![VecDeque::new(); n],
        request_inbox: (0..n).map(|_| Vec::with_capacity(nclients + 8)).collect(),
        reply_inbox: Vec::new(),
        side,
        outbox: Vec::new(),
        incoming: Vec::new(),
        emptied: Vec::new(),
        inbox_room: nclients + 8,
        replica_out: Vec::new(),
        stats: Stats::default(),
        chunk: env_or("KV_BENCH_CHUNK", default_chunk(nclients, mix)).max(1),
        next_tick: Instant::now(),
        counting: stop_after.is_some(),
    };
    let mut a = part(
        0,
        replicas_with(Some(env_or("KV_BENCH_MAX_APPEND", 1)), follower_reads)
            .into_iter()
            .map(Some)
            .collect(),
        side(0, Vec::new(), 0x2545_f491_4f6c_dd1d),
    );
    let mut b = part(
        1,
        (0..n).map(|_| None).collect(),
        side(split, Vec::new(), 0x9e37_79b9_7f4a_7c15),
    );
    let shared = Shared {
        boxes: [Mailbox::default(), Mailbox::default()],
        stop: AtomicBool::new(false),
        recording: AtomicBool::new(false),
        finished: AtomicU64::new(0),
        completed: AtomicU64::new(0),
    };
    // Elect a leader with every replica on this thread (no clerk has started, so nothing
    // goes to the other part).
    while !a.replicas.iter().flatten().any(Replica::is_leader) {
        a.tick();
        a.turn(&shared);
    }
    let leader = (0..n)
        .find(|&r| a.replicas[r].as_ref().is_some_and(Replica::is_leader))
        .expect("a leader");
    // Move the followers (with their disks and queues) to the other part.
    for r in (0..n).filter(|&r| r != leader) {
        b.replicas[r] = a.replicas[r].take();
        b.disks[r] = std::mem::take(&mut a.disks[r]);
        b.raft_inbox[r] = std::mem::take(&mut a.raft_inbox[r]);
        a.home[r] = 1;
    }
    b.home = a.home;
    b.next_tick = a.next_tick;
    // The clerks: those on the leader's thread send everything to the leader; those on the
    // followers' thread send their Gets to the followers in turn (with follower reads).
    let servers: Vec<NodeId> = (0..SERVERS).collect();
    let followers: Vec<NodeId> = servers
        .iter()
        .copied()
        .filter(|&r| r != leader as NodeId)
        .collect();
    let clerk = |c: usize| {
        let mut cfg = ClerkConfig::new(CLIENT_BASE + c as u64, servers.clone());
        if follower_reads && c >= split {
            cfg.read_from = Some(followers[(c - split) % followers.len()]);
        }
        Clerk::new(cfg)
    };
    for (p, range) in [(&mut a, 0..split), (&mut b, split..nclients)] {
        p.side.clerks = range.map(clerk).collect();
        p.side.started = vec![Instant::now(); p.side.clerks.len()];
    }
    // Every clerk starts its first operation.
    for p in [&mut a, &mut b] {
        for i in 0..p.side.clerks.len() {
            let op = p.side.workload.next_op();
            p.side.started[i] = Instant::now();
            p.step_clerk(p.side.base + i, clerk::Input::Start(op));
        }
    }
    shared.boxes[1].post(&mut a.outbox);
    shared.boxes[0].post(&mut b.outbox);

    let (result, mut b) = thread::scope(|scope| {
        let helper = scope.spawn(|| {
            b.serve(&shared);
            b.stats.cpu_secs = crate::thread_cpu_secs().unwrap_or(0.0);
            b
        });
        let start = Instant::now();
        let mut measuring: Option<(Instant, Option<f64>)> = None;
        let result = loop {
            if !a.turn(&shared) && !a.has_local_work() {
                shared.boxes[0].wait(a.next_tick, &shared.stop, &mut a.stats);
            }
            let now = Instant::now();
            let finished = shared.finished.load(Ordering::Relaxed);
            let completed = shared.completed.load(Ordering::Relaxed);
            if let Some(n) = stop_after
                && completed >= n
            {
                let t0 = measuring.map_or(start, |m| m.0);
                break (completed as f64 / (now - t0).as_secs_f64(), None, finished);
            }
            let warm = match stop_after {
                Some(n) => finished >= n / 10,
                None => now - start >= warmup,
            };
            match measuring {
                None if warm => {
                    let expected = stop_after.unwrap_or(8_000_000 * measure.as_secs().max(1));
                    a.side
                        .latencies
                        .reserve(usize::try_from(expected).unwrap_or(0));
                    shared.recording.store(true, Ordering::Relaxed);
                    shared.completed.store(0, Ordering::Relaxed);
                    measuring = Some((now, crate::threaded::process_cpu_secs()));
                }
                Some((t0, cpu0)) if stop_after.is_none() && now - t0 >= measure => {
                    let n = completed as f64;
                    let cpu = cpu0
                        .zip(crate::threaded::process_cpu_secs())
                        .map(|(a, b)| n / (b - a));
                    break (n / (now - t0).as_secs_f64(), cpu, finished);
                }
                _ => {}
            }
        };
        shared.recording.store(false, Ordering::Relaxed);
        shared.stop.store(true, Ordering::SeqCst);
        for m in &shared.boxes {
            let _q = m.queue.lock().expect("mailbox");
            m.wake.notify_all();
        }
        a.stats.cpu_secs = crate::thread_cpu_secs().unwrap_or(0.0);
        a.stats.total_secs = start.elapsed().as_secs_f64();
        (result, helper.join().expect("followers' thread"))
    });
    if std::env::var("KV_BENCH_VERBOSE").is_ok() {
        eprintln!(
            "leader's thread ({} clerks):    {:?}",
            a.side.clerks.len(),
            a.stats
        );
        eprintln!(
            "followers' thread ({} clerks): {:?}",
            b.side.clerks.len(),
            b.stats
        );
    }
    // Every replica applied the writes: all three are still there, and none is behind the
    // most advanced by more than the entries that can be in flight (32 AppendEntries of
    // one entry each) plus the commit index still on its way.
    let applied: Vec<u64> = a
        .replicas
        .iter()
        .chain(&b.replicas)
        .flatten()
        .map(|r| r.rsm().applied_index())
        .collect();
    let most = applied.iter().copied().max().unwrap_or(0);
    assert_eq!(applied.len(), n, "a replica went missing");
    assert!(
        applied.iter().all(|&i| i > 1 && i + 2 * 32 >= most),
        "a replica fell behind: applied indexes {applied:?}"
    );
    if std::env::var("KV_BENCH_VERBOSE").is_ok() {
        eprintln!("applied indexes at the end: {applied:?}");
    }
    let (rate, cpu, ops) = result;
    let mut latencies = std::mem::take(&mut a.side.latencies);
    latencies.append(&mut b.side.latencies);
    (rate, cpu, latencies, ops)
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}
