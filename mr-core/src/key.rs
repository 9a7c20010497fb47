//! [`Key`]: a byte-string hash-map key stored inline when short.
//!
//! Most words are shorter than 23 bytes. Keeping them inside the table's bucket saves a
//! pointer chase (a cache miss) on every lookup of the map-side combiner.

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};

const INLINE: usize = 22;

/// A byte string, inline up to 22 bytes, on the heap beyond.
#[derive(Clone)]
pub(crate) enum Key {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<[u8]>),
}

impl Key {
    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self {
            Key::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Key::Heap(b) => b,
        }
    }
}

impl From<&[u8]> for Key {
    #[inline]
    fn from(s: &[u8]) -> Self {
        if s.len() <= INLINE {
            let mut bytes = [0u8; INLINE];
            bytes[..s.len()].copy_from_slice(s);
            Key::Inline {
                len: s.len() as u8,
                bytes,
            }
        } else {
            Key::Heap(s.into())
        }
    }
}

impl Borrow<[u8]> for Key {
    #[inline]
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

// Hash and Eq must agree with `[u8]`'s, so lookups by `&[u8]` work.
impl Hash for Key {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state)
    }
}

impl PartialEq for Key {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Key {}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn short_and_long_keys_round_trip_and_look_up_by_slice() {
        let long = vec![b'x'; 100];
        let keys: Vec<&[u8]> = vec![b"", b"a", &[7u8; 22], &[8u8; 23], &long];
        let mut map = HashMap::new();
        for (i, k) in keys.iter().enumerate() {
            let key = Key::from(*k);
            assert_eq!(key.as_bytes(), *k);
            assert_eq!(matches!(key, Key::Inline { .. }), k.len() <= 22);
            map.insert(key, i);
        }
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(map.get(*k), Some(&i));
        }
        assert_eq!(std::mem::size_of::<Key>(), 24);
    }
}
