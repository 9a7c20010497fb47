//! Single-node tests: exact actions for one input, named for the behaviour, citing the
//! extended Raft paper (sections) or Ongaro's thesis.

use super::*;
use quickcheck::{Arbitrary, Gen, QuickCheck};

fn config(id: NodeId) -> Config {
    Config::new(id, [1, 2, 3]).with_seed(7)
}

fn cmd(s: &str) -> Payload {
    Payload::Command(Bytes::copy_from_slice(s.as_bytes()))
}

fn entry(index: Index, term: Term, s: &str) -> Entry {
    Entry {
        term,
        index,
        payload: cmd(s),
    }
}

fn recv(node: &mut Node, from: NodeId, msg: Message) -> Vec<Action> {
    node.step(Input::Receive { from, msg })
}

/// Ticks until the node emits something; returns those actions and the ticks it took.
fn tick_until_action(node: &mut Node) -> (Vec<Action>, u32) {
    for t in 1..=10_000 {
        let out = node.step(Input::Tick);
        if !out.is_empty() {
            return (out, t);
        }
    }
    panic!("no action after 10000 ticks");
}

fn sends(actions: &[Action]) -> Vec<(NodeId, &Message)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { to, msg } => Some((*to, msg)),
            _ => None,
        })
        .collect()
}

/// Makes node 1 leader of term 1 (pre-vote, vote, no-op appended) and returns the actions
/// of becoming leader.
fn elect(node: &mut Node) -> Vec<Action> {
    tick_until_action(node);
    let pre = Message::VoteReply {
        term: node.term() + 1,
        granted: true,
        pre_vote: true,
    };
    recv(node, 2, pre);
    let vote = Message::VoteReply {
        term: node.term(),
        granted: true,
        pre_vote: false,
    };
    let out = recv(node, 2, vote);
    assert!(node.is_leader());
    out
}

/// Golden values: the seeded election jitter must not change, or stored failing seeds of
/// simulator runs would stop replaying the same schedule.
#[test]
fn election_timeout_jitter_is_stable_for_a_seed() {
    let firsts: Vec<u32> = [1, 2, 3]
        .iter()
        .map(|&seed| {
            let mut node = Node::new(Config::new(1, [1, 2, 3]).with_seed(seed)).unwrap();
            tick_until_action(&mut node).1
        })
        .collect();
    assert_eq!(firsts, vec![GOLDEN[0], GOLDEN[1], GOLDEN[2]]);
}
const GOLDEN: [u32; 3] = [43, 32, 59];

/// Thesis 9.6: a follower whose election timeout elapses first asks for pre-votes, without
/// changing its term or vote (so nothing is persisted).
#[test]
fn election_timeout_starts_a_pre_vote_without_changing_term() {
    let mut node = Node::new(config(1)).unwrap();
    let (out, ticks) = tick_until_action(&mut node);
    assert!(
        (30..=60).contains(&ticks),
        "timeout {ticks} outside 30..=60"
    );
    let req = Message::RequestVote {
        term: 1,
        last_index: 0,
        last_term: 0,
        pre_vote: true,
    };
    assert_eq!(
        out,
        vec![
            Action::Send {
                to: 2,
                msg: req.clone()
            },
            Action::Send { to: 3, msg: req },
        ]
    );
    assert_eq!(node.term(), 0);
    assert_eq!(node.role(), Role::PreCandidate);
}

/// Section 5.2 and Figure 2 ("persist before responding"): after a pre-vote majority the
/// node increments its term, votes for itself, persists that, and only then asks for votes.
#[test]
fn pre_vote_majority_persists_term_and_vote_before_requesting_votes() {
    let mut node = Node::new(config(1)).unwrap();
    tick_until_action(&mut node);
    let out = recv(
        &mut node,
        3,
        Message::VoteReply {
            term: 1,
            granted: true,
            pre_vote: true,
        },
    );
    let req = Message::RequestVote {
        term: 1,
        last_index: 0,
        last_term: 0,
        pre_vote: false,
    };
    assert_eq!(
        out,
        vec![
            Action::SaveHardState(HardState {
                term: 1,
                vote: Some(1)
            }),
            Action::Send {
                to: 2,
                msg: req.clone()
            },
            Action::Send { to: 3, msg: req },
            Action::LeaderChanged {
                term: 1,
                leader: None
            },
        ]
    );
    assert_eq!(node.role(), Role::Candidate);
}

/// Section 5.2 and section 8: a candidate with a majority becomes leader, appends a no-op
/// for its term (persisted first), and sends it to every follower.
#[test]
fn winning_candidate_appends_noop_then_replicates_it() {
    let mut node = Node::new(config(1)).unwrap();
    let out = elect(&mut node);
    let noop = Entry {
        term: 1,
        index: 1,
        payload: Payload::Noop,
    };
    let append = |to| Action::Send {
        to,
        msg: Message::AppendEntries {
            term: 1,
            prev_index: 0,
            prev_term: 0,
            entries: vec![noop.clone()],
            commit: 0,
            seq: 1,
        },
    };
    assert_eq!(
        out,
        vec![
            Action::AppendLog(vec![noop.clone()]),
            append(2),
            append(3),
            Action::LeaderChanged {
                term: 1,
                leader: Some(1)
            },
        ]
    );
}

/// Figure 2, RequestVote receiver: the vote is persisted before the reply leaves.
#[test]
fn granted_vote_is_persisted_before_the_reply() {
    let mut node = Node::new(config(2)).unwrap();
    let out = recv(
        &mut node,
        1,
        Message::RequestVote {
            term: 1,
            last_index: 0,
            last_term: 0,
            pre_vote: false,
        },
    );
    assert_eq!(
        out,
        vec![
            Action::SaveHardState(HardState {
                term: 1,
                vote: None
            }),
            Action::SaveHardState(HardState {
                term: 1,
                vote: Some(1)
            }),
            Action::Send {
                to: 1,
                msg: Message::VoteReply {
                    term: 1,
                    granted: true,
                    pre_vote: false
                }
            },
            Action::LeaderChanged {
                term: 1,
                leader: None
            },
        ]
    );
}

/// Section 5.2: at most one vote per term.
#[test]
fn votes_at_most_once_per_term() {
    let mut node = Node::new(config(2)).unwrap();
    let req = Message::RequestVote {
        term: 1,
        last_index: 0,
        last_term: 0,
        pre_vote: false,
    };
    recv(&mut node, 1, req.clone());
    let out = recv(&mut node, 3, req);
    assert_eq!(
        out,
        vec![Action::Send {
            to: 3,
            msg: Message::VoteReply {
                term: 1,
                granted: false,
                pre_vote: false
            }
        }]
    );
}

/// Section 5.4.1: no vote for a candidate whose log is less up to date.
#[test]
fn refuses_vote_to_candidate_with_older_log() {
    let persisted = Persisted {
        hard_state: HardState {
            term: 2,
            vote: None,
        },
        snapshot: None,
        entries: vec![entry(1, 1, "a"), entry(2, 2, "b")],
    };
    let mut node = Node::restore(config(2), persisted).unwrap();
    // Same last term, shorter log.
    let out = recv(
        &mut node,
        1,
        Message::RequestVote {
            term: 3,
            last_index: 1,
            last_term: 2,
            pre_vote: false,
        },
    );
    assert_eq!(
        sends(&out),
        vec![(
            1,
            &Message::VoteReply {
                term: 3,
                granted: false,
                pre_vote: false
            }
        )]
    );
}

/// Section 5.1: a request with a stale term is answered with the current term, so the
/// stale leader steps down; nothing else changes.
#[test]
fn stale_append_entries_is_answered_with_current_term() {
    let persisted = Persisted {
        hard_state: HardState {
            term: 5,
            vote: None,
        },
        ..Persisted::default()
    };
    let mut node = Node::restore(config(2), persisted).unwrap();
    let out = recv(
        &mut node,
        1,
        Message::AppendEntries {
            term: 4,
            prev_index: 0,
            prev_term: 0,
            entries: vec![entry(1, 4, "x")],
            commit: 1,
            seq: 9,
        },
    );
    assert_eq!(out.len(), 1);
    assert!(matches!(
        out[0],
        Action::Send {
            to: 1,
            msg: Message::AppendReply {
                term: 5,
                seq: 9,
                ..
            }
        }
    ));
    assert_eq!(node.log().last_index(), 0);
}

/// Section 5.3: a follower deletes a conflicting suffix, appends the new entries (durably,
/// before replying), and applies what the leader says is committed.
#[test]
fn conflicting_suffix_is_truncated_persisted_then_acknowledged() {
    let persisted = Persisted {
        hard_state: HardState {
            term: 2,
            vote: None,
        },
        snapshot: None,
        entries: vec![entry(1, 1, "a"), entry(2, 1, "stale"), entry(3, 1, "stale")],
    };
    let mut node = Node::restore(config(2), persisted).unwrap();
    let out = recv(
        &mut node,
        1,
        Message::AppendEntries {
            term: 3,
            prev_index: 1,
            prev_term: 1,
            entries: vec![entry(2, 3, "b")],
            commit: 2,
            seq: 4,
        },
    );
    assert_eq!(
        out,
        vec![
            Action::SaveHardState(HardState {
                term: 3,
                vote: None
            }),
            Action::TruncateLog { from: 2 },
            Action::AppendLog(vec![entry(2, 3, "b")]),
            Action::Send {
                to: 1,
                msg: Message::AppendReply {
                    term: 3,
                    result: AppendResult::Success { match_index: 2 },
                    seq: 4
                }
            },
            Action::Apply(entry(1, 1, "a")),
            Action::Apply(entry(2, 3, "b")),
            Action::LeaderChanged {
                term: 3,
                leader: Some(1)
            },
        ]
    );
}

/// Section 5.3 (fast backup): a mismatch at prev_index returns the conflicting term and the
/// first index of that term, so the leader can skip the whole term.
#[test]
fn mismatch_returns_conflict_term_and_its_first_index() {
    let persisted = Persisted {
        hard_state: HardState {
            term: 3,
            vote: None,
        },
        snapshot: None,
        entries: vec![
            entry(1, 1, "a"),
            entry(2, 2, "b"),
            entry(3, 2, "c"),
            entry(4, 2, "d"),
        ],
    };
    let mut node = Node::restore(config(2), persisted).unwrap();
    let out = recv(
        &mut node,
        1,
        Message::AppendEntries {
            term: 3,
            prev_index: 4,
            prev_term: 3,
            entries: vec![],
            commit: 0,
            seq: 1,
        },
    );
    assert_eq!(
        sends(&out),
        vec![(
            1,
            &Message::AppendReply {
                term: 3,
                result: AppendResult::Conflict {
                    rejected: 4,
                    hint_term: Some(2),
                    hint_index: 2
                },
                seq: 1
            }
        )]
    );
    // A log that is too short says where it ends.
    let out = recv(
        &mut node,
        1,
        Message::AppendEntries {
            term: 3,
            prev_index: 9,
            prev_term: 3,
            entries: vec![],
            commit: 0,
            seq: 2,
        },
    );
    assert_eq!(
        sends(&out),
        vec![(
            1,
            &Message::AppendReply {
                term: 3,
                result: AppendResult::Conflict {
                    rejected: 9,
                    hint_term: None,
                    hint_index: 5
                },
                seq: 2
            }
        )]
    );
}

/// A proposal to a follower is refused with the known leader.
#[test]
fn proposal_on_follower_names_the_leader() {
    let mut node = Node::new(config(2)).unwrap();
    recv(
        &mut node,
        3,
        Message::AppendEntries {
            term: 1,
            prev_index: 0,
            prev_term: 0,
            entries: vec![],
            commit: 0,
            seq: 1,
        },
    );
    let out = node.step(Input::Propose(Bytes::from_static(b"x")));
    assert_eq!(out, vec![Action::NotLeader { leader: Some(3) }]);
}

/// Section 5.3/5.4: the leader commits once a majority stores an entry of its term, and
/// applies in order.
#[test]
fn leader_commits_with_a_majority_and_applies() {
    let mut node = Node::new(config(1)).unwrap();
    elect(&mut node);
    let out = node.step(Input::Propose(Bytes::from_static(b"p")));
    assert_eq!(out[0], Action::AppendLog(vec![entry(2, 1, "p")]));
    assert_eq!(out[1], Action::Proposed { index: 2, term: 1 });
    let out = recv(
        &mut node,
        2,
        Message::AppendReply {
            term: 1,
            result: AppendResult::Success { match_index: 2 },
            seq: 1,
        },
    );
    let applied: Vec<_> = out
        .iter()
        .filter_map(|a| match a {
            Action::Apply(e) => Some(e.index),
            _ => None,
        })
        .collect();
    assert_eq!(applied, vec![1, 2]);
    assert_eq!(node.commit_index(), 2);
}

fn applied_indexes(out: &[Action]) -> Vec<Index> {
    out.iter()
        .filter_map(|a| match a {
            Action::Apply(e) => Some(e.index),
            _ => None,
        })
        .collect()
}

fn ack(node: &mut Node, from: NodeId, match_index: Index) -> Vec<Action> {
    recv(
        node,
        from,
        Message::AppendReply {
            term: node.term(),
            result: AppendResult::Success { match_index },
            seq: 1,
        },
    )
}

/// Thesis 10.2.1 with `durable_reports`: the leader counts its own log only as far as the
/// adapter reported it durable, so one follower's acknowledgement is not a majority until
/// the leader's report arrives, while two followers are a majority on their own.
#[test]
fn with_durable_reports_the_leader_counts_only_its_durable_log() {
    let mut cfg = config(1);
    cfg.durable_reports = true;
    let mut node = Node::new(cfg).unwrap();
    elect(&mut node);
    node.step(Input::Propose(Bytes::from_static(b"p")));
    // One follower holds 1..=2, the leader reported nothing yet: no commit.
    assert!(applied_indexes(&ack(&mut node, 2, 2)).is_empty());
    assert_eq!(node.commit_index(), 0);
    // A report about an entry that is not in the log is ignored.
    let ignored = node.stats().ignored_inputs;
    assert!(
        node.step(Input::LogDurable { index: 2, term: 9 })
            .is_empty()
    );
    assert_eq!(node.stats().ignored_inputs, ignored + 1);
    // The leader's copy of the no-op is durable: 1 commits (leader + follower 2).
    assert_eq!(
        applied_indexes(&node.step(Input::LogDurable { index: 1, term: 1 })),
        [1]
    );
    // The second follower's acknowledgement makes 2 a majority without the leader.
    assert_eq!(applied_indexes(&ack(&mut node, 3, 2)), [2]);
    assert_eq!(node.commit_index(), 2);
    // A later report changes nothing already committed.
    assert!(applied_indexes(&node.step(Input::LogDurable { index: 2, term: 1 })).is_empty());
}

/// Without `durable_reports` a report is misuse and ignored; the leader counts its whole
/// log (the adapter syncs before it steps acknowledgements).
#[test]
fn without_durable_reports_a_report_is_ignored() {
    let mut node = Node::new(config(1)).unwrap();
    elect(&mut node);
    node.step(Input::Propose(Bytes::from_static(b"p")));
    assert!(
        node.step(Input::LogDurable { index: 2, term: 1 })
            .is_empty()
    );
    assert_eq!(node.stats().ignored_inputs, 1);
    assert_eq!(applied_indexes(&ack(&mut node, 2, 2)), [1, 2]);
}

/// A follower whose log is cut back forgets durability past the cut, so entries it
/// appends later do not count as durable on a report about the old ones.
#[test]
fn truncation_lowers_the_durable_index() {
    let mut cfg = config(2);
    cfg.durable_reports = true;
    let mut node = Node::new(cfg).unwrap();
    let append = |term, prev_index, prev_term, entries| Message::AppendEntries {
        term,
        prev_index,
        prev_term,
        entries,
        commit: 0,
        seq: 1,
    };
    recv(
        &mut node,
        1,
        append(1, 0, 0, vec![entry(1, 1, "a"), entry(2, 1, "b")]),
    );
    assert!(
        node.step(Input::LogDurable { index: 2, term: 1 })
            .is_empty()
    );
    // Leader 3 of term 2 overwrites index 2.
    recv(&mut node, 3, append(2, 1, 1, vec![entry(2, 2, "c")]));
    // The old report's entry is gone: ignored.
    let ignored = node.stats().ignored_inputs;
    node.step(Input::LogDurable { index: 2, term: 1 });
    assert_eq!(node.stats().ignored_inputs, ignored + 1);
    assert_eq!(node.durable, 1);
}

/// Thesis 6.4: a read is confirmed by a heartbeat round acknowledged by a majority, and
/// carries the commit index at the time it was asked.
#[test]
fn read_index_waits_for_a_majority_round() {
    let mut node = Node::new(config(1)).unwrap();
    elect(&mut node);
    recv(
        &mut node,
        2,
        Message::AppendReply {
            term: 1,
            result: AppendResult::Success { match_index: 1 },
            seq: 1,
        },
    );
    assert_eq!(node.commit_index(), 1);
    let out = node.step(Input::ReadIndex { ctx: 77 });
    let round: Vec<_> = sends(&out);
    assert_eq!(round.len(), 2, "a heartbeat to each follower: {out:?}");
    assert!(!out.iter().any(|a| matches!(a, Action::ReadReady { .. })));
    let seq = match round[0].1 {
        Message::AppendEntries { seq, .. } => *seq,
        m => panic!("unexpected {m:?}"),
    };
    let out = recv(
        &mut node,
        3,
        Message::AppendReply {
            term: 1,
            result: AppendResult::Success { match_index: 1 },
            seq,
        },
    );
    assert!(
        out.contains(&Action::ReadReady { ctx: 77, index: 1 }),
        "{out:?}"
    );
}

/// A follower fails reads at once, naming the leader it knows.
#[test]
fn read_index_on_follower_fails() {
    let mut node = Node::new(config(2)).unwrap();
    assert_eq!(
        node.step(Input::ReadIndex { ctx: 1 }),
        vec![Action::ReadFailed {
            ctx: 1,
            leader: None
        }]
    );
}

/// An empty AppendEntries (a heartbeat) from the leader of `term`.
fn heartbeat(term: Term, seq: u64) -> Message {
    Message::AppendEntries {
        term,
        prev_index: 0,
        prev_term: 0,
        entries: vec![],
        commit: 0,
        seq,
    }
}

/// Makes node 2 a follower of leader 1 in term 1.
fn follower_of_1(cfg: Config) -> Node {
    let mut node = Node::new(cfg).unwrap();
    recv(&mut node, 1, heartbeat(1, 1));
    assert_eq!(node.leader(), Some(1));
    node
}

fn follower_reads(id: NodeId) -> Config {
    let mut cfg = config(id);
    cfg.follower_reads = true;
    cfg
}

/// Thesis 6.4 (reads on followers): a follower forwards the read to the leader and reports
/// the index the leader answers; the service waits for it before serving.
#[test]
fn follower_forwards_a_read_and_reports_the_leaders_index() {
    let mut node = follower_of_1(follower_reads(2));
    let id = forward(&mut node, 9);
    let reply = |index| Message::ReadIndexReply {
        term: 1,
        ctx: id,
        index,
    };
    let out = recv(&mut node, 1, reply(Some(4)));
    assert_eq!(out, vec![Action::ReadReady { ctx: 9, index: 4 }]);
    // A duplicate of the answer is ignored.
    assert!(recv(&mut node, 1, reply(Some(4))).is_empty());
    // A refusal fails the read, naming the leader.
    let id = forward(&mut node, 10);
    let out = recv(
        &mut node,
        1,
        Message::ReadIndexReply {
            term: 1,
            ctx: id,
            index: None,
        },
    );
    assert_eq!(
        out,
        vec![Action::ReadFailed {
            ctx: 10,
            leader: Some(1)
        }]
    );
    assert_eq!(
        (
            node.stats().reads_forwarded,
            node.stats().forwarded_reads_failed
        ),
        (2, 1)
    );
}

/// Steps `ReadIndex { ctx }` on a follower of node 1 and returns the tag it forwarded the
/// read under (its own, not the service's).
fn forward(node: &mut Node, ctx: u64) -> u64 {
    let out = node.step(Input::ReadIndex { ctx });
    match &out[..] {
        [
            Action::Send {
                to: 1,
                msg: Message::ReadIndex { term, ctx: id },
            },
        ] if *term == node.term() => *id,
        other => panic!("expected one ReadIndex to the leader, got {other:?}"),
    }
}

/// The tag a follower forwards reads under is fresh after a restart (with a fresh seed,
/// as adapters give every start): an answer to a read forwarded before the restart, still
/// in flight, does not answer a read forwarded after it.
#[test]
fn an_answer_from_before_a_restart_does_not_answer_a_read_after_it() {
    let mut before = follower_of_1(follower_reads(2).with_seed(1));
    let old = forward(&mut before, 1);
    let mut after = follower_of_1(follower_reads(2).with_seed(2));
    let new = forward(&mut after, 1);
    assert_ne!(old, new);
    let stale = Message::ReadIndexReply {
        term: 1,
        ctx: old,
        index: Some(1),
    };
    assert!(recv(&mut after, 1, stale).is_empty());
    // Consecutive reads get consecutive tags.
    assert_eq!(forward(&mut after, 2), new.wrapping_add(1));
}

/// Without `follower_reads`, or without a known leader, a follower fails reads at once.
#[test]
fn follower_reads_need_the_option_and_a_leader() {
    let mut node = follower_of_1(config(2));
    assert_eq!(
        node.step(Input::ReadIndex { ctx: 1 }),
        vec![Action::ReadFailed {
            ctx: 1,
            leader: Some(1)
        }]
    );
    let mut node = Node::new(follower_reads(2)).unwrap();
    assert_eq!(
        node.step(Input::ReadIndex { ctx: 1 }),
        vec![Action::ReadFailed {
            ctx: 1,
            leader: None
        }]
    );
}

/// A forwarded read whose answer was lost fails after `election_ticks_min` ticks, and one
/// still waiting when the term changes fails at the next tick; a late answer is ignored.
#[test]
fn forwarded_reads_fail_when_overdue_or_when_the_term_changes() {
    let cfg = follower_reads(2);
    let patience = cfg.election_ticks_min;
    let mut node = follower_of_1(cfg);
    let id = forward(&mut node, 1);
    for _ in 1..patience {
        let out = node.step(Input::Tick);
        assert!(!out.iter().any(|a| matches!(a, Action::ReadFailed { .. })));
        // Keep the leader alive so no election starts.
        recv(&mut node, 1, heartbeat(1, 2));
    }
    let out = node.step(Input::Tick);
    assert!(out.contains(&Action::ReadFailed {
        ctx: 1,
        leader: Some(1)
    }));
    let late = Message::ReadIndexReply {
        term: 1,
        ctx: id,
        index: Some(3),
    };
    assert!(recv(&mut node, 1, late).is_empty());

    // A new term (leader 3 of term 2) fails the read forwarded in term 1.
    node.step(Input::ReadIndex { ctx: 2 });
    recv(&mut node, 3, heartbeat(2, 1));
    let out = node.step(Input::Tick);
    assert!(out.contains(&Action::ReadFailed {
        ctx: 2,
        leader: Some(3)
    }));
    assert_eq!(node.stats().forwarded_reads_failed, 2);
}

/// The leader serves a follower's read with the same confirmation round as its own: the
/// answer (the commit index when the round started) leaves once a majority acknowledged.
#[test]
fn leader_answers_a_forwarded_read_after_a_majority_round() {
    let mut node = Node::new(config(1)).unwrap();
    elect(&mut node);
    let ack = |seq| Message::AppendReply {
        term: 1,
        result: AppendResult::Success { match_index: 1 },
        seq,
    };
    recv(&mut node, 2, ack(1));
    assert_eq!(node.commit_index(), 1);
    let out = recv(&mut node, 3, Message::ReadIndex { term: 1, ctx: 5 });
    let round = sends(&out);
    assert_eq!(round.len(), 2, "a heartbeat to each follower: {out:?}");
    assert!(
        round
            .iter()
            .all(|(_, m)| matches!(m, Message::AppendEntries { .. }))
    );
    let seq = match round[0].1 {
        Message::AppendEntries { seq, .. } => *seq,
        m => panic!("unexpected {m:?}"),
    };
    let out = recv(&mut node, 2, ack(seq));
    assert!(
        out.contains(&Action::Send {
            to: 3,
            msg: Message::ReadIndexReply {
                term: 1,
                ctx: 5,
                index: Some(1)
            }
        }),
        "{out:?}"
    );
}

/// A leader that steps down refuses the forwarded reads it still holds, so the followers
/// need not wait for their timeout; a node that is not the leader refuses at once.
#[test]
fn forwarded_reads_are_refused_by_a_deposed_leader_and_by_non_leaders() {
    let mut node = Node::new(config(1)).unwrap();
    elect(&mut node);
    recv(&mut node, 3, Message::ReadIndex { term: 1, ctx: 5 });
    // A newer term deposes the leader.
    let out = recv(&mut node, 2, heartbeat(2, 1));
    assert!(
        out.contains(&Action::Send {
            to: 3,
            msg: Message::ReadIndexReply {
                term: 2,
                ctx: 5,
                index: None
            }
        }),
        "{out:?}"
    );
    let out = recv(&mut node, 3, Message::ReadIndex { term: 2, ctx: 6 });
    assert_eq!(
        sends(&out),
        [(
            3,
            &Message::ReadIndexReply {
                term: 2,
                ctx: 6,
                index: None
            }
        )]
    );
}

/// Section 7: a snapshot older than what the follower has committed is not installed.
#[test]
fn stale_snapshot_is_not_installed() {
    let persisted = Persisted {
        hard_state: HardState {
            term: 2,
            vote: None,
        },
        snapshot: None,
        entries: vec![entry(1, 1, "a"), entry(2, 2, "b")],
    };
    let mut node = Node::restore(config(2), persisted).unwrap();
    recv(
        &mut node,
        1,
        Message::AppendEntries {
            term: 2,
            prev_index: 2,
            prev_term: 2,
            entries: vec![],
            commit: 2,
            seq: 1,
        },
    );
    assert_eq!(node.commit_index(), 2);
    let out = recv(
        &mut node,
        1,
        Message::InstallSnapshot {
            term: 2,
            snapshot: Snapshot {
                meta: SnapshotMeta { index: 1, term: 1 },
                data: Bytes::from_static(b"old"),
            },
            seq: 2,
        },
    );
    assert_eq!(
        out,
        vec![Action::Send {
            to: 1,
            msg: Message::SnapshotReply {
                term: 2,
                match_index: 2,
                seq: 2
            }
        }]
    );
}

/// Section 7: a newer snapshot replaces the log and the service state, persisted first.
#[test]
fn newer_snapshot_is_saved_then_restored() {
    let mut node = Node::new(config(2)).unwrap();
    let snap = Snapshot {
        meta: SnapshotMeta { index: 10, term: 1 },
        data: Bytes::from_static(b"state"),
    };
    let out = recv(
        &mut node,
        1,
        Message::InstallSnapshot {
            term: 1,
            snapshot: snap.clone(),
            seq: 3,
        },
    );
    assert_eq!(
        out[0],
        Action::SaveHardState(HardState {
            term: 1,
            vote: None
        })
    );
    assert_eq!(out[1], Action::SaveSnapshot(snap.clone()));
    assert_eq!(out[2], Action::RestoreSnapshot(snap));
    assert_eq!(node.commit_index(), 10);
    assert_eq!(node.applied_index(), 10);
    assert_eq!(node.log().last_index(), 10);
}

/// Messages from strangers or from ourselves are dropped and counted.
#[test]
fn messages_from_unknown_peers_are_dropped() {
    let mut node = Node::new(config(2)).unwrap();
    let msg = Message::VoteReply {
        term: 9,
        granted: true,
        pre_vote: false,
    };
    assert!(recv(&mut node, 42, msg.clone()).is_empty());
    assert!(recv(&mut node, 2, msg).is_empty());
    assert_eq!(node.stats().dropped_messages, 2);
    assert_eq!(node.term(), 0);
}

// ----- "no input panics" -------------------------------------------------------------

#[derive(Clone, Debug)]
struct AnyInput(Input);

fn small(g: &mut Gen) -> u64 {
    u64::from(u8::arbitrary(g) % 12)
}

impl Arbitrary for AnyInput {
    fn arbitrary(g: &mut Gen) -> Self {
        let from = u64::from(u8::arbitrary(g) % 5);
        let entries = |g: &mut Gen, prev: u64| {
            let n = usize::from(u8::arbitrary(g) % 4);
            let mut t = small(g);
            (0..n)
                .map(|k| {
                    if bool::arbitrary(g) {
                        t += 1;
                    }
                    Entry {
                        term: t,
                        index: if u8::arbitrary(g) % 10 == 0 {
                            small(g)
                        } else {
                            prev + 1 + k as u64
                        },
                        payload: if bool::arbitrary(g) {
                            Payload::Noop
                        } else {
                            Payload::Command(Bytes::from(vec![u8::arbitrary(g); 2]))
                        },
                    }
                })
                .collect::<Vec<_>>()
        };
        let input = match u8::arbitrary(g) % 10 {
            0 | 1 => Input::Tick,
            2 => Input::Propose(Bytes::from_static(b"p")),
            3 => Input::ReadIndex { ctx: small(g) },
            4 => Input::Snapshot {
                index: small(g),
                data: Bytes::from_static(b"s"),
            },
            5 => Input::LogDurable {
                index: small(g),
                term: small(g),
            },
            _ => {
                let term = small(g);
                let msg = match u8::arbitrary(g) % 8 {
                    0 => Message::RequestVote {
                        term,
                        last_index: small(g),
                        last_term: small(g),
                        pre_vote: bool::arbitrary(g),
                    },
                    1 => Message::VoteReply {
                        term,
                        granted: bool::arbitrary(g),
                        pre_vote: bool::arbitrary(g),
                    },
                    2 => {
                        let prev = small(g);
                        Message::AppendEntries {
                            term,
                            prev_index: prev,
                            prev_term: small(g),
                            entries: entries(g, prev),
                            commit: small(g),
                            seq: small(g),
                        }
                    }
                    3 => Message::AppendReply {
                        term,
                        result: if bool::arbitrary(g) {
                            AppendResult::Success {
                                match_index: small(g),
                            }
                        } else {
                            AppendResult::Conflict {
                                rejected: small(g),
                                hint_term: if bool::arbitrary(g) {
                                    Some(small(g))
                                } else {
                                    None
                                },
                                hint_index: small(g),
                            }
                        },
                        seq: small(g),
                    },
                    4 => Message::InstallSnapshot {
                        term,
                        snapshot: Snapshot {
                            meta: SnapshotMeta {
                                index: small(g),
                                term: small(g),
                            },
                            data: Bytes::new(),
                        },
                        seq: small(g),
                    },
                    5 => Message::SnapshotReply {
                        term,
                        match_index: small(g),
                        seq: small(g),
                    },
                    6 => Message::ReadIndex {
                        term,
                        ctx: small(g),
                    },
                    _ => Message::ReadIndexReply {
                        term,
                        ctx: small(g),
                        index: bool::arbitrary(g).then(|| small(g)),
                    },
                };
                Input::Receive { from, msg }
            }
        };
        AnyInput(input)
    }
}

/// Property: no sequence of inputs, however nonsensical, panics the node or breaks its
/// basic invariants (commit within the log, applied <= commit, one Apply per index, in
/// order).
#[test]
fn prop_no_input_panics_or_breaks_invariants() {
    fn prop(inputs: Vec<AnyInput>, single: bool, durable_reports: bool) -> bool {
        let members: Vec<u64> = if single { vec![1] } else { vec![1, 2, 3] };
        let mut cfg = Config::new(1, members).with_seed(3);
        cfg.durable_reports = durable_reports;
        // Forwarded reads whenever the node is a follower with a leader.
        cfg.follower_reads = !durable_reports;
        let mut node = Node::new(cfg).unwrap();
        let mut last_applied = 0;
        for AnyInput(input) in inputs {
            for a in node.step(input) {
                match a {
                    Action::Apply(e) => {
                        if e.index != last_applied + 1 {
                            return false;
                        }
                        last_applied = e.index;
                    }
                    Action::RestoreSnapshot(s) => last_applied = s.meta.index,
                    _ => {}
                }
            }
            if node.commit_index() > node.log().last_index()
                || node.durable > node.log().last_index()
                || node.applied_index() > node.commit_index()
                || node.applied_index() != last_applied
            {
                return false;
            }
        }
        true
    }
    QuickCheck::new()
        .rng(Gen::from_size_and_seed(200, 0x5eed_0003))
        .tests(2000)
        .quickcheck(prop as fn(Vec<AnyInput>, bool, bool) -> bool);
}

/// A batch of proposals becomes consecutive entries in one persistence action, with one
/// answer per command in order; a follower refuses every command of a batch.
#[test]
fn propose_batch_appends_once_and_answers_each_command() {
    let mut node = Node::new(config(1)).unwrap();
    elect(&mut node);
    let out = node.step(Input::ProposeBatch(vec![
        Bytes::from_static(b"a"),
        Bytes::from_static(b"b"),
    ]));
    assert_eq!(
        out[..3],
        [
            Action::AppendLog(vec![entry(2, 1, "a"), entry(3, 1, "b")]),
            Action::Proposed { index: 2, term: 1 },
            Action::Proposed { index: 3, term: 1 },
        ]
    );
    let mut follower = Node::new(config(2)).unwrap();
    assert_eq!(
        follower.step(Input::ProposeBatch(vec![Bytes::new(), Bytes::new()])),
        vec![Action::NotLeader { leader: None }; 2]
    );
}
