//! Client sessions: the table that makes retried commands execute exactly once.
//!
//! Each client numbers its commands `1, 2, 3, ...` and has at most one outstanding at a
//! time (Raft thesis 6.3). The table keeps, per client, the highest sequence number executed
//! and its output, so a retry of that command gets the original answer instead of running
//! again. The table is part of the replicated state: every replica builds the same one by
//! applying the same log, and it travels inside snapshots.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Tags a command for exactly-once execution: the client's id and the command's number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Session {
    /// A client id, unique among the clients of one service.
    pub client: u64,
    /// The command's number; a client's numbers increase by one per new command.
    pub seq: u64,
}

/// What the session table says about a tagged command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen<'a, O> {
    /// Never executed: run it.
    New,
    /// Already executed: this is its output.
    Done(&'a O),
    /// Older than the client's last executed command: the client has moved on, nobody waits
    /// for this answer.
    Stale,
}

/// The last executed command of one client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionEntry<O> {
    /// Its sequence number.
    pub seq: u64,
    /// Its output, returned again to retries.
    pub output: O,
}

/// The session table: client id -> last executed command and its output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sessions<O> {
    clients: BTreeMap<u64, SessionEntry<O>>,
}

impl<O> Default for Sessions<O> {
    fn default() -> Self {
        Sessions {
            clients: BTreeMap::new(),
        }
    }
}

impl<O> Sessions<O> {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Looks a tagged command up.
    pub fn check(&self, session: Session) -> Seen<'_, O> {
        match self.clients.get(&session.client) {
            Some(e) if session.seq == e.seq => Seen::Done(&e.output),
            Some(e) if session.seq < e.seq => Seen::Stale,
            _ => Seen::New,
        }
    }

    /// Records that the command `session` executed with `output`.
    pub fn record(&mut self, session: Session, output: O) {
        match self.clients.get_mut(&session.client) {
            Some(e) => {
                e.seq = session.seq;
                e.output = output;
            }
            None => {
                self.clients.insert(
                    session.client,
                    SessionEntry {
                        seq: session.seq,
                        output,
                    },
                );
            }
        }
    }

    /// Number of clients with a recorded command.
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// True if no client has a recorded command.
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// The recorded command of `client`, if any.
    pub fn get(&self, client: u64) -> Option<&SessionEntry<O>> {
        self.clients.get(&client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(client: u64, seq: u64) -> Session {
        Session { client, seq }
    }

    #[test]
    fn a_retry_gets_the_recorded_output_and_older_commands_are_stale() {
        let mut t: Sessions<&str> = Sessions::new();
        assert_eq!(t.check(s(1, 1)), Seen::New);
        t.record(s(1, 1), "one");
        assert_eq!(t.check(s(1, 1)), Seen::Done(&"one"));
        assert_eq!(t.check(s(1, 2)), Seen::New);
        assert_eq!(t.check(s(2, 1)), Seen::New);
        t.record(s(1, 2), "two");
        assert_eq!(t.check(s(1, 1)), Seen::Stale);
        assert_eq!(t.check(s(1, 2)), Seen::Done(&"two"));
        assert_eq!(t.len(), 1);
        assert_eq!(t.get(1).map(|e| e.seq), Some(2));
    }
}
