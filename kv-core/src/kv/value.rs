//! How the store holds one value.

use bytes::Bytes;

/// Values up to this many bytes are owned by their slot ([`Value::Small`]).
pub(crate) const SMALL: usize = 1024;

/// A stored value. Small values belong to their slot and are overwritten in place (a
/// replicated Put of a same-sized value allocates nothing and touches no reference count);
/// a Get copies them out, which for a few hundred bytes costs less than sharing would.
/// Large values are shared [`Bytes`], so a Get hands out a reference instead of a copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Value {
    /// At most [`SMALL`] bytes.
    Small(Box<[u8]>),
    /// More than [`SMALL`] bytes.
    Large(Bytes),
}

impl Default for Value {
    fn default() -> Self {
        Value::Small(Box::default())
    }
}

impl Value {
    /// A copy of `data`.
    pub(crate) fn copy_from(data: &[u8]) -> Value {
        if data.len() <= SMALL {
            Value::Small(data.into())
        } else {
            Value::Large(Bytes::copy_from_slice(data))
        }
    }

    /// Takes `data`: large values are kept as they are (the caller makes sure they do
    /// not pin a larger buffer), small ones are copied into the slot.
    pub(crate) fn from_bytes(data: Bytes) -> Value {
        if data.len() <= SMALL {
            Value::Small(data[..].into())
        } else {
            Value::Large(data)
        }
    }

    /// Takes a freshly built buffer without copying it.
    pub(crate) fn from_vec(data: Vec<u8>) -> Value {
        if data.len() <= SMALL {
            Value::Small(data.into_boxed_slice())
        } else {
            Value::Large(Bytes::from(data))
        }
    }

    /// The value's bytes.
    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            Value::Small(b) => b,
            Value::Large(b) => b,
        }
    }

    /// The value as [`Bytes`] for a reply: a copy of a small value, a reference to a
    /// large one.
    pub(crate) fn to_bytes(&self) -> Bytes {
        match self {
            Value::Small(b) if b.is_empty() => Bytes::new(),
            Value::Small(b) => Bytes::copy_from_slice(b),
            Value::Large(b) => b.clone(),
        }
    }

    /// The value as [`Bytes`], consuming it (no copy).
    pub(crate) fn into_bytes(self) -> Bytes {
        match self {
            Value::Small(b) if b.is_empty() => Bytes::new(),
            Value::Small(b) => Bytes::from(b),
            Value::Large(b) => b,
        }
    }

    /// Replaces the value with a copy of `data`, in place when the old one is small and
    /// of the same length.
    pub(crate) fn set(&mut self, data: &[u8]) {
        match self {
            Value::Small(b) if b.len() == data.len() => b.copy_from_slice(data),
            _ => *self = Value::copy_from(data),
        }
    }

    /// Its length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.as_slice().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_values_are_owned_and_overwritten_in_place() {
        let mut v = Value::copy_from(b"aaaa");
        let at = v.as_slice().as_ptr();
        v.set(b"bbbb");
        assert_eq!((v.as_slice(), v.as_slice().as_ptr()), (&b"bbbb"[..], at));
        // A reply is a copy: later writes do not change it.
        let reply = v.to_bytes();
        v.set(b"cccc");
        assert_eq!((&reply[..], v.as_slice()), (&b"bbbb"[..], &b"cccc"[..]));
        v.set(b"dd");
        assert_eq!(v.as_slice(), b"dd");
        assert!(matches!(Value::copy_from(&[0; SMALL]), Value::Small(_)));
    }

    #[test]
    fn large_values_are_shared_not_copied() {
        let big = Bytes::from(vec![7u8; SMALL + 1]);
        let v = Value::from_bytes(big.clone());
        assert!(matches!(v, Value::Large(_)));
        assert_eq!(v.to_bytes().as_ptr(), big.as_ptr());
        let mut v = Value::from_vec(vec![1; SMALL + 1]);
        let reply = v.to_bytes();
        v.set(b"x");
        assert_eq!((reply.len(), v.as_slice()), (SMALL + 1, &b"x"[..]));
        assert_eq!(v.clone().into_bytes(), Bytes::from_static(b"x"));
        assert_eq!(Value::default().len(), 0);
    }
}
