//! Unit tests of the shard group state machine: statuses through a configuration change,
//! serving rules, exactly-once across a migration, garbage collection, snapshots.

use super::*;
use crate::key::key_to_shard;
use stepwise_kv::KvOutput;

fn config(num: u64, shards: &[Gid]) -> ShardConfig {
    let mut groups = BTreeMap::new();
    for &g in shards {
        if g != 0 {
            groups.insert(g, vec![g * 10, g * 10 + 1, g * 10 + 2]);
        }
    }
    ShardConfig {
        num,
        shards: shards.to_vec(),
        groups,
    }
}

/// A key of shard `s` among 4 shards.
fn key_of(s: usize) -> String {
    (0..)
        .map(|i| format!("k{i}"))
        .find(|k| key_to_shard(k.as_bytes(), 4) == s)
        .unwrap()
}

fn kv(g: &mut ShardGroup, session: Option<(u64, u64)>, op: Op) -> KvResult {
    let session = session.map(|(client, seq)| Session { client, seq });
    match g.apply(GroupCmd::Kv { session, op }) {
        GroupOutput::Kv(r) => r,
        other => panic!("{other:?}"),
    }
}

fn get(g: &ShardGroup, key: &str) -> KvResult {
    match g.query(&GroupQuery::Get(Bytes::copy_from_slice(key.as_bytes()))) {
        GroupOutput::Kv(r) => r,
        other => panic!("{other:?}"),
    }
}

fn written(version: u64) -> KvResult {
    Ok(KvOutput::Written { version })
}

#[test]
fn shards_from_nobody_serve_at_once_and_others_are_refused() {
    let mut g = ShardGroup::new(1, 4);
    let k0 = key_of(0);
    assert_eq!(
        kv(&mut g, None, Op::put_any(k0.clone(), "x")),
        Err(KvError::WrongGroup)
    );
    g.apply(GroupCmd::Config(config(1, &[1, 1, 2, 2])));
    assert_eq!(g.config().num, 1);
    assert_eq!(g.status(0), Some(ShardStatus::Serving));
    assert_eq!(g.status(2), None);
    assert!(g.is_stable());
    assert_eq!(kv(&mut g, None, Op::put_any(k0.clone(), "x")), written(1));
    assert_eq!(get(&g, &key_of(2)), Err(KvError::WrongGroup));
    // Out of order and duplicate configurations are ignored.
    g.apply(GroupCmd::Config(config(3, &[2, 2, 2, 2])));
    g.apply(GroupCmd::Config(config(1, &[2, 2, 2, 2])));
    assert_eq!(g.config().num, 1);
    assert_eq!(g.status(0), Some(ShardStatus::Serving));
}

#[test]
fn a_change_freezes_lost_shards_keeps_unaffected_ones_serving_and_pulls_gained_ones() {
    let mut a = ShardGroup::new(1, 4);
    let mut b = ShardGroup::new(2, 4);
    let c1 = config(1, &[1, 1, 2, 2]);
    a.apply(GroupCmd::Config(c1.clone()));
    b.apply(GroupCmd::Config(c1));
    let (k0, k1, k2) = (key_of(0), key_of(1), key_of(2));
    assert_eq!(
        kv(&mut a, Some((9, 1)), Op::append(k0.clone(), "a")),
        written(1)
    );
    assert_eq!(kv(&mut a, None, Op::put_any(k1.clone(), "one")), written(1));
    assert_eq!(kv(&mut b, None, Op::put_any(k2.clone(), "two")), written(1));

    // Configuration 2: shard 0 moves from 1 to 2.
    let c2 = config(2, &[2, 1, 2, 2]);
    a.apply(GroupCmd::Config(c2.clone()));
    b.apply(GroupCmd::Config(c2.clone()));
    assert_eq!(a.status(0), Some(ShardStatus::BePulling));
    assert_eq!(b.status(0), Some(ShardStatus::Pulling));
    assert!(!a.is_stable() && !b.is_stable());
    // Unaffected shards keep serving on both sides.
    assert!(get(&a, &k1).is_ok());
    assert!(get(&b, &k2).is_ok());
    // The moving shard is served by nobody.
    assert_eq!(get(&a, &k0), Err(KvError::WrongGroup));
    assert_eq!(get(&b, &k0), Err(KvError::WrongGroup));
    assert_eq!(
        kv(&mut a, Some((9, 2)), Op::append(k0.clone(), "b")),
        Err(KvError::WrongGroup)
    );
    // A further configuration waits until the move is over.
    b.apply(GroupCmd::Config(config(3, &[2, 2, 2, 2])));
    assert_eq!(b.config().num, 2);

    // The pull: nothing before the previous owner reached 2; then the frozen data.
    assert_eq!(
        b.by_previous_owner(ShardStatus::Pulling),
        BTreeMap::from([(1, vec![0])])
    );
    assert_eq!(ShardGroup::new(1, 4).pull(2, &[0]), Err(Refusal::NotReady));
    let data = a.pull(2, &[0]).unwrap();
    assert_eq!(
        a.pull(2, &[1]),
        Err(Refusal::NotReady),
        "shard 1 is not handed over"
    );
    b.apply(GroupCmd::Install {
        num: 2,
        shards: data.clone(),
    });
    assert_eq!(b.status(0), Some(ShardStatus::Gcing));
    assert_eq!(
        get(&b, &k0),
        Ok(KvOutput::Value {
            value: "a".into(),
            version: 1
        })
    );
    // Exactly once across the move: the retry of the write applied at the old owner
    // gets its original answer; a new write executes.
    assert_eq!(
        kv(&mut b, Some((9, 1)), Op::append(k0.clone(), "a")),
        written(1)
    );
    assert_eq!(
        kv(&mut b, Some((9, 2)), Op::append(k0.clone(), "b")),
        written(2)
    );
    // A second install of the same data changes nothing.
    b.apply(GroupCmd::Install {
        num: 2,
        shards: data,
    });
    assert_eq!(
        get(&b, &k0),
        Ok(KvOutput::Value {
            value: "ab".into(),
            version: 2
        })
    );

    // Garbage collection.
    assert_eq!(a.delete_state(2, &[0]), DeleteState::Pending);
    assert_eq!(a.delete_state(3, &[0]), DeleteState::NotReady);
    assert_eq!(
        a.apply(GroupCmd::Delete {
            num: 3,
            shards: vec![0]
        }),
        GroupOutput::NotReady
    );
    assert_eq!(
        a.apply(GroupCmd::Delete {
            num: 2,
            shards: vec![0]
        }),
        GroupOutput::Done
    );
    assert_eq!(a.status(0), None);
    assert_eq!(a.delete_state(2, &[0]), DeleteState::Done);
    assert!(a.is_stable());
    b.apply(GroupCmd::GcDone {
        num: 2,
        shards: vec![0],
    });
    assert_eq!(b.status(0), Some(ShardStatus::Serving));
    assert!(b.is_stable());
    b.apply(GroupCmd::Config(config(3, &[2, 2, 2, 2])));
    assert_eq!(b.config().num, 3);
}

#[test]
fn shards_of_a_group_that_left_for_nobody_are_dropped() {
    let mut a = ShardGroup::new(1, 2);
    a.apply(GroupCmd::Config(config(1, &[1, 1])));
    kv(&mut a, None, Op::put_any(key_of(0), "x")).unwrap();
    a.apply(GroupCmd::Config(config(2, &[0, 0])));
    assert_eq!(a.statuses().count(), 0);
    assert!(a.is_stable());
    assert_eq!(a.stored_bytes(), 0);
}

#[test]
fn malformed_installs_leave_the_shard_pulling() {
    let mut b = ShardGroup::new(2, 4);
    b.apply(GroupCmd::Config(config(1, &[1, 1, 1, 1])));
    b.apply(GroupCmd::Config(config(2, &[2, 1, 1, 1])));
    let bad = ShardData {
        shard: 0,
        kv: Bytes::from_static(b"\xffgarbage"),
        sessions: Sessions::new(),
    };
    b.apply(GroupCmd::Install {
        num: 2,
        shards: vec![bad],
    });
    assert_eq!(b.status(0), Some(ShardStatus::Pulling));
    // Shards not pulled, or of another configuration, are ignored.
    let other = ShardData {
        shard: 1,
        kv: Bytes::new(),
        sessions: Sessions::new(),
    };
    b.apply(GroupCmd::Install {
        num: 2,
        shards: vec![other],
    });
    assert_eq!(b.status(1), None);
}

#[test]
fn snapshots_round_trip_and_bad_ones_are_refused() {
    let mut a = ShardGroup::new(1, 4);
    a.apply(GroupCmd::Config(config(1, &[1, 1, 2, 1])));
    for i in 0..20 {
        let _ = kv(
            &mut a,
            Some((i % 3, i / 3 + 1)),
            Op::append(format!("k{i}"), "v"),
        );
    }
    a.apply(GroupCmd::Config(config(2, &[2, 1, 2, 1])));
    let mut buf = Vec::new();
    a.snapshot(&mut buf);
    let mut back = ShardGroup::new(1, 4);
    back.restore(&buf).unwrap();
    assert_eq!(back, a);
    for cut in 0..buf.len() {
        assert!(
            ShardGroup::new(1, 4).restore(&buf[..cut]).is_err(),
            "prefix {cut}"
        );
    }
    assert!(
        ShardGroup::new(2, 4).restore(&buf).is_err(),
        "another group's snapshot"
    );
}

/// Nothing a peer, a client or the controller sends can panic a group server: random
/// inputs (malformed configurations, shards out of range, garbage shard data, replies to
/// nothing) are dropped or refused.
#[test]
fn arbitrary_inputs_never_panic_a_group_server() {
    use crate::ctrler::{CtrlError, CtrlOutput};
    use crate::group::server::{GroupConfig, GroupServer, Input};
    use crate::message::{CtrlReply, PeerMsg, Refusal};
    use quickcheck::{Gen, QuickCheck};
    use stepwise_kv::{Request, RsmConfig};
    use stepwise_raft::Config;

    fn config(a: u64, b: u64) -> ShardConfig {
        let n = (b % 13) as usize; // 0 (malformed) to 12 shards
        let mut groups = BTreeMap::new();
        groups.insert(1, vec![1]);
        if a.is_multiple_of(3) {
            groups.insert(2, vec![2]);
        }
        ShardConfig {
            num: a % 6,
            shards: (0..n).map(|i| (b >> i) % 3).collect(),
            groups,
        }
    }

    fn data(a: u64, b: u64) -> ShardData {
        let mut kv = Vec::new();
        if a.is_multiple_of(2) {
            Kv::new().snapshot(&mut kv);
        } else {
            kv.extend_from_slice(&b.to_le_bytes());
        }
        ShardData {
            shard: (b % 14) as u32,
            kv: Bytes::from(kv),
            sessions: Sessions::new(),
        }
    }

    fn prop(script: Vec<(u8, u64, u64)>) -> bool {
        let rsm = RsmConfig::new(Config::new(1, [1])).with_max_raft_state(Some(300));
        let mut cfg = GroupConfig::new(1, rsm, vec![9]);
        cfg.nshards = 10;
        let mut s = GroupServer::new(cfg).unwrap();
        for (kind, a, b) in script {
            let shards: Vec<u32> = (0..b % 4).map(|i| ((a >> (8 * i)) % 14) as u32).collect();
            let num = b % 6;
            let input = match kind % 9 {
                0 | 1 => Input::Tick,
                2 => {
                    let key = format!("k{}", a % 20);
                    let op = match b % 3 {
                        0 => Op::get(key),
                        1 => Op::put_any(key, "v"),
                        _ => Op::append(key, "w"),
                    };
                    let session = (a % 2 == 0).then_some(Session {
                        client: a % 3,
                        seq: b % 5,
                    });
                    Input::Request {
                        from: 7,
                        request: Request {
                            id: a % 4,
                            session,
                            op,
                        },
                    }
                }
                3 => Input::Peer {
                    from: 2,
                    msg: PeerMsg::Pull {
                        num,
                        gid: 2,
                        shards,
                    },
                },
                4 => Input::Peer {
                    from: b % 3,
                    msg: PeerMsg::PullReply {
                        num,
                        result: if a % 5 == 0 {
                            Err(Refusal::NotReady)
                        } else {
                            Ok(vec![data(a, b), data(b, a)])
                        },
                    },
                },
                5 => Input::Peer {
                    from: 2,
                    msg: PeerMsg::Delete {
                        num,
                        gid: 2,
                        shards,
                    },
                },
                6 => Input::Peer {
                    from: a % 3,
                    msg: PeerMsg::DeleteReply {
                        num,
                        shards,
                        result: if b % 2 == 0 {
                            Ok(())
                        } else {
                            Err(Refusal::WrongLeader { leader: Some(a) })
                        },
                    },
                },
                7 => Input::Ctrler {
                    from: 9,
                    reply: CtrlReply {
                        id: a % 4,
                        result: Ok(CtrlOutput::Configs(vec![config(a, b), config(b, a)])),
                    },
                },
                _ => Input::Ctrler {
                    from: 9,
                    reply: CtrlReply {
                        id: a % 4,
                        result: if b % 2 == 0 {
                            Ok(CtrlOutput::Config(config(a, b)))
                        } else {
                            Err(CtrlError::WrongLeader { leader: Some(b) })
                        },
                    },
                },
            };
            s.step(input);
        }
        s.group().config().shards.len() == 10
    }
    QuickCheck::new()
        .rng(Gen::from_size_and_seed(300, 0x5eed_0f22))
        .tests(300)
        .quickcheck(prop as fn(Vec<(u8, u64, u64)>) -> bool);
}
