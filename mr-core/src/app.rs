//! The application interface: what a MapReduce job computes.

use std::collections::HashMap;

use thiserror::Error;

use crate::codec;
use crate::hash::{FxBuildHasher, partition};

/// An application failed (for example, an external mapper exited with an error). The job
/// fails with this message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct AppError(pub String);

/// Fault injection for the lab's `crash` application, drawn from the worker's seeded RNG once
/// per task, before the task runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultPlan {
    /// Chance in 1000 that the worker crashes ([`crate::worker::Action::Crash`]).
    pub crash_per_mille: u16,
    /// Chance in 1000 that the worker stalls for a uniform `0..max_stall_ticks` ticks.
    pub stall_per_mille: u16,
    /// Upper bound (exclusive) of a stall, in ticks.
    pub max_stall_ticks: u64,
}

impl FaultPlan {
    /// The lab's `maybeCrash`: 33% exit, 33% sleep up to 10 s (100 ticks of 100 ms).
    pub const LAB: FaultPlan = FaultPlan {
        crash_per_mille: 330,
        stall_per_mille: 330,
        max_stall_ticks: 100,
    };
}

/// A MapReduce application: a map function, a reduce function, and optionally a combiner.
///
/// Implementations must be deterministic functions of their arguments (the coordinator may
/// run a task twice after a timeout, and both runs must write the same bytes), except the
/// lab's timing applications, whose output is about the run itself.
///
/// The trait is object safe: the `mapreduce` binary picks applications by name as
/// `Box<dyn App>`.
pub trait App {
    /// Maps one input file: calls [`Emitter::emit`] for each key/value pair.
    fn map(&self, filename: &str, contents: &[u8], out: &mut Emitter<'_>) -> Result<(), AppError>;

    /// Reduces all values of one key (in map-task order) to one value, appended to `out`.
    fn reduce(&self, key: &[u8], values: &[&[u8]], out: &mut Vec<u8>) -> Result<(), AppError>;

    /// Whether [`App::combine`] is used to pre-aggregate map output before it is written.
    fn has_combiner(&self) -> bool {
        false
    }

    /// Merges `value` into `acc`, two values of `key` (the paper's combiner, applied
    /// incrementally). Required law: reducing `[.., combine(a, b), ..]` gives the same
    /// output as reducing `[.., a, b, ..]`. Called only if [`App::has_combiner`].
    fn combine(&self, key: &[u8], acc: &mut Vec<u8>, value: &[u8]) {
        let _ = (key, acc, value);
    }

    /// Reduces one whole partition: `pairs` is sorted by key (values of a key in map-task
    /// order); appends the output lines `key value\n` to `out`.
    ///
    /// The default groups the pairs and calls [`App::reduce`] once per key. Override it to
    /// process a partition as a stream (as an external reducer does).
    fn reduce_partition(
        &self,
        pairs: &[(&[u8], &[u8])],
        out: &mut Vec<u8>,
    ) -> Result<(), AppError> {
        let mut values: Vec<&[u8]> = Vec::new();
        let mut rest = pairs;
        while let Some(&(key, _)) = rest.first() {
            let run = rest.iter().take_while(|(k, _)| *k == key).count();
            values.clear();
            values.extend(rest[..run].iter().map(|&(_, v)| v));
            out.extend_from_slice(key);
            out.push(b' ');
            self.reduce(key, &values, out)?;
            out.push(b'\n');
            rest = &rest[run..];
        }
        Ok(())
    }

    /// Fault injection for the worker running this application (`None`: never).
    fn faults(&self) -> Option<FaultPlan> {
        None
    }
}

impl<A: App + ?Sized> App for Box<A> {
    fn map(&self, filename: &str, contents: &[u8], out: &mut Emitter<'_>) -> Result<(), AppError> {
        (**self).map(filename, contents, out)
    }

    fn reduce(&self, key: &[u8], values: &[&[u8]], out: &mut Vec<u8>) -> Result<(), AppError> {
        (**self).reduce(key, values, out)
    }

    fn has_combiner(&self) -> bool {
        (**self).has_combiner()
    }

    fn combine(&self, key: &[u8], acc: &mut Vec<u8>, value: &[u8]) {
        (**self).combine(key, acc, value)
    }

    fn reduce_partition(
        &self,
        pairs: &[(&[u8], &[u8])],
        out: &mut Vec<u8>,
    ) -> Result<(), AppError> {
        (**self).reduce_partition(pairs, out)
    }

    fn faults(&self) -> Option<FaultPlan> {
        (**self).faults()
    }
}

/// Collects a map task's output, partitioned into `n_reduce` encoded intermediate files.
///
/// With a combiner, pairs are merged per key in a hash map first, so a key is written once
/// per map task instead of once per occurrence.
pub struct Emitter<'a> {
    n_reduce: u32,
    combiner: Option<&'a dyn App>,
    combined: HashMap<Box<[u8]>, Vec<u8>, FxBuildHasher>,
    buckets: Vec<Vec<u8>>,
    emitted: u64,
}

impl<'a> Emitter<'a> {
    /// An emitter for `n_reduce` partitions (at least 1) that uses `app`'s combiner if it
    /// has one and `use_combiner` is set.
    pub fn new(app: &'a dyn App, n_reduce: u32, use_combiner: bool) -> Self {
        let n_reduce = n_reduce.max(1);
        let combiner = (use_combiner && app.has_combiner()).then_some(app);
        let buckets = (0..n_reduce)
            .map(|_| {
                let mut bucket = Vec::new();
                codec::encode_header(&mut bucket);
                bucket
            })
            .collect();
        Emitter {
            n_reduce,
            combiner,
            combined: HashMap::with_hasher(FxBuildHasher),
            buckets,
            emitted: 0,
        }
    }

    /// Emits one key/value pair.
    #[inline]
    pub fn emit(&mut self, key: &[u8], value: &[u8]) {
        self.emitted += 1;
        match self.combiner {
            Some(app) => match self.combined.get_mut(key) {
                Some(acc) => app.combine(key, acc, value),
                None => {
                    self.combined.insert(key.into(), value.to_vec());
                }
            },
            None => {
                let bucket = partition(key, self.n_reduce) as usize;
                codec::encode_record(&mut self.buckets[bucket], key, value);
            }
        }
    }

    /// How many pairs were emitted (before combining).
    pub fn emitted(&self) -> u64 {
        self.emitted
    }

    /// The encoded intermediate file of each partition, in partition order.
    pub fn finish(mut self) -> Vec<Vec<u8>> {
        // Iteration order of the fixed-seed hasher depends only on the insertions, so the
        // files are the same bytes in every run.
        for (key, value) in self.combined.drain() {
            let bucket = partition(&key, self.n_reduce) as usize;
            codec::encode_record(&mut self.buckets[bucket], &key, &value);
        }
        self.buckets
    }
}

/// Sorts decoded pairs by key, keeping the order of values within a key (stable).
pub fn sort_pairs(pairs: &mut [(&[u8], &[u8])]) {
    pairs.sort_by(|a, b| a.0.cmp(b.0));
}

/// The reference implementation (the lab's `mrsequential`): maps every input in order,
/// sorts all pairs by key, and reduces each key. Returns the contents of `mr-out-0`.
///
/// `use_combiner` applies the application's combiner per input, as a worker does; the
/// lab's reference does not (pass `false` for the strict reference).
///
/// Inputs are `(name, contents)` pairs; each is dropped once mapped, so an iterator that
/// reads files lazily keeps one input in memory at a time.
pub fn sequential<N, C>(
    app: &dyn App,
    inputs: impl IntoIterator<Item = (N, C)>,
    use_combiner: bool,
) -> Result<Vec<u8>, AppError>
where
    N: AsRef<str>,
    C: AsRef<[u8]>,
{
    let mut files = Vec::new();
    for (name, contents) in inputs {
        let mut emitter = Emitter::new(app, 1, use_combiner);
        app.map(name.as_ref(), contents.as_ref(), &mut emitter)?;
        files.extend(emitter.finish());
    }
    let mut pairs = Vec::new();
    for file in &files {
        // The emitter wrote these bytes just above: they always decode.
        codec::decode_into(file, &mut pairs)
            .map_err(|e| AppError(format!("internal encoding error: {e}")))?;
    }
    sort_pairs(&mut pairs);
    let mut out = Vec::new();
    app.reduce_partition(&pairs, &mut out)?;
    Ok(out)
}
