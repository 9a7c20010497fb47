//! The worker: asks for tasks, runs the application, writes files through the adapter.

use bytes::Bytes;

use crate::app::{App, Emitter, sort_pairs};
use crate::codec;
use crate::config::{ConfigError, WorkerConfig};
use crate::message::{Finished, Task, TaskId, ToCoordinator, ToWorker};

/// Something that happened to the worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Start working: the connection to the coordinator is up.
    Start,
    /// One tick of time passed.
    Tick,
    /// A message arrived from the coordinator.
    Receive(ToWorker),
    /// The file asked for by [`Action::ReadInput`] or [`Action::ReadFile`] (same `path`).
    Read {
        /// The path as given in the action.
        path: String,
        /// The whole file.
        contents: Bytes,
    },
    /// An action on `path` failed (read, write or rename). The adapter must skip the rest
    /// of that step's actions.
    IoFailed {
        /// The path as given in the action.
        path: String,
        /// The error, for the job's failure message.
        error: String,
    },
    /// The coordinator cannot be reached: the job is over (the lab's rule).
    CoordinatorGone,
}

/// Something the adapter must do. Actions run in order: each completes before the next
/// starts (a rename after its write, a send after its rename).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send a message to the coordinator.
    Send(ToCoordinator),
    /// Read the input file `path` (named as on the coordinator's command line; resolve it as
    /// the coordinator would), then feed [`Input::Read`] or [`Input::IoFailed`].
    ReadInput {
        /// The input file.
        path: String,
    },
    /// Read `path` from the job's work directory (an intermediate file), then feed
    /// [`Input::Read`] or [`Input::IoFailed`].
    ReadFile {
        /// File name inside the work directory.
        path: String,
    },
    /// Create or truncate `path` in the work directory and write `data` to it. Always a
    /// temporary name, followed by a [`Action::Rename`].
    WriteFile {
        /// File name inside the work directory.
        path: String,
        /// The contents.
        data: Bytes,
    },
    /// Atomically rename `from` to `to` in the work directory, replacing `to`.
    Rename {
        /// Temporary name.
        from: String,
        /// Final name.
        to: String,
    },
    /// Stop now, as if killed, without running further actions (fault injection).
    Crash,
    /// Stop: the worker has nothing left to do.
    Exit(ExitReason),
}

/// Why the worker exits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitReason {
    /// The coordinator said the job is over.
    JobOver,
    /// The coordinator is gone.
    CoordinatorGone,
    /// This worker could not complete a task (reported to the coordinator).
    Failed(String),
}

/// Counters, for summaries and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerStats {
    /// Map tasks completed.
    pub maps: u64,
    /// Reduce tasks completed.
    pub reduces: u64,
    /// Key/value pairs emitted by map (before combining).
    pub pairs_emitted: u64,
    /// Input bytes mapped.
    pub input_bytes: u64,
    /// Messages ignored (assignments for old requests, reads nobody asked for).
    pub ignored: u64,
}

#[derive(Debug, Clone)]
struct Assignment {
    attempt: u64,
    task: Task,
}

#[derive(Debug)]
enum State {
    /// Not started.
    Created,
    /// Waiting for the answer to request `id`.
    Requesting {
        id: u64,
        finished: Option<Finished>,
        sent_at: u64,
    },
    /// Fault injection: doing nothing until tick `until`, then running the task.
    Stalled { until: u64, job: Assignment },
    /// Waiting for the input of a map task.
    Mapping { job: Assignment, file: String },
    /// Waiting for the intermediate files of a reduce task.
    Reducing {
        job: Assignment,
        names: Vec<String>,
        files: Vec<Option<Bytes>>,
        missing: usize,
    },
    /// Done; every input is ignored.
    Exited,
}

/// The worker state machine, running application `A`. See the crate docs for the driving
/// loop.
pub struct Worker<A> {
    app: A,
    config: WorkerConfig,
    rng: oorandom::Rand64,
    now: u64,
    last_request: u64,
    state: State,
    /// The task being run, for failure reports.
    current: Option<(TaskId, u64)>,
    stats: WorkerStats,
}

/// The name of the intermediate file of map task `x` for partition `y`.
pub fn intermediate_name(x: u32, y: u32) -> String {
    format!("mr-{x}-{y}")
}

/// The name of the output file of reduce task `y`.
pub fn output_name(y: u32) -> String {
    format!("mr-out-{y}")
}

/// The temporary name under which `attempt` writes `final_name` (hidden, so the lab's
/// `mr-out*` glob never sees it).
pub fn temp_name(attempt: u64, final_name: &str) -> String {
    format!(".tmp-{attempt}-{final_name}")
}

impl<A: App> Worker<A> {
    /// A worker that runs `app`.
    pub fn new(app: A, config: WorkerConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Worker {
            app,
            rng: oorandom::Rand64::new(u128::from(config.seed)),
            config,
            now: 0,
            last_request: 0,
            state: State::Created,
            current: None,
            stats: WorkerStats::default(),
        })
    }

    /// Feeds one input; returns the actions to carry out, in order.
    pub fn step(&mut self, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        self.step_into(input, &mut out);
        out
    }

    /// [`Worker::step`], appending to a caller-owned buffer.
    pub fn step_into(&mut self, input: Input, out: &mut Vec<Action>) {
        if matches!(self.state, State::Exited) {
            return;
        }
        match input {
            Input::Start => {
                if matches!(self.state, State::Created) {
                    self.request(None, out);
                }
            }
            Input::Tick => self.on_tick(out),
            Input::Receive(ToWorker::Exit) => self.exit(ExitReason::JobOver, out),
            Input::Receive(ToWorker::Assign {
                request,
                attempt,
                task,
            }) => match self.state {
                State::Requesting { id, .. } if id == request => {
                    self.start(Assignment { attempt, task }, out)
                }
                _ => self.stats.ignored += 1,
            },
            Input::Read { path, contents } => self.on_read(path, contents, out),
            Input::IoFailed { path, error } => self.fail(format!("{path}: {error}"), out),
            Input::CoordinatorGone => self.exit(ExitReason::CoordinatorGone, out),
        }
    }

    /// Whether the worker has exited (or crashed).
    pub fn has_exited(&self) -> bool {
        matches!(self.state, State::Exited)
    }

    /// Counters.
    pub fn stats(&self) -> WorkerStats {
        self.stats
    }

    /// The application.
    pub fn app(&self) -> &A {
        &self.app
    }

    fn request(&mut self, finished: Option<Finished>, out: &mut Vec<Action>) {
        self.last_request += 1;
        let id = self.last_request;
        out.push(Action::Send(ToCoordinator::Request { id, finished }));
        self.state = State::Requesting {
            id,
            finished,
            sent_at: self.now,
        };
    }

    fn on_tick(&mut self, out: &mut Vec<Action>) {
        self.now += 1;
        match self.state {
            State::Requesting {
                id,
                finished,
                ref mut sent_at,
            } if self.now - *sent_at >= self.config.retry_ticks => {
                *sent_at = self.now;
                out.push(Action::Send(ToCoordinator::Request { id, finished }));
            }
            State::Stalled { until, .. } if self.now >= until => {
                let State::Stalled { job, .. } = std::mem::replace(&mut self.state, State::Created)
                else {
                    unreachable!("matched Stalled just above")
                };
                self.run(job, out);
            }
            _ => {}
        }
    }

    /// Takes an assignment: maybe injects a fault, then runs it.
    fn start(&mut self, job: Assignment, out: &mut Vec<Action>) {
        self.current = Some((job.task.id(), job.attempt));
        if let Some(plan) = self.app.faults() {
            let draw = self.rng.rand_range(0..1000);
            if draw < u64::from(plan.crash_per_mille) {
                self.state = State::Exited;
                out.push(Action::Crash);
                return;
            }
            if draw < u64::from(plan.crash_per_mille) + u64::from(plan.stall_per_mille) {
                let ticks = self.rng.rand_range(0..plan.max_stall_ticks.max(1));
                if ticks > 0 {
                    self.state = State::Stalled {
                        until: self.now + ticks,
                        job,
                    };
                    return;
                }
            }
        }
        self.run(job, out);
    }

    /// Asks for a task's input files.
    fn run(&mut self, job: Assignment, out: &mut Vec<Action>) {
        match job.task {
            Task::Map { ref file, .. } => {
                let file = file.clone();
                out.push(Action::ReadInput { path: file.clone() });
                self.state = State::Mapping { job, file };
            }
            Task::Reduce { index, n_map } => {
                let names: Vec<String> = (0..n_map).map(|x| intermediate_name(x, index)).collect();
                for name in &names {
                    out.push(Action::ReadFile { path: name.clone() });
                }
                let missing = names.len();
                self.state = State::Reducing {
                    job,
                    files: vec![None; missing],
                    names,
                    missing,
                };
                if missing == 0 {
                    self.reduce(out);
                }
            }
        }
    }

    fn on_read(&mut self, path: String, contents: Bytes, out: &mut Vec<Action>) {
        match &mut self.state {
            State::Mapping { file, .. } if *file == path => self.map(contents, out),
            State::Reducing {
                names,
                files,
                missing,
                ..
            } => match names.iter().position(|n| *n == path) {
                Some(slot) if files[slot].is_none() => {
                    files[slot] = Some(contents);
                    *missing -= 1;
                    if *missing == 0 {
                        self.reduce(out);
                    }
                }
                _ => self.stats.ignored += 1,
            },
            _ => self.stats.ignored += 1,
        }
    }

    fn map(&mut self, contents: Bytes, out: &mut Vec<Action>) {
        let State::Mapping { job, file } = std::mem::replace(&mut self.state, State::Created)
        else {
            unreachable!("map runs only in the Mapping state")
        };
        let Task::Map {
            index, n_reduce, ..
        } = job.task
        else {
            unreachable!("the Mapping state holds a map task")
        };
        let mut emitter = Emitter::new(&self.app, n_reduce, true);
        if let Err(e) = self.app.map(&file, &contents, &mut emitter) {
            return self.fail(format!("map of {file}: {e}"), out);
        }
        self.stats.pairs_emitted += emitter.emitted();
        self.stats.input_bytes += contents.len() as u64;
        self.stats.maps += 1;
        let partitions = emitter.finish();
        let finals: Vec<String> = (0..n_reduce).map(|y| intermediate_name(index, y)).collect();
        for (data, name) in partitions.into_iter().zip(&finals) {
            out.push(Action::WriteFile {
                path: temp_name(job.attempt, name),
                data: Bytes::from(data),
            });
        }
        for name in finals {
            out.push(Action::Rename {
                from: temp_name(job.attempt, &name),
                to: name,
            });
        }
        self.request(
            Some(Finished {
                task: TaskId::Map(index),
                attempt: job.attempt,
            }),
            out,
        );
    }

    fn reduce(&mut self, out: &mut Vec<Action>) {
        let State::Reducing {
            job, names, files, ..
        } = std::mem::replace(&mut self.state, State::Created)
        else {
            unreachable!("reduce runs only in the Reducing state")
        };
        let Task::Reduce { index, .. } = job.task else {
            unreachable!("the Reducing state holds a reduce task")
        };
        let mut pairs = Vec::new();
        for (name, file) in names.iter().zip(&files) {
            let data = file.as_deref().unwrap_or_default();
            if let Err(e) = codec::decode_into(data, &mut pairs) {
                return self.fail(format!("intermediate file {name}: {e}"), out);
            }
        }
        sort_pairs(&mut pairs);
        let mut output = Vec::new();
        if let Err(e) = self.app.reduce_partition(&pairs, &mut output) {
            return self.fail(format!("reduce of partition {index}: {e}"), out);
        }
        drop(pairs);
        self.stats.reduces += 1;
        let name = output_name(index);
        let temp = temp_name(job.attempt, &name);
        out.push(Action::WriteFile {
            path: temp.clone(),
            data: Bytes::from(output),
        });
        out.push(Action::Rename {
            from: temp,
            to: name,
        });
        self.request(
            Some(Finished {
                task: TaskId::Reduce(index),
                attempt: job.attempt,
            }),
            out,
        );
    }

    /// Reports the current task as failed and exits.
    fn fail(&mut self, reason: String, out: &mut Vec<Action>) {
        if let Some((task, attempt)) = self.current {
            out.push(Action::Send(ToCoordinator::Failed {
                task,
                attempt,
                reason: reason.clone(),
            }));
        }
        self.exit(ExitReason::Failed(reason), out);
    }

    fn exit(&mut self, reason: ExitReason, out: &mut Vec<Action>) {
        self.state = State::Exited;
        out.push(Action::Exit(reason));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::{AppError, FaultPlan};
    use crate::apps::{Crash, WordCount};
    use crate::hash::partition;

    fn worker<A: App>(app: A) -> Worker<A> {
        Worker::new(app, WorkerConfig::default()).unwrap()
    }

    fn request(id: u64, finished: Option<(TaskId, u64)>) -> Action {
        Action::Send(ToCoordinator::Request {
            id,
            finished: finished.map(|(task, attempt)| Finished { task, attempt }),
        })
    }

    fn assign(request: u64, attempt: u64, task: Task) -> Input {
        Input::Receive(ToWorker::Assign {
            request,
            attempt,
            task,
        })
    }

    fn map_task(file: &str, n_reduce: u32) -> Task {
        Task::Map {
            index: 4,
            file: file.into(),
            n_reduce,
        }
    }

    fn read(path: &str, contents: &[u8]) -> Input {
        Input::Read {
            path: path.into(),
            contents: Bytes::copy_from_slice(contents),
        }
    }

    #[test]
    fn start_asks_for_work_and_resends_while_waiting() {
        let mut w = worker(WordCount);
        assert_eq!(w.step(Input::Start), [request(1, None)]);
        assert_eq!(w.step(Input::Start), [], "a second start is ignored");
        for _ in 0..9 {
            assert_eq!(w.step(Input::Tick), []);
        }
        assert_eq!(w.step(Input::Tick), [request(1, None)], "same request id");
    }

    #[test]
    fn a_map_task_writes_every_partition_through_a_temp_file_then_reports() {
        let mut w = worker(WordCount);
        w.step(Input::Start);
        assert_eq!(
            w.step(assign(1, 7, map_task("in.txt", 3))),
            [Action::ReadInput {
                path: "in.txt".into()
            }]
        );
        let actions = w.step(read("in.txt", b"b a b c"));
        assert_eq!(actions.len(), 3 + 3 + 1);
        let mut seen = Vec::new();
        for (y, action) in actions[..3].iter().enumerate() {
            let Action::WriteFile { path, data } = action else {
                panic!("{action:?}")
            };
            assert_eq!(*path, format!(".tmp-7-mr-4-{y}"));
            let mut pairs = Vec::new();
            codec::decode_into(data, &mut pairs).unwrap();
            for (key, value) in pairs {
                assert_eq!(partition(key, 3), y as u32, "key in the lab's bucket");
                seen.push((key.to_vec(), value.to_vec()));
            }
        }
        seen.sort();
        let expected: Vec<(Vec<u8>, Vec<u8>)> = [("a", "1"), ("b", "2"), ("c", "1")]
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect();
        assert_eq!(seen, expected, "combined: one record per distinct word");
        for (y, action) in actions[3..6].iter().enumerate() {
            assert_eq!(
                *action,
                Action::Rename {
                    from: format!(".tmp-7-mr-4-{y}"),
                    to: format!("mr-4-{y}"),
                }
            );
        }
        assert_eq!(actions[6], request(2, Some((TaskId::Map(4), 7))));
        assert_eq!(w.stats().maps, 1);
        assert_eq!(w.stats().pairs_emitted, 4);
    }

    #[test]
    fn a_reduce_task_reads_every_map_output_in_any_order() {
        let mut w = worker(WordCount);
        w.step(Input::Start);
        let file = |pairs: &[(&str, &str)]| {
            let mut buf = Vec::new();
            codec::encode_header(&mut buf);
            for (k, v) in pairs {
                codec::encode_record(&mut buf, k.as_bytes(), v.as_bytes());
            }
            buf
        };
        assert_eq!(
            w.step(assign(1, 3, Task::Reduce { index: 1, n_map: 2 })),
            [
                Action::ReadFile {
                    path: "mr-0-1".into()
                },
                Action::ReadFile {
                    path: "mr-1-1".into()
                },
            ]
        );
        assert_eq!(
            w.step(read("mr-1-1", &file(&[("zeta", "2"), ("alpha", "1")]))),
            []
        );
        assert_eq!(
            w.step(read("mr-1-1", b"again")),
            [],
            "duplicate read ignored"
        );
        assert_eq!(
            w.step(read("mr-0-1", &file(&[("zeta", "5")]))),
            [
                Action::WriteFile {
                    path: ".tmp-3-mr-out-1".into(),
                    data: Bytes::from_static(b"alpha 1\nzeta 7\n"),
                },
                Action::Rename {
                    from: ".tmp-3-mr-out-1".into(),
                    to: "mr-out-1".into()
                },
                request(2, Some((TaskId::Reduce(1), 3))),
            ]
        );
        assert_eq!(w.stats().ignored, 1);
    }

    #[test]
    fn assignments_for_other_requests_are_ignored() {
        let mut w = worker(WordCount);
        w.step(Input::Start);
        assert_eq!(w.step(assign(7, 1, map_task("x", 1))), []);
        assert_eq!(w.step(assign(1, 1, map_task("x", 1))).len(), 1);
        assert_eq!(w.step(assign(1, 2, map_task("y", 1))), [], "busy");
        assert_eq!(w.stats().ignored, 2);
    }

    #[test]
    fn exits_when_told_or_when_the_coordinator_is_gone() {
        let mut w = worker(WordCount);
        w.step(Input::Start);
        assert_eq!(
            w.step(Input::Receive(ToWorker::Exit)),
            [Action::Exit(ExitReason::JobOver)]
        );
        assert!(w.has_exited());
        assert_eq!(w.step(Input::Tick), []);
        assert_eq!(w.step(Input::Start), []);
        let mut w = worker(WordCount);
        w.step(Input::Start);
        assert_eq!(
            w.step(Input::CoordinatorGone),
            [Action::Exit(ExitReason::CoordinatorGone)]
        );
    }

    #[test]
    fn io_failures_and_corrupt_files_fail_the_task() {
        let mut w = worker(WordCount);
        w.step(Input::Start);
        w.step(assign(1, 5, map_task("gone.txt", 1)));
        let failed = |reason: &str| {
            vec![
                Action::Send(ToCoordinator::Failed {
                    task: TaskId::Map(4),
                    attempt: 5,
                    reason: reason.into(),
                }),
                Action::Exit(ExitReason::Failed(reason.into())),
            ]
        };
        assert_eq!(
            w.step(Input::IoFailed {
                path: "gone.txt".into(),
                error: "No such file".into()
            }),
            failed("gone.txt: No such file")
        );
        let mut w = worker(WordCount);
        w.step(Input::Start);
        w.step(assign(1, 2, Task::Reduce { index: 0, n_map: 1 }));
        let actions = w.step(read("mr-0-0", b"garbage"));
        assert!(
            matches!(&actions[..], [Action::Send(ToCoordinator::Failed { reason, .. }), Action::Exit(_)]
                if reason.contains("mr-0-0") && reason.contains("bad header")),
            "{actions:?}"
        );
    }

    struct Failing;
    impl App for Failing {
        fn map(&self, _: &str, _: &[u8], _: &mut Emitter<'_>) -> Result<(), AppError> {
            Err(AppError("mapper exited with status 2".into()))
        }
        fn reduce(&self, _: &[u8], _: &[&[u8]], _: &mut Vec<u8>) -> Result<(), AppError> {
            Ok(())
        }
    }

    #[test]
    fn an_application_error_fails_the_task() {
        let mut w = worker(Failing);
        w.step(Input::Start);
        w.step(assign(1, 1, map_task("f", 1)));
        let actions = w.step(read("f", b""));
        assert_eq!(
            actions[0],
            Action::Send(ToCoordinator::Failed {
                task: TaskId::Map(4),
                attempt: 1,
                reason: "map of f: mapper exited with status 2".into()
            })
        );
    }

    #[test]
    fn the_crash_app_crashes_stalls_or_runs_as_the_seed_says() {
        let plan = FaultPlan {
            max_stall_ticks: 20,
            ..FaultPlan::LAB
        };
        let (mut crashed, mut stalled, mut ran) = (0, 0, 0);
        for seed in 0..600 {
            let config = WorkerConfig {
                seed,
                ..WorkerConfig::default()
            };
            let mut w = Worker::new(Crash::with_plan(plan), config.clone()).unwrap();
            w.step(Input::Start);
            let actions = w.step(assign(1, 1, map_task("f", 1)));
            let mut twin = Worker::new(Crash::with_plan(plan), config.clone()).unwrap();
            twin.step(Input::Start);
            assert_eq!(
                twin.step(assign(1, 1, map_task("f", 1))),
                actions,
                "same seed"
            );
            match &actions[..] {
                [Action::Crash] => {
                    crashed += 1;
                    assert!(w.has_exited());
                }
                [Action::ReadInput { .. }] => ran += 1,
                [] => {
                    stalled += 1;
                    let mut ticks = 0;
                    let resumed = loop {
                        ticks += 1;
                        let a = w.step(Input::Tick);
                        if !a.is_empty() {
                            break a;
                        }
                        assert!(ticks < 20, "stall longer than the plan");
                    };
                    assert_eq!(resumed, [Action::ReadInput { path: "f".into() }]);
                }
                other => panic!("{other:?}"),
            }
        }
        // 33% / 33% / 34%, and a stall of 0 ticks runs at once.
        assert!((150..250).contains(&crashed), "crashed {crashed}");
        assert!((150..250).contains(&stalled), "stalled {stalled}");
        assert!((150..280).contains(&ran), "ran {ran}");
    }

    #[test]
    fn zero_retry_ticks_is_invalid() {
        let config = WorkerConfig {
            retry_ticks: 0,
            ..WorkerConfig::default()
        };
        assert!(Worker::new(WordCount, config).is_err());
    }
}
