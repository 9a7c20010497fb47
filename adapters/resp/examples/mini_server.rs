//! A tiny blocking Redis-compatible server over `std::net`, to try the codec with
//! real clients (redis-cli, redis-benchmark). Not the stepwise KV server: one
//! in-memory map, a thread per connection, a handful of commands.
//!
//! ```text
//! cargo run --release -p stepwise-resp --example mini_server -- 127.0.0.1:16380
//! redis-benchmark -p 16380 -t ping_inline,ping_mbulk,set,get -P 16 -q
//! ```

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use stepwise_resp::{Decoder, Limits, Reply, Request, parse_integer};

type Store = Arc<Mutex<HashMap<Bytes, Bytes>>>;

fn execute(store: &Store, request: &Request) -> Reply {
    let arity = |n| request.check_arity(n);
    let result = match &*request.name_upper() {
        b"PING" => match request.params() {
            [] => Ok(Reply::pong()),
            [message] => Ok(Reply::Bulk(message.clone())),
            _ => Err(Reply::wrong_arity(b"ping")),
        },
        b"ECHO" => arity(2).map(|()| Reply::Bulk(request.args[1].clone())),
        b"SET" => arity(3).map(|()| {
            let mut store = store.lock().expect("no thread panics holding the lock");
            // Copy the value out of the read buffer so the map does not pin it.
            let value = Bytes::copy_from_slice(&request.args[2]);
            store.insert(Bytes::copy_from_slice(&request.args[1]), value);
            Reply::ok()
        }),
        b"GET" => arity(2).map(|()| {
            let store = store.lock().expect("no thread panics holding the lock");
            Reply::bulk_or_null(store.get(&request.args[1]).cloned())
        }),
        b"DEL" => arity(-2).map(|()| {
            let mut store = store.lock().expect("no thread panics holding the lock");
            let removed = request
                .params()
                .iter()
                .filter(|k| store.remove(*k).is_some())
                .count();
            Reply::integer(removed as i64)
        }),
        b"INCR" => arity(2).and_then(|()| {
            let mut store = store.lock().expect("no thread panics holding the lock");
            let key = &request.args[1];
            let old = store.get(key).map_or(Ok(0), |v| parse_integer(v))?;
            let new = old
                .checked_add(1)
                .ok_or_else(|| Reply::error("ERR increment or decrement would overflow"))?;
            store.insert(key.clone(), Bytes::from(new.to_string()));
            Ok(Reply::integer(new))
        }),
        // redis-benchmark asks for `save` and `appendonly` at start; say nothing is set.
        b"CONFIG" => Ok(Reply::Array(vec![])),
        _ => Err(request.unknown_command()),
    };
    result.unwrap_or_else(|error| error)
}

fn serve(store: Store, mut stream: TcpStream) -> std::io::Result<()> {
    let mut decoder = Decoder::new(Limits {
        max_bulk_len: 16 << 20,
        ..Limits::default()
    });
    let mut input = BytesMut::with_capacity(16 * 1024);
    let mut output = BytesMut::with_capacity(16 * 1024);
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        input.extend_from_slice(&chunk[..n]);
        loop {
            match decoder.decode(&mut input) {
                Ok(Some(request)) => execute(&store, &request).encode(&mut output),
                Ok(None) => break,
                Err(error) => {
                    error.to_reply().encode(&mut output);
                    stream.write_all(&output)?;
                    return Ok(());
                }
            }
        }
        stream.write_all(&output)?;
        output.clear();
    }
}

fn main() -> std::io::Result<()> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:16380".to_string());
    let listener = TcpListener::bind(&address)?;
    eprintln!("listening on {address}");
    let store = Store::default();
    for stream in listener.incoming() {
        let stream = stream?;
        let store = store.clone();
        std::thread::spawn(move || {
            if let Err(error) = serve(store, stream) {
                eprintln!("connection: {error}");
            }
        });
    }
    Ok(())
}
