//! `mapreduce`: the 6.5840 lab 1 MapReduce on stepwise's sans-IO core.
//!
//! ```text
//! mapreduce run --app wc --reduce 10 --workers 2 --output out/ pg-*.txt
//! mapreduce coordinator --listen 127.0.0.1:5840 --app wc --output out/ pg-*.txt
//! mapreduce worker --connect 127.0.0.1:5840
//! mapreduce sequential --app wc --output ref/ pg-*.txt
//! mapreduce gen --bytes 1G --files 16 --output /tmp/corpus
//! ```

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use stepwise_examples::mr::apps::{self, process_seed};
use stepwise_examples::mr::client::{WorkerOutcome, run_worker};
use stepwise_examples::mr::server::{self, ServerOptions, Summary, Supervisor};
use stepwise_examples::mr::units::{parse_bytes, parse_duration};
use stepwise_examples::mr::wire::{Addr, JobSpec, Listener};

#[derive(Parser)]
#[command(
    name = "mapreduce",
    version,
    about = "MapReduce (MIT 6.5840 lab 1) on the sans-IO stepwise-mr core",
    long_about = "MapReduce (MIT 6.5840 lab 1) on the sans-IO stepwise-mr core.\n\n\
        `run` is the easy way: a coordinator and N local worker processes. \
        `coordinator` and `worker` run them separately (start workers in the same machine \
        and file system; they learn the job from the coordinator). `sequential` is the \
        reference implementation. Output: one `key value` line per key in \
        OUTPUT/mr-out-0 .. mr-out-(R-1)."
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a job: a coordinator plus N local worker processes.
    Run(RunArgs),
    /// Run only the coordinator; workers connect to it.
    Coordinator(CoordinatorArgs),
    /// Run one worker for the coordinator at --connect.
    Worker(WorkerArgs),
    /// The reference: run the job in one process, writing OUTPUT/mr-out-0.
    Sequential(SequentialArgs),
    /// Generate a deterministic text corpus (for tests and benchmarks).
    Gen(GenArgs),
}

#[derive(Args)]
struct AppArgs {
    /// Application: wc, indexer, nocrash, crash, mtiming, rtiming, jobcount, early_exit,
    /// streaming.
    #[arg(long, default_value = "wc")]
    app: String,
    /// With --app streaming: shell command run per map task, input file on stdin, emitting
    /// `key<TAB>value` lines.
    #[arg(long, value_name = "CMD")]
    mapper: Option<String>,
    /// With --app streaming: shell command run per reduce task, sorted `key<TAB>value`
    /// lines on stdin, emitting `key<TAB>value` output lines.
    #[arg(long, value_name = "CMD")]
    reducer: Option<String>,
    /// Directory for output (and intermediate) files; created if missing.
    #[arg(long, default_value = ".", value_name = "DIR")]
    output: PathBuf,
}

#[derive(Args)]
struct JobArgs {
    #[command(flatten)]
    app: AppArgs,
    /// Number of reduce tasks (output files).
    #[arg(long = "reduce", default_value_t = 10, value_name = "N")]
    n_reduce: u32,
    /// Give a task to another worker if it is not finished after this long.
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    task_timeout: Duration,
    /// Multiply the lab test apps' sleeps and the crash app's stalls by this (e.g. 0.1 to
    /// run the lab's timing tests ten times faster).
    #[arg(long, default_value_t = 1.0, value_name = "FACTOR")]
    time_scale: f64,
    /// Keep the intermediate files mr-X-Y after the job.
    #[arg(long)]
    keep_intermediate: bool,
    /// No progress bar and no summary line.
    #[arg(long, short)]
    quiet: bool,
    /// Input files, one map task each.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<String>,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    job: JobArgs,
    /// Number of worker processes.
    #[arg(long, default_value_t = 2, value_name = "N")]
    workers: usize,
    /// Coordinator address (HOST:PORT or unix:PATH); port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
    listen: Addr,
    /// Do not replace workers that exit with an error before the job is done.
    #[arg(long)]
    no_respawn: bool,
    /// Give up after replacing this many workers.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    max_respawns: u32,
    /// Base seed of the workers' RNGs (fault injection); random if not given.
    #[arg(long)]
    seed: Option<u64>,
}

#[derive(Args)]
struct CoordinatorArgs {
    #[command(flatten)]
    job: JobArgs,
    /// Address to listen on (HOST:PORT or unix:PATH); port 0 picks a free port. The
    /// address is printed on the first line of stdout.
    #[arg(long, default_value = "127.0.0.1:5840", value_name = "ADDR")]
    listen: Addr,
    /// After the job is over, wait at most this long for workers to disconnect.
    #[arg(long, default_value = "1s", value_parser = parse_duration, value_name = "DURATION")]
    linger: Duration,
}

#[derive(Args)]
struct WorkerArgs {
    /// Coordinator address (HOST:PORT or unix:PATH).
    #[arg(long, default_value = "127.0.0.1:5840", value_name = "ADDR")]
    connect: Addr,
    /// Keep retrying a refused connection for this long.
    #[arg(long, default_value = "2s", value_parser = parse_duration, value_name = "DURATION")]
    connect_timeout: Duration,
    /// Seed of the worker's RNG (fault injection); random if not given.
    #[arg(long)]
    seed: Option<u64>,
}

#[derive(Args)]
struct SequentialArgs {
    #[command(flatten)]
    app: AppArgs,
    /// Do not use the application's combiner (the lab's strict reference).
    #[arg(long)]
    no_combiner: bool,
    /// No summary line.
    #[arg(long, short)]
    quiet: bool,
    /// Input files.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<String>,
}

#[derive(Args)]
struct GenArgs {
    /// Total size, e.g. 100M or 1G.
    #[arg(long, value_parser = parse_bytes, value_name = "SIZE")]
    bytes: u64,
    /// Number of files to split it into.
    #[arg(long, default_value_t = 8, value_name = "N")]
    files: u32,
    /// Seed (same seed, same text).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Directory to write into (created if missing).
    #[arg(long, value_name = "DIR")]
    output: PathBuf,
    /// File names are PREFIX-NN.txt.
    #[arg(long, default_value = "gen", value_name = "PREFIX")]
    prefix: String,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Run(args) => run(args),
        Cmd::Coordinator(args) => coordinator(args),
        Cmd::Worker(args) => worker(args),
        Cmd::Sequential(args) => sequential(args),
        Cmd::Gen(args) => gen_corpus(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mapreduce: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Checks that every input is a readable file; returns their total size.
fn check_inputs(files: &[String]) -> Result<u64> {
    let mut total = 0;
    for file in files {
        let meta =
            fs::metadata(file).with_context(|| format!("cannot read input file `{file}`"))?;
        if !meta.is_file() {
            bail!("input `{file}` is not a regular file");
        }
        fs::File::open(file).with_context(|| format!("cannot read input file `{file}`"))?;
        total += meta.len();
    }
    Ok(total)
}

/// Creates the output directory; returns its absolute path.
fn output_dir(dir: &Path) -> Result<PathBuf> {
    fs::create_dir_all(dir)
        .with_context(|| format!("cannot create output directory `{}`", dir.display()))?;
    dir.canonicalize()
        .with_context(|| format!("output directory `{}`", dir.display()))
}

/// Validates the job and describes it for the workers; returns it with the input size.
fn prepare(job: &JobArgs) -> Result<(JobSpec, u64)> {
    if job.n_reduce == 0 {
        bail!("--reduce must be at least 1");
    }
    let bytes = check_inputs(&job.files)?;
    let out = output_dir(&job.app.output)?;
    let spec = JobSpec {
        app: job.app.app.clone(),
        mapper: job.app.mapper.clone(),
        reducer: job.app.reducer.clone(),
        time_scale: job.time_scale,
        output_dir: out.display().to_string(),
        input_dir: std::env::current_dir()
            .context("current directory")?
            .display()
            .to_string(),
    };
    // Fail here, not in every worker, if the application cannot be built.
    apps::build(&spec, &out)?;
    Ok((spec, bytes))
}

fn server_options(job: &JobArgs, spec: JobSpec, linger: Duration) -> ServerOptions {
    ServerOptions {
        files: job.files.clone(),
        n_reduce: job.n_reduce,
        task_timeout: job.task_timeout,
        linger,
        job: spec,
        progress: !job.quiet,
    }
}

/// Prints the one-line summary; returns the exit code.
fn report(job: &JobArgs, summary: &Summary, bytes: u64, workers: u64) -> ExitCode {
    match &summary.outcome {
        Ok(()) => {
            if !job.quiet {
                let secs = summary.elapsed.as_secs_f64();
                let s = summary.stats;
                println!(
                    "mapreduce: {} done: {} maps, {} reduces, {} in {:.2} s ({}/s), {} worker{}, {} task{} reassigned; output in {}",
                    job.app.app,
                    summary.progress.maps_total,
                    summary.progress.reduces_total,
                    human_bytes(bytes as f64),
                    secs,
                    human_bytes(bytes as f64 / secs.max(1e-9)),
                    workers,
                    if workers == 1 { "" } else { "s" },
                    s.timed_out + s.abandoned,
                    if s.timed_out + s.abandoned == 1 {
                        ""
                    } else {
                        "s"
                    },
                    job.app.output.display(),
                );
            }
            ExitCode::SUCCESS
        }
        Err(reason) => {
            eprintln!("mapreduce: error: job failed: {reason}");
            ExitCode::FAILURE
        }
    }
}

fn human_bytes(n: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut n = n;
    let mut unit = 0;
    while n >= 1024.0 && unit + 1 < UNITS.len() {
        n /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n:.0} B")
    } else {
        format!("{n:.1} {}", UNITS[unit])
    }
}

fn coordinator(args: CoordinatorArgs) -> Result<ExitCode> {
    let (spec, bytes) = prepare(&args.job)?;
    let out = PathBuf::from(&spec.output_dir);
    let listener = Listener::bind(&args.listen)?;
    println!(
        "mapreduce coordinator listening on {}",
        listener.local_addr()?
    );
    std::io::stdout().flush()?;
    let summary = server::serve(listener, server_options(&args.job, spec, args.linger), None)?;
    if !args.job.keep_intermediate {
        server::remove_intermediate(&out, args.job.files.len(), args.job.n_reduce);
    }
    Ok(report(&args.job, &summary, bytes, summary.connections))
}

fn worker(args: WorkerArgs) -> Result<ExitCode> {
    let seed = args.seed.unwrap_or(process_seed() as u64);
    match run_worker(&args.connect, args.connect_timeout, seed)? {
        WorkerOutcome::JobOver | WorkerOutcome::CoordinatorGone => Ok(ExitCode::SUCCESS),
        // The lab's crash app exits with status 1, at once.
        WorkerOutcome::Crashed => std::process::exit(1),
    }
}

/// The worker processes of `mapreduce run`: started, watched and replaced when they crash.
struct Workers {
    exe: PathBuf,
    addr: Addr,
    seed: u64,
    spawned: u64,
    children: Vec<Child>,
    respawn: bool,
    respawns_left: u32,
}

impl Workers {
    fn spawn(&mut self) -> Result<()> {
        let child = Command::new(&self.exe)
            .arg("worker")
            .arg("--connect")
            .arg(self.addr.to_string())
            .arg("--seed")
            .arg(self.seed.wrapping_add(self.spawned).to_string())
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start worker `{}`", self.exe.display()))?;
        self.spawned += 1;
        self.children.push(child);
        Ok(())
    }

    fn kill_all(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.children.clear();
    }

    /// Waits for every worker to exit, killing those still running at `deadline`.
    fn wait_all(&mut self, deadline: Instant) {
        while !self.children.is_empty() && Instant::now() < deadline {
            self.children
                .retain_mut(|c| matches!(c.try_wait(), Ok(None)));
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill_all();
    }
}

impl Supervisor for Workers {
    fn tick(&mut self, over: bool) -> Result<()> {
        let mut failed = 0;
        self.children.retain_mut(|child| match child.try_wait() {
            Ok(Some(status)) => {
                if !status.success() {
                    failed += 1;
                }
                false
            }
            Ok(None) => true,
            Err(_) => false,
        });
        if over {
            return Ok(());
        }
        for _ in 0..failed {
            if !self.respawn {
                continue;
            }
            if self.respawns_left == 0 {
                bail!(
                    "workers keep failing; gave up after replacing {} of them",
                    self.spawned
                );
            }
            self.respawns_left -= 1;
            self.spawn()?;
        }
        if self.children.is_empty() {
            bail!("every worker exited before the job was done");
        }
        Ok(())
    }
}

fn run(args: RunArgs) -> Result<ExitCode> {
    if args.workers == 0 {
        bail!("--workers must be at least 1");
    }
    let (spec, bytes) = prepare(&args.job)?;
    let out = PathBuf::from(&spec.output_dir);
    let listener = Listener::bind(&args.listen)?;
    let mut workers = Workers {
        exe: std::env::current_exe().context("locate the mapreduce executable")?,
        addr: listener.local_addr()?,
        seed: args.seed.unwrap_or(process_seed() as u64),
        spawned: 0,
        children: Vec::new(),
        respawn: !args.no_respawn,
        respawns_left: args.max_respawns,
    };
    for _ in 0..args.workers {
        if let Err(e) = workers.spawn() {
            workers.kill_all();
            return Err(e);
        }
    }
    // Idle workers exit when told; one still busy with a duplicate task (a timed-out
    // straggler) sees the coordinator close after the linger and exits.
    let options = server_options(&args.job, spec, Duration::from_secs(1));
    let summary = server::serve(listener, options, Some(&mut workers));
    workers.wait_all(Instant::now() + Duration::from_secs(30));
    let summary = summary?;
    if !args.job.keep_intermediate {
        server::remove_intermediate(&out, args.job.files.len(), args.job.n_reduce);
    }
    Ok(report(&args.job, &summary, bytes, workers.spawned))
}

fn sequential(args: SequentialArgs) -> Result<ExitCode> {
    let bytes = check_inputs(&args.files)?;
    let out = output_dir(&args.app.output)?;
    let spec = JobSpec {
        app: args.app.app.clone(),
        mapper: args.app.mapper.clone(),
        reducer: args.app.reducer.clone(),
        time_scale: 1.0,
        output_dir: out.display().to_string(),
        input_dir: String::new(),
    };
    let app = apps::build(&spec, &out)?;
    let start = Instant::now();
    // Inputs are read one at a time and dropped once mapped.
    let mut read_error = None;
    let inputs = args.files.iter().map_while(|name| match fs::read(name) {
        Ok(contents) => Some((name.as_str(), contents)),
        Err(e) => {
            read_error = Some(anyhow::Error::new(e).context(format!("cannot read `{name}`")));
            None
        }
    });
    let output = stepwise_mr::sequential(&app, inputs, !args.no_combiner)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some(e) = read_error {
        return Err(e);
    }
    let temp = out.join(".tmp-sequential-mr-out-0");
    fs::write(&temp, &output).with_context(|| format!("write {}", temp.display()))?;
    fs::rename(&temp, out.join("mr-out-0")).context("rename the output into place")?;
    if !args.quiet {
        let secs = start.elapsed().as_secs_f64();
        println!(
            "mapreduce: {} sequential done: {} files, {} in {:.2} s ({}/s); output in {}",
            args.app.app,
            args.files.len(),
            human_bytes(bytes as f64),
            secs,
            human_bytes(bytes as f64 / secs.max(1e-9)),
            args.app.output.join("mr-out-0").display(),
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn gen_corpus(args: GenArgs) -> Result<ExitCode> {
    if args.files == 0 {
        bail!("--files must be at least 1");
    }
    fs::create_dir_all(&args.output)
        .with_context(|| format!("cannot create `{}`", args.output.display()))?;
    let per_file = args.bytes / u64::from(args.files);
    let extra = args.bytes % u64::from(args.files);
    let mut buf = Vec::new();
    for i in 0..args.files {
        let size = per_file + u64::from(u64::from(i) < extra);
        let size = usize::try_from(size).context("file too large for this platform")?;
        buf.clear();
        stepwise_mr::corpus::Generator::new(
            args.seed.wrapping_mul(1_000_003).wrapping_add(u64::from(i)),
        )
        .fill(&mut buf, size);
        let path = args.output.join(format!("{}-{i:02}.txt", args.prefix));
        fs::write(&path, &buf).with_context(|| format!("write {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}
