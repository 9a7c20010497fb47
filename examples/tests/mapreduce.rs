//! The lab's test-mr.sh scenarios on real processes: a `mapreduce coordinator` and
//! `mapreduce worker` processes on 127.0.0.1 (or a Unix socket), as the lab's script starts
//! `mrcoordinator` and `mrworker`.
//!
//! Inputs are generated (8 files named like the lab's, so `early_exit` finds `sherlock`
//! and `tom`), so the tests run without ../shared/data. The lab's sleeps are scaled down
//! with `--time-scale`, and timeouts with them, keeping the lab's ratios.

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_mapreduce");

/// The lab's eight input names (contents generated).
const NAMES: [&str; 8] = [
    "pg-being_ernest.txt",
    "pg-dorian_gray.txt",
    "pg-frankenstein.txt",
    "pg-grimm.txt",
    "pg-huckleberry_finn.txt",
    "pg-metamorphosis.txt",
    "pg-sherlock_holmes.txt",
    "pg-tom_sawyer.txt",
];

/// Every test must finish well within this (the lab allows 45 s per process).
const LIMIT: Duration = Duration::from_secs(60);

/// A test directory: generated inputs in `in/`, processes run in `out/` (the lab's
/// `mr-tmp`), and inputs are named `../in/pg-*.txt` as the lab names `../pg*.txt`.
struct Lab {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    files: Vec<String>,
}

impl Lab {
    fn new(bytes_per_file: usize) -> Lab {
        let tmp = tempfile::tempdir().expect("temp dir");
        let root = tmp.path().to_path_buf();
        fs::create_dir_all(root.join("in")).unwrap();
        fs::create_dir_all(root.join("out")).unwrap();
        let mut files = Vec::new();
        for (i, name) in NAMES.iter().enumerate() {
            // Different sizes, as the real books have.
            let size = bytes_per_file / 2 + i * bytes_per_file / 8;
            let text = stepwise_mr::corpus::generate(100 + i as u64, size);
            fs::write(root.join("in").join(name), text).unwrap();
            files.push(format!("../in/{name}"));
        }
        Lab {
            _tmp: tmp,
            root,
            files,
        }
    }

    fn out(&self) -> PathBuf {
        self.root.join("out")
    }

    /// A command for the binary, run in `out/`.
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args).current_dir(self.out()).stdin(Stdio::null());
        c
    }

    /// Starts a coordinator on 127.0.0.1 with a free port; returns it and its address.
    fn coordinator(&self, args: &[&str]) -> (Proc, String) {
        let mut c = self.command(&["coordinator", "--listen", "127.0.0.1:0", "--quiet"]);
        c.args(args)
            .arg("--")
            .args(&self.files)
            .stdout(Stdio::piped());
        self.start_coordinator(c)
    }

    fn start_coordinator(&self, mut c: Command) -> (Proc, String) {
        let mut child = c.spawn().expect("start coordinator");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("mapreduce coordinator listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        // Keep draining stdout so the coordinator never writes into a closed pipe.
        let drain: JoinHandle<String> = std::thread::spawn(move || {
            let mut rest = String::new();
            let _ = stdout.read_to_string(&mut rest);
            rest
        });
        (Proc::new(child, Some(drain)), addr)
    }

    fn worker(&self, addr: &str) -> Proc {
        let child = self
            .command(&["worker", "--connect", addr])
            .spawn()
            .expect("start worker");
        Proc::new(child, None)
    }

    /// The lab's check: all `mr-out*` lines, sorted, without empty lines.
    fn merged_output(&self) -> Vec<String> {
        merged_output(&self.out())
    }

    /// The reference: `mapreduce sequential` without the combiner, sorted.
    fn sequential(&self, app: &str) -> Vec<String> {
        let dir = self.root.join(format!("seq-{app}"));
        let out = self
            .command(&[
                "sequential",
                "--no-combiner",
                "--quiet",
                "--app",
                app,
                "--output",
            ])
            .arg(&dir)
            .args(&self.files)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut lines: Vec<String> = fs::read_to_string(dir.join("mr-out-0"))
            .unwrap()
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        lines.sort();
        lines
    }
}

fn merged_output(dir: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name().to_string_lossy().starts_with("mr-out") {
            // A file can vanish or appear between listing and reading only through rename,
            // which replaces it whole.
            if let Ok(text) = fs::read_to_string(entry.path()) {
                lines.extend(text.lines().filter(|l| !l.is_empty()).map(str::to_owned));
            }
        }
    }
    lines.sort();
    lines
}

/// A child process that is killed if the test ends early.
struct Proc {
    child: Option<Child>,
    stdout: Option<JoinHandle<String>>,
}

impl Proc {
    fn new(child: Child, stdout: Option<JoinHandle<String>>) -> Proc {
        Proc {
            child: Some(child),
            stdout,
        }
    }

    /// Whether it has exited (without waiting).
    fn exited(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => !matches!(c.try_wait(), Ok(None)),
            None => true,
        }
    }

    /// Waits for the exit, at most until `deadline`; returns whether it succeeded.
    fn wait(&mut self, deadline: Instant) -> bool {
        let child = self.child.as_mut().expect("not waited yet");
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status.success();
            }
            assert!(
                Instant::now() < deadline,
                "process {} still running",
                child.id()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The rest of stdout (after the first line), once exited.
    fn stdout(&mut self) -> String {
        self.stdout
            .take()
            .map(|h| h.join().unwrap())
            .unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn run(lab: &Lab, args: &[&str]) -> Output {
    lab.command(args).output().unwrap()
}

/// wc with 3 workers equals the sequential output (the lab's first test).
#[test]
fn wc_output_equals_sequential() {
    let lab = Lab::new(60_000);
    let deadline = Instant::now() + LIMIT;
    let (mut coordinator, addr) = lab.coordinator(&["--app", "wc"]);
    let mut workers: Vec<Proc> = (0..3).map(|_| lab.worker(&addr)).collect();
    assert!(coordinator.wait(deadline), "coordinator failed");
    let output = lab.merged_output();
    for w in &mut workers {
        assert!(w.wait(deadline), "worker failed");
    }
    let expected = lab.sequential("wc");
    assert!(expected.len() > 1000, "the reference has many words");
    assert_eq!(output, expected);
    let summary = coordinator.stdout();
    assert!(summary.is_empty(), "--quiet prints no summary: {summary}");
    // Intermediate files are removed after the job; outputs stay.
    let names: BTreeSet<String> = fs::read_dir(lab.out())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let outputs: BTreeSet<String> = (0..10).map(|y| format!("mr-out-{y}")).collect();
    assert_eq!(names, outputs);
}

/// indexer with 2 workers equals the sequential output; over a Unix socket this time.
#[cfg(unix)]
#[test]
fn indexer_output_equals_sequential_over_a_unix_socket() {
    let lab = Lab::new(40_000);
    let deadline = Instant::now() + LIMIT;
    let socket = lab.root.join("mr.sock");
    let listen = format!("unix:{}", socket.display());
    let mut c = lab.command(&["coordinator", "--quiet", "--app", "indexer", "--listen"]);
    c.arg(&listen)
        .arg("--")
        .args(&lab.files)
        .stdout(Stdio::piped());
    let (mut coordinator, addr) = lab.start_coordinator(c);
    assert_eq!(addr, listen);
    let mut workers: Vec<Proc> = (0..2).map(|_| lab.worker(&addr)).collect();
    assert!(coordinator.wait(deadline));
    let output = lab.merged_output();
    for w in &mut workers {
        assert!(w.wait(deadline));
    }
    assert_eq!(output, lab.sequential("indexer"));
    assert!(!socket.exists(), "the coordinator removes its socket");
}

/// mtiming: both workers ran maps, and some map saw the other worker's map running.
#[test]
fn map_tasks_run_in_parallel() {
    let lab = Lab::new(1_000);
    let deadline = Instant::now() + LIMIT;
    let (mut coordinator, addr) = lab.coordinator(&["--app", "mtiming", "--time-scale", "0.3"]);
    let mut workers: Vec<Proc> = (0..2).map(|_| lab.worker(&addr)).collect();
    assert!(coordinator.wait(deadline));
    for w in &mut workers {
        assert!(w.wait(deadline));
    }
    let output = lab.merged_output();
    let times = output.iter().filter(|l| l.starts_with("times-")).count();
    assert_eq!(times, 2, "both workers ran map tasks: {output:?}");
    assert!(
        output
            .iter()
            .any(|l| l.starts_with("parallel") && l.split(' ').skip(1).any(|n| n == "2")),
        "some map saw 2 workers at once: {output:?}"
    );
}

/// rtiming: at least two reduce calls saw two reducers at once.
#[test]
fn reduce_tasks_run_in_parallel() {
    let lab = Lab::new(1_000);
    let deadline = Instant::now() + LIMIT;
    let (mut coordinator, addr) = lab.coordinator(&["--app", "rtiming", "--time-scale", "0.3"]);
    let mut workers: Vec<Proc> = (0..2).map(|_| lab.worker(&addr)).collect();
    assert!(coordinator.wait(deadline));
    for w in &mut workers {
        assert!(w.wait(deadline));
    }
    let output = lab.merged_output();
    let parallel = output
        .iter()
        .filter(|l| {
            let b = l.as_bytes();
            b.len() == 3 && b[0].is_ascii_lowercase() && &b[1..] == b" 2"
        })
        .count();
    assert!(parallel >= 2, "{output:?}");
}

/// jobcount with 4 workers: every map task ran exactly once (no duplicate execution
/// without failures). Maps take 0.4-1 s against a 2 s timeout: the lab's 2-5 s against 10 s.
#[test]
fn every_map_task_runs_exactly_once() {
    let lab = Lab::new(1_000);
    let deadline = Instant::now() + LIMIT;
    let (mut coordinator, addr) = lab.coordinator(&[
        "--app",
        "jobcount",
        "--time-scale",
        "0.2",
        "--task-timeout",
        "2s",
    ]);
    let mut workers: Vec<Proc> = (0..4).map(|_| lab.worker(&addr)).collect();
    assert!(coordinator.wait(deadline));
    for w in &mut workers {
        assert!(w.wait(deadline));
    }
    assert_eq!(lab.merged_output(), ["a 8"]);
}

/// early_exit: no process exits before the output is final. The output when the first
/// process exits equals the final output.
#[test]
fn no_process_exits_before_the_output_is_final() {
    let lab = Lab::new(1_000);
    let deadline = Instant::now() + LIMIT;
    let (coordinator, addr) = lab.coordinator(&["--app", "early_exit", "--time-scale", "0.3"]);
    let mut procs = vec![coordinator];
    procs.extend((0..3).map(|_| lab.worker(&addr)));
    while !procs.iter_mut().any(Proc::exited) {
        assert!(Instant::now() < deadline, "nobody finished");
        std::thread::sleep(Duration::from_millis(5));
    }
    let at_first_exit = lab.merged_output();
    for p in &mut procs {
        assert!(p.wait(deadline));
    }
    let last = lab.merged_output();
    assert_eq!(at_first_exit, last);
    assert_eq!(last, lab.sequential("early_exit"));
}

/// crash: workers crash (exit 1) or stall at random; crashed workers are restarted as the
/// lab's script does (one plus three restart loops) until the coordinator exits. The
/// output equals nocrash's. Stalls are up to 1 s against a 1 s timeout (the lab: 10 s and
/// 10 s).
#[test]
fn crashing_and_stalling_workers_still_give_the_right_output() {
    let lab = Lab::new(5_000);
    let deadline = Instant::now() + LIMIT;
    let (mut coordinator, addr) = lab.coordinator(&[
        "--app",
        "crash",
        "--time-scale",
        "0.1",
        "--task-timeout",
        "1s",
    ]);
    let mut workers: Vec<Proc> = (0..4).map(|_| lab.worker(&addr)).collect();
    let mut restarts = 0;
    while !coordinator.exited() {
        assert!(Instant::now() < deadline, "crash test did not finish");
        for w in &mut workers {
            if w.exited() {
                *w = lab.worker(&addr);
                restarts += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(coordinator.wait(deadline));
    for w in &mut workers {
        // Late starters may find no coordinator: their exit status does not matter.
        w.wait(deadline);
    }
    assert_eq!(lab.merged_output(), lab.sequential("nocrash"));
    assert!(restarts > 0, "some worker crashed (18 tasks at 33% each)");
}

/// The documented one-liner, `mapreduce run`, with its contract flags.
#[test]
fn run_subcommand_equals_sequential() {
    let lab = Lab::new(60_000);
    let mut args = vec![
        "run",
        "--app",
        "wc",
        "--reduce",
        "10",
        "--workers",
        "2",
        "--output",
        "job",
    ];
    args.extend(lab.files.iter().map(String::as_str));
    let out = run(&lab, &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("wc done: 8 maps, 10 reduces"), "{summary}");
    assert_eq!(merged_output(&lab.out().join("job")), lab.sequential("wc"));
}

/// `run` replaces crashed workers, so the crash app completes with the nocrash output.
#[test]
fn run_replaces_crashed_workers() {
    let lab = Lab::new(5_000);
    let mut args = vec![
        "run",
        "--app",
        "crash",
        "--workers",
        "3",
        "--time-scale",
        "0.1",
        "--task-timeout",
        "1s",
        "--seed",
        "7",
        "--output",
        "job",
    ];
    args.extend(lab.files.iter().map(String::as_str));
    let out = run(&lab, &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        merged_output(&lab.out().join("job")),
        lab.sequential("nocrash")
    );
}

/// The streaming app runs shell commands as mapper and reducer; distributed and
/// sequential runs agree.
#[test]
fn streaming_app_runs_external_commands() {
    let lab = Lab::new(20_000);
    let mapper = "tr -cs 'A-Za-z' '\\n' | awk 'NF { print $0 \"\\t1\" }'";
    let reducer = "awk -F '\\t' '{ n[$1] += $2 } END { for (k in n) print k \"\\t\" n[k] }'";
    let mut args = vec![
        "run",
        "--app",
        "streaming",
        "--mapper",
        mapper,
        "--reducer",
        reducer,
        "--output",
        "job",
    ];
    args.extend(lab.files.iter().map(String::as_str));
    let out = run(&lab, &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut seq = vec![
        "sequential",
        "--app",
        "streaming",
        "--mapper",
        mapper,
        "--reducer",
        reducer,
        "--output",
        "seq",
    ];
    seq.extend(lab.files.iter().map(String::as_str));
    let out = run(&lab, &seq);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = merged_output(&lab.out().join("seq"));
    assert!(expected.len() > 1000, "many distinct words");
    assert!(
        expected.iter().all(|l| l
            .split_once(' ')
            .is_some_and(|(w, n)| !w.is_empty() && n.parse::<u64>().is_ok())),
        "every line is `word count`"
    );
    assert_eq!(merged_output(&lab.out().join("job")), expected);
}

/// Bad input: a clear message and a non-zero exit, never a panic.
#[test]
fn bad_input_gives_clear_errors() {
    let lab = Lab::new(1_000);
    let check = |args: &[&str], needle: &str| {
        let out = run(&lab, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    };
    check(&["run", "--app", "wc", "missing.txt"], "missing.txt");
    check(&["sequential", "--app", "wc", "missing.txt"], "missing.txt");
    check(&["run", "--app", "wc", "."], "not a regular file");
    let input = lab.files[0].as_str();
    check(
        &["run", "--app", "nope", input],
        "unknown application `nope`",
    );
    check(&["run", "--app", "streaming", input], "--mapper");
    check(&["run", "--reduce", "0", input], "at least 1");
    check(
        &[
            "worker",
            "--connect",
            "127.0.0.1:1",
            "--connect-timeout",
            "0s",
        ],
        "cannot reach the coordinator at 127.0.0.1:1",
    );
    check(&["worker", "--connect", "nowhere"], "not an address");
    #[cfg(unix)]
    {
        let unreadable = lab.root.join("in").join("locked.txt");
        fs::write(&unreadable, "x").unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&unreadable, fs::Permissions::from_mode(0o000)).unwrap();
        // Root can read anything; only check when the file really is unreadable.
        if fs::read(&unreadable).is_err() {
            check(&["run", "../in/locked.txt"], "locked.txt");
        }
    }
    // A mapper that fails makes the whole job fail with its message.
    check(
        &[
            "run",
            "--app",
            "streaming",
            "--mapper",
            "echo broken >&2; exit 3",
            "--reducer",
            "cat",
            input,
        ],
        "broken",
    );
}

/// `gen` is deterministic and writes exactly the requested size.
#[test]
fn gen_writes_a_deterministic_corpus() {
    let lab = Lab::new(1_000);
    for dir in ["a", "b"] {
        let out = run(
            &lab,
            &[
                "gen", "--bytes", "100K", "--files", "3", "--seed", "5", "--output", dir,
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut total = 0;
    for i in 0..3 {
        let name = format!("gen-{i:02}.txt");
        let a = fs::read(lab.out().join("a").join(&name)).unwrap();
        assert_eq!(a, fs::read(lab.out().join("b").join(&name)).unwrap());
        total += a.len();
    }
    assert_eq!(total, 100 * 1024);
}

/// With the Gutenberg texts available (../shared/data), wc on them equals sequential.
/// Without them the test has nothing to check and says so.
#[test]
fn wc_on_the_gutenberg_texts_when_present() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/gutenberg");
    let Ok(entries) = fs::read_dir(&data) else {
        eprintln!("skipped: {} not found", data.display());
        return;
    };
    let lab = Lab::new(1_000);
    let mut files: Vec<String> = entries
        .map(|e| e.unwrap().path().display().to_string())
        .filter(|p| p.ends_with(".txt"))
        .collect();
    files.sort();
    let mut args = vec!["run", "--app", "wc", "--workers", "3", "--output", "job"];
    args.extend(files.iter().map(String::as_str));
    let out = run(&lab, &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut seq = vec![
        "sequential",
        "--no-combiner",
        "--app",
        "wc",
        "--output",
        "seq",
    ];
    seq.extend(files.iter().map(String::as_str));
    assert!(run(&lab, &seq).status.success());
    let expected = merged_output(&lab.out().join("seq"));
    assert!(
        expected.len() > 10_000,
        "the books have over 10,000 distinct words"
    );
    assert_eq!(merged_output(&lab.out().join("job")), expected);
}
