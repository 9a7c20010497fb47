//! The coordinator: hands out tasks, detects stragglers, knows when the job is done.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::config::{ConfigError, CoordinatorConfig};
use crate::message::{Finished, Task, TaskId, ToCoordinator, ToWorker, WorkerId};

/// Something that happened to the coordinator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// One tick of time passed.
    Tick,
    /// A message arrived from a worker.
    Receive {
        /// The sender.
        from: WorkerId,
        /// The message.
        msg: ToCoordinator,
    },
    /// The worker is gone (its connection closed, its process died). Its tasks are given
    /// to others at once instead of after the timeout.
    Disconnected(WorkerId),
}

/// Something the adapter must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send `msg` to worker `to`. If the worker is gone, drop it (and report
    /// [`Input::Disconnected`]).
    Send {
        /// The recipient.
        to: WorkerId,
        /// The message.
        msg: ToWorker,
    },
    /// Every reduce task has finished: all `mr-out-*` files are final. Emitted once. Workers
    /// that ask for work from now on are told to exit; the adapter may exit once its
    /// workers are gone (or after a grace period).
    JobDone,
    /// The job failed (a worker could not complete a task). Emitted once; workers are told
    /// to exit.
    JobFailed {
        /// Which task failed and why.
        reason: String,
    },
}

/// The job's phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Map tasks are running; no reduce task starts before all of them finish.
    Map,
    /// Reduce tasks are running.
    Reduce,
    /// Every output is final.
    Done,
    /// A task failed; see [`Action::JobFailed`].
    Failed,
}

/// How far the job is, for progress displays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// The phase.
    pub phase: Phase,
    /// Finished map tasks.
    pub maps_done: usize,
    /// All map tasks (one per input file).
    pub maps_total: usize,
    /// Finished reduce tasks.
    pub reduces_done: usize,
    /// All reduce tasks.
    pub reduces_total: usize,
    /// Workers known and not disconnected.
    pub workers: usize,
}

/// Counters, for summaries and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Map task assignments (equal to the number of map tasks when nothing fails).
    pub map_assignments: u64,
    /// Reduce task assignments.
    pub reduce_assignments: u64,
    /// Tasks given to another worker after [`CoordinatorConfig::task_timeout_ticks`].
    pub timed_out: u64,
    /// Tasks given to another worker because theirs disconnected or asked for new work
    /// without finishing them (a lost assignment or a restarted worker).
    pub abandoned: u64,
    /// Reports of tasks that had already finished.
    pub duplicate_finishes: u64,
    /// Messages ignored as stale or invalid (old request ids, unknown task numbers).
    pub ignored_messages: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Idle,
    Running {
        worker: WorkerId,
        attempt: u64,
        deadline: u64,
    },
    Done,
}

#[derive(Debug, Clone, Default)]
struct WorkerInfo {
    /// The highest request id answered with an assignment (0: none).
    answered: u64,
    /// The assignment that answered it, to resend if the worker asks again.
    assignment: Option<(TaskId, u64)>,
    /// The request id this worker waits on, if it is in the queue.
    waiting: Option<u64>,
}

/// The coordinator state machine. See the crate docs for the driving loop.
#[derive(Debug, Clone)]
pub struct Coordinator {
    config: CoordinatorConfig,
    files: Vec<String>,
    maps: Vec<Slot>,
    reduces: Vec<Slot>,
    /// Idle tasks of the current phase, lowest first.
    idle: BTreeSet<u32>,
    /// Running tasks of the current phase.
    running: usize,
    /// Finished tasks of the current phase.
    done: usize,
    phase: Phase,
    now: u64,
    next_attempt: u64,
    workers: BTreeMap<WorkerId, WorkerInfo>,
    /// Waiting workers in arrival order (entries whose `waiting` is `None` are skipped).
    queue: VecDeque<WorkerId>,
    stats: Stats,
}

impl Coordinator {
    /// A coordinator for one job: one map task per input file, in the given order.
    pub fn new(config: CoordinatorConfig, files: Vec<String>) -> Result<Self, ConfigError> {
        config.validate()?;
        if u32::try_from(files.len()).is_err() {
            return Err(ConfigError::TooManyFiles(files.len()));
        }
        let n_map = files.len();
        let n_reduce = config.n_reduce as usize;
        let mut coordinator = Coordinator {
            config,
            files,
            maps: vec![Slot::Idle; n_map],
            reduces: vec![Slot::Idle; n_reduce],
            idle: (0..n_map as u32).collect(),
            running: 0,
            done: 0,
            phase: Phase::Map,
            now: 0,
            next_attempt: 1,
            workers: BTreeMap::new(),
            queue: VecDeque::new(),
            stats: Stats::default(),
        };
        if n_map == 0 {
            coordinator.start_reduce();
        }
        Ok(coordinator)
    }

    /// Feeds one input; returns the actions to carry out, in order.
    pub fn step(&mut self, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        self.step_into(input, &mut out);
        out
    }

    /// [`Coordinator::step`], appending to a caller-owned buffer.
    pub fn step_into(&mut self, input: Input, out: &mut Vec<Action>) {
        match input {
            Input::Tick => self.on_tick(out),
            Input::Receive { from, msg } => match msg {
                ToCoordinator::Request { id, finished } => self.on_request(from, id, finished, out),
                ToCoordinator::Failed {
                    task,
                    attempt,
                    reason,
                } => self.on_failed(from, task, attempt, reason, out),
            },
            Input::Disconnected(worker) => {
                if self.workers.remove(&worker).is_some() {
                    self.abandon_tasks_of(worker);
                    self.dispatch(out);
                }
            }
        }
    }

    /// The phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Whether every reduce task has finished (all outputs are final).
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// The input files, one per map task.
    pub fn files(&self) -> &[String] {
        &self.files
    }

    /// Progress counters.
    pub fn progress(&self) -> Progress {
        let count = |slots: &[Slot]| slots.iter().filter(|s| **s == Slot::Done).count();
        Progress {
            phase: self.phase,
            maps_done: count(&self.maps),
            maps_total: self.maps.len(),
            reduces_done: count(&self.reduces),
            reduces_total: self.reduces.len(),
            workers: self.workers.len(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Ticks elapsed.
    pub fn now(&self) -> u64 {
        self.now
    }

    fn on_tick(&mut self, out: &mut Vec<Action>) {
        self.now += 1;
        if self.running == 0 {
            return;
        }
        let now = self.now;
        let slots = match self.phase {
            Phase::Map => &mut self.maps,
            Phase::Reduce => &mut self.reduces,
            Phase::Done | Phase::Failed => return,
        };
        for (index, slot) in slots.iter_mut().enumerate() {
            if let Slot::Running { deadline, .. } = *slot
                && deadline <= now
            {
                *slot = Slot::Idle;
                self.idle.insert(index as u32);
                self.running -= 1;
                self.stats.timed_out += 1;
            }
        }
        self.dispatch(out);
    }

    fn on_request(
        &mut self,
        from: WorkerId,
        id: u64,
        finished: Option<Finished>,
        out: &mut Vec<Action>,
    ) {
        let info = self.workers.entry(from).or_default();
        if id < info.answered || info.waiting.is_some_and(|waiting| id < waiting) {
            // A delayed copy of an old request.
            self.stats.ignored_messages += 1;
            return;
        }
        if id == info.answered
            && let Some((task, attempt)) = info.assignment
            && matches!(self.slot(task), Some(Slot::Running { worker, attempt: a, .. })
                if worker == from && a == attempt)
        {
            // The worker asks again for a request we answered: our assignment was lost or
            // is still on its way. Resend it. (If that assignment is void, timed out and
            // finished elsewhere, the worker never started it: answer the request anew.)
            let msg = ToWorker::Assign {
                request: id,
                attempt,
                task: self.task(task),
            };
            out.push(Action::Send { to: from, msg });
            return;
        }
        if let Some(finished) = finished {
            self.finish(finished, out);
        }
        // The worker is idle: whatever it was assigned and did not report is abandoned.
        self.abandon_tasks_of(from);
        if matches!(self.phase, Phase::Done | Phase::Failed) {
            out.push(Action::Send {
                to: from,
                msg: ToWorker::Exit,
            });
            return;
        }
        let info = self.workers.entry(from).or_default();
        if info.waiting.is_none() {
            self.queue.push_back(from);
        }
        info.waiting = Some(id);
        self.dispatch(out);
    }

    fn on_failed(
        &mut self,
        from: WorkerId,
        task: TaskId,
        attempt: u64,
        reason: String,
        out: &mut Vec<Action>,
    ) {
        match self.slot(task) {
            None | Some(Slot::Done) => {
                self.stats.ignored_messages += 1;
                return;
            }
            Some(_) => {}
        }
        if matches!(self.phase, Phase::Done | Phase::Failed) {
            return;
        }
        self.phase = Phase::Failed;
        self.idle.clear();
        out.push(Action::JobFailed {
            reason: format!(
                "{task} failed (worker {}, attempt {attempt}): {reason}",
                from.0
            ),
        });
        self.release_waiting(out);
    }

    /// Marks a task finished; advances the phase when the last one finishes.
    fn finish(&mut self, finished: Finished, out: &mut Vec<Action>) {
        let current = matches!(
            (self.phase, finished.task),
            (Phase::Map, TaskId::Map(_)) | (Phase::Reduce, TaskId::Reduce(_))
        );
        let (slots, index) = match finished.task {
            TaskId::Map(x) => (&mut self.maps, x),
            TaskId::Reduce(y) => (&mut self.reduces, y),
        };
        let Some(slot) = slots.get_mut(index as usize) else {
            self.stats.ignored_messages += 1;
            return;
        };
        match *slot {
            Slot::Done => {
                self.stats.duplicate_finishes += 1;
                return;
            }
            // A finish for a task of another phase that is not done: a confused worker.
            _ if !current => {
                self.stats.ignored_messages += 1;
                return;
            }
            Slot::Running { .. } => self.running -= 1,
            Slot::Idle => {
                self.idle.remove(&index);
            }
        }
        *slot = Slot::Done;
        self.done += 1;
        match self.phase {
            Phase::Map if self.done == self.maps.len() => self.start_reduce(),
            Phase::Reduce if self.done == self.reduces.len() => {
                self.phase = Phase::Done;
                out.push(Action::JobDone);
                self.release_waiting(out);
            }
            _ => {}
        }
    }

    fn start_reduce(&mut self) {
        self.phase = Phase::Reduce;
        self.idle = (0..self.reduces.len() as u32).collect();
        self.running = 0;
        self.done = 0;
    }

    /// Tells every waiting worker to exit.
    fn release_waiting(&mut self, out: &mut Vec<Action>) {
        while let Some(worker) = self.queue.pop_front() {
            if let Some(info) = self.workers.get_mut(&worker)
                && info.waiting.take().is_some()
            {
                out.push(Action::Send {
                    to: worker,
                    msg: ToWorker::Exit,
                });
            }
        }
    }

    /// Requeues the current phase's tasks running on `worker`.
    fn abandon_tasks_of(&mut self, worker: WorkerId) {
        if self.running == 0 {
            return;
        }
        let slots = match self.phase {
            Phase::Map => &mut self.maps,
            Phase::Reduce => &mut self.reduces,
            Phase::Done | Phase::Failed => return,
        };
        for (index, slot) in slots.iter_mut().enumerate() {
            if matches!(*slot, Slot::Running { worker: w, .. } if w == worker) {
                *slot = Slot::Idle;
                self.idle.insert(index as u32);
                self.running -= 1;
                self.stats.abandoned += 1;
            }
        }
    }

    /// Gives idle tasks to waiting workers, first come first served.
    fn dispatch(&mut self, out: &mut Vec<Action>) {
        if !matches!(self.phase, Phase::Map | Phase::Reduce) {
            return;
        }
        while !self.idle.is_empty() {
            let Some(worker) = self.queue.pop_front() else {
                return;
            };
            let Some(request) = self.workers.get_mut(&worker).and_then(|i| i.waiting.take()) else {
                continue;
            };
            let Some(index) = self.idle.pop_first() else {
                // Checked non-empty at the top of the loop.
                unreachable!("idle set emptied during dispatch")
            };
            let attempt = self.next_attempt;
            self.next_attempt += 1;
            let running = Slot::Running {
                worker,
                attempt,
                deadline: self.now + self.config.task_timeout_ticks,
            };
            let id = match self.phase {
                Phase::Map => {
                    self.maps[index as usize] = running;
                    self.stats.map_assignments += 1;
                    TaskId::Map(index)
                }
                Phase::Reduce => {
                    self.reduces[index as usize] = running;
                    self.stats.reduce_assignments += 1;
                    TaskId::Reduce(index)
                }
                // Checked at the top of this function.
                Phase::Done | Phase::Failed => unreachable!("dispatch after the job ended"),
            };
            self.running += 1;
            if let Some(info) = self.workers.get_mut(&worker) {
                info.answered = request;
                info.assignment = Some((id, attempt));
            }
            out.push(Action::Send {
                to: worker,
                msg: ToWorker::Assign {
                    request,
                    attempt,
                    task: self.task(id),
                },
            });
        }
    }

    fn slot(&self, task: TaskId) -> Option<Slot> {
        match task {
            TaskId::Map(x) => self.maps.get(x as usize).copied(),
            TaskId::Reduce(y) => self.reduces.get(y as usize).copied(),
        }
    }

    /// The full description of a task (its index is in range).
    fn task(&self, id: TaskId) -> Task {
        match id {
            TaskId::Map(index) => Task::Map {
                index,
                file: self.files[index as usize].clone(),
                n_reduce: self.config.n_reduce,
            },
            TaskId::Reduce(index) => Task::Reduce {
                index,
                n_map: self.maps.len() as u32,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(i: u64) -> WorkerId {
        WorkerId(i)
    }

    fn request(from: u64, id: u64, finished: Option<(TaskId, u64)>) -> Input {
        Input::Receive {
            from: w(from),
            msg: ToCoordinator::Request {
                id,
                finished: finished.map(|(task, attempt)| Finished { task, attempt }),
            },
        }
    }

    fn assign(to: u64, request: u64, attempt: u64, task: Task) -> Action {
        Action::Send {
            to: w(to),
            msg: ToWorker::Assign {
                request,
                attempt,
                task,
            },
        }
    }

    fn map(index: u32, file: &str, n_reduce: u32) -> Task {
        Task::Map {
            index,
            file: file.into(),
            n_reduce,
        }
    }

    fn exit(to: u64) -> Action {
        Action::Send {
            to: w(to),
            msg: ToWorker::Exit,
        }
    }

    fn coordinator(files: &[&str], n_reduce: u32) -> Coordinator {
        let config = CoordinatorConfig {
            n_reduce,
            task_timeout_ticks: 100,
        };
        Coordinator::new(config, files.iter().map(|f| f.to_string()).collect()).unwrap()
    }

    #[test]
    fn gives_one_map_task_per_file_to_workers_that_ask() {
        let mut c = coordinator(&["a", "b"], 3);
        assert_eq!(
            c.step(request(1, 1, None)),
            [assign(1, 1, 1, map(0, "a", 3))]
        );
        assert_eq!(
            c.step(request(2, 1, None)),
            [assign(2, 1, 2, map(1, "b", 3))]
        );
        // Nothing left: the third worker waits (no answer yet).
        assert_eq!(c.step(request(3, 1, None)), []);
        assert_eq!(c.progress().workers, 3);
        assert_eq!(c.phase(), Phase::Map);
    }

    #[test]
    fn reduce_starts_only_after_every_map_finished() {
        let mut c = coordinator(&["a", "b"], 2);
        c.step(request(1, 1, None));
        c.step(request(2, 1, None));
        c.step(request(3, 1, None));
        // Map 0 finishes; map 1 is still running, so nobody gets a reduce task.
        assert_eq!(c.step(request(1, 2, Some((TaskId::Map(0), 1)))), []);
        assert_eq!(c.phase(), Phase::Map);
        // Map 1 finishes: the waiting workers get reduce tasks in arrival order.
        let reduce = |index| Task::Reduce { index, n_map: 2 };
        assert_eq!(
            c.step(request(2, 2, Some((TaskId::Map(1), 2)))),
            [assign(3, 1, 3, reduce(0)), assign(1, 2, 4, reduce(1)),]
        );
        assert_eq!(c.phase(), Phase::Reduce);
        let p = c.progress();
        assert_eq!((p.maps_done, p.reduces_done), (2, 0));
    }

    #[test]
    fn done_only_after_every_reduce_then_everyone_is_told_to_exit() {
        let mut c = coordinator(&["a"], 2);
        c.step(request(1, 1, None));
        c.step(request(1, 2, Some((TaskId::Map(0), 1))));
        c.step(request(2, 1, None));
        // Reduce 0 on worker 1 (attempt 2), reduce 1 on worker 2 (attempt 3).
        assert_eq!(c.step(request(1, 3, Some((TaskId::Reduce(0), 2)))), []);
        assert!(!c.is_done());
        assert_eq!(
            c.step(request(2, 2, Some((TaskId::Reduce(1), 3)))),
            [Action::JobDone, exit(1), exit(2),]
        );
        assert!(c.is_done());
        // Late askers (and late reports) get Exit too; JobDone is not repeated.
        assert_eq!(c.step(request(3, 1, None)), [exit(3)]);
        assert_eq!(
            c.step(request(1, 4, Some((TaskId::Reduce(0), 9)))),
            [exit(1)]
        );
        assert_eq!(c.stats().duplicate_finishes, 1);
    }

    #[test]
    fn a_task_not_finished_within_the_timeout_goes_to_another_worker() {
        let mut c = coordinator(&["a"], 1);
        c.step(request(1, 1, None));
        c.step(request(2, 1, None));
        for _ in 0..99 {
            assert_eq!(c.step(Input::Tick), []);
        }
        assert_eq!(c.step(Input::Tick), [assign(2, 1, 2, map(0, "a", 1))]);
        assert_eq!(c.stats().timed_out, 1);
        // The slow worker finishes after all: accepted once, the reassigned run's report
        // is a duplicate, and the reduce phase starts.
        let reduce = Task::Reduce { index: 0, n_map: 1 };
        assert_eq!(
            c.step(request(1, 2, Some((TaskId::Map(0), 1)))),
            [assign(1, 2, 3, reduce)]
        );
        assert_eq!(c.phase(), Phase::Reduce);
        assert_eq!(c.step(request(2, 2, Some((TaskId::Map(0), 2)))), []);
        assert_eq!(c.stats().duplicate_finishes, 1);
    }

    #[test]
    fn nothing_runs_twice_when_nobody_fails() {
        let files: Vec<String> = (0..8).map(|i| format!("pg-{i}.txt")).collect();
        let files: Vec<&str> = files.iter().map(String::as_str).collect();
        let mut c = coordinator(&files, 10);
        // (worker, request id, finished task and attempt)
        type Pending = (u64, u64, Option<(TaskId, u64)>);
        let mut pending: VecDeque<Pending> = (1..=3).map(|i| (i, 1, None)).collect();
        let mut next_id = [0, 2, 2, 2];
        let mut exits = 0;
        while let Some((from, id, finished)) = pending.pop_front() {
            // Every task takes 30 ticks, well within the timeout.
            for _ in 0..30 {
                assert_eq!(c.step(Input::Tick), []);
            }
            for action in c.step(request(from, id, finished)) {
                match action {
                    Action::Send {
                        to,
                        msg: ToWorker::Assign { attempt, task, .. },
                    } => {
                        let id = next_id[to.0 as usize];
                        next_id[to.0 as usize] += 1;
                        pending.push_back((to.0, id, Some((task.id(), attempt))));
                    }
                    Action::Send {
                        msg: ToWorker::Exit,
                        ..
                    } => exits += 1,
                    Action::JobDone => {}
                    Action::JobFailed { reason } => panic!("{reason}"),
                }
            }
        }
        assert!(c.is_done());
        assert_eq!(exits, 3);
        let s = c.stats();
        assert_eq!((s.map_assignments, s.reduce_assignments), (8, 10));
        assert_eq!(s.timed_out + s.abandoned + s.duplicate_finishes, 0);
    }

    #[test]
    fn a_disconnected_workers_task_is_reassigned_at_once() {
        let mut c = coordinator(&["a", "b"], 1);
        c.step(request(1, 1, None));
        c.step(request(2, 1, None));
        c.step(request(3, 1, None));
        assert_eq!(
            c.step(Input::Disconnected(w(1))),
            [assign(3, 1, 3, map(0, "a", 1))]
        );
        assert_eq!(c.stats().abandoned, 1);
        assert_eq!(c.progress().workers, 2);
        // Unknown or repeated disconnects change nothing.
        assert_eq!(c.step(Input::Disconnected(w(1))), []);
        assert_eq!(c.step(Input::Disconnected(w(9))), []);
    }

    #[test]
    fn a_repeated_request_gets_the_same_assignment_and_old_ones_are_ignored() {
        let mut c = coordinator(&["a", "b"], 1);
        let first = c.step(request(1, 1, None));
        assert_eq!(first, [assign(1, 1, 1, map(0, "a", 1))]);
        // The assignment was lost; the worker resends request 1.
        assert_eq!(c.step(request(1, 1, None)), first);
        assert_eq!(c.stats().map_assignments, 1);
        // Request 2 reports map 0; a delayed copy of request 1 then changes nothing.
        assert_eq!(
            c.step(request(1, 2, Some((TaskId::Map(0), 1)))),
            [assign(1, 2, 2, map(1, "b", 1))]
        );
        assert_eq!(c.step(request(1, 1, None)), []);
        assert_eq!(c.stats().ignored_messages, 1);
    }

    #[test]
    fn a_worker_asking_for_new_work_abandons_its_unreported_task() {
        let mut c = coordinator(&["a"], 1);
        c.step(request(1, 1, None));
        c.step(request(2, 1, None));
        // Worker 1 restarted (same id, fresh request numbering would be a new id; here it
        // skipped ahead): its task goes to the waiting worker.
        assert_eq!(
            c.step(request(1, 5, None)),
            [assign(2, 1, 2, map(0, "a", 1))]
        );
        assert_eq!(c.stats().abandoned, 1);
    }

    #[test]
    fn a_failed_task_fails_the_job_and_releases_everyone() {
        let mut c = coordinator(&["a", "b"], 1);
        c.step(request(1, 1, None));
        c.step(request(2, 1, None));
        c.step(request(3, 1, None));
        let failed = Input::Receive {
            from: w(1),
            msg: ToCoordinator::Failed {
                task: TaskId::Map(0),
                attempt: 1,
                reason: "a: No such file".into(),
            },
        };
        assert_eq!(
            c.step(failed.clone()),
            [
                Action::JobFailed {
                    reason: "map task 0 failed (worker 1, attempt 1): a: No such file".into()
                },
                exit(3),
            ]
        );
        assert_eq!(c.phase(), Phase::Failed);
        assert_eq!(c.step(failed), []);
        assert_eq!(c.step(request(2, 2, Some((TaskId::Map(1), 2)))), [exit(2)]);
        for _ in 0..200 {
            assert_eq!(c.step(Input::Tick), []);
        }
    }

    #[test]
    fn no_input_files_means_reduce_only() {
        let mut c = coordinator(&[], 1);
        assert_eq!(c.phase(), Phase::Reduce);
        let reduce = Task::Reduce { index: 0, n_map: 0 };
        assert_eq!(c.step(request(1, 1, None)), [assign(1, 1, 1, reduce)]);
        assert_eq!(
            c.step(request(1, 2, Some((TaskId::Reduce(0), 1)))),
            [Action::JobDone, exit(1)]
        );
    }

    #[test]
    fn invalid_configs_are_errors() {
        let bad = CoordinatorConfig {
            n_reduce: 0,
            ..CoordinatorConfig::default()
        };
        assert_eq!(
            Coordinator::new(bad, vec![]).unwrap_err(),
            ConfigError::NoReduceTasks
        );
        let bad = CoordinatorConfig {
            task_timeout_ticks: 0,
            ..CoordinatorConfig::default()
        };
        assert!(Coordinator::new(bad, vec![]).is_err());
    }

    #[test]
    fn confused_messages_are_ignored() {
        let mut c = coordinator(&["a"], 2);
        c.step(request(1, 1, None));
        // A reduce reported during the map phase, an unknown task, a failure of an unknown
        // task: none may change the job.
        c.step(request(2, 1, Some((TaskId::Reduce(0), 7))));
        c.step(request(3, 1, Some((TaskId::Map(42), 7))));
        c.step(Input::Receive {
            from: w(3),
            msg: ToCoordinator::Failed {
                task: TaskId::Reduce(99),
                attempt: 0,
                reason: String::new(),
            },
        });
        let p = c.progress();
        assert_eq!((p.phase, p.maps_done, p.reduces_done), (Phase::Map, 0, 0));
        assert_eq!(c.stats().ignored_messages, 3);
    }

    /// Arbitrary input sequences never panic, and the counters stay consistent with the
    /// task table.
    #[test]
    fn random_inputs_keep_the_books_consistent() {
        for seed in 0..300 {
            let mut rng = oorandom::Rand64::new(seed);
            let mut c = coordinator(&["a", "b", "c"], 2);
            let mut done_seen = 0;
            for _ in 0..300 {
                let from = rng.rand_range(0..4);
                let task = if rng.rand_range(0..2) == 0 {
                    TaskId::Map(rng.rand_range(0..4) as u32)
                } else {
                    TaskId::Reduce(rng.rand_range(0..3) as u32)
                };
                let input = match rng.rand_range(0..10) {
                    0..=2 => Input::Tick,
                    3..=7 => request(
                        from,
                        rng.rand_range(0..6),
                        (rng.rand_range(0..2) == 0).then_some((task, rng.rand_range(0..5))),
                    ),
                    8 => Input::Disconnected(w(from)),
                    _ => Input::Receive {
                        from: w(from),
                        msg: ToCoordinator::Failed {
                            task,
                            attempt: 1,
                            reason: "x".into(),
                        },
                    },
                };
                for _ in 0..if matches!(input, Input::Tick) { 40 } else { 1 } {
                    done_seen += c
                        .step(input.clone())
                        .iter()
                        .filter(|a| **a == Action::JobDone)
                        .count();
                }
                let slots = match c.phase {
                    Phase::Map => &c.maps,
                    _ => &c.reduces,
                };
                let running = slots
                    .iter()
                    .filter(|s| matches!(s, Slot::Running { .. }))
                    .count();
                let idle: BTreeSet<u32> = slots
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| **s == Slot::Idle)
                    .map(|(i, _)| i as u32)
                    .collect();
                if matches!(c.phase, Phase::Map | Phase::Reduce) {
                    assert_eq!(c.running, running, "seed {seed}");
                    assert_eq!(c.idle, idle, "seed {seed}");
                }
            }
            assert!(done_seen <= 1);
            assert_eq!(done_seen == 1, c.is_done());
        }
    }
}
