use std::time::Duration;

use jsonwebtoken::{EncodingKey, Header as JwtHeader};
use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::config::{Definition, Shortcut};
use crate::security::keys::VerifyingKey;

const NOW: i64 = 1_800_000_000;
const SECRET: &[u8] = b"an-hs256-secret-of-at-least-32-bytes!";
const RSA_PRIVATE: &[u8] = include_bytes!("../../tests/keys/rsa-1.key.pem");
const RSA_PUBLIC: &[u8] = include_bytes!("../../tests/keys/rsa-1.pub.pem");
const EC_PRIVATE: &[u8] = include_bytes!("../../tests/keys/ec-256.key.pem");
const EC_PUBLIC: &[u8] = include_bytes!("../../tests/keys/ec-256.pub.pem");
const ED_PRIVATE: &[u8] = include_bytes!("../../tests/keys/ed-1.key.pem");
const ED_PUBLIC: &[u8] = include_bytes!("../../tests/keys/ed-1.pub.pem");

fn sign(alg: Algorithm, key: &EncodingKey, claims: &serde_json::Value) -> String {
    jsonwebtoken::encode(&JwtHeader::new(alg), claims, key).expect("signs")
}

fn hs(claims: &serde_json::Value) -> String {
    sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(SECRET).expect("key"),
        claims,
    )
}

fn secret_key() -> VerifyingKey {
    VerifyingKey::secret(SECRET, SUPPORTED_ALGORITHMS).expect("secret")
}

fn rules() -> ClaimRules {
    ClaimRules::new(
        vec!["https://issuer.example".to_owned()],
        vec!["orders".to_owned()],
        Duration::from_secs(30),
    )
}

fn good_claims() -> serde_json::Value {
    json!({"sub": "alice", "iss": "https://issuer.example", "aud": "orders", "exp": NOW + 300})
}

fn check(token: &str, keys: &[VerifyingKey]) -> Result<Claims, Rejection> {
    let header = token_header(token)?;
    verify(token, &header, keys, &rules(), NOW)
}

#[test]
fn a_token_signed_with_each_supported_key_type_is_accepted() {
    let cases = [
        (
            Algorithm::HS256,
            EncodingKey::from_secret(SECRET).expect("key"),
            secret_key(),
        ),
        (
            Algorithm::HS512,
            EncodingKey::from_secret(SECRET).expect("key"),
            secret_key(),
        ),
        (
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(RSA_PRIVATE).expect("rsa"),
            VerifyingKey::pem(RSA_PUBLIC, SUPPORTED_ALGORITHMS, "rsa").expect("rsa"),
        ),
        (
            Algorithm::RS512,
            EncodingKey::from_rsa_pem(RSA_PRIVATE).expect("rsa"),
            VerifyingKey::pem(RSA_PUBLIC, SUPPORTED_ALGORITHMS, "rsa").expect("rsa"),
        ),
        (
            Algorithm::ES256,
            EncodingKey::from_ec_pem(EC_PRIVATE).expect("ec"),
            VerifyingKey::pem(EC_PUBLIC, SUPPORTED_ALGORITHMS, "ec").expect("ec"),
        ),
        (
            Algorithm::EdDSA,
            EncodingKey::from_ed_pem(ED_PRIVATE).expect("ed"),
            VerifyingKey::pem(ED_PUBLIC, SUPPORTED_ALGORITHMS, "ed").expect("ed"),
        ),
    ];
    for (alg, encoding, verifying) in cases {
        let token = sign(alg, &encoding, &good_claims());
        let claims = check(&token, &[verifying]).unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        assert_eq!(claims["sub"], "alice", "{alg:?}");
    }
}

#[test]
fn alg_none_is_refused_as_malformed() {
    use base64::Engine as _;
    let b64 = |v: &serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let token = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&good_claims())
    );
    let e = check(&token, &[secret_key()]).expect_err("alg none");
    assert!(e.is_invalid_token(), "{e:?}");
}

#[test]
fn an_hs256_token_keyed_with_the_rsa_public_key_is_refused() {
    let forged = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(RSA_PUBLIC).expect("key"),
        &good_claims(),
    );
    let rsa = VerifyingKey::pem(RSA_PUBLIC, SUPPORTED_ALGORITHMS, "rsa").expect("rsa");
    let e = check(&forged, &[rsa]).expect_err("HS/RS confusion");
    assert!(e.is_invalid_token());
    assert!(
        e.description().contains("No key accepts algorithm HS256"),
        "{e}"
    );
}

#[test]
fn a_tampered_payload_fails_the_signature() {
    let token = hs(&good_claims());
    let other = hs(
        &json!({"sub": "mallory", "iss": "https://issuer.example", "aud": "orders", "exp": NOW + 300}),
    );
    let parts: Vec<&str> = token.split('.').collect();
    let other_parts: Vec<&str> = other.split('.').collect();
    let tampered = format!("{}.{}.{}", parts[0], other_parts[1], parts[2]);
    let e = check(&tampered, &[secret_key()]).expect_err("tampered");
    assert_eq!(e.description(), "Invalid signature");
}

#[test]
fn expiry_and_not_before_allow_the_leeway_and_no_more() {
    let at = |exp: i64, nbf: Option<i64>| {
        let mut c = good_claims();
        c["exp"] = exp.into();
        if let Some(n) = nbf {
            c["nbf"] = n.into();
        }
        check(&hs(&c), &[secret_key()])
    };
    assert!(at(NOW - 29, None).is_ok(), "expired within the 30 s leeway");
    let e = at(NOW - 31, None).expect_err("expired beyond the leeway");
    assert_eq!(e.description(), format!("Jwt expired at {}", NOW - 31));
    assert!(
        at(NOW + 300, Some(NOW + 29)).is_ok(),
        "nbf within the leeway"
    );
    let e = at(NOW + 300, Some(NOW + 31)).expect_err("not yet valid");
    assert!(e.description().starts_with("Jwt used before"), "{e}");
}

#[test]
fn a_token_without_exp_or_with_a_text_exp_is_refused() {
    let mut c = good_claims();
    c.as_object_mut().expect("object").remove("exp");
    assert_eq!(
        check(&hs(&c), &[secret_key()])
            .expect_err("no exp")
            .description(),
        "Missing exp"
    );
    c["exp"] = "tomorrow".into();
    assert!(check(&hs(&c), &[secret_key()]).is_err());
}

#[test]
fn issuer_and_audience_must_be_the_configured_ones() {
    let mut c = good_claims();
    c["iss"] = "https://evil.example".into();
    assert_eq!(
        check(&hs(&c), &[secret_key()])
            .expect_err("iss")
            .description(),
        "The iss claim is not valid"
    );
    let mut c = good_claims();
    c["aud"] = json!(["billing"]);
    assert_eq!(
        check(&hs(&c), &[secret_key()])
            .expect_err("aud")
            .description(),
        "The aud claim is not valid"
    );
    c["aud"] = json!(["billing", "orders"]);
    assert!(
        check(&hs(&c), &[secret_key()]).is_ok(),
        "one of several audiences"
    );
}

#[test]
fn garbage_tokens_are_malformed_not_panics() {
    for t in [
        "",
        "abc",
        "a.b",
        "a.b.c",
        "....",
        "eyJhbGciOiJIUzI1NiJ9.e30.x",
    ] {
        let e = check(t, &[secret_key()]).expect_err(t);
        assert!(e.is_invalid_token(), "{t}");
    }
}

#[test]
fn answers_carry_rfc_6750_challenges() {
    let missing = Rejection::missing();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(missing.www_authenticate(), "Bearer");
    let invalid = Rejection::invalid("Jwt expired at 5 \"soon\"");
    assert_eq!(
        invalid.www_authenticate(),
        "Bearer error=\"invalid_token\", error_description=\"Jwt expired at 5 'soon'\", error_uri=\"https://tools.ietf.org/html/rfc6750#section-3.1\""
    );
    let scope = Rejection::insufficient_scope("orders.write");
    assert_eq!(scope.status(), StatusCode::FORBIDDEN);
    assert!(
        scope
            .www_authenticate()
            .starts_with("Bearer error=\"insufficient_scope\"")
    );
    assert!(scope.www_authenticate().ends_with("scope=\"orders.write\""));
    let answer = scope.answer("/orders");
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    assert!(answer.headers().contains_key(header::WWW_AUTHENTICATE));
}

#[test]
fn bearer_tokens_are_found_in_any_case_of_the_scheme() {
    let mut h = HeaderMap::new();
    assert_eq!(bearer_token(&h), None);
    h.insert(
        header::AUTHORIZATION,
        HeaderValue::from_static("bEaReR abc.def.ghi"),
    );
    assert_eq!(bearer_token(&h), Some("abc.def.ghi"));
    h.insert(
        header::AUTHORIZATION,
        HeaderValue::from_static("Basic dXNlcjpwdw=="),
    );
    assert_eq!(bearer_token(&h), None);
    h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
    assert_eq!(bearer_token(&h), None);
}

fn requirement(shortcut: &str) -> Requirement {
    let def = Definition::shortcut(shortcut);
    Requirement::compile(
        &def.bind("filter", JWT_AUTH_FIELDS, Shortcut::InOrder)
            .expect("binds"),
    )
    .expect("compiles")
}

#[test]
fn scopes_are_all_required_and_roles_any_one() {
    let claims = |v: serde_json::Value| v.as_object().expect("object").clone();
    let r = requirement("JwtAuth=orders.read orders.write");
    assert_eq!(r.scopes, ["orders.read", "orders.write"]);
    assert!(
        r.check(
            &claims(json!({"scope": "orders.read orders.write"})),
            "roles"
        )
        .is_ok()
    );
    assert!(
        r.check(
            &claims(json!({"scp": ["orders.write", "orders.read"]})),
            "roles"
        )
        .is_ok()
    );
    let e = r
        .check(&claims(json!({"scope": "orders.read"})), "roles")
        .expect_err("one scope missing");
    assert!(e.is_insufficient_scope());

    let r = requirement("JwtAuth=, admin ops");
    assert!(r.scopes.is_empty());
    let keycloak = claims(json!({"realm_access": {"roles": ["ops"]}}));
    assert!(r.check(&keycloak, "realm_access.roles").is_ok());
    assert!(
        r.check(&keycloak, "roles").is_err(),
        "roles read where configured"
    );
    assert!(
        r.check(&claims(json!({"roles": ["user"]})), "roles")
            .is_err()
    );
}

#[test]
fn claim_headers_are_set_from_claims_and_stripped_from_clients() {
    let ch = ClaimHeaders::new(vec![
        ("sub".to_owned(), HeaderName::from_static("x-user-id")),
        ("roles".to_owned(), HeaderName::from_static("x-user-roles")),
        ("org.id".to_owned(), HeaderName::from_static("x-org")),
        ("missing".to_owned(), HeaderName::from_static("x-missing")),
    ]);
    let mut h = HeaderMap::new();
    h.insert("x-user-id", HeaderValue::from_static("spoofed"));
    h.insert("x-missing", HeaderValue::from_static("spoofed"));
    ch.strip(&mut h);
    assert!(h.is_empty());
    let claims = json!({"sub": "alice", "roles": ["a", "b"], "org": {"id": 7}});
    ch.apply(claims.as_object().expect("object"), &mut h);
    assert_eq!(h["x-user-id"], "alice");
    assert_eq!(h["x-user-roles"], "a,b");
    assert_eq!(h["x-org"], "7");
    assert!(!h.contains_key("x-missing"));
}

proptest! {
    #[test]
    fn any_text_as_a_token_is_refused_without_panic(token in ".{0,200}") {
        let r = token_header(&token)
            .and_then(|h| verify(&token, &h, &[secret_key()], &rules(), NOW));
        prop_assert!(r.is_err());
    }

    #[test]
    fn any_three_base64_parts_are_refused_without_panic(
        a in "[A-Za-z0-9_-]{0,60}", b in "[A-Za-z0-9_-]{0,60}", c in "[A-Za-z0-9_-]{0,60}"
    ) {
        let token = format!("{a}.{b}.{c}");
        let r = token_header(&token)
            .and_then(|h| verify(&token, &h, &[secret_key()], &rules(), NOW));
        prop_assert!(r.is_err());
    }
}
