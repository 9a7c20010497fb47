//! Coordinator-worker transport: TCP on 127.0.0.1 or a Unix socket, carrying
//! length-prefixed postcard frames.
//!
//! A frame is a little-endian `u32` length followed by that many bytes of postcard. On
//! accept the coordinator sends [`Down::Hello`] with the protocol version and the job; the
//! rest are the core's messages.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
#[cfg(unix)]
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use stepwise_mr::{ToCoordinator, ToWorker};

/// Version of [`Down`] and [`Up`]; a worker refuses a coordinator with another one.
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest frame accepted (messages are small; this bounds what a bad peer can make us
/// allocate).
pub const MAX_FRAME: usize = 16 << 20;

/// Everything a worker needs to know about the job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    /// Application name (see [`crate::mr::apps::build`]).
    pub app: String,
    /// Streaming app: the map command.
    pub mapper: Option<String>,
    /// Streaming app: the reduce command.
    pub reducer: Option<String>,
    /// Multiplies the lab test apps' sleeps and stalls (1.0 = the lab's timing).
    pub time_scale: f64,
    /// Absolute directory for intermediate and output files.
    pub output_dir: String,
    /// Absolute directory against which relative input file names are resolved (the
    /// coordinator's working directory).
    pub input_dir: String,
}

/// Coordinator to worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Down {
    /// First frame on every connection.
    Hello {
        /// [`PROTOCOL_VERSION`].
        version: u32,
        /// The job.
        job: JobSpec,
    },
    /// A core message.
    Msg(ToWorker),
}

/// Worker to coordinator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Up {
    /// A core message.
    Msg(ToCoordinator),
}

/// Where the coordinator listens: `HOST:PORT`, or `unix:PATH` (also any value containing a
/// `/`) for a Unix socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addr {
    /// A TCP address such as `127.0.0.1:5840`.
    Tcp(String),
    /// A Unix socket path.
    Unix(PathBuf),
}

impl std::str::FromStr for Addr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(path) = s.strip_prefix("unix:") {
            return Ok(Addr::Unix(PathBuf::from(path)));
        }
        if s.contains('/') {
            return Ok(Addr::Unix(PathBuf::from(s)));
        }
        if !s.contains(':') {
            return Err(format!(
                "`{s}` is not an address: use HOST:PORT (e.g. 127.0.0.1:5840) or unix:PATH"
            ));
        }
        Ok(Addr::Tcp(s.to_owned()))
    }
}

impl std::fmt::Display for Addr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Addr::Tcp(a) => f.write_str(a),
            Addr::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// A connection to the coordinator or to one worker.
#[derive(Debug)]
pub enum Conn {
    /// TCP.
    Tcp(TcpStream),
    /// Unix socket.
    #[cfg(unix)]
    Unix(UnixStream),
}

impl Conn {
    /// Connects to `addr`, retrying refused connections until `patience` has passed.
    pub fn connect(addr: &Addr, patience: Duration) -> Result<Conn> {
        let deadline = Instant::now() + patience;
        loop {
            let attempt = match addr {
                Addr::Tcp(a) => TcpStream::connect(a.as_str()).map(|s| {
                    let _ = s.set_nodelay(true);
                    Conn::Tcp(s)
                }),
                #[cfg(unix)]
                Addr::Unix(p) => UnixStream::connect(p).map(Conn::Unix),
                #[cfg(not(unix))]
                Addr::Unix(_) => bail!("Unix sockets are not supported on this platform"),
            };
            match attempt {
                Ok(conn) => return Ok(conn),
                Err(e) if Instant::now() < deadline => {
                    tracing::debug!("connect to {addr}: {e}; retrying");
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("cannot reach the coordinator at {addr}"));
                }
            }
        }
    }

    /// A second handle to the same connection (one thread reads, another writes).
    pub fn try_clone(&self) -> io::Result<Conn> {
        Ok(match self {
            Conn::Tcp(s) => Conn::Tcp(s.try_clone()?),
            #[cfg(unix)]
            Conn::Unix(s) => Conn::Unix(s.try_clone()?),
        })
    }

    /// Closes both directions (wakes up a thread blocked reading).
    pub fn shutdown(&self) {
        let _ = match self {
            Conn::Tcp(s) => s.shutdown(Shutdown::Both),
            #[cfg(unix)]
            Conn::Unix(s) => s.shutdown(Shutdown::Both),
        };
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.read(buf),
            #[cfg(unix)]
            Conn::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.write(buf),
            #[cfg(unix)]
            Conn::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Tcp(s) => s.flush(),
            #[cfg(unix)]
            Conn::Unix(s) => s.flush(),
        }
    }
}

/// A listening socket. A Unix socket file is removed when this is dropped.
#[derive(Debug)]
pub enum Listener {
    /// TCP.
    Tcp(TcpListener),
    /// Unix socket and its path.
    #[cfg(unix)]
    Unix(UnixListener, PathBuf),
}

impl Listener {
    /// Binds `addr`. A stale Unix socket file (nobody listening) is replaced.
    pub fn bind(addr: &Addr) -> Result<Listener> {
        match addr {
            Addr::Tcp(a) => {
                let l = TcpListener::bind(a.as_str())
                    .with_context(|| format!("cannot listen on {a}"))?;
                Ok(Listener::Tcp(l))
            }
            #[cfg(unix)]
            Addr::Unix(p) => {
                if p.exists() && UnixStream::connect(p).is_err() {
                    let _ = std::fs::remove_file(p);
                }
                let l = UnixListener::bind(p)
                    .with_context(|| format!("cannot listen on unix:{}", p.display()))?;
                Ok(Listener::Unix(l, p.clone()))
            }
            #[cfg(not(unix))]
            Addr::Unix(_) => bail!("Unix sockets are not supported on this platform"),
        }
    }

    /// The address workers should connect to (with the real port if 0 was asked).
    pub fn local_addr(&self) -> Result<Addr> {
        Ok(match self {
            Listener::Tcp(l) => Addr::Tcp(l.local_addr()?.to_string()),
            #[cfg(unix)]
            Listener::Unix(_, p) => Addr::Unix(p.clone()),
        })
    }

    /// Waits for the next connection.
    pub fn accept(&self) -> io::Result<Conn> {
        Ok(match self {
            Listener::Tcp(l) => {
                let (s, _) = l.accept()?;
                let _ = s.set_nodelay(true);
                Conn::Tcp(s)
            }
            #[cfg(unix)]
            Listener::Unix(l, _) => Conn::Unix(l.accept()?.0),
        })
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Listener::Unix(_, p) = self {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Writes one frame.
pub fn write_frame<T: Serialize>(w: &mut impl Write, msg: &T) -> Result<()> {
    let body = postcard::to_stdvec(msg).context("encode frame")?;
    let len = u32::try_from(body.len()).context("frame too large")?;
    let mut buf = Vec::with_capacity(4 + body.len());
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&body);
    w.write_all(&buf)?;
    w.flush()?;
    Ok(())
}

/// Reads one frame; `Ok(None)` at a clean end of stream.
pub fn read_frame<T: DeserializeOwned>(r: &mut impl Read) -> Result<Option<T>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        bail!("frame of {len} bytes is larger than the limit of {MAX_FRAME}");
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    Ok(Some(
        postcard::from_bytes(&body).context("malformed frame")?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use stepwise_mr::{Finished, Task, TaskId};

    #[test]
    fn frames_round_trip_and_bad_frames_are_errors() {
        let msgs = vec![
            Up::Msg(ToCoordinator::Request {
                id: 3,
                finished: Some(Finished {
                    task: TaskId::Reduce(2),
                    attempt: 9,
                }),
            }),
            Up::Msg(ToCoordinator::Failed {
                task: TaskId::Map(1),
                attempt: 1,
                reason: "x".into(),
            }),
        ];
        let mut buf = Vec::new();
        for m in &msgs {
            write_frame(&mut buf, m).unwrap();
        }
        let mut r = &buf[..];
        for m in &msgs {
            assert_eq!(read_frame::<Up>(&mut r).unwrap().as_ref(), Some(m));
        }
        assert_eq!(read_frame::<Up>(&mut r).unwrap(), None);

        let down = Down::Msg(ToWorker::Assign {
            request: 1,
            attempt: 2,
            task: Task::Map {
                index: 0,
                file: "f".into(),
                n_reduce: 10,
            },
        });
        let mut buf = Vec::new();
        write_frame(&mut buf, &down).unwrap();
        assert_eq!(read_frame::<Down>(&mut &buf[..]).unwrap(), Some(down));

        let huge = (u32::MAX).to_le_bytes();
        assert!(read_frame::<Up>(&mut &huge[..]).is_err());
        let garbage = [3, 0, 0, 0, 0xff, 0xff, 0xff];
        assert!(read_frame::<Up>(&mut &garbage[..]).is_err());
        let truncated = [9, 0, 0, 0, 0];
        assert!(read_frame::<Up>(&mut &truncated[..]).is_err());
    }

    #[test]
    fn addresses_parse() {
        assert_eq!("127.0.0.1:0".parse(), Ok(Addr::Tcp("127.0.0.1:0".into())));
        assert_eq!("unix:mr.sock".parse(), Ok(Addr::Unix("mr.sock".into())));
        assert_eq!("/tmp/x.sock".parse(), Ok(Addr::Unix("/tmp/x.sock".into())));
        assert!("localhost".parse::<Addr>().is_err());
    }
}
