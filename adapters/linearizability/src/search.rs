//! The Wing-Gong-Lowe search over one partition, as in Porcupine's `checkSingle`.
//!
//! Every operation becomes a call event and a return event, sorted by time (calls before
//! returns at equal times, pending returns last) in a doubly linked list. The search walks
//! the list from the front: at a call it tries to linearize that operation next (a legal
//! model step to a configuration not seen before), removing ("lifting") the call and its
//! return from the list and restarting from the front; at a return of an operation not yet
//! linearized it has gone too far, so it undoes the most recent linearization and tries the
//! next call after it. The history is linearizable once every complete operation is
//! linearized; it is not once the search must backtrack with nothing left to undo.

use std::time::Instant;

use crate::history::Operation;
use crate::memo::{Bitset, Memo};
use crate::model::Model;

/// "No node": end of list.
const NIL: u32 = u32::MAX;
/// The list's sentinel head node.
const HEAD: u32 = 0;
/// How many loop iterations between two reads of the clock.
const CLOCK_EVERY: u32 = 1 << 10;

#[derive(Debug, Clone, Copy)]
struct Node {
    prev: u32,
    next: u32,
    /// Index of the operation (in the partition's slice).
    op: u32,
    /// Call event (`true`) or return event.
    call: bool,
}

/// Result of checking one partition.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Linearizable,
    /// Not linearizable. The search got furthest (in time order) when it reached the return
    /// of `stuck` without being able to linearize it, having linearized `linearized` (in
    /// order). `cut` is the position of that return event among all events, so the
    /// operations whose call events come before `cut` form the shortest non-linearizable
    /// prefix of the partition.
    Illegal {
        stuck: u32,
        linearized: Vec<u32>,
        /// Operations called before `stuck` returned that were not linearized (sorted by
        /// call event), excluding `stuck` itself.
        open: Vec<u32>,
    },
    TimedOut,
}

/// The event list for one partition, with the position of each operation's events.
struct Events {
    nodes: Vec<Node>,
    call_node: Vec<u32>,
    ret_node: Vec<u32>,
}

impl Events {
    fn new<I, O>(ops: &[&Operation<I, O>]) -> Self {
        // (time, 0 = call / 1 = return, 1 = pending return, op): calls sort before returns
        // at equal times (Porcupine's rule) and pending returns (+infinity) after every
        // real return. The op index makes the order total, hence deterministic.
        let mut events: Vec<(u64, u8, u8, u32)> = Vec::with_capacity(ops.len() * 2);
        for (i, op) in ops.iter().enumerate() {
            let i = i as u32;
            events.push((op.call, 0, 0, i));
            match op.effective_return() {
                Some(ret) => events.push((ret, 1, 0, i)),
                None => events.push((u64::MAX, 1, 1, i)),
            }
        }
        events.sort_unstable();
        let n = events.len() as u32;
        let mut nodes = Vec::with_capacity(events.len() + 1);
        nodes.push(Node {
            prev: NIL,
            next: if n == 0 { NIL } else { 1 },
            op: NIL,
            call: false,
        });
        let mut call_node = vec![NIL; ops.len()];
        let mut ret_node = vec![NIL; ops.len()];
        for (pos, &(_, kind, _, op)) in events.iter().enumerate() {
            let index = pos as u32 + 1;
            nodes.push(Node {
                prev: index - 1,
                next: if index == n { NIL } else { index + 1 },
                op,
                call: kind == 0,
            });
            if kind == 0 {
                call_node[op as usize] = index;
            } else {
                ret_node[op as usize] = index;
            }
        }
        Self {
            nodes,
            call_node,
            ret_node,
        }
    }

    /// Unlinks the call node `call` and its return node.
    #[inline]
    fn lift(&mut self, call: u32) {
        let ret = self.ret_node[self.nodes[call as usize].op as usize];
        let Node { prev, next, .. } = self.nodes[call as usize];
        self.nodes[prev as usize].next = next;
        // A call is always followed by (at least) its own return.
        self.nodes[next as usize].prev = prev;
        let Node { prev, next, .. } = self.nodes[ret as usize];
        self.nodes[prev as usize].next = next;
        if next != NIL {
            self.nodes[next as usize].prev = prev;
        }
    }

    /// Relinks what [`lift`](Self::lift) unlinked; must be undone in reverse order.
    #[inline]
    fn unlift(&mut self, call: u32) {
        let ret = self.ret_node[self.nodes[call as usize].op as usize];
        let Node { prev, next, .. } = self.nodes[ret as usize];
        self.nodes[prev as usize].next = ret;
        if next != NIL {
            self.nodes[next as usize].prev = ret;
        }
        let Node { prev, next, .. } = self.nodes[call as usize];
        self.nodes[prev as usize].next = call;
        self.nodes[next as usize].prev = call;
    }
}

/// Checks one partition. `ops` are the partition's operations; the indices in the outcome
/// refer to this slice.
pub(crate) fn check_partition<M: Model>(
    model: &M,
    ops: &[&Operation<M::Input, M::Output>],
    deadline: Option<Instant>,
) -> Outcome {
    assert!(
        ops.len() < (u32::MAX / 2) as usize,
        "a partition of more than 2^31 operations cannot be checked"
    );
    let mut events = Events::new(ops);
    let mut remaining = ops.iter().filter(|op| op.is_complete()).count();
    let mut linearized = Bitset::new(ops.len());
    let mut memo = Memo::new(linearized.words().len());
    let mut state = model.init();
    // The linearization so far: (call node, state before it).
    let mut calls: Vec<(u32, M::State)> = Vec::new();
    // The furthest return event the search got stuck at, and how it got there.
    let mut best_cut = 0u32;
    let mut best_stuck = NIL;
    let mut best_linearized: Vec<u32> = Vec::new();

    let mut entry = events.nodes[HEAD as usize].next;
    let mut ticks = 0u32;
    loop {
        if remaining == 0 {
            return Outcome::Linearizable;
        }
        ticks = ticks.wrapping_add(1);
        if ticks.is_multiple_of(CLOCK_EVERY) && deadline.is_some_and(|d| Instant::now() >= d) {
            return Outcome::TimedOut;
        }
        // While a complete operation is unlinearized its return node is in the list, and the
        // scan stops there at the latest, so `entry` cannot run off the end.
        debug_assert_ne!(entry, NIL);
        let node = events.nodes[entry as usize];
        if node.call {
            let op = ops[node.op as usize];
            if let Some(next_state) = model.step(&state, &op.input, op.output.as_ref()) {
                linearized.insert(node.op);
                if memo.insert(&linearized, &next_state) {
                    calls.push((entry, std::mem::replace(&mut state, next_state)));
                    if op.is_complete() {
                        remaining -= 1;
                    }
                    events.lift(entry);
                    entry = events.nodes[HEAD as usize].next;
                    continue;
                }
                linearized.remove(node.op);
            }
            entry = node.next;
        } else {
            // The return of an operation we failed to linearize before it.
            if entry > best_cut {
                best_cut = entry;
                best_stuck = node.op;
                best_linearized.clear();
                best_linearized.extend(calls.iter().map(|&(c, _)| events.nodes[c as usize].op));
            }
            let Some((call, previous)) = calls.pop() else {
                let open = open_ops(&events, best_cut, best_stuck, &best_linearized);
                return Outcome::Illegal {
                    stuck: best_stuck,
                    linearized: best_linearized,
                    open,
                };
            };
            let op = events.nodes[call as usize].op;
            linearized.remove(op);
            if ops[op as usize].is_complete() {
                remaining += 1;
            }
            state = previous;
            events.unlift(call);
            entry = events.nodes[call as usize].next;
        }
    }
}

/// Operations whose call event precedes `cut`, other than `stuck` and the linearized ones.
fn open_ops(events: &Events, cut: u32, stuck: u32, linearized: &[u32]) -> Vec<u32> {
    let mut done = vec![false; events.call_node.len()];
    for &op in linearized {
        done[op as usize] = true;
    }
    let mut open: Vec<u32> = (0..events.call_node.len() as u32)
        .filter(|&op| op != stuck && !done[op as usize] && events.call_node[op as usize] < cut)
        .collect();
    open.sort_by_key(|&op| events.call_node[op as usize]);
    open
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{Register, RegisterInput as In, RegisterOutput as Out};

    type Op = Operation<In<u8>, Out<u8>>;

    fn run(ops: &[Op]) -> Outcome {
        let refs: Vec<&Op> = ops.iter().collect();
        check_partition(&Register::new(0u8), &refs, None)
    }

    #[test]
    fn events_sort_calls_before_returns_at_equal_times() {
        let ops = [
            Op::complete(0, In::Write(1), 5, Out::Ack, 10),
            Op::complete(1, In::Read, 10, Out::Value(1), 12),
            Op::pending(2, In::Write(2), 0),
        ];
        let refs: Vec<&Op> = ops.iter().collect();
        let events = Events::new(&refs);
        let order: Vec<(u32, bool)> = events.nodes[1..].iter().map(|n| (n.op, n.call)).collect();
        assert_eq!(
            order,
            [
                (2, true),
                (0, true),
                (1, true),
                (0, false),
                (1, false),
                (2, false)
            ]
        );
    }

    #[test]
    fn lift_and_unlift_restore_the_list() {
        let ops = [
            Op::complete(0, In::Write(1), 0, Out::Ack, 10),
            Op::complete(1, In::Read, 1, Out::Value(1), 2),
        ];
        let refs: Vec<&Op> = ops.iter().collect();
        let mut events = Events::new(&refs);
        let before: Vec<(u32, u32)> = events.nodes.iter().map(|n| (n.prev, n.next)).collect();
        let c0 = events.call_node[0];
        let c1 = events.call_node[1];
        events.lift(c1);
        events.lift(c0);
        assert_eq!(events.nodes[HEAD as usize].next, NIL);
        events.unlift(c0);
        events.unlift(c1);
        let after: Vec<(u32, u32)> = events.nodes.iter().map(|n| (n.prev, n.next)).collect();
        assert_eq!(before, after);
    }

    #[test]
    fn reports_furthest_stuck_point() {
        // w(1) done; then a read of the old value 0: stuck at the read's return.
        let ops = [
            Op::complete(0, In::Write(1), 0, Out::Ack, 1),
            Op::complete(1, In::Read, 2, Out::Value(1), 3),
            Op::complete(1, In::Read, 4, Out::Value(0), 5),
            Op::complete(2, In::Read, 4, Out::Value(1), 6),
        ];
        assert_eq!(
            run(&ops),
            Outcome::Illegal {
                stuck: 2,
                // The first branch to reach the read's return had also linearized the
                // concurrent read of 1.
                linearized: vec![0, 1, 3],
                open: vec![],
            }
        );
    }

    #[test]
    fn empty_and_all_pending_partitions_are_linearizable() {
        assert_eq!(run(&[]), Outcome::Linearizable);
        assert_eq!(run(&[Op::pending(0, In::Read, 3)]), Outcome::Linearizable);
    }
}
