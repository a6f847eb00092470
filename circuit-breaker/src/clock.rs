//! Time source of the policies: the suite's one [`Clock`] trait (from
//! `cloud-runtime`), so the pure core can be driven by a test clock, and
//! [`TokioClock`], the default, which follows tokio's paused time.
//!
//! The breaker reads the clock only when it needs the time: on the way out
//! of OPEN and HALF_OPEN, for time-based windows, and to time calls when
//! slow-call detection is configured. The closed-state fast path of a
//! count-based breaker without slow-call detection never reads it.

pub use cloud_runtime::clock::{Clock, ManualClock, SharedClock, TokioClock};
