//! Majority arithmetic.

use crate::message::Index;

/// How many members make a majority of `n`.
pub fn majority(n: usize) -> usize {
    n / 2 + 1
}

/// The largest index that a majority of `matched` (one value per member) has reached.
/// Reorders `matched`. Returns 0 for an empty slice.
pub fn quorum_index(matched: &mut [Index]) -> Index {
    if matched.is_empty() {
        return 0;
    }
    let k = majority(matched.len()) - 1;
    // Descending order: the k-th largest is held by k+1 members, a majority.
    let (_, nth, _) = matched.select_nth_unstable_by(k, |a, b| b.cmp(a));
    *nth
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::{Gen, QuickCheck};

    #[test]
    fn examples() {
        assert_eq!(majority(1), 1);
        assert_eq!(majority(2), 2);
        assert_eq!(majority(3), 2);
        assert_eq!(majority(4), 3);
        assert_eq!(majority(5), 3);
        assert_eq!(quorum_index(&mut []), 0);
        assert_eq!(quorum_index(&mut [7]), 7);
        assert_eq!(quorum_index(&mut [5, 1, 3]), 3);
        assert_eq!(quorum_index(&mut [5, 5, 1, 1]), 1);
        assert_eq!(quorum_index(&mut [9, 2, 7, 7, 1]), 7);
    }

    /// Property: the result is reached by a majority, and no larger value is.
    #[test]
    fn prop_quorum_index_is_the_majority_maximum() {
        fn prop(mut v: Vec<u8>) -> bool {
            let mut m: Vec<Index> = v.drain(..).map(Index::from).collect();
            let q = quorum_index(&mut m.clone());
            if m.is_empty() {
                return q == 0;
            }
            let maj = majority(m.len());
            let at_least = m.iter().filter(|&&x| x >= q).count();
            let above = m.iter().filter(|&&x| x > q).count();
            m.sort_unstable();
            at_least >= maj && above < maj
        }
        QuickCheck::new()
            .rng(Gen::from_size_and_seed(16, 0x5eed_0002))
            .tests(500)
            .quickcheck(prop as fn(Vec<u8>) -> bool);
    }
}
