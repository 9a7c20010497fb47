//! The byte formats the replicated-state-machine layer owns: log entries (a batch of
//! commands, each with its optional session) and snapshots (the session table followed by
//! the state machine's own snapshot). Both start with a format byte, as every persisted
//! record in stepwise does.
//!
//! A log entry (format 2) is written by hand, because it is on the hot path of every
//! write (encoded once by the leader, decoded by every replica):
//!
//! ```text
//! entry    = 0x02 varint(count) command*count
//! command  = 0x00 len cmd                      (no session)
//!          | 0x01 varint(client) varint(seq) len cmd
//!          | 0x02 varint(client)               (end the client's session)
//! len      = u32, little endian: the length of cmd
//! cmd      = the state machine's own bytes (StateMachine::encode_command)
//! ```
//!
//! Varints are LEB128 (7 bits a byte, low bits first, at most 10 bytes). Every command is
//! framed by its length, so a command the state machine cannot decode is skipped on its
//! own (deterministically, on every replica) without losing the commands after it.
//!
//! Flag `0x02` is the layer's own record ([`Input::EndSession`](super::Input::EndSession)):
//! applying it removes that client's entry from the session table; it carries no command
//! for the state machine. The layer writes it as an entry of its own (`count` 1). It was
//! added after flags `0x00`/`0x01` without a new format byte: every entry written before
//! decodes as it did (no such entry holds flag `0x02`), but a replica of an older version
//! reads flag `0x02` as broken framing (skips the rest of that entry and counts it), so
//! upgrade every replica before any client ends a session.
//!
//! Entries of format 1, which versions before the hand-written format wrote (postcard: a
//! count, then `(session, command)` envelopes with the command in postcard), are still
//! read ([`PostcardEntry`]), so a log persisted by such a version replays as it was
//! applied then instead of being skipped as unreadable. Nothing writes them any more.
//!
//! Snapshot bodies are postcard.

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::session::{Session, Sessions};

/// Format byte of a command batch in a log entry.
pub(crate) const ENTRY_FORMAT: u8 = 2;
/// Format byte of a command batch as older versions wrote it (postcard envelopes).
pub(crate) const ENTRY_FORMAT_POSTCARD: u8 = 1;
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

impl DecodeError {
    /// A malformed body, with a short static reason.
    pub(crate) fn malformed(why: &'static str) -> Self {
        DecodeError::Malformed(why.to_owned())
    }
}

fn malformed(e: postcard::Error) -> DecodeError {
    DecodeError::Malformed(e.to_string())
}

/// Appends `n` as a LEB128 varint.
#[inline]
pub(crate) fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push(n as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Reads a LEB128 varint from the front of `data`, advancing it.
#[inline(always)]
pub(crate) fn take_varint(data: &mut &[u8]) -> Result<u64, DecodeError> {
    // Fast paths for one and two bytes (key lengths, client ids, most sequence numbers);
    // they accept exactly what the loop below accepts.
    let d: &[u8] = data;
    match d {
        [b0, rest @ ..] if *b0 < 0x80 => {
            *data = rest;
            return Ok(u64::from(*b0));
        }
        [b0, b1, rest @ ..] if *b1 < 0x80 => {
            *data = rest;
            return Ok(u64::from(*b0 & 0x7f) | (u64::from(*b1) << 7));
        }
        _ => {}
    }
    let mut n: u64 = 0;
    for (i, &byte) in data.iter().enumerate().take(10) {
        n |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            if i == 9 && byte > 1 {
                break; // more than 64 bits
            }
            *data = &data[i + 1..];
            return Ok(n);
        }
    }
    Err(DecodeError::malformed("bad varint"))
}

/// Splits `len` bytes off the front of `data`.
#[inline]
pub(crate) fn take_bytes<'a>(data: &mut &'a [u8], len: usize) -> Result<&'a [u8], DecodeError> {
    if data.len() < len {
        return Err(DecodeError::malformed("truncated"));
    }
    let (head, rest) = data.split_at(len);
    *data = rest;
    Ok(head)
}

/// Encodes a batch of `(session, command)` pairs into one log entry's payload, appended
/// to `buf`; `encode` writes one command's own bytes.
pub(crate) fn encode_entry<C, I>(
    count: usize,
    items: I,
    buf: &mut Vec<u8>,
    mut encode: impl FnMut(&C, &mut Vec<u8>),
) where
    I: IntoIterator<Item = (Option<Session>, C)>,
{
    buf.push(ENTRY_FORMAT);
    put_varint(buf, count as u64);
    for (session, command) in items {
        match session {
            None => buf.push(0),
            Some(s) => {
                buf.push(1);
                put_varint(buf, s.client);
                put_varint(buf, s.seq);
            }
        }
        let at = buf.len();
        buf.extend_from_slice(&[0; 4]);
        encode(&command, buf);
        // A command over 4 GiB cannot be framed; no entry gets near that (Raft and the
        // adapters bound message sizes far below), so this is a broken invariant.
        let len = u32::try_from(buf.len() - at - 4).expect("command larger than 4 GiB");
        buf[at..at + 4].copy_from_slice(&len.to_le_bytes());
    }
}

/// Appends an entry that ends `client`'s session (flag `0x02`) to `buf`.
pub(crate) fn encode_end_session(client: u64, buf: &mut Vec<u8>) {
    buf.push(ENTRY_FORMAT);
    put_varint(buf, 1);
    buf.push(2);
    put_varint(buf, client);
}

/// One record as framed in an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Frame<'a> {
    /// A command for the state machine: its session and its bytes.
    Command(Option<Session>, &'a [u8]),
    /// The end of a client's session.
    EndSession {
        /// The client whose session ends.
        client: u64,
    },
}

/// Reads the commands of one log entry, one at a time.
pub(crate) struct EntryReader<'a> {
    rest: &'a [u8],
    remaining: u64,
}

impl<'a> EntryReader<'a> {
    /// Opens an entry's payload.
    pub(crate) fn open(data: &'a [u8]) -> Result<Self, DecodeError> {
        let (&format, mut rest) = data.split_first().ok_or(DecodeError::Empty)?;
        if format != ENTRY_FORMAT {
            return Err(DecodeError::UnknownFormat(format));
        }
        let count = take_varint(&mut rest)?;
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

    /// The next record (a command's session and bytes, or an end of session), `None`
    /// after the last. A record whose framing is broken ends the entry.
    pub(crate) fn next(&mut self) -> Option<Result<Frame<'a>, DecodeError>> {
        if self.remaining == 0 {
            return None;
        }
        let next = self.frame();
        match next {
            Ok(_) => self.remaining -= 1,
            Err(_) => self.remaining = 0,
        }
        Some(next)
    }

    fn frame(&mut self) -> Result<Frame<'a>, DecodeError> {
        let rest = &mut self.rest;
        let session = match take_bytes(rest, 1)?[0] {
            0 => None,
            1 => Some(Session {
                client: take_varint(rest)?,
                seq: take_varint(rest)?,
            }),
            2 => {
                return Ok(Frame::EndSession {
                    client: take_varint(rest)?,
                });
            }
            _ => return Err(DecodeError::malformed("bad session flag")),
        };
        let len = take_bytes(rest, 4)?;
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]);
        let command = take_bytes(rest, len as usize)?;
        Ok(Frame::Command(session, command))
    }

    /// Whether bytes are left over after the last command (a malformed entry).
    pub(crate) fn has_trailing_bytes(&self) -> bool {
        self.remaining == 0 && !self.rest.is_empty()
    }
}

/// One command of a format-1 entry.
#[derive(Debug, Deserialize)]
pub(crate) struct Envelope<C> {
    pub(crate) session: Option<Session>,
    pub(crate) command: C,
}

/// Reads the commands of a format-1 entry (see the [module docs](self)), one at a time.
pub(crate) struct PostcardEntry<'a> {
    rest: &'a [u8],
    remaining: u64,
}

impl<'a> PostcardEntry<'a> {
    /// Opens a format-1 entry's payload, `None` if it is of another format.
    pub(crate) fn open(data: &'a [u8]) -> Option<Result<Self, DecodeError>> {
        let body = data.strip_prefix(&[ENTRY_FORMAT_POSTCARD])?;
        Some(
            postcard::take_from_bytes::<u64>(body)
                .map(|(remaining, rest)| PostcardEntry { rest, remaining })
                .map_err(malformed),
        )
    }

    /// The next command, `None` after the last. A malformed command ends the entry
    /// (postcard has no framing to skip it by).
    pub(crate) fn next<C: Deserialize<'a>>(&mut self) -> Option<Result<Envelope<C>, DecodeError>> {
        if self.remaining == 0 {
            return None;
        }
        match postcard::take_from_bytes::<Envelope<C>>(self.rest) {
            Ok((envelope, rest)) => {
                self.rest = rest;
                self.remaining -= 1;
                Some(Ok(envelope))
            }
            Err(e) => {
                self.remaining = 0;
                Some(Err(malformed(e)))
            }
        }
    }

    /// Whether bytes are left over after the last command (a malformed entry).
    pub(crate) fn has_trailing_bytes(&self) -> bool {
        !self.rest.is_empty()
    }
}

/// Appends a command's postcard encoding to `out` (the default command codec).
pub fn postcard_encode<C: Serialize>(command: &C, out: &mut Vec<u8>) {
    // Invariant: postcard serializes plain data into a Vec without failing (it only fails
    // on types it cannot represent, such as sequences of unknown length); a command type
    // that cannot be serialized is a programming error in the state machine.
    let buf = std::mem::take(out);
    *out = postcard::to_extend(command, buf).expect("commands must serialize with postcard");
}

/// Decodes a command written by [`postcard_encode`]; every byte must be used.
pub fn postcard_decode<'a, C: serde::Deserialize<'a>>(data: &'a [u8]) -> Result<C, DecodeError> {
    match postcard::take_from_bytes::<C>(data) {
        Ok((c, [])) => Ok(c),
        Ok(_) => Err(DecodeError::malformed("trailing bytes after the command")),
        Err(e) => Err(malformed(e)),
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

    fn encode_strings(items: &[(Option<Session>, &str)]) -> Vec<u8> {
        let mut buf = Vec::new();
        encode_entry(
            items.len(),
            items.iter().copied(),
            &mut buf,
            |c: &&str, out: &mut Vec<u8>| out.extend_from_slice(c.as_bytes()),
        );
        buf
    }

    #[test]
    fn entries_round_trip_command_by_command() {
        let items = [
            (Some(Session { client: 7, seq: 1 }), "a"),
            (None, ""),
            (
                Some(Session {
                    client: u64::MAX,
                    seq: 300,
                }),
                "ccc",
            ),
        ];
        let buf = encode_strings(&items);
        let mut r = EntryReader::open(&buf).unwrap();
        assert_eq!(r.remaining(), 3);
        for (s, c) in items {
            assert_eq!(r.next(), Some(Ok(Frame::Command(s, c.as_bytes()))));
        }
        assert!(r.next().is_none());
        assert!(!r.has_trailing_bytes());
    }

    #[test]
    fn end_session_entries_round_trip_and_old_entries_still_decode() {
        for client in [0, 1, 300, u64::MAX] {
            let mut buf = Vec::new();
            encode_end_session(client, &mut buf);
            let mut r = EntryReader::open(&buf).unwrap();
            assert_eq!(r.next(), Some(Ok(Frame::EndSession { client })));
            assert!(r.next().is_none());
            assert!(!r.has_trailing_bytes());
            // Truncated: an error, never a panic.
            let mut r = EntryReader::open(&buf[..buf.len() - 1]).unwrap();
            assert!(matches!(r.next(), Some(Err(_))));
            assert!(r.next().is_none());
        }
        // Bytes of an entry written before flag 0x02 existed decode as they did.
        let old = [ENTRY_FORMAT, 2, 1, 7, 1, 1, 0, 0, 0, b'a', 0, 0, 0, 0, 0];
        let mut r = EntryReader::open(&old).unwrap();
        let seven = Some(Session { client: 7, seq: 1 });
        assert_eq!(r.next(), Some(Ok(Frame::Command(seven, &b"a"[..]))));
        assert_eq!(r.next(), Some(Ok(Frame::Command(None, &b""[..]))));
        assert!(r.next().is_none());
        assert_eq!(old[..], encode_strings(&[(seven, "a"), (None, "")])[..]);
    }

    #[test]
    fn varints_round_trip_and_refuse_overflow() {
        // (Through the one- and two-byte fast paths and the general loop.)
        for n in [
            0,
            1,
            127,
            128,
            300,
            16383,
            16384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut buf = Vec::new();
            put_varint(&mut buf, n);
            buf.push(0xAA);
            let mut rest = &buf[..];
            assert_eq!(take_varint(&mut rest), Ok(n));
            assert_eq!(rest, [0xAA]);
        }
        assert!(take_varint(&mut &[0x80u8; 10][..]).is_err());
        assert!(
            take_varint(&mut &[0xFFu8, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02][..])
                .is_err()
        );
        assert!(take_varint(&mut &[0x80u8][..]).is_err());
        assert!(take_varint(&mut &[][..]).is_err());
        // A padded (non-minimal) encoding reads the same through a fast path and the loop.
        assert_eq!(take_varint(&mut &[0x85u8, 0x00][..]), Ok(5));
        assert_eq!(take_varint(&mut &[0x85u8, 0x80, 0x00][..]), Ok(5));
    }

    #[test]
    fn varint_fast_paths_agree_with_the_general_loop() {
        // The loop alone, as `take_varint` was before its fast paths.
        fn general(data: &mut &[u8]) -> Result<u64, DecodeError> {
            let mut n: u64 = 0;
            for (i, &byte) in data.iter().enumerate().take(10) {
                n |= u64::from(byte & 0x7f) << (7 * i);
                if byte & 0x80 == 0 {
                    if i == 9 && byte > 1 {
                        break;
                    }
                    *data = &data[i + 1..];
                    return Ok(n);
                }
            }
            Err(DecodeError::malformed("bad varint"))
        }
        // Every input of up to two bytes, alone and followed by more bytes.
        let mut inputs: Vec<Vec<u8>> = vec![vec![]];
        for b0 in 0..=255u8 {
            inputs.push(vec![b0]);
            for b1 in 0..=255u8 {
                inputs.push(vec![b0, b1]);
                inputs.push(vec![b0, b1, 0x05]);
                inputs.push(vec![b0, b1, 0x85, 0x01, 0xAA]);
            }
        }
        for input in inputs {
            let (mut a, mut b) = (&input[..], &input[..]);
            assert_eq!(take_varint(&mut a), general(&mut b), "{input:?}");
            assert_eq!(a, b, "{input:?}");
        }
    }

    #[test]
    fn bad_entries_are_errors_not_panics() {
        assert_eq!(EntryReader::open(&[]).err(), Some(DecodeError::Empty));
        assert_eq!(
            EntryReader::open(&[9, 0]).err(),
            Some(DecodeError::UnknownFormat(9))
        );
        // Claims two commands, holds a truncated one.
        let mut r = EntryReader::open(&[ENTRY_FORMAT, 2, 0, 5, 0, 0, 0, b'x']).unwrap();
        assert!(matches!(r.next(), Some(Err(_))));
        assert!(r.next().is_none());
        // A bad session flag.
        let mut r = EntryReader::open(&[ENTRY_FORMAT, 1, 7]).unwrap();
        assert!(matches!(r.next(), Some(Err(_))));
        // Every truncation of a good entry is an error or a shorter read, never a panic.
        let buf = encode_strings(&[(Some(Session { client: 1, seq: 2 }), "hello"), (None, "x")]);
        for cut in 0..buf.len() {
            if let Ok(mut r) = EntryReader::open(&buf[..cut]) {
                while let Some(Ok(_)) = r.next() {}
            }
        }
    }

    #[test]
    fn postcard_codec_round_trips_and_refuses_trailing_bytes() {
        let mut buf = Vec::new();
        postcard_encode(&(5u32, "five".to_string()), &mut buf);
        assert_eq!(
            postcard_decode::<(u32, String)>(&buf),
            Ok((5, "five".to_string()))
        );
        buf.push(0);
        assert!(postcard_decode::<(u32, String)>(&buf).is_err());
        assert!(postcard_decode::<(u32, String)>(&buf[..2]).is_err());
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
