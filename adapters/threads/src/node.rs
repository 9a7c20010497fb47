//! One node on its own thread: [`spawn`], its [`NodeHandle`] and its [`Inbox`].

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use stepwise_host::{Driver, DriverStats, HostInput, Machine, Outlet, Storage};
use stepwise_raft::{Message, NodeId};

use crate::network::Transport;

/// How a node thread runs. Build with `Options::default()` and the `with_*` methods.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// Wall time per tick. Default 10 ms, what the Raft defaults assume.
    pub tick: Duration,
    /// Commands the inbox holds before peers' messages are dropped and clients wait.
    /// Default 4096.
    pub inbox_capacity: usize,
    /// At most this many commands are stepped before one flush (group commit). Default 256.
    pub max_batch: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            tick: Duration::from_millis(10),
            inbox_capacity: 4096,
            max_batch: 256,
        }
    }
}

impl Options {
    /// Sets [`tick`](Self::tick).
    pub fn with_tick(mut self, tick: Duration) -> Self {
        self.tick = tick;
        self
    }

    /// Sets [`inbox_capacity`](Self::inbox_capacity) (at least 1).
    pub fn with_inbox_capacity(mut self, capacity: usize) -> Self {
        self.inbox_capacity = capacity.max(1);
        self
    }

    /// Sets [`max_batch`](Self::max_batch) (at least 1).
    pub fn with_max_batch(mut self, max: usize) -> Self {
        self.max_batch = max.max(1);
        self
    }
}

/// Why a node thread stopped other than by [`NodeHandle::shutdown`].
#[derive(Debug)]
pub enum NodeError {
    /// The storage failed; the batch was dropped unsent and the node stopped
    /// (restart it from its storage).
    Storage(Box<dyn std::error::Error + Send + Sync>),
    /// The node thread panicked (a bug in the machine).
    Panicked,
}

impl std::fmt::Display for NodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NodeError::Storage(e) => write!(f, "storage failed: {e}"),
            NodeError::Panicked => f.write_str("node thread panicked"),
        }
    }
}

impl std::error::Error for NodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            NodeError::Storage(e) => Some(&**e),
            NodeError::Panicked => None,
        }
    }
}

/// The node is not running (stopped, or failed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stopped;

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("node is not running")
    }
}

impl std::error::Error for Stopped {}

enum Command<R> {
    Receive { from: NodeId, msg: Message },
    Request(R),
    Stop,
}

/// The way into a running node: peers' messages and clients' requests. Cheap to clone.
pub struct Inbox<R> {
    tx: SyncSender<Command<R>>,
}

impl<R> Clone for Inbox<R> {
    fn clone(&self) -> Self {
        Inbox {
            tx: self.tx.clone(),
        }
    }
}

impl<R> std::fmt::Debug for Inbox<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Inbox")
    }
}

impl<R: Send> Inbox<R> {
    /// Delivers a message from peer `from`, never blocking: returns `false` if it was
    /// dropped because the inbox is full or the node stopped (Raft copes with loss).
    pub fn deliver(&self, from: NodeId, msg: Message) -> bool {
        match self.tx.try_send(Command::Receive { from, msg }) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        }
    }

    /// Submits a client request, waiting while the inbox is full.
    pub fn submit(&self, request: R) -> Result<(), Stopped> {
        self.tx.send(Command::Request(request)).map_err(|_| Stopped)
    }
}

/// Owns a running node thread. Dropping it stops the node (as
/// [`shutdown`](NodeHandle::shutdown) does) and waits for the thread.
pub struct NodeHandle<M: Machine, S> {
    id: NodeId,
    inbox: Inbox<M::Request>,
    stats: Arc<Mutex<DriverStats>>,
    thread: Option<JoinHandle<Result<(M, S), NodeError>>>,
}

impl<M: Machine, S> std::fmt::Debug for NodeHandle<M, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeHandle")
            .field("id", &self.id)
            .field("running", &self.is_running())
            .finish()
    }
}

/// Starts `machine` on a new thread named `stepwise-node-<id>`.
///
/// The thread waits for commands or the next tick, steps everything waiting (up to
/// [`Options::max_batch`]) plus a tick when one is due, and flushes the batch through a
/// [`Driver`]: persistence to `storage` with one sync, then messages to `transport` and
/// events to `events`, in order. `storage` must hold the state `machine` was built from.
/// `events` runs on the node thread: it must not block for long.
///
/// If a flush fails the thread logs the error and stops; [`NodeHandle::shutdown`] then
/// returns it.
pub fn spawn<M, S, T, F>(
    id: NodeId,
    machine: M,
    storage: S,
    transport: T,
    events: F,
    options: Options,
) -> NodeHandle<M, S>
where
    M: Machine,
    S: Storage + Send + 'static,
    T: Transport,
    F: FnMut(M::Event) + Send + 'static,
{
    let (tx, rx) = mpsc::sync_channel(options.inbox_capacity.max(1));
    let stats = Arc::new(Mutex::new(DriverStats::default()));
    let shared = Arc::clone(&stats);
    let thread = std::thread::Builder::new()
        .name(format!("stepwise-node-{id}"))
        .spawn(move || {
            let driver = Driver::new(machine, storage);
            let outlet = ThreadOutlet { transport, events };
            run(id, driver, rx, outlet, &options, &shared)
        })
        // Failing to start a thread means the process is out of resources; nothing to
        // fall back to.
        .expect("failed to spawn a node thread");
    NodeHandle {
        id,
        inbox: Inbox { tx },
        stats,
        thread: Some(thread),
    }
}

impl<M: Machine, S> NodeHandle<M, S> {
    /// The node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// A way in for peers' messages and requests (hand it to a [`Network`](crate::Network)).
    pub fn inbox(&self) -> Inbox<M::Request> {
        self.inbox.clone()
    }

    /// Submits a client request, waiting while the inbox is full.
    pub fn submit(&self, request: M::Request) -> Result<(), Stopped> {
        self.inbox.submit(request)
    }

    /// Whether the thread is still running.
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// The driver's counters as of the last flush.
    pub fn stats(&self) -> DriverStats {
        *self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stops the node after the batch in progress (flushed, so everything it persisted is
    /// durable), waits for the thread, and returns the machine and the storage. Commands
    /// still queued are dropped.
    pub fn shutdown(mut self) -> Result<(M, S), NodeError> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(M, S), NodeError> {
        let Some(thread) = self.thread.take() else {
            return Err(NodeError::Panicked);
        };
        // Fails only if the thread already ended (after a storage error).
        let _ = self.inbox.tx.send(Command::Stop);
        thread.join().unwrap_or(Err(NodeError::Panicked))
    }
}

impl<M: Machine, S> Drop for NodeHandle<M, S> {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.stop();
        }
    }
}

struct ThreadOutlet<T, F> {
    transport: T,
    events: F,
}

impl<E, T: Transport, F: FnMut(E)> Outlet<E> for ThreadOutlet<T, F> {
    fn send(&mut self, to: NodeId, msg: Message) {
        self.transport.send(to, msg);
    }

    fn event(&mut self, event: E) {
        (self.events)(event);
    }
}

fn run<M, S, T, F>(
    id: NodeId,
    mut driver: Driver<M, S>,
    rx: Receiver<Command<M::Request>>,
    mut outlet: ThreadOutlet<T, F>,
    options: &Options,
    stats: &Mutex<DriverStats>,
) -> Result<(M, S), NodeError>
where
    M: Machine,
    S: Storage,
    T: Transport,
    F: FnMut(M::Event),
{
    tracing::debug!(node = id, "node thread started");
    let mut next_tick = Instant::now() + options.tick;
    let mut stop = false;
    while !stop {
        let wake = driver
            .machine()
            .wake_at()
            .map_or(next_tick, |at| at.min(next_tick));
        let wait = wake.saturating_duration_since(Instant::now());
        let mut command = match rx.recv_timeout(wait) {
            Ok(command) => Some(command),
            Err(RecvTimeoutError::Timeout) => None,
            // Every handle is gone (it sends Stop when dropped, so this is unexpected).
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let mut taken = 0;
        while let Some(c) = command.take() {
            match c {
                Command::Receive { from, msg } => driver.step(HostInput::Receive { from, msg }),
                Command::Request(r) => driver.step(HostInput::Request(r)),
                Command::Stop => {
                    stop = true;
                    break;
                }
            }
            taken += 1;
            if taken < options.max_batch {
                command = rx.try_recv().ok();
            }
        }
        let now = Instant::now();
        if now >= next_tick {
            driver.step(HostInput::Tick);
            next_tick += options.tick;
            if next_tick <= now {
                // Far behind (a long sync, a stalled machine): skip the missed ticks
                // instead of firing them in a burst, which would shorten timeouts.
                next_tick = now + options.tick;
            }
        }
        if let Err(e) = driver.flush(&mut outlet) {
            tracing::error!(node = id, error = %e, "storage failed; stopping the node");
            return Err(NodeError::Storage(Box::new(e)));
        }
        *stats.lock().unwrap_or_else(PoisonError::into_inner) = driver.stats();
    }
    tracing::debug!(node = id, "node thread stopped");
    Ok(driver.into_parts())
}
