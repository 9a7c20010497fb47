//! Client sessions: the table that makes retried commands execute exactly once.
//!
//! Each client numbers its commands `1, 2, 3, ...` and has at most one outstanding at a
//! time (Raft thesis 6.3). The table keeps, per client, the highest sequence number executed
//! and its output, so a retry of that command gets the original answer instead of running
//! again. The table is part of the replicated state: every replica builds the same one by
//! applying the same log, and it travels inside snapshots.
//!
//! An entry stays until its client's session ends
//! ([`Input::EndSession`](super::Input::EndSession), applied from the log like a command,
//! so every replica removes it at the same point); see the [layer docs](super) for when
//! that is safe.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::hash::KeyHash;

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

/// What [`Sessions::execute_once`] did with a command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Executed<O> {
    /// A new command: executed, with this output (now recorded).
    New(O),
    /// A retry of the client's last executed command: not executed again; its recorded
    /// output.
    Duplicate(O),
    /// Older than the client's last executed command: not executed, nothing to answer.
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
///
/// Serialized as the list of `(client, entry)` sorted by client, so equal tables give
/// equal bytes on every replica.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sessions<O> {
    clients: HashMap<u64, SessionEntry<O>, KeyHash>,
}

impl<O> Default for Sessions<O> {
    fn default() -> Self {
        Sessions {
            clients: HashMap::default(),
        }
    }
}

impl<O: Serialize> Serialize for Sessions<O> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut sorted: Vec<(&u64, &SessionEntry<O>)> = self.clients.iter().collect();
        sorted.sort_unstable_by_key(|e| *e.0);
        s.collect_seq(sorted)
    }
}

impl<'de, O: Deserialize<'de>> Deserialize<'de> for Sessions<O> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let list: Vec<(u64, SessionEntry<O>)> = Vec::deserialize(d)?;
        let n = list.len();
        let clients: HashMap<u64, SessionEntry<O>, KeyHash> = list.into_iter().collect();
        if clients.len() != n {
            return Err(serde::de::Error::custom("a client appears twice"));
        }
        Ok(Sessions { clients })
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

    /// Executes the command tagged `session` at most once, with one table lookup: a new
    /// command runs `execute` and its output is recorded (and returned); a retry of the
    /// last executed command returns the recorded output without running `execute`; an
    /// older one is [`Executed::Stale`]. Equivalent to [`Sessions::check`] followed by
    /// [`Sessions::record`] for a new command.
    pub fn execute_once(&mut self, session: Session, execute: impl FnOnce() -> O) -> Executed<O>
    where
        O: Clone,
    {
        match self.clients.entry(session.client) {
            Entry::Occupied(e) => {
                let e = e.into_mut();
                if session.seq == e.seq {
                    Executed::Duplicate(e.output.clone())
                } else if session.seq < e.seq {
                    Executed::Stale
                } else {
                    let output = execute();
                    e.seq = session.seq;
                    e.output = output.clone();
                    Executed::New(output)
                }
            }
            Entry::Vacant(v) => {
                let output = execute();
                v.insert(SessionEntry {
                    seq: session.seq,
                    output: output.clone(),
                });
                Executed::New(output)
            }
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

    /// Forgets `client` (its session ended): a later command of that client would run as
    /// new. Returns whether it had an entry. Frees the table's memory once it is mostly
    /// empty, so a table that shrinks stays small.
    pub fn remove(&mut self, client: u64) -> bool {
        let removed = self.clients.remove(&client).is_some();
        if removed
            && self.clients.capacity() > 64
            && self.clients.len() * 4 < self.clients.capacity()
        {
            self.clients.shrink_to(self.clients.len() * 2);
        }
        removed
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

    #[test]
    fn execute_once_runs_new_commands_only_and_agrees_with_check_and_record() {
        let mut t: Sessions<u64> = Sessions::new();
        let mut runs = 0;
        let mut run = |t: &mut Sessions<u64>, session, out| {
            t.execute_once(session, || {
                runs += 1;
                out
            })
        };
        assert_eq!(run(&mut t, s(1, 1), 10), Executed::New(10));
        assert_eq!(run(&mut t, s(1, 1), 11), Executed::Duplicate(10));
        assert_eq!(run(&mut t, s(1, 2), 12), Executed::New(12));
        assert_eq!(run(&mut t, s(1, 1), 13), Executed::Stale);
        assert_eq!(run(&mut t, s(2, 5), 14), Executed::New(14));
        assert_eq!(runs, 3);
        // The same table as check + record would have built.
        let mut u: Sessions<u64> = Sessions::new();
        u.record(s(1, 2), 12);
        u.record(s(2, 5), 14);
        assert_eq!(t, u);
        assert_eq!(t.check(s(1, 2)), Seen::Done(&12));
    }

    #[test]
    fn a_removed_client_starts_afresh_and_the_table_shrinks() {
        let mut t: Sessions<u64> = Sessions::new();
        for c in 0..1000 {
            t.record(s(c, 3), c);
        }
        assert!(t.remove(7));
        assert!(!t.remove(7));
        assert_eq!(t.check(s(7, 3)), Seen::New);
        assert_eq!(t.check(s(8, 3)), Seen::Done(&8));
        for c in 0..990 {
            t.remove(c);
        }
        assert_eq!(t.len(), 10);
        assert!(t.clients.capacity() < 100, "{}", t.clients.capacity());
    }

    #[test]
    fn serialization_is_sorted_and_round_trips() {
        let (mut a, mut b): (Sessions<u8>, Sessions<u8>) = (Sessions::new(), Sessions::new());
        for c in 0..50 {
            a.record(s(c, 1), c as u8);
            b.record(s(49 - c, 1), (49 - c) as u8);
        }
        let (ea, eb) = (
            postcard::to_allocvec(&a).unwrap(),
            postcard::to_allocvec(&b).unwrap(),
        );
        assert_eq!(ea, eb);
        let back: Sessions<u8> = postcard::from_bytes(&ea).unwrap();
        assert_eq!(back, a);
        // A client twice is refused.
        let dup = postcard::to_allocvec(&vec![
            (
                1u64,
                SessionEntry {
                    seq: 1,
                    output: 0u8
                }
            );
            2
        ])
        .unwrap();
        assert!(postcard::from_bytes::<Sessions<u8>>(&dup).is_err());
    }
}
