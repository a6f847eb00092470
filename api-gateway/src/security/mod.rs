//! JWT validation for routes with the `JwtAuth` filter, and the claims
//! forwarded to their upstreams.
//!
//! The gateway acts as an OAuth2 resource server: it checks the bearer
//! token of a request (signature, `exp`, `nbf`, `iss`, `aud`), then the
//! route's required scopes and roles, sets the chosen claims as request
//! headers (`sub` as `X-User-Id` by default) and relays the token
//! unchanged. Clients' own copies of those headers are removed from every
//! request, on every route, so they cannot be spoofed.
//!
//! # Layout
//! - [`jwt`]: the pure checks (bearer token, signature over candidate
//!   keys, claims at an injected time, scopes and roles, claim headers) and
//!   the 401/403 answers.
//! - [`keys`]: keys from the settings or a JWKS document, and the JWKS
//!   cache (refetch on expiry or an unknown `kid`, rate-limited) over the
//!   [`keys::JwksSource`] trait.
//! - [`fetch`]: that trait over HTTP (`jwk-set-uri`, or OpenID discovery
//!   from `issuer-uri`).
//!
//! Verified tokens are remembered per I/O worker (at most 256 each), so a
//! client that sends the same token again skips the signature and the
//! decoding; `exp` and `nbf` are checked again on every request. A token
//! that a JWKS key may have verified is recognised only while the key set
//! it was verified against is the JWKS cache's current one and fresh: a
//! refetch (on expiry or an unknown `kid`) that replaces the set makes each
//! token be verified again, so a key dropped from the JWKS stops its tokens
//! at the same refetch that would stop a token never seen before.
//!
//! Settings (see `docs/api-gateway.md`): `spring.cloud.gateway.jwt.*`,
//! falling back to Spring Security's
//! `spring.security.oauth2.resourceserver.jwt.*` for `jwk-set-uri`,
//! `issuer-uri`, `audiences`, `jws-algorithms` and `public-key-location`.

pub mod fetch;
pub mod jwt;
pub mod keys;

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use cloud_runtime::clock::SharedClock;
use cloud_runtime::settings::{ConfigError, Origin};
use http::HeaderMap;
use http::header::{self, HeaderName};
use jsonwebtoken::{Algorithm, AlgorithmFamily};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::dotted_paths;
use cloud_runtime::shard::{self, CacheLine};
use fetch::{HttpJwks, JwksLocation};
use jwt::{ClaimHeaders, ClaimRules, Claims, Rejection, Requirement, SUPPORTED_ALGORITHMS};
use keys::{CachePolicy, JwksCache, JwksSource, KeySet, VerifyingKey};

/// `spring.security.*`: the resource server's JWT settings, and the user
/// of the admin API.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct SpringSecurity {
    /// `spring.security.oauth2.*`.
    pub oauth2: OAuth2,
    /// `spring.security.user.*`: when a `name` is set, the admin API asks
    /// for these Basic credentials everywhere but `/actuator/health`, as
    /// Spring Boot's actuator under Spring Security.
    pub user: cloud_runtime::auth::UserSettings,
}

/// `spring.security.oauth2.*`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct OAuth2 {
    /// `spring.security.oauth2.resourceserver.*`.
    pub resourceserver: ResourceServer,
}

/// `spring.security.oauth2.resourceserver.*`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct ResourceServer {
    /// `spring.security.oauth2.resourceserver.jwt.*`.
    pub jwt: ResourceServerJwt,
}

/// Spring Security's resource-server JWT keys (also accepted under
/// `spring.cloud.gateway.jwt`, which wins).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct ResourceServerJwt {
    /// `jwk-set-uri`: the JWKS URL (`http://` or `https://`). Default is
    /// none.
    pub jwk_set_uri: Option<String>,
    /// `issuer-uri`: the accepted `iss`; without `jwk-set-uri` the JWKS is
    /// found through its OpenID discovery document. Default is none (any
    /// issuer).
    pub issuer_uri: Option<String>,
    /// `audiences`: a token must name one in `aud`. Default is none (any).
    pub audiences: Vec<String>,
    /// `jws-algorithms`: accepted algorithms. Default is all supported
    /// (HS256/384/512, RS256/384/512, PS256/384/512, ES256/384, EdDSA),
    /// each only with keys of its family.
    pub jws_algorithms: Vec<String>,
    /// `public-key-location`: a PEM public key file (`file:` prefix
    /// allowed). Default is none.
    pub public_key_location: Option<String>,
}

/// `spring.cloud.gateway.jwt.*`: the gateway's JWT settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct JwtSettings {
    /// Spring Security's keys, under this prefix.
    #[serde(flatten)]
    pub resource: ResourceServerJwt,
    /// `secret`: a shared secret for HS256/384/512 (at least 32 bytes).
    /// Default is none.
    pub secret: Option<String>,
    /// `public-key`: a PEM public key (RSA, EC P-256/P-384, Ed25519) in
    /// the settings. Default is none.
    pub public_key: Option<String>,
    /// `leeway`: allowed clock difference for `exp` and `nbf`. Default is
    /// 60 s (Spring Security's clock skew).
    #[serde(with = "crate::settings::duration_field")]
    pub leeway: Duration,
    /// `claim-headers`: claim to the request header it is sent upstream
    /// in. A claim inside an object is named by its path, nested
    /// (`realm_access: {roles: X-Roles}`) or in Spring's brackets
    /// (`"[realm_access.roles]": X-Roles`). Default is `sub: X-User-Id`; an
    /// empty header name turns an entry off.
    pub claim_headers: Map<String, Value>,
    /// `roles-claim`: where `JwtAuth`'s `roles` are read (dotted path,
    /// such as Keycloak's `realm_access.roles`). Default is `roles`.
    pub roles_claim: String,
    /// `token-relay`: send the client's `Authorization` to the upstream
    /// unchanged. Default is true.
    pub token_relay: bool,
    /// `jwks.*`: the JWKS cache.
    pub jwks: JwksSettings,
}

impl Default for JwtSettings {
    fn default() -> Self {
        JwtSettings {
            resource: ResourceServerJwt::default(),
            secret: None,
            public_key: None,
            leeway: Duration::from_secs(60),
            claim_headers: [("sub".to_owned(), Value::from("X-User-Id"))]
                .into_iter()
                .collect(),
            roles_claim: "roles".to_owned(),
            token_relay: true,
            jwks: JwksSettings::default(),
        }
    }
}

/// `spring.cloud.gateway.jwt.jwks.*`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct JwksSettings {
    /// `cache-ttl`: keys are fetched again after this. Default is 5 min.
    #[serde(with = "crate::settings::duration_field")]
    pub cache_ttl: Duration,
    /// `min-refresh-interval`: at most one fetch per interval (an unknown
    /// `kid` triggers one). Default is 30 s.
    #[serde(with = "crate::settings::duration_field")]
    pub min_refresh_interval: Duration,
    /// `timeout`: connect and read time of one fetch. Default is 5 s.
    #[serde(with = "crate::settings::duration_field")]
    pub timeout: Duration,
    /// `trusted-x509-certificates` (ours): PEM files (paths, `file:` paths
    /// or inline PEM) whose certificates are the roots an `https` JWKS or
    /// issuer is checked against, instead of the bundled Mozilla roots: an
    /// identity provider behind a private CA. Default is none (the Mozilla
    /// roots).
    pub trusted_x509_certificates: Vec<String>,
}

impl Default for JwksSettings {
    fn default() -> Self {
        JwksSettings {
            cache_ttl: Duration::from_secs(300),
            min_refresh_interval: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
            trusted_x509_certificates: Vec::new(),
        }
    }
}

const PREFIX: &str = "spring.cloud.gateway.jwt";

/// The compiled JWT settings: keys, claim rules, claim headers.
#[derive(Debug)]
pub struct Authority {
    settings: (JwtSettings, ResourceServerJwt),
    static_keys: KeySet,
    jwks: Option<JwksCache>,
    rules: ClaimRules,
    claim_headers: ClaimHeaders,
    roles_claim: String,
    token_relay: bool,
    clock: SharedClock,
    /// Tokens verified with `static_keys`, per thread (see the module
    /// docs).
    verified: Box<[CacheLine<Mutex<Verified>>]>,
}

/// Verified tokens. Only tokens that passed a signature check are kept, so
/// no client can choose the keys: a fast seeded hash is enough (SipHash over
/// the token showed in the full chain's profile).
type Verified = HashMap<Box<str>, Arc<Admitted>, foldhash::fast::RandomState>;

/// A verified token: its claims, and the claim headers they make (the same
/// for every request that brings the token).
#[derive(Debug)]
struct Admitted {
    claims: Arc<Claims>,
    /// `exp` and `nbf`, checked again on each request.
    times: jwt::ClaimTimes,
    claim_headers: Vec<(HeaderName, http::HeaderValue)>,
    /// The JWKS key set it was verified against (none: only the settings'
    /// keys, which do not rotate, could verify it).
    jwks_keys: Option<Arc<KeySet>>,
}

/// Verified tokens each thread remembers; past it, its memory is cleared.
const VERIFIED_PER_THREAD: usize = 256;

impl Authority {
    /// Compiles the settings; `None` when no key is configured (and no
    /// other JWT setting either). The JWKS, if any, is fetched on first
    /// use.
    pub fn compile(
        gateway: &JwtSettings,
        spring: &ResourceServerJwt,
        clock: SharedClock,
        origin: &Origin,
    ) -> Result<Option<Authority>, ConfigError> {
        let fail = |key: &str, reason: String| {
            ConfigError::new(origin.clone(), Some(&format!("{PREFIX}.{key}")), reason)
        };
        let own = &gateway.resource;
        let pick = |a: &Option<String>, b: &Option<String>| {
            a.clone()
                .or_else(|| b.clone())
                .filter(|s| !s.trim().is_empty())
        };
        let jwk_set_uri = pick(&own.jwk_set_uri, &spring.jwk_set_uri);
        let issuer = pick(&own.issuer_uri, &spring.issuer_uri);
        let key_location = pick(&own.public_key_location, &spring.public_key_location);
        let audiences = if own.audiences.is_empty() {
            spring.audiences.clone()
        } else {
            own.audiences.clone()
        };
        let names = if own.jws_algorithms.is_empty() {
            &spring.jws_algorithms
        } else {
            &own.jws_algorithms
        };
        let algorithms = if names.is_empty() {
            SUPPORTED_ALGORITHMS.to_vec()
        } else {
            names
                .iter()
                .map(|n| {
                    Algorithm::from_str(n.trim())
                        .ok()
                        .filter(|a| SUPPORTED_ALGORITHMS.contains(a))
                        .ok_or_else(|| {
                            fail(
                                "jws-algorithms",
                                format!("`{n}` is not one of {SUPPORTED_ALGORITHMS:?}"),
                            )
                        })
                })
                .collect::<Result<Vec<_>, _>>()?
        };
        let mut keys = Vec::new();
        if let Some(secret) = gateway.secret.as_deref().filter(|s| !s.is_empty()) {
            keys.push(
                VerifyingKey::secret(secret.as_bytes(), &algorithms)
                    .map_err(|e| fail("secret", e.to_string()))?,
            );
        }
        if let Some(pem) = gateway
            .public_key
            .as_deref()
            .filter(|s| !s.trim().is_empty())
        {
            keys.push(
                VerifyingKey::pem(pem.as_bytes(), &algorithms, "public-key")
                    .map_err(|e| fail("public-key", e.to_string()))?,
            );
        }
        if let Some(location) = &key_location {
            let path = location.strip_prefix("file:").unwrap_or(location);
            if path.starts_with("classpath:") {
                return Err(fail(
                    "public-key-location",
                    format!("`{location}`: there is no classpath; give a file path"),
                ));
            }
            let pem = std::fs::read(Path::new(path)).map_err(|e| {
                fail(
                    "public-key-location",
                    format!("`{location}` cannot be read: {e}"),
                )
            })?;
            keys.push(
                VerifyingKey::pem(&pem, &algorithms, location)
                    .map_err(|e| fail("public-key-location", e.to_string()))?,
            );
        }
        let location = match (&jwk_set_uri, &issuer) {
            (Some(uri), _) => Some(("jwk-set-uri", JwksLocation::Direct(uri.clone()), uri)),
            (None, Some(iss)) if keys.is_empty() => {
                Some(("issuer-uri", JwksLocation::Issuer(iss.clone()), iss))
            }
            _ => None,
        };
        let jwks = match location {
            None => None,
            Some((key, location, uri)) => {
                if !uri.starts_with("http://") && !uri.starts_with("https://") {
                    return Err(fail(
                        key,
                        format!("`{uri}`: not an http:// or https:// URL"),
                    ));
                }
                const ROOTS: &str = "jwks.trusted-x509-certificates";
                let roots = crate::tls::trusted_certificates(
                    &gateway.jwks.trusted_x509_certificates,
                    &format!("{PREFIX}.{ROOTS}"),
                )
                .map_err(|e| fail(ROOTS, e.reason_with_causes()))?;
                let source: Arc<dyn JwksSource> = Arc::new(
                    HttpJwks::new(location, gateway.jwks.timeout, &roots)
                        .map_err(|e| fail(key, e.to_string()))?,
                );
                Some(source)
            }
        };
        if keys.is_empty() && jwks.is_none() {
            if issuer.is_some() || !audiences.is_empty() {
                return Err(fail(
                    "secret",
                    "no key: set a secret, public-key, public-key-location or jwk-set-uri"
                        .to_owned(),
                ));
            }
            return Ok(None);
        }
        let mut claim_headers = Vec::new();
        for (claim, header) in dotted_paths(&gateway.claim_headers, &|_| false) {
            let Some(header) = header.as_str() else {
                return Err(fail(
                    &format!("claim-headers.{claim}"),
                    format!("`{header}` is not a header name"),
                ));
            };
            if header.trim().is_empty() {
                continue;
            }
            let name = HeaderName::from_bytes(header.trim().as_bytes()).map_err(|e| {
                fail(
                    &format!("claim-headers.{claim}"),
                    format!("`{header}` is not a header name: {e}"),
                )
            })?;
            if name == header::AUTHORIZATION || name == header::HOST {
                return Err(fail(
                    &format!("claim-headers.{claim}"),
                    format!("`{header}` cannot carry a claim"),
                ));
            }
            claim_headers.push((claim, name));
        }
        let rules = ClaimRules::new(issuer.into_iter().collect(), audiences, gateway.leeway);
        let policy = CachePolicy {
            ttl: gateway.jwks.cache_ttl,
            min_refresh_interval: gateway.jwks.min_refresh_interval,
        };
        Ok(Some(Authority {
            settings: (gateway.clone(), spring.clone()),
            static_keys: KeySet::new(keys),
            jwks: jwks.map(|s| JwksCache::new(s, Arc::clone(&clock), policy, algorithms)),
            rules,
            claim_headers: ClaimHeaders::new(claim_headers),
            roles_claim: gateway.roles_claim.clone(),
            token_relay: gateway.token_relay,
            clock,
            verified: shard::shards(),
        }))
    }

    /// Whether this authority was compiled from these settings (so a
    /// refresh keeps it, and its cached keys).
    pub fn compiled_from(&self, gateway: &JwtSettings, spring: &ResourceServerJwt) -> bool {
        self.settings.0 == *gateway && self.settings.1 == *spring
    }

    /// Removes the client's copies of the claim headers from `headers`.
    pub fn strip_claim_headers(&self, headers: &mut HeaderMap) {
        self.claim_headers.strip(headers);
    }

    /// Checks the request's bearer token and the route's `requirement`;
    /// on success sets the claim headers (and removes `Authorization` when
    /// the token is not relayed).
    pub async fn admit(
        &self,
        requirement: &Requirement,
        headers: &mut HeaderMap,
    ) -> Result<Arc<Claims>, Rejection> {
        let admitted = self.verify(headers).await?;
        requirement.check(&admitted.claims, &self.roles_claim)?;
        for (name, value) in &admitted.claim_headers {
            headers.insert(name.clone(), value.clone());
        }
        if !self.token_relay {
            headers.remove(header::AUTHORIZATION);
        }
        Ok(Arc::clone(&admitted.claims))
    }

    /// The verified claims of the request's bearer token.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Arc<Claims>, Rejection> {
        Ok(Arc::clone(&self.verify(headers).await?.claims))
    }

    /// The request's bearer token, verified.
    async fn verify(&self, headers: &HeaderMap) -> Result<Arc<Admitted>, Rejection> {
        let token = jwt::bearer_token(headers).ok_or_else(Rejection::missing)?;
        let now = self.clock.epoch_millis().div_euclid(1000);
        let known = self.verified_here().get(token).cloned();
        if let Some(admitted) = known
            && self.still_trusted(&admitted)
        {
            admitted.times.check(&self.rules, now)?;
            return Ok(admitted);
        }
        let header = jwt::token_header(token)?;
        let statics_accept = self
            .static_keys
            .keys()
            .iter()
            .any(|k| k.accepts(header.alg));
        let mut remote = None;
        if let Some(cache) = &self.jwks
            && header.alg.family() != AlgorithmFamily::Hmac
        {
            match cache.keys(header.kid.as_deref()).await {
                Ok(keys) => remote = Some(keys),
                Err(e) if !statics_accept => {
                    tracing::warn!(error = %e, "no signing keys to verify a token");
                    return Err(Rejection::invalid(
                        "The signing keys could not be retrieved",
                    ));
                }
                Err(_) => {}
            }
        }
        let candidates = self.static_keys.keys().iter().chain(
            remote
                .iter()
                .flat_map(|k| k.candidates(header.kid.as_deref())),
        );
        let claims = jwt::verify(token, &header, candidates, &self.rules, now)?;
        let admitted = Arc::new(Admitted {
            times: jwt::ClaimTimes::read(&claims)?,
            claim_headers: self.claim_headers.values(&claims),
            claims: Arc::new(claims),
            jwks_keys: remote,
        });
        let mut verified = self.verified_here();
        if verified.len() >= VERIFIED_PER_THREAD {
            verified.clear();
        }
        verified.insert(token.into(), Arc::clone(&admitted));
        Ok(admitted)
    }

    /// Whether a remembered token still stands without a new check: its
    /// JWKS key set, if it had one, is still the cache's current and fresh
    /// set (the `Arc` it holds keeps that set's address from being reused).
    fn still_trusted(&self, admitted: &Admitted) -> bool {
        match (&admitted.jwks_keys, &self.jwks) {
            (None, _) => true,
            (Some(keys), Some(cache)) => cache.is_current(keys),
            (Some(_), None) => false,
        }
    }

    /// This thread's verified tokens.
    fn verified_here(&self) -> MutexGuard<'_, Verified> {
        self.verified[shard::this_thread()]
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod remembered_tokens {
    use super::*;
    use cloud_runtime::clock::ManualClock;
    use http::HeaderValue;

    const SECRET: &str = "remembered-token-secret-0123456789abcdef";

    fn bearer(claims: &Value, secret: &str) -> HeaderMap {
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(Algorithm::HS256),
            claims,
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()).expect("key"),
        )
        .expect("signs");
        let mut headers = HeaderMap::new();
        let value = HeaderValue::from_str(&format!("Bearer {token}")).expect("header value");
        headers.insert(header::AUTHORIZATION, value);
        headers
    }

    #[tokio::test]
    async fn a_remembered_token_sets_its_own_claim_headers_on_every_request() {
        let clock = ManualClock::at_epoch_millis(1_700_000_000_000);
        let settings = JwtSettings {
            secret: Some(SECRET.to_owned()),
            ..JwtSettings::default()
        };
        let authority = Authority::compile(
            &settings,
            &ResourceServerJwt::default(),
            Arc::new(clock),
            &Origin::Defaults,
        )
        .expect("compiles")
        .expect("a key is configured");
        for _ in 0..3 {
            for user in ["ada", "grace"] {
                let mut headers = bearer(
                    &serde_json::json!({"sub": user, "exp": 1_700_000_100}),
                    SECRET,
                );
                // The client's own copy is replaced by the token's claim.
                headers.insert("x-user-id", HeaderValue::from_static("mallory"));
                authority
                    .admit(&Requirement::default(), &mut headers)
                    .await
                    .expect("admitted");
                assert_eq!(headers["x-user-id"], user);
            }
        }
    }

    #[tokio::test]
    async fn a_remembered_token_is_refused_once_it_expires_and_others_are_still_checked() {
        let clock = ManualClock::at_epoch_millis(1_700_000_000_000);
        let settings = JwtSettings {
            secret: Some(SECRET.to_owned()),
            leeway: Duration::ZERO,
            ..JwtSettings::default()
        };
        let authority = Authority::compile(
            &settings,
            &ResourceServerJwt::default(),
            Arc::new(clock.clone()),
            &Origin::Defaults,
        )
        .expect("compiles")
        .expect("a key is configured");
        let good = bearer(
            &serde_json::json!({"sub": "ada", "exp": 1_700_000_100}),
            SECRET,
        );
        for _ in 0..3 {
            let claims = authority.authenticate(&good).await.expect("accepted");
            assert_eq!(claims.get("sub"), Some(&Value::from("ada")));
        }
        let forged = bearer(
            &serde_json::json!({"sub": "ada", "exp": 1_700_000_100}),
            "another-secret-another-secret-0123456789",
        );
        assert!(authority.authenticate(&forged).await.is_err(), "forged");
        clock.advance(Duration::from_secs(100));
        let late = authority.authenticate(&good).await;
        assert!(late.is_err(), "a remembered token expires like any other");
    }
}
