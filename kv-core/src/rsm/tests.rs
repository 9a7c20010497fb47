//! Unit tests of the replicated-state-machine layer on a tiny in-memory cluster.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use stepwise_raft::{Config, Message, NodeId, Persisted};

use super::*;

/// The lab's rsm test machine: a counter with Inc, Null and Dec (Dec must never run).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Counter {
    n: u64,
    applied: u64,
    decs: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Cmd {
    Inc,
    Null,
    Dec,
}

impl StateMachine for Counter {
    type Command = Cmd;
    type Decoded<'a> = Cmd;
    type Query = ();
    type Output = u64;

    fn apply(&mut self, cmd: Cmd) -> u64 {
        self.applied += 1;
        match cmd {
            Cmd::Inc => self.n += 1,
            Cmd::Null => {}
            Cmd::Dec => self.decs += 1,
        }
        self.n
    }
    fn query(&self, _: &()) -> u64 {
        self.n
    }
    fn snapshot(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.n.to_le_bytes());
    }
    fn restore(&mut self, data: &[u8]) -> Result<(), String> {
        let n = data.try_into().map_err(|_| "bad counter snapshot")?;
        self.n = u64::from_le_bytes(n);
        Ok(())
    }
}

type Out = Action<u64, u64>;

/// Three (or n) replicas, in-memory storage, a FIFO network with cuttable links.
struct Cluster {
    nodes: Vec<Option<Rsm<Counter, u64>>>,
    disks: Vec<Persisted>,
    up: Vec<bool>,
    net: VecDeque<(NodeId, NodeId, Message)>,
    replies: Vec<(NodeId, u64, Result<u64, SubmitError>)>,
    max_raft_state: Option<usize>,
    follower_reads: bool,
}

fn config(id: NodeId, n: usize, max: Option<usize>) -> RsmConfig {
    let members: Vec<NodeId> = (0..n as u64).collect();
    RsmConfig::new(Config::new(id, members).with_seed(id + 11)).with_max_raft_state(max)
}

impl Cluster {
    fn new(n: usize, max: Option<usize>) -> Cluster {
        Cluster {
            nodes: (0..n)
                .map(|i| Some(Rsm::new(config(i as u64, n, max), Counter::default()).unwrap()))
                .collect(),
            disks: vec![Persisted::default(); n],
            up: vec![true; n],
            net: VecDeque::new(),
            replies: Vec::new(),
            max_raft_state: max,
            follower_reads: false,
        }
    }

    /// A cluster whose followers serve reads (`Config::follower_reads`).
    fn with_follower_reads(n: usize) -> Cluster {
        let mut c = Cluster::new(n, None);
        c.follower_reads = true;
        for i in 0..n {
            c.restart(i);
        }
        c
    }

    fn node(&self, i: usize) -> &Rsm<Counter, u64> {
        self.nodes[i].as_ref().unwrap()
    }

    fn step(&mut self, i: usize, input: Input<Cmd, (), u64>) {
        self.step_actions(i, input);
    }

    /// Like [`Cluster::step`], also returning the actions.
    fn step_actions(&mut self, i: usize, input: Input<Cmd, (), u64>) -> Vec<Out> {
        let Some(node) = self.nodes[i].as_mut() else {
            return Vec::new();
        };
        let actions: Vec<Out> = node.step(input);
        for a in actions.iter().cloned() {
            match a {
                Action::Persist(p) => assert!(self.disks[i].apply(&p), "not persistence: {p:?}"),
                Action::Send { to, msg } => self.net.push_back((i as u64, to, msg)),
                Action::Reply { tag, result } => self.replies.push((i as u64, tag, result)),
                Action::LeaderChanged { .. } | Action::Halted(_) => {}
            }
        }
        actions
    }

    /// Delivers queued messages (dropping those on cut links) and ticks everyone once.
    fn round(&mut self) {
        for _ in 0..self.net.len() {
            let (from, to, msg) = self.net.pop_front().unwrap();
            if self.up[from as usize] && self.up[to as usize] {
                self.step(to as usize, Input::Receive { from, msg });
            }
        }
        for i in 0..self.nodes.len() {
            self.step(i, Input::Tick);
        }
    }

    fn leader(&self) -> Option<usize> {
        (0..self.nodes.len())
            .find(|&i| self.up[i] && self.nodes[i].as_ref().is_some_and(|n| n.is_leader()))
    }

    fn run_until(&mut self, mut pred: impl FnMut(&Cluster) -> bool) {
        for _ in 0..2000 {
            if pred(self) {
                return;
            }
            self.round();
        }
        panic!("condition not reached");
    }

    fn elect(&mut self) -> usize {
        self.run_until(|c| c.leader().is_some());
        self.leader().unwrap()
    }

    fn reply(&self, tag: u64) -> Option<&Result<u64, SubmitError>> {
        self.replies.iter().find(|r| r.1 == tag).map(|r| &r.2)
    }

    fn restart(&mut self, i: usize) {
        let n = self.nodes.len();
        let mut cfg = config(i as u64, n, self.max_raft_state);
        cfg.raft.follower_reads = self.follower_reads;
        self.nodes[i] = Some(Rsm::restore(cfg, self.disks[i].clone(), Counter::default()).unwrap());
    }
}

fn sub(tag: u64, cmd: Cmd) -> Input<Cmd, (), u64> {
    Input::Submit(Submission::new(tag, cmd))
}

fn sess(tag: u64, client: u64, seq: u64, cmd: Cmd) -> Input<Cmd, (), u64> {
    Input::Submit(Submission::with_session(tag, Session { client, seq }, cmd))
}

#[test]
fn commands_are_answered_after_commit_with_their_output() {
    let mut c = Cluster::new(3, None);
    let l = c.elect();
    for k in 1..=10 {
        c.step(l, sub(k, Cmd::Inc));
        c.run_until(|c| c.reply(k).is_some());
        assert_eq!(c.reply(k), Some(&Ok(k)));
    }
    c.run_until(|c| (0..3).all(|i| c.node(i).state().n == 10));
}

#[test]
fn a_follower_refuses_at_once_with_a_leader_hint() {
    let mut c = Cluster::new(3, None);
    let l = c.elect();
    c.run_until(|c| (0..3).all(|i| c.node(i).leader() == Some(l as u64)));
    let f = (l + 1) % 3;
    c.step(f, sub(1, Cmd::Inc));
    c.step(f, Input::Query { tag: 2, query: () });
    let hint = Err(SubmitError::NotLeader {
        leader: Some(l as u64),
    });
    assert_eq!(c.reply(1), Some(&hint));
    assert_eq!(c.reply(2), Some(&hint));
}

#[test]
fn a_retried_command_executes_once_and_gets_the_original_answer() {
    let mut c = Cluster::new(3, None);
    let l = c.elect();
    // Two copies of the same command in the log before either applies.
    c.step(l, sess(1, 7, 1, Cmd::Inc));
    c.step(l, sess(2, 7, 1, Cmd::Inc));
    c.step(l, sub(3, Cmd::Inc));
    c.run_until(|c| c.reply(3).is_some());
    assert_eq!(c.reply(1), Some(&Ok(1)));
    assert_eq!(c.reply(2), Some(&Ok(1)));
    assert_eq!(c.reply(3), Some(&Ok(2)));
    // A later retry is answered from the session table without a new entry.
    let last = c.node(l).raft().log().last_index();
    c.step(l, sess(4, 7, 1, Cmd::Inc));
    assert_eq!(c.reply(4), Some(&Ok(1)));
    assert_eq!(c.node(l).raft().log().last_index(), last);
    // Followers answer retries of executed commands too (the result is committed).
    let f = (l + 1) % 3;
    c.run_until(|c| c.node(f).applied_index() >= last);
    c.step(f, sess(5, 7, 1, Cmd::Inc));
    assert_eq!(c.reply(5), Some(&Ok(1)));
    // The client moves on; its old command is stale.
    c.step(l, sess(6, 7, 2, Cmd::Inc));
    c.run_until(|c| c.reply(6).is_some());
    assert_eq!(c.reply(6), Some(&Ok(3)));
    c.step(l, sess(7, 7, 1, Cmd::Inc));
    assert_eq!(c.reply(7), Some(&Err(SubmitError::Stale)));
    assert_eq!(c.node(l).state().applied, 3);
}

#[test]
fn a_batch_is_one_entry_with_one_reply_per_command() {
    let mut c = Cluster::new(3, None);
    let l = c.elect();
    let last = c.node(l).raft().log().last_index();
    let batch = (1..=5).map(|k| Submission::new(k, Cmd::Inc)).collect();
    c.step(l, Input::SubmitBatch(batch));
    assert_eq!(c.node(l).raft().log().last_index(), last + 1);
    c.run_until(|c| c.replies.len() == 5);
    for k in 1..=5 {
        assert_eq!(c.reply(k), Some(&Ok(k)));
    }
}

#[test]
fn reads_wait_for_a_quorum_and_see_every_completed_write() {
    let mut c = Cluster::new(3, None);
    let l = c.elect();
    c.step(l, sub(1, Cmd::Inc));
    c.run_until(|c| c.reply(1).is_some());
    c.step(l, Input::Query { tag: 2, query: () });
    // Leadership must be confirmed by a round trip first.
    assert_eq!(c.reply(2), None);
    c.run_until(|c| c.reply(2).is_some());
    assert_eq!(c.reply(2), Some(&Ok(1)));
    // An isolated leader cannot serve reads.
    c.up[l] = false;
    c.step(l, Input::Query { tag: 3, query: () });
    for _ in 0..20 {
        c.round();
    }
    assert_eq!(c.reply(3), None);
}

#[test]
fn a_follower_serves_reads_once_it_applied_through_the_leaders_read_index() {
    let mut c = Cluster::with_follower_reads(3);
    let l = c.elect();
    let f = (l + 1) % 3;
    c.run_until(|c| c.node(f).leader() == Some(l as u64));
    c.step(l, sub(1, Cmd::Inc));
    c.run_until(|c| c.reply(1).is_some());
    // Drop whatever would tell the follower that the write committed: it has not applied
    // the write when the read arrives.
    c.net.clear();
    assert!(c.node(f).applied_index() < c.node(l).applied_index());
    c.step(f, Input::QueryBatch(vec![(2, ()), (3, ())]));
    assert_eq!(c.reply(2), None);
    c.run_until(|c| c.reply(2).is_some() && c.reply(3).is_some());
    // Served by the follower, and it sees the completed write.
    let served: Vec<_> = c.replies.iter().filter(|r| r.1 >= 2).cloned().collect();
    assert_eq!(served, [(f as u64, 2, Ok(1)), (f as u64, 3, Ok(1))]);
    // A follower cut off from the leader fails the read once the forwarded request is
    // overdue, instead of leaving it waiting.
    c.up[f] = false;
    c.step(f, Input::Query { tag: 4, query: () });
    c.run_until(|c| c.reply(4).is_some());
    assert!(matches!(
        c.reply(4),
        Some(Err(SubmitError::NotLeader { .. }))
    ));
}

#[test]
fn a_query_batch_shares_one_read_index_round() {
    let mut c = Cluster::new(3, None);
    let l = c.elect();
    c.step(l, sub(1, Cmd::Inc));
    c.run_until(|c| c.reply(1).is_some());
    c.net.clear();
    c.step(l, Input::QueryBatch((2..=6).map(|t| (t, ())).collect()));
    // One confirmation round: one heartbeat to each follower, not one per query.
    assert_eq!(c.net.len(), 2);
    assert!((2..=6).all(|t| c.reply(t).is_none()));
    // Five queries wait (under one ReadIndex context).
    assert_eq!(c.node(l).pending_queries(), 5);
    c.run_until(|c| (2..=6).all(|t| c.reply(t).is_some()));
    assert!((2..=6).all(|t| c.reply(t) == Some(&Ok(1))));
    // An empty batch does nothing; a follower refuses every query with a hint.
    c.step(l, Input::QueryBatch(Vec::new()));
    let f = (l + 1) % 3;
    c.run_until(|c| c.node(f).leader() == Some(l as u64));
    c.step(f, Input::QueryBatch(vec![(7, ()), (8, ())]));
    let hint = Err(SubmitError::NotLeader {
        leader: Some(l as u64),
    });
    assert_eq!((c.reply(7), c.reply(8)), (Some(&hint), Some(&hint)));
    // An isolated leader answers none of them.
    c.up[l] = false;
    c.step(l, Input::QueryBatch(vec![(9, ()), (10, ())]));
    for _ in 0..20 {
        c.round();
    }
    assert_eq!((c.reply(9), c.reply(10)), (None, None));
}

#[test]
fn a_command_that_does_not_decode_is_skipped_alone() {
    // An entry of three commands whose middle one is garbage to the state machine.
    let mut payload = Vec::new();
    let cmds: [&[u8]; 3] = [&[], &[0xFF, 0xFF], &[]];
    super::codec::encode_entry(
        3,
        cmds.iter().map(|c| (None, *c)),
        &mut payload,
        |c, out| {
            if c.is_empty() {
                super::codec::postcard_encode(&Cmd::Inc, out);
            } else {
                out.extend_from_slice(c);
            }
        },
    );
    let mut disk = Persisted::default();
    disk.hard_state.term = 1;
    disk.entries.push(stepwise_raft::Entry {
        term: 1,
        index: 1,
        payload: Payload::Command(Bytes::from(payload)),
    });
    let mut rsm: Rsm<Counter, u64> =
        Rsm::restore(config(0, 1, None), disk, Counter::default()).unwrap();
    for _ in 0..200 {
        rsm.step(Input::Tick);
    }
    assert!(rsm.is_leader());
    assert_eq!(rsm.stats().bad_entries, 1);
    assert_eq!(rsm.state().n, 2);
}

#[test]
fn proposals_of_a_deposed_leader_fail_cleanly_once_a_newer_term_shows_up() {
    let mut c = Cluster::new(3, None);
    let old = c.elect();
    c.up[old] = false;
    for k in 0..5 {
        c.step(old, sub(100 + k, Cmd::Dec));
    }
    // The others elect a new leader and commit an Inc at the same indexes.
    c.run_until(|c| c.leader().is_some_and(|l| l != old));
    let new = c.leader().unwrap();
    c.step(new, sub(1, Cmd::Inc));
    c.run_until(|c| c.reply(1).is_some());
    // The isolated node still waits (it cannot know yet).
    for _ in 0..100 {
        c.round();
    }
    assert!((100..105).all(|k| c.reply(k).is_none()));
    c.up[old] = true;
    c.run_until(|c| (100..105).all(|k| c.reply(k).is_some()));
    for k in 100..105 {
        assert!(
            matches!(c.reply(k), Some(Err(SubmitError::NotLeader { .. }))),
            "{:?}",
            c.reply(k)
        );
    }
    c.run_until(|c| c.node(old).state().n == 1);
    assert!((0..3).all(|i| c.node(i).state().decs == 0));
}

#[test]
fn snapshots_keep_the_raft_state_small_and_restore_after_a_restart() {
    let max = 300;
    let mut c = Cluster::new(3, Some(max));
    let l = c.elect();
    for k in 1..=60 {
        c.step(l, sess(k, 1, k, Cmd::Inc));
        c.run_until(|c| c.reply(k).is_some());
        for i in 0..3 {
            assert!(c.disks[i].raft_state_size() <= 2 * max);
            assert_eq!(c.node(i).raft_state_size(), c.disks[i].raft_state_size());
        }
    }
    assert!(c.node(l).stats().snapshots_taken > 0);
    assert!(c.disks.iter().all(|d| d.snapshot.is_some()));
    c.run_until(|c| (0..3).all(|i| c.node(i).state().n == 60));
    for i in 0..3 {
        c.restart(i);
    }
    // The session table came back too: a retry of the last command is a duplicate.
    let l = c.elect();
    c.step(l, sess(1000, 1, 60, Cmd::Inc));
    c.run_until(|c| c.reply(1000).is_some());
    assert_eq!(c.reply(1000), Some(&Ok(60)));
    c.step(l, sess(1001, 1, 61, Cmd::Inc));
    c.run_until(|c| c.reply(1001).is_some());
    assert_eq!(c.reply(1001), Some(&Ok(61)));
}

#[test]
fn a_lagging_follower_catches_up_through_install_snapshot() {
    let mut c = Cluster::new(3, Some(200));
    let l = c.elect();
    let lag = (l + 1) % 3;
    c.up[lag] = false;
    for k in 1..=40 {
        c.step(l, sub(k, Cmd::Inc));
        c.run_until(|c| c.reply(k).is_some());
    }
    c.up[lag] = true;
    c.run_until(|c| c.node(lag).state().n == 40);
    assert!(c.node(lag).stats().snapshots_installed >= 1);
}

#[test]
fn a_snapshot_that_does_not_decode_halts_the_replica() {
    let mut c = Cluster::new(3, Some(200));
    let l = c.elect();
    let f = (l + 1) % 3;
    let bad = Snapshot {
        meta: stepwise_raft::SnapshotMeta {
            index: 1000,
            term: c.node(l).raft().term(),
        },
        data: Bytes::from_static(&[1, 2, 3]),
    };
    let msg = Message::InstallSnapshot {
        term: c.node(l).raft().term(),
        snapshot: bad,
        seq: 1,
    };
    c.step(
        f,
        Input::Receive {
            from: l as u64,
            msg,
        },
    );
    assert!(c.node(f).halted().is_some());
    c.step(f, sub(9, Cmd::Inc));
    assert_eq!(
        c.reply(9),
        Some(&Err(SubmitError::NotLeader { leader: None }))
    );
    // Restarting reports the cause instead of running on a broken state.
    let n = c.nodes.len();
    let err = Rsm::<Counter, u64>::restore(
        config(f as u64, n, None),
        c.disks[f].clone(),
        Counter::default(),
    );
    assert!(matches!(err, Err(RsmError::Snapshot(_))), "{err:?}");
}

#[test]
fn malformed_entries_are_skipped_and_counted() {
    // A log whose first entry is garbage (as a peer of another version might write).
    let mut disk = Persisted::default();
    disk.hard_state.term = 1;
    disk.entries.push(stepwise_raft::Entry {
        term: 1,
        index: 1,
        payload: Payload::Command(Bytes::from_static(&[9, 9, 9])),
    });
    let mut rsm: Rsm<Counter, u64> =
        Rsm::restore(config(0, 1, None), disk, Counter::default()).unwrap();
    let mut replies = Vec::new();
    for _ in 0..200 {
        for a in rsm.step(Input::Tick) {
            if let Action::Reply { tag, result } = a {
                replies.push((tag, result));
            }
        }
    }
    assert!(rsm.is_leader());
    assert_eq!(rsm.stats().bad_entries, 1);
    let out = rsm.step(sub(1, Cmd::Inc));
    assert!(out.contains(&Action::Reply {
        tag: 1,
        result: Ok(1)
    }));
}

#[test]
fn with_durable_reports_a_command_is_answered_once_its_entry_is_reported_durable() {
    let mut cfg = config(0, 1, None);
    cfg.raft.durable_reports = true;
    let mut rsm: Rsm<Counter, u64> = Rsm::new(cfg, Counter::default()).unwrap();
    let replies = |rsm: &mut Rsm<Counter, u64>, input| -> Vec<_> {
        rsm.step(input)
            .into_iter()
            .filter_map(|a| match a {
                Action::Reply { tag, result } => Some((tag, result)),
                _ => None,
            })
            .collect()
    };
    while !rsm.is_leader() {
        replies(&mut rsm, Input::Tick);
    }
    // A one-member cluster: the leader's own durable copy is the majority.
    assert!(replies(&mut rsm, sub(1, Cmd::Inc)).is_empty());
    let log = rsm.raft().log();
    let (index, term) = (log.last_index(), log.last_term());
    assert_eq!(
        replies(&mut rsm, Input::LogDurable { index, term }),
        [(1, Ok(1))]
    );
}

#[test]
fn configs_without_leader_noop_are_refused() {
    let mut cfg = config(0, 1, None);
    cfg.raft.leader_noop = false;
    assert_eq!(
        Rsm::<Counter, u64>::new(cfg, Counter::default()).err(),
        Some(RsmError::NoLeaderNoop)
    );
}

#[test]
fn compact_persists_a_snapshot_of_the_applied_state_at_once() {
    // No size trigger: only Input::Compact can snapshot.
    let mut c = Cluster::new(3, None);
    let l = c.elect();
    for k in 1..=5 {
        c.step(l, sub(k, Cmd::Inc));
        c.run_until(|c| c.reply(k).is_some());
    }
    assert!(c.disks[l].snapshot.is_none());
    let applied = c.node(l).applied_index();
    let before = c.disks[l].raft_state_size();
    c.step(l, Input::Compact);
    let snap = c.disks[l]
        .snapshot
        .clone()
        .expect("compact persisted a snapshot");
    assert_eq!(snap.meta.index, applied);
    assert_eq!(snap.data, c.node(l).encode_snapshot());
    assert_eq!(c.node(l).raft().log().snapshot_meta().index, applied);
    assert!(c.disks[l].entries.iter().all(|e| e.index > applied));
    assert!(c.disks[l].raft_state_size() < before);
    assert_eq!(c.node(l).raft_state_size(), c.disks[l].raft_state_size());
    assert_eq!(c.node(l).stats().snapshots_taken, 1);
    // What was persisted is the state: a restart from the disk alone finds it.
    c.restart(l);
    assert_eq!(c.node(l).state().n, 5);
    assert_eq!(c.node(l).applied_index(), applied);
}

#[test]
fn compact_does_nothing_when_nothing_new_was_applied() {
    let mut c = Cluster::new(3, None);
    let l = c.elect();
    c.step(l, sub(1, Cmd::Inc));
    c.run_until(|c| c.reply(1).is_some());
    c.step(l, Input::Compact);
    let disk = c.disks[l].clone();
    // Nothing applied since the snapshot: no actions at all, the disk is unchanged.
    assert_eq!(c.nodes[l].as_mut().unwrap().step(Input::Compact), []);
    assert_eq!(c.disks[l], disk);
    assert_eq!(c.node(l).stats().snapshots_taken, 1);
    // A fresh replica has applied nothing: nothing to snapshot either.
    let mut fresh: Rsm<Counter, u64> = Rsm::new(config(0, 3, None), Counter::default()).unwrap();
    assert_eq!(fresh.step(Input::Compact), []);
    assert_eq!(fresh.stats().snapshots_taken, 0);
}

// ----- ending sessions ---------------------------------------------------------------

fn sessions_everywhere(c: &Cluster) -> Vec<usize> {
    (0..c.nodes.len())
        .map(|i| c.node(i).sessions().len())
        .collect()
}

#[test]
fn ending_sessions_shrinks_the_table_on_every_replica_and_survives_a_restart() {
    let mut c = Cluster::new(3, None);
    let l = c.elect();
    for client in 1..=20 {
        c.step(l, sess(client, client, 1, Cmd::Inc));
        c.run_until(|c| c.reply(client).is_some());
    }
    c.run_until(|c| sessions_everywhere(c) == [20, 20, 20]);
    let last = c.node(l).raft().log().last_index();
    for client in 1..=15 {
        let actions = c.step_actions(l, Input::EndSession { client });
        assert!(!actions.iter().any(|a| matches!(a, Action::Reply { .. })));
    }
    // One entry each, no reply.
    assert_eq!(c.node(l).raft().log().last_index(), last + 15);
    c.run_until(|c| sessions_everywhere(c) == [5, 5, 5]);
    for i in 0..3 {
        assert_eq!(c.node(i).stats().sessions_ended, 15);
        assert!(c.node(i).sessions().get(3).is_none());
        assert_eq!(c.node(i).sessions().get(16).map(|e| e.seq), Some(1));
    }
    assert_eq!(c.replies.len(), 20);
    // Sessions not ended still deduplicate.
    c.step(l, sess(100, 16, 1, Cmd::Inc));
    assert_eq!(c.reply(100), Some(&Ok(16)));
    // Ending a session that has no entry (or again) changes nothing.
    c.step(l, Input::EndSession { client: 3 });
    c.step(l, Input::EndSession { client: 999 });
    let end = c.node(l).raft().log().last_index();
    c.run_until(|c| (0..3).all(|i| c.node(i).applied_index() == end));
    assert_eq!(sessions_everywhere(&c), [5, 5, 5]);
    assert_eq!(c.node(l).stats().sessions_ended, 15);
    // The hazard the caller must rule out: a command of an ended session runs as new.
    c.step(l, sess(101, 3, 1, Cmd::Inc));
    c.run_until(|c| c.reply(101).is_some());
    assert_eq!(c.reply(101), Some(&Ok(21)));
    c.step(l, Input::EndSession { client: 3 });
    let end = c.node(l).raft().log().last_index();
    c.run_until(|c| (0..3).all(|i| c.node(i).applied_index() == end));
    // Restarted without a snapshot: the log is applied again, ends of sessions included.
    for i in 0..3 {
        c.restart(i);
    }
    let l = c.elect();
    c.step(l, sub(200, Cmd::Null));
    c.run_until(|c| c.reply(200).is_some());
    let end = c.node(l).raft().log().last_index();
    c.run_until(|c| (0..3).all(|i| c.node(i).applied_index() == end));
    assert_eq!(sessions_everywhere(&c), [5, 5, 5]);
    // Snapshotted, then restarted: the shrunk table comes back from the snapshot alone.
    for i in 0..3 {
        c.step(i, Input::Compact);
        assert!(c.disks[i].snapshot.is_some());
        c.restart(i);
        assert_eq!(c.node(i).applied_index(), end);
    }
    assert_eq!(sessions_everywhere(&c), [5, 5, 5]);
}

#[test]
fn ending_a_session_on_a_follower_is_ignored() {
    let mut c = Cluster::new(3, None);
    let l = c.elect();
    c.step(l, sess(1, 7, 1, Cmd::Inc));
    c.run_until(|c| sessions_everywhere(c) == [1, 1, 1]);
    let f = (l + 1) % 3;
    let last = c.node(f).raft().log().last_index();
    let actions = c.step_actions(f, Input::EndSession { client: 7 });
    assert_eq!(actions, []);
    for _ in 0..50 {
        c.round();
    }
    assert_eq!(c.node(l).raft().log().last_index(), last);
    assert_eq!(sessions_everywhere(&c), [1, 1, 1]);
    assert_eq!(c.node(f).stats().sessions_ended, 0);
}

#[test]
fn a_malformed_end_session_entry_is_skipped_and_counted() {
    let mut good = Vec::new();
    super::codec::encode_end_session(5, &mut good);
    let mut command = Vec::new();
    super::codec::encode_entry(
        1,
        [(Some(Session { client: 5, seq: 1 }), Cmd::Inc)],
        &mut command,
        super::codec::postcard_encode,
    );
    let entries: [&[u8]; 5] = [
        &command,
        &[super::codec::ENTRY_FORMAT, 1, 2],       // no client
        &[super::codec::ENTRY_FORMAT, 1, 2, 0x80], // a truncated varint
        &[super::codec::ENTRY_FORMAT, 1, 2, 5, 9], // a trailing byte: still ends 5
        &good,                                     // 5 again: nothing left to remove
    ];
    let rsm = lone_leader_restored(entries.iter().map(|d| Bytes::copy_from_slice(d)));
    assert!(rsm.is_leader());
    assert!(rsm.applied_index() > 5);
    assert_eq!(rsm.state().n, 1);
    assert_eq!(rsm.stats().bad_entries, 3);
    assert_eq!(rsm.stats().sessions_ended, 1);
    assert!(rsm.sessions().is_empty());
}

/// A one-member `Rsm` restored from a log of raw command entries (term 1, one entry per
/// item), ticked until it leads and has applied them.
fn lone_leader_restored(entries: impl IntoIterator<Item = Bytes>) -> Rsm<Counter, u64> {
    let mut disk = Persisted::default();
    disk.hard_state.term = 1;
    for (k, data) in entries.into_iter().enumerate() {
        disk.entries.push(stepwise_raft::Entry {
            term: 1,
            index: k as u64 + 1,
            payload: Payload::Command(data),
        });
    }
    let mut rsm: Rsm<Counter, u64> =
        Rsm::restore(config(0, 1, None), disk, Counter::default()).unwrap();
    for _ in 0..200 {
        rsm.step(Input::Tick);
    }
    rsm
}

#[test]
fn entries_of_the_older_postcard_format_still_apply() {
    // A log persisted by a version that wrote entries as format 1: postcard, a count and
    // then (session, command) envelopes. Replayed after an upgrade, its commands must
    // apply as they did then, not be skipped as unreadable.
    let mut old = vec![1u8];
    old = postcard::to_extend(&3u64, old).unwrap();
    let seven = Some(Session { client: 7, seq: 1 });
    for (session, cmd) in [(seven, Cmd::Inc), (None, Cmd::Inc), (seven, Cmd::Inc)] {
        old = postcard::to_extend(&(session, cmd), old).unwrap();
    }
    // Malformed old entries: a truncated envelope ends the entry (the commands before it
    // apply), trailing bytes are counted; both as that version did.
    let mut truncated = vec![1u8, 2];
    truncated = postcard::to_extend(&(None::<Session>, Cmd::Inc), truncated).unwrap();
    truncated.push(1); // a session flag with no session
    let mut trailing = vec![1u8, 1];
    trailing = postcard::to_extend(&(None::<Session>, Cmd::Inc), trailing).unwrap();
    trailing.push(0);
    let rsm = lone_leader_restored([old, truncated, trailing].map(Bytes::from));
    assert!(rsm.is_leader() && rsm.applied_index() > 3);
    // The retry of client 7's seq 1 was a duplicate then, and is one now.
    assert_eq!(rsm.state().n, 4);
    assert_eq!(rsm.stats().duplicates, 1);
    assert_eq!(rsm.sessions().get(7).map(|e| e.seq), Some(1));
    assert_eq!(rsm.stats().bad_entries, 2);
}
