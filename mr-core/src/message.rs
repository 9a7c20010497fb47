//! Messages between workers and the coordinator (serde types; encode them with postcard).
//!
//! Wire rules: no `skip_serializing_if`, `flatten` or `untagged`; the adapter puts a
//! version in its connection handshake.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A worker, as the coordinator's adapter names it (for example, one per connection).
/// A restarted worker process should get a new id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct WorkerId(pub u64);

/// A task: map task `X` (one per input file) or reduce task `Y` (one per partition).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TaskId {
    /// Map task for input file number `X`.
    Map(u32),
    /// Reduce task for partition `Y`.
    Reduce(u32),
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskId::Map(x) => write!(f, "map task {x}"),
            TaskId::Reduce(y) => write!(f, "reduce task {y}"),
        }
    }
}

/// What a worker must do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Task {
    /// Map input `file` (as named on the coordinator's command line) into `n_reduce`
    /// intermediate files `mr-<index>-<Y>`.
    Map {
        /// Map task number `X`.
        index: u32,
        /// The input file.
        file: String,
        /// Number of reduce partitions.
        n_reduce: u32,
    },
    /// Reduce partition `index` from `mr-0-<index>` .. `mr-<n_map-1>-<index>` into
    /// `mr-out-<index>`.
    Reduce {
        /// Reduce task number `Y`.
        index: u32,
        /// Number of map tasks.
        n_map: u32,
    },
}

impl Task {
    /// The task's id.
    pub fn id(&self) -> TaskId {
        match *self {
            Task::Map { index, .. } => TaskId::Map(index),
            Task::Reduce { index, .. } => TaskId::Reduce(index),
        }
    }
}

/// A finished task, reported in the worker's next request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finished {
    /// The task.
    pub task: TaskId,
    /// The attempt that finished it (from [`ToWorker::Assign`]).
    pub attempt: u64,
}

/// Worker to coordinator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToCoordinator {
    /// "I am idle and want a task; I finished `finished`, if any, and its output files are
    /// in place." A worker resends the same request (same `id`) while it waits; a new
    /// request has a larger `id`.
    Request {
        /// Per-worker request number, increasing.
        id: u64,
        /// The task this worker just finished.
        finished: Option<Finished>,
    },
    /// The worker cannot complete the task (unreadable input, failed application): the
    /// job fails with `reason`.
    Failed {
        /// The task.
        task: TaskId,
        /// Its attempt.
        attempt: u64,
        /// What went wrong.
        reason: String,
    },
}

/// Coordinator to worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToWorker {
    /// Run `task`: the answer to request `request`. `attempt` is unique per assignment in
    /// the job (workers use it to name their temporary files).
    Assign {
        /// The request this answers.
        request: u64,
        /// Unique number of this assignment.
        attempt: u64,
        /// The task.
        task: Task,
    },
    /// The job is over (done or failed): exit.
    Exit,
}
