//! One client connection: decode RESP requests, execute them in order, reply.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use stepwise_kv::{KvError, KvOutput, KvResult, Op, Session};
use stepwise_resp::{Decoder, Limits, Reply, Request, parse_integer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::forward;
use super::node::{Forwarder, Outcome, Shared};

/// The error a command gets when it cannot be answered in time.
pub const UNAVAILABLE: &str =
    "CLUSTERDOWN no quorum reachable in time; the command may or may not have taken effect";

/// Per-connection state.
struct Conn<'a> {
    shared: &'a Shared,
    client: u64,
    seq: u64,
    fwd: Option<Forwarder>,
}

/// Serves one client until it hangs up, sends `QUIT`, or breaks the protocol. Then, if
/// the connection wrote anything, ends its session ([`Shared::end_session`]): its client
/// id is never used again.
pub async fn serve(shared: &Arc<Shared>, stream: TcpStream) -> std::io::Result<()> {
    let mut conn = Conn {
        shared,
        client: shared.new_client(),
        seq: 0,
        fwd: None,
    };
    let result = serve_conn(&mut conn, stream).await;
    if conn.seq > 0 {
        shared.end_session(conn.client);
    }
    result
}

async fn serve_conn(conn: &mut Conn<'_>, mut stream: TcpStream) -> std::io::Result<()> {
    let shared = conn.shared;
    stream.set_nodelay(true)?;
    let mut decoder = Decoder::new(Limits {
        max_bulk_len: shared.opts.max_value.max(shared.opts.max_key),
        max_array_len: 1 << 20,
        ..Limits::default()
    });
    let mut input = BytesMut::with_capacity(16 << 10);
    let mut output = BytesMut::with_capacity(16 << 10);
    loop {
        if stream.read_buf(&mut input).await? == 0 {
            return Ok(());
        }
        // Everything pipelined so far is executed in order, answered in one write.
        let mut requests = Vec::new();
        let mut broken = None;
        loop {
            match decoder.decode(&mut input) {
                Ok(Some(request)) => requests.push(request),
                Ok(None) => break,
                Err(error) => {
                    broken = Some(error);
                    break;
                }
            }
        }
        let mut i = 0;
        while i < requests.len() {
            // A run of plain writes becomes one log entry.
            if let Some(kind) = conn.batchable(&requests[i]) {
                let run = requests[i..]
                    .iter()
                    .take_while(|r| conn.batchable(r) == Some(kind))
                    .count();
                if run >= 2 {
                    conn.write_run(&requests[i..i + run], kind, &mut output)
                        .await;
                    i += run;
                    continue;
                }
            }
            let request = &requests[i];
            i += 1;
            conn.command(request).await.encode(&mut output);
            if request.is("QUIT") {
                stream.write_all(&output).await?;
                return Ok(());
            }
        }
        if let Some(error) = broken {
            error.to_reply().encode(&mut output);
            stream.write_all(&output).await?;
            return Ok(());
        }
        if !output.is_empty() {
            stream.write_all(&output).await?;
            output.clear();
        }
    }
}

fn unavailable() -> Reply {
    Reply::error(UNAVAILABLE)
}

/// A stored value and its version.
fn present(result: &KvResult) -> Option<(Bytes, u64)> {
    match result {
        Ok(KvOutput::Value { value, version }) => Some((value.clone(), *version)),
        _ => None,
    }
}

/// The version a read saw (0 for a missing key).
fn version_of(result: &KvResult) -> u64 {
    match result {
        Ok(KvOutput::Value { version, .. }) => *version,
        _ => 0,
    }
}

impl Conn<'_> {
    async fn run(&mut self, op: Op) -> Outcome {
        let session = if op.is_read() {
            None
        } else {
            self.seq += 1;
            Some(Session {
                client: self.client,
                seq: self.seq,
            })
        };
        self.shared.execute(op, session, &mut self.fwd).await
    }

    async fn read(&mut self, key: &Bytes) -> Result<KvResult, Reply> {
        self.run(Op::get(key.clone()))
            .await
            .map_err(|_| unavailable())
    }

    fn check_key(&self, key: &[u8]) -> Result<(), Reply> {
        if key.len() > self.shared.opts.max_key {
            Err(Reply::error("ERR key too long"))
        } else {
            Ok(())
        }
    }

    fn check_value(&self, value: &[u8]) -> Result<(), Reply> {
        if value.len() > self.shared.opts.max_value {
            Err(Reply::error("ERR value too large"))
        } else {
            Ok(())
        }
    }

    /// A `SET k v` or `APPEND k v` within the limits (`Some(false)`), or a forwarded
    /// write (`Some(true)`): it can share a log entry with its neighbours of the same
    /// kind.
    fn batchable(&self, r: &Request) -> Option<bool> {
        if r.args.len() == 3
            && (r.is("SET") || r.is("APPEND"))
            && r.args[1].len() <= self.shared.opts.max_key
            && r.args[2].len() <= self.shared.opts.max_value
        {
            return Some(false);
        }
        let forwarded_write = r.name().eq_ignore_ascii_case(forward::COMMAND)
            && forward::decode_op(r, &self.shared.token).is_some_and(|(op, _)| !op.is_read());
        forwarded_write.then_some(true)
    }

    /// Runs consecutive batchable writes as one log entry and encodes their replies.
    async fn write_run(&mut self, run: &[Request], forwarded: bool, output: &mut BytesMut) {
        let mut ops = Vec::with_capacity(run.len());
        for r in run {
            if forwarded {
                ops.push(forward::decode_op(r, &self.shared.token).expect("checked by batchable"));
                continue;
            }
            let (key, value) = (r.args[1].clone(), r.args[2].clone());
            let op = if r.is("SET") {
                Op::put_any(key, value)
            } else {
                Op::append_return(key, value)
            };
            self.seq += 1;
            let session = Session {
                client: self.client,
                seq: self.seq,
            };
            ops.push((op, Some(session)));
        }
        if forwarded {
            // Executed here only, never forwarded again.
            for outcome in self.shared.execute_batch(ops, None).await {
                let result = outcome.unwrap_or(Err(KvError::Timeout));
                forward::encode_result(&result).encode(output);
            }
            return;
        }
        let outcomes = self.shared.execute_batch(ops, Some(&mut self.fwd)).await;
        for (r, outcome) in run.iter().zip(outcomes) {
            let reply = match outcome {
                Ok(Ok(KvOutput::Appended { old, .. })) => {
                    Reply::integer((old.len() + r.args[2].len()) as i64)
                }
                Ok(Ok(_)) => Reply::ok(),
                Ok(Err(e)) => kv_error(e),
                Err(_) => unavailable(),
            };
            reply.encode(output);
        }
    }

    async fn command(&mut self, request: &Request) -> Reply {
        self.dispatch(request).await.unwrap_or_else(|e| e)
    }

    async fn dispatch(&mut self, request: &Request) -> Result<Reply, Reply> {
        let arity = |n| request.check_arity(n);
        let args = &request.args;
        let name = request.name_upper();
        match &*name {
            b"PING" => match request.params() {
                [] => Ok(Reply::pong()),
                [message] => Ok(Reply::Bulk(message.clone())),
                _ => Err(Reply::wrong_arity(b"ping")),
            },
            b"ECHO" => arity(2).map(|()| Reply::Bulk(args[1].clone())),
            b"QUIT" => Ok(Reply::ok()),
            b"SELECT" => {
                arity(2)?;
                match parse_integer(&args[1])? {
                    0 => Ok(Reply::ok()),
                    _ => Err(Reply::error("ERR DB index is out of range")),
                }
            }
            b"COMMAND" => Ok(match args.get(1).map(|a| a.to_ascii_uppercase()) {
                Some(sub) if sub == b"COUNT" => Reply::integer(0),
                _ => Reply::Array(Vec::new()),
            }),
            b"CONFIG" => Ok(match args.get(1).map(|a| a.to_ascii_uppercase()) {
                // Every parameter reads as empty (`redis-benchmark` asks for `save` and
                // `appendonly` and warns without an answer).
                Some(sub) if sub == b"GET" => Reply::Array(
                    args[2..]
                        .iter()
                        .flat_map(|p| [Reply::Bulk(p.clone()), Reply::bulk("")])
                        .collect(),
                ),
                _ => Reply::Array(Vec::new()),
            }),
            b"CLIENT" => {
                arity(-2)?;
                match &*args[1].to_ascii_uppercase() {
                    b"ID" => Ok(Reply::integer((self.client >> 1) as i64)),
                    b"GETNAME" => Ok(Reply::null_bulk()),
                    _ => Ok(Reply::ok()),
                }
            }
            b"INFO" => {
                let leader = self.shared.leader();
                let role = if leader == self.shared.opts.id {
                    "master"
                } else {
                    "slave"
                };
                Ok(Reply::bulk(format!(
                    "# Server\r\nredis_version:7.0.0\r\nredis_mode:standalone\r\n\
                     # Replication\r\nrole:{role}\r\n\
                     # Stepwise\r\nstepwise_node_id:{}\r\nstepwise_leader:{leader}\r\n\
                     stepwise_client_addr:{}\r\nstepwise_sessions:{}\r\n{}",
                    self.shared.opts.id,
                    self.shared.opts.client,
                    self.shared.status().sessions(),
                    self.shared.status().info_lines(),
                )))
            }
            b"GET" => {
                arity(2)?;
                let r = self.read(&args[1]).await?;
                Ok(Reply::bulk_or_null(present(&r).map(|(v, _)| v)))
            }
            b"MGET" => {
                arity(-2)?;
                let mut out = Vec::with_capacity(args.len() - 1);
                for key in &args[1..] {
                    let r = self.read(key).await?;
                    out.push(Reply::bulk_or_null(present(&r).map(|(v, _)| v)));
                }
                Ok(Reply::Array(out))
            }
            b"EXISTS" => {
                arity(-2)?;
                let mut n = 0;
                for key in &args[1..] {
                    n += i64::from(present(&self.read(key).await?).is_some());
                }
                Ok(Reply::integer(n))
            }
            b"SET" => {
                arity(-3)?;
                if args.len() > 3 {
                    return Err(Reply::syntax_error());
                }
                self.check_key(&args[1])?;
                self.check_value(&args[2])?;
                match self
                    .run(Op::put_any(args[1].clone(), args[2].clone()))
                    .await
                {
                    Ok(Ok(_)) => Ok(Reply::ok()),
                    Ok(Err(e)) => Err(kv_error(e)),
                    Err(_) => Err(unavailable()),
                }
            }
            b"APPEND" => {
                arity(3)?;
                self.check_key(&args[1])?;
                self.check_value(&args[2])?;
                let op = Op::append_return(args[1].clone(), args[2].clone());
                match self.run(op).await {
                    Ok(Ok(KvOutput::Appended { old, .. })) => {
                        Ok(Reply::integer((old.len() + args[2].len()) as i64))
                    }
                    Ok(Ok(other)) => Err(Reply::error(format!("ERR unexpected {other:?}"))),
                    Ok(Err(e)) => Err(kv_error(e)),
                    Err(_) => Err(unavailable()),
                }
            }
            b"DEL" => {
                arity(-2)?;
                let mut n = 0;
                for key in &args[1..] {
                    match self.run(Op::delete(key.clone())).await {
                        Ok(Ok(KvOutput::Deleted { existed })) => n += i64::from(existed),
                        Ok(Ok(other)) => {
                            return Err(Reply::error(format!("ERR unexpected {other:?}")));
                        }
                        Ok(Err(e)) => return Err(kv_error(e)),
                        Err(_) => return Err(unavailable()),
                    }
                }
                Ok(Reply::integer(n))
            }
            b"INCR" | b"DECR" => {
                arity(2)?;
                let by = if &*name == b"INCR" { 1 } else { -1 };
                self.incr(&args[1], by).await
            }
            b"INCRBY" | b"DECRBY" => {
                arity(3)?;
                let by = parse_integer(&args[2])?;
                let by = if &*name == b"INCRBY" {
                    by
                } else {
                    by.checked_neg().ok_or_else(overflow)?
                };
                self.incr(&args[1], by).await
            }
            b"VGET" => {
                arity(2)?;
                let r = self.read(&args[1]).await?;
                let value = present(&r).map(|(v, _)| v);
                Ok(Reply::Array(vec![
                    Reply::bulk_or_null(value),
                    Reply::integer(version_of(&r) as i64),
                ]))
            }
            b"VPUT" => {
                arity(4)?;
                self.check_key(&args[1])?;
                self.check_value(&args[2])?;
                let version = parse_integer(&args[3])?;
                let version = u64::try_from(version).map_err(|_| Reply::not_an_integer())?;
                let op = Op::put(args[1].clone(), args[2].clone(), version);
                match self.run(op).await {
                    Ok(Ok(KvOutput::Written { version })) => Ok(Reply::integer(version as i64)),
                    Ok(Ok(other)) => Err(Reply::error(format!("ERR unexpected {other:?}"))),
                    Ok(Err(e)) => Err(kv_error(e)),
                    Err(_) => Err(unavailable()),
                }
            }
            name if name == forward::COMMAND => {
                // A follower forwarded one operation: run it here, once, and answer the
                // raw result (no further forwarding).
                // Without the cluster's token it is not a command at all.
                let Some((op, session)) = forward::decode_op(request, &self.shared.token) else {
                    return Err(request.unknown_command());
                };
                let deadline = tokio::time::Instant::now() + self.shared.opts.timeout;
                Ok(match self.shared.local(op, session, deadline).await {
                    Ok(result) => forward::encode_result(&result),
                    Err(_) => forward::encode_result(&Err(KvError::Timeout)),
                })
            }
            name if name == forward::END_COMMAND => {
                // A follower asks to end the session of its closed connection.
                let Some(client) = forward::decode_end(request, &self.shared.token) else {
                    return Err(request.unknown_command());
                };
                if self.shared.end_session_here(client).await {
                    Ok(Reply::ok())
                } else {
                    Err(kv_error(KvError::WrongLeader {
                        leader: Some(self.shared.leader()).filter(|&l| l != 0),
                    }))
                }
            }
            _ => Err(request.unknown_command()),
        }
    }

    /// INCR and its kin: one replicated increment.
    async fn incr(&mut self, key: &Bytes, by: i64) -> Result<Reply, Reply> {
        self.check_key(key)?;
        match self.run(Op::incr(key.clone(), by)).await {
            Ok(Ok(KvOutput::Number { value, .. })) => Ok(Reply::integer(value)),
            Ok(Ok(other)) => Err(Reply::error(format!("ERR unexpected {other:?}"))),
            Ok(Err(e)) => Err(kv_error(e)),
            Err(_) => Err(unavailable()),
        }
    }
}

fn overflow() -> Reply {
    Reply::error("ERR increment or decrement would overflow")
}

fn kv_error(e: KvError) -> Reply {
    match e {
        KvError::Version => Reply::error("VERSION version mismatch"),
        KvError::NoKey => Reply::error("NOKEY no such key"),
        KvError::NotInteger => Reply::not_an_integer(),
        KvError::Overflow => overflow(),
        // Stale: a retry (after a leader change) of a write whose batch already applied;
        // its own output is gone, so its outcome is reported as unknown.
        KvError::WrongLeader { .. } | KvError::Timeout | KvError::Maybe | KvError::Stale => {
            unavailable()
        }
        other => Reply::error(format!("ERR {other:?}")),
    }
}
