//! `indexer`: the inverted index.

use std::collections::BTreeSet;

use super::push_decimal;
use crate::app::{App, AppError, Emitter};
use crate::text::for_each_word;

/// Inverted index: for each word, the documents that contain it. Output lines are
/// `word n doc1,doc2,...` with the documents sorted.
#[derive(Debug, Clone, Copy, Default)]
pub struct Indexer;

impl App for Indexer {
    fn map(&self, filename: &str, contents: &[u8], out: &mut Emitter<'_>) -> Result<(), AppError> {
        let mut words = BTreeSet::new();
        for_each_word(contents, |word| {
            words.insert(word);
        });
        for word in words {
            out.emit(word, filename.as_bytes());
        }
        Ok(())
    }

    fn reduce(&self, _key: &[u8], values: &[&[u8]], out: &mut Vec<u8>) -> Result<(), AppError> {
        let mut docs = values.to_vec();
        docs.sort_unstable();
        push_decimal(out, docs.len() as u64);
        out.push(b' ');
        for (i, doc) in docs.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(doc);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::sequential;

    #[test]
    fn lists_sorted_documents_per_word() {
        let out = sequential(
            &Indexer,
            [("b.txt", &b"cat dog cat"[..]), ("a.txt", &b"cat"[..])],
            true,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "cat 2 a.txt,b.txt\ndog 1 b.txt\n"
        );
    }
}
