//! Committed entries per second for a 3-node cluster driven in one process, with in-memory
//! storage and no serialization: the workload of openraft's `benchmarks/minimal`
//! (`bench -m 3 -c N`). Each of N clients keeps one proposal outstanding and proposes again
//! as soon as the leader applies the previous one.
//!
//! ```text
//! cargo run --release -p stepwise-raft --example raft_bench -- [--clients 1,64,256,4096] [--ops 1000000] [--nodes 3] [--snapshot-every 100000]
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use stepwise_raft::{Action, Config, Index, Input, Message, Node, NodeId, Persisted};

struct Cluster {
    nodes: Vec<Node>,
    disks: Vec<Persisted>,
    queue: VecDeque<(NodeId, NodeId, Message)>,
    out: Vec<Action>,
    /// Entries the leader applied in the last step.
    applied: Vec<Index>,
    /// Indexes of the proposals accepted in the last step.
    proposed: Vec<Index>,
}

impl Cluster {
    fn new(n: u64) -> Cluster {
        let members: Vec<u64> = (1..=n).collect();
        let nodes = members
            .iter()
            .map(|&id| {
                let mut c = Config::new(id, members.clone()).with_seed(id);
                c.max_inflight = 64;
                c.max_append_entries = 4096;
                Node::new(c).expect("valid config")
            })
            .collect();
        Cluster {
            nodes,
            disks: vec![Persisted::default(); n as usize],
            queue: VecDeque::new(),
            out: Vec::new(),
            applied: Vec::new(),
            proposed: Vec::new(),
        }
    }

    fn step(&mut self, id: NodeId, input: Input) {
        let i = (id - 1) as usize;
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        self.nodes[i].step_into(input, &mut out);
        for action in out.drain(..) {
            match action {
                Action::Send { to, msg } => self.queue.push_back((id, to, msg)),
                Action::Apply(e) if self.nodes[i].is_leader() => self.applied.push(e.index),
                Action::Proposed { index, .. } => self.proposed.push(index),
                a => {
                    self.disks[i].apply_owned(a);
                }
            }
        }
        self.out = out;
    }

    fn leader(&self) -> Option<NodeId> {
        self.nodes.iter().find(|n| n.is_leader()).map(|n| n.id())
    }

    /// Delivers every queued message (and the ones they cause).
    fn settle(&mut self) {
        while let Some((from, to, msg)) = self.queue.pop_front() {
            self.step(to, Input::Receive { from, msg });
        }
    }
}

struct Run {
    ops: u64,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
}

fn run(nodes: u64, clients: usize, total_ops: u64, snapshot_every: u64) -> Run {
    let mut c = Cluster::new(nodes);
    while c.leader().is_none() {
        for id in 1..=nodes {
            c.step(id, Input::Tick);
        }
        c.settle();
    }
    let leader = c.leader().expect("elected");
    c.applied.clear();
    let payload = Bytes::from_static(&[7u8; 8]);
    let mut pending: VecDeque<(Index, Instant)> = VecDeque::with_capacity(clients);
    let mut latencies: Vec<u32> = Vec::with_capacity(total_ops as usize);
    let mut issued = 0u64;
    let mut done = 0u64;
    let start = Instant::now();
    // Clients whose previous operation completed propose together: the adapter hands
    // Raft everything that arrived since its last step as one batch.
    let propose = |c: &mut Cluster, pending: &mut VecDeque<(Index, Instant)>, n: usize, now| {
        if n == 0 {
            return;
        }
        let input = if n == 1 {
            Input::Propose(payload.clone())
        } else {
            Input::ProposeBatch(vec![payload.clone(); n])
        };
        c.step(leader, input);
        assert_eq!(c.proposed.len(), n, "the leader accepts proposals");
        pending.extend(c.proposed.drain(..).map(|i| (i, now)));
    };
    let first = clients.min(total_ops as usize);
    propose(&mut c, &mut pending, first, Instant::now());
    issued += first as u64;
    let mut next_snapshot = snapshot_every;
    while done < total_ops {
        // Deliver one message at a time so completions are seen as soon as they happen.
        let Some((from, to, msg)) = c.queue.pop_front() else {
            panic!("no progress: queue empty with {} pending", pending.len());
        };
        c.step(to, Input::Receive { from, msg });
        if c.applied.is_empty() {
            continue;
        }
        let now = Instant::now();
        let last = *c.applied.last().expect("non-empty");
        c.applied.clear();
        let mut again = 0;
        while pending.front().is_some_and(|&(i, _)| i <= last) {
            let (_, t0) = pending.pop_front().expect("non-empty");
            latencies.push((now - t0).as_nanos().min(u128::from(u32::MAX)) as u32);
            done += 1;
            if issued < total_ops {
                again += 1;
                issued += 1;
            }
        }
        propose(&mut c, &mut pending, again, now);
        // Compact like a real service: every node snapshots every `snapshot_every` entries.
        if last >= next_snapshot {
            next_snapshot = last + snapshot_every;
            for id in 1..=nodes {
                let applied = c.nodes[(id - 1) as usize].applied_index();
                c.step(
                    id,
                    Input::Snapshot {
                        index: applied,
                        data: Bytes::new(),
                    },
                );
            }
        }
    }
    let elapsed = start.elapsed();
    latencies.sort_unstable();
    let pct = |p: f64| {
        Duration::from_nanos(u64::from(
            latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)],
        ))
    };
    Run {
        ops: done,
        elapsed,
        p50: pct(0.50),
        p99: pct(0.99),
    }
}

fn main() {
    let mut clients = vec![1usize, 64, 256, 4096];
    let mut ops = 1_000_000u64;
    let mut nodes = 3u64;
    let mut snapshot_every = 100_000u64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().unwrap_or_default();
        match a.as_str() {
            "--clients" | "-c" => {
                clients = v
                    .split(',')
                    .map(|x| x.parse().expect("--clients N[,N..]"))
                    .collect()
            }
            "--ops" | "-n" => ops = v.parse().expect("--ops N"),
            "--nodes" | "-m" => nodes = v.parse().expect("--nodes N"),
            "--snapshot-every" => snapshot_every = v.parse().expect("--snapshot-every N"),
            _ => panic!("unknown argument {a}; use --clients 1,64 --ops N --nodes 3"),
        }
    }
    println!("nodes={nodes} ops={ops} (in-memory storage, no serialization, one thread)");
    println!(
        "{:>8} {:>14} {:>10} {:>10}",
        "clients", "ops/s", "p50", "p99"
    );
    for &n in &clients {
        let r = run(nodes, n, ops, snapshot_every);
        println!(
            "{:>8} {:>14.0} {:>10.1?} {:>10.1?}",
            n,
            r.ops as f64 / r.elapsed.as_secs_f64(),
            r.p50,
            r.p99
        );
    }
}
