//! `wc`: word count.

use super::{parse_decimal, push_decimal};
use crate::app::{App, AppError, Combiner, Emitter};
use crate::text::for_each_word;

/// Word count: counts each word (maximal run of Unicode letters, case-sensitive) over all
/// inputs. Output lines are `word count`.
///
/// Map emits `(word, 1)` per occurrence; the combiner ([`Combiner::Sum`]) sums counts per
/// map task, so each map task writes each distinct word once. Reduce sums the counts; a value that is not a
/// decimal count counts as one occurrence (the lab's reduce is `len(values)`).
#[derive(Debug, Clone, Copy, Default)]
pub struct WordCount;

fn count(value: &[u8]) -> u64 {
    parse_decimal(value).unwrap_or(1)
}

impl App for WordCount {
    fn map(&self, _filename: &str, contents: &[u8], out: &mut Emitter<'_>) -> Result<(), AppError> {
        for_each_word(contents, |word| out.emit_count(word, 1));
        Ok(())
    }

    fn reduce(&self, _key: &[u8], values: &[&[u8]], out: &mut Vec<u8>) -> Result<(), AppError> {
        let total = values
            .iter()
            .fold(0u64, |sum, v| sum.saturating_add(count(v)));
        push_decimal(out, total);
        Ok(())
    }

    fn combiner(&self) -> Option<Combiner> {
        Some(Combiner::Sum)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::sequential;

    #[test]
    fn counts_words_case_sensitively_in_key_order() {
        let out = sequential(
            &WordCount,
            [
                ("a.txt", &b"the cat, The cat; the END"[..]),
                ("b.txt", &b"cat"[..]),
            ],
            false,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "END 1\nThe 1\ncat 3\nthe 2\n"
        );
    }

    #[test]
    fn combiner_gives_the_same_output() {
        let text = crate::corpus::generate(11, 20_000);
        let inputs = [("x", &text[..10_000]), ("y", &text[10_000..])];
        let plain = sequential(&WordCount, inputs, false).unwrap();
        let combined = sequential(&WordCount, inputs, true).unwrap();
        assert!(!plain.is_empty());
        assert_eq!(plain, combined);
    }

    #[test]
    fn emitted_counts_are_summed_per_map_task() {
        let mut out = Emitter::new(&WordCount, 1, true);
        WordCount.map("f", b"a b a", &mut out).unwrap();
        out.emit(b"a", b"40");
        out.emit(b"b", b"not a number");
        assert_eq!(out.emitted(), 5);
        let files = out.finish();
        let mut pairs = Vec::new();
        crate::codec::decode_into(&files[0], &mut pairs).unwrap();
        pairs.sort();
        let expected: Vec<(&[u8], &[u8])> =
            vec![(b"a", b"42"), (b"b", b"1"), (b"b", b"not a number")];
        assert_eq!(pairs, expected);
    }
}
