//! The lab's test-mr.sh scenarios in the deterministic simulator (virtual time, seeded
//! network, crashes): node 0 is the coordinator, nodes 1.. are workers, and the "disk" is a
//! map shared by the node wrappers.
//!
//! Ticks are 100 ms, so the coordinator's default timeout (100 ticks) is the lab's 10 s.
//! Map and reduce work takes virtual time: a read completes a few ticks after it was asked
//! for, so tasks overlap and can time out as in the lab.
//!
//! Replay a failing seed with the command the test prints (`STEPWISE_SEED=...`).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::rc::Rc;

use bytes::Bytes;
use stepwise_mr::coordinator::{self, Coordinator};
use stepwise_mr::worker::{self, ExitReason, Worker};
use stepwise_mr::{
    App, CoordinatorConfig, TaskId, ToCoordinator, ToWorker, WorkerConfig, WorkerId, apps,
};
use stepwise_sim::{
    Effect, MS, NetConfig, Node, NodeId, Rand64, SEC, Sim, SimConfig, Time, sim_seeds,
};

/// The shared file system (test code only: the cores never see it).
type Fs = Rc<RefCell<BTreeMap<String, Bytes>>>;

const TICK: Time = 100 * MS;

#[derive(Debug, Clone)]
enum Msg {
    /// Worker to coordinator; `nonce` identifies the worker's incarnation.
    Up {
        nonce: u64,
        msg: ToCoordinator,
    },
    Down(ToWorker),
}

/// What the nodes report to the harness.
#[derive(Debug, Clone, PartialEq)]
enum Out {
    JobDone,
    JobFailed(String),
    TaskStart(TaskId),
    TaskEnd(TaskId),
    Crashed,
    Exited(ExitReason),
}

/// How long work takes, in ticks.
#[derive(Debug, Clone)]
struct Costs {
    map: Range<u64>,
    reduce: Range<u64>,
    /// Chance that the worker dies between two of its actions.
    crash_between_actions: f64,
    /// This worker takes 150 ticks (15 s) for every read.
    slow_node: Option<NodeId>,
}

enum MrNode {
    Coordinator(Box<CoordinatorNode>),
    Worker(Box<WorkerNode>),
}

struct CoordinatorNode {
    core: Coordinator,
    routes: BTreeMap<WorkerId, NodeId>,
    actions: Vec<coordinator::Action>,
}

struct WorkerNode {
    me: NodeId,
    core: Worker<Box<dyn App>>,
    nonce: u64,
    fs: Fs,
    files: Vec<String>,
    costs: Costs,
    rng: Rand64,
    clock: u64,
    started: bool,
    dead: bool,
    /// Inputs that become available at a later tick (work in progress).
    pending: Vec<(u64, worker::Input)>,
}

impl CoordinatorNode {
    fn step(&mut self, input: coordinator::Input, out: &mut Vec<Effect<MrNode>>) {
        self.core.step_into(input, &mut self.actions);
        for action in self.actions.drain(..) {
            match action {
                coordinator::Action::Send { to, msg } => {
                    if let Some(&node) = self.routes.get(&to) {
                        out.push(Effect::Send {
                            to: node,
                            msg: Msg::Down(msg),
                        });
                    }
                }
                coordinator::Action::JobDone => out.push(Effect::Output(Out::JobDone)),
                coordinator::Action::JobFailed { reason } => {
                    out.push(Effect::Output(Out::JobFailed(reason)))
                }
            }
        }
    }
}

impl WorkerNode {
    fn step(&mut self, input: worker::Input, out: &mut Vec<Effect<MrNode>>) {
        if self.dead {
            return;
        }
        let actions = self.core.step(input);
        let mut reduce_started = false;
        for action in actions {
            if self.costs.crash_between_actions > 0.0
                && self.rng.rand_float() < self.costs.crash_between_actions
            {
                self.die(out);
                return;
            }
            match action {
                worker::Action::Send(msg) => {
                    if let ToCoordinator::Request {
                        finished: Some(f), ..
                    } = &msg
                    {
                        out.push(Effect::Output(Out::TaskEnd(f.task)));
                    }
                    out.push(Effect::Send {
                        to: 0,
                        msg: Msg::Up {
                            nonce: self.nonce,
                            msg,
                        },
                    });
                }
                worker::Action::ReadInput { path } => {
                    if let Some(x) = self.files.iter().position(|f| *f == path) {
                        out.push(Effect::Output(Out::TaskStart(TaskId::Map(x as u32))));
                    }
                    let cost = self.rng.rand_range(self.costs.map.clone());
                    if !self.read(path, cost) {
                        return;
                    }
                }
                worker::Action::ReadFile { path } => {
                    if !reduce_started {
                        reduce_started = true;
                        let y = path.rsplit('-').next().and_then(|y| y.parse().ok());
                        out.push(Effect::Output(Out::TaskStart(TaskId::Reduce(
                            y.unwrap_or(0),
                        ))));
                    }
                    let cost = self.rng.rand_range(self.costs.reduce.clone());
                    if !self.read(path, cost) {
                        return;
                    }
                }
                worker::Action::WriteFile { path, data } => {
                    self.fs.borrow_mut().insert(path, data);
                }
                worker::Action::Rename { from, to } => {
                    let data = self.fs.borrow_mut().remove(&from);
                    match data {
                        Some(data) => {
                            self.fs.borrow_mut().insert(to, data);
                        }
                        None => {
                            let error = "no such file".to_owned();
                            self.pending
                                .push((self.clock, worker::Input::IoFailed { path: from, error }));
                            return;
                        }
                    }
                }
                worker::Action::Crash => {
                    self.die(out);
                    return;
                }
                worker::Action::Exit(reason) => out.push(Effect::Output(Out::Exited(reason))),
            }
        }
    }

    /// Queues the answer to a read `cost` ticks from now; false if the file is missing
    /// (the rest of the batch is skipped, as the contract says).
    fn read(&mut self, path: String, cost: u64) -> bool {
        let cost = if self.costs.slow_node == Some(self.me) {
            150
        } else {
            cost
        };
        let contents = self.fs.borrow().get(&path).cloned();
        match contents {
            Some(contents) => {
                self.pending
                    .push((self.clock + cost, worker::Input::Read { path, contents }));
                true
            }
            None => {
                let error = "no such file".to_owned();
                self.pending
                    .push((self.clock, worker::Input::IoFailed { path, error }));
                false
            }
        }
    }

    fn die(&mut self, out: &mut Vec<Effect<MrNode>>) {
        self.dead = true;
        out.push(Effect::Output(Out::Crashed));
    }

    fn tick(&mut self, out: &mut Vec<Effect<MrNode>>) {
        self.clock += 1;
        if !self.started {
            self.started = true;
            self.step(worker::Input::Start, out);
        }
        self.step(worker::Input::Tick, out);
        while let Some(i) = self.pending.iter().position(|(due, _)| *due <= self.clock) {
            let (_, input) = self.pending.remove(i);
            self.step(input, out);
        }
    }
}

impl Node for MrNode {
    type Msg = Msg;
    type Input = ();
    type Output = Out;
    type Durable = ();
    type Write = ();

    fn on_tick(&mut self, _now: Time, out: &mut Vec<Effect<Self>>) {
        match self {
            MrNode::Coordinator(c) => c.step(coordinator::Input::Tick, out),
            MrNode::Worker(w) => w.tick(out),
        }
    }

    fn on_message(&mut self, _now: Time, from: NodeId, msg: Msg, out: &mut Vec<Effect<Self>>) {
        match (self, msg) {
            (MrNode::Coordinator(c), Msg::Up { nonce, msg }) => {
                let id = WorkerId(nonce);
                c.routes.insert(id, from);
                c.step(coordinator::Input::Receive { from: id, msg }, out);
            }
            (MrNode::Worker(w), Msg::Down(msg)) => w.step(worker::Input::Receive(msg), out),
            _ => {}
        }
    }

    fn on_input(&mut self, _now: Time, _input: (), _out: &mut Vec<Effect<Self>>) {}

    fn write(_durable: &mut (), _write: ()) {}

    fn wire_size(msg: &Msg) -> usize {
        match msg {
            Msg::Up { .. } => 32,
            Msg::Down(ToWorker::Assign { task, .. }) => 32 + format!("{task:?}").len(),
            Msg::Down(ToWorker::Exit) => 8,
        }
    }
}

/// One simulated job.
struct Job {
    sim: Sim<MrNode>,
    fs: Fs,
    files: Vec<String>,
    outputs: Vec<(Time, NodeId, Out)>,
}

struct Setup {
    seed: u64,
    workers: usize,
    app: fn() -> Box<dyn App>,
    costs: Costs,
    net: NetConfig,
    timeout_ticks: u64,
    bytes_per_file: usize,
}

impl Setup {
    fn new(seed: u64, workers: usize, app: fn() -> Box<dyn App>) -> Setup {
        Setup {
            seed,
            workers,
            app,
            costs: Costs {
                map: 2..6,
                reduce: 1..3,
                crash_between_actions: 0.0,
                slow_node: None,
            },
            net: NetConfig::reliable(),
            timeout_ticks: 100,
            bytes_per_file: 3_000,
        }
    }

    fn start(self) -> Job {
        let fs: Fs = Rc::default();
        let names = [
            "pg-being_ernest.txt",
            "pg-dorian_gray.txt",
            "pg-frankenstein.txt",
            "pg-grimm.txt",
            "pg-huckleberry_finn.txt",
            "pg-metamorphosis.txt",
            "pg-sherlock_holmes.txt",
            "pg-tom_sawyer.txt",
        ];
        let files: Vec<String> = names.iter().map(|n| format!("../{n}")).collect();
        for (i, file) in files.iter().enumerate() {
            let text = stepwise_mr::corpus::generate(self.seed * 8 + i as u64, self.bytes_per_file);
            fs.borrow_mut().insert(file.clone(), Bytes::from(text));
        }
        let config = SimConfig {
            seed: self.seed,
            tick_interval: TICK,
            net: self.net.clone(),
        };
        let (node_fs, node_files) = (fs.clone(), files.clone());
        let (app, costs, timeout_ticks) = (self.app, self.costs.clone(), self.timeout_ticks);
        let sim = Sim::new(config, 1 + self.workers, move |me, _durable: &(), seed| {
            if me == 0 {
                let config = CoordinatorConfig {
                    n_reduce: 10,
                    task_timeout_ticks: timeout_ticks,
                };
                MrNode::Coordinator(Box::new(CoordinatorNode {
                    core: Coordinator::new(config, node_files.clone()).unwrap(),
                    routes: BTreeMap::new(),
                    actions: Vec::new(),
                }))
            } else {
                let config = WorkerConfig {
                    seed,
                    ..WorkerConfig::default()
                };
                MrNode::Worker(Box::new(WorkerNode {
                    me,
                    core: Worker::new(app(), config).unwrap(),
                    nonce: seed,
                    fs: node_fs.clone(),
                    files: node_files.clone(),
                    costs: costs.clone(),
                    rng: Rand64::new(u128::from(seed)),
                    clock: 0,
                    started: false,
                    dead: false,
                    pending: Vec::new(),
                }))
            }
        });
        Job {
            sim,
            fs,
            files,
            outputs: Vec::new(),
        }
    }
}

impl Job {
    fn collect(&mut self) {
        self.outputs.extend(self.sim.take_outputs());
    }

    fn done(&self) -> bool {
        self.outputs.iter().any(|(_, _, o)| *o == Out::JobDone)
    }

    fn failed(&self) -> Option<&str> {
        self.outputs.iter().find_map(|(_, _, o)| match o {
            Out::JobFailed(r) => Some(r.as_str()),
            _ => None,
        })
    }

    /// Runs until the job is done (at most `limit` of virtual time), restarting workers
    /// one second after they crash, as the lab's crash loops do.
    fn run(&mut self, limit: Time) {
        let deadline = self.sim.now() + limit;
        let mut restart_at: BTreeMap<NodeId, Time> = BTreeMap::new();
        let mut seen = 0;
        while !self.done() {
            assert!(
                self.sim.now() < deadline,
                "job not done after {} s",
                limit / SEC
            );
            if let Some(reason) = self.failed() {
                panic!("job failed: {reason}");
            }
            self.sim.run_for(TICK);
            self.collect();
            for (t, node, out) in &self.outputs[seen..] {
                if *out == Out::Crashed {
                    self.sim.crash(*node);
                    restart_at.insert(*node, t + SEC);
                }
            }
            seen = self.outputs.len();
            let now = self.sim.now();
            let due: Vec<NodeId> = restart_at
                .iter()
                .filter(|&(_, &at)| at <= now)
                .map(|(&n, _)| n)
                .collect();
            for node in due {
                restart_at.remove(&node);
                self.sim.restart(node);
            }
        }
    }

    /// Lets the workers hear that the job is over; every live worker must exit.
    fn finish(&mut self) {
        let workers = self.sim.len() - 1;
        let exited = |outputs: &[(Time, NodeId, Out)]| {
            outputs
                .iter()
                .filter(|(_, _, o)| matches!(o, Out::Exited(ExitReason::JobOver)))
                .map(|(_, n, _)| *n)
                .collect::<BTreeSet<_>>()
        };
        for _ in 0..200 {
            let live = (1..=workers).filter(|&i| self.sim.is_up(i)).count();
            if exited(&self.outputs).len() >= live {
                return;
            }
            self.sim.run_for(TICK);
            self.collect();
        }
        panic!(
            "workers did not exit: {:?} of {workers}",
            exited(&self.outputs)
        );
    }

    /// The lab's check: all `mr-out*` lines, sorted, without empty lines.
    fn merged_output(&self) -> Vec<String> {
        let fs = self.fs.borrow();
        let mut lines: Vec<String> = fs
            .iter()
            .filter(|(name, _)| name.starts_with("mr-out"))
            .flat_map(|(_, data)| {
                String::from_utf8_lossy(data)
                    .lines()
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect();
        lines.sort();
        lines
    }

    /// The reference output (the lab's mrsequential), sorted.
    fn sequential(&self, app: &dyn App) -> Vec<String> {
        let fs = self.fs.borrow();
        let inputs = self.files.iter().map(|f| (f.as_str(), fs[f].clone()));
        let out = stepwise_mr::sequential(app, inputs, false).unwrap();
        let mut lines: Vec<String> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        lines.sort();
        lines
    }

    /// How many times each task was started.
    fn starts(&self) -> BTreeMap<TaskId, usize> {
        let mut starts = BTreeMap::new();
        for (_, _, out) in &self.outputs {
            if let Out::TaskStart(task) = out {
                *starts.entry(*task).or_insert(0) += 1;
            }
        }
        starts
    }

    fn coordinator(&self) -> &Coordinator {
        match self.sim.node(0) {
            Some(MrNode::Coordinator(c)) => &c.core,
            _ => panic!("node 0 is the coordinator"),
        }
    }

    /// Checks that no task ran twice: every map and reduce task started exactly once.
    fn assert_each_task_ran_once(&self) {
        let starts = self.starts();
        assert_eq!(starts.len(), 8 + 10, "{starts:?}");
        assert!(starts.values().all(|&n| n == 1), "{starts:?}");
        let stats = self.coordinator().stats();
        assert_eq!((stats.map_assignments, stats.reduce_assignments), (8, 10));
        assert_eq!(stats.timed_out + stats.abandoned, 0);
    }

    /// Time intervals during which each worker ran tasks of one kind.
    fn intervals(&self, map: bool) -> Vec<(NodeId, Time, Time)> {
        let mut open: BTreeMap<(NodeId, TaskId), Time> = BTreeMap::new();
        let mut spans = Vec::new();
        for (t, node, out) in &self.outputs {
            match out {
                Out::TaskStart(task) if matches!(task, TaskId::Map(_)) == map => {
                    open.insert((*node, *task), *t);
                }
                Out::TaskEnd(task) => {
                    if let Some(start) = open.remove(&(*node, *task)) {
                        spans.push((*node, start, *t));
                    }
                }
                _ => {}
            }
        }
        spans
    }
}

fn wc() -> Box<dyn App> {
    Box::new(apps::WordCount)
}

fn indexer() -> Box<dyn App> {
    Box::new(apps::Indexer)
}

fn crash() -> Box<dyn App> {
    Box::new(apps::Crash::lab())
}

/// Whether two workers' task intervals overlap at some time.
fn overlap(spans: &[(NodeId, Time, Time)]) -> bool {
    spans.iter().any(|&(a, s1, e1)| {
        spans
            .iter()
            .any(|&(b, s2, e2)| a != b && s1 < e2 && s2 < e1)
    })
}

const LIMIT: Time = 120 * SEC;

/// wc with 3 workers: output equals sequential; nothing runs twice; every worker exits.
#[test]
fn wc_output_equals_sequential() {
    sim_seeds!(100, |seed| {
        let mut job = Setup::new(seed, 3, wc).start();
        job.run(LIMIT);
        assert_eq!(job.merged_output(), job.sequential(&apps::WordCount));
        job.assert_each_task_ran_once();
        job.finish();
    });
}

/// indexer with 2 workers.
#[test]
fn indexer_output_equals_sequential() {
    sim_seeds!(100, |seed| {
        let mut job = Setup::new(seed, 2, indexer).start();
        job.run(LIMIT);
        assert_eq!(job.merged_output(), job.sequential(&apps::Indexer));
        job.assert_each_task_ran_once();
        job.finish();
    });
}

/// Map parallelism (mtiming): both workers run maps, and two maps run at the same time.
#[test]
fn map_tasks_run_in_parallel() {
    sim_seeds!(100, |seed| {
        let mut setup = Setup::new(seed, 2, wc);
        setup.costs.map = 10..11; // the lab's 1 s sleep
        let mut job = setup.start();
        job.run(LIMIT);
        let spans = job.intervals(true);
        let workers: BTreeSet<NodeId> = spans.iter().map(|s| s.0).collect();
        assert_eq!(workers.len(), 2, "both workers ran maps");
        assert!(overlap(&spans), "two maps at once: {spans:?}");
    });
}

/// Reduce parallelism (rtiming): two reduces run at the same time.
#[test]
fn reduce_tasks_run_in_parallel() {
    sim_seeds!(100, |seed| {
        let mut setup = Setup::new(seed, 2, wc);
        setup.costs.reduce = 10..11;
        let mut job = setup.start();
        job.run(LIMIT);
        let spans = job.intervals(false);
        assert!(overlap(&spans), "two reduces at once: {spans:?}");
    });
}

/// Job count (jobcount): 4 workers, maps of 2-5 s against the 10 s timeout; every map
/// task runs exactly once.
#[test]
fn every_map_task_runs_exactly_once() {
    sim_seeds!(100, |seed| {
        let mut setup = Setup::new(seed, 4, wc);
        setup.costs.map = 20..50;
        let mut job = setup.start();
        job.run(LIMIT);
        job.assert_each_task_ran_once();
    });
}

/// Early exit: when the first node says it is finished (the coordinator's JobDone or a
/// worker's exit), the output is already final.
#[test]
fn nothing_finishes_before_the_output_is_final() {
    sim_seeds!(100, |seed| {
        let mut setup = Setup::new(seed, 3, wc);
        setup.costs.reduce = 5..30; // some reduces take 3 s, as early_exit's do
        let mut job = setup.start();
        let finished = job.sim.run_until(
            |s| {
                s.outputs()
                    .iter()
                    .any(|(_, _, o)| matches!(o, Out::JobDone | Out::Exited(_)))
            },
            LIMIT,
        );
        assert!(finished);
        let at_first = job.merged_output();
        job.collect();
        job.run(LIMIT);
        job.finish();
        assert_eq!(at_first, job.merged_output());
        assert_eq!(at_first, job.sequential(&apps::WordCount));
    });
}

/// Crash (crash.go): workers crash (33% per task) or stall up to 10 s (33%); crashed
/// workers restart after 1 s. The output equals nocrash's.
#[test]
fn crashing_and_stalling_workers_still_give_the_right_output() {
    sim_seeds!(100, |seed| {
        let mut job = Setup::new(seed, 4, crash).start();
        job.run(LIMIT * 3);
        assert_eq!(job.merged_output(), job.sequential(&apps::NoCrash));
        assert!(job.sim.stats().crashes > 0);
    });
}

/// Workers that die between any two of their actions (after writing a temporary file,
/// between renames, before reporting), on a lossy, reordering network: the output is
/// still the sequential output, and no temporary file is ever mistaken for output.
#[test]
fn crashes_between_any_two_actions_on_an_unreliable_network() {
    sim_seeds!(100, |seed| {
        let mut setup = Setup::new(seed, 4, wc);
        setup.costs.crash_between_actions = 0.02;
        setup.net = NetConfig::unreliable();
        let mut job = setup.start();
        job.run(LIMIT * 3);
        assert_eq!(job.merged_output(), job.sequential(&apps::WordCount));
    });
}

/// A lossy network alone: lost requests and assignments are resent, and the job still
/// completes with the right output.
#[test]
fn an_unreliable_network_only_delays_the_job() {
    sim_seeds!(100, |seed| {
        let mut setup = Setup::new(seed, 3, indexer);
        setup.net = NetConfig::unreliable();
        let mut job = setup.start();
        job.run(LIMIT);
        assert_eq!(job.merged_output(), job.sequential(&apps::Indexer));
        job.finish();
    });
}

/// A missing input fails the job with a message naming the file.
#[test]
fn a_missing_input_fails_the_job() {
    let mut job = Setup::new(1, 2, wc).start();
    job.fs.borrow_mut().remove("../pg-grimm.txt");
    let failed = job.sim.run_until(
        |s| {
            s.outputs()
                .iter()
                .any(|(_, _, o)| matches!(o, Out::JobFailed(_)))
        },
        LIMIT,
    );
    assert!(failed);
    job.collect();
    let reason = job.failed().unwrap();
    assert!(reason.contains("../pg-grimm.txt"), "{reason}");
}

/// A timed-out task goes to another worker: worker 1 takes 15 s per task (beyond the 10 s
/// timeout), the others are fast. The job completes with the right output, and the slow
/// worker's late reports are harmless duplicates.
#[test]
fn a_slow_worker_is_worked_around() {
    sim_seeds!(50, |seed| {
        let mut setup = Setup::new(seed, 3, wc);
        setup.costs.slow_node = Some(1);
        let mut job = setup.start();
        job.run(LIMIT);
        assert_eq!(job.merged_output(), job.sequential(&apps::WordCount));
        let stats = job.coordinator().stats();
        assert!(stats.timed_out >= 1, "{stats:?}");
    });
}

/// Same seed, same run.
#[test]
fn runs_are_deterministic() {
    let trace = |seed| {
        let mut setup = Setup::new(seed, 4, crash);
        setup.net = NetConfig::unreliable();
        let mut job = setup.start();
        job.run(LIMIT * 3);
        (job.sim.trace_hash(), job.merged_output())
    };
    assert_eq!(trace(5), trace(5));
    assert_ne!(trace(5).0, trace(6).0);
}
