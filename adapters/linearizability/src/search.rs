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
//!
//! Refinements, each sound on its own (the `random` tests compare against brute force):
//! * a read that is legal on entering a configuration is taken without alternatives
//!   (`Frame::forced`): any linearization can be changed to place it there;
//! * configurations are memoized compactly and dominated ones skipped (see `memo` and
//!   `Search::enter_new`);
//! * pending reads are never linearized, and pending writes are tried eagerly or lazily by
//!   two searches run in turn (`check_partition`).

use std::time::Instant;

use crate::history::Operation;
use crate::memo::{Bitset, Interner, Memo};
use crate::model::Model;

/// "No node": end of list.
const NIL: u32 = u32::MAX;
/// The list's sentinel head node.
const HEAD: u32 = 0;
/// How many loop iterations between two reads of the clock.
const CLOCK_EVERY: u64 = 1 << 10;

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
#[derive(Clone)]
struct Events {
    nodes: Vec<Node>,
    call_node: Vec<u32>,
    ret_node: Vec<u32>,
    /// For the return node `r` of a complete operation: the other operations open across it
    /// (called before, returning after), in call order, at
    /// `window_ops[window_start[r - 1]..window_start[r]]`.
    window_start: Vec<u32>,
    window_ops: Vec<u32>,
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
        // Within a run of consecutive calls the order only decides which candidate the search
        // tries first (a call cannot move past a return: that would break real time). Try
        // the one returning first: its linearization point is the most constrained.
        let mut run = 0;
        while run < events.len() {
            let end = events[run..]
                .iter()
                .position(|e| e.1 == 1)
                .map_or(events.len(), |p| run + p);
            events[run..end].sort_unstable_by_key(|&(call, _, _, op)| {
                (
                    ops[op as usize].effective_return().unwrap_or(u64::MAX),
                    call,
                    op,
                )
            });
            run = end + 1;
        }
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
        // Sweep the events keeping the open operations in call order.
        let mut window_start = Vec::with_capacity(nodes.len() + 1);
        let mut window_ops = Vec::new();
        let mut open: Vec<u32> = Vec::new();
        window_start.push(0);
        for node in &nodes[1..] {
            if node.call {
                open.push(node.op);
            } else if let Some(at) = open.iter().position(|&op| op == node.op) {
                open.remove(at);
                if ops[node.op as usize].is_complete() {
                    window_ops.extend_from_slice(&open);
                }
            }
            window_start.push(window_ops.len() as u32);
        }
        Self {
            nodes,
            call_node,
            ret_node,
            window_start,
            window_ops,
        }
    }

    /// The operations open across the return node `front`.
    #[inline]
    fn window(&self, front: u32) -> &[u32] {
        let from = self.window_start[front as usize - 1] as usize;
        let to = self.window_start[front as usize] as usize;
        &self.window_ops[from..to]
    }

    /// The first return node after `node` in the current list.
    #[inline]
    fn next_return(&self, mut node: u32) -> u32 {
        loop {
            node = self.nodes[node as usize].next;
            if node == NIL || !self.nodes[node as usize].call {
                return node;
            }
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

/// Where the search goes next.
#[derive(Debug, Clone, Copy)]
enum Next {
    /// A new configuration was entered: look for a legal read to commit to.
    Enter,
    /// Try the non-read candidates from this node on (in the lazy order: the complete ones).
    Scan(u32),
    /// Lazy order only: then try the pending writes from this node on.
    ScanPending(u32),
    /// The current configuration cannot be extended: undo the last linearization.
    Backtrack,
}

/// How the search treats an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Complete, and a read: linearized as soon as it is legal, without alternatives.
    Read,
    /// Complete, may change the state: a choice point.
    Write,
    /// No reply and a read: constrains nothing, so never linearized.
    PendingRead,
    /// No reply, may change the state: optional, a choice point (see [`Search::lazy`]).
    PendingWrite,
}

/// One linearized operation on the search stack.
#[derive(Debug, Clone, Copy)]
struct Frame {
    /// Its call node.
    call: u32,
    /// The state and front before it.
    state: u32,
    front: u32,
    /// A read taken without trying alternatives: if it fails, so does its parent.
    forced: bool,
}

/// The search over one partition (see the module docs).
struct Search<'a, M: Model> {
    model: &'a M,
    ops: &'a [&'a Operation<M::Input, M::Output>],
    kind: Vec<Kind>,
    /// When to try pending writes. Eager (`false`): in call order like any candidate, which
    /// is fast when their effect is observed. Lazy (`true`): only after every complete
    /// candidate failed, which is fast when it is not (never applied, or overwritten unseen).
    lazy: bool,
    /// Where the search goes next.
    next: Next,
    events: Events,
    /// Complete operations not yet linearized.
    remaining: usize,
    linearized: Bitset,
    states: Interner<M::State>,
    memo: Memo,
    open_bits: Vec<u64>,
    state: u32,
    /// The first return node in the list: the front of the linearized set (see `memo`).
    front: u32,
    stack: Vec<Frame>,
    /// The furthest return event the search got stuck at, and how it got there.
    best_cut: u32,
    best_stuck: u32,
    best_linearized: Vec<u32>,
}

/// What trying to linearize one operation gave.
enum Tried {
    /// Linearized: a new configuration.
    Entered,
    /// Every complete operation is linearized.
    Done,
    /// Illegal step, or a configuration already explored.
    Rejected,
}

impl<M: Model> Search<'_, M> {
    /// Linearizes the operation of call node `call`, moving to the state `next`, if the
    /// resulting configuration is new.
    fn linearize(&mut self, call: u32, next: u32, forced: bool) -> Tried {
        let op = self.events.nodes[call as usize].op;
        let complete = matches!(self.kind[op as usize], Kind::Read | Kind::Write);
        if complete && self.remaining == 1 {
            return Tried::Done;
        }
        // Lifting this operation moves the front only if its return was the front.
        let next_front = if self.events.ret_node[op as usize] == self.front {
            self.events.next_return(self.front)
        } else {
            self.front
        };
        self.linearized.insert(op);
        if !self.enter_new(next_front, next) {
            self.linearized.remove(op);
            return Tried::Rejected;
        }
        self.stack.push(Frame {
            call,
            state: self.state,
            front: self.front,
            forced,
        });
        self.state = next;
        self.front = next_front;
        if complete {
            self.remaining -= 1;
        }
        self.events.lift(call);
        Tried::Entered
    }

    /// Records the configuration (current linearized set, `front`, `state`) unless it was
    /// seen already or is dominated: the same with one linearized pending operation fewer
    /// was seen. (Pending operations are optional, so every completion of the larger set
    /// completes the smaller one too; without this, each pending operation whose effect was
    /// overwritten would double the search.)
    fn enter_new(&mut self, front: u32, state: u32) -> bool {
        let window = self.events.window(front);
        self.open_bits.clear();
        self.open_bits.resize(window.len().div_ceil(64), 0);
        for (i, &other) in window.iter().enumerate() {
            if self.linearized.contains(other) {
                self.open_bits[i / 64] |= 1 << (i % 64);
            }
        }
        if self.memo.contains(front, state, &self.open_bits) {
            return false;
        }
        for (i, &other) in window.iter().enumerate() {
            if self.kind[other as usize] == Kind::PendingWrite && self.linearized.contains(other) {
                let bit = 1 << (i % 64);
                self.open_bits[i / 64] &= !bit;
                let dominated = self.memo.contains(front, state, &self.open_bits);
                self.open_bits[i / 64] |= bit;
                if dominated {
                    return false;
                }
            }
        }
        self.memo.insert(front, state, &self.open_bits)
    }

    /// On entering a configuration: if some candidate is a legal read, commit to it.
    fn enter(&mut self) -> Result<Next, Outcome> {
        let mut node = self.events.nodes[HEAD as usize].next;
        while node != NIL && self.events.nodes[node as usize].call {
            let op = self.events.nodes[node as usize].op as usize;
            if self.kind[op] == Kind::Read {
                let o = self.ops[op];
                let state = self.states.get(self.state);
                if self
                    .model
                    .step(state, &o.input, o.output.as_ref())
                    .is_some()
                {
                    // A read leaves the state as it is, so keep the interned id. If the
                    // configuration with the read was explored already, it failed, and so
                    // does this one.
                    return match self.linearize(node, self.state, true) {
                        Tried::Entered => Ok(Next::Enter),
                        Tried::Done => Err(Outcome::Linearizable),
                        Tried::Rejected => Ok(Next::Backtrack),
                    };
                }
            }
            node = self.events.nodes[node as usize].next;
        }
        Ok(Next::Scan(self.events.nodes[HEAD as usize].next))
    }

    /// Tries the candidate at `entry`, or records being stuck at a return. `pending_pass`:
    /// the lazy order's second pass, over pending writes only.
    fn scan(&mut self, entry: u32, pending_pass: bool) -> Result<Next, Outcome> {
        // While a complete operation is unlinearized its return node is in the list, and the
        // scan stops there at the latest, so `entry` cannot run off the end.
        debug_assert_ne!(entry, NIL);
        let node = self.events.nodes[entry as usize];
        let again = |next| {
            Ok(if pending_pass {
                Next::ScanPending(next)
            } else {
                Next::Scan(next)
            })
        };
        if !node.call {
            if self.lazy && !pending_pass {
                return Ok(Next::ScanPending(self.events.nodes[HEAD as usize].next));
            }
            // The return of an operation we failed to linearize before it.
            if entry > self.best_cut {
                self.best_cut = entry;
                self.best_stuck = node.op;
                self.best_linearized.clear();
                let nodes = &self.events.nodes;
                self.best_linearized
                    .extend(self.stack.iter().map(|f| nodes[f.call as usize].op));
            }
            return Ok(Next::Backtrack);
        }
        // Reads were tried on entering this configuration (none is legal here), pending
        // reads are never needed, and the lazy order takes pending writes last.
        let wanted = match self.kind[node.op as usize] {
            Kind::Read | Kind::PendingRead => false,
            Kind::Write => !pending_pass,
            Kind::PendingWrite => pending_pass || !self.lazy,
        };
        if !wanted {
            return again(node.next);
        }
        let o = self.ops[node.op as usize];
        let Some(next) = self
            .model
            .step(self.states.get(self.state), &o.input, o.output.as_ref())
        else {
            return again(node.next);
        };
        let next = self.states.intern(next);
        match self.linearize(entry, next, false) {
            Tried::Entered => Ok(Next::Enter),
            Tried::Done => Err(Outcome::Linearizable),
            Tried::Rejected => again(node.next),
        }
    }

    /// Undoes the last linearization.
    fn backtrack(&mut self) -> Result<Next, Outcome> {
        let Some(frame) = self.stack.pop() else {
            let open = open_ops(
                &self.events,
                self.best_cut,
                self.best_stuck,
                &self.best_linearized,
            );
            return Err(Outcome::Illegal {
                stuck: self.best_stuck,
                linearized: std::mem::take(&mut self.best_linearized),
                open,
            });
        };
        let op = self.events.nodes[frame.call as usize].op;
        self.linearized.remove(op);
        if matches!(self.kind[op as usize], Kind::Read | Kind::Write) {
            self.remaining += 1;
        }
        self.state = frame.state;
        self.front = frame.front;
        self.events.unlift(frame.call);
        let next = self.events.nodes[frame.call as usize].next;
        Ok(if frame.forced {
            Next::Backtrack
        } else if self.lazy && self.kind[op as usize] == Kind::PendingWrite {
            Next::ScanPending(next)
        } else {
            Next::Scan(next)
        })
    }

    /// Runs at most `budget` steps (unbounded if `None`), or until `deadline`. Returns the
    /// outcome, or `None` if the budget ran out first.
    fn run(&mut self, budget: Option<u64>, deadline: Option<Instant>) -> Option<Outcome> {
        let mut steps = 0u64;
        loop {
            steps += 1;
            if budget.is_some_and(|b| steps > b) {
                return None;
            }
            if steps.is_multiple_of(CLOCK_EVERY) && deadline.is_some_and(|d| Instant::now() >= d) {
                return Some(Outcome::TimedOut);
            }
            let step = match self.next {
                Next::Enter => self.enter(),
                Next::Scan(entry) => self.scan(entry, false),
                Next::ScanPending(entry) => self.scan(entry, true),
                Next::Backtrack => self.backtrack(),
            };
            match step {
                Ok(next) => self.next = next,
                Err(outcome) => return Some(outcome),
            }
        }
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
    let remaining = ops.iter().filter(|op| op.is_complete()).count();
    if remaining == 0 {
        return Outcome::Linearizable;
    }
    let kind: Vec<Kind> = ops
        .iter()
        .map(|op| {
            let read = model.is_read_only(&op.input, op.output.as_ref());
            match (op.is_complete(), read) {
                (true, true) => Kind::Read,
                (true, false) => Kind::Write,
                (false, true) => Kind::PendingRead,
                (false, false) => Kind::PendingWrite,
            }
        })
        .collect();
    let events = Events::new(ops);
    let new_search = |kind: Vec<Kind>, events: Events, lazy: bool| {
        let mut states = Interner::new();
        let state = states.intern(model.init());
        let mut search = Search {
            model,
            ops,
            kind,
            lazy,
            next: Next::Enter,
            front: events.next_return(HEAD),
            events,
            remaining,
            linearized: Bitset::new(ops.len()),
            states,
            memo: Memo::new(),
            open_bits: Vec::new(),
            state,
            stack: Vec::new(),
            best_cut: 0,
            best_stuck: NIL,
            best_linearized: Vec::new(),
        };
        // The initial configuration counts as seen, so that dominated ones are recognized.
        search.enter_new(search.front, search.state);
        search
    };
    if !kind.contains(&Kind::PendingWrite) {
        let mut eager = new_search(kind, events, false);
        return eager
            .run(None, deadline)
            .expect("an unbounded run returns an outcome");
    }
    // With pending writes neither order is always fast, so run both, alternating with
    // doubling step budgets: the result comes at most about twice as late as from the faster
    // one. Both searches are complete, so the verdict does not depend on which finishes
    // first, and the step budgets (not the clock) decide that, so the report is
    // deterministic too.
    let mut eager = new_search(kind.clone(), events.clone(), false);
    let mut lazy = new_search(kind, events, true);
    let mut budget = 1u64 << 12;
    loop {
        for search in [&mut eager, &mut lazy] {
            if let Some(outcome) = search.run(Some(budget), deadline) {
                return outcome;
            }
        }
        budget = budget.saturating_mul(2);
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
            Op::complete(3, In::Read, 11, Out::Value(1), 11),
        ];
        let refs: Vec<&Op> = ops.iter().collect();
        let events = Events::new(&refs);
        let order: Vec<(u32, bool)> = events.nodes[1..].iter().map(|n| (n.op, n.call)).collect();
        // By time: c2@0 c0@5 c1@10 r0@10 c3@11 r3@11 r1@12 r2@inf. Within the first run of
        // calls the earliest return goes first.
        assert_eq!(
            order,
            [
                (0, true),
                (1, true),
                (2, true),
                (0, false),
                (3, true),
                (3, false),
                (1, false),
                (2, false)
            ]
        );
        // Operations open across each complete return, in call order.
        assert_eq!(events.window(events.ret_node[0]), [1, 2]);
        assert_eq!(events.window(events.ret_node[3]), [1, 2]);
        assert_eq!(events.window(events.ret_node[1]), [2]);
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
