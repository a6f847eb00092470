use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use cloud_runtime::clock::ManualClock;
use serde_json::{Value, json};

use super::*;

fn jwk(name: &str) -> Value {
    let text = match name {
        "rsa-1" => include_str!("../../tests/keys/rsa-1.jwk.json"),
        "rsa-2" => include_str!("../../tests/keys/rsa-2.jwk.json"),
        "ec-256" => include_str!("../../tests/keys/ec-256.jwk.json"),
        "ec-384" => include_str!("../../tests/keys/ec-384.jwk.json"),
        _ => include_str!("../../tests/keys/ed-1.jwk.json"),
    };
    serde_json::from_str(text).expect("test JWK")
}

fn jwks(keys: &[Value]) -> Vec<u8> {
    json!({ "keys": keys }).to_string().into_bytes()
}

#[test]
fn a_jwks_yields_its_signing_keys_and_skips_the_rest() {
    let mut enc = jwk("rsa-2");
    enc["use"] = "enc".into();
    let doc = jwks(&[
        jwk("rsa-1"),
        jwk("ec-256"),
        jwk("ec-384"),
        jwk("ed-1"),
        enc,
        json!({"kty": "oct", "kid": "sym", "k": "c2VjcmV0"}),
        json!({"kty": "weird", "kid": "w"}),
    ]);
    let set = KeySet::from_jwks(&doc, SUPPORTED_ALGORITHMS).expect("parses");
    let kids: Vec<_> = set.keys().iter().filter_map(VerifyingKey::kid).collect();
    assert_eq!(kids, ["rsa-1", "ec-256", "ec-384", "ed-1"]);
    let by = |kid: &str| {
        set.keys()
            .iter()
            .find(|k| k.kid() == Some(kid))
            .expect("key")
    };
    assert!(by("rsa-1").accepts(Algorithm::RS256) && !by("rsa-1").accepts(Algorithm::HS256));
    assert!(by("ec-256").accepts(Algorithm::ES256) && !by("ec-256").accepts(Algorithm::ES384));
    assert!(by("ec-384").accepts(Algorithm::ES384));
    assert!(by("ed-1").accepts(Algorithm::EdDSA));
    assert_eq!(set.candidates(None).count(), 4);
    assert_eq!(set.candidates(Some("nope")).count(), 0);
}

#[test]
fn a_jwk_alg_narrows_its_key_and_jws_algorithms_filter_all() {
    let mut k = jwk("rsa-1");
    k["alg"] = "RS384".into();
    let set = KeySet::from_jwks(&jwks(&[k]), SUPPORTED_ALGORITHMS).expect("parses");
    let key = &set.keys()[0];
    assert!(key.accepts(Algorithm::RS384) && !key.accepts(Algorithm::RS256));
    let only_es = KeySet::from_jwks(&jwks(&[jwk("rsa-1"), jwk("ec-256")]), &[Algorithm::ES256])
        .expect("parses");
    assert_eq!(only_es.len(), 1);
}

#[test]
fn documents_that_are_not_a_jwks_are_errors() {
    assert!(KeySet::from_jwks(b"not json", SUPPORTED_ALGORITHMS).is_err());
    assert!(KeySet::from_jwks(b"{\"k\": []}", SUPPORTED_ALGORITHMS).is_err());
}

#[test]
fn short_secrets_and_non_keys_are_refused() {
    assert!(VerifyingKey::secret(b"short", SUPPORTED_ALGORITHMS).is_err());
    assert!(VerifyingKey::pem(b"-----BEGIN NOTHING-----", SUPPORTED_ALGORITHMS, "k").is_err());
    let rsa = include_bytes!("../../tests/keys/rsa-1.pub.pem");
    let e = VerifyingKey::pem(rsa, &[Algorithm::HS256], "k").expect_err("no RSA alg allowed");
    assert!(e.to_string().contains("family"), "{e}");
}

/// A JWKS source in memory that counts its fetches.
#[derive(Debug, Default)]
struct Counted {
    doc: Mutex<Option<Vec<u8>>>,
    fetches: AtomicUsize,
}

impl Counted {
    fn serve(&self, keys: &[Value]) {
        *self.doc.lock().expect("lock") = Some(jwks(keys));
    }

    fn fail(&self) {
        *self.doc.lock().expect("lock") = None;
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

impl JwksSource for Counted {
    fn fetch(&self) -> Pin<Box<dyn Future<Output = Result<Bytes, FetchError>> + Send + '_>> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        let doc = self.doc.lock().expect("lock").clone();
        Box::pin(async move {
            doc.map(Bytes::from)
                .ok_or_else(|| FetchError::new("mem://jwks", "down"))
        })
    }
}

fn cache(source: &Arc<Counted>, clock: &ManualClock) -> JwksCache {
    let source: Arc<dyn JwksSource> = source.clone();
    JwksCache::new(
        source,
        Arc::new(clock.clone()),
        CachePolicy {
            ttl: Duration::from_secs(300),
            min_refresh_interval: Duration::from_secs(30),
        },
        SUPPORTED_ALGORITHMS.to_vec(),
    )
}

#[tokio::test]
async fn known_kids_are_served_from_the_cache() {
    let (source, clock) = (Arc::new(Counted::default()), ManualClock::new());
    source.serve(&[jwk("rsa-1")]);
    let cache = cache(&source, &clock);
    for _ in 0..5 {
        assert!(
            cache
                .keys(Some("rsa-1"))
                .await
                .expect("keys")
                .has_kid("rsa-1")
        );
        assert_eq!(cache.keys(None).await.expect("keys").len(), 1);
    }
    assert_eq!(source.fetches(), 1);
}

#[tokio::test]
async fn an_unknown_kid_refetches_once_per_interval_so_a_flood_cannot_hammer() {
    let (source, clock) = (Arc::new(Counted::default()), ManualClock::new());
    source.serve(&[jwk("rsa-1")]);
    let cache = cache(&source, &clock);
    cache.keys(Some("rsa-1")).await.expect("first fetch");
    clock.advance(Duration::from_secs(31));
    for i in 0..200 {
        let keys = cache
            .keys(Some(&format!("bogus-{i}")))
            .await
            .expect("cached");
        assert!(keys.has_kid("rsa-1"));
    }
    assert_eq!(source.fetches(), 2, "one refetch for the whole flood");

    // Rotation: the new kid appears; within the interval it is not
    // fetched, after it it is.
    source.serve(&[jwk("rsa-1"), jwk("rsa-2")]);
    assert!(
        !cache
            .keys(Some("rsa-2"))
            .await
            .expect("cached")
            .has_kid("rsa-2")
    );
    clock.advance(Duration::from_secs(30));
    assert!(
        cache
            .keys(Some("rsa-2"))
            .await
            .expect("refetched")
            .has_kid("rsa-2")
    );
    assert_eq!(source.fetches(), 3);
}

#[tokio::test]
async fn expired_keys_are_refetched_and_kept_when_the_fetch_fails() {
    let (source, clock) = (Arc::new(Counted::default()), ManualClock::new());
    source.serve(&[jwk("ec-256")]);
    let cache = cache(&source, &clock);
    cache.keys(None).await.expect("first fetch");
    clock.advance(Duration::from_secs(301));
    source.fail();
    let stale = cache.keys(Some("ec-256")).await.expect("stale keys kept");
    assert!(stale.has_kid("ec-256"));
    assert_eq!(source.fetches(), 2);
    // The failure also counts against the interval.
    cache.keys(Some("ec-256")).await.expect("stale keys kept");
    assert_eq!(source.fetches(), 2);
}

#[tokio::test]
async fn nothing_fetched_and_the_source_down_is_unavailable() {
    let (source, clock) = (Arc::new(Counted::default()), ManualClock::new());
    let cache = cache(&source, &clock);
    let e = cache.keys(Some("k")).await.expect_err("down");
    assert!(
        std::error::Error::source(&e).is_some(),
        "the fetch error is kept"
    );
    assert!(cache.keys(Some("k")).await.is_err());
    assert_eq!(source.fetches(), 1, "the retry waits for the interval");
}
