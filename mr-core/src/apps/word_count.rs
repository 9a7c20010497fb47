//! `wc`: word count.

use super::{parse_decimal, push_decimal};
use crate::app::{App, AppError, Emitter};
use crate::text::for_each_word;

/// Word count: counts each word (maximal run of Unicode letters, case-sensitive) over all
/// inputs. Output lines are `word count`.
///
/// Map emits `(word, "1")` per occurrence; the combiner sums counts per map task, so each
/// map task writes each distinct word once. Reduce sums the counts; a value that is not a
/// decimal count counts as one occurrence (the lab's reduce is `len(values)`).
#[derive(Debug, Clone, Copy, Default)]
pub struct WordCount;

fn count(value: &[u8]) -> u64 {
    parse_decimal(value).unwrap_or(1)
}

impl App for WordCount {
    fn map(&self, _filename: &str, contents: &[u8], out: &mut Emitter<'_>) -> Result<(), AppError> {
        for_each_word(contents, |word| out.emit(word, b"1"));
        Ok(())
    }

    fn reduce(&self, _key: &[u8], values: &[&[u8]], out: &mut Vec<u8>) -> Result<(), AppError> {
        let total = values
            .iter()
            .fold(0u64, |sum, v| sum.saturating_add(count(v)));
        push_decimal(out, total);
        Ok(())
    }

    fn has_combiner(&self) -> bool {
        true
    }

    #[inline]
    fn combine(&self, _key: &[u8], acc: &mut Vec<u8>, value: &[u8]) {
        let total = count(acc).saturating_add(count(value));
        acc.clear();
        push_decimal(acc, total);
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
    fn combine_sums_decimal_counts() {
        let mut acc = b"41".to_vec();
        WordCount.combine(b"k", &mut acc, b"1");
        assert_eq!(acc, b"42");
        WordCount.combine(b"k", &mut acc, b"958");
        assert_eq!(acc, b"1000");
    }
}
