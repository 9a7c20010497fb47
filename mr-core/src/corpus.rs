//! A deterministic text generator for tests and benchmarks, so they run without the
//! Project Gutenberg texts.
//!
//! The text looks like prose: sentences of 4-19 words, a capitalized first word,
//! commas, line breaks near 72 columns, and word frequencies with a Zipf-like head
//! (the 4096 most common words take 80% of occurrences) over a vocabulary of about
//! 50,000 distinct words, about 1% of them with Latin-1 accents.

use std::sync::OnceLock;

/// Vocabulary size.
const VOCABULARY: usize = 50_000;
/// The frequent head of the vocabulary, sampled with Zipf weights.
const HEAD: usize = 4096;
/// Resolution of the Zipf sampling table.
const TABLE_BITS: u32 = 16;

const ONSETS: &[&str] = &[
    "", "b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "y",
    "z", "br", "ch", "cl", "dr", "fl", "gr", "pl", "pr", "sh", "st", "th", "tr", "wh",
];
const NUCLEI: &[&str] = &["a", "e", "i", "o", "u", "ea", "ou", "ai", "ee", "oo", "y"];
const CODAS: &[&str] = &[
    "", "", "", "n", "r", "s", "t", "l", "nd", "st", "ng", "ck", "th",
];
const ACCENTED: &[&str] = &["é", "è", "ï", "ö", "ü", "ñ", "ç", "å"];

/// Generates a seeded text of exactly `bytes` bytes (valid UTF-8 ending in a newline when
/// `bytes > 0`). The same seed and length give the same text on every platform.
///
/// ```
/// let a = stepwise_mr::corpus::generate(1, 1000);
/// assert_eq!(a.len(), 1000);
/// assert_eq!(a, stepwise_mr::corpus::generate(1, 1000));
/// assert!(std::str::from_utf8(&a).is_ok());
/// ```
pub fn generate(seed: u64, bytes: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes);
    Generator::new(seed).fill(&mut out, bytes);
    out
}

/// A seeded generator; [`generate`] is the one-shot form.
#[derive(Debug, Clone)]
pub struct Generator {
    rng: oorandom::Rand64,
    vocabulary: &'static Vocabulary,
}

/// The words and their frequencies: the same for every seed (only the text differs), and
/// built once per process (it takes tens of milliseconds).
#[derive(Debug)]
struct Vocabulary {
    words: Vec<Box<str>>,
    capitalized: Vec<Box<str>>,
    zipf: Vec<u16>,
}

impl Vocabulary {
    fn get() -> &'static Vocabulary {
        static CELL: OnceLock<Vocabulary> = OnceLock::new();
        CELL.get_or_init(Vocabulary::build)
    }

    fn build() -> Vocabulary {
        let mut rng = oorandom::Rand64::new(0x6d72_636f_7270_7573);
        let mut words = Vec::with_capacity(VOCABULARY);
        for i in 0..VOCABULARY {
            // Common words are short, rare words long, as in English.
            let syllables = 1
                + usize::from(i >= 64)
                + usize::from(i >= 2048)
                + (i >= 8192) as usize * pick(&mut rng, 2);
            let mut word = String::new();
            for _ in 0..syllables {
                word.push_str(ONSETS[pick(&mut rng, ONSETS.len())]);
                if rng.rand_range(0..100) == 0 {
                    word.push_str(ACCENTED[pick(&mut rng, ACCENTED.len())]);
                } else {
                    word.push_str(NUCLEI[pick(&mut rng, NUCLEI.len())]);
                }
                word.push_str(CODAS[pick(&mut rng, CODAS.len())]);
            }
            words.push(word.into_boxed_str());
        }
        let capitalized = words
            .iter()
            .map(|w| capitalize(w).into_boxed_str())
            .collect();
        // Zipf weights 1/(rank+1) over the head, as a lookup table from 16 random bits.
        let harmonic: f64 = (1..=HEAD).map(|r| 1.0 / r as f64).sum();
        let slots = 1usize << TABLE_BITS;
        let mut zipf = Vec::with_capacity(slots);
        let mut cumulative = 0.0;
        for rank in 0..HEAD {
            cumulative += 1.0 / ((rank + 1) as f64 * harmonic);
            let until = ((cumulative * slots as f64).round() as usize).min(slots);
            while zipf.len() < until {
                zipf.push(rank as u16);
            }
        }
        zipf.resize(slots, (HEAD - 1) as u16);
        Vocabulary {
            words,
            capitalized,
            zipf,
        }
    }
}

impl Generator {
    /// A generator whose text depends only on `seed`.
    pub fn new(seed: u64) -> Self {
        Generator {
            rng: oorandom::Rand64::new(u128::from(seed) ^ 0x6d72_636f_7270_7573),
            vocabulary: Vocabulary::get(),
        }
    }

    fn word_index(&mut self) -> usize {
        let r = self.rng.rand_u64();
        if r.is_multiple_of(5) {
            // 20%: uniform over the whole vocabulary (the long tail).
            ((r >> 8) % VOCABULARY as u64) as usize
        } else {
            usize::from(self.vocabulary.zipf[(r >> 40) as usize & ((1 << TABLE_BITS) - 1)])
        }
    }

    /// Appends exactly `bytes` bytes of text to `out`.
    pub fn fill(&mut self, out: &mut Vec<u8>, bytes: usize) {
        let end = out.len() + bytes;
        let mut column = 0;
        let mut sentence_left = 0;
        loop {
            let index = self.word_index();
            let first = sentence_left == 0;
            if first {
                sentence_left = 4 + self.rng.rand_range(0..16);
            }
            sentence_left -= 1;
            let word = if first {
                &self.vocabulary.capitalized[index]
            } else {
                &self.vocabulary.words[index]
            };
            let punctuation: &[u8] = if sentence_left == 0 {
                b"."
            } else if self.rng.rand_range(0..10) == 0 {
                b","
            } else {
                b""
            };
            // Word, punctuation, separator, and the final newline must fit.
            if out.len() + word.len() + punctuation.len() + 2 > end {
                break;
            }
            out.extend_from_slice(word.as_bytes());
            out.extend_from_slice(punctuation);
            column += word.len() + punctuation.len() + 1;
            if column >= 72 {
                out.push(b'\n');
                column = 0;
            } else {
                out.push(b' ');
            }
        }
        out.resize(end, b'\n');
    }
}

fn pick(rng: &mut oorandom::Rand64, n: usize) -> usize {
    rng.rand_range(0..n as u64) as usize
}

fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_length_valid_utf8_and_deterministic() {
        for bytes in [0, 1, 2, 5, 80, 1000, 65_537] {
            let text = generate(9, bytes);
            assert_eq!(text.len(), bytes);
            assert!(std::str::from_utf8(&text).is_ok());
            assert_eq!(text, generate(9, bytes));
            if bytes > 0 {
                assert_eq!(text.last(), Some(&b'\n'));
            }
        }
        assert_ne!(generate(1, 1000), generate(2, 1000));
    }

    #[test]
    fn golden_prefix_for_seed_1() {
        // Pins the generator: stored benchmark inputs and test seeds keep their meaning.
        let text = generate(1, 60);
        assert_eq!(
            String::from_utf8(text).unwrap(),
            "Po yaing, voutyootril pockdru you koo shinghi tajeer caind \n"
        );
    }

    #[test]
    fn has_a_heavy_head_and_a_long_tail() {
        let text = generate(5, 2_000_000);
        let mut counts = std::collections::HashMap::new();
        crate::text::for_each_word(&text, |w| *counts.entry(w).or_insert(0u64) += 1);
        let total: u64 = counts.values().sum();
        let max = *counts.values().max().unwrap();
        assert!(counts.len() > 20_000, "distinct words: {}", counts.len());
        assert!(
            max * 50 > total,
            "most common word is frequent: {max} of {total}"
        );
        assert!(counts.keys().any(|w| !w.is_ascii()), "some accented words");
    }
}
