//! Configuration of the coordinator and the worker. Times are in ticks; the adapters
//! in this project tick every 100 ms ([`TICK_MILLIS`]).

use thiserror::Error;

/// The tick length the defaults assume, in milliseconds.
pub const TICK_MILLIS: u64 = 100;

/// Coordinator settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoordinatorConfig {
    /// Number of reduce tasks (the lab's `nReduce`), at least 1. Default 10.
    pub n_reduce: u32,
    /// A task not finished this many ticks after it was assigned is given to another
    /// worker. Default 100 (10 s, the lab's timeout), at least 1.
    pub task_timeout_ticks: u64,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            n_reduce: 10,
            task_timeout_ticks: 100,
        }
    }
}

/// Worker settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerConfig {
    /// Seed of the worker's RNG (used only by fault injection). Give each worker its own.
    pub seed: u64,
    /// While waiting for a task, resend the request every this many ticks (it may have been
    /// lost). Default 10 (1 s), at least 1.
    pub retry_ticks: u64,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            seed: 0,
            retry_ticks: 10,
        }
    }
}

/// An invalid configuration or job.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// `n_reduce` is 0.
    #[error("the number of reduce tasks must be at least 1")]
    NoReduceTasks,
    /// A tick count is 0.
    #[error("{0} must be at least 1 tick")]
    ZeroTicks(&'static str),
    /// More input files than map task numbers.
    #[error("too many input files ({0}); at most {max}", max = u32::MAX)]
    TooManyFiles(usize),
}

impl CoordinatorConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.n_reduce == 0 {
            return Err(ConfigError::NoReduceTasks);
        }
        if self.task_timeout_ticks == 0 {
            return Err(ConfigError::ZeroTicks("task_timeout_ticks"));
        }
        Ok(())
    }
}

impl WorkerConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.retry_ticks == 0 {
            return Err(ConfigError::ZeroTicks("retry_ticks"));
        }
        Ok(())
    }
}
