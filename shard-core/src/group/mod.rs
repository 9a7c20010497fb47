//! A shard group's replicated state: the shards it holds, each with its own status, store
//! and exactly-once table, and the configuration it is in.
//!
//! [`ShardGroup`] is a deterministic [`StateMachine`]; [`server::GroupServer`] runs it on
//! the [`stepwise_kv::rsm`] layer and drives configuration changes and shard transfers.
//!
//! # Per-shard states
//!
//! | status | served | meaning |
//! |---|---|---|
//! | [`ShardStatus::Serving`] | yes | owned in the current configuration, data here |
//! | [`ShardStatus::Pulling`] | no | owned now, data still with the previous owner |
//! | [`ShardStatus::Gcing`] | yes | pulled and installed; the previous owner has not yet confirmed it deleted its copy |
//! | [`ShardStatus::BePulling`] | no | owned before, not now: frozen until the new owner has it, then deleted |
//!
//! # Configuration changes
//!
//! The group moves from configuration `n` to `n + 1` only when every shard is `Serving`
//! (or absent), through a [`GroupCmd::Config`] entry in its own log, so every replica
//! switches at the same point of the write order. Applying it marks shards gained as
//! `Pulling` (or `Serving` at once if nobody owned them before: gid 0) and shards lost as
//! `BePulling`; shards kept stay `Serving`, so **unaffected shards serve throughout a
//! change**. A shard is pulled per previous owner and served as soon as its own data is
//! installed ([`GroupCmd::Install`]), not when the whole change completes.
//!
//! # Exactly-once across migration
//!
//! Each shard has its own session table (client -> last sequence number and result),
//! which travels with the shard's data. A write whose reply was lost before its shard
//! moved, retried at the new owner, finds its session there and gets the original result.
//! A client has one write outstanding at a time, so per-shard tables decide duplicates
//! exactly as one global table would.
//!
//! # Garbage collection
//!
//! A `BePulling` shard is deleted ([`GroupCmd::Delete`]) when the new owner asks, which
//! it does only after installing the shard; the new owner then marks it `Serving`
//! ([`GroupCmd::GcDone`]). A group never holds data of shards it does not own beyond one
//! configuration change. Each replica of the previous owner snapshots as soon as it
//! applied the delete (see [`server`]), so the persisted copy goes too.

pub mod server;

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use stepwise_kv::rsm::{Seen, Session, Sessions, StateMachine};
use stepwise_kv::{Kv, KvError, KvResult, Op};

use crate::config::{Gid, ShardConfig};
use crate::key::key_to_shard;
use crate::message::{Refusal, ShardData};

/// Format byte of a [`ShardGroup`] snapshot.
const GROUP_SNAPSHOT_FORMAT: u8 = 1;

/// Where one shard stands in this group (see the [module docs](self)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ShardStatus {
    /// Owned, data here, served.
    Serving,
    /// Owned, waiting for the data from the previous owner; not served.
    Pulling,
    /// Installed and served; the previous owner's copy is not confirmed deleted yet.
    Gcing,
    /// Not owned any more; frozen until the new owner has pulled it.
    BePulling,
}

impl ShardStatus {
    /// Whether client operations on the shard are executed.
    pub fn is_served(self) -> bool {
        matches!(self, ShardStatus::Serving | ShardStatus::Gcing)
    }
}

/// One shard held by the group.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Shard {
    status: ShardStatus,
    kv: Kv,
    sessions: Sessions<KvResult>,
}

impl Shard {
    fn new(status: ShardStatus) -> Self {
        Shard {
            status,
            kv: Kv::new(),
            sessions: Sessions::new(),
        }
    }

    fn export(&self, shard: u32) -> ShardData {
        let mut kv = Vec::new();
        self.kv.snapshot(&mut kv);
        ShardData {
            shard,
            kv: Bytes::from(kv),
            sessions: self.sessions.clone(),
        }
    }
}

/// A command in a shard group's log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupCmd {
    /// A client's write (or a Get through the log), with its session.
    Kv {
        /// The client's session, for exactly-once execution.
        session: Option<Session>,
        /// The operation.
        op: Op,
    },
    /// Move to this configuration (ignored unless it is the next one and the group is
    /// stable).
    Config(ShardConfig),
    /// Install shards pulled for configuration `num` (ignored for shards not `Pulling` in
    /// `num`).
    Install {
        /// The configuration the shards were pulled for.
        num: u64,
        /// The shards.
        shards: Vec<ShardData>,
    },
    /// The new owners have these shards of configuration `num`: delete them here.
    Delete {
        /// The configuration.
        num: u64,
        /// The shards.
        shards: Vec<u32>,
    },
    /// The previous owner deleted these shards of configuration `num`: `Gcing` becomes
    /// `Serving`.
    GcDone {
        /// The configuration.
        num: u64,
        /// The shards.
        shards: Vec<u32>,
    },
}

/// A read-only query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupQuery {
    /// Read a key (linearizable, through ReadIndex).
    Get(Bytes),
}

/// What a command or query returns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupOutput {
    /// A client operation's result ([`KvError::WrongGroup`] if the shard is not served
    /// here at that point of the log).
    Kv(KvResult),
    /// A configuration or shard-transfer command was applied, or was a no-op.
    Done,
    /// A [`GroupCmd::Delete`] for a configuration this group has not reached.
    NotReady,
}

/// What a [`PeerMsg::Delete`](crate::message::PeerMsg::Delete) needs, judged from local
/// state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteState {
    /// The shards are not held any more: confirm.
    Done,
    /// The shards are `BePulling` in that configuration: delete through the log.
    Pending,
    /// This replica has not reached that configuration.
    NotReady,
}

/// A shard group's replicated state. See the [module docs](self).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardGroup {
    gid: Gid,
    config: ShardConfig,
    prev: ShardConfig,
    shards: BTreeMap<u32, Shard>,
}

impl ShardGroup {
    /// Group `gid` in configuration 0 (owning nothing), with `nshards` shards.
    ///
    /// # Panics
    /// If `nshards` is 0.
    pub fn new(gid: Gid, nshards: usize) -> Self {
        assert!(nshards > 0, "a deployment has at least one shard");
        ShardGroup {
            gid,
            config: ShardConfig::initial(nshards),
            prev: ShardConfig::initial(nshards),
            shards: BTreeMap::new(),
        }
    }

    /// The group's id.
    pub fn gid(&self) -> Gid {
        self.gid
    }

    /// The configuration the group is in.
    pub fn config(&self) -> &ShardConfig {
        &self.config
    }

    /// The configuration before it (whose owners the group pulls from).
    pub fn prev_config(&self) -> &ShardConfig {
        &self.prev
    }

    /// The status of `shard` here, or `None` if the group holds nothing of it.
    pub fn status(&self, shard: u32) -> Option<ShardStatus> {
        self.shards.get(&shard).map(|s| s.status)
    }

    /// Every shard held, with its status.
    pub fn statuses(&self) -> impl Iterator<Item = (u32, ShardStatus)> + '_ {
        self.shards.iter().map(|(&s, sh)| (s, sh.status))
    }

    /// Whether no shard is moving in or out: the group may take the next configuration.
    pub fn is_stable(&self) -> bool {
        self.shards
            .values()
            .all(|s| s.status == ShardStatus::Serving)
    }

    /// Number of keys and payload bytes held for `shard`.
    pub fn shard_size(&self, shard: u32) -> (usize, usize) {
        self.shards
            .get(&shard)
            .map_or((0, 0), |s| (s.kv.len(), s.kv.payload_bytes()))
    }

    /// Payload bytes (keys and values) held over all shards, served or not.
    pub fn stored_bytes(&self) -> usize {
        self.shards.values().map(|s| s.kv.payload_bytes()).sum()
    }

    /// Shards with the given status, by the gid that owned them in the previous
    /// configuration (for `Pulling` and `Gcing`: whom to pull from / tell to delete).
    pub fn by_previous_owner(&self, status: ShardStatus) -> BTreeMap<Gid, Vec<u32>> {
        let mut out: BTreeMap<Gid, Vec<u32>> = BTreeMap::new();
        for (&s, sh) in &self.shards {
            if sh.status == status {
                out.entry(self.prev.owner(s as usize)).or_default().push(s);
            }
        }
        out
    }

    /// The data of `shards` for a group that gains them in configuration `num`, if this
    /// replica holds all of them frozen for that configuration.
    pub fn pull(&self, num: u64, shards: &[u32]) -> Result<Vec<ShardData>, Refusal> {
        if self.config.num != num {
            return Err(Refusal::NotReady);
        }
        shards
            .iter()
            .map(|&s| match self.shards.get(&s) {
                Some(sh) if sh.status == ShardStatus::BePulling => Ok(sh.export(s)),
                _ => Err(Refusal::NotReady),
            })
            .collect()
    }

    /// Whether `shards`, handed over in configuration `num`, are deleted here.
    pub fn delete_state(&self, num: u64, shards: &[u32]) -> DeleteState {
        if self.config.num > num {
            return DeleteState::Done;
        }
        if self.config.num < num {
            return DeleteState::NotReady;
        }
        let pending = shards
            .iter()
            .any(|s| self.status(*s) == Some(ShardStatus::BePulling));
        if pending {
            DeleteState::Pending
        } else {
            DeleteState::Done
        }
    }

    /// Reads `key` if its shard is served here.
    pub fn read(&self, key: &[u8]) -> KvResult {
        match self.served(key) {
            Some(shard) => shard.kv.read(key),
            None => Err(KvError::WrongGroup),
        }
    }

    fn served(&self, key: &[u8]) -> Option<&Shard> {
        let s = key_to_shard(key, self.config.nshards()) as u32;
        self.shards.get(&s).filter(|sh| sh.status.is_served())
    }

    fn apply_kv(&mut self, session: Option<Session>, op: Op) -> KvResult {
        let s = key_to_shard(op.key(), self.config.nshards()) as u32;
        let Some(shard) = self.shards.get_mut(&s).filter(|sh| sh.status.is_served()) else {
            return Err(KvError::WrongGroup);
        };
        let Some(session) = session else {
            return shard.kv.apply_op(op);
        };
        match shard.sessions.check(session) {
            Seen::New => {
                let result = shard.kv.apply_op(op);
                shard.sessions.record(session, result.clone());
                result
            }
            Seen::Done(result) => result.clone(),
            Seen::Stale => Err(KvError::Stale),
        }
    }

    fn apply_config(&mut self, next: ShardConfig) {
        if next.num != self.config.num + 1
            || next.shards.len() != self.config.shards.len()
            || !self.is_stable()
        {
            return; // a duplicate, out of order, malformed, or proposed too early
        }
        let me = self.gid;
        for s in 0..next.shards.len() {
            let (was, now) = (self.config.shards[s], next.shards[s]);
            let key = s as u32;
            if now == me && was != me {
                let status = if was == 0 {
                    ShardStatus::Serving // nobody had it: start empty
                } else {
                    ShardStatus::Pulling
                };
                self.shards.insert(key, Shard::new(status));
            } else if was == me && now != me {
                if now == 0 {
                    // Every group left: nobody will ever pull this shard.
                    self.shards.remove(&key);
                } else if let Some(sh) = self.shards.get_mut(&key) {
                    sh.status = ShardStatus::BePulling;
                }
            }
        }
        self.prev = std::mem::replace(&mut self.config, next);
    }

    fn apply_install(&mut self, num: u64, data: Vec<ShardData>) {
        if num != self.config.num {
            return;
        }
        for d in data {
            let Some(sh) = self.shards.get_mut(&d.shard) else {
                continue;
            };
            if sh.status != ShardStatus::Pulling {
                continue; // installed already
            }
            let mut kv = Kv::new();
            if kv.restore(&d.kv).is_err() {
                // Malformed data from a peer: stay Pulling, the next pull fetches it again.
                continue;
            }
            sh.kv = kv;
            sh.sessions = d.sessions;
            sh.status = ShardStatus::Gcing;
        }
    }

    fn apply_delete(&mut self, num: u64, shards: &[u32]) -> GroupOutput {
        if num < self.config.num {
            return GroupOutput::Done;
        }
        if num > self.config.num {
            return GroupOutput::NotReady;
        }
        for s in shards {
            if self.status(*s) == Some(ShardStatus::BePulling) {
                self.shards.remove(s);
            }
        }
        GroupOutput::Done
    }

    fn apply_gc_done(&mut self, num: u64, shards: &[u32]) {
        if num != self.config.num {
            return;
        }
        for s in shards {
            if let Some(sh) = self.shards.get_mut(s)
                && sh.status == ShardStatus::Gcing
            {
                sh.status = ShardStatus::Serving;
            }
        }
    }
}

/// A shard as stored in a group snapshot.
#[derive(Serialize, Deserialize)]
struct StoredShard {
    shard: u32,
    status: ShardStatus,
    kv: Bytes,
    sessions: Sessions<KvResult>,
}

/// A group snapshot's body.
#[derive(Serialize, Deserialize)]
struct StoredGroup {
    gid: Gid,
    config: ShardConfig,
    prev: ShardConfig,
    shards: Vec<StoredShard>,
}

impl StateMachine for ShardGroup {
    type Command = GroupCmd;
    type Decoded<'a> = Self::Command;
    type Query = GroupQuery;
    type Output = GroupOutput;

    fn apply(&mut self, command: GroupCmd) -> GroupOutput {
        match command {
            GroupCmd::Kv { session, op } => return GroupOutput::Kv(self.apply_kv(session, op)),
            GroupCmd::Config(next) => self.apply_config(next),
            GroupCmd::Install { num, shards } => self.apply_install(num, shards),
            GroupCmd::Delete { num, shards } => return self.apply_delete(num, &shards),
            GroupCmd::GcDone { num, shards } => self.apply_gc_done(num, &shards),
        }
        GroupOutput::Done
    }

    fn query(&self, query: &GroupQuery) -> GroupOutput {
        match query {
            GroupQuery::Get(key) => GroupOutput::Kv(self.read(key)),
        }
    }

    fn snapshot(&self, out: &mut Vec<u8>) {
        let stored = StoredGroup {
            gid: self.gid,
            config: self.config.clone(),
            prev: self.prev.clone(),
            shards: self
                .shards
                .iter()
                .map(|(&s, sh)| {
                    let ShardData { kv, sessions, .. } = sh.export(s);
                    StoredShard {
                        shard: s,
                        status: sh.status,
                        kv,
                        sessions,
                    }
                })
                .collect(),
        };
        out.push(GROUP_SNAPSHOT_FORMAT);
        let buf = std::mem::take(out);
        // Invariant: plain data serializes into a Vec without failing.
        *out = postcard::to_extend(&stored, buf).expect("group state serializes");
    }

    fn restore(&mut self, data: &[u8]) -> Result<(), String> {
        let (&format, body) = data.split_first().ok_or("empty group snapshot")?;
        if format != GROUP_SNAPSHOT_FORMAT {
            return Err(format!("unknown group snapshot format {format}"));
        }
        let stored: StoredGroup = postcard::from_bytes(body).map_err(|e| e.to_string())?;
        if stored.gid != self.gid {
            return Err(format!(
                "snapshot of group {}, not of group {}",
                stored.gid, self.gid
            ));
        }
        let n = stored.config.shards.len();
        if n == 0 || stored.prev.shards.len() != n {
            return Err("group snapshot: bad configuration".into());
        }
        let mut shards = BTreeMap::new();
        for sh in stored.shards {
            if sh.shard as usize >= n {
                return Err(format!("group snapshot: shard {} out of range", sh.shard));
            }
            let mut kv = Kv::new();
            kv.restore(&sh.kv)?;
            shards.insert(
                sh.shard,
                Shard {
                    status: sh.status,
                    kv,
                    sessions: sh.sessions,
                },
            );
        }
        self.config = stored.config;
        self.prev = stored.prev;
        self.shards = shards;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
