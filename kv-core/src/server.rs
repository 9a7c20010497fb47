//! The single-server KV service of the kvsrv labs (no Raft): the same [`Kv`] state machine
//! and the same session table as the replicated service, answering each request at once.
//!
//! * Requests **without** a session (the 2025 lab's clerk) keep no per-client state at all:
//!   a retransmitted versioned Put that meets a version mismatch is reported by the
//!   [`Clerk`](crate::clerk::Clerk) as [`KvError::Maybe`], as the
//!   lab specifies.
//! * Requests **with** a session (the 2024 lab's Put/Append) execute exactly once: the
//!   server keeps each client's last sequence number and reply (a few dozen bytes per
//!   client). Gets never create per-client state.
//!
//! ```
//! use stepwise_kv::server::Server;
//! use stepwise_kv::{KvError, KvOutput, Op, Request, Session};
//!
//! let mut server = Server::new();
//! let session = Some(Session { client: 1, seq: 1 });
//! let append = Request { id: 1, session, op: Op::append_return("k", "x") };
//! let first = server.handle(append.clone());
//! let retry = server.handle(append); // the reply was lost; the clerk resends
//! assert_eq!(first, retry);          // executed once, same answer
//! let get = Request { id: 2, session: None, op: Op::get("k") };
//! assert_eq!(server.handle(get).result, Ok(KvOutput::Value { value: "x".into(), version: 1 }));
//! let stale = Request { id: 3, session: None, op: Op::put("k", "y", 0) };
//! assert_eq!(server.handle(stale).result, Err(KvError::Version));
//! ```

use bytes::Bytes;

use crate::kv::{Kv, KvError, KvResult, Op};
use crate::message::{Reply, Request};
use crate::rsm::{Seen, Sessions};

/// The single KV server. See the [module docs](self).
#[derive(Clone, Debug, Default)]
pub struct Server {
    kv: Kv,
    sessions: Sessions<KvResult>,
    duplicates: u64,
}

impl Server {
    /// An empty server.
    pub fn new() -> Self {
        Self::default()
    }

    /// Executes one request and returns its reply.
    ///
    /// Written keys and values are copied, so a request decoded as slices of a larger
    /// buffer (a network frame) never keeps that buffer alive.
    pub fn handle(&mut self, request: Request) -> Reply {
        let Request { id, session, op } = request;
        let op = match op {
            Op::Get { key } => Op::Get { key },
            Op::Put {
                key,
                value,
                version,
            } => Op::Put {
                key: own(key),
                value: own(value),
                version,
            },
            Op::Append {
                key,
                value,
                return_old,
            } => Op::Append {
                key: own(key),
                value: own(value),
                return_old,
            },
            Op::Delete { key } => Op::Delete { key },
            Op::Incr { key, by } => Op::Incr { key: own(key), by },
        };
        let result = match session {
            Some(s) if !op.is_read() => match self.sessions.check(s) {
                Seen::New => {
                    let result = self.kv.apply_op(op);
                    self.sessions.record(s, result.clone());
                    result
                }
                Seen::Done(r) => {
                    self.duplicates += 1;
                    r.clone()
                }
                Seen::Stale => Err(KvError::Stale),
            },
            _ => self.kv.apply_op(op),
        };
        Reply { id, result }
    }

    /// The store.
    pub fn kv(&self) -> &Kv {
        &self.kv
    }

    /// The session table (one entry per client that sent a tagged write).
    pub fn sessions(&self) -> &Sessions<KvResult> {
        &self.sessions
    }

    /// Retried writes answered from the session table.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }
}

/// A copy of `b` that owns exactly its bytes.
fn own(b: Bytes) -> Bytes {
    if b.is_empty() {
        Bytes::new()
    } else {
        Bytes::copy_from_slice(&b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_values_do_not_pin_request_buffers() {
        let frame = Bytes::from(vec![7u8; 4096]);
        let range = frame.as_ptr() as usize..frame.as_ptr() as usize + frame.len();
        let mut server = Server::new();
        let put = Op::put_any(frame.slice(0..4), frame.slice(4..20));
        server.handle(Request {
            id: 1,
            session: None,
            op: put,
        });
        let (v, _) = server.kv().get(&[7, 7, 7, 7]).expect("stored");
        assert!(
            !range.contains(&(v.as_ptr() as usize)),
            "value shares the frame"
        );
    }
}
