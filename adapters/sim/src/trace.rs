//! A running hash of everything the simulator does ([`Sim::trace_hash`](crate::Sim::trace_hash)).
//!
//! Hand-written (SplitMix64 finalizer over 64-bit words) so the value is the same on every
//! platform and compiler version, unlike `std::hash::DefaultHasher`.

use crate::{NodeId, Time};

/// What a traced record describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    Tick = 1,
    Deliver = 2,
    Input = 3,
    Send = 4,
    Write = 5,
    Output = 6,
    Lost = 7,
    Cut = 8,
    Dead = 9,
    Crash = 10,
    Restart = 11,
    InputDropped = 12,
    Duplicate = 13,
}

/// SplitMix64's output function: a bijective 64-bit mixer.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The running trace hash.
#[derive(Clone, Debug)]
pub(crate) struct Trace {
    h: u64,
}

impl Trace {
    pub(crate) fn new() -> Self {
        // FNV-1a 64-bit offset basis, as a recognisable non-zero start.
        Trace {
            h: 0xcbf2_9ce4_8422_2325,
        }
    }

    fn word(&mut self, w: u64) {
        self.h = mix64(self.h.rotate_left(23) ^ w);
    }

    /// Folds one record. `node` and `peer` are packed with the kind into one word (node ids
    /// are far below 2^28 in any simulation that fits in memory).
    pub(crate) fn record(&mut self, at: Time, kind: Kind, node: NodeId, peer: NodeId, size: u64) {
        self.word(at);
        self.word(
            ((kind as u64) << 56)
                | (((node as u64) & 0x0fff_ffff) << 28)
                | ((peer as u64) & 0x0fff_ffff),
        );
        self.word(size);
    }

    pub(crate) fn value(&self) -> u64 {
        self.h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix64_golden_values() {
        // SplitMix64 with state 0: first output is mix64(0x9e3779b97f4a7c15).
        assert_eq!(mix64(0x9e37_79b9_7f4a_7c15), 0xe220_a839_7b1d_cdaf);
        assert_eq!(mix64(0), 0);
    }

    #[test]
    fn records_change_the_hash_and_order_matters() {
        let mut a = Trace::new();
        let mut b = Trace::new();
        a.record(1, Kind::Tick, 0, 0, 0);
        a.record(2, Kind::Send, 0, 1, 10);
        b.record(2, Kind::Send, 0, 1, 10);
        b.record(1, Kind::Tick, 0, 0, 0);
        assert_ne!(a.value(), Trace::new().value());
        assert_ne!(a.value(), b.value());
        let mut c = Trace::new();
        c.record(1, Kind::Tick, 0, 0, 0);
        c.record(2, Kind::Send, 0, 1, 10);
        assert_eq!(a.value(), c.value());
    }
}
