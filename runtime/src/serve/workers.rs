//! I/O worker threads: each runs its own single-threaded tokio runtime, and
//! a connection handed to one is served there from start to end.
//!
//! A proxy spends most of its time waking tasks: the client connection's
//! task, the upstream connection's task, the timers. On a work-stealing
//! runtime those wake-ups cross threads; on a worker they stay on one
//! thread with no synchronisation, which is how nginx and Netty's event
//! loops serve. Connections are handed out in turn, so a few long-lived
//! keep-alive connections still spread over every worker.
//!
//! With [`WorkerAffinity::Auto`] (the default) and as many workers as the
//! process may use CPUs, each worker is pinned to one of those CPUs, as
//! nginx's `worker_cpu_affinity auto`. Unpinned, the kernel at times wakes
//! two busy workers on one CPU, where each waits for the other's turn (a
//! scheduler tick, 4 ms at `HZ=250`) while the other CPU runs something
//! else; every request on the waiting worker's connections waits with it.
//! Pinned, a worker only ever waits for work that is not the proxy's. With
//! more CPUs than workers (a container limited by a CPU quota rather than a
//! CPU set, say) no worker is pinned: which CPUs the process gets is the
//! kernel's to decide.

use std::sync::atomic::{AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};
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

/// `server.io-worker-affinity`: whether each I/O worker is pinned to a CPU
/// (see the [module docs](self)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorkerAffinity {
    /// One worker per CPU when there are as many workers as CPUs the
    /// process may use; otherwise none pinned.
    #[default]
    Auto,
    /// No worker pinned.
    None,
}

/// The CPU each worker is pinned to, in worker order, or `None` when none is
/// pinned: with `Auto`, two or more workers and exactly as many `allowed`
/// CPUs (those the process may run on).
pub fn placement(
    affinity: WorkerAffinity,
    workers: usize,
    allowed: &[usize],
) -> Option<Vec<usize>> {
    match affinity {
        WorkerAffinity::Auto if workers > 1 && allowed.len() == workers => Some(allowed.to_vec()),
        WorkerAffinity::Auto | WorkerAffinity::None => None,
    }
}

impl Workers {
    /// Starts `count` workers (at least one), their threads named
    /// `{name}-{i}`, pinned to CPUs as [`placement`] says. A CPU that
    /// cannot be set (a sandbox that forbids it) is logged and the worker
    /// runs unpinned.
    pub fn start(count: usize, name: &str, affinity: WorkerAffinity) -> std::io::Result<Workers> {
        let count = count.max(1);
        let cpus = match affinity {
            WorkerAffinity::None => None,
            WorkerAffinity::Auto => match cpu::allowed() {
                Ok(allowed) => placement(affinity, count, &allowed),
                Err(e) => {
                    tracing::warn!(error = %e, "the CPUs this process may use are unknown; I/O workers run unpinned");
                    None
                }
            },
        };
        if let Some(cpus) = &cpus {
            tracing::info!(
                ?cpus,
                "I/O workers pinned one per CPU (`server.io-worker-affinity: none` to leave them to the kernel)"
            );
        }
        let stop = CancellationToken::new();
        let mut handles = Vec::with_capacity(count);
        for i in 0..count {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            handles.push(runtime.handle().clone());
            let stopped = stop.clone();
            let pin = cpus.as_ref().and_then(|c| c.get(i).copied());
            let spawned = std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    if let Some(cpu) = pin
                        && let Err(e) = cpu::pin_current_thread(cpu)
                    {
                        tracing::warn!(cpu, error = %e, "could not pin an I/O worker; it runs unpinned");
                    }
                    runtime.block_on(stopped.cancelled())
                });
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

/// The calling thread's CPU set.
mod cpu {
    #[cfg(target_os = "linux")]
    use nix::{sched::CpuSet, unistd::Pid};

    /// The CPUs the calling thread may run on, in ascending order.
    #[cfg(target_os = "linux")]
    pub(super) fn allowed() -> std::io::Result<Vec<usize>> {
        let set = nix::sched::sched_getaffinity(Pid::from_raw(0))?;
        // `is_set` fails only for a CPU at or past `count()`.
        Ok((0..CpuSet::count())
            .filter(|&c| set.is_set(c).unwrap_or(false))
            .collect())
    }

    /// Restricts the calling thread to `cpu`.
    #[cfg(target_os = "linux")]
    pub(super) fn pin_current_thread(cpu: usize) -> std::io::Result<()> {
        let mut set = CpuSet::new();
        set.set(cpu)?;
        nix::sched::sched_setaffinity(Pid::from_raw(0), &set)?;
        Ok(())
    }

    /// Elsewhere none are known, so no worker is pinned.
    #[cfg(not(target_os = "linux"))]
    pub(super) fn allowed() -> std::io::Result<Vec<usize>> {
        Ok(Vec::new())
    }

    #[cfg(not(target_os = "linux"))]
    pub(super) fn pin_current_thread(_cpu: usize) -> std::io::Result<()> {
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "threads are pinned on Linux only",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tasks_run_on_the_workers_in_turn() {
        let workers =
            Workers::start(2, "test-worker", WorkerAffinity::None).expect("workers start");
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
        let workers = Workers::start(1, "test-stop", WorkerAffinity::Auto).expect("workers start");
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

    #[test]
    fn workers_are_pinned_only_when_they_match_the_cpus_one_to_one() {
        use WorkerAffinity::{Auto, None};
        assert_eq!(placement(Auto, 2, &[0, 1]), Some(vec![0, 1]));
        // A CPU set need not start at 0 or be contiguous (`taskset -c 2,5`).
        assert_eq!(placement(Auto, 2, &[2, 5]), Some(vec![2, 5]));
        assert_eq!(placement(None, 2, &[0, 1]), Option::None);
        // More CPUs than workers: the kernel picks (a CPU quota, say).
        assert_eq!(placement(Auto, 2, &[0, 1, 2, 3]), Option::None);
        // More workers than CPUs: pinning would stack them.
        assert_eq!(placement(Auto, 4, &[0, 1]), Option::None);
        // One worker on one CPU: nothing to choose.
        assert_eq!(placement(Auto, 1, &[3]), Option::None);
    }

    /// The CPUs each worker's thread may run on, in worker order.
    #[cfg(target_os = "linux")]
    async fn cpus_of(workers: &Workers, count: usize) -> Vec<Vec<usize>> {
        let mut seen = Vec::new();
        for _ in 0..count {
            let cpus = workers.next().spawn(async { cpu::allowed() }).await;
            seen.push(
                cpus.expect("the task ran")
                    .expect("the thread's CPUs are read"),
            );
        }
        seen
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn with_one_worker_per_cpu_each_runs_on_its_own_cpu() {
        let allowed = cpu::allowed().expect("the process's CPUs are read");
        let n = allowed.len();
        let pinned = Workers::start(n, "test-pin", WorkerAffinity::Auto).expect("workers start");
        let want: Vec<Vec<usize>> = if n > 1 {
            allowed.iter().map(|&c| vec![c]).collect()
        } else {
            vec![allowed.clone()]
        };
        assert_eq!(cpus_of(&pinned, n).await, want);
        let free = Workers::start(n, "test-free", WorkerAffinity::None).expect("workers start");
        assert_eq!(cpus_of(&free, n).await, vec![allowed.clone(); n]);
        let more = Workers::start(n + 1, "test-more", WorkerAffinity::Auto).expect("workers start");
        assert_eq!(cpus_of(&more, n + 1).await, vec![allowed; n + 1]);
    }
}
