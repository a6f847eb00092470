//! Token buckets kept in Redis, shared with Spring Cloud Gateway.
//!
//! SCG's `RedisRateLimiter` (4.2 and later) keeps a bucket in two keys,
//! `request_rate_limiter.{<routeId>.<key>}.tokens` and `….timestamp`
//! (the braces are a cluster hash tag), and changes them with one Lua
//! script whose arguments are the replenish rate, the burst capacity, the
//! time (SCG passes an empty string, so the script reads Redis's `TIME`,
//! in whole seconds) and the requested tokens. The keys expire after
//! `floor(capacity / rate * 2)` seconds; the script answers
//! `[allowed (1 or 0), tokens left]`. [`SCRIPT`] is our own script with
//! the same keys, arguments, arithmetic and answer, so SCG instances and
//! ours draw from one budget. Ours also passes an empty time: every
//! gateway reads the same clock, Redis's.
//!
//! The script is run with `EVALSHA`, loaded with `SCRIPT LOAD` when Redis
//! does not know it (after a restart). One multiplexed connection carries
//! every call. When Redis cannot be reached or does not answer within the
//! timeout (100 ms by default), the request is let through with
//! `X-RateLimit-Remaining: -1`, as SCG does; the failure is counted
//! ([`RedisBuckets::failures`]) and a background task reconnects, so an
//! outage costs a request no more than the timeout, and usually nothing.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use redis::aio::MultiplexedConnection;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::settings::RedisSettings;

/// The token bucket script: the semantics of SCG's
/// `request_rate_limiter.lua` (see the [module docs](self)).
pub const SCRIPT: &str = r"-- KEYS: tokens key, timestamp key
-- ARGV: rate (tokens/s), capacity, now (s; empty: Redis TIME), requested
if redis.replicate_commands then redis.replicate_commands() end
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
if now == nil then now = tonumber(redis.call('TIME')[1]) end
local requested = tonumber(ARGV[4])
local ttl = math.floor(capacity / rate * 2)
local tokens = tonumber(redis.call('GET', KEYS[1]))
if tokens == nil then tokens = capacity end
local stamp = tonumber(redis.call('GET', KEYS[2]))
if stamp == nil then stamp = 0 end
local elapsed = now - stamp
if elapsed < 0 then elapsed = 0 end
local filled = math.min(capacity, tokens + elapsed * rate)
local allowed = 0
if filled >= requested then
  filled = filled - requested
  allowed = 1
end
if ttl > 0 then
  redis.call('SETEX', KEYS[1], ttl, filled)
  redis.call('SETEX', KEYS[2], ttl, now)
end
return { allowed, filled }
";

/// Pause between reconnection attempts while Redis is down.
const RECONNECT_EVERY: Duration = Duration::from_millis(500);

/// The two keys of one bucket, as SCG names them.
pub fn bucket_keys(route_id: &str, key: &str) -> [String; 2] {
    let prefix = format!("request_rate_limiter.{{{route_id}.{key}}}.");
    [format!("{prefix}tokens"), format!("{prefix}timestamp")]
}

/// What the script answered for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Taken {
    /// Whether the tokens were there.
    pub allowed: bool,
    /// Tokens left in the bucket (whole tokens).
    pub tokens_left: i64,
}

/// The Redis settings are not usable.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct InvalidRedisSettings {
    /// The key at fault (`spring.data.redis.url`).
    pub key: String,
    reason: String,
    #[source]
    source: Option<redis::RedisError>,
}

impl InvalidRedisSettings {
    /// What is wrong, with its cause, without the key.
    pub fn reason(&self) -> String {
        match &self.source {
            Some(cause) => format!("{}: {cause}", self.reason),
            None => self.reason.clone(),
        }
    }
}

/// Redis did not answer a call: not connected, timed out, or failed.
#[derive(Debug, thiserror::Error)]
#[error("Redis {what}")]
pub struct RedisUnavailable {
    what: &'static str,
    #[source]
    source: Option<redis::RedisError>,
}

impl RedisUnavailable {
    /// Whether Redis took longer than the timeout.
    pub fn is_timeout(&self) -> bool {
        self.what == "did not answer in time"
            || self
                .source
                .as_ref()
                .is_some_and(redis::RedisError::is_timeout)
    }

    /// Whether there was no connection to send the call on.
    pub fn is_not_connected(&self) -> bool {
        self.what == "is not connected"
    }
}

/// The connection to Redis that rate limiters share. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RedisBuckets {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    client: redis::Client,
    /// Where Redis is, for logs and health (no password).
    address: String,
    script: redis::Script,
    timeout: Duration,
    connect_timeout: Duration,
    /// The connection, when there is one.
    link: ArcSwapOption<MultiplexedConnection>,
    /// The reconnecting task has been started.
    started: AtomicBool,
    /// The first connection attempt has ended (either way).
    first_attempt_done: AtomicBool,
    /// Wakes requests waiting for the first attempt.
    attempted: Notify,
    /// Wakes the reconnecting task when the connection broke (its permit
    /// is kept when the task is not waiting yet).
    broken: Arc<Notify>,
    /// The last failure, for health.
    last_error: Mutex<Option<String>>,
    failures: AtomicU64,
    up: AtomicBool,
    stop: CancellationToken,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl RedisBuckets {
    /// Checks the settings (found under `prefix`) and prepares the client;
    /// nothing connects until the first call.
    pub fn new(
        prefix: &str,
        settings: &RedisSettings,
    ) -> Result<RedisBuckets, InvalidRedisSettings> {
        let (url, key) = match &settings.url {
            Some(url) => (url.clone(), format!("{prefix}.url")),
            None => (address_url(settings), format!("{prefix}.host")),
        };
        let invalid = |reason: String, source| InvalidRedisSettings {
            key: key.clone(),
            reason,
            source,
        };
        if !["redis://", "redis+unix://", "unix://"]
            .iter()
            .any(|scheme| url.starts_with(scheme))
        {
            return Err(invalid(
                "only `redis://` addresses are supported (no TLS to Redis yet)".to_owned(),
                None,
            ));
        }
        let client = redis::Client::open(url.as_str())
            .map_err(|e| invalid("not a usable Redis address".to_owned(), Some(e)))?;
        let info = client.get_connection_info();
        let address = info.addr().to_string();
        Ok(RedisBuckets {
            shared: Arc::new(Shared {
                client,
                address,
                script: redis::Script::new(SCRIPT),
                timeout: settings.timeout.max(Duration::from_millis(1)),
                connect_timeout: settings.connect_timeout.max(Duration::from_millis(1)),
                link: ArcSwapOption::empty(),
                started: AtomicBool::new(false),
                first_attempt_done: AtomicBool::new(false),
                attempted: Notify::new(),
                broken: Arc::new(Notify::new()),
                last_error: Mutex::new(None),
                failures: AtomicU64::new(0),
                up: AtomicBool::new(false),
                stop: CancellationToken::new(),
            }),
        })
    }

    /// Where Redis is (`host:port`).
    pub fn address(&self) -> &str {
        &self.shared.address
    }

    /// Takes `requested` tokens from the bucket of (`route_id`, `key`)
    /// that refills at `rate` a second up to `capacity`.
    pub async fn take(
        &self,
        route_id: &str,
        key: &str,
        rate: f64,
        capacity: f64,
        requested: f64,
    ) -> Result<Taken, RedisUnavailable> {
        let [tokens, timestamp] = bucket_keys(route_id, key);
        let result = self
            .call(|mut conn| {
                let script = &self.shared.script;
                let (tokens, timestamp) = (&tokens, &timestamp);
                async move {
                    script
                        .key(tokens)
                        .key(timestamp)
                        .arg(number(rate))
                        .arg(number(capacity))
                        .arg("")
                        .arg(number(requested))
                        .invoke_async::<(i64, i64)>(&mut conn)
                        .await
                }
            })
            .await
            .inspect_err(|_| {
                self.shared.failures.fetch_add(1, Ordering::Relaxed);
            })?;
        Ok(Taken {
            allowed: result.0 == 1,
            tokens_left: result.1,
        })
    }

    /// Asks Redis for `PONG` (for health).
    pub async fn ping(&self) -> Result<(), RedisUnavailable> {
        self.call(
            |mut conn| async move { redis::cmd("PING").query_async::<String>(&mut conn).await },
        )
        .await
        .map(|_| ())
    }

    /// Whether the last call reached Redis.
    pub fn is_up(&self) -> bool {
        self.shared.up.load(Ordering::Relaxed)
    }

    /// Bucket calls that failed (and let their request through) so far.
    pub fn failures(&self) -> u64 {
        self.shared.failures.load(Ordering::Relaxed)
    }

    /// The last failure, if the last call failed.
    pub fn last_error(&self) -> Option<String> {
        if self.is_up() {
            return None;
        }
        lock(&self.shared.last_error).clone()
    }

    /// Runs `op` on the connection within the timeout, recording the
    /// outcome.
    pub(crate) async fn call<T, F, Fut>(&self, op: F) -> Result<T, RedisUnavailable>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let s = &self.shared;
        let Some(conn) = self.connection().await else {
            return Err(self.failed(RedisUnavailable {
                what: "is not connected",
                source: None,
            }));
        };
        match tokio::time::timeout(s.timeout, op((*conn).clone())).await {
            Ok(Ok(v)) => {
                s.up.store(true, Ordering::Relaxed);
                Ok(v)
            }
            Ok(Err(e)) => {
                if e.is_io_error()
                    || e.is_timeout()
                    || e.is_connection_dropped()
                    || e.is_unrecoverable_error()
                {
                    self.drop_connection(&conn);
                }
                Err(self.failed(RedisUnavailable {
                    what: "call failed",
                    source: Some(e),
                }))
            }
            Err(_) => {
                self.drop_connection(&conn);
                Err(self.failed(RedisUnavailable {
                    what: "did not answer in time",
                    source: None,
                }))
            }
        }
    }

    fn failed(&self, e: RedisUnavailable) -> RedisUnavailable {
        let s = &self.shared;
        let was_up = s.up.swap(false, Ordering::Relaxed);
        let text = match std::error::Error::source(&e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        };
        if was_up {
            tracing::warn!(redis = %s.address, error = %text, "Redis call failed; rate limiters let requests through");
        } else {
            tracing::debug!(redis = %s.address, error = %text, "Redis call failed");
        }
        *lock(&s.last_error) = Some(text);
        e
    }

    /// The connection; waits (within the timeout) only for the very first
    /// attempt to connect.
    async fn connection(&self) -> Option<Arc<MultiplexedConnection>> {
        let s = &self.shared;
        if let Some(c) = s.link.load_full() {
            return Some(c);
        }
        self.start_reconnecting();
        if s.first_attempt_done.load(Ordering::Acquire) {
            return None;
        }
        let attempted = s.attempted.notified();
        tokio::pin!(attempted);
        attempted.as_mut().enable();
        if !s.first_attempt_done.load(Ordering::Acquire) {
            let _ = tokio::time::timeout(s.timeout, attempted).await;
        }
        s.link.load_full()
    }

    /// Forgets `broken` (unless already replaced) and wakes the
    /// reconnecting task.
    fn drop_connection(&self, broken: &Arc<MultiplexedConnection>) {
        let s = &self.shared;
        let previous = s.link.compare_and_swap(broken, None);
        if previous.as_ref().is_some_and(|p| Arc::ptr_eq(p, broken)) {
            s.broken.notify_one();
        }
    }

    fn start_reconnecting(&self) {
        if self.shared.started.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak = Arc::downgrade(&self.shared);
        let stop = self.shared.stop.clone();
        let broken = Arc::clone(&self.shared.broken);
        tokio::spawn(keep_connected(weak, stop, broken));
    }
}

/// Connects, waits until the connection breaks, connects again; pauses
/// between failed attempts. Ends with the last [`RedisBuckets`].
async fn keep_connected(weak: Weak<Shared>, stop: CancellationToken, broken: Arc<Notify>) {
    loop {
        let Some(s) = weak.upgrade() else { return };
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(s.connect_timeout))
            .set_response_timeout(Some(s.timeout));
        let attempt = tokio::select! {
            r = s.client.get_multiplexed_async_connection_with_config(&config) => r,
            () = stop.cancelled() => return,
        };
        let connected = match attempt {
            Ok(conn) => {
                tracing::info!(redis = %s.address, "connected to Redis");
                s.link.store(Some(Arc::new(conn)));
                s.up.store(true, Ordering::Relaxed);
                true
            }
            Err(e) => {
                tracing::warn!(redis = %s.address, error = %e, "cannot connect to Redis; rate limiters let requests through");
                s.up.store(false, Ordering::Relaxed);
                *lock(&s.last_error) = Some(format!("cannot connect: {e}"));
                false
            }
        };
        s.first_attempt_done.store(true, Ordering::Release);
        s.attempted.notify_waiters();
        drop(s);
        if connected {
            tokio::select! {
                () = broken.notified() => {}
                () = stop.cancelled() => return,
            }
        } else {
            tokio::select! {
                () = tokio::time::sleep(RECONNECT_EVERY) => {}
                () = stop.cancelled() => return,
            }
        }
    }
}

/// `redis://[user:password@]host:port/database` from the separate keys.
fn address_url(settings: &RedisSettings) -> String {
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    let encode = |s: &str| utf8_percent_encode(s, NON_ALPHANUMERIC).to_string();
    let credentials = match (&settings.username, &settings.password) {
        (Some(u), Some(p)) => format!("{}:{}@", encode(u), encode(p)),
        (None, Some(p)) => format!(":{}@", encode(p)),
        (Some(u), None) => format!("{}@", encode(u)),
        (None, None) => String::new(),
    };
    let host = settings.host.as_deref().unwrap_or("localhost");
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    format!(
        "redis://{credentials}{host}:{}/{}",
        settings.port.unwrap_or(6379),
        settings.database
    )
}

/// A script argument as SCG writes its numbers: `10`, not `10.0`.
pub(crate) fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        format!("{}", v as i64)
    } else {
        v.to_string()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_carry_the_route_and_the_key_in_one_hash_tag() {
        assert_eq!(
            bucket_keys("users", "10.0.0.1"),
            [
                "request_rate_limiter.{users.10.0.0.1}.tokens".to_owned(),
                "request_rate_limiter.{users.10.0.0.1}.timestamp".to_owned(),
            ]
        );
    }

    #[test]
    fn separate_keys_make_a_url_with_escaped_credentials() {
        let s = RedisSettings {
            host: Some("cache.local".to_owned()),
            port: Some(6380),
            username: Some("gw".to_owned()),
            password: Some("p@ss:word".to_owned()),
            database: 2,
            ..RedisSettings::default()
        };
        assert_eq!(
            address_url(&s),
            "redis://gw:p%40ss%3Aword@cache.local:6380/2"
        );
        let b = RedisBuckets::new("spring.data.redis", &s).expect("valid");
        assert_eq!(b.address(), "cache.local:6380");
    }

    #[test]
    fn tls_and_garbage_urls_are_refused_naming_the_key() {
        for url in ["rediss://cache:6379", "http://cache", "not a url"] {
            let s = RedisSettings {
                url: Some(url.to_owned()),
                ..RedisSettings::default()
            };
            let e = RedisBuckets::new("spring.redis", &s).expect_err(url);
            assert_eq!(e.key, "spring.redis.url", "{url}");
        }
    }

    #[test]
    fn numbers_are_written_as_scg_writes_them() {
        assert_eq!(number(10.0), "10");
        assert_eq!(number(0.5), "0.5");
    }

    #[tokio::test]
    async fn an_unreachable_redis_fails_fast_and_is_counted() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("address");
        let s = RedisSettings {
            url: Some(format!("redis://{closed}")),
            ..RedisSettings::default()
        };
        let b = RedisBuckets::new("spring.data.redis", &s).expect("valid");
        let e = b.take("r", "k", 1.0, 1.0, 1.0).await.expect_err("no Redis");
        assert!(e.is_not_connected(), "{e}");
        assert_eq!(b.failures(), 1);
        assert!(!b.is_up());
        assert!(b.last_error().is_some());
    }
}
