//! Nothing a peer or a client sends may panic a replica, the single server or a clerk:
//! seeded quickcheck properties that feed arbitrary inputs (random Raft messages with
//! garbage entries and snapshots, random requests and replies, ticks) and check only that
//! every step returns and the replica's invariants hold.

use bytes::Bytes;
use quickcheck::{Arbitrary, Gen, QuickCheck, TestResult};
use stepwise_kv::clerk::{self, Clerk, ClerkConfig};
use stepwise_kv::replica::{self, Replica};
use stepwise_kv::server::Server;
use stepwise_kv::{KvError, KvOutput, Op, Reply, Request, RsmConfig, Session};
use stepwise_raft::{
    AppendResult, Config, Entry, Message, Payload, Persisted, Snapshot, SnapshotMeta,
};

/// Seed of the generator; printed on failure (`STEPWISE_FUZZ_SEED` to replay).
fn seed() -> u64 {
    std::env::var("STEPWISE_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed)
}

fn qc() -> QuickCheck {
    QuickCheck::new()
        .rng(Gen::from_size_and_seed(80, seed()))
        .tests(1000)
}

fn small(g: &mut Gen, n: u64) -> u64 {
    u64::arbitrary(g) % n
}

fn bytes(g: &mut Gen) -> Bytes {
    let v: Vec<u8> = Vec::arbitrary(g);
    Bytes::from(v)
}

fn op(g: &mut Gen) -> Op {
    let key = Bytes::from(format!("k{}", small(g, 4)));
    match small(g, 6) {
        0 => Op::Get { key },
        4 => Op::Delete { key },
        5 => Op::Incr {
            key,
            by: i64::arbitrary(g),
        },
        1 => Op::Put {
            key,
            value: bytes(g),
            version: Some(small(g, 4)),
        },
        2 => Op::Put {
            key,
            value: bytes(g),
            version: None,
        },
        _ => Op::Append {
            key,
            value: bytes(g),
            return_old: bool::arbitrary(g),
        },
    }
}

/// A log entry payload: garbage, or a one-record entry ending a session (format 2, flag
/// 2) followed by garbage (a client id, a broken varint or trailing bytes).
fn payload(g: &mut Gen) -> Payload {
    match small(g, 4) {
        0 => Payload::Noop,
        1 => {
            let mut data = vec![2, 1, 2];
            data.extend_from_slice(&bytes(g));
            Payload::Command(data.into())
        }
        _ => Payload::Command(bytes(g)),
    }
}

fn message(g: &mut Gen) -> Message {
    let term = small(g, 5);
    let index = small(g, 8);
    match small(g, 8) {
        0 => Message::RequestVote {
            term,
            last_index: index,
            last_term: small(g, 5),
            pre_vote: bool::arbitrary(g),
        },
        1 => Message::VoteReply {
            term,
            granted: bool::arbitrary(g),
            pre_vote: bool::arbitrary(g),
        },
        2 => {
            let n = small(g, 4);
            let mut t = small(g, 3);
            let entries = (0..n)
                .map(|k| {
                    t += small(g, 2);
                    Entry {
                        term: t,
                        index: index + 1 + k,
                        payload: payload(g),
                    }
                })
                .collect();
            Message::AppendEntries {
                term,
                prev_index: index,
                prev_term: small(g, 5),
                entries,
                commit: small(g, 12),
                seq: small(g, 5),
            }
        }
        3 => Message::AppendReply {
            term,
            result: if bool::arbitrary(g) {
                AppendResult::Success { match_index: index }
            } else {
                AppendResult::Conflict {
                    rejected: index,
                    hint_term: Option::arbitrary(g),
                    hint_index: small(g, 8),
                }
            },
            seq: small(g, 5),
        },
        4 => Message::InstallSnapshot {
            term,
            snapshot: Snapshot {
                meta: SnapshotMeta {
                    index,
                    term: small(g, 5),
                },
                data: bytes(g),
            },
            seq: small(g, 5),
        },
        5 => Message::SnapshotReply {
            term,
            match_index: index,
            seq: small(g, 5),
        },
        6 => Message::ReadIndex {
            term,
            ctx: small(g, 5),
        },
        _ => Message::ReadIndexReply {
            term,
            ctx: small(g, 5),
            index: bool::arbitrary(g).then_some(index),
        },
    }
}

#[derive(Clone, Debug)]
enum In {
    Tick,
    Peer(u64, Message),
    Client(u64, Request),
    EndSession(u64),
}

impl Arbitrary for In {
    fn arbitrary(g: &mut Gen) -> In {
        match small(g, 5) {
            4 => In::EndSession(small(g, 3)),
            0 => In::Tick,
            1 | 2 => In::Peer(small(g, 4), message(g)),
            _ => In::Client(
                small(g, 3),
                Request {
                    id: small(g, 5),
                    session: bool::arbitrary(g).then(|| Session {
                        client: small(g, 3),
                        seq: small(g, 4),
                    }),
                    op: op(g),
                },
            ),
        }
    }
}

#[test]
fn a_replica_survives_arbitrary_input() {
    fn prop(inputs: Vec<In>, max: bool) -> TestResult {
        let mut raft = Config::new(0, [0, 1, 2]).with_seed(3);
        // Half the runs with follower reads, so forwarded reads meet nonsense too.
        raft.follower_reads = !max;
        let cfg = RsmConfig::new(raft).with_max_raft_state(max.then_some(200));
        let mut r = Replica::new(cfg.clone()).expect("valid");
        let mut disk = Persisted::default();
        for input in inputs {
            let input = match input {
                In::Tick => replica::Input::Tick,
                In::Peer(from, msg) => replica::Input::Receive { from, msg },
                In::Client(from, request) => replica::Input::Request { from, request },
                In::EndSession(client) => replica::Input::EndSession { client },
            };
            for a in r.step(input) {
                if let replica::Action::Persist(p) = a {
                    assert!(disk.apply(&p), "Persist carries only persistence actions");
                }
            }
            assert!(r.rsm().applied_index() <= r.rsm().raft().commit_index());
        }
        // Restart from what was persisted: a halted replica reports why instead.
        match Replica::restore(cfg, disk) {
            Ok(_) => {}
            Err(e) => assert!(r.rsm().halted().is_some(), "restore failed: {e}"),
        }
        TestResult::passed()
    }
    qc().quickcheck(prop as fn(Vec<In>, bool) -> TestResult);
}

#[test]
fn the_single_server_and_a_clerk_survive_arbitrary_input() {
    fn prop(inputs: Vec<In>, replies: Vec<(u64, u64, u8)>) -> TestResult {
        let mut server = Server::new();
        for input in inputs {
            if let In::Client(_, request) = input {
                let reply = server.handle(request);
                assert!(!matches!(
                    reply.result,
                    Err(KvError::Maybe | KvError::Timeout)
                ));
            }
        }
        let mut cfg = ClerkConfig::new(1, vec![0, 1, 2]);
        // (A read server too: its replies take their own path.)
        cfg.read_from = Some(2);
        let mut ck = Clerk::new(cfg);
        ck.step(clerk::Input::Start(Op::get("k")));
        for (from, id, kind) in replies {
            let result = match kind % 5 {
                0 => Ok(KvOutput::Written { version: id }),
                1 => Err(KvError::WrongLeader {
                    leader: Some(from % 5),
                }),
                2 => Err(KvError::Stale),
                3 => Err(KvError::NoKey),
                _ => Err(KvError::WrongLeader { leader: None }),
            };
            let reply = Reply { id: id % 4, result };
            ck.step(clerk::Input::Receive {
                from: from % 5,
                reply,
            });
            ck.step(clerk::Input::Tick);
            if ck.is_idle() {
                ck.step(clerk::Input::Start(Op::put("k", "v", id % 3)));
            }
        }
        TestResult::passed()
    }
    qc().quickcheck(prop as fn(Vec<In>, Vec<(u64, u64, u8)>) -> TestResult);
}
