use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

use cloud_runtime::clock::ManualClock;
use http_body_util::BodyExt;

use super::*;

fn outbound(method: Method, path: &str, headers: &[(&str, &str)]) -> Outbound {
    let mut h = HeaderMap::new();
    h.insert(header::HOST, HeaderValue::from_static("gw.example"));
    for (n, v) in headers {
        h.append(
            HeaderName::from_bytes(n.as_bytes()).expect("name"),
            HeaderValue::from_str(v).expect("value"),
        );
    }
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
        None => (path.to_owned(), None),
    };
    Outbound {
        method,
        path,
        query,
        headers: h,
        vars: Vec::new(),
        preserve_host: false,
        host: None,
        remote: IpAddr::from([127, 0, 0, 1]),
        response_headers: Vec::new(),
        fallback: None,
        uri: None,
    }
}

/// An upstream that counts its calls and answers `status` with `headers`
/// and the call number as the body.
struct Upstream {
    calls: AtomicUsize,
    status: StatusCode,
    headers: Vec<(&'static str, &'static str)>,
}

impl Upstream {
    fn new(status: StatusCode, headers: &[(&'static str, &'static str)]) -> Upstream {
        Upstream {
            calls: AtomicUsize::new(0),
            status,
            headers: headers.to_vec(),
        }
    }

    async fn respond(&self) -> Response<Body> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let mut r = Response::new(Body::from(format!("call {n}")));
        *r.status_mut() = self.status;
        for (name, value) in &self.headers {
            r.headers_mut()
                .append(*name, HeaderValue::from_static(value));
        }
        r
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

fn cache(clock: &ManualClock, policy: CachePolicy) -> Arc<ResponseCache> {
    Arc::new(ResponseCache::new(policy, Arc::new(clock.clone())))
}

fn policy(ttl_secs: u64) -> CachePolicy {
    CachePolicy {
        time_to_live: Duration::from_secs(ttl_secs),
        ..CachePolicy::default()
    }
}

/// Serves `out` and reads the body to its end (which stores it).
async fn fetch(
    c: &Arc<ResponseCache>,
    out: &Outbound,
    up: &Upstream,
) -> (StatusCode, HeaderMap, String) {
    let r = c.serve(out, || up.respond()).await;
    let (head, body) = r.into_parts();
    let bytes = body.collect().await.expect("body").to_bytes();
    (
        head.status,
        head.headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

fn cache_control(h: &HeaderMap) -> &str {
    h.get(header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[tokio::test]
async fn repeated_gets_are_answered_from_the_cache_with_max_age_counting_down() {
    let clock = ManualClock::new();
    let c = cache(&clock, policy(30));
    let up = Upstream::new(StatusCode::OK, &[("expires", "0"), ("pragma", "no-cache")]);
    let out = outbound(Method::GET, "/a?x=1", &[]);
    let (s, h, body) = fetch(&c, &out, &up).await;
    assert_eq!((s, body.as_str()), (StatusCode::OK, "call 1"));
    assert_eq!(cache_control(&h), "max-age=30");
    assert!(!h.contains_key(header::EXPIRES) && !h.contains_key(header::PRAGMA));
    clock.advance(Duration::from_secs(10));
    let (s, h, body) = fetch(&c, &out, &up).await;
    assert_eq!((s, body.as_str()), (StatusCode::OK, "call 1"));
    assert_eq!(cache_control(&h), "max-age=20");
    assert_eq!(h[header::CONTENT_LENGTH], "6");
    assert_eq!(up.calls(), 1);
    // Another query, host or credential is another entry.
    fetch(&c, &outbound(Method::GET, "/a?x=2", &[]), &up).await;
    fetch(
        &c,
        &outbound(Method::GET, "/a?x=1", &[("authorization", "Bearer t")]),
        &up,
    )
    .await;
    assert_eq!(up.calls(), 3);
}

#[tokio::test]
async fn entries_expire_after_the_time_to_live() {
    let clock = ManualClock::new();
    let c = cache(&clock, policy(30));
    let up = Upstream::new(StatusCode::OK, &[]);
    let out = outbound(Method::GET, "/a", &[]);
    fetch(&c, &out, &up).await;
    clock.advance(Duration::from_secs(29));
    assert_eq!(fetch(&c, &out, &up).await.2, "call 1");
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        fetch(&c, &out, &up).await.2,
        "call 2",
        "expired: fetched again"
    );
    assert_eq!(fetch(&c, &out, &up).await.2, "call 2");
}

#[tokio::test]
async fn no_store_private_and_other_statuses_are_not_kept() {
    let clock = ManualClock::new();
    let c = cache(&clock, policy(30));
    let out = outbound(Method::GET, "/a", &[]);
    for (status, headers) in [
        (StatusCode::OK, vec![("cache-control", "no-store")]),
        (StatusCode::OK, vec![("cache-control", "public, private")]),
        (StatusCode::OK, vec![("vary", "*")]),
        (StatusCode::NOT_FOUND, vec![]),
        (StatusCode::INTERNAL_SERVER_ERROR, vec![]),
    ] {
        let up = Upstream::new(status, &headers);
        let (_, h, _) = fetch(&c, &out, &up).await;
        fetch(&c, &out, &up).await;
        assert_eq!(up.calls(), 2, "{status} {headers:?}");
        assert!(!cache_control(&h).contains("max-age"), "left untouched");
    }
    assert!(c.is_empty());
}

#[tokio::test]
async fn only_bodiless_gets_that_allow_storing_are_looked_up() {
    let clock = ManualClock::new();
    let c = cache(&clock, policy(30));
    let up = Upstream::new(StatusCode::OK, &[]);
    for out in [
        outbound(Method::POST, "/a", &[]),
        outbound(Method::GET, "/a", &[("content-length", "3")]),
        outbound(Method::GET, "/a", &[("cache-control", "no-store")]),
    ] {
        fetch(&c, &out, &up).await;
        fetch(&c, &out, &up).await;
    }
    assert_eq!(up.calls(), 6);
}

#[tokio::test]
async fn vary_keeps_one_entry_per_value_of_the_named_headers() {
    let clock = ManualClock::new();
    let c = cache(&clock, policy(30));
    let up = Upstream::new(StatusCode::OK, &[("vary", "Accept")]);
    let json = outbound(Method::GET, "/a", &[("accept", "application/json")]);
    let xml = outbound(Method::GET, "/a", &[("accept", "application/xml")]);
    assert_eq!(fetch(&c, &json, &up).await.2, "call 1");
    assert_eq!(fetch(&c, &xml, &up).await.2, "call 2");
    assert_eq!(fetch(&c, &json, &up).await.2, "call 1");
    assert_eq!(fetch(&c, &xml, &up).await.2, "call 2");
}

#[tokio::test]
async fn no_cache_requests_go_upstream_and_update_only_when_told() {
    let clock = ManualClock::new();
    let out = outbound(Method::GET, "/a", &[]);
    let fresh = outbound(Method::GET, "/a", &[("cache-control", "no-cache")]);
    let skip = cache(&clock, policy(30));
    let up = Upstream::new(StatusCode::OK, &[]);
    fetch(&skip, &out, &up).await;
    assert_eq!(fetch(&skip, &fresh, &up).await.2, "call 2");
    assert_eq!(
        fetch(&skip, &out, &up).await.2,
        "call 1",
        "entry not updated"
    );
    let update = cache(
        &clock,
        CachePolicy {
            update_on_no_cache: true,
            ..policy(30)
        },
    );
    let up = Upstream::new(StatusCode::OK, &[]);
    fetch(&update, &out, &up).await;
    assert_eq!(fetch(&update, &fresh, &up).await.2, "call 2");
    assert_eq!(fetch(&update, &out, &up).await.2, "call 2", "entry updated");
}

#[tokio::test]
async fn the_oldest_entries_go_when_the_size_is_exceeded() {
    let clock = ManualClock::new();
    let c = cache(
        &clock,
        CachePolicy {
            size: 12,
            ..policy(30)
        },
    );
    let up = Upstream::new(StatusCode::OK, &[]);
    fetch(&c, &outbound(Method::GET, "/1", &[]), &up).await;
    fetch(&c, &outbound(Method::GET, "/2", &[]), &up).await;
    assert_eq!(c.len(), 2, "two bodies of 6 bytes fit");
    fetch(&c, &outbound(Method::GET, "/3", &[]), &up).await;
    assert_eq!(c.len(), 2);
    assert_eq!(
        fetch(&c, &outbound(Method::GET, "/1", &[]), &up).await.2,
        "call 4",
        "evicted"
    );
    assert_eq!(
        fetch(&c, &outbound(Method::GET, "/3", &[]), &up).await.2,
        "call 3"
    );
}

#[test]
fn cache_control_is_rewritten_as_scg_does() {
    let rewritten = |value: &str, secs: u64| {
        let mut h = HeaderMap::new();
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_str(value).expect("value"),
        );
        rewrite_cache_headers(&mut h, Duration::from_secs(secs));
        cache_control(&h).to_owned()
    };
    assert_eq!(
        rewritten("public, max-age=600, must-revalidate", 30),
        "public,max-age=30"
    );
    assert_eq!(rewritten("no-cache", 30), "max-age=30");
    assert_eq!(
        rewritten("public, max-age=600", 0),
        "public,max-age=0,no-cache,must-revalidate"
    );
}

proptest::proptest! {
    /// Whatever the upstream wrote, the rewritten `Cache-Control` is one
    /// valid value with exactly one `max-age`, the one given.
    #[test]
    fn rewritten_cache_control_has_exactly_the_given_max_age(
        value in "[ -~]{0,60}",
        seconds in 0u64..100_000,
    ) {
        let mut h = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(header::CACHE_CONTROL, v);
        }
        rewrite_cache_headers(&mut h, Duration::from_secs(seconds));
        let out = cache_control(&h);
        let ages: Vec<&str> = out
            .split(',')
            .filter(|d| d.trim().to_ascii_lowercase().starts_with("max-age="))
            .collect();
        let expected = format!("max-age={seconds}");
        proptest::prop_assert_eq!(ages, vec![expected.as_str()]);
    }
}
