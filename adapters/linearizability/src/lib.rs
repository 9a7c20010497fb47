//! A linearizability checker for histories of concurrent operations, in the style of
//! [Porcupine](https://github.com/anishathalye/porcupine), the checker the MIT 6.5840 labs
//! use.
//!
//! Record what clients did (each operation's input, output, call time and return time), pick
//! a [`Model`] (a sequential specification), and [`check`] whether some order of the
//! operations, consistent with real time, is a legal run of the model.
//!
//! ```
//! use std::time::Duration;
//! use stepwise_linearizability::models::{KvErr, VersionedInput, VersionedKv, VersionedOutput};
//! use stepwise_linearizability::{CheckResult, History, check};
//!
//! let mut history = History::new();
//! // Client 1 puts "a" at version 0 while client 2 reads the key.
//! let put = history.begin(1, VersionedInput::put("k", "a", 0), 10);
//! let get = history.begin(2, VersionedInput::get("k"), 12);
//! history.end(get, VersionedOutput::get("a", 1), 15).unwrap();
//! history.end(put, VersionedOutput::put(KvErr::Ok), 20).unwrap();
//! // The read may take effect after the concurrent put: linearizable.
//! let model = VersionedKv::new();
//! assert_eq!(check(&model, &history, Some(Duration::from_secs(1))), CheckResult::Ok);
//!
//! // A read after the put returned must see it; this one does not.
//! let stale = history.begin(2, VersionedInput::get("k"), 30);
//! history.end(stale, VersionedOutput::get("", 0), 31).unwrap();
//! let result = check(&model, &history, None);
//! let violation = result.violation().expect("stale read");
//! assert_eq!(violation.op(), stale.0);
//! // `Display` explains it: the operation, the longest linearization found, the state.
//! println!("{violation}");
//! ```
//!
//! # Semantics
//!
//! * **Times** are `u64` in any unit, one clock per history. At equal timestamps a call
//!   sorts before a return (as in Porcupine), so an operation called at the instant another
//!   returns counts as concurrent with it.
//! * **Pending operations** (no output, or no return time: see [`Operation`]) may have taken
//!   effect at any time after their call, or never; the model gets `None` as their output.
//!   A client that timed out records its operation as pending.
//! * **Partitions**: operations are split by [`Model::partition`] (by key for the
//!   key/value models) and each partition is checked on its own, in key order.
//! * **Timeout**: one budget for the whole check; when it expires the result is
//!   [`CheckResult::Unknown`]. The labs use 1 s and treat `Unknown` as a pass.
//! * **Violations**: the [`Violation`] names the partition, the operation that cannot be
//!   linearized before it returns, and the shortest prefix of the partition's history that
//!   is already not linearizable, with the longest linearization the search found.
//!
//! # Models
//!
//! [`models`] has the lab's models: [`VersionedKv`](models::VersionedKv) (2025: Get/Put with
//! versions, `ErrMaybe`), [`Kv`](models::Kv) (2020-2024: Get/Put/Append and 2024's
//! Append-with-return, plus Delete and Incr with Redis-style integer replies) and a
//! [`Register`](models::Register). Implementing [`Model`] for your
//! own object takes an initial state and a step function; say which operations are reads
//! ([`Model::is_read_only`]) to make checking read-heavy histories much faster.
//!
//! # Recording from threads
//!
//! [`History`] takes explicit times (a simulator's virtual clock). From real threads use
//! [`SharedHistory`], which timestamps with a monotonic clock under its lock:
//!
//! ```
//! use stepwise_linearizability::models::{Register, RegisterInput, RegisterOutput};
//! use stepwise_linearizability::{SharedHistory, check};
//! use std::sync::Mutex;
//!
//! let history = SharedHistory::new();
//! let register = Mutex::new(0u32);
//! std::thread::scope(|s| {
//!     for client in 0..3u32 {
//!         let (history, register) = (&history, &register);
//!         s.spawn(move || {
//!             let id = history.begin(u64::from(client), RegisterInput::Write(client));
//!             *register.lock().unwrap() = client;
//!             history.end(id, RegisterOutput::Ack).unwrap();
//!             let id = history.begin(u64::from(client), RegisterInput::Read);
//!             let value = *register.lock().unwrap();
//!             history.end(id, RegisterOutput::Value(value)).unwrap();
//!         });
//!     }
//! });
//! assert!(check(&Register::new(0), &history.into_history(), None).is_ok());
//! ```
//!
//! # Algorithm and cost
//!
//! Wing & Gong's search with Lowe's memoization, as in Porcupine: call and return events in a
//! doubly linked list; linearize a called operation if the model allows it and the
//! configuration (linearized set, state) is new, backtrack on reaching the return of an
//! operation not yet linearized. On top of that: a legal read is linearized without trying
//! alternatives (moving a read earlier never hurts), candidates are tried earliest return
//! first, states are interned, a configuration is stored as its front (first pending return)
//! plus one bit per operation open across it, so memory stays proportional to the
//! concurrency rather than the history length, and a configuration is skipped when the same
//! one without some pending operation was already seen (pending operations are optional).
//! When a partition has pending writes, two searches run in turn with doubling step
//! budgets: one tries pending writes as early as possible, one as late as possible.
//!
//! Checking is NP-complete in general. Histories like the labs' (thousands of operations,
//! about ten clients and keys) take milliseconds (see the `random` tests). Two things can
//! make the search exponential, as in Porcupine and Knossos, so pass a timeout:
//! * many concurrent blind writes to one key whose order is only revealed much later (for
//!   example ten clients appending to the same key for thousands of operations);
//! * many pending operations that change the state: each can take effect at any later
//!   point, and every unobserved choice multiplies the search. A few per key (a crashed
//!   client's last request) are cheap; one in ten operations on an append-heavy key is not,
//!   and proving a violation after a dozen pending writes on one key takes about a second.
#![forbid(unsafe_code)]

mod check;
mod hash;
mod history;
mod memo;
mod model;
pub mod models;
mod search;
mod violation;

pub use check::{CheckResult, check};
pub use history::{History, HistoryError, OpId, Operation, SharedHistory};
pub use model::Model;
pub use violation::Violation;
