//! `LocalResponseCache`: upstream responses kept in memory, as SCG 4.1+
//! keeps them (its `ResponseCacheManager` rules).
//!
//! - Only a GET without a body is looked up, and only when its
//!   `Cache-Control` has neither `no-store` nor `private`.
//! - Only a 200, 206 or 301 is kept, and only when its `Cache-Control` has
//!   neither `no-store` nor `private` and it has no `Vary: *`.
//! - The key is the client's host, the path and query sent upstream, the
//!   `Authorization` and `Cookie` values, and the values of the headers the
//!   response's `Vary` names.
//! - A request with `Cache-Control: no-cache` skips the lookup and goes
//!   upstream; its fresh response replaces the entry only with
//!   `request.no-cache-strategy: UPDATE_CACHE_ENTRY` (default
//!   `SKIP_UPDATE_CACHE_ENTRY`: it is passed on untouched).
//! - Entries live `timeToLive` (default 5 minutes) after they were stored;
//!   the cache holds at most `size` bytes of bodies (oldest out first).
//! - A response that is (or will be) kept loses `Pragma` and `Expires`,
//!   its `Cache-Control` gets `max-age=<seconds left>` (replacing the
//!   upstream's or added), and then `no-cache`, `no-store` and
//!   `must-revalidate` are removed while that is above 0, `no-cache,
//!   must-revalidate` added when it reached 0. Like SCG, no `Age` header.
//!
//! The cache sits around the exchange with the upstream (around
//! `CircuitBreaker` and `Retry`): request filters run before the lookup,
//! response filters run on cached responses as on fresh ones.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use cloud_runtime::clock::SharedClock;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Response, StatusCode};
use tokio::time::Instant;

use super::Outbound;
use crate::watched::{Watch, watched};

/// SCG's default time to live.
pub const DEFAULT_TIME_TO_LIVE: Duration = Duration::from_secs(5 * 60);

/// Our default bound on the bodies kept by one cache (SCG has none).
pub const DEFAULT_SIZE: u64 = 100 * 1024 * 1024;

/// Statuses SCG keeps.
const CACHED_STATUSES: [StatusCode; 3] = [
    StatusCode::OK,
    StatusCode::PARTIAL_CONTENT,
    StatusCode::MOVED_PERMANENTLY,
];

/// How a cache behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachePolicy {
    /// How long an entry is served after it was stored.
    pub time_to_live: Duration,
    /// The most body bytes kept.
    pub size: u64,
    /// Whether a `no-cache` request's fresh response replaces the entry
    /// (`UPDATE_CACHE_ENTRY`).
    pub update_on_no_cache: bool,
}

impl Default for CachePolicy {
    fn default() -> Self {
        CachePolicy {
            time_to_live: DEFAULT_TIME_TO_LIVE,
            size: DEFAULT_SIZE,
            update_on_no_cache: false,
        }
    }
}

/// One cache (a route's, or the global one).
#[derive(Debug)]
pub struct ResponseCache {
    policy: CachePolicy,
    clock: SharedClock,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<BaseKey, Vec<Entry>>,
    /// Insertion order, for eviction; ids of replaced entries are skipped.
    order: VecDeque<(BaseKey, u64)>,
    bytes: u64,
    next_id: u64,
}

/// The part of the key every request has.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct BaseKey {
    host: Vec<u8>,
    path_and_query: String,
    authorization: Vec<Vec<u8>>,
    cookie: Vec<Vec<u8>>,
}

#[derive(Debug, Clone)]
struct Entry {
    id: u64,
    /// The headers the response varies on, with the request's values.
    vary: Vec<(HeaderName, Vec<Vec<u8>>)>,
    status: StatusCode,
    headers: HeaderMap,
    extensions: http::Extensions,
    body: Bytes,
    stored: Instant,
}

/// A request the cache may answer.
#[derive(Debug, Clone)]
struct Lookup {
    key: BaseKey,
    headers: HeaderMap,
    no_cache: bool,
}

impl ResponseCache {
    /// An empty cache.
    pub fn new(policy: CachePolicy, clock: SharedClock) -> ResponseCache {
        ResponseCache {
            policy,
            clock,
            state: Mutex::new(State::default()),
        }
    }

    /// How it behaves.
    pub fn policy(&self) -> CachePolicy {
        self.policy
    }

    /// Answers `out` from the cache, or from `upstream` (keeping the
    /// response when it may be kept).
    pub async fn serve<F, Fut>(self: &Arc<Self>, out: &Outbound, upstream: F) -> Response<Body>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Response<Body>>,
    {
        let Some(lookup) = lookup(out) else {
            return upstream().await;
        };
        if !lookup.no_cache
            && let Some(hit) = self.get(&lookup)
        {
            return hit;
        }
        let response = upstream().await;
        if !is_response_cacheable(&response) || (lookup.no_cache && !self.policy.update_on_no_cache)
        {
            return response;
        }
        let (mut head, body) = response.into_parts();
        let stored = self.clock.now();
        let entry = Entry {
            id: 0,
            vary: vary(&head.headers, &lookup.headers),
            status: head.status,
            headers: head.headers.clone(),
            extensions: head.extensions.clone(),
            body: Bytes::new(),
            stored,
        };
        rewrite_cache_headers(&mut head.headers, self.policy.time_to_live);
        let cache = Arc::clone(self);
        let key = lookup.key;
        let keep = move |body: Bytes| cache.insert(key, Entry { body, ..entry });
        let body = watched(
            body,
            Recording {
                kept: BytesMut::new(),
                limit: self.policy.size,
                overflow: false,
                keep: Box::new(keep),
            },
        );
        Response::from_parts(head, body)
    }

    /// The live entry for `lookup`, as a response.
    fn get(&self, lookup: &Lookup) -> Option<Response<Body>> {
        let now = self.clock.now();
        let entry = {
            let mut state = lock(&self.state);
            let variants = state.entries.get_mut(&lookup.key)?;
            let i = variants
                .iter()
                .position(|e| e.vary.iter().all(|(n, v)| *v == values(&lookup.headers, n)))?;
            let age = now.saturating_duration_since(variants[i].stored);
            if age >= self.policy.time_to_live {
                let gone = variants.swap_remove(i);
                state.bytes -= gone.body.len() as u64;
                return None;
            }
            variants[i].clone()
        };
        let age = now.saturating_duration_since(entry.stored);
        let mut response = Response::new(Body::from(entry.body.clone()));
        *response.status_mut() = entry.status;
        *response.headers_mut() = entry.headers;
        *response.extensions_mut() = entry.extensions;
        let headers = response.headers_mut();
        headers.remove(header::TRANSFER_ENCODING);
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(entry.body.len()));
        rewrite_cache_headers(headers, self.policy.time_to_live.saturating_sub(age));
        Some(response)
    }

    fn insert(&self, key: BaseKey, mut entry: Entry) {
        let size = entry.body.len() as u64;
        if size > self.policy.size {
            return;
        }
        let mut state = lock(&self.state);
        let state = &mut *state;
        state.next_id += 1;
        entry.id = state.next_id;
        let variants = state.entries.entry(key.clone()).or_default();
        if let Some(i) = variants.iter().position(|e| e.vary == entry.vary) {
            let old = variants.swap_remove(i);
            state.bytes -= old.body.len() as u64;
        }
        variants.push(entry);
        state.order.push_back((key, state.next_id));
        state.bytes += size;
        while state.bytes > self.policy.size {
            let Some((k, id)) = state.order.pop_front() else {
                break;
            };
            if let Some(variants) = state.entries.get_mut(&k) {
                if let Some(i) = variants.iter().position(|e| e.id == id) {
                    let gone = variants.swap_remove(i);
                    state.bytes -= gone.body.len() as u64;
                }
                if variants.is_empty() {
                    state.entries.remove(&k);
                }
            }
        }
        // Stale ids pile up only as entries are replaced; bound them.
        if state.order.len() > 4 * state.entries.len() + 64 {
            let entries = &state.entries;
            state.order.retain(|(k, id)| {
                entries
                    .get(k)
                    .is_some_and(|v| v.iter().any(|e| e.id == *id))
            });
        }
    }

    /// Entries kept (live or not yet found expired).
    pub fn len(&self) -> usize {
        lock(&self.state).entries.values().map(Vec::len).sum()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The key of `out`, when it may be answered from the cache.
fn lookup(out: &Outbound) -> Option<Lookup> {
    let h = &out.headers;
    let has_body = h.contains_key(header::TRANSFER_ENCODING)
        || h.get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0");
    if out.method != Method::GET || has_body || forbids_caching(h) {
        return None;
    }
    let path_and_query = match out.query.as_deref() {
        Some(q) => format!("{}?{q}", out.path),
        None => out.path.clone(),
    };
    Some(Lookup {
        key: BaseKey {
            host: h
                .get(header::HOST)
                .map(|v| v.as_bytes().to_vec())
                .unwrap_or_default(),
            path_and_query,
            authorization: values(h, &header::AUTHORIZATION),
            cookie: values(h, &header::COOKIE),
        },
        headers: h.clone(),
        no_cache: has_directive(h, "no-cache"),
    })
}

fn is_response_cacheable(response: &Response<Body>) -> bool {
    let h = response.headers();
    CACHED_STATUSES.contains(&response.status())
        && !forbids_caching(h)
        && !vary_names(h).iter().any(|n| n == "*")
}

/// `no-store` or `private` in `Cache-Control`.
fn forbids_caching(headers: &HeaderMap) -> bool {
    has_directive(headers, "no-store") || has_directive(headers, "private")
}

/// The directives of every `Cache-Control` value, as written.
fn directives(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|d| d.trim().to_owned())
        .filter(|d| !d.is_empty())
        .collect()
}

fn has_directive(headers: &HeaderMap, name: &str) -> bool {
    directives(headers).iter().any(|d| {
        let n = d.split('=').next().unwrap_or("").trim();
        n.eq_ignore_ascii_case(name)
    })
}

/// The lower-cased names listed by `Vary`, sorted, each once.
fn vary_names(headers: &HeaderMap) -> Vec<String> {
    let mut names: Vec<String> = headers
        .get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|n| n.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The request's values of the headers `response` varies on.
fn vary(response: &HeaderMap, request: &HeaderMap) -> Vec<(HeaderName, Vec<Vec<u8>>)> {
    vary_names(response)
        .iter()
        .filter_map(|n| HeaderName::from_bytes(n.as_bytes()).ok())
        .map(|n| {
            let v = values(request, &n);
            (n, v)
        })
        .collect()
}

/// The values of `name`, sorted.
fn values(headers: &HeaderMap, name: &HeaderName) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = headers
        .get_all(name)
        .iter()
        .map(|v| v.as_bytes().to_vec())
        .collect();
    v.sort();
    v
}

/// SCG's header changes on a kept response with `left` to live.
fn rewrite_cache_headers(headers: &mut HeaderMap, left: Duration) {
    headers.remove(header::PRAGMA);
    headers.remove(header::EXPIRES);
    let seconds = left.as_secs();
    let mut found = false;
    let mut kept: Vec<String> = Vec::new();
    for d in directives(headers) {
        let is_max_age = d
            .split_once('=')
            .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case("max-age"));
        if is_max_age {
            if !found {
                kept.push(format!("max-age={seconds}"));
                found = true;
            }
            continue;
        }
        kept.push(d);
    }
    if !found {
        kept.push(format!("max-age={seconds}"));
    }
    let revalidation = ["no-cache", "no-store", "must-revalidate"];
    if seconds > 0 {
        kept.retain(|d| !revalidation.iter().any(|r| d.eq_ignore_ascii_case(r)));
    } else {
        for d in ["no-cache", "must-revalidate"] {
            if !kept.iter().any(|k| k.eq_ignore_ascii_case(d)) {
                kept.push(d.to_owned());
            }
        }
    }
    match HeaderValue::from_str(&kept.join(",")) {
        Ok(v) => {
            headers.insert(header::CACHE_CONTROL, v);
        }
        Err(_) => {
            headers.remove(header::CACHE_CONTROL);
        }
    }
}

/// A body on its way to the client, kept up to `limit` bytes for the
/// cache; `keep` receives it when the body ended whole within the limit.
struct Recording {
    kept: BytesMut,
    limit: u64,
    overflow: bool,
    keep: Box<dyn FnOnce(Bytes) + Send>,
}

impl Watch for Recording {
    fn data(&mut self, chunk: &Bytes) {
        if self.overflow {
            return;
        }
        if (self.kept.len() + chunk.len()) as u64 > self.limit {
            self.overflow = true;
            self.kept = BytesMut::new();
        } else {
            self.kept.extend_from_slice(chunk);
        }
    }

    fn end(self, whole: bool) {
        if whole && !self.overflow {
            (self.keep)(self.kept.freeze());
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests;
