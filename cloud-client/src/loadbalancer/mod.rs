//! Load balancing over the instances of one service: round robin, random,
//! weighted (metadata `weight`), zone preference (metadata `zone`), sticky
//! by key, and power of two choices over peak-EWMA latency times requests
//! in flight, with outlier ejection.
//!
//! # The hot path
//! A pick loads the current pool (an immutable snapshot behind `arc-swap`,
//! replaced when the registry changes), reads atomics and clones this
//! thread's handle on the pool (`cloud_runtime::shard::ShardedArc`): no
//! lock, no allocation, and no write to memory another core writes on its
//! picks. Round robin keeps a turn counter per thread, as each of Envoy's
//! workers does: each thread goes round the instances in order, and the
//! threads together spread calls as evenly. The clock is read only when
//! some endpoint is ejected (to see whether its time is up) and, for P2C,
//! to time the call: once at the pick and once at the record, which also
//! serves the latency's decay (no read per candidate, as tower's `PeakEwma` does).
//! Calls are timed on the CPU's time-stamp counter (`quanta`, calibrated
//! once per process against the monotonic clock): a few nanoseconds a
//! read, where a system clock read costs about 20. Ejection deadlines
//! follow tokio's clock, so paused time moves them. A clock injected with
//! [`LoadBalancer::with`] serves both (tests drive a manual one).
//!
//! ```
//! use std::sync::Arc;
//! use cloud_client::discovery::ServiceInstance;
//! use cloud_client::loadbalancer::{LoadBalancer, Outcome, Strategy};
//! use cloud_protocol::eureka::{InstanceStatus, Metadata};
//!
//! let instance = |id: &str| ServiceInstance {
//!     instance_id: id.into(), app: "USERS".into(), host: "10.0.0.1".into(), port: 8080,
//!     secure: false, status: InstanceStatus::Up, zone: None, weight: 1,
//!     metadata: Metadata::new(), vip_address: None, secure_vip_address: None,
//! };
//! let lb = LoadBalancer::new(Strategy::RoundRobin);
//! lb.update(&Arc::from(vec![instance("a"), instance("b")]));
//! let first = lb.pick().unwrap();
//! let second = lb.pick().unwrap();
//! assert_ne!(first.instance().instance_id, second.instance().instance_id);
//! first.record(Outcome::Success);
//! ```

pub(crate) mod hash;
mod outlier;
mod stats;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;
use cloud_runtime::clock::Clock;
use cloud_runtime::shard::{self, CacheLine, Local, ShardedArc};
use parking_lot::Mutex;
use reqwest::Url;
use tokio::time::Instant;

pub use outlier::OutlierConfig;
use stats::EndpointStats;

use crate::discovery::ServiceInstance;

/// How to choose among the instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Strategy {
    /// Each in turn (Spring Cloud LoadBalancer's default), counted per
    /// thread.
    RoundRobin,
    /// Uniformly at random.
    Random,
    /// At random in proportion to metadata `weight` (1 when absent).
    Weighted,
    /// Round robin over the instances whose metadata `zone` is this one,
    /// or over all when none of them is available (Spring's
    /// `ZonePreferenceServiceInstanceListSupplier`).
    ZonePreference(String),
    /// The same key goes to the same instance while the pool holds
    /// ([`LoadBalancer::pick_for`]; jump consistent hashing). A pick
    /// without a key is round robin.
    Sticky,
    /// Two instances at random, the one with the lower peak-EWMA latency
    /// times (requests in flight + 1) wins (Finagle's and tower's P2C).
    PowerOfTwoChoices,
}

/// How a call to a picked instance ended, for the balancer's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// An answer that is not a server error.
    Success,
    /// A connect failure or a 5xx answer: counts toward ejection.
    Failure,
    /// Neither (cancelled, or a failure that says nothing of the instance).
    Ignored,
}

/// One instance in a pool, with its numbers.
#[derive(Debug)]
pub struct Endpoint {
    instance: ServiceInstance,
    stats: Arc<EndpointStats>,
    /// The instance's origin URL over `http` and over `https`, parsed the
    /// first time the HTTP client sends there (an endpoint is replaced when
    /// its instance changes, so these never go stale).
    origins: [OnceLock<Url>; 2],
}

impl Endpoint {
    /// The instance.
    pub fn instance(&self) -> &ServiceInstance {
        &self.instance
    }

    /// Requests in flight to it through this balancer (counted for
    /// [`Strategy::PowerOfTwoChoices`] only).
    pub fn in_flight(&self) -> u32 {
        self.stats.in_flight.load(Ordering::Relaxed)
    }

    /// Its peak-EWMA latency.
    pub fn latency_ewma(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.stats.ewma() as u64)
    }

    /// The instance's origin URL (`https` or not), made by `make` the
    /// first time and kept while the endpoint stays in the pool.
    fn origin<E>(
        &self,
        https: bool,
        make: impl FnOnce(&ServiceInstance) -> Result<Url, E>,
    ) -> Result<&Url, E> {
        let slot = &self.origins[usize::from(https)];
        if let Some(url) = slot.get() {
            return Ok(url);
        }
        let url = make(&self.instance)?;
        Ok(slot.get_or_init(|| url))
    }

    fn new(instance: ServiceInstance, stats: Arc<EndpointStats>) -> Endpoint {
        Endpoint {
            instance,
            stats,
            origins: Default::default(),
        }
    }
}

/// An immutable pool, replaced whole when the registry changes.
#[derive(Debug, Default)]
struct Pool {
    /// The list it was built from, to skip rebuilding the same one.
    source: Option<Arc<[ServiceInstance]>>,
    endpoints: Box<[Arc<Endpoint>]>,
    /// Running sums of weights, for weighted picks.
    cumulative: Box<[u64]>,
    /// Indices of the endpoints in the preferred zone.
    local: Box<[usize]>,
}

/// Picks instances of one service. Share it behind an `Arc`.
#[derive(Debug)]
pub struct LoadBalancer {
    strategy: Strategy,
    /// `strategy` is P2C (checked on every pick and record).
    p2c: bool,
    pool: ArcSwap<ShardedArc<Pool>>,
    /// Round-robin turns, one counter per thread (as each of Envoy's
    /// workers keeps its own): one shared counter would move between the
    /// cores on every pick.
    cursors: Box<[CacheLine<AtomicUsize>]>,
    /// Endpoints ejected now; picks skip the ejection check while 0.
    ejected: AtomicUsize,
    outlier: OutlierConfig,
    ticks: Ticks,
    updating: Mutex<()>,
}

/// Where the balancer's time comes from. Readings are nanoseconds since
/// the balancer was made, plus one, so that 0 can mean "not read yet" or
/// "not ejected".
#[derive(Debug)]
enum Ticks {
    /// tokio's clock for ejection deadlines; the time-stamp counter to
    /// time calls.
    Tokio {
        /// When the balancer was made, on tokio's clock.
        epoch: Instant,
        /// The time-stamp counter (or the monotonic clock where the CPU
        /// has no invariant one).
        tsc: quanta::Clock,
        /// When the balancer was made, in raw counter units.
        tsc_epoch: u64,
    },
    /// An injected clock for both.
    Injected {
        /// The clock.
        clock: Arc<dyn Clock>,
        /// When the balancer was made.
        epoch: Instant,
    },
}

impl Ticks {
    fn tokio() -> Ticks {
        let tsc = quanta::Clock::new();
        Ticks::Tokio {
            epoch: Instant::now(),
            tsc_epoch: tsc.raw(),
            tsc,
        }
    }

    /// A reading of the clock that ejection deadlines follow.
    fn deadline_clock(&self) -> u64 {
        let elapsed = match self {
            Ticks::Tokio { epoch, .. } => Instant::now().saturating_duration_since(*epoch),
            Ticks::Injected { clock, epoch } => clock.now().saturating_duration_since(*epoch),
        };
        u64::try_from(elapsed.as_nanos())
            .unwrap_or(u64::MAX)
            .saturating_add(1)
    }

    /// A reading of the clock that times calls.
    #[inline]
    fn stopwatch(&self) -> u64 {
        match self {
            Ticks::Tokio { tsc, tsc_epoch, .. } => {
                tsc.delta_as_nanos(*tsc_epoch, tsc.raw()).saturating_add(1)
            }
            Ticks::Injected { .. } => self.deadline_clock(),
        }
    }
}

/// A picked instance. Record how the call went with
/// [`record`](Self::record); dropping it records nothing.
///
/// It holds its pool through this thread's handle (a reference count of
/// the thread's own, [`ShardedArc`]), so the instance stays valid while the
/// pool is replaced. Not the pool's `arc-swap` guard: a pick lives as long
/// as its call, and with more calls in flight on a thread than `arc-swap`
/// has fast slots per thread (8), every load on that thread, the pool's and
/// the HTTP client's, took the slow path.
pub struct Picked<'a> {
    lb: &'a LoadBalancer,
    pool: Local<Pool>,
    index: usize,
    started: u64,
    done: bool,
}

impl std::fmt::Debug for Picked<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Picked")
            .field("instance", &self.instance().instance_id)
            .finish()
    }
}

impl Picked<'_> {
    /// The instance to call.
    #[inline]
    pub fn instance(&self) -> &ServiceInstance {
        &self.endpoint().instance
    }

    #[inline]
    fn endpoint(&self) -> &Endpoint {
        &self.pool.endpoints[self.index]
    }

    /// The instance's origin URL (`https` or not): made by `make` on the
    /// first call for this instance, then kept with the pool (the HTTP
    /// client rewrites each request onto it without parsing a host again).
    #[inline]
    pub(crate) fn origin<E>(
        &self,
        https: bool,
        make: impl FnOnce(&ServiceInstance) -> Result<Url, E>,
    ) -> Result<&Url, E> {
        self.endpoint().origin(https, make)
    }

    /// Records the outcome (and, for P2C, the latency).
    #[inline]
    pub fn record(mut self, outcome: Outcome) {
        self.done = true;
        self.lb.finish(self.endpoint(), self.started, outcome);
    }
}

impl Drop for Picked<'_> {
    #[inline]
    fn drop(&mut self) {
        if !self.done {
            self.lb
                .finish(self.endpoint(), self.started, Outcome::Ignored);
        }
    }
}

impl LoadBalancer {
    /// A balancer with default outlier ejection on the tokio clock.
    pub fn new(strategy: Strategy) -> Self {
        LoadBalancer::with_outlier(strategy, OutlierConfig::default())
    }

    /// A balancer with the given outlier settings; ejections follow tokio's
    /// clock (`tokio::time::pause()` moves them), calls are timed on the
    /// time-stamp counter. The first balancer of a process calibrates that
    /// counter (a few milliseconds, at most 200).
    pub fn with_outlier(strategy: Strategy, outlier: OutlierConfig) -> Self {
        LoadBalancer::build(strategy, outlier, Ticks::tokio())
    }

    /// A balancer with the given outlier settings and clock.
    pub fn with(strategy: Strategy, outlier: OutlierConfig, clock: Arc<dyn Clock>) -> Self {
        let epoch = clock.now();
        LoadBalancer::build(strategy, outlier, Ticks::Injected { clock, epoch })
    }

    fn build(strategy: Strategy, outlier: OutlierConfig, ticks: Ticks) -> Self {
        LoadBalancer {
            p2c: strategy == Strategy::PowerOfTwoChoices,
            strategy,
            pool: ArcSwap::from_pointee(ShardedArc::new(Arc::default())),
            cursors: shard::shards(),
            ejected: AtomicUsize::new(0),
            outlier,
            ticks,
            updating: Mutex::new(()),
        }
    }

    /// The strategy.
    pub fn strategy(&self) -> &Strategy {
        &self.strategy
    }

    /// Replaces the pool with the `UP` instances of `instances`. Endpoints
    /// that stay keep their numbers (latency, failures, ejection). Nothing
    /// happens when `instances` is the list the pool was built from.
    pub fn update(&self, instances: &Arc<[ServiceInstance]>) {
        let built_from = |pool: &Pool| {
            pool.source
                .as_ref()
                .is_some_and(|s| Arc::ptr_eq(s, instances))
        };
        // The common case, on every call of the HTTP client: no lock.
        if built_from(&self.pool.load()) {
            return;
        }
        let _one_at_a_time = self.updating.lock();
        let old = self.pool.load_full();
        if built_from(&old) {
            return;
        }
        let endpoints: Box<[Arc<Endpoint>]> = instances
            .iter()
            .filter(|i| i.is_up())
            .map(|i| {
                match old
                    .endpoints
                    .iter()
                    .find(|e| e.instance.instance_id == i.instance_id)
                {
                    Some(e) if e.instance == *i => Arc::clone(e),
                    Some(e) => Arc::new(Endpoint::new(i.clone(), Arc::clone(&e.stats))),
                    None => Arc::new(Endpoint::new(i.clone(), Arc::default())),
                }
            })
            .collect();
        let cumulative = endpoints
            .iter()
            .scan(0u64, |sum, e| {
                *sum += u64::from(e.instance.weight.max(1));
                Some(*sum)
            })
            .collect();
        let local = match &self.strategy {
            Strategy::ZonePreference(zone) => endpoints
                .iter()
                .enumerate()
                .filter(|(_, e)| e.instance.zone.as_deref() == Some(zone.as_str()))
                .map(|(i, _)| i)
                .collect(),
            _ => Box::default(),
        };
        let ejected = endpoints
            .iter()
            .filter(|e| e.stats.ejected_until.load(Ordering::Relaxed) != 0)
            .count();
        self.pool.store(Arc::new(ShardedArc::new(Arc::new(Pool {
            source: Some(Arc::clone(instances)),
            endpoints,
            cumulative,
            local,
        }))));
        self.ejected.store(ejected, Ordering::Relaxed);
    }

    /// The endpoints in the pool now.
    pub fn endpoints(&self) -> Vec<Arc<Endpoint>> {
        self.pool.load().endpoints.to_vec()
    }

    /// How many instances are ejected now (an ejection whose time is up
    /// counts until the next pick brings the instance back).
    pub fn ejected_count(&self) -> usize {
        self.ejected.load(Ordering::Relaxed)
    }

    /// Whether the instance is ejected now.
    pub fn is_ejected(&self, instance_id: &str) -> bool {
        let pool = self.pool.load();
        let mut now = 0;
        pool.endpoints
            .iter()
            .find(|e| e.instance.instance_id == instance_id)
            .is_some_and(|e| !self.available(e, &mut now))
    }

    /// Picks an instance; `None` when the pool is empty.
    #[inline]
    pub fn pick(&self) -> Option<Picked<'_>> {
        self.pick_inner(None)
    }

    /// Picks for `key`: with [`Strategy::Sticky`] the same key gets the same
    /// instance while the pool holds; other strategies ignore the key.
    #[inline]
    pub fn pick_for(&self, key: &str) -> Option<Picked<'_>> {
        self.pick_inner(Some(key))
    }

    fn pick_inner(&self, key: Option<&str>) -> Option<Picked<'_>> {
        let pool = self.pool.load();
        let n = pool.endpoints.len();
        if n == 0 {
            return None;
        }
        // Clock reading, taken at most once per pick and only when needed.
        let mut now = 0u64;
        let i = match (&self.strategy, key) {
            (Strategy::Random, _) => self.probe(&pool, hash::below(n), &mut now),
            (Strategy::Weighted, _) => {
                let total = pool.cumulative.last().copied().unwrap_or(0);
                let r = ((u128::from(hash::random()) * u128::from(total)) >> 64) as u64;
                let i = pool.cumulative.partition_point(|c| *c <= r);
                self.probe(&pool, i.min(n - 1), &mut now)
            }
            (Strategy::Sticky, Some(key)) => {
                let i = hash::jump(hash::fnv1a(key.as_bytes()), n);
                self.probe(&pool, i, &mut now)
            }
            (Strategy::ZonePreference(_), _) => self.zone_pick(&pool, &mut now),
            (Strategy::PowerOfTwoChoices, _) => self.p2c(&pool, &mut now),
            (Strategy::RoundRobin | Strategy::Sticky, _) => {
                let start = self.turn() % n;
                self.probe(&pool, start, &mut now)
            }
        };
        // Calls in flight and latency matter to P2C only.
        let started = if self.p2c {
            pool.endpoints[i]
                .stats
                .in_flight
                .fetch_add(1, Ordering::Relaxed);
            self.ticks.stopwatch()
        } else {
            0
        };
        Some(Picked {
            lb: self,
            pool: pool.local(),
            index: i,
            started,
            done: false,
        })
    }

    /// This thread's next round-robin turn.
    #[inline]
    fn turn(&self) -> usize {
        self.cursors[shard::this_thread()]
            .0
            .fetch_add(1, Ordering::Relaxed)
    }

    /// `start` if available, else the next available one after it; `start`
    /// when none is (the last endpoint is never ejected, so rare).
    #[inline]
    fn probe(&self, pool: &Pool, start: usize, now: &mut u64) -> usize {
        if self.ejected.load(Ordering::Relaxed) == 0 {
            return start;
        }
        let n = pool.endpoints.len();
        (0..n)
            .map(|k| (start + k) % n)
            .find(|i| self.available(&pool.endpoints[*i], now))
            .unwrap_or(start)
    }

    fn zone_pick(&self, pool: &Pool, now: &mut u64) -> usize {
        let turn = self.turn();
        let local = &pool.local;
        if !local.is_empty() {
            let m = local.len();
            let start = turn % m;
            if self.ejected.load(Ordering::Relaxed) == 0 {
                return local[start];
            }
            if let Some(i) = (0..m)
                .map(|k| local[(start + k) % m])
                .find(|i| self.available(&pool.endpoints[*i], now))
            {
                return i;
            }
        }
        self.probe(pool, turn % pool.endpoints.len(), now)
    }

    fn p2c(&self, pool: &Pool, now: &mut u64) -> usize {
        let n = pool.endpoints.len();
        if n == 1 {
            return 0;
        }
        let a = hash::below(n);
        let mut b = hash::below(n - 1);
        if b >= a {
            b += 1;
        }
        let (ea, eb) = (&pool.endpoints[a], &pool.endpoints[b]);
        if self.ejected.load(Ordering::Relaxed) != 0 {
            match (self.available(ea, now), self.available(eb, now)) {
                (true, false) => return a,
                (false, true) => return b,
                (false, false) => return self.probe(pool, a, now),
                (true, true) => {}
            }
        }
        if ea.stats.cost() <= eb.stats.cost() {
            a
        } else {
            b
        }
    }

    /// Nanoseconds on the balancer's deadline clock, at least 1; read at
    /// most once per pick or record, and only when an ejection is involved.
    fn now_ns(&self, now: &mut u64) -> u64 {
        if *now == 0 {
            *now = self.ticks.deadline_clock();
        }
        *now
    }

    /// Whether `e` may be picked; brings it back when its ejection is over.
    fn available(&self, e: &Endpoint, now: &mut u64) -> bool {
        let until = e.stats.ejected_until.load(Ordering::Relaxed);
        if until == 0 {
            return true;
        }
        if self.now_ns(now) < until {
            return false;
        }
        if e.stats
            .ejected_until
            .compare_exchange(until, 0, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            let _ = self
                .ejected
                .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |c| c.checked_sub(1));
            tracing::info!(instance = %e.instance.instance_id, "ejection over; instance back in the pool");
        }
        true
    }

    #[inline]
    fn finish(&self, endpoint: &Endpoint, started: u64, outcome: Outcome) {
        let stats = &endpoint.stats;
        let mut now = 0;
        if started != 0 {
            stats.in_flight.fetch_sub(1, Ordering::Relaxed);
            if outcome != Outcome::Ignored {
                let at = self.ticks.stopwatch();
                stats.observe(at.saturating_sub(started) as f64, at);
            }
        }
        match outcome {
            Outcome::Success => {
                if stats.consecutive_failures.load(Ordering::Relaxed) != 0 {
                    stats.consecutive_failures.store(0, Ordering::Relaxed);
                }
                if stats.ejections.load(Ordering::Relaxed) != 0
                    && stats.ejected_until.load(Ordering::Relaxed) == 0
                {
                    stats.ejections.store(0, Ordering::Relaxed);
                }
            }
            Outcome::Failure => self.failed(endpoint, &mut now),
            Outcome::Ignored => {}
        }
    }

    fn failed(&self, endpoint: &Endpoint, now: &mut u64) {
        let stats = &endpoint.stats;
        let failures = stats.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
        let threshold = self.outlier.consecutive_failures;
        if threshold == 0 || failures < threshold {
            return;
        }
        if stats.ejected_until.load(Ordering::Relaxed) != 0 {
            return;
        }
        let pool_len = self.pool.load().endpoints.len();
        let max = self.outlier.max_ejected(pool_len);
        if self
            .ejected
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |c| {
                (c < max).then_some(c + 1)
            })
            .is_err()
        {
            return;
        }
        let n = stats.ejections.fetch_add(1, Ordering::Relaxed) + 1;
        let time = self.outlier.ejection_time(n);
        let until = self
            .now_ns(now)
            .saturating_add(u64::try_from(time.as_nanos()).unwrap_or(u64::MAX));
        if stats
            .ejected_until
            .compare_exchange(0, until, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            stats.consecutive_failures.store(0, Ordering::Relaxed);
            tracing::warn!(instance = %endpoint.instance.instance_id, failures, ?time, "instance ejected");
        } else {
            let _ = self
                .ejected
                .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |c| c.checked_sub(1));
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
