//! The worker process: connects to the coordinator, drives [`stepwise_mr::Worker`], and
//! carries out its file actions.

use std::collections::VecDeque;
use std::fs;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use stepwise_mr::worker::{Action, ExitReason, Input};
use stepwise_mr::{TICK_MILLIS, Worker, WorkerConfig};

use super::apps::{self, BoxedApp};
use super::wire::{Addr, Conn, Down, PROTOCOL_VERSION, Up, read_frame, write_frame};

/// How a worker process ended (errors are `Err`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerOutcome {
    /// The coordinator said the job is over.
    JobOver,
    /// The coordinator went away (the lab: assume the job is done).
    CoordinatorGone,
    /// Fault injection (the `crash` app): the process must exit at once, with status 1.
    Crashed,
}

/// Connects to the coordinator at `addr` and works until the job is over.
pub fn run_worker(addr: &Addr, connect_patience: Duration, seed: u64) -> Result<WorkerOutcome> {
    let conn = Conn::connect(addr, connect_patience)?;
    let reader = conn.try_clone().context("clone the connection")?;
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("coordinator".into())
        .spawn(move || read_loop(reader, tx))
        .context("spawn the reader thread")?;
    let job = match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(Some(Down::Hello { version, job })) if version == PROTOCOL_VERSION => job,
        Ok(Some(Down::Hello { version, .. })) => bail!(
            "the coordinator at {addr} speaks protocol version {version}; this worker speaks {PROTOCOL_VERSION}"
        ),
        Ok(_) => bail!("the coordinator at {addr} did not greet (not a mapreduce coordinator?)"),
        Err(_) => bail!("no greeting from the coordinator at {addr} within 10 s"),
    };
    let output_dir = PathBuf::from(&job.output_dir);
    let app = apps::build(&job, &output_dir)?;
    let worker = Worker::new(
        app,
        WorkerConfig {
            seed,
            ..WorkerConfig::default()
        },
    )?;
    let mut process = Process {
        worker,
        conn,
        input_dir: PathBuf::from(&job.input_dir),
        output_dir,
    };
    process.run(rx)
}

fn read_loop(mut reader: Conn, tx: mpsc::Sender<Option<Down>>) {
    loop {
        match read_frame::<Down>(&mut reader) {
            Ok(Some(msg)) => {
                if tx.send(Some(msg)).is_err() {
                    return;
                }
            }
            Ok(None) => break,
            Err(e) => {
                tracing::warn!("coordinator connection: {e:#}");
                break;
            }
        }
    }
    let _ = tx.send(None);
}

struct Process {
    worker: Worker<BoxedApp>,
    conn: Conn,
    input_dir: PathBuf,
    output_dir: PathBuf,
}

impl Process {
    fn run(&mut self, rx: mpsc::Receiver<Option<Down>>) -> Result<WorkerOutcome> {
        let mut inputs = VecDeque::from([Input::Start]);
        let tick = Duration::from_millis(TICK_MILLIS);
        let mut next_tick = Instant::now() + tick;
        loop {
            while let Some(input) = inputs.pop_front() {
                let actions = self.worker.step(input);
                if let Some(outcome) = self.execute(actions, &mut inputs)? {
                    return Ok(outcome);
                }
            }
            let now = Instant::now();
            if now >= next_tick {
                // Ticks measure waiting; after a long task, do not replay the missed ones.
                inputs.push_back(Input::Tick);
                next_tick = now + tick;
                continue;
            }
            match rx.recv_timeout(next_tick - now) {
                Ok(Some(Down::Msg(msg))) => inputs.push_back(Input::Receive(msg)),
                Ok(Some(Down::Hello { .. })) => {}
                Ok(None) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                    inputs.push_back(Input::CoordinatorGone)
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
        }
    }

    /// Carries out `actions` in order; on the first failure, skips the rest and queues
    /// `IoFailed` (or `CoordinatorGone` for a failed send).
    fn execute(
        &mut self,
        actions: Vec<Action>,
        inputs: &mut VecDeque<Input>,
    ) -> Result<Option<WorkerOutcome>> {
        for action in actions {
            let result = match action {
                Action::Send(msg) => {
                    if write_frame(&mut self.conn, &Up::Msg(msg)).is_err() {
                        inputs.push_back(Input::CoordinatorGone);
                        return Ok(None);
                    }
                    Ok(())
                }
                Action::ReadInput { path } => {
                    let full = self.input_dir.join(&path);
                    read(full, path, inputs)
                }
                Action::ReadFile { path } => {
                    let full = self.output_dir.join(&path);
                    read(full, path, inputs)
                }
                Action::WriteFile { path, data } => {
                    fs::write(self.output_dir.join(&path), &data).map_err(|e| (path, e.to_string()))
                }
                Action::Rename { from, to } => {
                    fs::rename(self.output_dir.join(&from), self.output_dir.join(&to))
                        .map_err(|e| (format!("rename {from} to {to}"), e.to_string()))
                }
                Action::Crash => return Ok(Some(WorkerOutcome::Crashed)),
                Action::Exit(ExitReason::JobOver) => return Ok(Some(WorkerOutcome::JobOver)),
                Action::Exit(ExitReason::CoordinatorGone) => {
                    return Ok(Some(WorkerOutcome::CoordinatorGone));
                }
                Action::Exit(ExitReason::Failed(reason)) => bail!("task failed: {reason}"),
            };
            if let Err((path, error)) = result {
                inputs.push_back(Input::IoFailed { path, error });
                return Ok(None);
            }
        }
        Ok(None)
    }
}

fn read(full: PathBuf, path: String, inputs: &mut VecDeque<Input>) -> Result<(), (String, String)> {
    match fs::read(&full) {
        Ok(contents) => {
            inputs.push_back(Input::Read {
                path,
                contents: Bytes::from(contents),
            });
            Ok(())
        }
        Err(e) => Err((full.display().to_string(), e.to_string())),
    }
}
