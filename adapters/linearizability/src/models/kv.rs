//! The 2020-2024 lab key/value model (`models/kv.go`): Get, Put, Append and, from 2024,
//! Append that returns the old value.

use std::fmt::Debug;
use std::hash::Hash;
use std::marker::PhantomData;

use crate::model::Model;

/// A value the [`Kv`] model can store: comparable, hashable, empty by default, appendable.
pub trait KvValue: Clone + Eq + Hash + Debug + Default {
    /// Appends `suffix` to `self`.
    fn append_from(&mut self, suffix: &Self);
}

impl KvValue for String {
    fn append_from(&mut self, suffix: &Self) {
        self.push_str(suffix);
    }
}

impl KvValue for Vec<u8> {
    fn append_from(&mut self, suffix: &Self) {
        self.extend_from_slice(suffix);
    }
}

/// The 2020-2024 lab key/value store, keys `K`, values `V`.
///
/// Per key the state is the value, initially empty (`V::default()`); partitioned by key.
/// The output of an operation is a `V`:
/// * `Get`: legal iff the output equals the state;
/// * `Put`: the state becomes the value (output ignored);
/// * `Append`: the state becomes state + value (output ignored);
/// * `AppendReturn` (2024): legal iff the output equals the old state; the state becomes
///   old + value.
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
}

impl<K, V> KvInput<K, V> {
    /// The key the operation touches.
    pub fn key(&self) -> &K {
        match self {
            Self::Get { key }
            | Self::Put { key, .. }
            | Self::Append { key, .. }
            | Self::AppendReturn { key, .. } => key,
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
}

impl<K: Ord + Clone + Debug, V: KvValue> Model for Kv<K, V> {
    type State = V;
    type Input = KvInput<K, V>;
    type Output = V;
    type Key = K;

    fn init(&self) -> V {
        V::default()
    }

    fn step(&self, state: &V, input: &KvInput<K, V>, output: Option<&V>) -> Option<V> {
        match input {
            KvInput::Get { .. } => match output {
                Some(out) if out != state => None,
                _ => Some(state.clone()),
            },
            KvInput::Put { value, .. } => Some(value.clone()),
            KvInput::Append { value, .. } => {
                let mut next = state.clone();
                next.append_from(value);
                Some(next)
            }
            KvInput::AppendReturn { value, .. } => match output {
                Some(out) if out != state => None,
                _ => {
                    let mut next = state.clone();
                    next.append_from(value);
                    Some(next)
                }
            },
        }
    }

    fn partition(&self, input: &KvInput<K, V>) -> K {
        input.key().clone()
    }

    fn is_read_only(&self, input: &KvInput<K, V>, _output: Option<&V>) -> bool {
        matches!(input, KvInput::Get { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_follow_the_lab_model() {
        let m: Kv = Kv::new();
        let s = "ab".to_string();
        let get = KvInput::get("k");
        assert_eq!(m.step(&s, &get, Some(&"ab".into())), Some("ab".into()));
        assert_eq!(m.step(&s, &get, Some(&"a".into())), None);
        assert_eq!(m.step(&s, &get, None), Some("ab".into()));
        let put = KvInput::put("k", "x");
        assert_eq!(m.step(&s, &put, Some(&"ignored".into())), Some("x".into()));
        let append = KvInput::append("k", "c");
        assert_eq!(
            m.step(&s, &append, Some(&String::new())),
            Some("abc".into())
        );
        assert_eq!(m.step(&s, &append, None), Some("abc".into()));
        let append_ret = KvInput::append_return("k", "c");
        assert_eq!(
            m.step(&s, &append_ret, Some(&"ab".into())),
            Some("abc".into())
        );
        assert_eq!(m.step(&s, &append_ret, Some(&"a".into())), None);
        assert_eq!(m.step(&s, &append_ret, None), Some("abc".into()));
        assert_eq!(m.partition(&append_ret), "k");
    }

    #[test]
    fn byte_values_append() {
        let m: Kv<Vec<u8>, Vec<u8>> = Kv::new();
        let input = KvInput::Append {
            key: b"k".to_vec(),
            value: b"yz".to_vec(),
        };
        assert_eq!(m.step(&b"x".to_vec(), &input, None), Some(b"xyz".to_vec()));
        assert_eq!(m.partition(&input), b"k".to_vec());
    }
}
