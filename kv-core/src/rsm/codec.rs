//! The byte formats the replicated-state-machine layer owns: log entries (a batch of
//! commands, each with its optional session) and snapshots (the session table followed by
//! the state machine's own snapshot). Both start with a format byte, as every persisted
//! record in stepwise does; the bodies are postcard.

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::session::{Session, Sessions};

/// Format byte of a command batch in a log entry.
pub(crate) const ENTRY_FORMAT: u8 = 1;
/// Format byte of a snapshot.
pub(crate) const SNAPSHOT_FORMAT: u8 = 1;

/// Why stored bytes could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The data is empty.
    #[error("empty record")]
    Empty,
    /// The format byte is not one this version understands.
    #[error("unknown format byte {0}")]
    UnknownFormat(u8),
    /// The body does not decode.
    #[error("malformed body: {0}")]
    Malformed(String),
}

fn malformed(e: postcard::Error) -> DecodeError {
    DecodeError::Malformed(e.to_string())
}

/// One command as stored in the log.
#[derive(Debug, Deserialize)]
pub(crate) struct Envelope<C> {
    pub(crate) session: Option<Session>,
    pub(crate) command: C,
}

/// The same, serialized from a borrowed command (same bytes as `Envelope`).
#[derive(Serialize)]
struct EnvelopeRef<'a, C> {
    session: Option<Session>,
    command: &'a C,
}

/// Encodes a batch of `(session, command)` pairs into one log entry's payload, appended
/// to `buf`.
pub(crate) fn encode_entry<'a, C, I>(count: usize, items: I, mut buf: Vec<u8>) -> Vec<u8>
where
    C: Serialize + 'a,
    I: IntoIterator<Item = (Option<Session>, &'a C)>,
{
    buf.push(ENTRY_FORMAT);
    // Invariant: postcard serializes plain data into a Vec without failing (it only fails
    // on types it cannot represent, such as sequences of unknown length); a command type
    // that cannot be serialized is a programming error in the state machine.
    buf = postcard::to_extend(&(count as u64), buf).expect("a u64 always serializes");
    for (session, command) in items {
        buf = postcard::to_extend(&EnvelopeRef { session, command }, buf)
            .expect("commands must serialize with postcard");
    }
    buf
}

/// Reads the commands of one log entry, one at a time.
pub(crate) struct EntryReader<'a> {
    rest: &'a [u8],
    remaining: u64,
}

impl<'a> EntryReader<'a> {
    /// Opens an entry's payload.
    pub(crate) fn open(data: &'a [u8]) -> Result<Self, DecodeError> {
        let (&format, body) = data.split_first().ok_or(DecodeError::Empty)?;
        if format != ENTRY_FORMAT {
            return Err(DecodeError::UnknownFormat(format));
        }
        let (count, rest) = postcard::take_from_bytes::<u64>(body).map_err(malformed)?;
        Ok(EntryReader {
            rest,
            remaining: count,
        })
    }

    /// Number of commands not read yet.
    #[cfg(test)]
    pub(crate) fn remaining(&self) -> u64 {
        self.remaining
    }

    /// The next command, `None` after the last. A malformed command ends the entry.
    pub(crate) fn next<C: Deserialize<'a>>(&mut self) -> Option<Result<Envelope<C>, DecodeError>> {
        if self.remaining == 0 {
            return None;
        }
        match postcard::take_from_bytes::<Envelope<C>>(self.rest) {
            Ok((env, rest)) => {
                self.rest = rest;
                self.remaining -= 1;
                Some(Ok(env))
            }
            Err(e) => {
                self.remaining = 0;
                Some(Err(malformed(e)))
            }
        }
    }

    /// Whether bytes are left over after the last command (a malformed entry).
    pub(crate) fn has_trailing_bytes(&self) -> bool {
        self.remaining == 0 && !self.rest.is_empty()
    }
}

/// Encodes a snapshot: the session table, then the state machine's bytes.
pub(crate) fn encode_snapshot<O: Serialize>(
    sessions: &Sessions<O>,
    state: impl FnOnce(&mut Vec<u8>),
) -> Bytes {
    let mut buf = vec![SNAPSHOT_FORMAT];
    buf = postcard::to_extend(sessions, buf).expect("session outputs must serialize");
    state(&mut buf);
    Bytes::from(buf)
}

/// Splits a snapshot into the session table and the state machine's bytes.
pub(crate) fn decode_snapshot<O: DeserializeOwned>(
    data: &[u8],
) -> Result<(Sessions<O>, &[u8]), DecodeError> {
    let (&format, body) = data.split_first().ok_or(DecodeError::Empty)?;
    if format != SNAPSHOT_FORMAT {
        return Err(DecodeError::UnknownFormat(format));
    }
    postcard::take_from_bytes::<Sessions<O>>(body).map_err(malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_command_by_command() {
        let cmds = ["a".to_string(), String::new(), "ccc".to_string()];
        let sessions = [
            Some(Session { client: 7, seq: 1 }),
            None,
            Some(Session {
                client: u64::MAX,
                seq: 300,
            }),
        ];
        let buf = encode_entry(3, sessions.iter().copied().zip(cmds.iter()), Vec::new());
        let mut r = EntryReader::open(&buf).unwrap();
        assert_eq!(r.remaining(), 3);
        for (s, c) in sessions.iter().zip(&cmds) {
            let env: Envelope<String> = r.next().unwrap().unwrap();
            assert_eq!((env.session, &env.command), (*s, c));
        }
        assert!(r.next::<String>().is_none());
        assert!(!r.has_trailing_bytes());
    }

    #[test]
    fn bad_entries_are_errors_not_panics() {
        assert_eq!(EntryReader::open(&[]).err(), Some(DecodeError::Empty));
        assert_eq!(
            EntryReader::open(&[9, 0]).err(),
            Some(DecodeError::UnknownFormat(9))
        );
        // Claims two commands, holds a truncated one.
        let mut r = EntryReader::open(&[ENTRY_FORMAT, 2, 1, 5]).unwrap();
        assert!(matches!(r.next::<String>(), Some(Err(_))));
        assert!(r.next::<String>().is_none());
    }

    #[test]
    fn snapshots_round_trip() {
        let mut sessions: Sessions<u32> = Sessions::new();
        sessions.record(Session { client: 3, seq: 9 }, 42);
        let data = encode_snapshot(&sessions, |b| b.extend_from_slice(b"state"));
        let (back, rest) = decode_snapshot::<u32>(&data).unwrap();
        assert_eq!(back, sessions);
        assert_eq!(rest, b"state");
        assert!(decode_snapshot::<u32>(&[]).is_err());
        assert!(decode_snapshot::<u32>(&[2]).is_err());
        assert!(decode_snapshot::<u32>(&[SNAPSHOT_FORMAT, 5]).is_err());
    }
}
