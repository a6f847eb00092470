//! Shutdown and drain: SIGTERM and Ctrl-C become one cancellation token
//! that every long-lived task and open stream listens to, and a process gets
//! a drain deadline after which it exits anyway, saying what was still open.
//!
//! - [`Shutdown`]: the token, cheap to clone. A server ends its streams and
//!   long polls on [`Shutdown::triggered`].
//! - [`OpenWork`]: a guard that names a piece of work in flight (an open
//!   stream, a blocking task, a connection) for the drain log line.
//!   [`spawn_blocking`] runs a blocking closure under such a guard.
//! - [`run_service`]: what a binary's `main` calls: a runtime, the signal
//!   handlers, the drain deadline, and an exit code. Threads stuck in
//!   blocking work do not keep the process alive after the deadline.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

/// The default drain deadline: 10 seconds.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// A process's shutdown signal. Clones share it.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
}

impl Shutdown {
    /// A shutdown that nothing has triggered yet.
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Triggers it when `signal` completes (for libraries that take a
    /// shutdown future, such as a test's oneshot receiver).
    pub fn from_future(signal: impl Future<Output = ()> + Send + 'static) -> Shutdown {
        let shutdown = Shutdown::new();
        let trigger = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = signal => trigger.trigger(),
                () = trigger.triggered() => {}
            }
        });
        shutdown
    }

    /// The cancellation token (children of it are cancelled with it).
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }

    /// Starts the shutdown.
    pub fn trigger(&self) {
        self.token.cancel();
    }

    /// Whether the shutdown has started.
    pub fn is_triggered(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Completes when the shutdown starts.
    pub fn triggered(&self) -> impl Future<Output = ()> + Send + 'static {
        self.token.clone().cancelled_owned()
    }

    /// Triggers the shutdown on SIGTERM or Ctrl-C (SIGINT). Needs a tokio
    /// runtime.
    pub fn trigger_on_signals(&self) -> tokio::task::JoinHandle<()> {
        let shutdown = self.clone();
        tokio::spawn(async move {
            tokio::select! {
                name = termination_signal() => {
                    tracing::info!(signal = name, "shutdown signal received; draining");
                    shutdown.trigger();
                }
                () = shutdown.triggered() => {}
            }
        })
    }
}

/// Waits for SIGTERM or Ctrl-C and names the one that came.
async fn termination_signal() -> &'static str {
    let ctrl_c = async {
        match tokio::signal::ctrl_c().await {
            Ok(()) => "SIGINT",
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for Ctrl-C");
                std::future::pending().await
            }
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
                "SIGTERM"
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending().await
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<&'static str>();
    tokio::select! {
        name = ctrl_c => name,
        name = terminate => name,
    }
}

static NEXT_WORK: AtomicU64 = AtomicU64::new(0);
static OPEN_WORK: Mutex<BTreeMap<u64, (&'static str, String)>> = Mutex::new(BTreeMap::new());

/// Names a piece of work in flight until dropped, so that a drain that runs
/// out of time can say what was still open.
#[derive(Debug)]
#[must_use = "the work counts as open only while the guard lives"]
pub struct OpenWork {
    id: u64,
}

impl OpenWork {
    /// Registers work of `kind` (`"watch stream"`, `"blocking task"`) with
    /// a `detail` for the log (`"git fetch origin"`, a peer address).
    pub fn begin(kind: &'static str, detail: impl fmt::Display) -> OpenWork {
        let id = NEXT_WORK.fetch_add(1, Ordering::Relaxed);
        OPEN_WORK.lock().insert(id, (kind, detail.to_string()));
        OpenWork { id }
    }
}

impl Drop for OpenWork {
    fn drop(&mut self) {
        OPEN_WORK.lock().remove(&self.id);
    }
}

/// What is open now, one entry per kind with its count and up to three
/// details: `["blocking task x1 (git fetch)", "watch stream x2 (...)"]`.
pub fn open_work() -> Vec<String> {
    let mut by_kind: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    for (kind, detail) in OPEN_WORK.lock().values() {
        by_kind.entry(kind).or_default().push(detail.clone());
    }
    by_kind
        .into_iter()
        .map(|(kind, details)| {
            let shown: Vec<&str> = details.iter().take(3).map(String::as_str).collect();
            let more = if details.len() > 3 { ", ..." } else { "" };
            format!("{kind} x{} ({}{more})", details.len(), shown.join(", "))
        })
        .collect()
}

/// Runs blocking `work` on tokio's blocking pool, registered as open work
/// named `detail` while it runs.
pub fn spawn_blocking<R, F>(detail: impl fmt::Display, work: F) -> tokio::task::JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let guard = OpenWork::begin("blocking task", detail);
    tokio::task::spawn_blocking(move || {
        let _guard = guard;
        work()
    })
}

/// How a service run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The service returned `Ok` (after a shutdown or on its own).
    Stopped,
    /// The service returned an error or panicked.
    Failed,
    /// The drain deadline passed before the service finished.
    DrainTimedOut,
}

impl Outcome {
    /// The process exit code: 0 when stopped, 1 otherwise.
    pub fn exit_code(self) -> ExitCode {
        match self {
            Outcome::Stopped => ExitCode::SUCCESS,
            Outcome::Failed | Outcome::DrainTimedOut => ExitCode::FAILURE,
        }
    }
}

/// Runs `service` until it returns, or, once SIGTERM or Ctrl-C triggered
/// the shutdown it is given, for at most `drain` more; then logs what was
/// still open and gives up on it. Builds the multi-thread runtime itself so
/// that threads stuck in blocking work cannot hold the process: the runtime
/// is shut down without waiting for them.
///
/// ```no_run
/// use cloud_runtime::shutdown::{run_service, DEFAULT_DRAIN_TIMEOUT};
///
/// fn main() -> std::process::ExitCode {
///     run_service(DEFAULT_DRAIN_TIMEOUT, |shutdown| async move {
///         shutdown.triggered().await; // serve until SIGTERM
///         Ok::<(), std::io::Error>(())
///     })
///     .exit_code()
/// }
/// ```
pub fn run_service<F, Fut, E>(drain: Duration, service: F) -> Outcome
where
    F: FnOnce(Shutdown) -> Fut,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: fmt::Display + Send + 'static,
{
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return Outcome::Failed;
        }
    };
    let shutdown = Shutdown::new();
    let outcome = runtime.block_on(async {
        shutdown.trigger_on_signals();
        let mut task = tokio::spawn(service(shutdown.clone()));
        let finished = tokio::select! {
            joined = &mut task => Some(joined),
            () = shutdown.triggered() => {
                tokio::time::timeout(drain, &mut task).await.ok()
            }
        };
        match finished {
            Some(Ok(Ok(()))) => Outcome::Stopped,
            Some(Ok(Err(e))) => {
                tracing::error!(error = %e, "service failed");
                Outcome::Failed
            }
            Some(Err(e)) => {
                tracing::error!(error = %e, "service task panicked");
                Outcome::Failed
            }
            None => {
                let open = open_work();
                tracing::error!(
                    drain_timeout = ?drain,
                    open = %if open.is_empty() { "nothing registered".to_owned() } else { open.join("; ") },
                    "drain deadline passed; exiting with work still open"
                );
                task.abort();
                Outcome::DrainTimedOut
            }
        }
    });
    runtime.shutdown_timeout(Duration::from_millis(100));
    if outcome != Outcome::DrainTimedOut {
        tracing::info!("stopped");
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_work_lists_what_is_in_flight_until_dropped() {
        let a = OpenWork::begin("test stream", "alpha");
        let b = OpenWork::begin("test stream", "beta");
        let listed = open_work();
        assert!(
            listed
                .iter()
                .any(|l| l.starts_with("test stream x2 (alpha, beta")),
            "{listed:?}"
        );
        drop((a, b));
        assert!(!open_work().iter().any(|l| l.starts_with("test stream")));
    }

    #[test]
    fn a_stuck_blocking_task_does_not_outlive_the_drain_deadline() {
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let outcome = run_service(Duration::from_millis(200), move |shutdown| async move {
            let stuck = spawn_blocking("stuck on purpose", move || {
                // Holds its thread until the test ends.
                let _ = release_rx.recv();
            });
            shutdown.trigger();
            let _ = stuck.await;
            Ok::<(), std::io::Error>(())
        });
        assert_eq!(outcome, Outcome::DrainTimedOut);
        let _ = release_tx.send(());
    }

    #[test]
    fn a_service_that_drains_in_time_stops_cleanly() {
        let outcome = run_service(Duration::from_secs(5), |shutdown| async move {
            let waiter = tokio::spawn(shutdown.triggered());
            shutdown.trigger();
            waiter.await.map_err(|e| e.to_string())
        });
        assert_eq!(outcome, Outcome::Stopped);
        assert_eq!(outcome.exit_code(), ExitCode::SUCCESS);
    }

    #[tokio::test]
    async fn from_future_triggers_when_the_future_completes() {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let shutdown = Shutdown::from_future(async {
            let _ = rx.await;
        });
        assert!(!shutdown.is_triggered());
        let _ = tx.send(());
        tokio::time::timeout(Duration::from_secs(5), shutdown.triggered())
            .await
            .expect("triggered");
    }
}
