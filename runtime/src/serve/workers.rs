//! I/O worker threads: each runs its own single-threaded tokio runtime, and
//! a connection handed to one is served there from start to end.
//!
//! A proxy spends most of its time waking tasks: the client connection's
//! task, the upstream connection's task, the timers. On a work-stealing
//! runtime those wake-ups cross threads; on a worker they stay on one
//! thread with no synchronisation, which is how nginx and Netty's event
//! loops serve. Connections are handed out in turn, so a few long-lived
//! keep-alive connections still spread over every worker.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

/// A set of I/O worker threads (see the [module docs](self)). Dropping it
/// stops the threads; tasks still running on them are dropped.
#[derive(Debug)]
pub struct Workers {
    handles: Vec<Handle>,
    next: AtomicUsize,
    stop: CancellationToken,
}

impl Workers {
    /// Starts `count` workers (at least one), their threads named
    /// `{name}-{i}`.
    pub fn start(count: usize, name: &str) -> std::io::Result<Workers> {
        let stop = CancellationToken::new();
        let mut handles = Vec::with_capacity(count.max(1));
        for i in 0..count.max(1) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            handles.push(runtime.handle().clone());
            let stopped = stop.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || runtime.block_on(stopped.cancelled()));
            if let Err(e) = spawned {
                stop.cancel();
                return Err(e);
            }
        }
        Ok(Workers {
            handles,
            next: AtomicUsize::new(0),
            stop,
        })
    }

    /// The runtime of the next worker in turn.
    pub fn next(&self) -> &Handle {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        &self.handles[i]
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The default worker count: one per CPU the process may use.
pub fn default_count() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tasks_run_on_the_workers_in_turn() {
        let workers = Workers::start(2, "test-worker").expect("workers start");
        let mut names = Vec::new();
        for _ in 0..4 {
            let name = workers
                .next()
                .spawn(async { std::thread::current().name().map(str::to_owned) })
                .await
                .expect("the task ran");
            names.push(name.expect("worker threads are named"));
        }
        assert_eq!(
            names,
            [
                "test-worker-0",
                "test-worker-1",
                "test-worker-0",
                "test-worker-1"
            ]
        );
    }

    #[tokio::test]
    async fn dropping_the_workers_stops_their_tasks() {
        let workers = Workers::start(1, "test-stop").expect("workers start");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        workers.next().spawn(async move {
            let _held = tx;
            std::future::pending::<()>().await;
        });
        drop(workers);
        // The task is dropped with its runtime, and with it the sender.
        tokio::time::timeout(std::time::Duration::from_secs(10), rx)
            .await
            .expect("the worker's task was dropped in time")
            .expect_err("the task never sends");
    }
}
