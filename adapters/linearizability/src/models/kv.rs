//! The 2020-2024 lab key/value model (`models/kv.go`): Get, Put, Append and, from 2024,
//! Append that returns the old value; extended with Delete and Incr (not in the lab), whose
//! outputs are written as Redis replies (integers in decimal).

use std::fmt::Debug;
use std::hash::Hash;
use std::marker::PhantomData;

use crate::model::Model;

/// A value the [`Kv`] model can store: comparable, hashable, empty by default, appendable,
/// and convertible to and from a decimal integer (for Incr and the integer replies).
pub trait KvValue: Clone + Eq + Hash + Debug + Default {
    /// Appends `suffix` to `self`.
    fn append_from(&mut self, suffix: &Self);

    /// The value as a 64-bit signed integer written in canonical decimal (`"-12"`; not
    /// `"+12"`, `"012"`, `"-0"`, `" 1"` or `""`), or `None`: what Incr accepts.
    fn to_i64(&self) -> Option<i64>;

    /// `n` in decimal: what Incr stores and replies.
    fn from_i64(n: i64) -> Self;
}

impl KvValue for String {
    fn append_from(&mut self, suffix: &Self) {
        self.push_str(suffix);
    }

    fn to_i64(&self) -> Option<i64> {
        parse_i64(self.as_bytes())
    }

    fn from_i64(n: i64) -> Self {
        n.to_string()
    }
}

impl KvValue for Vec<u8> {
    fn append_from(&mut self, suffix: &Self) {
        self.extend_from_slice(suffix);
    }

    fn to_i64(&self) -> Option<i64> {
        parse_i64(self)
    }

    fn from_i64(n: i64) -> Self {
        n.to_string().into_bytes()
    }
}

/// Canonical decimal only: optional `-`, no leading zero (except `"0"` itself), no `"-0"`.
fn parse_i64(text: &[u8]) -> Option<i64> {
    let digits = text.strip_prefix(b"-").unwrap_or(text);
    let canonical = match digits {
        [] => false,
        [b'0'] => digits.len() == text.len(),
        [first, ..] => *first != b'0',
    };
    if !canonical || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // ASCII digits (and a sign) only: valid UTF-8; out of range fails the parse.
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// The 2020-2024 lab key/value store, keys `K`, values `V`.
///
/// Per key the state is the value or `None` for a missing key (the initial state);
/// partitioned by key. A missing key reads as empty (`V::default()`), as in the lab, so for
/// Get, Put and Append histories `None` and an empty value behave the same; they differ only
/// for Delete (did the key exist) and Incr (a missing key counts as 0, an empty value is
/// not an integer). The output of an operation is a `V`:
/// * `Get`: legal iff the output equals the value (empty if missing);
/// * `Put`: the state becomes the value (output ignored);
/// * `Append`: the state becomes value + suffix, a missing key acting as empty (output
///   ignored);
/// * `AppendReturn` (2024): legal iff the output equals the old value; then as `Append`;
/// * `Delete`: the key becomes missing; the output is the number of keys removed, as
///   Redis's DEL replies: `"1"` iff the key existed, else `"0"`;
/// * `Incr { by }`: if the value is an integer ([`KvValue::to_i64`]; a missing key counts
///   as 0) and adding `by` does not overflow, the value becomes the sum, and the output
///   is the sum in decimal; otherwise the operation is an error that changes nothing,
///   written as an empty output (a successful Incr never replies empty).
///
/// With no output (no reply) every operation is legal and has its effect.
pub struct Kv<K = String, V = String> {
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Kv<K, V> {
    /// The model.
    pub fn new() -> Self {
        Self {
            _types: PhantomData,
        }
    }
}

impl<K, V> Default for Kv<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V> Clone for Kv<K, V> {
    fn clone(&self) -> Self {
        Self::new()
    }
}

impl<K, V> Debug for Kv<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kv")
    }
}

/// A 2020-2024 key/value operation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KvInput<K, V> {
    /// Read `key`.
    Get {
        /// The key.
        key: K,
    },
    /// Replace the value of `key`.
    Put {
        /// The key.
        key: K,
        /// The new value.
        value: V,
    },
    /// Append to the value of `key`.
    Append {
        /// The key.
        key: K,
        /// The suffix.
        value: V,
    },
    /// Append to the value of `key`, returning the old value (2024).
    AppendReturn {
        /// The key.
        key: K,
        /// The suffix.
        value: V,
    },
    /// Remove `key` (output `"1"` if it existed, else `"0"`).
    Delete {
        /// The key.
        key: K,
    },
    /// Add `by` to the integer value of `key` (output the sum, or empty on error).
    Incr {
        /// The key.
        key: K,
        /// The amount (negative to decrement).
        by: i64,
    },
}

impl<K, V> KvInput<K, V> {
    /// The key the operation touches.
    pub fn key(&self) -> &K {
        match self {
            Self::Get { key }
            | Self::Put { key, .. }
            | Self::Append { key, .. }
            | Self::AppendReturn { key, .. }
            | Self::Delete { key }
            | Self::Incr { key, .. } => key,
        }
    }
}

impl KvInput<String, String> {
    /// `Get(key)` with `String` keys.
    pub fn get(key: impl Into<String>) -> Self {
        Self::Get { key: key.into() }
    }

    /// `Put(key, value)` with `String` keys and values.
    pub fn put(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self::Put {
            key: key.into(),
            value: value.into(),
        }
    }

    /// `Append(key, value)` with `String` keys and values.
    pub fn append(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self::Append {
            key: key.into(),
            value: value.into(),
        }
    }

    /// `Append(key, value)` returning the old value (2024), with `String` keys and values.
    pub fn append_return(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self::AppendReturn {
            key: key.into(),
            value: value.into(),
        }
    }

    /// `Delete(key)` with `String` keys.
    pub fn delete(key: impl Into<String>) -> Self {
        Self::Delete { key: key.into() }
    }

    /// `Incr(key, by)` with `String` keys.
    pub fn incr(key: impl Into<String>, by: i64) -> Self {
        Self::Incr {
            key: key.into(),
            by,
        }
    }
}

impl<K: Ord + Clone + Debug, V: KvValue> Model for Kv<K, V> {
    type State = Option<V>;
    type Input = KvInput<K, V>;
    type Output = V;
    type Key = K;

    fn init(&self) -> Option<V> {
        None
    }

    fn step(
        &self,
        state: &Option<V>,
        input: &KvInput<K, V>,
        output: Option<&V>,
    ) -> Option<Option<V>> {
        // Whether `out` is what a read of `state` returns (a missing key reads empty).
        let reads = |out: &V| match state {
            Some(value) => out == value,
            None => *out == V::default(),
        };
        let appended = |suffix: &V| {
            let mut next = state.clone().unwrap_or_default();
            next.append_from(suffix);
            Some(next)
        };
        match input {
            KvInput::Get { .. } => match output {
                Some(out) if !reads(out) => None,
                _ => Some(state.clone()),
            },
            KvInput::Put { value, .. } => Some(Some(value.clone())),
            KvInput::Append { value, .. } => Some(appended(value)),
            KvInput::AppendReturn { value, .. } => match output {
                Some(out) if !reads(out) => None,
                _ => Some(appended(value)),
            },
            KvInput::Delete { .. } => match output {
                Some(out) if *out != V::from_i64(i64::from(state.is_some())) => None,
                _ => Some(None),
            },
            KvInput::Incr { by, .. } => {
                let old = match state {
                    Some(value) => value.to_i64(),
                    None => Some(0),
                };
                match (old.and_then(|old| old.checked_add(*by)), output) {
                    (Some(sum), out) => {
                        let sum = V::from_i64(sum);
                        match out {
                            Some(out) if *out != sum => None,
                            _ => Some(Some(sum)),
                        }
                    }
                    // Not an integer, or out of range: an error that changes nothing.
                    (None, Some(out)) if *out != V::default() => None,
                    (None, _) => Some(state.clone()),
                }
            }
        }
    }

    fn partition(&self, input: &KvInput<K, V>) -> K {
        input.key().clone()
    }

    fn is_read_only(&self, input: &KvInput<K, V>, output: Option<&V>) -> bool {
        match input {
            KvInput::Get { .. } => true,
            // Legal only on a missing key, which it leaves missing.
            KvInput::Delete { .. } => output == Some(&V::from_i64(0)),
            // Legal only where the Incr fails, which changes nothing.
            KvInput::Incr { .. } => output == Some(&V::default()),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CheckResult, Operation, check};

    fn some(v: &str) -> Option<Option<String>> {
        Some(Some(v.to_string()))
    }

    #[test]
    fn steps_follow_the_lab_model() {
        let m: Kv = Kv::new();
        let s = Some("ab".to_string());
        let get = KvInput::get("k");
        assert_eq!(m.step(&s, &get, Some(&"ab".into())), some("ab"));
        assert_eq!(m.step(&s, &get, Some(&"a".into())), None);
        assert_eq!(m.step(&s, &get, None), some("ab"));
        assert_eq!(m.step(&None, &get, Some(&String::new())), Some(None));
        let put = KvInput::put("k", "x");
        assert_eq!(m.step(&s, &put, Some(&"ignored".into())), some("x"));
        let append = KvInput::append("k", "c");
        assert_eq!(m.step(&s, &append, Some(&String::new())), some("abc"));
        assert_eq!(m.step(&s, &append, None), some("abc"));
        assert_eq!(m.step(&None, &append, None), some("c"));
        let append_ret = KvInput::append_return("k", "c");
        assert_eq!(m.step(&s, &append_ret, Some(&"ab".into())), some("abc"));
        assert_eq!(m.step(&s, &append_ret, Some(&"a".into())), None);
        assert_eq!(m.step(&s, &append_ret, None), some("abc"));
        assert_eq!(m.partition(&append_ret), "k");
    }

    #[test]
    fn delete_removes_the_key_and_says_whether_it_existed() {
        let m: Kv = Kv::new();
        let del = KvInput::delete("k");
        let empty = Some(String::new());
        assert_eq!(
            m.step(&Some("ab".into()), &del, Some(&"1".into())),
            Some(None)
        );
        // An empty value is a value: deleting it removes something.
        assert_eq!(m.step(&empty, &del, Some(&"1".into())), Some(None));
        assert_eq!(m.step(&empty, &del, Some(&"0".into())), None);
        assert_eq!(m.step(&None, &del, Some(&"0".into())), Some(None));
        assert_eq!(m.step(&None, &del, Some(&"1".into())), None);
        assert_eq!(m.step(&Some("ab".into()), &del, None), Some(None));
        // A deleted key reads empty, like a key never written.
        assert_eq!(
            m.step(&None, &KvInput::get("k"), Some(&String::new())),
            Some(None)
        );
        assert!(m.is_read_only(&del, Some(&"0".into())));
        assert!(!m.is_read_only(&del, Some(&"1".into())));
        assert!(!m.is_read_only(&del, None));
        assert_eq!(m.partition(&del), "k");
    }

    #[test]
    fn incr_adds_to_integers_and_fails_on_anything_else() {
        let m: Kv = Kv::new();
        let incr = KvInput::incr("k", 5);
        assert_eq!(m.step(&None, &incr, Some(&"5".into())), some("5"));
        assert_eq!(
            m.step(&Some("-7".into()), &incr, Some(&"-2".into())),
            some("-2")
        );
        assert_eq!(m.step(&Some("-7".into()), &incr, Some(&"5".into())), None);
        assert_eq!(m.step(&Some("-7".into()), &incr, None), some("-2"));
        // Not canonical integers (an empty value is not a missing key): errors.
        for bad in ["", "x", "+1", "01", "-0", " 1", "99999999999999999999"] {
            let s = Some(bad.to_string());
            assert_eq!(
                m.step(&s, &incr, Some(&String::new())),
                Some(s.clone()),
                "{bad:?}"
            );
            assert_eq!(m.step(&s, &incr, Some(&"5".into())), None, "{bad:?}");
            assert_eq!(m.step(&s, &incr, None), Some(s.clone()), "{bad:?}");
        }
        // An error on an integer value is illegal, unless the sum overflows.
        assert_eq!(m.step(&Some("1".into()), &incr, Some(&String::new())), None);
        let max = Some(i64::MAX.to_string());
        assert_eq!(m.step(&max, &incr, Some(&String::new())), Some(max.clone()));
        let down = KvInput::incr("k", -1);
        assert_eq!(
            m.step(&max, &down, Some(&(i64::MAX - 1).to_string())),
            some(&(i64::MAX - 1).to_string())
        );
        assert!(m.is_read_only(&incr, Some(&String::new())));
        assert!(!m.is_read_only(&incr, Some(&"5".into())));
    }

    type Op = Operation<KvInput<String, String>, String>;

    fn op(client: u64, input: KvInput<String, String>, out: &str, call: u64, ret: u64) -> Op {
        Operation::complete(client, input, call, out.to_string(), ret)
    }

    #[test]
    fn concurrent_incrs_and_deletes_linearize() {
        let history = [
            op(0, KvInput::incr("k", 2), "2", 0, 10),
            op(1, KvInput::incr("k", 3), "5", 1, 4),
            // Delete overlaps both Incrs and goes last: it removed a key.
            op(2, KvInput::delete("k"), "1", 2, 12),
            op(1, KvInput::get("k"), "", 13, 14),
            op(1, KvInput::incr("k", 1), "1", 15, 16),
            op(0, KvInput::put("k", "x"), "", 17, 18),
            op(0, KvInput::incr("k", 1), "", 19, 20),
            op(2, KvInput::get("k"), "x", 21, 22),
            // Pending: might have applied once (never twice).
            Operation::pending(2, KvInput::incr("n", 10), 23),
            op(1, KvInput::get("n"), "10", 24, 25),
        ];
        assert_eq!(check(&Kv::new(), &history, None), CheckResult::Ok);
    }

    #[test]
    fn an_incr_applied_twice_is_not_linearizable() {
        // Client 0's Incr by 2 replied 2, then a read sees 4: applied twice.
        let history = [
            op(0, KvInput::incr("k", 2), "2", 0, 1),
            op(1, KvInput::get("k"), "4", 2, 3),
        ];
        assert!(check(&Kv::new(), &history, None).is_illegal());
        // Deleted, then a Delete that says the key still existed.
        let history = [
            op(0, KvInput::put("k", "a"), "", 0, 1),
            op(0, KvInput::delete("k"), "1", 2, 3),
            op(1, KvInput::delete("k"), "1", 4, 5),
        ];
        assert!(check(&Kv::new(), &history, None).is_illegal());
        // An Incr that failed on a value it should have counted from.
        let history = [
            op(0, KvInput::delete("k"), "0", 0, 1),
            op(1, KvInput::incr("k", 1), "", 2, 3),
        ];
        assert!(check(&Kv::new(), &history, None).is_illegal());
    }

    #[test]
    fn byte_values_append() {
        let m: Kv<Vec<u8>, Vec<u8>> = Kv::new();
        let input = KvInput::Append {
            key: b"k".to_vec(),
            value: b"yz".to_vec(),
        };
        assert_eq!(
            m.step(&Some(b"x".to_vec()), &input, None),
            Some(Some(b"xyz".to_vec()))
        );
        assert_eq!(m.partition(&input), b"k".to_vec());
        let incr = KvInput::Incr {
            key: b"k".to_vec(),
            by: -3,
        };
        assert_eq!(
            m.step(&Some(b"1".to_vec()), &incr, Some(&b"-2".to_vec())),
            Some(Some(b"-2".to_vec()))
        );
    }
}
