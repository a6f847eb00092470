//! The one clock of the suite: a monotonic [`Instant`] for timeouts and
//! windows, and wall-clock epoch milliseconds for timestamps on the wire
//! (Eureka's `lastUpdatedTimestamp`, log lines), behind one trait so that
//! tests drive both.
//!
//! [`TokioClock`] follows tokio's time, so `tokio::time::pause()` and
//! `advance()` move it (its epoch reading too). [`ManualClock`] moves only
//! when told to, for pure cores tested without a runtime.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use tokio::time::Instant;

/// A source of time.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current monotonic instant.
    fn now(&self) -> Instant;

    /// Milliseconds since the Unix epoch.
    fn epoch_millis(&self) -> i64;
}

/// A shared clock handle.
pub type SharedClock = Arc<dyn Clock>;

/// Reads the system's wall clock in epoch milliseconds (0 before 1970).
pub fn system_epoch_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A wall-clock time in UTC, split into calendar fields (the proleptic
/// Gregorian calendar; times before 1970 read as the epoch).
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use cloud_runtime::clock::UtcTime;
///
/// let t = UtcTime::at(UNIX_EPOCH + Duration::from_millis(951_782_400_250));
/// assert_eq!((t.year, t.month, t.day, t.millis), (2000, 2, 29, 250));
/// assert_eq!(t.month_abbreviation(), "Feb");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcTime {
    /// The year.
    pub year: u64,
    /// 1 to 12.
    pub month: u64,
    /// 1 to 31.
    pub day: u64,
    /// 0 to 23.
    pub hour: u64,
    /// 0 to 59.
    pub minute: u64,
    /// 0 to 59.
    pub second: u64,
    /// 0 to 999.
    pub millis: u32,
}

impl UtcTime {
    /// `at`, in UTC.
    pub fn at(at: SystemTime) -> UtcTime {
        let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = since.as_secs();
        let (days, rem) = (secs / 86_400, secs % 86_400);
        let (year, month, day) = civil_from_days(days);
        UtcTime {
            year,
            month,
            day,
            hour: rem / 3600,
            minute: rem % 3600 / 60,
            second: rem % 60,
            millis: since.subsec_millis(),
        }
    }

    /// `epoch_millis` milliseconds after the Unix epoch, in UTC.
    pub fn from_epoch_millis(epoch_millis: i64) -> UtcTime {
        let millis = u64::try_from(epoch_millis).unwrap_or(0);
        UtcTime::at(UNIX_EPOCH + Duration::from_millis(millis))
    }

    /// The month's English three-letter name (`Jan` ... `Dec`).
    pub fn month_abbreviation(&self) -> &'static str {
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        usize::try_from(self.month)
            .ok()
            .and_then(|m| MONTHS.get(m.wrapping_sub(1)))
            .copied()
            .unwrap_or("???")
    }
}

/// Year, month and day of the `days`-th day after 1970-01-01 (Howard
/// Hinnant's `civil_from_days`, for the proleptic Gregorian calendar).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The default clock: [`tokio::time::Instant::now`], and the wall clock read
/// once at creation then advanced by tokio's time, so paused time in tests
/// moves both readings together.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    start_wall: i64,
    start: Instant,
}

impl TokioClock {
    /// A clock whose epoch reading starts at the current wall-clock time.
    pub fn new() -> TokioClock {
        TokioClock {
            start_wall: system_epoch_millis(),
            start: Instant::now(),
        }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        TokioClock::new()
    }
}

impl Clock for TokioClock {
    #[inline]
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn epoch_millis(&self) -> i64 {
        self.start_wall.saturating_add(millis(self.start.elapsed()))
    }
}

/// A clock that moves only when told to. Clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    inner: Arc<Mutex<(Instant, i64)>>,
}

impl ManualClock {
    /// A clock standing at the current instant and wall-clock time.
    pub fn new() -> ManualClock {
        ManualClock::at_epoch_millis(system_epoch_millis())
    }

    /// A clock standing at the current instant and at `epoch_millis`.
    pub fn at_epoch_millis(epoch_millis: i64) -> ManualClock {
        ManualClock {
            inner: Arc::new(Mutex::new((Instant::now(), epoch_millis))),
        }
    }

    /// Moves both readings forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut t = self.inner.lock();
        t.0 += by;
        t.1 = t.1.saturating_add(millis(by));
    }

    /// Moves both readings forward by `ms` milliseconds (negative values are
    /// ignored: a monotonic clock never goes back).
    pub fn advance_millis(&self, ms: i64) {
        self.advance(Duration::from_millis(u64::try_from(ms).unwrap_or(0)));
    }

    /// Sets the epoch reading; the monotonic reading moves forward by the
    /// same amount when the new time is later.
    pub fn set_epoch_millis(&self, epoch_millis: i64) {
        let mut t = self.inner.lock();
        let forward = epoch_millis.saturating_sub(t.1);
        if forward > 0 {
            t.0 += Duration::from_millis(u64::try_from(forward).unwrap_or(0));
        }
        t.1 = epoch_millis;
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.inner.lock().0
    }

    fn epoch_millis(&self) -> i64 {
        self.inner.lock().1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_both_readings_only_when_told() {
        let clock = ManualClock::at_epoch_millis(1_000);
        let start = clock.now();
        assert_eq!(clock.epoch_millis(), 1_000);
        clock.advance(Duration::from_millis(1500));
        assert_eq!(clock.now() - start, Duration::from_millis(1500));
        assert_eq!(clock.epoch_millis(), 2_500);
        clock.set_epoch_millis(3_000);
        assert_eq!(clock.now() - start, Duration::from_millis(2000));
        clock.advance_millis(-5);
        assert_eq!(clock.epoch_millis(), 3_000, "never backwards");
    }

    #[tokio::test(start_paused = true)]
    async fn tokio_clock_follows_paused_time() {
        let clock = TokioClock::new();
        let (t0, e0) = (clock.now(), clock.epoch_millis());
        tokio::time::advance(Duration::from_secs(90)).await;
        assert_eq!(clock.now() - t0, Duration::from_secs(90));
        assert_eq!(clock.epoch_millis() - e0, 90_000);
    }
}
