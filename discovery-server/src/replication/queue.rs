//! A peer's bounded queue of replication tasks.
//!
//! Pushing never blocks and never waits for the network: a request handler
//! pays for a short mutex and a push. When the queue is full the oldest
//! heartbeat makes room (a later heartbeat of the same instance supersedes
//! it); only when no heartbeat is left does the oldest change go. Every
//! task dropped is counted.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use cloud_protocol::eureka::InstanceInfo;
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::wire::Action;

/// One change to send to a peer.
#[derive(Debug, Clone)]
pub(crate) struct Task {
    pub(crate) action: Action,
    /// The instance as it was right after the change.
    pub(crate) info: Arc<InstanceInfo>,
    /// When it was queued (old tasks are discarded, as Eureka does).
    pub(crate) queued_at: Instant,
}

/// The bounded queue.
#[derive(Debug)]
pub(crate) struct TaskQueue {
    tasks: Mutex<VecDeque<Task>>,
    capacity: usize,
    len: AtomicUsize,
    dropped: AtomicU64,
    ready: Notify,
}

impl TaskQueue {
    pub(crate) fn new(capacity: usize) -> TaskQueue {
        TaskQueue {
            tasks: Mutex::new(VecDeque::new()),
            capacity: capacity.max(1),
            len: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
            ready: Notify::new(),
        }
    }

    /// Queues `task`, dropping the oldest heartbeat (or, failing that, the
    /// oldest task) when full.
    pub(crate) fn push(&self, task: Task) {
        {
            let mut tasks = self.tasks.lock();
            if tasks.len() >= self.capacity {
                let victim = tasks.iter().position(|t| t.action == Action::Heartbeat).or(
                    if task.action == Action::Heartbeat {
                        None
                    } else {
                        Some(0)
                    },
                );
                self.dropped.fetch_add(1, Ordering::Relaxed);
                match victim {
                    Some(i) => {
                        tasks.remove(i);
                    }
                    // Full of changes: the new heartbeat is the one to go.
                    None => return,
                }
            }
            tasks.push_back(task);
            self.len.store(tasks.len(), Ordering::Relaxed);
        }
        self.ready.notify_one();
    }

    /// Puts tasks back at the front (a batch to retry), keeping the bound.
    pub(crate) fn requeue_front(&self, batch: Vec<Task>) {
        let mut tasks = self.tasks.lock();
        for task in batch.into_iter().rev() {
            if tasks.len() >= self.capacity {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            tasks.push_front(task);
        }
        self.len.store(tasks.len(), Ordering::Relaxed);
    }

    /// Takes up to `max` tasks from the front.
    pub(crate) fn take(&self, max: usize) -> Vec<Task> {
        let mut tasks = self.tasks.lock();
        let n = max.min(tasks.len());
        let batch: Vec<Task> = tasks.drain(..n).collect();
        self.len.store(tasks.len(), Ordering::Relaxed);
        batch
    }

    /// Tasks waiting.
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Tasks dropped so far for lack of room.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Waits until a task is queued (returns at once if one is waiting).
    pub(crate) async fn wait_for_task(&self) {
        loop {
            let notified = self.ready.notified();
            if self.len() > 0 {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(action: Action, id: &str) -> Task {
        Task {
            action,
            info: Arc::new(InstanceInfo {
                instance_id: id.into(),
                app: "APP".into(),
                ..InstanceInfo::default()
            }),
            queued_at: Instant::now(),
        }
    }

    fn ids(q: &TaskQueue) -> Vec<String> {
        q.take(100)
            .into_iter()
            .map(|t| format!("{}:{}", t.action.as_str(), t.info.instance_id))
            .collect()
    }

    #[tokio::test]
    async fn a_full_queue_drops_the_oldest_heartbeat_first() {
        let q = TaskQueue::new(3);
        q.push(task(Action::Register, "a"));
        q.push(task(Action::Heartbeat, "b"));
        q.push(task(Action::Heartbeat, "c"));
        q.push(task(Action::Cancel, "d"));
        assert_eq!(q.dropped(), 1);
        assert_eq!(ids(&q), ["Register:a", "Heartbeat:c", "Cancel:d"]);
    }

    #[tokio::test]
    async fn a_queue_full_of_changes_drops_new_heartbeats_then_the_oldest_change() {
        let q = TaskQueue::new(2);
        q.push(task(Action::Register, "a"));
        q.push(task(Action::Register, "b"));
        q.push(task(Action::Heartbeat, "a"));
        assert_eq!(ids(&q), ["Register:a", "Register:b"]);
        q.push(task(Action::Register, "a"));
        q.push(task(Action::Register, "b"));
        q.push(task(Action::Cancel, "c"));
        assert_eq!(ids(&q), ["Register:b", "Cancel:c"]);
        assert_eq!(q.dropped(), 2);
        assert_eq!(q.len(), 0);
    }

    #[tokio::test]
    async fn a_batch_put_back_goes_first_in_its_order() {
        let q = TaskQueue::new(10);
        q.push(task(Action::Register, "a"));
        q.push(task(Action::Register, "b"));
        let batch = q.take(1);
        q.push(task(Action::Register, "c"));
        q.requeue_front(batch);
        assert_eq!(ids(&q), ["Register:a", "Register:b", "Register:c"]);
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_wakes_on_push() {
        let q = Arc::new(TaskQueue::new(10));
        let waiter = tokio::spawn({
            let q = Arc::clone(&q);
            async move { q.wait_for_task().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        q.push(task(Action::Heartbeat, "a"));
        tokio::time::timeout(std::time::Duration::from_secs(1), waiter)
            .await
            .unwrap()
            .unwrap();
    }
}
