//! [`Violation`]: where a history stops being linearizable, in a readable form.

use std::fmt::{self, Debug, Write as _};

use crate::history::Operation;
use crate::model::Model;

/// How many linearized operations before the failure the report shows.
const SHOW_LINEARIZED: usize = 10;
/// How many open operations the report shows.
const SHOW_OPEN: usize = 20;

/// Why a history is not linearizable.
///
/// Within the reported partition, the search got furthest in time when it reached the return
/// of operation [`op`](Self::op) without being able to linearize it. The operations called
/// before that return ([`sub_history`](Self::sub_history)), with the ones still running at
/// that moment treated as pending, form the **shortest prefix** of the partition's history
/// that cannot be linearized: cutting at any earlier return gives a linearizable prefix.
///
/// Indices refer to the checked history. [`Display`](fmt::Display) prints the failing
/// operation, the tail of the longest linearization found (with the state after each step)
/// and the operations that were still open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    partition: String,
    op: usize,
    cut: u64,
    linearized: Vec<usize>,
    open: Vec<usize>,
    text: String,
}

impl Violation {
    pub(crate) fn new<M: Model>(
        model: &M,
        ops: &[Operation<M::Input, M::Output>],
        key: &M::Key,
        op: usize,
        linearized: Vec<usize>,
        open: Vec<usize>,
    ) -> Self {
        let partition = format!("{key:?}");
        // The stuck operation is complete: pending operations never block the search.
        let cut = ops[op].effective_return().unwrap_or(u64::MAX);
        let text = render(model, ops, &partition, op, &linearized, &open);
        Self {
            partition,
            op,
            cut,
            linearized,
            open,
            text,
        }
    }

    /// The partition (its key, `Debug`-formatted) that is not linearizable.
    pub fn partition(&self) -> &str {
        &self.partition
    }

    /// The operation that could not be linearized before it returned.
    pub fn op(&self) -> usize {
        self.op
    }

    /// The return time of [`op`](Self::op): where the shortest failing prefix is cut.
    pub fn cut(&self) -> u64 {
        self.cut
    }

    /// The longest linearization found up to the failure, in order.
    pub fn linearized(&self) -> &[usize] {
        &self.linearized
    }

    /// Operations called before [`op`](Self::op) returned that were neither linearized nor
    /// `op`, in call order.
    pub fn open(&self) -> &[usize] {
        &self.open
    }

    /// The shortest non-linearizable prefix of the partition: every operation called before
    /// [`op`](Self::op) returned, sorted by index. The ones returning after
    /// [`cut`](Self::cut) count as pending in it.
    pub fn sub_history(&self) -> Vec<usize> {
        let mut all: Vec<usize> = self
            .linearized
            .iter()
            .chain(&self.open)
            .copied()
            .chain(std::iter::once(self.op))
            .collect();
        all.sort_unstable();
        all
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for Violation {}

/// One operation on one line.
struct OpLine<'a, I, O>(usize, &'a Operation<I, O>);

impl<I: Debug, O: Debug> fmt::Display for OpLine<'_, I, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let OpLine(index, op) = *self;
        write!(f, "#{index} client {} [{}, ", op.client, op.call)?;
        match op.ret {
            Some(ret) => write!(f, "{ret}]")?,
            None => f.write_str("no return)")?,
        }
        write!(f, " {:?} -> ", op.input)?;
        match &op.output {
            Some(out) => write!(f, "{out:?}"),
            None => f.write_str("(no reply)"),
        }
    }
}

fn render<M: Model>(
    model: &M,
    ops: &[Operation<M::Input, M::Output>],
    partition: &str,
    op: usize,
    linearized: &[usize],
    open: &[usize],
) -> String {
    let mut out = String::new();
    let total = linearized.len() + open.len() + 1;
    // Writing to a String cannot fail.
    let _ = write_report(model, ops, partition, op, linearized, open, total, &mut out);
    out
}

#[allow(clippy::too_many_arguments)]
fn write_report<M: Model>(
    model: &M,
    ops: &[Operation<M::Input, M::Output>],
    partition: &str,
    op: usize,
    linearized: &[usize],
    open: &[usize],
    total: usize,
    out: &mut String,
) -> fmt::Result {
    writeln!(out, "history is not linearizable in partition {partition}")?;
    writeln!(
        out,
        "operation that cannot be linearized before it returns:"
    )?;
    writeln!(out, "  {}", OpLine(op, &ops[op]))?;
    writeln!(
        out,
        "the {total} operations called before it returned form the shortest non-linearizable \
         prefix of the partition (operations still running then count as pending)"
    )?;

    // Replay the linearization to show the state after each step. The search only
    // linearized legal steps of a deterministic model, so replay succeeds.
    let mut state = model.init();
    let mut states = Vec::with_capacity(linearized.len());
    let mut replay_ok = true;
    for &i in linearized {
        match model.step(&state, &ops[i].input, ops[i].output.as_ref()) {
            Some(next) => state = next,
            None => replay_ok = false,
        }
        states.push(format!("{state:?}"));
    }
    let skipped = linearized.len().saturating_sub(SHOW_LINEARIZED);
    writeln!(
        out,
        "longest linearization found up to there ({} operations){}:",
        linearized.len(),
        if skipped > 0 { ", last steps" } else { "" }
    )?;
    if linearized.is_empty() {
        writeln!(out, "  (none; initial state {:?})", model.init())?;
    }
    if skipped > 0 {
        writeln!(out, "  ... {skipped} earlier operations")?;
    }
    for (&i, s) in linearized.iter().zip(&states).skip(skipped) {
        writeln!(out, "  {}\n      => {s}", OpLine(i, &ops[i]))?;
    }
    if !replay_ok {
        writeln!(
            out,
            "  (warning: replaying the model did not reproduce these steps; is it deterministic?)"
        )?;
    }
    writeln!(
        out,
        "state then: {state:?}; no order of the operations lets #{op} take effect before it returns"
    )?;
    if open.is_empty() {
        writeln!(out, "no other operation was open")?;
    } else {
        writeln!(
            out,
            "other operations called before #{op} returned, not linearized ({}):",
            open.len()
        )?;
        for &i in open.iter().take(SHOW_OPEN) {
            writeln!(out, "  {}", OpLine(i, &ops[i]))?;
        }
        if open.len() > SHOW_OPEN {
            writeln!(out, "  ... {} more", open.len() - SHOW_OPEN)?;
        }
    }
    Ok(())
}
