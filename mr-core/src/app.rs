//! The application interface: what a MapReduce job computes.

use std::collections::HashMap;

use thiserror::Error;

use crate::apps::parse_decimal;
use crate::codec;
use crate::hash::{WordHashBuilder, partition};
use crate::key::Key;

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

/// How an application's map output is pre-aggregated inside a map task before it is
/// written (the paper's combiner).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Combiner {
    /// Values are decimal counts, combined by adding them (Hadoop's `LongValueSum`). A value
    /// that is not a decimal number is written uncombined. The fastest choice for counting:
    /// emit with [`Emitter::emit_count`].
    Sum,
    /// Values are merged with [`App::combine`].
    Custom,
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

    /// The combiner, if any (default: none). Required law: reducing a key's values gives the
    /// same output whether or not some of them were combined first.
    fn combiner(&self) -> Option<Combiner> {
        None
    }

    /// With [`Combiner::Custom`]: merges `value` into `acc`, two values of `key`.
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

    fn combiner(&self) -> Option<Combiner> {
        (**self).combiner()
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

/// How the emitter holds pairs before they are written.
enum Pending<'a> {
    /// No combiner: pairs go straight to their partition's buffer.
    Direct,
    /// [`Combiner::Sum`]: a count per key.
    Sum(HashMap<Key, u64, WordHashBuilder>),
    /// [`Combiner::Custom`]: a value per key, merged with the application's `combine`.
    Custom {
        app: &'a dyn App,
        values: HashMap<Key, Vec<u8>, WordHashBuilder>,
    },
}

/// Collects a map task's output, partitioned into `n_reduce` encoded intermediate files.
///
/// With a combiner, pairs are merged per key in a hash map first, so a key is written once
/// per map task instead of once per occurrence.
pub struct Emitter<'a> {
    n_reduce: u32,
    pending: Pending<'a>,
    buckets: Vec<Vec<u8>>,
    emitted: u64,
}

impl<'a> Emitter<'a> {
    /// An emitter for `n_reduce` partitions (at least 1) that uses `app`'s combiner if it
    /// has one and `use_combiner` is set.
    pub fn new(app: &'a dyn App, n_reduce: u32, use_combiner: bool) -> Self {
        let n_reduce = n_reduce.max(1);
        let pending = match app.combiner().filter(|_| use_combiner) {
            None => Pending::Direct,
            Some(Combiner::Sum) => Pending::Sum(HashMap::with_hasher(WordHashBuilder)),
            Some(Combiner::Custom) => Pending::Custom {
                app,
                values: HashMap::with_hasher(WordHashBuilder),
            },
        };
        let buckets = (0..n_reduce)
            .map(|_| {
                let mut bucket = Vec::new();
                codec::encode_header(&mut bucket);
                bucket
            })
            .collect();
        Emitter {
            n_reduce,
            pending,
            buckets,
            emitted: 0,
        }
    }

    /// Emits one key/value pair.
    #[inline]
    pub fn emit(&mut self, key: &[u8], value: &[u8]) {
        self.emitted += 1;
        match &mut self.pending {
            Pending::Direct => self.write(key, value),
            Pending::Sum(counts) => match parse_decimal(value) {
                Some(n) => add_count(counts, key, n),
                None => self.write(key, value),
            },
            Pending::Custom { app, values } => match values.get_mut(key) {
                Some(acc) => app.combine(key, acc, value),
                None => {
                    values.insert(key.into(), value.to_vec());
                }
            },
        }
    }

    /// Emits `(key, n)` with `n` as a decimal value: the same as `emit(key, n.to_string())`,
    /// without formatting when the combiner is [`Combiner::Sum`].
    #[inline]
    pub fn emit_count(&mut self, key: &[u8], n: u64) {
        match &mut self.pending {
            Pending::Sum(counts) => {
                self.emitted += 1;
                add_count(counts, key, n);
            }
            _ => {
                let mut digits = [0u8; 20];
                self.emit(key, crate::apps::decimal(n, &mut digits));
            }
        }
    }

    /// Writes a pair to its partition's buffer.
    #[inline]
    fn write(&mut self, key: &[u8], value: &[u8]) {
        let bucket = partition(key, self.n_reduce) as usize;
        codec::encode_record(&mut self.buckets[bucket], key, value);
    }

    /// How many pairs were emitted (before combining).
    pub fn emitted(&self) -> u64 {
        self.emitted
    }

    /// The encoded intermediate file of each partition, in partition order.
    pub fn finish(mut self) -> Vec<Vec<u8>> {
        // Iteration order of the fixed-seed hasher depends only on the insertions, so the
        // files are the same bytes in every run.
        match std::mem::replace(&mut self.pending, Pending::Direct) {
            Pending::Direct => {}
            Pending::Sum(counts) => {
                let mut digits = [0u8; 20];
                for (key, n) in counts {
                    self.write(key.as_bytes(), crate::apps::decimal(n, &mut digits));
                }
            }
            Pending::Custom { values, .. } => {
                for (key, value) in values {
                    self.write(key.as_bytes(), &value);
                }
            }
        }
        self.buckets
    }
}

#[inline]
fn add_count(counts: &mut HashMap<Key, u64, WordHashBuilder>, key: &[u8], n: u64) {
    match counts.get_mut(key) {
        Some(count) => *count = count.saturating_add(n),
        None => {
            counts.insert(key.into(), n);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Longest word length per first letter, with a custom combiner keeping the maximum.
    struct Longest;

    impl App for Longest {
        fn map(&self, _: &str, contents: &[u8], out: &mut Emitter<'_>) -> Result<(), AppError> {
            crate::text::for_each_word(contents, |w| out.emit_count(&w[..1], w.len() as u64));
            Ok(())
        }

        fn reduce(&self, _: &[u8], values: &[&[u8]], out: &mut Vec<u8>) -> Result<(), AppError> {
            let max = values
                .iter()
                .filter_map(|v| parse_decimal(v))
                .max()
                .unwrap_or(0);
            crate::apps::push_decimal(out, max);
            Ok(())
        }

        fn combiner(&self) -> Option<Combiner> {
            Some(Combiner::Custom)
        }

        fn combine(&self, _: &[u8], acc: &mut Vec<u8>, value: &[u8]) {
            if parse_decimal(value) > parse_decimal(acc) {
                acc.clear();
                acc.extend_from_slice(value);
            }
        }
    }

    #[test]
    fn a_custom_combiner_writes_one_record_per_key_and_keeps_the_output() {
        let text = crate::corpus::generate(4, 50_000);
        let mut emitter = Emitter::new(&Longest, 4, true);
        Longest.map("f", &text, &mut emitter).unwrap();
        let emitted = emitter.emitted();
        let mut pairs = Vec::new();
        let files = emitter.finish();
        for file in &files {
            codec::decode_into(file, &mut pairs).unwrap();
        }
        let mut keys: Vec<&[u8]> = pairs.iter().map(|(k, _)| *k).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), pairs.len(), "one record per key");
        assert!(emitted > 5_000 && pairs.len() < 100);
        let inputs = [("a", &text[..25_000]), ("b", &text[25_000..])];
        assert_eq!(
            sequential(&Longest, inputs, true).unwrap(),
            sequential(&Longest, inputs, false).unwrap()
        );
    }

    #[test]
    fn without_a_combiner_every_pair_is_written_in_its_partition() {
        let mut emitter = Emitter::new(&crate::apps::NoCrash, 3, true);
        for key in [&b"x"[..], b"y", b"x"] {
            emitter.emit(key, b"v");
        }
        emitter.emit_count(b"z", 7);
        let files = emitter.finish();
        let mut total = 0;
        for (y, file) in files.iter().enumerate() {
            let mut pairs = Vec::new();
            codec::decode_into(file, &mut pairs).unwrap();
            for (key, _) in &pairs {
                assert_eq!(partition(key, 3) as usize, y);
            }
            total += pairs.len();
        }
        assert_eq!(total, 4);
    }
}
