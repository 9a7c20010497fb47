//! Built-in applications: word count, the inverted index, and the lab's pure test
//! applications. The lab's timing applications (`mtiming`, `rtiming`, `jobcount`,
//! `early_exit`) need clocks and files, so they live in the `mapreduce` binary.

mod crash;
mod indexer;
mod word_count;

pub use crash::{Crash, NoCrash};
pub use indexer::Indexer;
pub use word_count::WordCount;

use crate::app::App;

/// Names accepted by [`by_name`].
pub const NAMES: &[&str] = &["wc", "indexer", "nocrash", "crash"];

/// A built-in application by its lab name, or `None`.
///
/// ```
/// assert!(stepwise_mr::apps::by_name("wc").is_some());
/// assert!(stepwise_mr::apps::by_name("nope").is_none());
/// ```
pub fn by_name(name: &str) -> Option<Box<dyn App + Send + Sync>> {
    Some(match name {
        "wc" => Box::new(WordCount),
        "indexer" => Box::new(Indexer),
        "nocrash" => Box::new(NoCrash),
        "crash" => Box::new(Crash::lab()),
        _ => return None,
    })
}

/// Appends the decimal form of `n` to `out`.
pub(crate) fn push_decimal(out: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 20];
    out.extend_from_slice(decimal(n, &mut digits));
}

/// The decimal form of `n`, written into `digits`.
pub(crate) fn decimal(n: u64, digits: &mut [u8; 20]) -> &[u8] {
    let mut at = digits.len();
    let mut n = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &digits[at..]
}

/// Parses a decimal count (ASCII digits only, saturating); `None` if it is not one.
pub(crate) fn parse_decimal(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for &b in bytes {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.saturating_mul(10).saturating_add(u64::from(b - b'0'));
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_round_trip() {
        for n in [0, 1, 9, 10, 99, 12345, u64::MAX] {
            let mut out = Vec::new();
            push_decimal(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
            assert_eq!(parse_decimal(&out), Some(n));
        }
        assert_eq!(parse_decimal(b""), None);
        assert_eq!(parse_decimal(b"1x"), None);
        assert_eq!(parse_decimal(b"-1"), None);
        assert_eq!(parse_decimal(b"99999999999999999999999"), Some(u64::MAX));
    }

    #[test]
    fn every_name_resolves() {
        for name in NAMES {
            assert!(by_name(name).is_some(), "{name}");
        }
    }
}
