//! Measures what group commit buys: the raw `fdatasync` rate of the disk, then this
//! crate's syncs and entries per second at batch sizes 1, 16 and 256 (128-byte entries),
//! all in the same directory in the same run.
//!
//! ```text
//! cargo run --release -p stepwise-storage --example wal_bench -- [--dir DIR] [--seconds S]
//! ```
//!
//! `--dir` must be on the file system you care about (default: a temporary directory
//! under the current one, not /tmp, which may be a RAM disk).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use stepwise_raft::{Action, Entry, Payload};
use stepwise_storage::{RaftStorage, StorageOptions};

struct Args {
    dir: PathBuf,
    seconds: f64,
}

fn args() -> Args {
    let mut args = Args {
        dir: PathBuf::from("."),
        seconds: 2.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| usage(&flag));
        match flag.as_str() {
            "--dir" => args.dir = PathBuf::from(value),
            "--seconds" => args.seconds = value.parse().unwrap_or_else(|_| usage(&flag)),
            _ => usage(&flag),
        }
    }
    args
}

fn usage(flag: &str) -> ! {
    eprintln!("bad argument {flag}; usage: wal_bench [--dir DIR] [--seconds S]");
    std::process::exit(2)
}

/// Per-operation latencies, summarized.
struct Run {
    ops: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Run {
    fn per_second(&self, count: usize) -> f64 {
        count as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile_ms(&mut self, p: f64) -> f64 {
        self.latencies.sort_unstable();
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[i].as_secs_f64() * 1e3
    }
}

impl Run {
    fn merge(&mut self, other: Run) {
        self.ops += other.ops;
        self.elapsed += other.elapsed;
        self.latencies.extend(other.latencies);
    }
}

/// Calls `op` until `seconds` have passed (at least 10 times).
fn measure(seconds: f64, mut op: impl FnMut()) -> Run {
    let budget = Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let mut latencies = Vec::new();
    while latencies.len() < 10 || start.elapsed() < budget {
        let t = Instant::now();
        op();
        latencies.push(t.elapsed());
    }
    Run {
        ops: latencies.len(),
        elapsed: start.elapsed(),
        latencies,
    }
}

/// An operation that appends `size` bytes to a file and calls `fdatasync`.
fn raw_op(dir: &std::path::Path, name: &str, size: usize) -> impl FnMut() {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(name))
        .unwrap();
    let block = vec![0x5a_u8; size];
    move || {
        f.write_all(&block).unwrap();
        f.sync_data().unwrap();
    }
}

/// Runs `a` and `b` alternately in 10 slices each, so that changing load on a shared disk
/// affects both alike.
fn interleaved(seconds: f64, mut a: impl FnMut(), mut b: impl FnMut()) -> (Run, Run) {
    let slice = seconds / 10.0;
    let (mut ra, mut rb) = (measure(slice, &mut a), measure(slice, &mut b));
    for _ in 1..10 {
        ra.merge(measure(slice, &mut a));
        rb.merge(measure(slice, &mut b));
    }
    (ra, rb)
}

/// Appends a batch of `batch` entries and syncs, per call, to a fresh storage in `dir`.
fn storage_op(dir: &std::path::Path, batch: usize, sync: bool) -> impl FnMut() {
    let opts = StorageOptions::default().with_sync(sync);
    let (mut s, _) = RaftStorage::open(dir, opts).unwrap();
    let data = Bytes::from(vec![0xc3_u8; 128]);
    let mut next = 1;
    move || {
        let entries: Vec<Entry> = (next..next + batch as u64)
            .map(|index| Entry {
                term: 1,
                index,
                payload: Payload::Command(data.clone()),
            })
            .collect();
        next += batch as u64;
        s.apply(&Action::AppendLog(entries)).unwrap();
        s.sync().unwrap();
    }
}

/// Bytes of the files in `dir`.
fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

fn main() {
    let args = args();
    std::fs::create_dir_all(&args.dir).unwrap();
    let dir = tempfile::tempdir_in(&args.dir).unwrap();
    println!(
        "stepwise-storage WAL benchmark in {} ({} s per row, 128-byte entries)",
        dir.path().display(),
        args.seconds
    );
    let mut raw = measure(args.seconds, raw_op(dir.path(), "raw-4k.dat", 4096));
    let raw_rate = raw.per_second(raw.ops);
    println!();
    println!(
        "raw 4 KiB append + fdatasync: {raw_rate:>9.0} /s   p50 {:.3} ms   p99 {:.3} ms",
        raw.percentile_ms(0.5),
        raw.percentile_ms(0.99)
    );
    for sync in [true, false] {
        println!();
        println!(
            "{}",
            if sync {
                "RaftStorage, one sync (one fdatasync) per batch:"
            } else {
                "RaftStorage with sync off (CPU and page-cache cost only):"
            }
        );
        println!(
            "{:>6} {:>10} {:>12} {:>8} {:>9} {:>9} {:>8} {:>14} {:>7}",
            "batch",
            "syncs/s",
            "entries/s",
            "MiB/s",
            "p50 ms",
            "p99 ms",
            "B/sync",
            "raw same B/s",
            "of raw"
        );
        for batch in [1, 16, 256] {
            // Bytes one sync writes, from a short probe run.
            let probe = tempfile::tempdir_in(dir.path()).unwrap();
            let probe_run = measure(0.0, storage_op(probe.path(), batch, false));
            let per_sync = dir_bytes(probe.path()) as usize / probe_run.ops;
            let sub = tempfile::tempdir_in(dir.path()).unwrap();
            let (mut run, same) = if sync {
                // The physical limit for this row: appending the same number of bytes and
                // calling fdatasync, with nothing else, interleaved with our run.
                let raw = raw_op(sub.path(), "raw-same.dat", per_sync);
                let store = tempfile::tempdir_in(dir.path()).unwrap();
                let (run, raw) =
                    interleaved(args.seconds, storage_op(store.path(), batch, true), raw);
                (run, Some(raw))
            } else {
                (
                    measure(args.seconds, storage_op(sub.path(), batch, false)),
                    None,
                )
            };
            let syncs = run.per_second(run.ops);
            let entries = syncs * batch as f64;
            let (p50, p99) = (run.percentile_ms(0.5), run.percentile_ms(0.99));
            let mib = entries * 128.0 / (1 << 20) as f64;
            match same {
                Some(same) => {
                    let same_rate = same.per_second(same.ops);
                    println!(
                        "{batch:>6} {syncs:>10.0} {entries:>12.0} {mib:>8.1} {p50:>9.3} {p99:>9.3} \
                         {per_sync:>8} {same_rate:>14.0} {:>6.0}%",
                        100.0 * syncs / same_rate
                    );
                }
                None => println!(
                    "{batch:>6} {syncs:>10.0} {entries:>12.0} {mib:>8.1} {p50:>9.3} {p99:>9.3} \
                     {per_sync:>8} {:>14} {:>7}",
                    "-", "-"
                ),
            }
        }
    }
}
