//! Numbered shard configurations: which group serves each shard, and which servers form
//! each group.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::key::key_to_shard;

/// A replica group's id. `0` is not a group: it marks a shard that no group serves (the
/// initial configuration, or no groups at all).
pub type Gid = u64;

/// A server's address. It is also the server's Raft node id inside its group (and inside
/// the controller's cluster), so addresses must be unique across the whole deployment.
pub type Addr = u64;

/// One configuration: number `num`, an owner per shard and the members of each group.
///
/// Configuration 0 has no groups and every shard on gid 0. Each change at the controller
/// produces the next number; numbers are never reused.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ShardConfig {
    /// The configuration's number.
    pub num: u64,
    /// `shards[s]` is the group serving shard `s` (0: none). Its length is the number of
    /// shards, fixed for the life of a deployment.
    pub shards: Vec<Gid>,
    /// Every group of this configuration and its servers, in the order given at Join.
    pub groups: BTreeMap<Gid, Vec<Addr>>,
}

impl ShardConfig {
    /// Configuration 0: `nshards` shards, no groups.
    pub fn initial(nshards: usize) -> Self {
        ShardConfig {
            num: 0,
            shards: vec![0; nshards],
            groups: BTreeMap::new(),
        }
    }

    /// Number of shards.
    pub fn nshards(&self) -> usize {
        self.shards.len()
    }

    /// The group serving `shard` (0 if none, or if `shard` is out of range).
    pub fn owner(&self, shard: usize) -> Gid {
        self.shards.get(shard).copied().unwrap_or(0)
    }

    /// The shard of `key` ([`key_to_shard`]).
    ///
    /// # Panics
    /// If the configuration has no shards (never the case for one built by this crate).
    pub fn shard_of(&self, key: &[u8]) -> usize {
        key_to_shard(key, self.nshards())
    }

    /// The group serving `key`'s shard (0 if the configuration has no shards, which only
    /// a malformed message can produce).
    pub fn owner_of(&self, key: &[u8]) -> Gid {
        if self.shards.is_empty() {
            return 0;
        }
        self.owner(self.shard_of(key))
    }

    /// The shards `gid` serves, ascending.
    pub fn shards_of(&self, gid: Gid) -> impl Iterator<Item = usize> + '_ {
        self.shards
            .iter()
            .enumerate()
            .filter(move |&(_, &g)| g == gid)
            .map(|(s, _)| s)
    }

    /// The servers of `gid` (empty if it is not a member).
    pub fn servers(&self, gid: Gid) -> &[Addr] {
        self.groups.get(&gid).map_or(&[], Vec::as_slice)
    }

    /// Number of shards per member group.
    pub fn counts(&self) -> BTreeMap<Gid, usize> {
        let mut counts: BTreeMap<Gid, usize> = self.groups.keys().map(|&g| (g, 0)).collect();
        for g in &self.shards {
            if let Some(c) = counts.get_mut(g) {
                *c += 1;
            }
        }
        counts
    }

    /// The lab's `check`: every shard is served by a member (when there are members, and
    /// by nobody otherwise) and shard counts per group differ by at most one.
    pub fn check_balanced(&self) -> Result<(), String> {
        if self.groups.is_empty() {
            if let Some(s) = self.shards.iter().position(|&g| g != 0) {
                return Err(format!(
                    "no groups, yet shard {s} is on gid {}",
                    self.shards[s]
                ));
            }
            return Ok(());
        }
        if let Some(s) = self
            .shards
            .iter()
            .position(|g| !self.groups.contains_key(g))
        {
            return Err(format!(
                "shard {s} is on gid {}, which is not a member",
                self.shards[s]
            ));
        }
        let counts = self.counts();
        let max = counts.values().max().copied().unwrap_or(0);
        let min = counts.values().min().copied().unwrap_or(0);
        if max - min > 1 {
            return Err(format!("unbalanced: {counts:?}"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_initial_configuration_serves_nothing() {
        let c = ShardConfig::initial(10);
        assert_eq!(c.num, 0);
        assert_eq!(c.nshards(), 10);
        assert!(c.shards.iter().all(|&g| g == 0));
        assert_eq!(c.owner_of(b"anything"), 0);
        assert_eq!(c.owner(99), 0);
        assert!(c.check_balanced().is_ok());
    }

    #[test]
    fn check_balanced_catches_bad_configurations() {
        let mut c = ShardConfig::initial(4);
        c.groups.insert(1, vec![10]);
        c.groups.insert(2, vec![20]);
        c.shards = vec![1, 1, 2, 2];
        assert!(c.check_balanced().is_ok());
        c.shards = vec![2, 1, 1, 2];
        assert!(c.check_balanced().is_ok());
        c.shards = vec![1, 1, 1, 2];
        assert!(c.check_balanced().is_err());
        c.shards = vec![1, 1, 1, 1];
        assert!(c.check_balanced().is_err());
        c.shards = vec![1, 1, 2, 3];
        assert!(c.check_balanced().is_err());
        assert_eq!(c.shards_of(1).collect::<Vec<_>>(), [0, 1]);
        assert_eq!(c.servers(2), [20]);
        assert!(c.servers(3).is_empty());
    }
}
