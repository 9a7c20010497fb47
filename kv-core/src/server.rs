//! The single-server KV service of the kvsrv labs (no Raft): the same [`Kv`] state machine
//! and the same session table as the replicated service, answering each request at once.
//!
//! * Requests **without** a session (the 2025 lab's clerk) keep no per-client state at all:
//!   a retransmitted versioned Put that meets a version mismatch is reported by the
//!   [`Clerk`](crate::clerk::Clerk) as [`KvError::Maybe`](crate::KvError::Maybe), as the
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

use crate::kv::{Kv, KvError, KvResult};
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
    pub fn handle(&mut self, request: Request) -> Reply {
        let Request { id, session, op } = request;
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
