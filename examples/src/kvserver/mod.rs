//! # kv-server: the replicated KV service as a Redis-compatible server
//!
//! One Raft node per process (binary `kv-server`), or several in one process
//! (`kv-cluster`). Clients speak RESP2, so `redis-cli`, `redis-benchmark` and Redis
//! client libraries work unchanged.
//!
//! ## Commands
//!
//! | Command | Meaning |
//! |---|---|
//! | `GET k`, `MGET k...` | read (linearizable, through Raft's ReadIndex) |
//! | `SET k v` | unconditional put (no options: `EX`, `NX`, ... are a syntax error) |
//! | `APPEND k v` | append, returns the new length |
//! | `DEL k...`, `EXISTS k...` | delete / count present keys |
//! | `INCR k`, `DECR k`, `INCRBY k n`, `DECRBY k n` | add to an integer value (one replicated operation; a missing key counts as 0) |
//! | `VGET k` | custom: `[value or nil, version]`; the version counts the key's writes (0: never written) |
//! | `VPUT k v version` | custom: put only if the key is at `version`; returns the new version, or `-VERSION version mismatch` / `-NOKEY no such key` |
//! | `PING`, `ECHO`, `QUIT`, `SELECT 0` | as in Redis |
//! | `COMMAND`, `INFO`, `CLIENT`, `CONFIG` | stubs, enough for redis-cli and redis-benchmark |
//!
//! Unknown commands, wrong arity and non-integer values get Redis's error texts;
//! malformed protocol gets Redis's protocol error and closes that connection only.
//!
//! ## Semantics and limits
//!
//! * Every command on one key is linearizable. Commands on several keys (`MGET`,
//!   `DEL`, `EXISTS` with several keys) run key by key, each step linearizable, not as
//!   one atomic step.
//! * `DEL` and the `INCR` family are operations of the store ([`stepwise_kv::Op::Delete`],
//!   [`stepwise_kv::Op::Incr`]), each one replicated write; a deleted key is missing
//!   again (its version is back to 0), and an empty value is a value, as in Redis.
//! * Writes carry a session (a client id per connection and a sequence number), so a
//!   write retried after a leader change applies at most once.
//! * **Forwarding**: any node accepts any command. A follower that gets "wrong leader"
//!   from its replica forwards that one operation to the leader's *client* port as the
//!   internal command `STEPWISE.OP` (see [`forward`]), over one connection per client
//!   connection, and relays the result. The leader executes forwarded operations
//!   locally only (no second hop); the follower retries until the deadline. A node
//!   needs every member's client address for this (`--client-peers`). `STEPWISE.OP`
//!   carries the cluster's forwarding token (`--cluster-secret`, else derived from the
//!   member list); without it the command does not exist, so clients cannot forge
//!   sessions through it.
//! * **No quorum**: a command not answered within `--timeout-ms` (default 3000) fails
//!   with `-CLUSTERDOWN ...`; it may or may not have taken effect.
//! * **Limits**: `--max-key` and `--max-value` (a longer key or value gets
//!   `-ERR key too long` / `-ERR value too large`; a bulk string longer than both is a
//!   protocol error that closes the connection, as Redis does with
//!   `proto-max-bulk-len`); `APPEND` checks only its own argument, so repeated appends
//!   can grow a value past `--max-value`. `--max-connections`: beyond it, a new
//!   connection gets `-ERR max number of clients reached` and is closed.
//! * **Pipelining**: every request already received on a connection is executed in
//!   order and answered in one write. A run of consecutive pipelined `SET`/`APPEND`s is
//!   proposed as **one** log entry (one Raft round, each write still exactly-once through
//!   its session). Requests of all connections that reach the node together are stepped
//!   as one batch with one log sync (group commit). On a follower, the run is forwarded
//!   to the leader in one pipelined round, and the leader proposes it as one entry too
//!   (`INFO` shows `stepwise_leader`; the leader is still the faster target).
//! * **Sessions end with their connection**: the session table (one entry per client id
//!   that wrote, replicated and snapshotted) would otherwise grow with every connection
//!   ever made. When a connection that wrote closes, its node waits `2 x --timeout-ms`
//!   (every retry made for it, locally or by a leader it forwarded to, has ended by then,
//!   so no copy of its writes can reach the log afterwards), then, if it leads,
//!   proposes [`stepwise_kv::replica::Input::EndSession`] for the connection's client id,
//!   or, on a follower, asks the leader to (`STEPWISE.END`, with the forwarding token).
//!   A connection closed across a leader change or a restart may still leave its entry
//!   (best effort: a bounded retry while no leader is known). `INFO` shows
//!   the table's size as `stepwise_sessions`.
pub mod conn;
pub mod forward;
pub mod machine;
pub mod node;

pub use machine::{KvEvent, KvMachine, KvRequest, Router};
pub use node::{NodeOptions, RunningNode, start_node};

use std::collections::BTreeMap;
use std::net::SocketAddr;

/// Parses `1=127.0.0.1:7001,2=127.0.0.1:7002`.
pub fn parse_members(s: &str) -> Result<BTreeMap<u64, SocketAddr>, String> {
    let mut out = BTreeMap::new();
    for item in s.split(',').filter(|i| !i.trim().is_empty()) {
        let (id, addr) = item
            .split_once('=')
            .ok_or_else(|| format!("`{item}`: expected ID=HOST:PORT"))?;
        let id: u64 = id
            .trim()
            .parse()
            .map_err(|e| format!("`{item}`: bad id: {e}"))?;
        let addr: SocketAddr = addr
            .trim()
            .parse()
            .map_err(|e| format!("`{item}`: bad address: {e}"))?;
        if out.insert(id, addr).is_some() {
            return Err(format!("node {id} listed twice"));
        }
    }
    if out.is_empty() {
        return Err("no members".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_parse_and_reject_garbage() {
        let m = parse_members("1=127.0.0.1:7001,2=127.0.0.1:7002").unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[&2].port(), 7002);
        assert!(parse_members("1=127.0.0.1:7001,1=127.0.0.1:7002").is_err());
        assert!(parse_members("x=127.0.0.1:1").is_err());
        assert!(parse_members("1:127.0.0.1").is_err());
        assert!(parse_members("").is_err());
    }
}
