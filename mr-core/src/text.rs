//! Word splitting: words are maximal runs of Unicode letters (general category L), as the
//! lab's `wc` and `indexer` split with Go's `unicode.IsLetter`.

use crate::letters::LETTER_RANGES;

/// Byte classes for the tokenizer's fast path.
const SEPARATOR: u8 = 0;
const ASCII_LETTER: u8 = 1;
/// A byte that starts a multi-byte UTF-8 sequence: decode it to decide.
const MULTIBYTE: u8 = 2;

static CLASS: [u8; 256] = {
    let mut table = [SEPARATOR; 256];
    let mut b = 0;
    while b < 256 {
        let byte = b as u8;
        if byte.is_ascii_alphabetic() {
            table[b] = ASCII_LETTER;
        } else if byte >= 0xC2 && byte <= 0xF4 {
            table[b] = MULTIBYTE;
        }
        b += 1;
    }
    table
};

/// Whether `c` is a Unicode letter (general category Lu, Ll, Lt, Lm or Lo).
///
/// ```
/// use stepwise_mr::is_letter;
/// assert!(is_letter('a') && is_letter('É') && is_letter('ж') && is_letter('字'));
/// assert!(!is_letter('1') && !is_letter('-') && !is_letter('Ⅻ') && !is_letter('\u{301}'));
/// ```
pub fn is_letter(c: char) -> bool {
    let cp = u32::from(c);
    if cp < 0x80 {
        return c.is_ascii_alphabetic();
    }
    LETTER_RANGES
        .binary_search_by(|&(first, last)| {
            if last < cp {
                std::cmp::Ordering::Less
            } else if first > cp {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// Decodes the character starting at `text[at]` (a multi-byte lead byte). Returns the
/// character and its length, or `None` if the bytes there are not valid UTF-8.
#[inline]
fn decode_at(text: &[u8], at: usize) -> Option<(char, usize)> {
    let end = text.len().min(at + 4);
    let valid = match std::str::from_utf8(&text[at..end]) {
        Ok(s) => s,
        Err(e) => {
            // The prefix up to `valid_up_to` is valid by definition, so this cannot fail.
            std::str::from_utf8(&text[at..at + e.valid_up_to()]).unwrap_or("")
        }
    };
    let c = valid.chars().next()?;
    Some((c, c.len_utf8()))
}

const HIGH_BITS: u64 = 0x8080_8080_8080_8080;
const LOW_BITS: u64 = 0x7f7f_7f7f_7f7f_7f7f;
const ONES: u64 = 0x0101_0101_0101_0101;

/// The high bit of each byte of `word` that is not an ASCII letter (SWAR: eight bytes in a
/// few instructions). Folding case maps the letters onto `a..=z` (0x61..=0x7A) and nothing
/// else there; adding 0x1F or 0x05 to a byte below 0x80 sets its high bit exactly when it is
/// at least 0x61 or 0x7B, and cannot carry into the next byte.
#[inline]
fn non_letters(word: u64) -> u64 {
    let folded = (word & LOW_BITS) | (0x20 * ONES);
    let at_least_a = folded.wrapping_add(0x1f * ONES) & HIGH_BITS;
    let past_z = folded.wrapping_add(0x05 * ONES) & HIGH_BITS;
    let letters = at_least_a & !past_z & !(word & HIGH_BITS);
    !letters & HIGH_BITS
}

/// The length of the run of ASCII letters at `text[start..]`.
#[inline]
fn ascii_letter_run(text: &[u8], start: usize) -> usize {
    let mut i = start;
    while let Some(chunk) = text.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let non = non_letters(u64::from_le_bytes(word));
        if non != 0 {
            return i - start + (non.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < text.len() && CLASS[usize::from(text[i])] == ASCII_LETTER {
        i += 1;
    }
    i - start
}

/// Calls `f` with each word of `text`, in order: maximal runs of Unicode letters.
///
/// `text` need not be valid UTF-8: an invalid byte separates words (as Go reads it as
/// U+FFFD, which is not a letter). Words are slices of `text`, so nothing is allocated.
///
/// ```
/// let mut words = Vec::new();
/// stepwise_mr::for_each_word(b"It's 2 o'clock, caf\xc3\xa9-time!", |w| words.push(w));
/// assert_eq!(words, [&b"It"[..], b"s", b"o", b"clock", "café".as_bytes(), b"time"]);
/// ```
#[inline]
pub fn for_each_word<'a>(text: &'a [u8], mut f: impl FnMut(&'a [u8])) {
    let n = text.len();
    let mut i = 0;
    while i < n {
        // Skip to the start of a word.
        match CLASS[usize::from(text[i])] {
            ASCII_LETTER => {}
            MULTIBYTE => match decode_at(text, i) {
                Some((c, _)) if is_letter(c) => {}
                Some((_, len)) => {
                    i += len;
                    continue;
                }
                None => {
                    i += 1;
                    continue;
                }
            },
            _ => {
                i += 1;
                continue;
            }
        }
        let start = i;
        loop {
            i += ascii_letter_run(text, i);
            if i < n
                && CLASS[usize::from(text[i])] == MULTIBYTE
                && let Some((c, len)) = decode_at(text, i)
                && is_letter(c)
            {
                i += len;
                continue;
            }
            break;
        }
        f(&text[start..i]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &[u8]) -> Vec<&[u8]> {
        let mut out = Vec::new();
        for_each_word(text, |w| out.push(w));
        out
    }

    /// The reference: decode lossily (invalid bytes become U+FFFD, one per maximal invalid
    /// subpart, which is not a letter either way) and split on non-letters.
    fn reference(text: &[u8]) -> Vec<String> {
        String::from_utf8_lossy(text)
            .split(|c: char| !is_letter(c))
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn splits_on_non_letters() {
        assert_eq!(words(b""), Vec::<&[u8]>::new());
        assert_eq!(words(b"  ,;"), Vec::<&[u8]>::new());
        assert_eq!(words(b"a"), vec![&b"a"[..]]);
        assert_eq!(
            words(b"The Project-Gutenberg eBook 42x"),
            vec![&b"The"[..], b"Project", b"Gutenberg", b"eBook", b"x"]
        );
    }

    #[test]
    fn unicode_letters_join_words_and_other_symbols_split_them() {
        let text = "naïve Ärger straße — 東京タワー 3½ x²y ǅemal".as_bytes();
        let got: Vec<String> = words(text)
            .into_iter()
            .map(|w| String::from_utf8(w.to_vec()).unwrap())
            .collect();
        assert_eq!(
            got,
            vec!["naïve", "Ärger", "straße", "東京タワー", "x", "y", "ǅemal"]
        );
    }

    #[test]
    fn invalid_utf8_separates_words_and_never_panics() {
        assert_eq!(words(b"ab\xffcd\xc3"), vec![&b"ab"[..], b"cd"]);
        assert_eq!(words(b"\xe6\x9d"), Vec::<&[u8]>::new());
        assert_eq!(
            words(b"x\xed\xa0\x80y"),
            vec![&b"x"[..], b"y"],
            "surrogates are invalid"
        );
        assert_eq!(words(b"\xf0\x90\x80\x80z"), vec!["\u{10000}z".as_bytes()]);
    }

    #[test]
    fn swar_letter_test_agrees_with_the_table_on_every_byte() {
        for b in 0..=255u8 {
            for at in 0..8 {
                let mut word = [b'a'; 8];
                word[at] = b;
                let non = non_letters(u64::from_le_bytes(word));
                let expected = if CLASS[usize::from(b)] == ASCII_LETTER {
                    0
                } else {
                    0x80u64 << (8 * at)
                };
                assert_eq!(non, expected, "byte {b:#x} at {at}");
            }
        }
        let text = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJ-xyz";
        assert_eq!(ascii_letter_run(text, 0), 36);
        assert_eq!(ascii_letter_run(text, 37), 3);
        assert_eq!(ascii_letter_run(text, 36), 0);
    }

    #[test]
    fn letter_table_is_sorted_disjoint_and_within_alphabetic() {
        let mut previous_last = 0x7F;
        for &(first, last) in LETTER_RANGES {
            assert!(
                first > previous_last && first <= last,
                "{first:#x}..{last:#x}"
            );
            previous_last = last;
        }
        // Category L is a subset of the Alphabetic property, which std knows.
        for cp in 0..0x11_0000u32 {
            if let Some(c) = char::from_u32(cp)
                && is_letter(c)
            {
                assert!(c.is_alphabetic(), "{cp:#x} is a letter but not alphabetic");
            }
        }
    }

    #[test]
    fn matches_the_lossy_reference_on_random_bytes() {
        let mut rng = oorandom::Rand64::new(7);
        let alphabet: Vec<&[u8]> = vec![
            b"a",
            b"Z",
            b" ",
            b"-",
            b"\n",
            b"1",
            "é".as_bytes(),
            "ж".as_bytes(),
            "字".as_bytes(),
            "€".as_bytes(),
            "\u{301}".as_bytes(),
            b"\xff",
            b"\xc3",
            b"\x80",
            "😀".as_bytes(),
            "𝐀".as_bytes(),
        ];
        for _ in 0..2000 {
            let mut text = Vec::new();
            for _ in 0..rng.rand_range(0..24) {
                text.extend_from_slice(alphabet[rng.rand_range(0..alphabet.len() as u64) as usize]);
            }
            let got: Vec<String> = words(&text)
                .into_iter()
                .map(|w| String::from_utf8(w.to_vec()).expect("words are valid UTF-8"))
                .collect();
            assert_eq!(got, reference(&text), "text {text:?}");
        }
    }
}
