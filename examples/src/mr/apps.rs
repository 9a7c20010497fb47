//! Applications by name: the core's pure ones, plus the lab's timing test applications and
//! the streaming application, which need clocks, processes and files.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Result, bail};
use stepwise_mr::{App, AppError, Emitter, apps as core_apps};

use super::streaming::Streaming;
use super::wire::JobSpec;

/// An application the worker threads can share.
pub type BoxedApp = Box<dyn App + Send + Sync>;

/// Every application name `--app` accepts.
pub const NAMES: &[&str] = &[
    "wc",
    "indexer",
    "nocrash",
    "crash",
    "mtiming",
    "rtiming",
    "jobcount",
    "early_exit",
    "streaming",
];

/// Builds the job's application. `dir` is the job's work directory (the timing apps keep
/// their marker files there).
pub fn build(job: &JobSpec, dir: &Path) -> Result<BoxedApp> {
    let scale = job.time_scale;
    if scale.is_nan() || scale < 0.0 || !scale.is_finite() {
        bail!("time scale must be a finite number >= 0, not {scale}");
    }
    if job.app != "streaming" && (job.mapper.is_some() || job.reducer.is_some()) {
        bail!("--mapper and --reducer are only for --app streaming");
    }
    if let Some(app) = core_apps::by_name(&job.app) {
        if job.app == "crash" && scale != 1.0 {
            // Stalls scale with the other lab timings.
            let mut plan = stepwise_mr::FaultPlan::LAB;
            plan.max_stall_ticks = ((plan.max_stall_ticks as f64 * scale).round() as u64).max(1);
            return Ok(Box::new(core_apps::Crash::with_plan(plan)));
        }
        return Ok(app);
    }
    let timing = Timing {
        dir: dir.to_path_buf(),
        scale,
    };
    Ok(match job.app.as_str() {
        "mtiming" => Box::new(MapTiming(timing)),
        "rtiming" => Box::new(ReduceTiming(timing)),
        "jobcount" => Box::new(JobCount {
            timing,
            maps: AtomicU64::new(0),
            rng: Mutex::new(oorandom::Rand64::new(process_seed())),
        }),
        "early_exit" => Box::new(EarlyExit(timing)),
        "streaming" => match (&job.mapper, &job.reducer) {
            (Some(mapper), Some(reducer)) => Box::new(Streaming::new(mapper, reducer)),
            _ => bail!("--app streaming needs --mapper CMD and --reducer CMD"),
        },
        other => bail!(
            "unknown application `{other}`; known applications: {}",
            NAMES.join(", ")
        ),
    })
}

/// What the timing apps share: where their marker files go, and how much to scale sleeps.
struct Timing {
    dir: PathBuf,
    scale: f64,
}

impl Timing {
    fn sleep(&self, lab: Duration) {
        std::thread::sleep(lab.mul_f64(self.scale));
    }

    /// The lab's `nparallel`: announce this process in a marker file, count the live
    /// processes that announced themselves for `phase`, sleep 1 s, withdraw.
    fn nparallel(&self, phase: &str) -> Result<u64, AppError> {
        let pid = std::process::id();
        let prefix = format!("mr-worker-{phase}-");
        let marker = self.dir.join(format!("{prefix}{pid}"));
        fs::write(&marker, b"").map_err(|e| io_error(&marker, e))?;
        let mut live = 0;
        let entries = fs::read_dir(&self.dir).map_err(|e| io_error(&self.dir, e))?;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(other) = name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
                continue;
            };
            if other.parse::<u32>().is_ok_and(process_alive) {
                live += 1;
            }
        }
        self.sleep(Duration::from_secs(1));
        fs::remove_file(&marker).map_err(|e| io_error(&marker, e))?;
        Ok(live)
    }
}

/// Whether process `pid` is alive (the lab's `kill(pid, 0)`). Linux: `/proc/<pid>`; where
/// there is no `/proc`, every marker counts as alive.
fn process_alive(pid: u32) -> bool {
    let proc = Path::new("/proc");
    !proc.is_dir() || proc.join(pid.to_string()).exists()
}

fn io_error(path: &Path, e: std::io::Error) -> AppError {
    AppError(format!("{}: {e}", path.display()))
}

/// A seed that differs between processes and runs (for the impure apps and workers).
pub fn process_seed() -> u128 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    nanos ^ (u128::from(std::process::id()) << 64)
}

fn unix_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The lab's `mtiming`: map records its start time and how many map workers run at once.
struct MapTiming(Timing);

impl App for MapTiming {
    fn map(&self, _: &str, _: &[u8], out: &mut Emitter<'_>) -> Result<(), AppError> {
        let pid = std::process::id();
        let start = unix_seconds();
        let n = self.0.nparallel("map")?;
        out.emit(
            format!("times-{pid}").as_bytes(),
            format!("{start:.1}").as_bytes(),
        );
        out.emit(
            format!("parallel-{pid}").as_bytes(),
            n.to_string().as_bytes(),
        );
        Ok(())
    }

    fn reduce(&self, key: &[u8], values: &[&[u8]], out: &mut Vec<u8>) -> Result<(), AppError> {
        // Values sorted and joined with spaces, as nocrash's reduce does.
        core_apps::NoCrash.reduce(key, values, out)
    }
}

/// The lab's `rtiming`: each reduce reports how many reduce workers run at once.
struct ReduceTiming(Timing);

impl App for ReduceTiming {
    fn map(&self, _: &str, _: &[u8], out: &mut Emitter<'_>) -> Result<(), AppError> {
        for key in b'a'..=b'j' {
            out.emit(&[key], b"1");
        }
        Ok(())
    }

    fn reduce(&self, _: &[u8], _: &[&[u8]], out: &mut Vec<u8>) -> Result<(), AppError> {
        let n = self.0.nparallel("reduce")?;
        out.extend_from_slice(n.to_string().as_bytes());
        Ok(())
    }
}

/// The lab's `jobcount`: every map execution leaves a marker file and takes 2-5 s; reduce
/// counts the markers, so the output shows how many times map tasks ran.
struct JobCount {
    timing: Timing,
    maps: AtomicU64,
    rng: Mutex<oorandom::Rand64>,
}

impl App for JobCount {
    fn map(&self, _: &str, _: &[u8], out: &mut Emitter<'_>) -> Result<(), AppError> {
        let pid = std::process::id();
        let k = self.maps.fetch_add(1, Ordering::Relaxed);
        let marker = self
            .timing
            .dir
            .join(format!("mr-worker-jobcount-{pid}-{k}"));
        fs::write(&marker, b"").map_err(|e| io_error(&marker, e))?;
        let jitter = match self.rng.lock() {
            Ok(mut rng) => rng.rand_range(0..3000),
            Err(_) => 1500,
        };
        self.timing.sleep(Duration::from_millis(2000 + jitter));
        out.emit(b"a", b"x");
        Ok(())
    }

    fn reduce(&self, _: &[u8], _: &[&[u8]], out: &mut Vec<u8>) -> Result<(), AppError> {
        let entries = fs::read_dir(&self.timing.dir).map_err(|e| io_error(&self.timing.dir, e))?;
        let count = entries
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("mr-worker-jobcount")
            })
            .count();
        out.extend_from_slice(count.to_string().as_bytes());
        Ok(())
    }
}

/// The lab's `early_exit`: reduces of keys containing `sherlock` or `tom` take 3 s, so a
/// process that exits before the job is done is caught with output still missing.
struct EarlyExit(Timing);

impl App for EarlyExit {
    fn map(&self, filename: &str, _: &[u8], out: &mut Emitter<'_>) -> Result<(), AppError> {
        out.emit(filename.as_bytes(), b"1");
        Ok(())
    }

    fn reduce(&self, key: &[u8], values: &[&[u8]], out: &mut Vec<u8>) -> Result<(), AppError> {
        let key = String::from_utf8_lossy(key);
        if key.contains("sherlock") || key.contains("tom") {
            self.0.sleep(Duration::from_secs(3));
        }
        out.extend_from_slice(values.len().to_string().as_bytes());
        Ok(())
    }
}
