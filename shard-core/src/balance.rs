//! Rebalancing: spread shards over groups as evenly as possible, moving as few as possible.
//!
//! With `n` shards and `g` groups every group gets `n / g` shards, and `n % g` of them one
//! more. The groups that get the extra shard are those holding the most shards now (ties:
//! smaller gid first), which is what makes the number of moves minimal: a group keeps
//! `min(held, target)` of its shards (its lowest-numbered ones), and only the rest, plus the
//! shards of groups that are gone, change hands. Freed shards, ascending, fill the groups
//! below their target, in gid order.
//!
//! Everything is a function of the current assignment and the member set, so every
//! controller replica computes the same configuration.
//!
//! ```
//! use std::collections::BTreeSet;
//! use stepwise_shard::balance::rebalance;
//!
//! let mut shards = vec![0; 10];
//! rebalance(&mut shards, &BTreeSet::from([1]));
//! assert_eq!(shards, [1; 10]);
//! rebalance(&mut shards, &BTreeSet::from([1, 2]));
//! assert_eq!(shards, [1, 1, 1, 1, 1, 2, 2, 2, 2, 2]); // five moved, the fewest possible
//! ```

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use crate::config::Gid;

/// Reassigns `shards` (shard -> gid) to the groups in `members`: balanced within one shard,
/// with the fewest moves (see the [module docs](self)). Shards on gids outside `members`
/// (gid 0 included) are reassigned; with no members every shard goes to gid 0.
pub fn rebalance(shards: &mut [Gid], members: &BTreeSet<Gid>) {
    let members: Vec<Gid> = members.iter().copied().filter(|&g| g != 0).collect();
    if members.is_empty() {
        shards.iter_mut().for_each(|g| *g = 0);
        return;
    }
    let targets = targets(shards, &members);
    let mut kept: BTreeMap<Gid, usize> = members.iter().map(|&g| (g, 0)).collect();
    let mut free = Vec::new();
    for (s, owner) in shards.iter().enumerate() {
        match kept.get_mut(owner) {
            Some(k) if *k < targets[owner] => *k += 1,
            _ => free.push(s),
        }
    }
    let mut free = free.into_iter();
    for (gid, k) in kept {
        for _ in k..targets[&gid] {
            // Invariant: targets sum to the number of shards, and every shard is either
            // kept or free, so there are exactly enough free shards.
            let s = free.next().expect("targets sum to the number of shards");
            shards[s] = gid;
        }
    }
    debug_assert!(free.next().is_none());
}

/// Each member's target count: `n / g`, plus one for the `n % g` members holding the most
/// shards now (ties: smaller gid).
pub fn targets(shards: &[Gid], members: &[Gid]) -> BTreeMap<Gid, usize> {
    let mut held: BTreeMap<Gid, usize> = members.iter().map(|&g| (g, 0)).collect();
    for g in shards {
        if let Some(c) = held.get_mut(g) {
            *c += 1;
        }
    }
    let mut order: Vec<(Gid, usize)> = held.into_iter().collect();
    order.sort_by_key(|&(g, c)| (Reverse(c), g));
    let (base, extra) = (shards.len() / order.len(), shards.len() % order.len());
    order
        .iter()
        .enumerate()
        .map(|(i, &(g, _))| (g, base + usize::from(i < extra)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::{Arbitrary, Gen, QuickCheck, TestResult};

    fn set(gids: &[Gid]) -> BTreeSet<Gid> {
        gids.iter().copied().collect()
    }

    fn moved(a: &[Gid], b: &[Gid]) -> usize {
        a.iter().zip(b).filter(|(x, y)| x != y).count()
    }

    fn balanced(shards: &[Gid], members: &BTreeSet<Gid>) -> bool {
        if members.is_empty() {
            return shards.iter().all(|&g| g == 0);
        }
        if shards.iter().any(|g| !members.contains(g)) {
            return false;
        }
        let counts: Vec<usize> = members
            .iter()
            .map(|m| shards.iter().filter(|&g| g == m).count())
            .collect();
        counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1
    }

    /// The fewest moves any balanced assignment needs, by brute force over which members
    /// get the extra shard (independent of `targets`).
    fn fewest_moves(shards: &[Gid], members: &BTreeSet<Gid>) -> usize {
        let members: Vec<Gid> = members.iter().copied().collect();
        if members.is_empty() {
            return shards.iter().filter(|&&g| g != 0).count();
        }
        let (n, g) = (shards.len(), members.len());
        let (base, extra) = (n / g, n % g);
        let held: Vec<usize> = members
            .iter()
            .map(|m| shards.iter().filter(|&g| g == m).count())
            .collect();
        let orphans = shards.iter().filter(|g| !members.contains(g)).count();
        let mut best = usize::MAX;
        for mask in 0u32..(1 << g) {
            if mask.count_ones() as usize != extra {
                continue;
            }
            let over: usize = (0..g)
                .map(|i| {
                    let t = base + usize::from(mask & (1 << i) != 0);
                    held[i].saturating_sub(t)
                })
                .sum();
            best = best.min(orphans + over);
        }
        best
    }

    #[test]
    fn join_and_leave_sequences_stay_balanced_and_keep_server_order() {
        // The lab's shardcfg TestBasic: join 1, join 2, leave 1, leave 2.
        let mut shards = vec![0; 10];
        let steps: [&[Gid]; 5] = [&[1], &[1, 2], &[2], &[], &[1, 2, 3]];
        for members in steps {
            let m = set(members);
            let before = shards.clone();
            rebalance(&mut shards, &m);
            assert!(balanced(&shards, &m), "{members:?}: {shards:?}");
            assert_eq!(moved(&before, &shards), fewest_moves(&before, &m));
        }
        assert_eq!(shards, [1, 1, 1, 1, 2, 2, 2, 3, 3, 3]);
    }

    #[test]
    fn minimal_again_2024() {
        // TestMinimalAgain: join 1, join 2 (c1), join 3 (c2): only shards going to 3 move,
        // at most NShards/3 + 1 = 4. Leave 1 (c3): only shards of 1 move, at most 4.
        let mut c1 = vec![0; 10];
        rebalance(&mut c1, &set(&[1]));
        rebalance(&mut c1, &set(&[1, 2]));
        let mut c2 = c1.clone();
        rebalance(&mut c2, &set(&[1, 2, 3]));
        for s in 0..10 {
            if c2[s] != 3 {
                assert_eq!(c2[s], c1[s], "shard {s} moved needlessly");
            }
        }
        assert!(moved(&c1, &c2) <= 4);
        let mut c3 = c2.clone();
        rebalance(&mut c3, &set(&[2, 3]));
        for s in 0..10 {
            if c2[s] != 1 {
                assert_eq!(c3[s], c2[s], "shard {s} moved needlessly");
            }
        }
        assert!(moved(&c2, &c3) <= 4);
    }

    #[test]
    fn more_groups_than_shards_leaves_some_groups_empty() {
        let mut shards = vec![0; 3];
        let m = set(&[5, 6, 7, 8, 9]);
        rebalance(&mut shards, &m);
        assert_eq!(shards, [5, 6, 7]);
        // A joining group gets nothing: no shard needs to move.
        let m = set(&[1, 5, 6, 7, 8, 9]);
        let before = shards.clone();
        rebalance(&mut shards, &m);
        assert_eq!(shards, before);
        // Gid 0 is never a member.
        let mut shards = vec![0; 2];
        rebalance(&mut shards, &set(&[0]));
        assert_eq!(shards, [0, 0]);
    }

    /// A random case: number of shards, current assignment over gids 0..8, members among
    /// 1..8.
    #[derive(Clone, Debug)]
    struct Case {
        shards: Vec<Gid>,
        members: BTreeSet<Gid>,
    }

    impl Arbitrary for Case {
        fn arbitrary(g: &mut Gen) -> Self {
            let n = 1 + usize::arbitrary(g) % 16;
            let shards = (0..n).map(|_| u64::arbitrary(g) % 8).collect();
            let members = (0..u8::arbitrary(g) % 7)
                .map(|_| 1 + u64::arbitrary(g) % 7)
                .collect();
            Case { shards, members }
        }
        fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
            let members = self.members.clone();
            Box::new(
                self.shards
                    .shrink()
                    .filter(|s| !s.is_empty())
                    .map(move |shards| Case {
                        shards,
                        members: members.clone(),
                    }),
            )
        }
    }

    #[test]
    fn quickcheck_balanced_minimal_and_deterministic() {
        fn prop(case: Case) -> TestResult {
            let mut a = case.shards.clone();
            rebalance(&mut a, &case.members);
            if !balanced(&a, &case.members) {
                return TestResult::error(format!("unbalanced: {a:?}"));
            }
            let want = fewest_moves(&case.shards, &case.members);
            if moved(&case.shards, &a) != want {
                return TestResult::error(format!(
                    "{} moves, {want} suffice: {a:?}",
                    moved(&case.shards, &a)
                ));
            }
            // Deterministic, and a fixed point: rebalancing a balanced assignment moves
            // nothing.
            let mut b = case.shards.clone();
            rebalance(&mut b, &case.members);
            let mut c = a.clone();
            rebalance(&mut c, &case.members);
            TestResult::from_bool(a == b && c == a)
        }
        let seed = 0x5eed_0ba1;
        QuickCheck::new()
            .rng(Gen::from_size_and_seed(64, seed))
            .tests(2000)
            .quickcheck(prop as fn(Case) -> TestResult);
    }

    #[test]
    fn quickcheck_join_and_leave_move_only_what_they_must() {
        // From a balanced assignment, a join moves shards only to the new groups and a
        // leave moves only the leaving groups' shards (the lab's minimal-transfer checks).
        fn prop(case: Case, extra: Vec<u8>) -> TestResult {
            let mut start = case.shards.clone();
            rebalance(&mut start, &case.members);
            let mut joined = case.members.clone();
            let new: BTreeSet<Gid> = extra
                .iter()
                .map(|&x| 100 + u64::from(x % 5))
                .filter(|g| !case.members.contains(g))
                .collect();
            joined.extend(&new);
            let mut after_join = start.clone();
            rebalance(&mut after_join, &joined);
            for (s, (&a, &b)) in start.iter().zip(&after_join).enumerate() {
                if a != b && !new.contains(&b) && a != 0 {
                    return TestResult::error(format!("join moved shard {s} from {a} to {b}"));
                }
            }
            // Now remove the new groups again and some old ones.
            let leaving: BTreeSet<Gid> = joined
                .iter()
                .copied()
                .filter(|g| new.contains(g) || g % 2 == 0)
                .collect();
            let stay: BTreeSet<Gid> = joined.difference(&leaving).copied().collect();
            let mut after_leave = after_join.clone();
            rebalance(&mut after_leave, &stay);
            for (s, (&a, &b)) in after_join.iter().zip(&after_leave).enumerate() {
                if a != b && !leaving.contains(&a) && !stay.is_empty() {
                    return TestResult::error(format!("leave moved shard {s} from {a} to {b}"));
                }
            }
            TestResult::passed()
        }
        QuickCheck::new()
            .rng(Gen::from_size_and_seed(64, 0x5eed_0ba2))
            .tests(2000)
            .quickcheck(prop as fn(Case, Vec<u8>) -> TestResult);
    }
}
