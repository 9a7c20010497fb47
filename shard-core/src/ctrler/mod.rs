//! The shard controller: numbered configurations, changed by Join, Leave and Move, read by
//! Query.
//!
//! * [`Ctrler`] is the deterministic state machine (a [`StateMachine`] for the
//!   [`stepwise_kv::rsm`] layer): the list of every configuration so far.
//! * [`server::CtrlerServer`] replicates it on Raft: changes go through the log (with the
//!   client's session, so a retried Join executes once), queries are answered after a
//!   ReadIndex round, so a deposed or partitioned controller replica never answers from a
//!   stale configuration list (it is fenced off by Raft's terms).
//! * [`clerk::CtrlerClerk`] is its sans-IO client.
//!
//! Semantics (the 2020-2024 lab's, plus a conditional form):
//!
//! * **Join** adds groups (gid -> servers) and rebalances ([`crate::balance`]): shards
//!   spread evenly, fewest moves. Joining a gid that is already a member replaces its server
//!   list and moves nothing.
//! * **Leave** removes groups and hands their shards to the others, again with the fewest
//!   moves.
//! * **Move** puts one shard on one member group, without rebalancing.
//! * **Query** returns configuration `num`, or the latest if `num` is `None` or beyond the
//!   latest (as the lab's `Query(-1)`).
//! * **Since** returns up to `max` consecutive configurations from `num` on (fewer if the
//!   latest comes first; none if `num` is beyond it): a group that fell behind catches up
//!   in one round trip, though it still applies them one at a time.
//! * Every successful change makes exactly one new configuration, numbered one more than
//!   the latest; configurations are never changed afterwards.
//! * A change may carry `expect: Some(n)`: it applies only if the latest configuration is
//!   still `n`, else it fails with [`CtrlError::ConfigChanged`]. An administrator that
//!   decided on a change from configuration `n` uses this so that, if it was partitioned
//!   away while another administrator moved on, its late change is refused instead of
//!   undoing the other's work (the 2025 lab's fencing of a stale controller).

pub mod clerk;
pub mod server;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use stepwise_kv::rsm::StateMachine;
use stepwise_raft::NodeId;

use crate::balance::rebalance;
use crate::config::{Addr, Gid, ShardConfig};

/// Format byte of a [`Ctrler`] snapshot.
const CTRLER_SNAPSHOT_FORMAT: u8 = 1;

/// An operation on the controller.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CtrlOp {
    /// Add (or update) groups and rebalance.
    Join {
        /// New groups and their servers.
        groups: BTreeMap<Gid, Vec<Addr>>,
    },
    /// Remove groups and rebalance.
    Leave {
        /// The groups to remove.
        gids: Vec<Gid>,
    },
    /// Put `shard` on `gid`.
    Move {
        /// The shard.
        shard: u32,
        /// A member group.
        gid: Gid,
    },
    /// Read configuration `num` (`None`: the latest).
    Query {
        /// The configuration number, or `None` for the latest.
        num: Option<u64>,
    },
    /// Read configurations `num`, `num + 1`, ... (at most `max` of them).
    Since {
        /// The first configuration wanted.
        num: u64,
        /// At most this many.
        max: u32,
    },
}

impl CtrlOp {
    /// A Join of one group.
    pub fn join(gid: Gid, servers: Vec<Addr>) -> CtrlOp {
        CtrlOp::Join {
            groups: BTreeMap::from([(gid, servers)]),
        }
    }

    /// A Leave of one group.
    pub fn leave(gid: Gid) -> CtrlOp {
        CtrlOp::Leave { gids: vec![gid] }
    }

    /// A Query of the latest configuration.
    pub fn latest() -> CtrlOp {
        CtrlOp::Query { num: None }
    }

    /// Whether the operation only reads.
    pub fn is_read(&self) -> bool {
        self.as_read().is_some()
    }

    /// The read-only form of a Query or Since.
    pub fn as_read(&self) -> Option<CtrlRead> {
        match *self {
            CtrlOp::Query { num } => Some(CtrlRead::Config(num)),
            CtrlOp::Since { num, max } => Some(CtrlRead::Since { num, max }),
            _ => None,
        }
    }
}

/// A read-only controller query (answered after a ReadIndex round, without the log).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CtrlRead {
    /// [`CtrlOp::Query`].
    Config(Option<u64>),
    /// [`CtrlOp::Since`].
    Since {
        /// The first configuration wanted.
        num: u64,
        /// At most this many.
        max: u32,
    },
}

/// A command in the controller's log: an operation, maybe conditional on the latest
/// configuration number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CtrlCommand {
    /// The operation.
    pub op: CtrlOp,
    /// Apply only if the latest configuration is this one (see the [module docs](self)).
    pub expect: Option<u64>,
}

/// What a successful controller operation returns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CtrlOutput {
    /// A change made configuration `num`.
    Changed {
        /// The new configuration's number.
        num: u64,
    },
    /// A Query's answer.
    Config(ShardConfig),
    /// A Since's answer, in order.
    Configs(Vec<ShardConfig>),
}

/// Why a controller operation did not succeed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum CtrlError {
    /// A Join without groups or a Leave without gids.
    #[error("nothing to join or leave")]
    Empty,
    /// Gid 0 is reserved for "no group".
    #[error("gid 0 is not a group")]
    ZeroGid,
    /// A joining group without servers.
    #[error("group {gid} has no servers")]
    NoServers {
        /// The group.
        gid: Gid,
    },
    /// Leave or Move named a group that is not a member.
    #[error("group {gid} is not a member")]
    NotMember {
        /// The group.
        gid: Gid,
    },
    /// Move named a shard that does not exist.
    #[error("shard {shard} does not exist")]
    BadShard {
        /// The shard.
        shard: u32,
    },
    /// A conditional change found a newer configuration than expected; nothing changed.
    #[error("the latest configuration is {latest}, not the one expected")]
    ConfigChanged {
        /// The latest configuration's number.
        latest: u64,
    },
    /// The server is not the controller's leader (or lost leadership before applying).
    #[error("not the leader")]
    WrongLeader {
        /// The leader the server knows of.
        leader: Option<NodeId>,
    },
    /// A retry of a command older than the client's latest.
    #[error("stale retry")]
    Stale,
    /// From the clerk only: the operation's deadline passed without a definite answer.
    #[error("timed out")]
    Timeout,
}

/// The result of one controller operation.
pub type CtrlResult = Result<CtrlOutput, CtrlError>;

/// The controller's state: every configuration, in order (`configs[i].num == i`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Ctrler {
    configs: Vec<ShardConfig>,
}

impl Ctrler {
    /// A controller whose configuration 0 has `nshards` shards and no groups.
    ///
    /// # Panics
    /// If `nshards` is 0.
    pub fn new(nshards: usize) -> Self {
        assert!(nshards > 0, "a deployment has at least one shard");
        Ctrler {
            configs: vec![ShardConfig::initial(nshards)],
        }
    }

    /// The latest configuration.
    pub fn latest(&self) -> &ShardConfig {
        // Invariant: configuration 0 is never removed.
        self.configs.last().expect("configuration 0 always exists")
    }

    /// Configuration `num`, or the latest if `num` is `None` or beyond it.
    pub fn config(&self, num: Option<u64>) -> &ShardConfig {
        match num {
            Some(n) if n < self.configs.len() as u64 => &self.configs[n as usize],
            _ => self.latest(),
        }
    }

    /// Answers a read-only query.
    pub fn read(&self, read: CtrlRead) -> CtrlOutput {
        match read {
            CtrlRead::Config(num) => CtrlOutput::Config(self.config(num).clone()),
            CtrlRead::Since { num, max } => {
                let from = usize::try_from(num)
                    .unwrap_or(usize::MAX)
                    .min(self.configs.len());
                let to = from.saturating_add(max as usize).min(self.configs.len());
                CtrlOutput::Configs(self.configs[from..to].to_vec())
            }
        }
    }

    /// Number of configurations (the latest's number plus one).
    pub fn len(&self) -> usize {
        self.configs.len()
    }

    /// Always false: configuration 0 exists from the start.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Applies one command.
    pub fn apply_command(&mut self, command: CtrlCommand) -> CtrlResult {
        let latest = self.latest();
        if let Some(expect) = command.expect
            && expect != latest.num
            && !command.op.is_read()
        {
            return Err(CtrlError::ConfigChanged { latest: latest.num });
        }
        let mut next = ShardConfig {
            num: latest.num + 1,
            shards: latest.shards.clone(),
            groups: latest.groups.clone(),
        };
        match command.op {
            CtrlOp::Query { num } => return Ok(self.read(CtrlRead::Config(num))),
            CtrlOp::Since { num, max } => return Ok(self.read(CtrlRead::Since { num, max })),
            CtrlOp::Join { groups } => {
                if groups.is_empty() {
                    return Err(CtrlError::Empty);
                }
                for (&gid, servers) in &groups {
                    if gid == 0 {
                        return Err(CtrlError::ZeroGid);
                    }
                    if servers.is_empty() {
                        return Err(CtrlError::NoServers { gid });
                    }
                }
                next.groups.extend(groups);
                let members: BTreeSet<Gid> = next.groups.keys().copied().collect();
                rebalance(&mut next.shards, &members);
            }
            CtrlOp::Leave { gids } => {
                if gids.is_empty() {
                    return Err(CtrlError::Empty);
                }
                if let Some(&gid) = gids.iter().find(|g| !next.groups.contains_key(g)) {
                    return Err(CtrlError::NotMember { gid });
                }
                for gid in &gids {
                    next.groups.remove(gid);
                }
                let members: BTreeSet<Gid> = next.groups.keys().copied().collect();
                rebalance(&mut next.shards, &members);
            }
            CtrlOp::Move { shard, gid } => {
                if !next.groups.contains_key(&gid) {
                    return Err(CtrlError::NotMember { gid });
                }
                match next.shards.get_mut(shard as usize) {
                    Some(owner) => *owner = gid,
                    None => return Err(CtrlError::BadShard { shard }),
                }
            }
        }
        let num = next.num;
        self.configs.push(next);
        Ok(CtrlOutput::Changed { num })
    }
}

impl StateMachine for Ctrler {
    type Command = CtrlCommand;
    type Decoded<'a> = Self::Command;
    type Query = CtrlRead;
    type Output = CtrlResult;

    fn apply(&mut self, command: CtrlCommand) -> CtrlResult {
        self.apply_command(command)
    }

    fn query(&self, read: &CtrlRead) -> CtrlResult {
        Ok(self.read(*read))
    }

    fn snapshot(&self, out: &mut Vec<u8>) {
        out.push(CTRLER_SNAPSHOT_FORMAT);
        let buf = std::mem::take(out);
        // Invariant: plain data serializes into a Vec without failing.
        *out = postcard::to_extend(&self.configs, buf).expect("configurations serialize");
    }

    fn restore(&mut self, data: &[u8]) -> Result<(), String> {
        let (&format, body) = data.split_first().ok_or("empty controller snapshot")?;
        if format != CTRLER_SNAPSHOT_FORMAT {
            return Err(format!("unknown controller snapshot format {format}"));
        }
        let configs: Vec<ShardConfig> = postcard::from_bytes(body).map_err(|e| e.to_string())?;
        let consistent = !configs.is_empty()
            && configs.iter().enumerate().all(|(i, c)| {
                c.num == i as u64
                    && !c.shards.is_empty()
                    && c.shards.len() == configs[0].shards.len()
            });
        if !consistent {
            return Err("controller snapshot: configurations out of order".into());
        }
        self.configs = configs;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(c: &mut Ctrler, op: CtrlOp) -> CtrlResult {
        c.apply_command(CtrlCommand { op, expect: None })
    }

    fn query(c: &Ctrler, num: Option<u64>) -> ShardConfig {
        match c.query(&CtrlRead::Config(num)) {
            Ok(CtrlOutput::Config(cfg)) => cfg,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn basic_join_leave_keeps_server_lists_and_numbers_configurations() {
        // The lab's TestBasic "basic leave/join".
        let mut c = Ctrler::new(10);
        assert_eq!(query(&c, None), ShardConfig::initial(10));
        assert_eq!(
            change(&mut c, CtrlOp::join(1, vec![3, 4, 5])),
            Ok(CtrlOutput::Changed { num: 1 })
        );
        assert_eq!(
            change(&mut c, CtrlOp::join(2, vec![6, 7, 8])),
            Ok(CtrlOutput::Changed { num: 2 })
        );
        let cfg = query(&c, None);
        assert_eq!(cfg.servers(1), [3, 4, 5]);
        assert_eq!(cfg.servers(2), [6, 7, 8]);
        cfg.check_balanced().unwrap();
        change(&mut c, CtrlOp::leave(1)).unwrap();
        let cfg = query(&c, None);
        assert!(cfg.shards.iter().all(|&g| g == 2));
        assert_eq!(cfg.servers(2), [6, 7, 8]);
        change(&mut c, CtrlOp::leave(2)).unwrap();
        let cfg = query(&c, None);
        assert_eq!(cfg.num, 4);
        assert!(cfg.groups.is_empty() && cfg.shards.iter().all(|&g| g == 0));
        // Historical queries: every old configuration, unchanged; beyond the end: latest.
        assert_eq!(query(&c, Some(0)), ShardConfig::initial(10));
        assert_eq!(query(&c, Some(2)).num, 2);
        assert_eq!(query(&c, Some(2)).servers(1), [3, 4, 5]);
        assert_eq!(query(&c, Some(99)).num, 4);
        // Ranges, clipped at the latest.
        let since = |num, max| match c.read(CtrlRead::Since { num, max }) {
            CtrlOutput::Configs(v) => v.iter().map(|c| c.num).collect::<Vec<_>>(),
            other => panic!("{other:?}"),
        };
        assert_eq!(since(1, 2), [1, 2]);
        assert_eq!(since(3, 10), [3, 4]);
        assert!(since(5, 10).is_empty());
        assert!(since(u64::MAX, u32::MAX).is_empty());
    }

    #[test]
    fn move_assigns_exactly_and_each_move_is_a_new_configuration() {
        // The lab's TestBasic "move".
        let mut c = Ctrler::new(10);
        let mut groups = BTreeMap::new();
        groups.insert(503, vec![1]);
        groups.insert(504, vec![2]);
        change(&mut c, CtrlOp::Join { groups }).unwrap();
        for shard in 0..10u32 {
            let gid = if shard < 5 { 503 } else { 504 };
            let before = c.latest().num;
            change(&mut c, CtrlOp::Move { shard, gid }).unwrap();
            assert_eq!(c.latest().num, before + 1);
        }
        assert_eq!(
            c.latest().shards,
            [503, 503, 503, 503, 503, 504, 504, 504, 504, 504]
        );
    }

    #[test]
    fn invalid_changes_are_refused_and_change_nothing() {
        let mut c = Ctrler::new(10);
        let before = c.clone();
        let cases = [
            (
                CtrlOp::Join {
                    groups: BTreeMap::new(),
                },
                CtrlError::Empty,
            ),
            (CtrlOp::join(0, vec![1]), CtrlError::ZeroGid),
            (CtrlOp::join(1, vec![]), CtrlError::NoServers { gid: 1 }),
            (CtrlOp::leave(7), CtrlError::NotMember { gid: 7 }),
            (CtrlOp::Leave { gids: vec![] }, CtrlError::Empty),
            (
                CtrlOp::Move { shard: 0, gid: 7 },
                CtrlError::NotMember { gid: 7 },
            ),
        ];
        for (op, err) in cases {
            assert_eq!(change(&mut c, op), Err(err));
        }
        assert_eq!(c, before);
        change(&mut c, CtrlOp::join(1, vec![1])).unwrap();
        assert_eq!(
            change(&mut c, CtrlOp::Move { shard: 10, gid: 1 }),
            Err(CtrlError::BadShard { shard: 10 })
        );
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn conditional_changes_fence_a_stale_administrator() {
        let mut c = Ctrler::new(10);
        let ok = c.apply_command(CtrlCommand {
            op: CtrlOp::join(1, vec![1]),
            expect: Some(0),
        });
        assert_eq!(ok, Ok(CtrlOutput::Changed { num: 1 }));
        // An administrator still working from configuration 0 is refused.
        let stale = c.apply_command(CtrlCommand {
            op: CtrlOp::join(2, vec![2]),
            expect: Some(0),
        });
        assert_eq!(stale, Err(CtrlError::ConfigChanged { latest: 1 }));
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn rejoining_a_member_updates_its_servers_and_moves_nothing() {
        let mut c = Ctrler::new(10);
        change(&mut c, CtrlOp::join(1, vec![1])).unwrap();
        change(&mut c, CtrlOp::join(2, vec![2])).unwrap();
        let shards = c.latest().shards.clone();
        change(&mut c, CtrlOp::join(2, vec![5, 6])).unwrap();
        assert_eq!(c.latest().shards, shards);
        assert_eq!(c.latest().servers(2), [5, 6]);
    }

    #[test]
    fn snapshots_round_trip_and_bad_ones_are_refused() {
        let mut c = Ctrler::new(12);
        for g in 1..6 {
            change(&mut c, CtrlOp::join(g, vec![g * 10, g * 10 + 1])).unwrap();
        }
        change(&mut c, CtrlOp::leave(3)).unwrap();
        let mut buf = Vec::new();
        c.snapshot(&mut buf);
        let mut back = Ctrler::new(1);
        back.restore(&buf).unwrap();
        assert_eq!(back, c);
        for cut in 0..buf.len() {
            assert!(Ctrler::new(1).restore(&buf[..cut]).is_err(), "prefix {cut}");
        }
        // Configurations out of order are refused.
        let mut swapped = c.configs.clone();
        swapped.swap(1, 2);
        let mut bad = vec![CTRLER_SNAPSHOT_FORMAT];
        bad = postcard::to_extend(&swapped, bad).unwrap();
        assert!(Ctrler::new(1).restore(&bad).is_err());
    }
}
