//! Simulator speed: virtual seconds simulated per wall-clock second for a 5-node Raft
//! cluster on the lab's unreliable network (10% loss, 0-26 ms delay, 10 ms ticks), with a
//! client proposing to the leader every 10 virtual milliseconds.
//!
//! ```text
//! cargo run --release -p stepwise-raft --example sim_speed -- [--seconds 600] [--nodes 5]
//! ```

use std::time::Instant;

use bytes::Bytes;
use stepwise_raft::{Action, Config, Input, Message, Node, Persisted};
use stepwise_sim::{Effect, MS, NetConfig, NodeId, SEC, Sim, SimConfig, Time};

struct Server {
    raft: Node,
    actions: Vec<Action>,
    snapshot_at: Option<u64>,
}

impl Server {
    fn run(&mut self, input: Input, out: &mut Vec<Effect<Server>>) {
        let mut actions = std::mem::take(&mut self.actions);
        self.raft.step_into(input, &mut actions);
        for action in actions.drain(..) {
            match action {
                Action::Send { to, msg } => out.push(Effect::Send {
                    to: to as NodeId,
                    msg,
                }),
                Action::SaveHardState(_)
                | Action::TruncateLog { .. }
                | Action::AppendLog(_)
                | Action::SaveSnapshot(_) => out.push(Effect::Write(action)),
                Action::Apply(e) => {
                    out.push(Effect::Output(e.index));
                    // The "service" snapshots every 1000 entries so logs stay small.
                    if e.index.is_multiple_of(1000) {
                        self.snapshot_at = Some(e.index);
                    }
                }
                _ => {}
            }
        }
        self.actions = actions;
        if let Some(index) = self.snapshot_at.take() {
            self.run(
                Input::Snapshot {
                    index,
                    data: Bytes::new(),
                },
                out,
            );
        }
    }
}

impl stepwise_sim::Node for Server {
    type Msg = Message;
    type Input = Bytes;
    type Output = u64;
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
        durable.apply_owned(write);
    }
    fn wire_size(msg: &Message) -> usize {
        // A cheap estimate (exact sizes cost a serialization per message).
        match msg {
            Message::AppendEntries { entries, .. } => {
                48 + entries.iter().map(|e| 24 + e.payload.len()).sum::<usize>()
            }
            Message::InstallSnapshot { snapshot, .. } => 48 + snapshot.data.len(),
            _ => 32,
        }
    }
}

fn main() {
    let mut seconds = 600u64;
    let mut n = 5usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().unwrap_or_default();
        match a.as_str() {
            "--seconds" => seconds = v.parse().expect("--seconds N"),
            "--nodes" => n = v.parse().expect("--nodes N"),
            _ => panic!("unknown argument {a}"),
        }
    }
    let mut config = SimConfig::with_seed(1);
    config.net = NetConfig::unreliable();
    let members: Vec<u64> = (0..n as u64).collect();
    let mut sim = Sim::new(config, n, move |id, d: &Persisted, seed| Server {
        raft: Node::restore(
            Config::new(id as u64, members.clone()).with_seed(seed),
            d.clone(),
        )
        .expect("valid"),
        actions: Vec::new(),
        snapshot_at: None,
    });
    let payload = Bytes::from_static(b"0123456789abcdef");
    let start = Instant::now();
    let mut applied = 0u64;
    while sim.now() < seconds * SEC {
        sim.run_for(10 * MS);
        if let Some(l) = (0..n).find(|&i| sim.node(i).is_some_and(|s| s.raft.is_leader())) {
            sim.input(l, payload.clone());
        }
        applied += sim.take_outputs().len() as u64;
    }
    let wall = start.elapsed().as_secs_f64();
    let stats = sim.stats();
    println!(
        "{n} nodes, {seconds} virtual s in {wall:.3} wall s: {:.0}x real time; {} events ({:.0} ns/event), {} messages, {applied} applies",
        seconds as f64 / wall,
        stats.events,
        wall * 1e9 / stats.events as f64,
        stats.total.msgs_sent,
    );
}
