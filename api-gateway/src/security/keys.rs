//! Verification keys: from the settings (a shared secret, PEM public keys)
//! or from a JWKS document, and the JWKS cache that refetches on expiry or
//! on an unknown `kid`, at most once per interval.
//!
//! The fetching itself is behind [`JwksSource`], so the cache is tested
//! with a counted in-memory source and paused time; [`super::fetch`] is the
//! HTTP edge.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use cloud_runtime::clock::SharedClock;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use tokio::time::Instant;

use super::jwt::SUPPORTED_ALGORITHMS;

/// One key that can verify signatures.
#[derive(Clone)]
pub struct VerifyingKey {
    kid: Option<String>,
    algorithms: Vec<Algorithm>,
    key: DecodingKey,
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("algorithms", &self.algorithms)
            .finish_non_exhaustive()
    }
}

/// A key that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {reason}")]
pub struct KeyError {
    what: String,
    reason: String,
    #[source]
    source: Option<jsonwebtoken::errors::Error>,
}

impl KeyError {
    fn new(what: &str, reason: impl Into<String>) -> KeyError {
        KeyError {
            what: what.to_owned(),
            reason: reason.into(),
            source: None,
        }
    }

    fn with_source(mut self, source: jsonwebtoken::errors::Error) -> KeyError {
        self.source = Some(source);
        self
    }
}

impl VerifyingKey {
    /// A shared secret for HS256/384/512 (its UTF-8 bytes).
    pub fn secret(secret: &[u8], allowed: &[Algorithm]) -> Result<VerifyingKey, KeyError> {
        if secret.len() < 32 {
            return Err(KeyError::new(
                "secret",
                format!(
                    "{} bytes is too short: HS256 needs at least 32 (RFC 7518, 3.2)",
                    secret.len()
                ),
            ));
        }
        let key = DecodingKey::from_secret(secret)
            .map_err(|e| KeyError::new("secret", "not usable").with_source(e))?;
        VerifyingKey::of_family(None, key, allowed, "secret")
    }

    /// A PEM public key: RSA (`PUBLIC KEY` or `RSA PUBLIC KEY`), EC P-256 /
    /// P-384 or Ed25519.
    pub fn pem(pem: &[u8], allowed: &[Algorithm], what: &str) -> Result<VerifyingKey, KeyError> {
        let key = DecodingKey::from_rsa_pem(pem)
            .or_else(|_| DecodingKey::from_ec_pem(pem))
            .or_else(|_| DecodingKey::from_ed_pem(pem))
            .map_err(|e| {
                KeyError::new(what, "not an RSA, EC or Ed25519 public key in PEM").with_source(e)
            })?;
        VerifyingKey::of_family(None, key, allowed, what)
    }

    fn of_family(
        kid: Option<String>,
        key: DecodingKey,
        allowed: &[Algorithm],
        what: &str,
    ) -> Result<VerifyingKey, KeyError> {
        let algorithms: Vec<Algorithm> = key
            .family()
            .algorithms()
            .iter()
            .copied()
            .filter(|a| SUPPORTED_ALGORITHMS.contains(a) && allowed.contains(a))
            .collect();
        if algorithms.is_empty() {
            return Err(KeyError::new(
                what,
                format!(
                    "none of the accepted algorithms ({allowed:?}) is of its family {:?}",
                    key.family()
                ),
            ));
        }
        Ok(VerifyingKey {
            kid,
            algorithms,
            key,
        })
    }

    /// Whether this key verifies `alg` signatures.
    pub fn accepts(&self, alg: Algorithm) -> bool {
        self.algorithms.contains(&alg)
    }

    /// The key id, for keys from a JWKS.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    pub(crate) fn decoding_key(&self) -> &DecodingKey {
        &self.key
    }
}

/// Keys by id.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: Vec<VerifyingKey>,
}

impl KeySet {
    /// A set of `keys`.
    pub fn new(keys: Vec<VerifyingKey>) -> KeySet {
        KeySet { keys }
    }

    /// The signing keys of a JWKS document (RFC 7517) whose algorithm is
    /// in `allowed`. Encryption keys, symmetric keys (a JWKS is public) and
    /// key types we do not know are skipped.
    pub fn from_jwks(json: &[u8], allowed: &[Algorithm]) -> Result<KeySet, KeyError> {
        // Parsed key by key: one key of an unknown type must not hide the
        // others.
        #[derive(serde::Deserialize)]
        struct Raw {
            keys: Vec<serde_json::Value>,
        }
        let raw: Raw = serde_json::from_slice(json)
            .map_err(|e| KeyError::new("JWKS", format!("not a JSON object with `keys`: {e}")))?;
        let mut keys = Vec::new();
        for value in raw.keys {
            let set: Result<JwkSet, _> =
                serde_json::from_value(serde_json::json!({ "keys": [value] }));
            let Some(jwk) = set.ok().and_then(|s| s.keys.into_iter().next()) else {
                tracing::debug!("JWKS key of an unknown type skipped");
                continue;
            };
            let kid = jwk.common.key_id.clone();
            if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
                continue;
            }
            let family_algs: Vec<Algorithm> = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => AlgorithmFamily::Rsa.algorithms().to_vec(),
                AlgorithmParameters::EllipticCurve(p) => match p.curve {
                    EllipticCurve::P256 => vec![Algorithm::ES256],
                    EllipticCurve::P384 => vec![Algorithm::ES384],
                    _ => continue,
                },
                AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
                    vec![Algorithm::EdDSA]
                }
                _ => continue,
            };
            let algorithms: Vec<Algorithm> = family_algs
                .into_iter()
                .filter(|a| allowed.contains(a))
                .filter(|a| match jwk.common.key_algorithm {
                    Some(named) => key_algorithm(named) == Some(*a),
                    None => true,
                })
                .collect();
            if algorithms.is_empty() {
                continue;
            }
            match DecodingKey::from_jwk(&jwk) {
                Ok(key) => keys.push(VerifyingKey {
                    kid,
                    algorithms,
                    key,
                }),
                Err(e) => tracing::warn!(kid = ?kid, error = %e, "JWKS key not usable; skipped"),
            }
        }
        Ok(KeySet { keys })
    }

    /// Whether a key has id `kid`.
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }

    /// The keys that may verify a token with `kid`: those with that id, or
    /// all when the token names none.
    pub fn candidates<'s>(
        &'s self,
        kid: Option<&'s str>,
    ) -> impl Iterator<Item = &'s VerifyingKey> + 's {
        self.keys
            .iter()
            .filter(move |k| kid.is_none() || k.kid.as_deref() == kid)
    }

    /// All keys.
    pub fn keys(&self) -> &[VerifyingKey] {
        &self.keys
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

fn key_algorithm(named: KeyAlgorithm) -> Option<Algorithm> {
    Some(match named {
        KeyAlgorithm::HS256 => Algorithm::HS256,
        KeyAlgorithm::HS384 => Algorithm::HS384,
        KeyAlgorithm::HS512 => Algorithm::HS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

/// A JWKS document could not be fetched.
#[derive(Debug, thiserror::Error)]
#[error("JWKS {url}: {reason}")]
pub struct FetchError {
    url: String,
    reason: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl FetchError {
    /// Fetching `url` failed because of `reason`.
    pub fn new(url: impl Into<String>, reason: impl Into<String>) -> FetchError {
        FetchError {
            url: url.into(),
            reason: reason.into(),
            source: None,
        }
    }

    /// Adds the underlying error.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }
}

/// Where a JWKS document comes from (HTTP in the gateway, memory in
/// tests).
pub trait JwksSource: Send + Sync + fmt::Debug {
    /// Fetches the document.
    fn fetch(&self) -> Pin<Box<dyn Future<Output = Result<Bytes, FetchError>> + Send + '_>>;
}

/// No key could be found for a token: the JWKS could not be fetched and
/// nothing is cached.
#[derive(Debug, thiserror::Error)]
#[error("the signing keys are not available")]
pub struct KeysUnavailable {
    #[source]
    source: Option<FetchError>,
}

/// How the JWKS cache behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachePolicy {
    /// Keys are refetched when older than this.
    pub ttl: Duration,
    /// At most one fetch per this interval, whatever the reason (unknown
    /// `kid`, expiry, a failed fetch): a flood of tokens with made-up key
    /// ids cannot hammer the JWKS endpoint.
    pub min_refresh_interval: Duration,
}

struct Cached {
    keys: Arc<KeySet>,
    fetched: Instant,
}

/// The JWKS keys, cached.
pub struct JwksCache {
    source: Arc<dyn JwksSource>,
    clock: SharedClock,
    policy: CachePolicy,
    allowed: Vec<Algorithm>,
    current: ArcSwapOption<Cached>,
    /// Held while fetching (one fetch at a time); holds the last attempt.
    fetching: tokio::sync::Mutex<Option<Instant>>,
}

impl fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwksCache")
            .field("source", &self.source)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl JwksCache {
    /// A cache over `source` (nothing fetched yet) for keys of the
    /// `allowed` algorithms.
    pub fn new(
        source: Arc<dyn JwksSource>,
        clock: SharedClock,
        policy: CachePolicy,
        allowed: Vec<Algorithm>,
    ) -> JwksCache {
        JwksCache {
            source,
            clock,
            policy,
            allowed,
            current: ArcSwapOption::empty(),
            fetching: tokio::sync::Mutex::new(None),
        }
    }

    /// The keys to verify a token naming `kid`: the cached ones while they
    /// are fresh and know `kid`; otherwise fetched again (once per
    /// [`CachePolicy::min_refresh_interval`]). When a fetch fails, the
    /// keys fetched before stay in use.
    pub async fn keys(&self, kid: Option<&str>) -> Result<Arc<KeySet>, KeysUnavailable> {
        if let Some(keys) = self.usable(kid) {
            return Ok(keys);
        }
        let mut last = self.fetching.lock().await;
        // Another request may have fetched while this one waited.
        if let Some(keys) = self.usable(kid) {
            return Ok(keys);
        }
        let now = self.clock.now();
        let cached = self.current.load_full().map(|c| Arc::clone(&c.keys));
        if last.is_some_and(|t| now.saturating_duration_since(t) < self.policy.min_refresh_interval)
        {
            return cached.ok_or(KeysUnavailable { source: None });
        }
        *last = Some(now);
        let fetched = self.source.fetch().await.and_then(|body| {
            KeySet::from_jwks(&body, &self.allowed)
                .map_err(|e| FetchError::new("", "bad JWKS document").with_source(e))
        });
        match fetched {
            Ok(set) => {
                tracing::info!(keys = set.len(), "JWKS fetched");
                let keys = Arc::new(set);
                self.current.store(Some(Arc::new(Cached {
                    keys: Arc::clone(&keys),
                    fetched: self.clock.now(),
                })));
                Ok(keys)
            }
            Err(e) => {
                tracing::warn!(error = %e, source = ?std::error::Error::source(&e), stale = cached.is_some(), "JWKS fetch failed");
                cached.ok_or(KeysUnavailable { source: Some(e) })
            }
        }
    }

    /// Whether `keys` is the cached set and still fresh (not older than
    /// the TTL): what a token verified against it may be recognised by.
    pub fn is_current(&self, keys: &Arc<KeySet>) -> bool {
        let current = self.current.load();
        current
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(&c.keys, keys) && self.fresh(c))
    }

    fn usable(&self, kid: Option<&str>) -> Option<Arc<KeySet>> {
        let current = self.current.load();
        let c = current.as_ref()?;
        let known = kid.is_none_or(|k| c.keys.has_kid(k));
        (self.fresh(c) && known).then(|| Arc::clone(&c.keys))
    }

    fn fresh(&self, cached: &Cached) -> bool {
        self.clock.now().saturating_duration_since(cached.fetched) < self.policy.ttl
    }
}

#[cfg(test)]
#[path = "keys_tests.rs"]
mod tests;
