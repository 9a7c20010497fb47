//! The node-to-node forwarding protocol: a follower sends one KV operation to the leader
//! as an internal RESP command on the leader's client port and gets the raw result back.
//!
//! Request: `STEPWISE.OP <token> <client> <seq> GET <key>` | `PUT <key> <value>` |
//! `VPUT <key> <value> <version>` | `APPEND <key> <value>` | `APPENDR <key> <value>` |
//! `DEL <key>` | `INCR <key> <by>`, with `client` and `seq` the write's [`Session`] (both
//! `0` for none) and `token` the cluster's forwarding token
//! ([`NodeOptions::forwarding_token`](super::NodeOptions::forwarding_token)): with any other
//! token the request is an unknown command, so a client cannot forge another client's
//! session. The leader executes it on its own replica once, without forwarding
//! further. Reply: `*3 VALUE <value> <version>`, `*2 WRITTEN <version>`,
//! `*3 APPENDED <old> <version>`, `*2 DELETED <0|1>`, `*3 NUMBER <value> <version>`, or
//! an error `-KV NOKEY|VERSION|STALE|NOTINT|OVERFLOW|WRONGLEADER <id or 0>|TIMEOUT`.
//!
//! A follower also forwards the end of a session whose connection closed:
//! `STEPWISE.END <token> <client>`, answered `+OK` once the leader proposed it (or
//! `-KV WRONGLEADER <id or 0>`); unknown without the token, as above.

use bytes::{Bytes, BytesMut};
use stepwise_kv::{KvError, KvOutput, KvResult, Op, Session};
use stepwise_resp::{Reply, Request, encode_request};

/// The internal command's name.
pub const COMMAND: &[u8] = b"STEPWISE.OP";

/// The internal command that ends a session on the leader.
pub const END_COMMAND: &[u8] = b"STEPWISE.END";

/// Appends the request that ends `client`'s session to `out`.
pub fn encode_end(client: u64, token: &Bytes, out: &mut BytesMut) {
    let args = [
        Bytes::from_static(END_COMMAND),
        token.clone(),
        Bytes::from(client.to_string()),
    ];
    encode_request(&args, out);
}

/// Parses an end-of-session request (all arguments, the command name included): the
/// client id, if the token is right.
pub fn decode_end(request: &Request, token: &[u8]) -> Option<u64> {
    match &request.args[..] {
        [_, t, client] if t == token => num(client).filter(|&c| c != 0),
        _ => None,
    }
}

/// Appends the forwarding request for `op` to `out`.
pub fn encode_op(op: &Op, session: Option<Session>, token: &Bytes, out: &mut BytesMut) {
    let (client, seq) = session.map_or((0, 0), |s| (s.client, s.seq));
    let mut args = vec![
        Bytes::from_static(COMMAND),
        token.clone(),
        Bytes::from(client.to_string()),
        Bytes::from(seq.to_string()),
    ];
    let (kind, key, extra): (&'static [u8], &Bytes, [Option<Bytes>; 2]) = match op {
        Op::Get { key } => (b"GET", key, [None, None]),
        Op::Put {
            key,
            value,
            version: None,
        } => (b"PUT", key, [Some(value.clone()), None]),
        Op::Put {
            key,
            value,
            version: Some(v),
        } => (
            b"VPUT",
            key,
            [Some(value.clone()), Some(Bytes::from(v.to_string()))],
        ),
        Op::Append {
            key,
            value,
            return_old,
        } => (
            if *return_old { b"APPENDR" } else { b"APPEND" },
            key,
            [Some(value.clone()), None],
        ),
        Op::Delete { key } => (b"DEL", key, [None, None]),
        Op::Incr { key, by } => (b"INCR", key, [Some(Bytes::from(by.to_string())), None]),
    };
    args.extend([Bytes::from_static(kind), key.clone()]);
    args.extend(extra.into_iter().flatten());
    encode_request(&args, out);
}

fn num(b: &Bytes) -> Option<u64> {
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// Parses a forwarding request (all arguments, the command name included).
pub fn decode_op(request: &Request, token: &[u8]) -> Option<(Op, Option<Session>)> {
    let a = &request.args;
    if a.len() < 6 || a[1] != token {
        return None;
    }
    let a = &a[1..]; // from here on as without the token
    let (client, seq) = (num(&a[1])?, num(&a[2])?);
    let session = (client != 0 || seq != 0).then_some(Session { client, seq });
    let key = a[4].clone();
    let op = match (&a[3][..], a.len()) {
        (b"GET", 5) => Op::Get { key },
        (b"PUT", 6) => Op::put_any(key, a[5].clone()),
        (b"VPUT", 7) => Op::put(key, a[5].clone(), num(&a[6])?),
        (b"APPEND", 6) => Op::append(key, a[5].clone()),
        (b"APPENDR", 6) => Op::append_return(key, a[5].clone()),
        (b"DEL", 5) => Op::Delete { key },
        (b"INCR", 6) => Op::incr(key, std::str::from_utf8(&a[5]).ok()?.parse().ok()?),
        _ => return None,
    };
    Some((op, session))
}

/// Encodes a result as the forwarding reply.
pub fn encode_result(result: &KvResult) -> Reply {
    let int = |v: u64| Reply::Bulk(Bytes::from(v.to_string()));
    match result {
        Ok(KvOutput::Value { value, version }) => Reply::Array(vec![
            Reply::bulk("VALUE"),
            Reply::Bulk(value.clone()),
            int(*version),
        ]),
        Ok(KvOutput::Written { version }) => {
            Reply::Array(vec![Reply::bulk("WRITTEN"), int(*version)])
        }
        Ok(KvOutput::Appended { old, version }) => Reply::Array(vec![
            Reply::bulk("APPENDED"),
            Reply::Bulk(old.clone()),
            int(*version),
        ]),
        Ok(KvOutput::Deleted { existed }) => {
            Reply::Array(vec![Reply::bulk("DELETED"), int(u64::from(*existed))])
        }
        Ok(KvOutput::Number { value, version }) => Reply::Array(vec![
            Reply::bulk("NUMBER"),
            Reply::Bulk(Bytes::from(value.to_string())),
            int(*version),
        ]),
        Err(e) => Reply::error(match e {
            KvError::NoKey => "KV NOKEY".to_string(),
            KvError::Version => "KV VERSION".to_string(),
            KvError::Stale => "KV STALE".to_string(),
            KvError::NotInteger => "KV NOTINT".to_string(),
            KvError::Overflow => "KV OVERFLOW".to_string(),
            KvError::WrongLeader { leader } => format!("KV WRONGLEADER {}", leader.unwrap_or(0)),
            // Maybe, WrongGroup and Timeout never come from a replica; pass them as a
            // timeout, which the forwarder treats as "unknown outcome".
            _ => "KV TIMEOUT".to_string(),
        }),
    }
}

/// Decodes a forwarding reply. `None` for anything else (a protocol violation).
pub fn decode_result(reply: &Reply) -> Option<KvResult> {
    match reply {
        Reply::Array(items) => {
            let bulk = |i: usize| match items.get(i) {
                Some(Reply::Bulk(b)) => Some(b.clone()),
                _ => None,
            };
            let kind = bulk(0)?;
            match (&kind[..], items.len()) {
                (b"VALUE", 3) => Some(Ok(KvOutput::Value {
                    value: bulk(1)?,
                    version: num(&bulk(2)?)?,
                })),
                (b"WRITTEN", 2) => Some(Ok(KvOutput::Written {
                    version: num(&bulk(1)?)?,
                })),
                (b"APPENDED", 3) => Some(Ok(KvOutput::Appended {
                    old: bulk(1)?,
                    version: num(&bulk(2)?)?,
                })),
                (b"DELETED", 2) => Some(Ok(KvOutput::Deleted {
                    existed: match num(&bulk(1)?)? {
                        0 => false,
                        1 => true,
                        _ => return None,
                    },
                })),
                (b"NUMBER", 3) => Some(Ok(KvOutput::Number {
                    value: std::str::from_utf8(&bulk(1)?).ok()?.parse().ok()?,
                    version: num(&bulk(2)?)?,
                })),
                _ => None,
            }
        }
        Reply::Error(text) => {
            let text = std::str::from_utf8(text).ok()?;
            let mut words = text.split(' ');
            if words.next()? != "KV" {
                return None;
            }
            Some(Err(match words.next()? {
                "NOKEY" => KvError::NoKey,
                "VERSION" => KvError::Version,
                "STALE" => KvError::Stale,
                "NOTINT" => KvError::NotInteger,
                "OVERFLOW" => KvError::Overflow,
                "WRONGLEADER" => {
                    let id: u64 = words.next()?.parse().ok()?;
                    KvError::WrongLeader {
                        leader: (id != 0).then_some(id),
                    }
                }
                "TIMEOUT" => KvError::Timeout,
                _ => return None,
            }))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stepwise_resp::{Decoder, ReplyDecoder};

    #[test]
    fn ops_and_results_round_trip() {
        let s = Some(Session { client: 5, seq: 9 });
        let ops = [
            (Op::get("k"), None),
            (Op::put_any("k", "v"), s),
            (Op::put("k", "", 3), s),
            (Op::append("k", "x y"), s),
            (Op::append_return("k", "z"), s),
            (Op::delete("k"), s),
            (Op::incr("k", -12), s),
        ];
        for (op, session) in ops {
            let mut buf = BytesMut::new();
            let token = Bytes::from_static(b"s3cret");
            encode_op(&op, session, &token, &mut buf);
            let request = Decoder::default().decode(&mut buf).unwrap().unwrap();
            assert_eq!(decode_op(&request, b"s3cret"), Some((op.clone(), session)));
            // Any other token: not a forwarding request at all.
            assert_eq!(decode_op(&request, b"guess"), None);
        }
        let results = [
            Ok(KvOutput::Value {
                value: "a".into(),
                version: 4,
            }),
            Ok(KvOutput::Written { version: 1 }),
            Ok(KvOutput::Appended {
                old: "".into(),
                version: 2,
            }),
            Ok(KvOutput::Deleted { existed: true }),
            Ok(KvOutput::Deleted { existed: false }),
            Ok(KvOutput::Number {
                value: -5,
                version: 7,
            }),
            Err(KvError::NoKey),
            Err(KvError::Version),
            Err(KvError::NotInteger),
            Err(KvError::Overflow),
            Err(KvError::WrongLeader { leader: Some(3) }),
            Err(KvError::WrongLeader { leader: None }),
        ];
        for result in results {
            let mut buf = BytesMut::new();
            encode_result(&result).encode(&mut buf);
            let reply = ReplyDecoder::default().decode(&mut buf).unwrap().unwrap();
            assert_eq!(decode_result(&reply), Some(result));
        }
    }

    #[test]
    fn malformed_forwarding_requests_are_refused() {
        for args in [
            vec!["STEPWISE.OP", "t", "x", "1", "GET", "k"],
            vec!["STEPWISE.OP", "t", "1", "1", "PUT", "k"],
            vec!["STEPWISE.OP", "t", "1", "1", "NOPE", "k"],
            vec!["STEPWISE.OP", "1", "1", "GET", "k"],
        ] {
            assert_eq!(decode_op(&Request::new(args), b"t"), None);
        }
        assert_eq!(decode_result(&Reply::error("ERR nope")), None);
    }

    #[test]
    fn end_of_session_requests_round_trip_and_need_the_token() {
        let token = Bytes::from_static(b"s3cret");
        let mut buf = BytesMut::new();
        encode_end(77, &token, &mut buf);
        let request = Decoder::default().decode(&mut buf).unwrap().unwrap();
        assert!(request.name().eq_ignore_ascii_case(END_COMMAND));
        assert_eq!(decode_end(&request, b"s3cret"), Some(77));
        assert_eq!(decode_end(&request, b"guess"), None);
        for args in [
            vec!["STEPWISE.END", "s3cret"],
            vec!["STEPWISE.END", "s3cret", "x"],
            vec!["STEPWISE.END", "s3cret", "0"],
            vec!["STEPWISE.END", "s3cret", "1", "2"],
        ] {
            assert_eq!(decode_end(&Request::new(args), b"s3cret"), None);
        }
    }
}
