//! The coordinator process: accepts workers, drives [`stepwise_mr::Coordinator`], shows
//! progress.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use stepwise_mr::coordinator::{Action, Input, Progress, Stats};
use stepwise_mr::{Coordinator, CoordinatorConfig, TICK_MILLIS, WorkerId};

use super::wire::{
    Addr, Conn, Down, JobSpec, Listener, PROTOCOL_VERSION, Up, read_frame, write_frame,
};

/// What the coordinator process runs.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Input files, one map task each, named as given.
    pub files: Vec<String>,
    /// Number of reduce tasks.
    pub n_reduce: u32,
    /// Reassign a task after this long.
    pub task_timeout: Duration,
    /// After the job is over, wait at most this long for workers to disconnect.
    pub linger: Duration,
    /// The job description sent to workers.
    pub job: JobSpec,
    /// Show a progress bar (only drawn if stderr is a terminal).
    pub progress: bool,
}

/// How the job ended.
#[derive(Debug, Clone)]
pub struct Summary {
    /// `Ok` if every output is final, else the failure.
    pub outcome: Result<(), String>,
    /// From start to the end of the job.
    pub elapsed: Duration,
    /// Final progress counters.
    pub progress: Progress,
    /// Coordinator counters.
    pub stats: Stats,
    /// Worker connections accepted.
    pub connections: u64,
}

/// Hooks for a coordinator that also manages its workers (`mapreduce run`).
pub trait Supervisor {
    /// Called every tick; `over` once the job is done or failed. An error aborts the job.
    fn tick(&mut self, over: bool) -> Result<()>;
}

enum Event {
    Connected(WorkerId, Conn),
    Msg(WorkerId, Up),
    Closed(WorkerId),
}

/// Converts a duration to ticks, at least 1.
pub fn ticks(d: Duration) -> u64 {
    (d.as_millis() as u64).div_ceil(TICK_MILLIS).max(1)
}

/// Runs the coordinator on `listener` until the job is over and the workers are gone (or
/// `linger` has passed).
pub fn serve(
    listener: Listener,
    options: ServerOptions,
    mut supervisor: Option<&mut dyn Supervisor>,
) -> Result<Summary> {
    let config = CoordinatorConfig {
        n_reduce: options.n_reduce,
        task_timeout_ticks: ticks(options.task_timeout),
    };
    let mut coordinator = Coordinator::new(config, options.files.clone())?;
    let local = listener.local_addr()?;
    let (events, rx) = mpsc::channel();
    {
        let job = options.job.clone();
        std::thread::Builder::new()
            .name("accept".into())
            .spawn(move || accept_loop(listener, job, events))
            .context("spawn the accept thread")?;
    }
    let bar = progress_bar(&options, &coordinator.progress());
    let start = Instant::now();
    let tick = Duration::from_millis(TICK_MILLIS);
    let mut next_tick = start + tick;
    let mut writers: BTreeMap<WorkerId, Conn> = BTreeMap::new();
    let mut actions = Vec::new();
    let mut outcome: Option<Result<(), String>> = None;
    let mut over_at: Option<Instant> = None;
    let mut elapsed = Duration::ZERO;
    let mut connections = 0;
    let mut shown = coordinator.progress();
    loop {
        let now = Instant::now();
        if now >= next_tick {
            coordinator.step_into(Input::Tick, &mut actions);
            next_tick += tick;
            if let Some(s) = supervisor.as_deref_mut()
                && let Err(e) = s.tick(outcome.is_some())
            {
                remove_socket(&local);
                return Err(e);
            }
        } else {
            match rx.recv_timeout(next_tick - now) {
                Ok(Event::Connected(id, conn)) => {
                    connections += 1;
                    writers.insert(id, conn);
                }
                Ok(Event::Msg(id, Up::Msg(msg))) => {
                    coordinator.step_into(Input::Receive { from: id, msg }, &mut actions)
                }
                Ok(Event::Closed(id)) => {
                    writers.remove(&id);
                    coordinator.step_into(Input::Disconnected(id), &mut actions);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    bail!("the accept thread stopped (listener failed)")
                }
            }
        }
        for action in actions.drain(..) {
            match action {
                Action::Send { to, msg } => {
                    let failed = match writers.get_mut(&to) {
                        Some(conn) => write_frame(conn, &Down::Msg(msg)).is_err(),
                        None => false,
                    };
                    if failed {
                        // Its reader sees the connection close and reports Disconnected.
                        if let Some(conn) = writers.remove(&to) {
                            conn.shutdown();
                        }
                    }
                }
                Action::JobDone => {
                    outcome = Some(Ok(()));
                    over_at = Some(Instant::now());
                    elapsed = start.elapsed();
                }
                Action::JobFailed { reason } => {
                    outcome = Some(Err(reason));
                    over_at = Some(Instant::now());
                    elapsed = start.elapsed();
                }
            }
        }
        let progress = coordinator.progress();
        if progress != shown {
            shown = progress;
            update_bar(&bar, &progress);
        }
        if over_at.is_some_and(|at| writers.is_empty() || at.elapsed() >= options.linger) {
            break;
        }
    }
    for conn in writers.values() {
        conn.shutdown();
    }
    remove_socket(&local);
    bar.finish_and_clear();
    Ok(Summary {
        outcome: outcome.unwrap_or(Ok(())),
        elapsed,
        progress: coordinator.progress(),
        stats: coordinator.stats(),
        connections,
    })
}

fn remove_socket(addr: &Addr) {
    if let Addr::Unix(path) = addr {
        let _ = std::fs::remove_file(path);
    }
}

fn accept_loop(listener: Listener, job: JobSpec, events: mpsc::Sender<Event>) {
    let mut next_id = 1;
    loop {
        let conn = match listener.accept() {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let id = WorkerId(next_id);
        next_id += 1;
        let mut writer = conn;
        let reader = match writer.try_clone() {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("connection setup failed: {e}");
                continue;
            }
        };
        let hello = Down::Hello {
            version: PROTOCOL_VERSION,
            job: job.clone(),
        };
        if let Err(e) = write_frame(&mut writer, &hello) {
            tracing::warn!("handshake with worker {} failed: {e:#}", id.0);
            continue;
        }
        if events.send(Event::Connected(id, writer)).is_err() {
            return;
        }
        let events = events.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("worker-{}", id.0))
            .spawn(move || read_loop(id, reader, events));
        if let Err(e) = spawned {
            tracing::warn!("cannot spawn a reader thread: {e}");
        }
    }
}

fn read_loop(id: WorkerId, mut reader: Conn, events: mpsc::Sender<Event>) {
    loop {
        match read_frame::<Up>(&mut reader) {
            Ok(Some(msg)) => {
                if events.send(Event::Msg(id, msg)).is_err() {
                    return;
                }
            }
            Ok(None) => break,
            Err(e) => {
                tracing::warn!("worker {}: {e:#}; dropping the connection", id.0);
                reader.shutdown();
                break;
            }
        }
    }
    let _ = events.send(Event::Closed(id));
}

fn progress_bar(options: &ServerOptions, p: &Progress) -> ProgressBar {
    if !options.progress || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(
        Some((p.maps_total + p.reduces_total) as u64),
        ProgressDrawTarget::stderr(),
    );
    if let Ok(style) = ProgressStyle::with_template("{elapsed_precise} [{bar:20}] {msg}") {
        bar.set_style(style.progress_chars("=> "));
    }
    update_bar(&bar, p);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn update_bar(bar: &ProgressBar, p: &Progress) {
    bar.set_position((p.maps_done + p.reduces_done) as u64);
    bar.set_message(format!(
        "maps {}/{}, reduces {}/{}, {} worker{} alive",
        p.maps_done,
        p.maps_total,
        p.reduces_done,
        p.reduces_total,
        p.workers,
        if p.workers == 1 { "" } else { "s" }
    ));
}

/// Deletes the intermediate files `mr-X-Y` and leftover temporary files in `dir`.
pub fn remove_intermediate(dir: &std::path::Path, n_map: usize, n_reduce: u32) {
    for x in 0..n_map {
        for y in 0..n_reduce {
            let _ =
                std::fs::remove_file(dir.join(stepwise_mr::worker::intermediate_name(x as u32, y)));
        }
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(".tmp-") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}
