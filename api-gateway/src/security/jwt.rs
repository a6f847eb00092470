//! Token checks without I/O: the bearer token of a request, its signature
//! against candidate keys, its time and audience claims against an
//! injected `now`, a route's required scopes and roles, and the claims
//! forwarded as headers.
//!
//! Every failure is a [`Rejection`], answered as RFC 6750 says: 401 with
//! `WWW-Authenticate: Bearer` when no token came, 401 with
//! `error="invalid_token"` when it is not acceptable, 403 with
//! `error="insufficient_scope"` when it lacks a scope or role.

use std::time::Duration;

use axum::body::Body;
use axum::response::IntoResponse;
use cloud_runtime::error_body::SpringError;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Response, StatusCode};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Header, Validation};
use serde_json::{Map, Value};

use super::keys::VerifyingKey;
use crate::config::{Args, InvalidDefinition};

/// The algorithms the gateway accepts (`alg: none` is not one: a token
/// that names it is malformed).
pub const SUPPORTED_ALGORITHMS: &[Algorithm] = &[
    Algorithm::HS256,
    Algorithm::HS384,
    Algorithm::HS512,
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// A token's claims, once verified.
pub type Claims = Map<String, Value>;

/// Why a request was refused. See the [module docs](self) for the answers.
#[derive(Debug, thiserror::Error)]
#[error("{description}")]
pub struct Rejection {
    kind: Kind,
    description: String,
    #[source]
    source: Option<jsonwebtoken::errors::Error>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Missing,
    Invalid,
    InsufficientScope(String),
}

impl Rejection {
    /// No bearer token came with the request.
    pub fn missing() -> Rejection {
        Rejection {
            kind: Kind::Missing,
            description: "Full authentication is required to access this resource".to_owned(),
            source: None,
        }
    }

    /// The token is not acceptable because of `description`.
    pub fn invalid(description: impl Into<String>) -> Rejection {
        Rejection {
            kind: Kind::Invalid,
            description: description.into(),
            source: None,
        }
    }

    /// The token lacks `scope` (the scopes or roles the route needs, as
    /// text).
    pub fn insufficient_scope(scope: impl Into<String>) -> Rejection {
        Rejection {
            kind: Kind::InsufficientScope(scope.into()),
            description:
                "The request requires higher privileges than provided by the access token."
                    .to_owned(),
            source: None,
        }
    }

    fn with_source(mut self, source: jsonwebtoken::errors::Error) -> Rejection {
        self.source = Some(source);
        self
    }

    /// Whether no token came.
    pub fn is_missing(&self) -> bool {
        self.kind == Kind::Missing
    }

    /// Whether the token was not acceptable (401 `invalid_token`).
    pub fn is_invalid_token(&self) -> bool {
        self.kind == Kind::Invalid
    }

    /// Whether the token lacked a scope or role (403).
    pub fn is_insufficient_scope(&self) -> bool {
        matches!(self.kind, Kind::InsufficientScope(_))
    }

    /// The description given to the client.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// 401, or 403 for a missing scope.
    pub fn status(&self) -> StatusCode {
        match self.kind {
            Kind::InsufficientScope(_) => StatusCode::FORBIDDEN,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// The `WWW-Authenticate` value (RFC 6750, section 3).
    pub fn www_authenticate(&self) -> String {
        let uri = "error_uri=\"https://tools.ietf.org/html/rfc6750#section-3.1\"";
        match &self.kind {
            Kind::Missing => "Bearer".to_owned(),
            Kind::Invalid => format!(
                "Bearer error=\"invalid_token\", error_description=\"{}\", {uri}",
                quotable(&self.description)
            ),
            Kind::InsufficientScope(scope) => format!(
                "Bearer error=\"insufficient_scope\", error_description=\"{}\", {uri}, scope=\"{}\"",
                quotable(&self.description),
                quotable(scope)
            ),
        }
    }

    /// The answer: the status, `WWW-Authenticate` and Spring's JSON error
    /// body.
    pub fn answer(&self, path: &str) -> Response<Body> {
        let mut response = SpringError::new(self.status(), &self.description)
            .at(path)
            .into_response();
        if let Ok(v) = HeaderValue::from_str(&self.www_authenticate()) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        response
    }
}

/// `text` with only the characters RFC 6750 allows inside a quoted
/// `error_description` (printable ASCII without `"` and `\`).
fn quotable(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            ' ' | '!' | '#'..='[' | ']'..='~' => c,
            _ => '\'',
        })
        .collect()
}

/// The bearer token of `headers` (`Authorization: Bearer <token>`, the
/// scheme in any case), or `None`.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The claim rules of the gateway: issuers, audiences and clock leeway.
#[derive(Debug, Clone)]
pub struct ClaimRules {
    /// Accepted `iss` values; empty accepts any.
    pub issuers: Vec<String>,
    /// Accepted `aud` values (a token must name one); empty accepts any.
    pub audiences: Vec<String>,
    /// Allowed clock difference for `exp` and `nbf`.
    pub leeway: Duration,
    /// One per algorithm: `jsonwebtoken` wants every algorithm of a
    /// validation in the key's family.
    validations: Vec<(Algorithm, Validation)>,
}

impl ClaimRules {
    /// Rules with `issuers`, `audiences` and `leeway`.
    pub fn new(issuers: Vec<String>, audiences: Vec<String>, leeway: Duration) -> ClaimRules {
        let validations = SUPPORTED_ALGORITHMS
            .iter()
            .map(|alg| {
                let mut v = Validation::new(*alg);
                v.required_spec_claims.clear();
                // Time, issuer and audience are checked here, against the
                // injected clock.
                v.validate_exp = false;
                v.validate_nbf = false;
                v.validate_aud = false;
                (*alg, v)
            })
            .collect();
        ClaimRules {
            issuers,
            audiences,
            leeway,
            validations,
        }
    }

    fn validation(&self, alg: Algorithm) -> Option<&Validation> {
        self.validations
            .iter()
            .find(|(a, _)| *a == alg)
            .map(|(_, v)| v)
    }
}

/// The header of `token`, read before its signature is checked (to find
/// the key). A token that is not three base64url parts, names no or an
/// unknown algorithm (`none`) is refused.
pub fn token_header(token: &str) -> Result<Header, Rejection> {
    if token.split('.').count() != 3 {
        return Err(Rejection::invalid("Malformed token"));
    }
    jsonwebtoken::decode_header(token).map_err(|e| {
        let description = match e.kind() {
            ErrorKind::Json(_) => "Malformed token header or unsupported algorithm",
            _ => "Malformed token",
        };
        Rejection::invalid(description).with_source(e)
    })
}

/// Verifies `token` (whose header is `header`) with the first of
/// `candidates` that accepts its algorithm and signature, then checks its
/// claims at `now` (seconds since the epoch).
pub fn verify<'k>(
    token: &str,
    header: &Header,
    candidates: impl IntoIterator<Item = &'k VerifyingKey>,
    rules: &ClaimRules,
    now: i64,
) -> Result<Claims, Rejection> {
    let mut last = None;
    let mut tried = false;
    let Some(validation) = rules.validation(header.alg) else {
        return Err(Rejection::invalid(format!(
            "Algorithm {:?} is not accepted",
            header.alg
        )));
    };
    for key in candidates {
        if !key.accepts(header.alg) {
            continue;
        }
        tried = true;
        match jsonwebtoken::decode::<Claims>(token, key.decoding_key(), validation) {
            Ok(data) => return check_claims(data.claims, rules, now),
            Err(e) => last = Some(e),
        }
    }
    if !tried {
        let kid = header
            .kid
            .as_deref()
            .map(|k| format!(" and key id `{k}`"))
            .unwrap_or_default();
        return Err(Rejection::invalid(format!(
            "No key accepts algorithm {:?}{kid}",
            header.alg
        )));
    }
    let description = match last.as_ref().map(jsonwebtoken::errors::Error::kind) {
        Some(ErrorKind::InvalidSignature) => "Invalid signature",
        Some(ErrorKind::Json(_) | ErrorKind::Base64(_) | ErrorKind::Utf8(_)) => "Malformed token",
        _ => "The token could not be verified",
    };
    let rejection = Rejection::invalid(description);
    Err(match last {
        Some(e) => rejection.with_source(e),
        None => rejection,
    })
}

/// `exp` (required), `nbf`, `iss` and `aud` of verified `claims` at `now`.
pub fn check_claims(claims: Claims, rules: &ClaimRules, now: i64) -> Result<Claims, Rejection> {
    check_claim_times(&claims, rules, now)?;
    if !rules.issuers.is_empty() {
        let iss = claims.get("iss").and_then(Value::as_str);
        if !iss.is_some_and(|i| rules.issuers.iter().any(|want| want == i)) {
            return Err(Rejection::invalid("The iss claim is not valid"));
        }
    }
    if !rules.audiences.is_empty() {
        let aud = words(claims.get("aud"), false);
        if !aud
            .iter()
            .any(|a| rules.audiences.iter().any(|want| want == a))
        {
            return Err(Rejection::invalid("The aud claim is not valid"));
        }
    }
    Ok(claims)
}

/// `exp` (required) and `nbf` of verified `claims` at `now`, with the
/// leeway.
pub fn check_claim_times(claims: &Claims, rules: &ClaimRules, now: i64) -> Result<(), Rejection> {
    ClaimTimes::read(claims)?.check(rules, now)
}

/// A token's `exp` and `nbf`, read once (a remembered token is checked
/// against the clock on every request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimTimes {
    exp: i64,
    nbf: Option<i64>,
}

impl ClaimTimes {
    /// The times of `claims`: `exp` is required, and both must be numbers.
    pub fn read(claims: &Claims) -> Result<ClaimTimes, Rejection> {
        Ok(ClaimTimes {
            exp: numeric_date(claims, "exp")?.ok_or_else(|| Rejection::invalid("Missing exp"))?,
            nbf: numeric_date(claims, "nbf")?,
        })
    }

    /// Whether the token is good at `now`, with the rules' leeway.
    pub fn check(&self, rules: &ClaimRules, now: i64) -> Result<(), Rejection> {
        let leeway = i64::try_from(rules.leeway.as_secs()).unwrap_or(i64::MAX);
        let exp = self.exp;
        if now.saturating_sub(leeway) >= exp {
            return Err(Rejection::invalid(format!("Jwt expired at {exp}")));
        }
        if let Some(nbf) = self.nbf
            && now.saturating_add(leeway) < nbf
        {
            return Err(Rejection::invalid(format!("Jwt used before {nbf}")));
        }
        Ok(())
    }
}

/// A NumericDate claim (seconds, fractions allowed and cut).
fn numeric_date(claims: &Claims, name: &str) -> Result<Option<i64>, Rejection> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .map(Some)
            .ok_or_else(|| Rejection::invalid(format!("The {name} claim is not a number"))),
        Some(_) => Err(Rejection::invalid(format!(
            "The {name} claim is not a number"
        ))),
    }
}

/// The words of a claim: a string (split at spaces when `split`), or an
/// array of strings.
fn words(value: Option<&Value>, split: bool) -> Vec<&str> {
    match value {
        Some(Value::String(s)) if split => s.split([' ', ',']).filter(|w| !w.is_empty()).collect(),
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// The claim at a dotted `path` (`realm_access.roles`).
fn claim_at<'c>(claims: &'c Claims, path: &str) -> Option<&'c Value> {
    let mut parts = path.split('.');
    let mut value = claims.get(parts.next()?)?;
    for part in parts {
        value = value.as_object()?.get(part)?;
    }
    Some(value)
}

/// What a `JwtAuth` route asks of a valid token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requirement {
    /// Scopes the token must all hold (`scope` or `scp` claim).
    pub scopes: Vec<String>,
    /// Roles of which the token must hold at least one (the roles claim).
    pub roles: Vec<String>,
}

/// The argument names of `JwtAuth`.
pub(crate) const JWT_AUTH_FIELDS: &[&str] = &["scopes", "roles"];

impl Requirement {
    /// From `JwtAuth`'s arguments: `scopes` and `roles`, each a list (or
    /// text split at spaces and commas).
    pub fn compile(a: &Args) -> Result<Requirement, InvalidDefinition> {
        let list = |field: &str| -> Vec<String> {
            a.list(field)
                .iter()
                .flat_map(|s| s.split_whitespace())
                .map(str::to_owned)
                .collect()
        };
        Ok(Requirement {
            scopes: list("scopes"),
            roles: list("roles"),
        })
    }

    /// Whether `claims` meet the requirement, with roles read at
    /// `roles_claim`.
    pub fn check(&self, claims: &Claims, roles_claim: &str) -> Result<(), Rejection> {
        if !self.scopes.is_empty() {
            let mut held = words(claims.get("scope"), true);
            held.extend(words(claims.get("scp"), true));
            if !self.scopes.iter().all(|s| held.contains(&s.as_str())) {
                return Err(Rejection::insufficient_scope(self.scopes.join(" ")));
            }
        }
        if !self.roles.is_empty() {
            let held = words(claim_at(claims, roles_claim), true);
            if !self.roles.iter().any(|r| held.contains(&r.as_str())) {
                return Err(Rejection::insufficient_scope(self.roles.join(" ")));
            }
        }
        Ok(())
    }
}

/// Claims sent to the upstream as headers.
#[derive(Debug, Clone, Default)]
pub struct ClaimHeaders {
    pairs: Vec<(String, HeaderName)>,
}

impl ClaimHeaders {
    /// `claim -> header` pairs (a claim may be a dotted path).
    pub fn new(pairs: Vec<(String, HeaderName)>) -> ClaimHeaders {
        ClaimHeaders { pairs }
    }

    /// The header names, whatever the token: stripped from every inbound
    /// request so that a client cannot set them.
    pub fn names(&self) -> impl Iterator<Item = &HeaderName> {
        self.pairs.iter().map(|(_, h)| h)
    }

    /// Removes the client's copies of the claim headers.
    pub fn strip(&self, headers: &mut HeaderMap) {
        for name in self.names() {
            headers.remove(name);
        }
    }

    /// Sets the claim headers from `claims` (a string as is, numbers and
    /// booleans as text, an array joined with `,`, an object as JSON);
    /// absent claims and values that cannot be header values are left out.
    pub fn apply(&self, claims: &Claims, headers: &mut HeaderMap) {
        for (name, value) in self.values(claims) {
            headers.insert(name, value);
        }
    }

    /// The claim headers [`ClaimHeaders::apply`] sets from `claims`.
    pub fn values(&self, claims: &Claims) -> Vec<(HeaderName, HeaderValue)> {
        let mut values = Vec::with_capacity(self.pairs.len());
        for (claim, name) in &self.pairs {
            let text = match claim_at(claims, claim) {
                None | Some(Value::Null) => continue,
                Some(Value::String(s)) => s.clone(),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|v| match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(","),
                Some(other) => other.to_string(),
            };
            match HeaderValue::from_str(&text) {
                Ok(v) => values.push((name.clone(), v)),
                Err(_) => {
                    tracing::debug!(claim, "claim is not a valid header value; not forwarded")
                }
            }
        }
        values
    }
}

#[cfg(test)]
#[path = "jwt_tests.rs"]
mod tests;
