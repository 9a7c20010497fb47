//! `raft-demo`: a 5-node Raft cluster in the deterministic simulator, under faults.
//!
//! Runs a replicated log through leader crashes, partitions, message loss and restarts in
//! virtual time, prints what happens (elections, commits, faults), and checks at the end that
//! every node applied the same commands in the same order. No network or disk is touched,
//! so it runs anywhere; the same seed gives the same run.
//!
//! ```text
//! cargo run --release -p stepwise-examples --bin raft-demo -- --seed 7 --seconds 30
//! ```

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use bytes::Bytes;
use clap::Parser;
use stepwise_raft::{Action, Config, Input, Message, Node, Payload, Persisted};
use stepwise_sim::{Effect, MS, NetConfig, NodeId, SEC, Sim, SimConfig, Time};

/// A 5-node Raft cluster in the deterministic simulator, with crashes, partitions and loss.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Seed of the run: the same seed replays the same run exactly.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Number of nodes.
    #[arg(long, default_value_t = 5)]
    nodes: usize,
    /// Virtual seconds of faults (followed by a healing phase).
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Print every commit, not only every 100th.
    #[arg(long)]
    verbose: bool,
}

/// What a simulated server reports.
#[derive(Debug)]
enum Event {
    Applied(u64, Bytes),
    Leader(u64, Option<u64>),
}

/// A Raft node as a simulator process: persistence goes to the simulated disk, sends to the
/// simulated network, applies and leader changes to the demo's output.
struct Server {
    raft: Node,
}

impl Server {
    fn run(&mut self, input: Input, out: &mut Vec<Effect<Server>>) {
        for action in self.raft.step(input) {
            match action {
                Action::Send { to, msg } => out.push(Effect::Send {
                    to: to as NodeId,
                    msg,
                }),
                Action::Apply(e) => {
                    if let Payload::Command(b) = e.payload {
                        out.push(Effect::Output(Event::Applied(e.index, b)));
                    }
                }
                Action::LeaderChanged { term, leader } => {
                    out.push(Effect::Output(Event::Leader(term, leader)))
                }
                Action::SaveHardState(_)
                | Action::TruncateLog { .. }
                | Action::AppendLog(_)
                | Action::SaveSnapshot(_) => out.push(Effect::Write(action)),
                _ => {}
            }
        }
    }
}

impl stepwise_sim::Node for Server {
    type Msg = Message;
    type Input = Bytes;
    type Output = Event;
    type Durable = Persisted;
    type Write = Action;

    fn on_tick(&mut self, _: Time, out: &mut Vec<Effect<Self>>) {
        self.run(Input::Tick, out);
    }
    fn on_message(&mut self, _: Time, from: NodeId, msg: Message, out: &mut Vec<Effect<Self>>) {
        self.run(
            Input::Receive {
                from: from as u64,
                msg,
            },
            out,
        );
    }
    fn on_input(&mut self, _: Time, cmd: Bytes, out: &mut Vec<Effect<Self>>) {
        self.run(Input::Propose(cmd), out);
    }
    fn write(durable: &mut Persisted, write: Action) {
        durable.apply(&write);
    }
    fn wire_size(msg: &Message) -> usize {
        postcard::experimental::serialized_size(msg).unwrap_or(0)
    }
}

fn secs(t: Time) -> String {
    format!("{:>7.3}s", t as f64 / SEC as f64)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let n = args.nodes;
    if !(1..=9).contains(&n) {
        bail!("--nodes must be between 1 and 9");
    }
    let mut config = SimConfig::with_seed(args.seed);
    config.net = NetConfig::unreliable();
    let members: Vec<u64> = (0..n as u64).collect();
    let mut sim = Sim::new(config, n, move |id, durable: &Persisted, seed| {
        let cfg = Config::new(id as u64, members.clone()).with_seed(seed);
        Server {
            raft: Node::restore(cfg, durable.clone()).expect("valid persisted state"),
        }
    });
    println!(
        "raft-demo: {n} nodes, seed {}, unreliable network (10% loss, 0-26 ms delay)",
        args.seed
    );
    let mut applied: Vec<BTreeMap<u64, Bytes>> = vec![BTreeMap::new(); n];
    let mut next_cmd = 0u64;
    let mut next_fault = 2 * SEC;
    let fault_end = args.seconds * SEC;
    let end = fault_end + 5 * SEC;
    let mut commits = 0u64;
    while sim.now() < end {
        sim.run_for(20 * MS);
        // A client proposes to whichever node claims to lead (it stops a second before the
        // end so every follower can learn the last commit index).
        if sim.now() + SEC < end
            && let Some(l) = (0..n).find(|&i| sim.node(i).is_some_and(|s| s.raft.is_leader()))
        {
            next_cmd += 1;
            sim.input(l, Bytes::from(format!("cmd-{next_cmd}")));
        }
        if sim.now() >= next_fault && sim.now() < fault_end {
            next_fault = sim.now() + (1 + sim.rng().rand_range(0..3)) * SEC;
            let victim = sim.rng().rand_range(0..n as u64) as usize;
            match sim.rng().rand_range(0..3) {
                0 if sim.is_up(victim) => {
                    sim.crash(victim);
                    println!("{} fault: crash node {victim}", secs(sim.now()));
                }
                1 => {
                    sim.disconnect(victim);
                    println!("{} fault: partition node {victim} away", secs(sim.now()));
                }
                _ => {
                    for i in 0..n {
                        if !sim.is_up(i) {
                            sim.restart(i);
                            println!("{} heal: restart node {i} from its disk", secs(sim.now()));
                        }
                    }
                    sim.connect_all();
                    println!("{} heal: network whole again", secs(sim.now()));
                }
            }
        }
        if sim.now() >= fault_end && sim.now() < fault_end + 20 * MS {
            for i in 0..n {
                if !sim.is_up(i) {
                    sim.restart(i);
                }
            }
            sim.connect_all();
            println!(
                "{} faults stop: every node up and connected",
                secs(sim.now())
            );
        }
        for (t, i, ev) in sim.take_outputs() {
            match ev {
                Event::Leader(term, Some(l)) if l == i as u64 => {
                    println!("{} node {i} is leader of term {term}", secs(t));
                }
                Event::Leader(..) => {}
                Event::Applied(index, cmd) => {
                    if let Some(prev) = applied.iter().find_map(|a| a.get(&index))
                        && prev != &cmd
                    {
                        bail!("safety violation: index {index} holds {prev:?} and {cmd:?}");
                    }
                    if applied[i].insert(index, cmd.clone()).is_none()
                        && applied.iter().filter(|a| a.contains_key(&index)).count() == 1
                    {
                        commits += 1;
                        if args.verbose || commits.is_multiple_of(100) {
                            println!(
                                "{} committed index {index}: {}",
                                secs(t),
                                String::from_utf8_lossy(&cmd)
                            );
                        }
                    }
                }
            }
        }
    }
    let longest = applied.iter().map(BTreeMap::len).max().unwrap_or(0);
    let agree = applied.iter().all(|a| a.len() == longest);
    let stats = sim.stats();
    println!(
        "done at {}: {commits} commands committed, {} messages ({} lost), every node applied the same {longest} commands: {agree}",
        secs(sim.now()),
        stats.total.msgs_sent,
        stats.msgs_lost,
    );
    if !agree {
        bail!("nodes disagree after healing");
    }
    Ok(())
}
