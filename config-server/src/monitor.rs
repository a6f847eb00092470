//! `POST /monitor`: push webhooks from GitHub, GitLab, Gitea and Gogs.
//!
//! The payload's `commits[].added/modified/removed` lists give the changed
//! files; a form body `path=foo` names them directly. File names become the
//! services they configure, named as Spring's `PropertyPathEndpoint` does:
//! `foo-dev.yml` changes `foo:dev` and `foo-dev`, `application.yml` changes
//! every application (`*`), `application-dev.yml` every application's `dev`
//! profile (`*:dev`).
//!
//! The work per webhook is bounded (see [`Limits`]): the number of distinct
//! paths, the service names one path may give and the size of the answer,
//! all counted in one pass, so a hostile body costs time linear in its size.
//!
//! Spring never checks webhook authenticity. With a shared secret configured
//! we require GitHub's `X-Hub-Signature-256` (HMAC-SHA256 of the body),
//! Gitea's `X-Gitea-Signature` / Gogs' `X-Gogs-Signature` (hex HMAC-SHA256)
//! or GitLab's `X-Gitlab-Token` (the secret itself).

use std::collections::{BTreeSet, HashSet};

use axum::http::HeaderMap;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::limits::{LimitExceeded, LimitReason, Limits, shorten};

/// A webhook that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MonitorError {
    /// A secret is configured and the request does not prove it.
    #[error("webhook signature missing or wrong")]
    Unauthorized,
    /// The body is neither a known payload nor a `path=` form.
    #[error("unrecognised webhook payload")]
    BadPayload,
    /// The webhook goes over a limit.
    #[error(transparent)]
    Limit(#[from] LimitExceeded),
}

fn too_many_paths(limits: &Limits) -> MonitorError {
    LimitExceeded::new(
        LimitReason::MonitorPaths,
        "max_monitor_paths",
        limits.monitor_paths,
    )
    .into()
}

/// Checks the request against the shared `secret`.
pub fn verify(secret: &str, headers: &HeaderMap, body: &[u8]) -> Result<(), MonitorError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(token) = header("x-gitlab-token") {
        return constant_time_eq(token.as_bytes(), secret.as_bytes())
            .then_some(())
            .ok_or(MonitorError::Unauthorized);
    }
    let hex_sig = header("x-hub-signature-256")
        .and_then(|s| s.strip_prefix("sha256="))
        .or_else(|| header("x-gitea-signature"))
        .or_else(|| header("x-gogs-signature"))
        .ok_or(MonitorError::Unauthorized)?;
    let sig = hex::decode(hex_sig.trim()).map_err(|_| MonitorError::Unauthorized)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .map_err(|_| MonitorError::Unauthorized)?;
    mac.update(body);
    mac.verify_slice(&sig)
        .map_err(|_| MonitorError::Unauthorized)
}

/// Compares without an early exit, so timing does not leak the prefix.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The changed file paths in a webhook body; at most
/// `limits.monitor_paths` distinct ones.
pub fn changed_paths(
    headers: &HeaderMap,
    body: &[u8],
    limits: &Limits,
) -> Result<Vec<String>, MonitorError> {
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("application/x-www-form-urlencoded") {
        return form_paths(body, limits);
    }
    let json: Value = serde_json::from_slice(body).map_err(|_| MonitorError::BadPayload)?;
    // GitHub, GitLab, Gitea and Gogs all send `commits[]` with
    // `added`/`modified`/`removed` lists of paths.
    let commits = json
        .get("commits")
        .and_then(Value::as_array)
        .ok_or(MonitorError::BadPayload)?;
    let mut paths = BTreeSet::new();
    for commit in commits {
        for field in ["added", "modified", "removed"] {
            if let Some(list) = commit.get(field).and_then(Value::as_array) {
                for path in list.iter().filter_map(Value::as_str) {
                    paths.insert(path.to_string());
                    if paths.len() > limits.monitor_paths {
                        return Err(too_many_paths(limits));
                    }
                }
            }
        }
    }
    Ok(paths.into_iter().collect())
}

fn form_paths(body: &[u8], limits: &Limits) -> Result<Vec<String>, MonitorError> {
    let text = std::str::from_utf8(body).map_err(|_| MonitorError::BadPayload)?;
    let mut out = Vec::new();
    for pair in text.split('&') {
        if let Some(v) = pair.strip_prefix("path=") {
            if out.len() == limits.monitor_paths {
                return Err(too_many_paths(limits));
            }
            out.push(form_decode(v).ok_or(MonitorError::BadPayload)?);
        }
    }
    if out.is_empty() {
        return Err(MonitorError::BadPayload);
    }
    Ok(out)
}

/// Decodes an `application/x-www-form-urlencoded` value (`+` is a space).
pub(crate) fn form_decode(s: &str) -> Option<String> {
    String::from_utf8(cloud_runtime::percent::form_decode(s)?).ok()
}

/// The services a set of changed files configures, named as Spring's
/// `PropertyPathEndpoint` names them (its Spring Cloud Bus destinations):
/// for the file stem `foo-dev`, `foo:dev` (application `foo`, profile `dev`)
/// then `foo-dev` itself; at every `-` the stem is split once more, so
/// `foo-bar-dev` also gives `foo-bar:dev`. `application` is `*`,
/// `application-dev` is `*:dev`, and other names starting with
/// `application` give nothing. First seen first, without repeats.
///
/// A path whose stem has `limits.monitor_names_per_path` or more dashes,
/// and a list whose JSON would exceed `limits.monitor_answer_bytes`, are
/// refused before the names are built.
pub fn applications(paths: &[String], limits: &Limits) -> Result<Vec<String>, MonitorError> {
    let mut names = ServiceNames::new(limits);
    for path in paths {
        let file = path.rsplit('/').next().unwrap_or(path);
        let stem = match file.rsplit_once('.') {
            Some((s, _)) => s,
            None => file,
        };
        if stem.is_empty() {
            continue;
        }
        if stem.bytes().filter(|b| *b == b'-').count() >= limits.monitor_names_per_path {
            return Err(LimitExceeded::new(
                LimitReason::MonitorNames,
                "max_monitor_names_per_path",
                limits.monitor_names_per_path,
            )
            .into());
        }
        for (i, _) in stem.match_indices('-') {
            let (name, profile) = (&stem[..i], &stem[i + 1..]);
            if name == "application" {
                names.add(format!("*:{profile}"))?;
            } else if !name.starts_with("application") {
                names.add(format!("{name}:{profile}"))?;
            }
        }
        if stem == "application" {
            names.add("*".to_string())?;
        } else if !stem.starts_with("application") {
            names.add(stem.to_string())?;
        }
    }
    Ok(names.list)
}

/// Service names in first-seen order, without repeats, within the answer
/// size bound.
struct ServiceNames {
    list: Vec<String>,
    seen: HashSet<String>,
    /// The JSON size of `list` so far (without escapes, so never more than
    /// the real size): `[`, `]`, and per name its quotes and a comma.
    answer_bytes: usize,
    limit: usize,
}

impl ServiceNames {
    fn new(limits: &Limits) -> Self {
        Self {
            list: Vec::new(),
            seen: HashSet::new(),
            answer_bytes: 2,
            limit: limits.monitor_answer_bytes,
        }
    }

    fn add(&mut self, name: String) -> Result<(), LimitExceeded> {
        if self.seen.contains(&name) {
            return Ok(());
        }
        self.answer_bytes += name.len() + 3;
        if self.answer_bytes > self.limit {
            return Err(LimitExceeded::new(
                LimitReason::MonitorAnswer,
                "max_monitor_answer_bytes",
                self.limit,
            ));
        }
        self.seen.insert(name.clone());
        self.list.push(name);
        Ok(())
    }
}

/// Names shown in the log line of a webhook.
const LOG_NAMES: usize = 10;
/// Characters of each name shown in the log line.
const LOG_NAME_CHARS: usize = 80;

/// A bounded summary of `apps` for a log line: at most the first
/// [`LOG_NAMES`] names, each cut to [`LOG_NAME_CHARS`] characters (about
/// 1 KiB in all, whatever the webhook).
pub fn log_preview(apps: &[String]) -> Vec<String> {
    apps.iter()
        .take(LOG_NAMES)
        .map(|a| shorten(a, LOG_NAME_CHARS).into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    const GITHUB: &str = r#"{"ref":"refs/heads/main","commits":[
        {"id":"1","added":["foo-dev.yml"],"modified":["bar.properties"],"removed":[]},
        {"id":"2","added":[],"modified":["config/baz.yml"],"removed":["old.yml"]}]}"#;

    #[test]
    fn github_style_payloads_list_every_changed_file() {
        let h = headers(&[
            ("content-type", "application/json"),
            ("x-github-event", "push"),
        ]);
        let paths = changed_paths(&h, GITHUB.as_bytes(), &Limits::default()).unwrap();
        assert_eq!(
            paths,
            ["bar.properties", "config/baz.yml", "foo-dev.yml", "old.yml"]
        );
        assert_eq!(
            applications(&paths, &Limits::default()).unwrap(),
            ["bar", "baz", "foo:dev", "foo-dev", "old"]
        );
    }

    #[test]
    fn gitlab_and_gitea_payloads_have_the_same_shape() {
        let gitlab = r#"{"object_kind":"push","commits":[{"modified":["application.yml"]}]}"#;
        let h = headers(&[("x-gitlab-event", "Push Hook")]);
        let paths = changed_paths(&h, gitlab.as_bytes(), &Limits::default()).unwrap();
        assert_eq!(applications(&paths, &Limits::default()).unwrap(), ["*"]);
        let gitea = r#"{"secret":"","commits":[{"added":["svc.yml"],"removed":[],"modified":[]}]}"#;
        let h = headers(&[("x-gitea-event", "push")]);
        assert_eq!(
            changed_paths(&h, gitea.as_bytes(), &Limits::default()).unwrap(),
            ["svc.yml"]
        );
    }

    #[test]
    fn service_names_follow_spring_property_path_endpoint() {
        let names = |p: &[&str]| {
            applications(
                &p.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                &Limits::default(),
            )
            .unwrap()
        };
        assert_eq!(names(&["foo.yml"]), ["foo"]);
        assert_eq!(names(&["config/foo-dev.yml"]), ["foo:dev", "foo-dev"]);
        assert_eq!(
            names(&["foo-bar-dev.properties"]),
            ["foo:bar-dev", "foo-bar:dev", "foo-bar-dev"]
        );
        assert_eq!(names(&["application.yml"]), ["*"]);
        assert_eq!(names(&["application-dev.yml"]), ["*:dev"]);
        assert!(names(&["applicationx.yml"]).is_empty());
        assert_eq!(names(&["foo.yml", "foo.properties"]), ["foo"]);
    }

    #[test]
    fn form_bodies_name_paths() {
        let h = headers(&[("content-type", "application/x-www-form-urlencoded")]);
        assert_eq!(
            changed_paths(&h, b"path=foo&path=a%2Fb", &Limits::default()).unwrap(),
            ["foo", "a/b"]
        );
        assert_eq!(
            changed_paths(&h, b"x=1", &Limits::default()),
            Err(MonitorError::BadPayload)
        );
    }

    #[test]
    fn garbage_is_a_bad_payload() {
        let h = headers(&[]);
        assert_eq!(
            changed_paths(&h, b"{nope", &Limits::default()),
            Err(MonitorError::BadPayload)
        );
        assert_eq!(
            changed_paths(&h, b"{}", &Limits::default()),
            Err(MonitorError::BadPayload)
        );
    }

    proptest::proptest! {
        #[test]
        fn payload_parsing_never_panics(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let _ = changed_paths(&headers(&[]), &body, &Limits::default());
            let form = headers(&[("content-type", "application/x-www-form-urlencoded")]);
            let _ = changed_paths(&form, &body, &Limits::default());
        }

        #[test]
        fn application_names_never_contain_a_slash(paths in proptest::collection::vec("[a-z/.-]{0,20}", 0..6)) {
            for app in applications(&paths, &Limits::default()).unwrap() {
                proptest::prop_assert!(!app.contains('/'));
            }
        }

        /// Whatever the paths, the answer stays within its bound or the
        /// webhook is refused with the limit that tripped.
        #[test]
        fn answers_stay_within_the_bounds(paths in proptest::collection::vec("[a-z/.-]{0,40}", 0..20)) {
            let limits = small_limits();
            match applications(&paths, &limits) {
                Ok(apps) => {
                    let json = serde_json::to_vec(&apps).unwrap();
                    proptest::prop_assert!(json.len() <= limits.monitor_answer_bytes);
                }
                Err(MonitorError::Limit(e)) => proptest::prop_assert!(matches!(
                    e.reason(),
                    LimitReason::MonitorNames | LimitReason::MonitorAnswer
                )),
                Err(e) => proptest::prop_assert!(false, "unexpected {e}"),
            }
        }
    }

    fn small_limits() -> Limits {
        Limits {
            monitor_paths: 4,
            monitor_names_per_path: 5,
            monitor_answer_bytes: 200,
            ..Limits::default()
        }
    }

    #[test]
    fn too_many_paths_are_refused_in_forms_and_payloads() {
        let limits = small_limits();
        let form = headers(&[("content-type", "application/x-www-form-urlencoded")]);
        assert!(changed_paths(&form, b"path=a&path=b&path=c&path=d", &limits).is_ok());
        let err = changed_paths(&form, b"path=a&path=b&path=c&path=d&path=e", &limits).unwrap_err();
        assert!(matches!(err, MonitorError::Limit(e) if e.reason() == LimitReason::MonitorPaths));
        let json = r#"{"commits":[{"added":["a","b","c"]},{"modified":["a","d","e"]}]}"#;
        let err = changed_paths(&headers(&[]), json.as_bytes(), &limits).unwrap_err();
        assert!(matches!(err, MonitorError::Limit(e) if e.reason() == LimitReason::MonitorPaths));
        // Repeats count once.
        let json = r#"{"commits":[{"added":["a","b"]},{"modified":["a","b","c","d"]}]}"#;
        assert_eq!(
            changed_paths(&headers(&[]), json.as_bytes(), &limits)
                .unwrap()
                .len(),
            4
        );
    }

    #[test]
    fn a_path_with_too_many_dashes_is_refused_before_any_name_is_built() {
        let limits = small_limits();
        let ok = ["a-b-c-d-e.yml".to_string()];
        assert_eq!(applications(&ok, &limits).unwrap().len(), 5);
        let long = ["a-b-c-d-e-f.yml".to_string()];
        let err = applications(&long, &limits).unwrap_err();
        assert!(matches!(err, MonitorError::Limit(e) if e.reason() == LimitReason::MonitorNames));
        let hostile = [format!("{}.yml", vec!["a"; 10_000].join("-"))];
        let err = applications(&hostile, &Limits::default()).unwrap_err();
        assert!(matches!(err, MonitorError::Limit(e) if e.reason() == LimitReason::MonitorNames));
    }

    #[test]
    fn the_answer_size_is_bounded() {
        let limits = small_limits();
        let paths: Vec<String> = (0..4)
            .map(|i| format!("{}{i}.yml", "x".repeat(60)))
            .collect();
        let err = applications(&paths, &limits).unwrap_err();
        assert!(matches!(err, MonitorError::Limit(e) if e.reason() == LimitReason::MonitorAnswer));
        assert_eq!(applications(&paths[..2], &limits).unwrap().len(), 2);
    }

    #[test]
    fn the_log_preview_is_short_whatever_the_names() {
        let apps: Vec<String> = (0..100)
            .map(|i| format!("{i}{}", "é".repeat(10_000)))
            .collect();
        let preview = log_preview(&apps);
        assert_eq!(preview.len(), 10);
        assert!(preview.iter().all(|p| p.chars().count() <= 83));
        assert_eq!(log_preview(&["foo".to_string()]), ["foo"]);
    }

    #[test]
    fn signatures_are_checked() {
        let body = GITHUB.as_bytes();
        let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cret").unwrap();
        mac.update(body);
        let sig = hex::encode(mac.finalize().into_bytes());
        let good = headers(&[("x-hub-signature-256", &format!("sha256={sig}"))]);
        assert_eq!(verify("s3cret", &good, body), Ok(()));
        assert_eq!(
            verify("other", &good, body),
            Err(MonitorError::Unauthorized)
        );
        let gitea = headers(&[("x-gitea-signature", &sig)]);
        assert_eq!(verify("s3cret", &gitea, body), Ok(()));
        assert_eq!(
            verify("s3cret", &good, b"tampered"),
            Err(MonitorError::Unauthorized)
        );
        let gitlab = headers(&[("x-gitlab-token", "s3cret")]);
        assert_eq!(verify("s3cret", &gitlab, body), Ok(()));
        let wrong = headers(&[("x-gitlab-token", "nope")]);
        assert_eq!(
            verify("s3cret", &wrong, body),
            Err(MonitorError::Unauthorized)
        );
        assert_eq!(
            verify("s3cret", &headers(&[]), body),
            Err(MonitorError::Unauthorized)
        );
    }
}
