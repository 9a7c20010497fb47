//! MapReduce (the 6.824/6.5840 lab 1) as two sans-IO state machines: a [`Coordinator`] that
//! hands out tasks and a [`Worker`] that runs an [`App`]'s map and reduce functions.
//!
//! Neither touches the network, the disk or a clock. Each has one entry point,
//! `step(Input) -> Vec<Action>`: the adapter feeds what happened (a tick, a message, a
//! file's contents) and carries out the returned actions (send a message, read a file,
//! write a temporary file, rename it).
//!
//! # The job
//!
//! * One map task per input file. Map task `X` reads its input, runs [`App::map`], and
//!   writes `mr-X-Y` for every partition `Y` (`ihash(key) % n_reduce`, see [`ihash`]),
//!   each through a temporary file and an atomic rename ([`worker::temp_name`]).
//! * Reduce tasks start only after every map task finished. Reduce task `Y` reads
//!   `mr-0-Y` .. `mr-(n_map-1)-Y`, sorts by key, and writes `mr-out-Y` with one
//!   `key value` line per key (temporary file, then rename).
//! * A worker asks for work with [`ToCoordinator::Request`], which also reports the task
//!   it just finished; the coordinator answers with [`ToWorker::Assign`] as soon as a task
//!   is available (a waiting worker is simply not answered yet), or [`ToWorker::Exit`]
//!   once the job is over.
//! * A task not finished within [`CoordinatorConfig::task_timeout_ticks`] (default 100
//!   ticks = 10 s) goes to another worker. Nothing else causes a second run: when nobody
//!   fails, every task runs exactly once. A late finish of a reassigned task is harmless:
//!   both runs write the same bytes and renames are atomic.
//! * The coordinator is done ([`coordinator::Action::JobDone`]) when every reduce task has
//!   reported: all outputs are final.
//!
//! # Driving loop and action contract
//!
//! * **Order.** Carry out actions in the order returned; each completes before the next
//!   starts. In particular a worker's `Send(Request { finished: Some(..) })` comes after the
//!   `WriteFile` and `Rename` actions that make the task's output final: it must not be sent
//!   earlier.
//! * **Failures.** If a worker action fails (a read, write or rename), skip the rest of that
//!   step's actions and feed [`worker::Input::IoFailed`]. The worker reports the task as
//!   failed and the job fails with that message.
//! * **Reads.** `ReadInput` and `ReadFile` are answered with [`worker::Input::Read`] carrying
//!   the same path, in any order, at any later time.
//! * **Ticks.** Feed `Tick` to both machines at a steady rate; the defaults assume 100 ms
//!   ([`TICK_MILLIS`]). An idle tick costs almost nothing.
//! * **Workers.** The coordinator names workers with [`WorkerId`]s chosen by its adapter
//!   (one per connection). Feed [`coordinator::Input::Disconnected`] when one goes away: its
//!   tasks are reassigned at once. A restarted worker process should be a new id and a new
//!   [`Worker`].
//! * **Exit.** `Action::Exit` and `Action::Crash` end a worker; afterwards it ignores every
//!   input. `Crash` (fault injection, the lab's `crash` app) means: stop at once, run nothing
//!   else.
//!
//! ```
//! use std::collections::{BTreeMap, VecDeque};
//! use bytes::Bytes;
//! use stepwise_mr::{apps::WordCount, coordinator, worker, Coordinator, CoordinatorConfig,
//!                   Worker, WorkerConfig, WorkerId};
//!
//! // A file system and two input files.
//! let mut fs: BTreeMap<String, Bytes> = BTreeMap::new();
//! fs.insert("a.txt".into(), Bytes::from("the cat saw the dog"));
//! fs.insert("b.txt".into(), Bytes::from("the end"));
//! let config = CoordinatorConfig { n_reduce: 3, ..CoordinatorConfig::default() };
//! let mut coord = Coordinator::new(config, vec!["a.txt".into(), "b.txt".into()]).unwrap();
//! let mut workers: Vec<Worker<WordCount>> = (0..2)
//!     .map(|i| Worker::new(WordCount, WorkerConfig { seed: i, ..WorkerConfig::default() }).unwrap())
//!     .collect();
//!
//! // Deliver messages in order; carry out file actions at once.
//! let mut to_coord: VecDeque<(WorkerId, worker::Input)> = VecDeque::new();
//! let mut inbox: VecDeque<(usize, worker::Input)> =
//!     (0..2).map(|i| (i, worker::Input::Start)).collect();
//! let mut done = false;
//! while let Some((i, input)) = inbox.pop_front() {
//!     for action in workers[i].step(input) {
//!         match action {
//!             worker::Action::Send(msg) => {
//!                 let input = coordinator::Input::Receive { from: WorkerId(i as u64), msg };
//!                 for action in coord.step(input) {
//!                     match action {
//!                         coordinator::Action::Send { to, msg } => {
//!                             inbox.push_back((to.0 as usize, worker::Input::Receive(msg)))
//!                         }
//!                         coordinator::Action::JobDone => done = true,
//!                         coordinator::Action::JobFailed { reason } => panic!("{reason}"),
//!                     }
//!                 }
//!             }
//!             worker::Action::ReadInput { path } | worker::Action::ReadFile { path } => {
//!                 let contents = fs[&path].clone();
//!                 inbox.push_back((i, worker::Input::Read { path, contents }));
//!             }
//!             worker::Action::WriteFile { path, data } => { fs.insert(path, data); }
//!             worker::Action::Rename { from, to } => {
//!                 let data = fs.remove(&from).unwrap();
//!                 fs.insert(to, data);
//!             }
//!             worker::Action::Crash | worker::Action::Exit(_) => {}
//!         }
//!     }
//! }
//! assert!(done && coord.is_done() && workers.iter().all(|w| w.has_exited()));
//! let mut lines: Vec<&str> = (0..3)
//!     .flat_map(|y| std::str::from_utf8(&fs[&format!("mr-out-{y}")]).unwrap().lines())
//!     .collect();
//! lines.sort();
//! assert_eq!(lines, ["cat 1", "dog 1", "end 1", "saw 1", "the 3"]);
//! ```
//!
//! # Applications
//!
//! [`App`] is the plug-in interface: `map(filename, contents)` emits pairs through an
//! [`Emitter`], `reduce(key, values)` appends one value, and an optional combiner merges
//! values of a key inside a map task before they are written (word count writes each
//! distinct word once per map task). Built in ([`apps`]): `wc`, `indexer`, `nocrash` and
//! `crash`. [`sequential`] is the reference (the lab's `mrsequential`).

#![forbid(unsafe_code)]

pub mod app;
pub mod apps;
pub mod codec;
pub mod config;
pub mod coordinator;
pub mod corpus;
mod hash;
mod key;
#[rustfmt::skip]
mod letters;
pub mod message;
mod text;
pub mod worker;

pub use app::{App, AppError, Combiner, Emitter, FaultPlan, sequential};
pub use config::{ConfigError, CoordinatorConfig, TICK_MILLIS, WorkerConfig};
pub use coordinator::Coordinator;
pub use hash::{ihash, partition};
pub use message::{Finished, Task, TaskId, ToCoordinator, ToWorker, WorkerId};
pub use text::{for_each_word, is_letter};
pub use worker::Worker;
