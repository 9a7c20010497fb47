//! kv-server as real processes on 127.0.0.1: three `kv-server` members on free ports,
//! talked to with our own RESP client (and redis-cli / redis-benchmark when installed).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use stepwise_resp::{Reply, ReplyDecoder, encode_request};

/// One cluster of kv-server processes; killed when dropped.
struct Cluster {
    raft_ports: Vec<u16>,
    client_ports: Vec<u16>,
    dir: tempfile::TempDir,
    procs: Vec<Option<Child>>,
    /// Flags for every node on top of the tests' own.
    extra: Vec<String>,
}

fn free_ports(n: usize) -> Vec<u16> {
    // Hold all listeners at once so the ports differ; released just before use.
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

fn members(ports: &[u16]) -> String {
    ports
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{}=127.0.0.1:{p}", i + 1))
        .collect::<Vec<_>>()
        .join(",")
}

impl Cluster {
    fn start(n: usize) -> Cluster {
        Self::start_with(n, &[])
    }

    /// A cluster whose nodes all get `extra` flags too.
    fn start_with(n: usize, extra: &[&str]) -> Cluster {
        let ports = free_ports(2 * n);
        let mut c = Cluster {
            raft_ports: ports[..n].to_vec(),
            client_ports: ports[n..].to_vec(),
            dir: tempfile::tempdir().unwrap(),
            procs: (0..n).map(|_| None).collect(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        for i in 0..n {
            c.spawn(i);
        }
        c
    }

    fn data(&self, i: usize) -> PathBuf {
        self.dir.path().join((i + 1).to_string())
    }

    fn spawn(&mut self, i: usize) {
        let child = Command::new(env!("CARGO_BIN_EXE_kv-server"))
            .args(["--id", &(i + 1).to_string()])
            .args(["--peers", &members(&self.raft_ports)])
            .args(["--client", &format!("127.0.0.1:{}", self.client_ports[i])])
            .args(["--client-peers", &members(&self.client_ports)])
            .arg("--data")
            .arg(self.data(i))
            .args(["--timeout-ms", "1500", "--max-value", "4096"])
            // A killed process loses nothing of what it wrote, synced or not, so the tests
            // skip fsync unless KV_SERVER_TEST_SYNC=1 (slower, and checks the sync paths).
            .args(
                std::env::var_os("KV_SERVER_TEST_SYNC")
                    .is_none()
                    .then_some("--no-sync"),
            )
            // More flags for every node, e.g. `KV_SERVER_TEST_ARGS=--no-pipelined-sync` runs
            // these tests against that mode.
            .args(
                std::env::var("KV_SERVER_TEST_ARGS")
                    .unwrap_or_default()
                    .split_whitespace(),
            )
            .args(&self.extra)
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("kv-server starts");
        self.procs[i] = Some(child);
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.procs[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn client(&self, i: usize) -> Client {
        Client::connect(self.client_ports[i])
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.procs.len() {
            self.kill(i);
        }
    }
}

/// A blocking RESP client.
struct Client {
    stream: TcpStream,
    input: BytesMut,
    decoder: ReplyDecoder,
}

impl Client {
    fn connect(port: u16) -> Client {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match TcpStream::connect(("127.0.0.1", port)) {
                Ok(stream) => {
                    stream
                        .set_read_timeout(Some(Duration::from_secs(20)))
                        .unwrap();
                    return Client {
                        stream,
                        input: BytesMut::new(),
                        decoder: ReplyDecoder::default(),
                    };
                }
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("cannot connect to port {port}: {e}"),
            }
        }
    }

    fn send(&mut self, args: &[&str]) {
        let mut out = BytesMut::new();
        encode_request(args, &mut out);
        self.stream.write_all(&out).unwrap();
    }

    /// The next reply, or `None` if the server closed the connection.
    fn recv(&mut self) -> Option<Reply> {
        loop {
            if let Some(reply) = self.decoder.decode(&mut self.input).unwrap() {
                return Some(reply);
            }
            let mut buf = [0u8; 4096];
            match self.stream.read(&mut buf) {
                Ok(0) => return None,
                Ok(n) => self.input.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("read failed: {e}"),
            }
        }
    }

    fn call(&mut self, args: &[&str]) -> Reply {
        self.send(args);
        self.recv().expect("the server answers")
    }

    /// Calls until the reply is not a "cluster down" error (an election in progress).
    fn call_ready(&mut self, args: &[&str]) -> Reply {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let reply = self.call(args);
            match &reply {
                Reply::Error(e) if e.starts_with(b"CLUSTERDOWN") && Instant::now() < deadline => {}
                _ => return reply,
            }
        }
    }
}

fn bulk(s: &str) -> Reply {
    Reply::bulk(s.to_string())
}

fn is_error_starting(reply: &Reply, prefix: &str) -> bool {
    matches!(reply, Reply::Error(e) if e.starts_with(prefix.as_bytes()))
}

#[test]
fn kv_server_commands_forwarding_errors_and_pipelining() {
    let cluster = Cluster::start(3);
    let mut c1 = cluster.client(0);
    assert_eq!(c1.call_ready(&["SET", "k", "hello"]), Reply::ok());
    // Every node answers, followers by forwarding to the leader; reads are linearizable
    // so they see the acknowledged write.
    for i in 0..3 {
        let mut c = cluster.client(i);
        assert_eq!(c.call_ready(&["GET", "k"]), bulk("hello"), "node {}", i + 1);
        assert_eq!(c.call(&["PING"]), Reply::pong());
        assert_eq!(c.call(&["ECHO", "x y"]), bulk("x y"));
    }
    let mut c2 = cluster.client(1);
    let mut c3 = cluster.client(2);
    assert_eq!(
        c2.call_ready(&["APPEND", "k", " world"]),
        Reply::integer(11)
    );
    assert_eq!(c3.call_ready(&["GET", "k"]), bulk("hello world"));
    assert_eq!(c3.call_ready(&["INCR", "n"]), Reply::integer(1));
    assert_eq!(c2.call_ready(&["INCR", "n"]), Reply::integer(2));
    assert_eq!(
        c1.call_ready(&["MGET", "k", "missing", "n"]),
        Reply::Array(vec![bulk("hello world"), Reply::NullBulk, bulk("2")])
    );
    assert_eq!(
        c2.call_ready(&["EXISTS", "k", "missing", "n"]),
        Reply::integer(2)
    );
    assert_eq!(c3.call_ready(&["DEL", "k", "missing"]), Reply::integer(1));
    assert_eq!(c1.call_ready(&["GET", "k"]), Reply::NullBulk);
    assert_eq!(c1.call_ready(&["EXISTS", "k"]), Reply::integer(0));
    assert_eq!(c1.call_ready(&["DEL", "k"]), Reply::integer(0));
    // An empty value is a value (as in Redis), not a deletion.
    assert_eq!(c2.call_ready(&["SET", "e", ""]), Reply::ok());
    assert_eq!(c3.call_ready(&["GET", "e"]), bulk(""));
    assert_eq!(c3.call_ready(&["EXISTS", "e"]), Reply::integer(1));
    // The INCR family is one replicated operation each.
    assert_eq!(c1.call_ready(&["DECR", "n"]), Reply::integer(1));
    assert_eq!(c2.call_ready(&["INCRBY", "n", "41"]), Reply::integer(42));
    assert_eq!(c3.call_ready(&["DECRBY", "n", "50"]), Reply::integer(-8));
    assert_eq!(
        c1.call_ready(&["INCRBY", "n", "9223372036854775807"]),
        Reply::integer(9223372036854775799)
    );
    assert_eq!(
        c1.call_ready(&["INCRBY", "n", "8"]),
        Reply::integer(i64::MAX)
    );
    assert_eq!(
        c1.call_ready(&["INCR", "n"]),
        Reply::error("ERR increment or decrement would overflow")
    );
    assert_eq!(c2.call_ready(&["GET", "n"]), bulk(&i64::MAX.to_string()));
    // Versioned put and get.
    assert_eq!(c2.call_ready(&["VPUT", "v", "a", "0"]), Reply::integer(1));
    assert!(is_error_starting(
        &c3.call_ready(&["VPUT", "v", "b", "0"]),
        "VERSION"
    ));
    assert_eq!(
        c3.call_ready(&["VGET", "v"]),
        Reply::Array(vec![bulk("a"), Reply::integer(1)])
    );
    // Redis's error texts.
    assert_eq!(
        c1.call(&["GET"]),
        Reply::error("ERR wrong number of arguments for 'get' command")
    );
    assert!(is_error_starting(
        &c1.call(&["NOSUCH", "a"]),
        "ERR unknown command 'NOSUCH'"
    ));
    assert_eq!(c1.call_ready(&["SET", "s", "abc"]), Reply::ok());
    assert_eq!(
        c1.call_ready(&["INCR", "s"]),
        Reply::error("ERR value is not an integer or out of range")
    );
    assert_eq!(c1.call(&["SET", "s", "abc", "NX"]), Reply::syntax_error());
    // The internal forwarding command needs the cluster's token: a client that guesses
    // cannot run operations under another client's session.
    assert!(is_error_starting(
        &c1.call(&["STEPWISE.OP", "guess", "7", "1", "PUT", "s", "forged"]),
        "ERR unknown command"
    ));
    assert_eq!(c2.call_ready(&["GET", "s"]), bulk("abc"));
    // Pipelining: 200 requests in one write, answered in order.
    let mut out = BytesMut::new();
    for i in 0..100 {
        encode_request(&["SET", &format!("p{i}"), &i.to_string()], &mut out);
        encode_request(&["GET", &format!("p{i}")], &mut out);
    }
    c2.stream.write_all(&out).unwrap();
    for i in 0..100 {
        assert_eq!(c2.recv(), Some(Reply::ok()));
        assert_eq!(c2.recv(), Some(bulk(&i.to_string())));
    }
    // A pipelined run of writes (one log entry on the leader, forwarded one by one from
    // a follower), on every node: replies in order, effects in order.
    for (i, c) in [&mut c1, &mut c2, &mut c3].into_iter().enumerate() {
        let key = format!("run{i}");
        let mut out = BytesMut::new();
        let mut want = String::new();
        for j in 0..50 {
            encode_request(&["APPEND", &key, &format!("{j};")], &mut out);
            encode_request(&["SET", &format!("{key}.{j}"), "v"], &mut out);
        }
        encode_request(&["GET", &key], &mut out);
        c.stream.write_all(&out).unwrap();
        for j in 0..50 {
            want.push_str(&format!("{j};"));
            assert_eq!(c.recv(), Some(Reply::integer(want.len() as i64)));
            assert_eq!(c.recv(), Some(Reply::ok()));
        }
        assert_eq!(c.recv(), Some(bulk(&want)));
    }
    // Malformed protocol closes that connection only.
    let mut bad = cluster.client(0);
    bad.stream.write_all(b"*1\r\n$-3\r\n").unwrap();
    assert_eq!(
        bad.recv(),
        Some(Reply::error("ERR Protocol error: invalid bulk length"))
    );
    assert_eq!(bad.recv(), None);
    // A value above --max-value (4096) is refused; the connection stays open.
    let mut big = cluster.client(0);
    let reply = big.call(&["SET", "big", &"x".repeat(5000)]);
    assert_eq!(reply, Reply::error("ERR value too large"));
    assert_eq!(big.call(&["PING"]), Reply::pong());
    // A bulk string above max(--max-key, --max-value) is a protocol error and closes
    // the connection.
    big.send(&["SET", "big", &"x".repeat(70_000)]);
    let reply = big.recv().unwrap();
    assert!(is_error_starting(&reply, "ERR Protocol error"), "{reply:?}");
    assert_eq!(big.recv(), None);
    assert_eq!(c1.call_ready(&["GET", "p7"]), bulk("7"));
}

#[test]
fn kv_server_without_quorum_fails_in_bounded_time_and_recovers_from_disk() {
    let mut cluster = Cluster::start(3);
    let mut c = cluster.client(0);
    assert_eq!(c.call_ready(&["SET", "durable", "yes"]), Reply::ok());
    // Two of three members die: no quorum.
    cluster.kill(1);
    cluster.kill(2);
    let mut c = cluster.client(0);
    let started = Instant::now();
    let reply = c.call(&["SET", "x", "1"]);
    let took = started.elapsed();
    assert!(is_error_starting(&reply, "CLUSTERDOWN"), "{reply:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let reply = c.call(&["GET", "durable"]);
    assert!(is_error_starting(&reply, "CLUSTERDOWN"), "{reply:?}");
    // Restart them from their data directories: the acknowledged write is there.
    cluster.spawn(1);
    cluster.spawn(2);
    for i in 0..3 {
        let mut c = cluster.client(i);
        assert_eq!(
            c.call_ready(&["GET", "durable"]),
            bulk("yes"),
            "node {}",
            i + 1
        );
    }
    // A node restarted after a kill keeps its data too.
    cluster.kill(0);
    cluster.spawn(0);
    let mut c = cluster.client(0);
    assert_eq!(c.call_ready(&["GET", "durable"]), bulk("yes"));
    assert!(Path::new(&cluster.data(0)).is_dir());
}

/// A numeric field of `INFO`.
fn info_field(c: &mut Client, field: &str) -> u64 {
    let Reply::Bulk(info) = c.call(&["INFO"]) else {
        panic!("INFO is a bulk string");
    };
    let info = String::from_utf8(info.to_vec()).unwrap();
    let prefix = format!("{field}:");
    info.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {field} in {info:?}"))
        .parse()
        .unwrap()
}

#[test]
fn kv_server_ends_the_sessions_of_closed_connections() {
    let cluster = Cluster::start(3);
    let mut c = cluster.client(0);
    assert_eq!(c.call_ready(&["SET", "warm", "up"]), Reply::ok());
    let leader = info_field(&mut c, "stepwise_leader") as usize - 1;
    let mut info = cluster.client(leader);
    let base = info_field(&mut info, "stepwise_sessions");
    // 50 connections, 25 to the leader and 25 to a follower (which forwards), one write
    // each: 50 more sessions while they are open.
    let follower = (leader + 1) % 3;
    let mut open: Vec<Client> = (0..50)
        .map(|i| {
            let mut c = cluster.client(if i % 2 == 0 { leader } else { follower });
            assert_eq!(c.call_ready(&["SET", &format!("k{i}"), "v"]), Reply::ok());
            c
        })
        .collect();
    assert!(info_field(&mut info, "stepwise_sessions") >= base + 50);
    // Closed, their sessions end (after the node's grace of 2 x 1.5 s) on every member:
    // the follower asks the leader to end those of its connections.
    // (A leader change in between would leave some: the bound allows a few.)
    open.clear();
    let mut infos: Vec<Client> = (0..3).map(|i| cluster.client(i)).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now: Vec<u64> = infos
            .iter_mut()
            .map(|c| info_field(c, "stepwise_sessions"))
            .collect();
        if now.iter().all(|&n| n <= base + 10) {
            break;
        }
        assert!(Instant::now() < deadline, "sessions {now:?}, base {base}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The data stays.
    assert_eq!(info.call_ready(&["GET", "k7"]), bulk("v"));
}

#[test]
fn kv_server_followers_serve_reads_with_follower_reads() {
    let cluster = Cluster::start_with(3, &["--follower-reads"]);
    let mut c = cluster.client(0);
    assert_eq!(c.call_ready(&["SET", "warm", "up"]), Reply::ok());
    let leader = info_field(&mut c, "stepwise_leader") as usize - 1;
    let follower = (leader + 1) % 3;
    let mut w = cluster.client(leader);
    let mut r = cluster.client(follower);
    // Every write acknowledged by the leader is seen by the next read on the follower.
    for i in 0..50 {
        let v = format!("v{i}");
        assert_eq!(w.call_ready(&["SET", "k", &v]), Reply::ok());
        assert_eq!(
            r.call_ready(&["GET", "k"]),
            bulk(&v),
            "read {i} on the follower"
        );
    }
    // The follower answered them from its own store, each after asking the leader for
    // the read index; the leader served none.
    assert!(info_field(&mut r, "stepwise_reads_served") >= 50);
    assert!(info_field(&mut r, "stepwise_reads_forwarded") >= 50);
    assert_eq!(info_field(&mut w, "stepwise_reads_served"), 0);
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn kv_server_with_redis_cli_and_redis_benchmark() {
    if !have("redis-cli") || !have("redis-benchmark") {
        eprintln!("NOTE: redis-cli or redis-benchmark not installed; skipping this test");
        return;
    }
    let cluster = Cluster::start(3);
    let mut c = cluster.client(0);
    assert_eq!(c.call_ready(&["SET", "warm", "up"]), Reply::ok());
    let cli = |port: u16, args: &[&str]| -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli runs");
        assert!(out.status.success(), "redis-cli {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let p = &cluster.client_ports;
    assert_eq!(cli(p[1], &["SET", "greeting", "hello"]), "OK");
    assert_eq!(cli(p[2], &["GET", "greeting"]), "hello");
    assert_eq!(cli(p[0], &["INCR", "counter"]), "1");
    assert_eq!(cli(p[0], &["PING"]), "PONG");
    let out = Command::new("redis-benchmark")
        .args(["-p", &p[1].to_string()])
        .args([
            "-t",
            "set,get,incr",
            "-n",
            "300",
            "-c",
            "10",
            "-P",
            "4",
            "-q",
        ])
        .output()
        .expect("redis-benchmark runs");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    for test in ["SET", "GET", "INCR"] {
        assert!(
            text.lines()
                .any(|l| l.contains(test) && l.contains("requests per second")),
            "{test} missing from:\n{text}"
        );
    }
    // redis-benchmark's INCR really incremented: 300 increments of one key.
    assert_eq!(cli(p[2], &["GET", "counter:__rand_int__"]), "300");
}

// ---------------------------------------------------------------------------------------
// Faults: SIGKILL of the leader and of followers (restarted from their data directories),
// SIGSTOP/SIGCONT of a node, while clients record every operation; the history must be
// linearizable (which includes: no acknowledged write is lost).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use stepwise_linearizability::models::{Kv, KvInput};
use stepwise_linearizability::{CheckResult, SharedHistory, check};

type KvHistory = SharedHistory<KvInput<String, String>, String>;

impl Cluster {
    fn pid(&self, i: usize) -> Option<u32> {
        self.procs[i].as_ref().map(Child::id)
    }

    fn signal(&self, i: usize, sig: &str) {
        let pid = self.pid(i).expect("running");
        let status = Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// The leader as some running node reports it in INFO (1-based id), if any.
    fn leader(&self) -> Option<usize> {
        for i in 0..self.procs.len() {
            if self.procs[i].is_none() {
                continue;
            }
            let Ok(stream) = TcpStream::connect(("127.0.0.1", self.client_ports[i])) else {
                continue;
            };
            stream
                .set_read_timeout(Some(Duration::from_secs(2)))
                .unwrap();
            let mut c = Client {
                stream,
                input: BytesMut::new(),
                decoder: ReplyDecoder::default(),
            };
            c.send(&["INFO"]);
            if let Some(Reply::Bulk(info)) = c.recv() {
                let info = String::from_utf8_lossy(&info).to_string();
                let leader = info
                    .lines()
                    .find_map(|l| l.strip_prefix("stepwise_leader:"))
                    .and_then(|l| l.trim().parse::<usize>().ok());
                if let Some(l) = leader.filter(|l| *l > 0) {
                    return Some(l);
                }
            }
        }
        None
    }
}

/// One client thread: random GET/SET/APPEND/INCRBY/DEL on a few keys against node `start % 3`,
/// moving to the next node when a connection breaks. An operation without a definite
/// answer stays pending in the history, and the client continues under a new id.
fn client_loop(
    me: u64,
    ports: Vec<u16>,
    history: Arc<KvHistory>,
    stop: Arc<AtomicBool>,
) -> (u64, u64) {
    let mut rng = oorandom::Rand64::new(u128::from(me) + 17);
    let mut node = me as usize % ports.len();
    let mut id = me * 1000;
    let (mut ok, mut pending) = (0, 0);
    let mut conn: Option<Client> = None;
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        if conn.is_none() {
            match TcpStream::connect(("127.0.0.1", ports[node])) {
                Ok(stream) => {
                    stream
                        .set_read_timeout(Some(Duration::from_secs(5)))
                        .unwrap();
                    conn = Some(Client {
                        stream,
                        input: BytesMut::new(),
                        decoder: ReplyDecoder::default(),
                    });
                }
                Err(_) => {
                    node = (node + 1) % ports.len();
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
            }
        }
        let c = conn.as_mut().expect("connected above");
        let key = format!("k{}", rng.rand_range(0..3));
        n += 1;
        let value = format!("{me}.{n};");
        // SETs write an integer half of the time, so INCRBY both fails (on appended
        // text, on "") and counts; DEL and INCRBY answer integers, which the model checks.
        let by = rng.rand_range(0..5) as i64 - 2;
        let (input, args): (_, Vec<String>) = match rng.rand_range(0..20) {
            0..9 => (KvInput::get(key.clone()), vec!["GET".into(), key]),
            9..11 => (
                KvInput::put(key.clone(), value.clone()),
                vec!["SET".into(), key, value],
            ),
            11..13 => {
                let value = (n * 10 + me).to_string();
                (
                    KvInput::put(key.clone(), value.clone()),
                    vec!["SET".into(), key, value],
                )
            }
            13..15 => (
                KvInput::append(key.clone(), value.clone()),
                vec!["APPEND".into(), key, value],
            ),
            15..19 => (
                KvInput::incr(key.clone(), by),
                vec!["INCRBY".into(), key, by.to_string()],
            ),
            _ => (KvInput::delete(key.clone()), vec!["DEL".into(), key]),
        };
        let integer_reply = matches!(input, KvInput::Incr { .. } | KvInput::Delete { .. });
        let op = history.begin(id, input);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut out = BytesMut::new();
        encode_request(&args, &mut out);
        let reply = match c.stream.write_all(&out) {
            Ok(()) => recv_or_none(c),
            Err(_) => None,
        };
        let output = match reply {
            Some(Reply::Bulk(v)) => Some(String::from_utf8_lossy(&v).to_string()),
            Some(Reply::NullBulk) => Some(String::new()),
            Some(Reply::Integer(n)) if integer_reply => Some(n.to_string()),
            Some(Reply::SimpleString(_) | Reply::Integer(_)) => Some(String::new()),
            Some(Reply::Error(e)) if e.starts_with(b"CLUSTERDOWN") => None,
            // INCRBY on a value that is not an integer, or out of range: the model's "".
            Some(Reply::Error(e))
                if integer_reply
                    && (e.starts_with(b"ERR value is not an integer")
                        || e.starts_with(b"ERR increment or decrement would overflow")) =>
            {
                Some(String::new())
            }
            Some(other) => panic!("unexpected reply {other:?}"),
            None => {
                conn = None;
                node = (node + 1) % ports.len();
                None
            }
        };
        match output {
            Some(out) => {
                history.end(op, out).unwrap();
                ok += 1;
            }
            None => {
                // Pending: may or may not have taken effect. Continue as a new client.
                pending += 1;
                id += 1;
            }
        }
    }
    (ok, pending)
}

fn recv_or_none(c: &mut Client) -> Option<Reply> {
    loop {
        if let Ok(Some(reply)) = c.decoder.decode(&mut c.input) {
            return Some(reply);
        }
        let mut buf = [0u8; 4096];
        match c.stream.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => c.input.extend_from_slice(&buf[..n]),
        }
    }
}

#[test]
fn kv_server_faults_sigkill_sigstop_history_is_linearizable() {
    faults_history_is_linearizable(&[]);
}

/// The same with followers serving reads themselves (`--follower-reads`): the clients'
/// GETs to followers are answered there, and the history must stay linearizable.
#[test]
fn kv_server_faults_with_follower_reads_history_is_linearizable() {
    faults_history_is_linearizable(&["--follower-reads"]);
}

/// SIGKILLs of the leader and of a follower, and a SIGSTOP, under four clients; the
/// whole history is checked.
fn faults_history_is_linearizable(extra: &[&str]) {
    let mut cluster = Cluster::start_with(3, extra);
    // Wait for a working cluster with a write to a key outside the history's (the model
    // starts with every key of the history missing).
    assert_eq!(
        cluster.client(0).call_ready(&["SET", "warmup", ""]),
        Reply::ok()
    );
    let history = Arc::new(KvHistory::new());
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4u64)
        .map(|me| {
            let (ports, history, stop) = (
                cluster.client_ports.clone(),
                Arc::clone(&history),
                Arc::clone(&stop),
            );
            std::thread::spawn(move || client_loop(me + 1, ports, history, stop))
        })
        .collect();
    let pause = |ms| std::thread::sleep(Duration::from_millis(ms));
    let mut faults = Vec::new();
    for round in 0..2 {
        // The leader dies (SIGKILL) and comes back from its data directory.
        pause(700);
        let leader = cluster.leader().map_or(round % 3, |l| l - 1);
        cluster.kill(leader);
        faults.push(format!("SIGKILL leader {}", leader + 1));
        pause(1200);
        cluster.spawn(leader);
        // A follower dies and comes back.
        pause(700);
        let follower = match cluster.leader() {
            Some(l) => l % 3, // the node after the leader (0-based)
            None => (round + 1) % 3,
        };
        cluster.kill(follower);
        faults.push(format!("SIGKILL node {}", follower + 1));
        pause(800);
        cluster.spawn(follower);
        // A node freezes (a partition from everyone's view) and resumes.
        pause(700);
        let frozen = cluster.leader().map_or(2, |l| l - 1);
        cluster.signal(frozen, "-STOP");
        faults.push(format!("SIGSTOP node {}", frozen + 1));
        pause(1500);
        cluster.signal(frozen, "-CONT");
    }
    pause(1500);
    stop.store(true, Ordering::Relaxed);
    let mut totals = (0, 0);
    for c in clients {
        let (ok, pending) = c.join().expect("client thread");
        totals.0 += ok;
        totals.1 += pending;
    }
    // Final reads through every node, recorded too: acknowledged writes are all there.
    for i in 0..3 {
        let mut c = cluster.client(i);
        for k in 0..3 {
            let key = format!("k{k}");
            let op = history.begin(900 + i as u64, KvInput::get(key.clone()));
            match c.call_ready(&["GET", &key]) {
                Reply::Bulk(v) => history.end(op, String::from_utf8_lossy(&v).into()).unwrap(),
                Reply::NullBulk => history.end(op, String::new()).unwrap(),
                other => panic!("final read: {other:?}"),
            }
        }
    }
    eprintln!(
        "faults: {faults:?}; {} completed and {} pending operations",
        totals.0, totals.1
    );
    assert!(totals.0 > 50, "clients made progress: {totals:?}");
    let history = Arc::try_unwrap(history).ok().unwrap().into_history();
    let result = check(&Kv::new(), &history, Some(Duration::from_secs(20)));
    match result {
        CheckResult::Ok => {}
        CheckResult::Unknown => eprintln!("NOTE: linearizability check timed out (inconclusive)"),
        other => panic!("not linearizable: {other:?}"),
    }
}

/// Three consecutive free ports, twice (node-to-node and client), for kv-cluster.
///
/// Below Linux's default ephemeral range (32768-60999): between this check and
/// kv-cluster's bind, the kernel hands ephemeral ports to every outgoing connection and
/// `bind(0)` of the tests running alongside; a port from that range could be taken in
/// between, and kv-cluster would then fail to start ("connection refused" here).
fn consecutive_ports() -> (u16, u16) {
    let mut rng = oorandom::Rand32::new(u64::from(std::process::id()));
    let mut found = Vec::new();
    for _ in 0..1000 {
        let base = rng.rand_range(20_000..32_000) as u16;
        let held: Vec<_> = (0..3)
            .map_while(|i| TcpListener::bind(("127.0.0.1", base + i)).ok())
            .collect();
        if held.len() == 3 && found.iter().all(|b: &u16| b.abs_diff(base) >= 3) {
            found.push(base);
            if found.len() == 2 {
                return (found[0], found[1]);
            }
        }
    }
    panic!("no free consecutive ports");
}

#[test]
fn kv_server_cluster_binary_serves_and_stops_cleanly_on_sigint() {
    let (raft, client) = consecutive_ports();
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kv-cluster"))
        .args(["--raft-port", &raft.to_string()])
        .args(["--client-port", &client.to_string()])
        .arg("--data-dir")
        .arg(dir.path())
        .arg("--no-sync")
        // (Reads on a follower are served there: the GET below may be.)
        .arg("--follower-reads")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kv-cluster starts");
    let mut c = Client::connect(client + 2);
    assert_eq!(c.call_ready(&["SET", "a", "1"]), Reply::ok());
    let mut c = Client::connect(client);
    assert_eq!(c.call_ready(&["GET", "a"]), bulk("1"));
    drop(c);
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "kv-cluster did not stop on SIGINT"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    assert!(
        stdout.contains(&format!("redis-cli -p {client}")),
        "{stdout}"
    );
    assert!(stdout.contains("kv-cluster: stopped"), "{stdout}");
    for id in 1..=3 {
        assert!(dir.path().join(id.to_string()).is_dir());
    }
}
