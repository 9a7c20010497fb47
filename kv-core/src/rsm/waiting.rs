//! Queries waiting for their ReadIndex answer, by context number.
//!
//! Contexts are handed out in increasing order and answered roughly in that order, so a
//! deque indexed by `ctx - base` gives O(1) insert and lookup without a tree.

use std::collections::VecDeque;

/// Values keyed by consecutive context numbers.
#[derive(Debug)]
pub(crate) struct Waiting<V> {
    /// Context number of `slots[0]`.
    base: u64,
    slots: VecDeque<Option<V>>,
}

impl<V> Default for Waiting<V> {
    fn default() -> Self {
        Waiting {
            base: 0,
            slots: VecDeque::new(),
        }
    }
}

impl<V> Waiting<V> {
    /// Stores `v` under the next context number, which it returns.
    pub(crate) fn push(&mut self, v: V) -> u64 {
        let ctx = self.base + self.slots.len() as u64;
        self.slots.push_back(Some(v));
        ctx
    }

    /// Removes and returns the value under `ctx`, if it is still there.
    pub(crate) fn take(&mut self, ctx: u64) -> Option<V> {
        let i = usize::try_from(ctx.checked_sub(self.base)?).ok()?;
        let v = self.slots.get_mut(i)?.take()?;
        while matches!(self.slots.front(), Some(None)) {
            self.slots.pop_front();
            self.base += 1;
        }
        Some(v)
    }

    /// The values stored, in context order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &V> + '_ {
        self.slots.iter().flatten()
    }

    /// Removes every value (context numbers keep increasing).
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = V> + '_ {
        self.base += self.slots.len() as u64;
        self.slots.drain(..).flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_in_any_order_and_never_reuses_a_context() {
        let mut w = Waiting::default();
        let a = w.push('a');
        let b = w.push('b');
        let c = w.push('c');
        assert_eq!(w.take(b), Some('b'));
        assert_eq!(w.take(b), None);
        assert_eq!(w.take(a), Some('a'));
        assert_eq!(w.iter().count(), 1);
        assert_eq!(w.take(99), None);
        let d = w.push('d');
        assert!(d > c);
        assert_eq!(w.drain().collect::<Vec<_>>(), ['c', 'd']);
        assert_eq!(w.take(c), None);
        assert!(w.push('e') > d);
    }
}
