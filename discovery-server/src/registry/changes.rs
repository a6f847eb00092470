//! The recently-changed queue behind `/apps/delta`, bounded in memory.
//!
//! Every change is kept for the retention window (3 minutes by default),
//! but only the latest change of an instance keeps the instance record:
//! `/apps/delta` lists the latest state of each changed instance, so an
//! earlier change of the same instance is needed only for its time and
//! lease (self-preservation counts young registrations from them). The
//! record is an `Arc` shared with the registry, so a change costs no copy.
//!
//! The records the queue keeps are counted in approximate bytes; past the
//! budget the oldest changes leave early. When one that still held a record
//! leaves before its window ended, the queue is *incomplete* until that
//! window would have ended, and the registry answers `/apps/delta` with
//! every registered instance instead (see `Registry::delta`).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use cloud_protocol::eureka::{InstanceInfo, LeaseInfo};

/// One change.
pub(super) struct Change {
    /// When it happened (epoch millis).
    pub(super) at: i64,
    seq: u64,
    /// Upper-case application name.
    pub(super) app: Arc<str>,
    /// Instance id.
    pub(super) id: Arc<str>,
    /// The instance as the change left it; `None` once a later change of
    /// the same instance has replaced it.
    pub(super) instance: Option<Arc<InstanceInfo>>,
    /// The lease as the change left it.
    pub(super) lease: LeaseInfo,
    /// Bytes counted for it.
    bytes: usize,
}

/// Bytes counted for a change without its record: the entry and its keys.
fn entry_bytes(app: &str, id: &str) -> usize {
    std::mem::size_of::<Change>() + app.len() + id.len() + 2 * std::mem::size_of::<usize>() * 2
}

/// Figures of the queue, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeltaQueueStats {
    /// Changes in the queue.
    pub changes: usize,
    /// Approximate bytes the queue holds.
    pub bytes: usize,
    /// Changes that left the queue before their window ended because the
    /// queue was over its byte budget, since start.
    pub dropped_early: u64,
    /// True while `/apps/delta` lists every registered instance because
    /// changes of the window were dropped.
    pub incomplete: bool,
}

/// The queue.
#[derive(Default)]
pub(super) struct ChangeQueue {
    changes: VecDeque<Change>,
    next_seq: u64,
    /// Sequence number of the latest change of each instance, by app and id.
    latest: HashMap<Arc<str>, HashMap<Arc<str>, u64>>,
    bytes: usize,
    /// Until when (epoch millis, inclusive) a dropped change would still
    /// have been in the window; `None` when none was dropped.
    incomplete_until: Option<i64>,
    dropped_early: u64,
}

impl ChangeQueue {
    /// Records a change at `at`, replacing the record the previous change
    /// of that instance kept, then drops the oldest changes while the
    /// queue holds more than `max_bytes`. `retention_millis` is the window.
    pub(super) fn push(
        &mut self,
        at: i64,
        instance: &Arc<InstanceInfo>,
        lease: LeaseInfo,
        retention_millis: i64,
        max_bytes: usize,
    ) {
        let (app, id) = self.keys(&instance.app, &instance.instance_id);
        self.release(&app, &id);
        let seq = self.next_seq;
        self.next_seq += 1;
        let bytes = entry_bytes(&app, &id) + instance.approx_size_bytes();
        self.bytes += bytes;
        self.latest
            .entry(Arc::clone(&app))
            .or_default()
            .insert(Arc::clone(&id), seq);
        self.changes.push_back(Change {
            at,
            seq,
            app,
            id,
            instance: Some(Arc::clone(instance)),
            lease,
            bytes,
        });
        while self.bytes > max_bytes {
            let Some(change) = self.pop_front() else {
                break;
            };
            if change.instance.is_some() && change.at >= at - retention_millis {
                // Its window has not ended: some client may not have seen it.
                self.dropped_early += 1;
                let until = change.at + retention_millis;
                self.incomplete_until = Some(self.incomplete_until.map_or(until, |u| u.max(until)));
            }
        }
    }

    /// Drops changes older than `horizon`.
    pub(super) fn purge(&mut self, horizon: i64) {
        while self.changes.front().is_some_and(|c| c.at < horizon) {
            self.pop_front();
        }
    }

    /// Lets the latest change of an instance drop its record (before the
    /// registry changes the record in place, or records a newer change).
    pub(super) fn release(&mut self, app: &str, id: &str) {
        let Some(seq) = self.latest.get(app).and_then(|m| m.get(id)).copied() else {
            return;
        };
        let Some(front) = self.changes.front().map(|c| c.seq) else {
            return;
        };
        let index = usize::try_from(seq - front).unwrap_or(usize::MAX);
        if let Some(change) = self.changes.get_mut(index)
            && change.instance.take().is_some()
        {
            let record = change.bytes - entry_bytes(&change.app, &change.id);
            change.bytes -= record;
            self.bytes -= record;
        }
    }

    /// The changes, oldest first.
    pub(super) fn iter(&self) -> impl DoubleEndedIterator<Item = &Change> {
        self.changes.iter()
    }

    /// True when changes that were still in the window at `now` were
    /// dropped, so the queue cannot tell every change of the window.
    pub(super) fn is_incomplete(&self, now: i64) -> bool {
        self.incomplete_until.is_some_and(|until| now <= until)
    }

    /// Figures at `now`.
    pub(super) fn stats(&self, now: i64) -> DeltaQueueStats {
        DeltaQueueStats {
            changes: self.changes.len(),
            bytes: self.bytes,
            dropped_early: self.dropped_early,
            incomplete: self.is_incomplete(now),
        }
    }

    /// The keys of an instance, shared with the latest-change map when it
    /// knows them.
    fn keys(&self, app: &str, id: &str) -> (Arc<str>, Arc<str>) {
        match self.latest.get_key_value(app) {
            Some((app_key, ids)) => (
                Arc::clone(app_key),
                ids.get_key_value(id)
                    .map_or_else(|| Arc::from(id), |(k, _)| Arc::clone(k)),
            ),
            None => (Arc::from(app), Arc::from(id)),
        }
    }

    fn pop_front(&mut self) -> Option<Change> {
        let change = self.changes.pop_front()?;
        self.bytes -= change.bytes;
        if let Some(ids) = self.latest.get_mut(&change.app)
            && ids.get(&change.id) == Some(&change.seq)
        {
            ids.remove(&change.id);
            if ids.is_empty() {
                self.latest.remove(&change.app);
            }
        }
        Some(change)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RETENTION: i64 = 180_000;

    fn record(id: &str, metadata_entries: usize) -> Arc<InstanceInfo> {
        let mut info = InstanceInfo {
            instance_id: id.into(),
            app: "A".into(),
            ..InstanceInfo::default()
        };
        info.metadata
            .extend((0..metadata_entries).map(|i| (format!("k{i}"), "v".repeat(100))));
        Arc::new(info)
    }

    fn payloads(q: &ChangeQueue) -> Vec<(String, i64)> {
        q.iter()
            .filter_map(|c| c.instance.as_ref().map(|i| (i.instance_id.clone(), c.at)))
            .collect()
    }

    #[test]
    fn only_the_latest_change_of_an_instance_keeps_its_record() {
        let mut q = ChangeQueue::default();
        let big = record("a", 100);
        for at in 0..200 {
            q.push(
                at,
                &record("a", 100),
                LeaseInfo::default(),
                RETENTION,
                usize::MAX,
            );
        }
        assert_eq!(q.stats(200).changes, 200);
        assert_eq!(payloads(&q), vec![("a".to_owned(), 199)]);
        // One record and 200 small entries, not 200 records.
        assert!(q.stats(200).bytes < big.approx_size_bytes() + 200 * 256);
        assert!(q.stats(200).bytes > big.approx_size_bytes());
    }

    #[test]
    fn the_byte_budget_drops_the_oldest_and_marks_the_window_incomplete() {
        let budget = 5 * record("x", 10).approx_size_bytes();
        let mut q = ChangeQueue::default();
        for i in 0..20 {
            q.push(
                1000 + i,
                &record(&format!("i{i}"), 10),
                LeaseInfo::default(),
                RETENTION,
                budget,
            );
            assert!(q.stats(1000).bytes <= budget);
        }
        let kept = payloads(&q);
        assert!(kept.len() >= 3 && kept.len() < 20, "{kept:?}");
        assert_eq!(kept.last().map(|k| k.1), Some(1019));
        let stats = q.stats(1019);
        assert!(stats.incomplete);
        assert_eq!(stats.dropped_early, 20 - kept.len() as u64);
        // Incomplete until the last dropped change would have left the window.
        let last_dropped = 1000 + 19 - kept.len() as i64;
        assert!(q.is_incomplete(last_dropped + RETENTION));
        assert!(!q.is_incomplete(last_dropped + RETENTION + 1));
    }

    #[test]
    fn dropping_replaced_changes_or_expired_ones_loses_nothing() {
        let one = record("a", 10).approx_size_bytes();
        let mut q = ChangeQueue::default();
        // Changes of one instance: the replaced ones are small and leave
        // first; the window stays complete.
        for at in 0..1000 {
            q.push(
                at,
                &record("a", 10),
                LeaseInfo::default(),
                RETENTION,
                3 * one,
            );
        }
        assert!(!q.stats(1000).incomplete);
        assert_eq!(payloads(&q), vec![("a".to_owned(), 999)]);
        // A change past its window is not a loss either.
        let mut q = ChangeQueue::default();
        q.push(
            0,
            &record("old", 10),
            LeaseInfo::default(),
            RETENTION,
            usize::MAX,
        );
        q.push(
            RETENTION + 1,
            &record("new", 10),
            LeaseInfo::default(),
            RETENTION,
            one + 500,
        );
        assert_eq!(payloads(&q), vec![("new".to_owned(), RETENTION + 1)]);
        assert!(!q.is_incomplete(RETENTION + 1));
    }

    #[test]
    fn purge_forgets_the_latest_change_it_drops() {
        let mut q = ChangeQueue::default();
        q.push(
            0,
            &record("a", 0),
            LeaseInfo::default(),
            RETENTION,
            usize::MAX,
        );
        q.purge(1);
        assert_eq!(q.stats(1), DeltaQueueStats::default());
        // A later change of the same instance is recorded afresh.
        q.push(
            5,
            &record("a", 0),
            LeaseInfo::default(),
            RETENTION,
            usize::MAX,
        );
        assert_eq!(payloads(&q), vec![("a".to_owned(), 5)]);
    }
}
