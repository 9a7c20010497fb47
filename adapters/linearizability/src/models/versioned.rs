//! The 2025 lab versioned key/value model (`models1/kv.go`): `Get` returns a value and a
//! version, `Put` succeeds only at the current version.

use std::fmt::Debug;
use std::hash::Hash;
use std::marker::PhantomData;

use crate::model::Model;

/// The lab's error values (`rpc.Err`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KvErr {
    /// `OK`.
    Ok,
    /// `ErrNoKey`: Get of a key never put.
    NoKey,
    /// `ErrVersion`: Put at a version other than the key's current one.
    Version,
    /// `ErrMaybe`: the clerk retried a Put and got `ErrVersion`; the Put may or may not have
    /// been applied.
    Maybe,
    /// `ErrWrongLeader`.
    WrongLeader,
    /// `ErrWrongGroup`.
    WrongGroup,
}

/// The 2025 lab versioned key/value store, keys `K`, values `V`.
///
/// Per key the state is [`VersionedState`] `{ value, version }`, initially
/// `(V::default(), 0)`; partitioned by key. Exactly the lab's rules:
/// * `Get`: legal iff the output value equals the state's value. The returned version and
///   error are **not** checked. The state is unchanged.
/// * `Put` at the current version: legal iff the error is `Ok` or `Maybe`; the state becomes
///   `(value, version + 1)`.
/// * `Put` at any other version: legal iff the error is `Version` or `Maybe`; the state is
///   unchanged.
///
/// So an `ErrMaybe` Put counts as applied exactly when the versions match at its
/// linearization point. An operation with no reply is treated like an `ErrMaybe` one.
pub struct VersionedKv<K = String, V = String> {
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> VersionedKv<K, V> {
    /// The model.
    pub fn new() -> Self {
        Self {
            _types: PhantomData,
        }
    }
}

impl<K, V> Default for VersionedKv<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V> Clone for VersionedKv<K, V> {
    fn clone(&self) -> Self {
        Self::new()
    }
}

impl<K, V> Debug for VersionedKv<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VersionedKv")
    }
}

/// A 2025 key/value operation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum VersionedInput<K, V> {
    /// `Get(key)`.
    Get {
        /// The key.
        key: K,
    },
    /// `Put(key, value, version)`.
    Put {
        /// The key.
        key: K,
        /// The new value.
        value: V,
        /// The version the client believes the key is at.
        version: u64,
    },
}

impl<K, V> VersionedInput<K, V> {
    /// The key the operation touches.
    pub fn key(&self) -> &K {
        match self {
            Self::Get { key } | Self::Put { key, .. } => key,
        }
    }
}

impl VersionedInput<String, String> {
    /// `Get(key)` with `String` keys.
    pub fn get(key: impl Into<String>) -> Self {
        Self::Get { key: key.into() }
    }

    /// `Put(key, value, version)` with `String` keys and values.
    pub fn put(key: impl Into<String>, value: impl Into<String>, version: u64) -> Self {
        Self::Put {
            key: key.into(),
            value: value.into(),
            version,
        }
    }
}

/// A 2025 reply: `(value, version, err)`. Puts only use `err`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VersionedOutput<V> {
    /// The value read (Get).
    pub value: V,
    /// The version read (Get).
    pub version: u64,
    /// The error.
    pub err: KvErr,
}

impl<V: Default> VersionedOutput<V> {
    /// A Put reply carrying only `err`.
    pub fn put(err: KvErr) -> Self {
        Self {
            value: V::default(),
            version: 0,
            err,
        }
    }
}

impl<V> VersionedOutput<V> {
    /// A successful Get reply.
    pub fn get(value: impl Into<V>, version: u64) -> Self {
        Self {
            value: value.into(),
            version,
            err: KvErr::Ok,
        }
    }
}

/// The state of one key: its value and version.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct VersionedState<V> {
    /// The value.
    pub value: V,
    /// How many Puts were applied.
    pub version: u64,
}

impl<K, V> Model for VersionedKv<K, V>
where
    K: Ord + Clone + Debug,
    V: Clone + Eq + Hash + Debug + Default,
{
    type State = VersionedState<V>;
    type Input = VersionedInput<K, V>;
    type Output = VersionedOutput<V>;
    type Key = K;

    fn init(&self) -> VersionedState<V> {
        VersionedState::default()
    }

    fn step(
        &self,
        state: &VersionedState<V>,
        input: &VersionedInput<K, V>,
        output: Option<&VersionedOutput<V>>,
    ) -> Option<VersionedState<V>> {
        match input {
            VersionedInput::Get { .. } => match output {
                Some(out) if out.value != state.value => None,
                _ => Some(state.clone()),
            },
            VersionedInput::Put { value, version, .. } => {
                let err = output.map_or(KvErr::Maybe, |out| out.err);
                if *version == state.version {
                    matches!(err, KvErr::Ok | KvErr::Maybe).then(|| VersionedState {
                        value: value.clone(),
                        version: state.version + 1,
                    })
                } else {
                    matches!(err, KvErr::Version | KvErr::Maybe).then(|| state.clone())
                }
            }
        }
    }

    fn partition(&self, input: &VersionedInput<K, V>) -> K {
        input.key().clone()
    }

    /// Gets, and Puts that returned `ErrVersion` (legal only when they change nothing).
    fn is_read_only(
        &self,
        input: &VersionedInput<K, V>,
        output: Option<&VersionedOutput<V>>,
    ) -> bool {
        match input {
            VersionedInput::Get { .. } => true,
            VersionedInput::Put { .. } => output.is_some_and(|out| out.err == KvErr::Version),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(value: &str, version: u64) -> VersionedState<String> {
        VersionedState {
            value: value.to_string(),
            version,
        }
    }

    #[test]
    fn get_checks_the_value_only() {
        let m: VersionedKv = VersionedKv::new();
        let get = VersionedInput::get("k");
        let s = st("a", 3);
        assert_eq!(
            m.step(&s, &get, Some(&VersionedOutput::get("a", 3))),
            Some(s.clone())
        );
        // The lab model does not check the returned version or error.
        assert_eq!(
            m.step(&s, &get, Some(&VersionedOutput::get("a", 9))),
            Some(s.clone())
        );
        let no_key = VersionedOutput {
            value: "a".to_string(),
            version: 0,
            err: KvErr::NoKey,
        };
        assert_eq!(m.step(&s, &get, Some(&no_key)), Some(s.clone()));
        assert_eq!(m.step(&s, &get, Some(&VersionedOutput::get("b", 3))), None);
        assert_eq!(m.step(&s, &get, None), Some(s.clone()));
    }

    #[test]
    fn put_follows_the_version_rules() {
        let m: VersionedKv = VersionedKv::new();
        let s = st("a", 1);
        let at_current = VersionedInput::put("k", "b", 1);
        let stale = VersionedInput::put("k", "b", 0);
        let out = VersionedOutput::<String>::put;
        for err in [KvErr::Ok, KvErr::Maybe] {
            assert_eq!(m.step(&s, &at_current, Some(&out(err))), Some(st("b", 2)));
        }
        for err in [
            KvErr::Version,
            KvErr::NoKey,
            KvErr::WrongLeader,
            KvErr::WrongGroup,
        ] {
            assert_eq!(m.step(&s, &at_current, Some(&out(err))), None, "{err:?}");
        }
        for err in [KvErr::Version, KvErr::Maybe] {
            assert_eq!(m.step(&s, &stale, Some(&out(err))), Some(s.clone()));
        }
        for err in [
            KvErr::Ok,
            KvErr::NoKey,
            KvErr::WrongLeader,
            KvErr::WrongGroup,
        ] {
            assert_eq!(m.step(&s, &stale, Some(&out(err))), None, "{err:?}");
        }
        assert_eq!(m.step(&s, &at_current, None), Some(st("b", 2)));
        assert_eq!(m.step(&s, &stale, None), Some(s.clone()));
        assert_eq!(m.partition(&stale), "k");
    }
}
