//! `RequestRateLimiter`: a token bucket per key with the semantics of
//! SCG's Redis rate limiter script (`replenishRate` tokens a second, at
//! most `burstCapacity`, each request taking `requestedTokens`), in memory
//! for one gateway or, when `spring.data.redis.*` is set, in Redis with
//! SCG's keys and script ([`redis`]) so that several gateways, ours and
//! SCG's, share one budget.
//!
//! The key is the client's address (default; IPv6 written as Java writes
//! it, `0:0:0:0:0:0:0:1`, so that SCG's usual address resolver finds the
//! same bucket) or a header's value (`key-resolver: header:X-Api-Key`).
//! SCG names a Spring bean there (`#{@userKeyResolver}`), an expression,
//! which is refused.

pub mod redis;

use std::net::IpAddr;
use std::sync::Arc;

use cloud_runtime::clock::SharedClock;
use dashmap::DashMap;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, StatusCode};
use tokio::time::Instant;

use crate::config::{Args, InvalidDefinition};
use redis::RedisBuckets;

use super::{Answer, Outbound};

/// Buckets kept before full (idle) ones are dropped.
const MAX_BUCKETS: usize = 100_000;

/// Where the key of a request comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// The client's address (the peer, not `X-Forwarded-For`).
    ClientIp,
    /// The value of a header; requests without it have an empty key.
    Header(http::HeaderName),
}

/// One route's limiter and its buckets.
#[derive(Debug)]
pub struct RateLimiter {
    replenish_rate: f64,
    burst_capacity: f64,
    requested_tokens: f64,
    key: KeySource,
    deny_empty_key: bool,
    empty_key_status: StatusCode,
    buckets: DashMap<String, Bucket>,
    clock: SharedClock,
    /// The route and the Redis buckets, when shared through Redis.
    shared: Option<(String, RedisBuckets)>,
    /// The replenish rate, burst capacity and requested tokens as SCG
    /// writes them in the `X-RateLimit-*` headers, made once over interned
    /// text: a request copies them without allocating or writing to a
    /// reference count that every I/O worker shares.
    written: [HeaderValue; 3],
    /// The headers' names, none when they are not written.
    header_names: Option<HeaderNames>,
}

/// The `X-RateLimit-*` header names: remaining, replenish rate, burst
/// capacity, requested tokens (over interned text, so copies write no
/// shared reference count).
pub type HeaderNames = [HeaderName; 4];

/// What every `RequestRateLimiter` does unless its arguments say:
/// `spring.cloud.gateway.redis-rate-limiter.*` (the headers) and
/// `spring.cloud.gateway.filter.request-rate-limiter.*` (an empty key).
#[derive(Debug, Clone)]
pub struct LimiterDefaults {
    /// The `X-RateLimit-*` names; `None` when `include-headers` is false.
    pub header_names: Option<HeaderNames>,
    /// `deny-empty-key`.
    pub deny_empty_key: bool,
    /// `empty-key-status-code`.
    pub empty_key_status: StatusCode,
}

impl Default for LimiterDefaults {
    fn default() -> Self {
        LimiterDefaults {
            header_names: Some([
                HeaderName::from_static("x-ratelimit-remaining"),
                HeaderName::from_static("x-ratelimit-replenish-rate"),
                HeaderName::from_static("x-ratelimit-burst-capacity"),
                HeaderName::from_static("x-ratelimit-requested-tokens"),
            ]),
            deny_empty_key: true,
            empty_key_status: StatusCode::FORBIDDEN,
        }
    }
}

/// A header name made from `name` (any case), over interned text; `None`
/// when it is not a header name.
pub fn header_name(name: &str) -> Option<HeaderName> {
    let lower = name.trim().to_ascii_lowercase();
    HeaderName::from_bytes(lower.as_bytes()).ok()?;
    Some(HeaderName::from_static(intern(lower)))
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The outcome for one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Whether the request may pass.
    pub allowed: bool,
    /// Tokens left (the `X-RateLimit-Remaining` header), or `-1` when no
    /// key was found.
    pub remaining: i64,
    /// The status to answer when refused.
    pub status: StatusCode,
}

impl RateLimiter {
    /// Compiles the filter's arguments.
    pub fn compile(
        a: &Args,
        clock: SharedClock,
        defaults: &LimiterDefaults,
    ) -> Result<RateLimiter, InvalidDefinition> {
        let number = |names: [&str; 2], default: f64| -> Result<f64, InvalidDefinition> {
            let given = names.iter().find(|n| a.opt_str(n).is_some());
            match given {
                Some(n) => a.parse::<f64>(n),
                None => Ok(default),
            }
        };
        let replenish_rate = number(
            ["redisratelimiter.replenishrate", "replenishrate"],
            f64::NAN,
        )?;
        if replenish_rate.is_nan() {
            return Err(a.error(
                "argument `replenishRate` (or `redis-rate-limiter.replenishRate`) is required",
            ));
        }
        let burst_capacity = number(
            ["redisratelimiter.burstcapacity", "burstcapacity"],
            replenish_rate,
        )?;
        let requested_tokens =
            number(["redisratelimiter.requestedtokens", "requestedtokens"], 1.0)?;
        if replenish_rate <= 0.0 || burst_capacity < 0.0 || requested_tokens <= 0.0 {
            return Err(a.error("rates and capacities must be positive"));
        }
        if burst_capacity < requested_tokens {
            return Err(a.error("`burstCapacity` below `requestedTokens` refuses every request"));
        }
        let key = match a.opt_str("keyresolver") {
            None => KeySource::ClientIp,
            Some(k)
                if k.eq_ignore_ascii_case("client-ip") || k.eq_ignore_ascii_case("remote-addr") =>
            {
                KeySource::ClientIp
            }
            Some(k) => match k.strip_prefix("header:") {
                Some(h) => KeySource::Header(
                    http::HeaderName::from_bytes(h.trim().as_bytes()).map_err(|e| {
                        a.error(format!("`{h}` is not a header name"))
                            .with_source(e)
                    })?,
                ),
                None => {
                    return Err(a.error(format!(
                        "key-resolver `{k}` is not known (use `client-ip` or `header:NAME`)"
                    )));
                }
            },
        };
        let empty_key_status = match a.opt_str("emptykeystatus") {
            None => defaults.empty_key_status,
            Some(s) => super::parse_status(&s)
                .ok_or_else(|| a.error(format!("`{s}` is not an HTTP status")))?,
        };
        let written = |v: f64| -> Result<HeaderValue, InvalidDefinition> {
            let text = redis::number(v);
            // What `from_static` accepts (it panics on anything else).
            if !text.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(a.error(format!("`{text}` is not a header value")));
            }
            Ok(HeaderValue::from_static(intern(text)))
        };
        Ok(RateLimiter {
            written: [
                written(replenish_rate)?,
                written(burst_capacity)?,
                written(requested_tokens)?,
            ],
            replenish_rate,
            burst_capacity,
            requested_tokens,
            key,
            deny_empty_key: a.flag("denyemptykey", defaults.deny_empty_key)?,
            header_names: defaults.header_names.clone(),
            empty_key_status,
            buckets: DashMap::new(),
            clock,
            shared: None,
        })
    }

    /// Keeps the buckets of route `route_id` in Redis instead of memory.
    pub fn with_redis(mut self, route_id: &str, buckets: RedisBuckets) -> RateLimiter {
        self.shared = Some((route_id.to_owned(), buckets));
        self
    }

    /// The bucket key of a request (empty when its header is missing or is
    /// not visible ASCII), written without allocating.
    fn key<'a>(&self, remote: IpAddr, headers: &'a HeaderMap) -> Key<'a> {
        match &self.key {
            KeySource::ClientIp => Key::Address(AddressText::java(remote)),
            KeySource::Header(name) => Key::Header(
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or(""),
            ),
        }
    }

    fn empty_key(&self) -> Decision {
        Decision {
            allowed: !self.deny_empty_key,
            remaining: -1,
            status: self.empty_key_status,
        }
    }

    /// Takes tokens for one request of `remote` with `headers`: from Redis
    /// when shared (letting the request through, with `remaining` -1, when
    /// Redis fails), else from memory.
    pub async fn decide(&self, remote: IpAddr, headers: &HeaderMap) -> Decision {
        let Some((route_id, redis)) = &self.shared else {
            return self.acquire(remote, headers);
        };
        let key = self.key(remote, headers);
        let key = key.as_str();
        if key.is_empty() {
            return self.empty_key();
        }
        let taken = redis
            .take(
                route_id,
                key,
                self.replenish_rate,
                self.burst_capacity,
                self.requested_tokens,
            )
            .await;
        match taken {
            Ok(t) => Decision {
                allowed: t.allowed,
                remaining: t.tokens_left,
                status: StatusCode::TOO_MANY_REQUESTS,
            },
            Err(_) => Decision {
                allowed: true,
                remaining: -1,
                status: StatusCode::TOO_MANY_REQUESTS,
            },
        }
    }

    /// Runs the filter on `out` (see [`RateLimiter::decide`]): adds the
    /// `X-RateLimit-*` headers to the response, or answers the refusal.
    pub async fn apply(&self, out: &mut Outbound) -> Result<(), Box<Answer>> {
        let decision = self.decide(out.remote, &out.headers).await;
        self.settle(&decision, out)
    }

    /// The same as [`RateLimiter::apply`] with the buckets in memory, even
    /// when shared through Redis (for callers that cannot wait).
    pub fn apply_in_memory(&self, out: &mut Outbound) -> Result<(), Box<Answer>> {
        let decision = self.acquire(out.remote, &out.headers);
        self.settle(&decision, out)
    }

    fn settle(&self, decision: &Decision, out: &mut Outbound) -> Result<(), Box<Answer>> {
        if !decision.allowed {
            let mut answer = super::empty_answer(decision.status);
            if decision.status == StatusCode::TOO_MANY_REQUESTS {
                self.write_headers(decision, answer.headers_mut());
            }
            return Err(Box::new(answer));
        }
        self.write_headers(decision, &mut out.response_headers);
        Ok(())
    }

    /// Takes tokens for one request of `remote` with `headers` from the
    /// buckets in memory.
    pub fn acquire(&self, remote: IpAddr, headers: &HeaderMap) -> Decision {
        let key = self.key(remote, headers);
        let key = key.as_str();
        if key.is_empty() {
            return self.empty_key();
        }
        let now = self.clock.now();
        // A known key is found by reference; only a new one is copied, and
        // only a new one can find the map full (its size locks every shard).
        let mut bucket = match self.buckets.get_mut(key) {
            Some(bucket) => bucket,
            None => {
                if self.buckets.len() >= MAX_BUCKETS {
                    self.drop_full_buckets(now);
                }
                self.buckets.entry(key.to_owned()).or_insert(Bucket {
                    tokens: self.burst_capacity,
                    at: now,
                })
            }
        };
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        let filled = (bucket.tokens + elapsed * self.replenish_rate).min(self.burst_capacity);
        let allowed = filled >= self.requested_tokens;
        bucket.tokens = if allowed {
            filled - self.requested_tokens
        } else {
            filled
        };
        bucket.at = now;
        Decision {
            allowed,
            remaining: bucket.tokens.floor() as i64,
            status: StatusCode::TOO_MANY_REQUESTS,
        }
    }

    fn drop_full_buckets(&self, now: Instant) {
        let (rate, cap) = (self.replenish_rate, self.burst_capacity);
        self.buckets.retain(|_, b| {
            b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate < cap
        });
    }

    /// Adds the `X-RateLimit-*` headers for `decision` to `headers` (a
    /// header map, or the headers a response will get).
    pub fn write_headers(
        &self,
        decision: &Decision,
        headers: &mut impl Extend<(HeaderName, HeaderValue)>,
    ) {
        let Some([remaining_name, fixed_names @ ..]) = &self.header_names else {
            return;
        };
        let remaining = (
            remaining_name.clone(),
            HeaderValue::from(decision.remaining),
        );
        let fixed = fixed_names
            .iter()
            .zip(&self.written)
            .map(|(name, value)| (name.clone(), value.clone()));
        headers.extend(std::iter::once(remaining).chain(fixed));
    }
}

/// `text`, kept for the life of the process: each distinct text once, so
/// route reloads add nothing once their values have been seen.
fn intern(text: String) -> &'static str {
    static TEXTS: std::sync::Mutex<Option<std::collections::HashSet<&'static str>>> =
        std::sync::Mutex::new(None);
    let mut texts = TEXTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let texts = texts.get_or_insert_with(Default::default);
    if let Some(kept) = texts.get(text.as_str()) {
        return kept;
    }
    let kept: &'static str = Box::leak(text.into_boxed_str());
    texts.insert(kept);
    kept
}

/// A request's bucket key.
enum Key<'a> {
    Address(AddressText),
    Header(&'a str),
}

impl Key<'_> {
    fn as_str(&self) -> &str {
        match self {
            Key::Address(a) => a.as_str(),
            Key::Header(h) => h,
        }
    }
}

/// An address as Java's `InetAddress.getHostAddress()` writes it, on the
/// stack.
struct AddressText {
    /// Eight groups of at most four digits and seven colons.
    buf: [u8; 39],
    len: usize,
}

impl AddressText {
    /// `ip` as Java's `InetAddress.getHostAddress()` writes it (what SCG's
    /// address key resolvers use): IPv4 dotted, IPv4-mapped IPv6 as IPv4,
    /// IPv6 as eight hexadecimal groups without `::`.
    fn java(ip: IpAddr) -> AddressText {
        use std::io::Write;
        let mut text = AddressText {
            buf: [0; 39],
            len: 0,
        };
        let v6 = match ip.to_canonical() {
            IpAddr::V4(v4) => {
                // Every request's key: four numbers, written without `fmt`.
                for (i, octet) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        text.push(b'.');
                    }
                    if octet >= 100 {
                        text.push(b'0' + octet / 100);
                    }
                    if octet >= 10 {
                        text.push(b'0' + octet / 10 % 10);
                    }
                    text.push(b'0' + octet % 10);
                }
                return text;
            }
            IpAddr::V6(v6) => v6,
        };
        let mut out = &mut text.buf[..];
        let written = v6
            .segments()
            .iter()
            .enumerate()
            .try_for_each(|(i, s)| match i {
                0 => write!(out, "{s:x}"),
                _ => write!(out, ":{s:x}"),
            });
        let left = out.len();
        // The longest address fits, so writing cannot fail; if it did, the
        // key would be empty (and refused as such), never cut short.
        text.len = if written.is_ok() { 39 - left } else { 0 };
        text
    }

    /// Appends one byte (an IPv4 address's 15 fit).
    fn push(&mut self, b: u8) {
        self.buf[self.len] = b;
        self.len += 1;
    }

    fn as_str(&self) -> &str {
        // Only ASCII digits, hex letters, dots and colons are written.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

/// A shared limiter.
pub type SharedLimiter = Arc<RateLimiter>;

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use cloud_runtime::clock::ManualClock;

    use super::*;
    use crate::config::{Definition, Shortcut};

    fn limiter(args: &str, clock: &ManualClock) -> RateLimiter {
        limiter_with(args, clock, &LimiterDefaults::default())
    }

    fn limiter_with(args: &str, clock: &ManualClock, defaults: &LimiterDefaults) -> RateLimiter {
        let yaml = format!("{{name: RequestRateLimiter, args: {args}}}");
        let value: serde_json::Value = serde_yaml_ng::from_str(&yaml).expect("test YAML");
        let def = Definition::parse(&value, "filter").expect("definition");
        let a = def
            .bind(
                "filter",
                super::super::RATE_LIMITER_FIELDS,
                Shortcut::InOrder,
            )
            .expect("bound");
        RateLimiter::compile(&a, Arc::new(clock.clone()), defaults).expect("compiles")
    }

    #[tokio::test(start_paused = true)]
    async fn bucket_allows_a_burst_then_refills_at_the_replenish_rate() {
        let clock = ManualClock::new();
        let l = limiter(
            "{redis-rate-limiter.replenishRate: 2, redis-rate-limiter.burstCapacity: 3}",
            &clock,
        );
        let ip: IpAddr = "10.0.0.1".parse().expect("ip");
        let h = HeaderMap::new();
        let remaining: Vec<i64> = (0..3).map(|_| l.acquire(ip, &h).remaining).collect();
        assert_eq!(remaining, [2, 1, 0]);
        let refused = l.acquire(ip, &h);
        assert!(!refused.allowed);
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        // Another client has its own bucket.
        assert!(l.acquire("10.0.0.2".parse().expect("ip"), &h).allowed);
        clock.advance(Duration::from_millis(500));
        assert!(
            l.acquire(ip, &h).allowed,
            "one token back after half a second at 2/s"
        );
        assert!(!l.acquire(ip, &h).allowed);
        clock.advance(Duration::from_secs(60));
        assert_eq!(
            l.acquire(ip, &h).remaining,
            2,
            "refills up to the burst capacity only"
        );
    }

    #[test]
    fn client_addresses_are_written_as_java_writes_them() {
        let key = |s: &str| {
            AddressText::java(s.parse().expect("ip"))
                .as_str()
                .to_owned()
        };
        assert_eq!(key("10.0.0.1"), "10.0.0.1");
        // Each octet's digits, with no leading zeros.
        assert_eq!(key("0.9.10.99"), "0.9.10.99");
        assert_eq!(key("100.109.190.200"), "100.109.190.200");
        for ip in ["127.0.0.1", "192.168.1.20", "1.2.3.4", "0.0.0.0"] {
            assert_eq!(
                key(ip),
                ip.parse::<std::net::Ipv4Addr>().expect("ip").to_string()
            );
        }
        assert_eq!(key("::1"), "0:0:0:0:0:0:0:1");
        assert_eq!(key("2001:db8::a0"), "2001:db8:0:0:0:0:0:a0");
        assert_eq!(key("::ffff:10.1.2.3"), "10.1.2.3");
        // The longest forms fit whole.
        let longest = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe";
        assert_eq!(key(longest), longest);
        assert_eq!(key("255.255.255.254"), "255.255.255.254");
    }

    #[test]
    fn the_settings_rename_or_drop_the_headers_and_decide_empty_keys() {
        let clock = ManualClock::new();
        let ip: IpAddr = "10.0.0.1".parse().expect("ip");
        let no_headers = LimiterDefaults {
            header_names: None,
            deny_empty_key: false,
            empty_key_status: StatusCode::IM_A_TEAPOT,
        };
        let l = limiter_with(
            "{replenishRate: 1, key-resolver: 'header:X-Key'}",
            &clock,
            &no_headers,
        );
        let decision = l.acquire(ip, &HeaderMap::new());
        assert!(
            decision.allowed,
            "deny-empty-key false lets a keyless request through"
        );
        let mut written = HeaderMap::new();
        l.write_headers(&decision, &mut written);
        assert!(written.is_empty(), "{written:?}");
        // The route's own arguments win over the settings.
        let l = limiter_with(
            "{replenishRate: 1, key-resolver: 'header:X-Key', deny-empty-key: true}",
            &clock,
            &no_headers,
        );
        let refused = l.acquire(ip, &HeaderMap::new());
        assert_eq!(
            (refused.allowed, refused.status),
            (false, StatusCode::IM_A_TEAPOT)
        );

        let renamed = LimiterDefaults {
            header_names: Some(
                ["X-Left", "X-Rate", "X-Burst", "X-Cost"].map(|n| header_name(n).expect("a name")),
            ),
            ..LimiterDefaults::default()
        };
        let l = limiter_with("{replenishRate: 5}", &clock, &renamed);
        let mut written = HeaderMap::new();
        l.write_headers(&l.acquire(ip, &HeaderMap::new()), &mut written);
        assert_eq!(written["x-left"], "4");
        assert_eq!(written["x-rate"], "5");
        assert_eq!(written["x-burst"], "5");
        assert_eq!(written["x-cost"], "1");
        assert!(header_name("not a name").is_none());
    }

    #[test]
    fn interned_texts_are_kept_once() {
        let a = intern("12.5".to_owned());
        let b = intern(String::from("12.5"));
        assert_eq!(a, "12.5");
        assert!(std::ptr::eq(a, b));
    }

    #[tokio::test(start_paused = true)]
    async fn header_keys_and_requested_tokens() {
        let clock = ManualClock::new();
        let l = limiter(
            "{replenishRate: 1, burstCapacity: 4, requestedTokens: 2, key-resolver: 'header:X-Api-Key'}",
            &clock,
        );
        let ip: IpAddr = "10.0.0.1".parse().expect("ip");
        let mut h = HeaderMap::new();
        let empty = l.acquire(ip, &h);
        assert!(!empty.allowed);
        assert_eq!(empty.status, StatusCode::FORBIDDEN);
        h.insert("x-api-key", http::HeaderValue::from_static("k1"));
        assert_eq!(l.acquire(ip, &h).remaining, 2);
        assert_eq!(l.acquire(ip, &h).remaining, 0);
        assert!(!l.acquire(ip, &h).allowed);
        let mut hs = Vec::new();
        l.write_headers(&l.acquire(ip, &h), &mut hs);
        assert_eq!(hs[3].0, "x-ratelimit-requested-tokens");
        assert_eq!(hs[3].1, "2");
        let mut map = HeaderMap::new();
        l.write_headers(&l.acquire(ip, &h), &mut map);
        assert_eq!(map["x-ratelimit-remaining"], "0");
        assert_eq!(map["x-ratelimit-replenish-rate"], "1");
        assert_eq!(map["x-ratelimit-burst-capacity"], "4");
    }
}
