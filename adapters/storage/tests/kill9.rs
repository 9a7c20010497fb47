//! A real process is killed with SIGKILL while it appends and syncs in a loop; every index
//! it reported as synced must be there after reopening, three times over on one directory.
//!
//! The writer is this test binary itself, started with `--ignored --exact
//! kill9_writer_child` and the directory in an environment variable.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use stepwise_raft::{Action, Entry, HardState, Payload, Snapshot, SnapshotMeta};
use stepwise_storage::{RaftStorage, StorageOptions};

const DIR_ENV: &str = "STEPWISE_STORAGE_KILL9_DIR";
const SEED_ENV: &str = "STEPWISE_STORAGE_KILL9_SEED";

fn opts() -> StorageOptions {
    // Small segments, so rollover and segment deletion happen while being killed.
    StorageOptions::default().with_segment_size(64 << 10)
}

fn payload(index: u64, term: u64) -> Bytes {
    let mut p = format!("{index}:{term}:").into_bytes();
    p.resize(128, b'.');
    Bytes::from(p)
}

fn snapshot_data(index: u64) -> Bytes {
    Bytes::from(format!("snapshot through {index}"))
}

fn next_rand(state: &mut u64) -> u64 {
    // xorshift64*
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

/// The writer. Ignored in normal runs; `kill_9_loses_nothing_that_was_synced` starts it.
#[test]
#[ignore = "helper process for kill_9_loses_nothing_that_was_synced"]
fn kill9_writer_child() {
    let Ok(dir) = std::env::var(DIR_ENV) else {
        eprintln!("{DIR_ENV} not set: this is a helper process, nothing to do");
        return;
    };
    let mut rng: u64 = std::env::var(SEED_ENV).unwrap().parse().unwrap();
    let (mut s, p) = RaftStorage::open(Path::new(&dir), opts()).unwrap();
    let mut term = p.hard_state.term.max(1);
    let mut out = std::io::stdout().lock();
    // Bounded, in case the parent never kills us.
    for round in 0..200_000u64 {
        if round % 10 == 0 {
            term += 1;
            s.apply(&Action::SaveHardState(HardState {
                term,
                vote: Some(round % 3),
            }))
            .unwrap();
        }
        let n = 1 + next_rand(&mut rng) % 32;
        let first = s.last_index() + 1;
        let entries: Vec<Entry> = (first..first + n)
            .map(|index| Entry {
                term,
                index,
                payload: Payload::Command(payload(index, term)),
            })
            .collect();
        s.apply(&Action::AppendLog(entries)).unwrap();
        if round % 25 == 24 {
            let index = s.last_index() - 5;
            s.apply(&Action::SaveSnapshot(Snapshot {
                meta: SnapshotMeta { index, term },
                data: snapshot_data(index),
            }))
            .unwrap();
        }
        s.sync().unwrap();
        writeln!(
            out,
            "synced {} {} {}",
            s.last_index(),
            s.hard_state().term,
            s.snapshot_meta().index
        )
        .unwrap();
        out.flush().unwrap();
    }
}

/// What the writer reported last: (last index, term, snapshot index).
type Synced = (u64, u64, u64);

/// Runs the writer until it has reported `target` syncs, then SIGKILLs it. Returns the
/// last report.
fn run_and_kill(dir: &Path, seed: u64, target: usize) -> Synced {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "kill9_writer_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DIR_ENV, dir)
        .env(SEED_ENV, seed.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.strip_prefix("synced ") {
                let v: Vec<u64> = rest.split(' ').map(|x| x.parse().unwrap()).collect();
                if tx.send((v[0], v[1], v[2])).is_err() {
                    break;
                }
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last = None;
    for _ in 0..target {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(report) => last = Some(report),
            Err(e) => {
                child.kill().unwrap();
                let status = child.wait().unwrap();
                panic!("writer stopped reporting ({e:?}); status {status}");
            }
        }
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(!status.success(), "killed, not exited: {status}");
    // Reports the writer made after our last read were synced too: take them all.
    for report in rx.iter() {
        last = Some(report);
    }
    reader.join().unwrap();
    last.unwrap()
}

#[test]
fn kill_9_loses_nothing_that_was_synced() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut previous: Option<Synced> = None;
    for round in 0..3 {
        let target = 20 + (next_rand(&mut rng) % 200) as usize;
        let (last, term, snap) = run_and_kill(dir.path(), next_rand(&mut rng), target);
        if let Some((prev_last, _, _)) = previous {
            assert!(
                last > prev_last,
                "the writer resumed after the previous kill"
            );
        }
        previous = Some((last, term, snap));

        let (_, p) = RaftStorage::open(dir.path(), opts()).unwrap();
        let recovered_last = p.first_index() - 1 + p.entries.len() as u64;
        assert!(
            recovered_last >= last,
            "round {round}: reported {last} synced, recovered only through {recovered_last}"
        );
        assert!(p.hard_state.term >= term, "round {round}: term went back");
        let s = p
            .snapshot
            .as_ref()
            .expect("the writer snapshots every 25 rounds");
        assert!(s.meta.index >= snap, "round {round}: snapshot went back");
        assert_eq!(s.data, snapshot_data(s.meta.index));
        let mut prev_term = s.meta.term;
        for (k, e) in p.entries.iter().enumerate() {
            assert_eq!(e.index, p.first_index() + k as u64);
            assert!(e.term >= prev_term && e.term <= p.hard_state.term);
            assert_eq!(e.payload, Payload::Command(payload(e.index, e.term)));
            prev_term = e.term;
        }
        stepwise_raft::Node::restore(stepwise_raft::Config::new(1, [1, 2, 3]), p).unwrap();
    }
}
