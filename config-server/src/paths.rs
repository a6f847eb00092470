//! Parsing and validating config request paths.
//!
//! Every request path is checked segment by segment on the raw (still
//! percent-encoded) text, decoded exactly once, and rejected when any part
//! could walk out of the repository: `..` plain or encoded (`%2e%2e`),
//! double-encoded characters (`%25..`, e.g. `%252F`), encoded slashes or
//! backslashes, `#` and `?` smuggled in encoded, NUL and control characters,
//! and `(_)` label tricks such as `..(_)..(_)etc`. Application and profile
//! names are limited to `[A-Za-z0-9._+@-]` (profiles and names may also be
//! comma-separated lists).

use crate::environments::EnvRequest;
use crate::render::Format;

/// A config request after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigPath {
    /// `/{app}/{profiles}[/{label}]`: the Environment JSON.
    Environment(EnvRequest),
    /// `/{app}-{profiles}.{ext}` or `/{label}/{app}-{profiles}.{ext}`.
    View(EnvRequest, Format),
    /// `/{app}/{profile}/{label}/{path}`: a plain-text file.
    File(EnvRequest, String),
}

/// Why a path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// Traversal or encoding tricks.
    #[error("invalid path: {0}")]
    Invalid(&'static str),
    /// The path is well-formed but names no config resource.
    #[error("not found")]
    NotFound,
}

/// Decodes `%XX` once. Fails on malformed escapes and on `%25` (an encoded
/// `%`, i.e. double encoding).
fn decode_segment(raw: &str) -> Result<String, PathError> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = raw
                .get(i + 1..i + 3)
                .ok_or(PathError::Invalid("bad percent escape"))?;
            let b = u8::from_str_radix(hex, 16)
                .map_err(|_| PathError::Invalid("bad percent escape"))?;
            if b == b'%' {
                return Err(PathError::Invalid("double-encoded path"));
            }
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let s = String::from_utf8(out).map_err(|_| PathError::Invalid("not UTF-8"))?;
    if s.chars()
        .any(|c| c.is_control() || matches!(c, '/' | '\\' | '#' | '?'))
    {
        return Err(PathError::Invalid("forbidden character in path segment"));
    }
    if s.contains("..") {
        return Err(PathError::Invalid("path traversal"));
    }
    Ok(s)
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '@' | '-')
}

/// A comma-separated list of names (applications or profiles).
fn check_names(s: &str, what: &'static str) -> Result<(), PathError> {
    let ok = !s.is_empty()
        && s.split(',')
            .all(|p| !p.is_empty() && p != "." && p.chars().all(is_name_char));
    if ok {
        Ok(())
    } else {
        Err(PathError::Invalid(what))
    }
}

/// A label: `(_)` stands for `/`; every part must be a plain name.
fn check_label(s: &str) -> Result<String, PathError> {
    let label = s.replace("(_)", "/");
    let ok = !label.is_empty()
        && label.split('/').all(|p| {
            !p.is_empty()
                && p != "."
                && !p.starts_with('-')
                && !p.ends_with(".lock")
                && p.chars().all(is_name_char)
        });
    if ok {
        Ok(label)
    } else {
        Err(PathError::Invalid("invalid label"))
    }
}

/// A relative file path inside the repository.
fn check_file_path(parts: &[String]) -> Result<String, PathError> {
    for p in parts {
        let ok =
            !p.is_empty() && p != "." && p.chars().all(|c| is_name_char(c) || c == ' ' || c == ',');
        if !ok {
            return Err(PathError::Invalid("invalid file path"));
        }
    }
    Ok(parts.join("/"))
}

/// Splits `{app}-{profiles}.{ext}` at the extension and the last `-`.
fn split_view(seg: &str) -> Option<(&str, &str, Format)> {
    let (stem, ext) = seg.rsplit_once('.')?;
    let format = Format::from_extension(ext)?;
    let (app, profiles) = stem.rsplit_once('-')?;
    Some((app, profiles, format))
}

/// Parses a raw request path (as sent, percent-encoded).
pub fn parse(raw_path: &str) -> Result<ConfigPath, PathError> {
    let trimmed = raw_path.strip_prefix('/').unwrap_or(raw_path);
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    if trimmed.is_empty() {
        return Err(PathError::NotFound);
    }
    let segs: Vec<String> = trimmed
        .split('/')
        .map(decode_segment)
        .collect::<Result<_, _>>()?;
    if segs.iter().any(|s| s.is_empty()) {
        return Err(PathError::Invalid("empty path segment"));
    }
    match segs.as_slice() {
        [one] => {
            let (app, profiles, format) = split_view(one).ok_or(PathError::NotFound)?;
            check_names(app, "invalid application name")?;
            check_names(profiles, "invalid profile name")?;
            Ok(ConfigPath::View(
                EnvRequest::new(app, profiles, None),
                format,
            ))
        }
        [first, second] => {
            if let Some((app, profiles, format)) = split_view(second) {
                let label = check_label(first)?;
                check_names(app, "invalid application name")?;
                check_names(profiles, "invalid profile name")?;
                return Ok(ConfigPath::View(
                    EnvRequest::new(app, profiles, Some(&label)),
                    format,
                ));
            }
            check_names(first, "invalid application name")?;
            check_names(second, "invalid profile name")?;
            Ok(ConfigPath::Environment(EnvRequest::new(
                first, second, None,
            )))
        }
        [app, profiles, label] => {
            check_names(app, "invalid application name")?;
            check_names(profiles, "invalid profile name")?;
            let label = check_label(label)?;
            Ok(ConfigPath::Environment(EnvRequest::new(
                app,
                profiles,
                Some(&label),
            )))
        }
        [app, profiles, label, rest @ ..] => {
            check_names(app, "invalid application name")?;
            check_names(profiles, "invalid profile name")?;
            let label = check_label(label)?;
            let path = check_file_path(rest)?;
            Ok(ConfigPath::File(
                EnvRequest::new(app, profiles, Some(&label)),
                path,
            ))
        }
        [] => Err(PathError::NotFound),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn env(app: &str, profiles: &str, label: Option<&str>) -> ConfigPath {
        ConfigPath::Environment(EnvRequest::new(app, profiles, label))
    }

    #[test]
    fn environment_paths() {
        assert_eq!(parse("/foo/dev").unwrap(), env("foo", "dev", None));
        assert_eq!(
            parse("/foo/dev,mysql/main").unwrap(),
            env("foo", "dev,mysql", Some("main"))
        );
        assert_eq!(
            parse("/foo/dev/feature(_)x").unwrap(),
            env("foo", "dev", Some("feature/x"))
        );
    }

    #[test]
    fn view_paths() {
        assert_eq!(
            parse("/my-app-dev.yml").unwrap(),
            ConfigPath::View(EnvRequest::new("my-app", "dev", None), Format::Yaml)
        );
        assert_eq!(
            parse("/v1.0/foo-dev.properties").unwrap(),
            ConfigPath::View(
                EnvRequest::new("foo", "dev", Some("v1.0")),
                Format::Properties
            )
        );
        assert_eq!(parse("/foo.yml"), Err(PathError::NotFound));
    }

    #[test]
    fn file_paths() {
        assert_eq!(
            parse("/foo/dev/main/conf/nginx.conf").unwrap(),
            ConfigPath::File(
                EnvRequest::new("foo", "dev", Some("main")),
                "conf/nginx.conf".into()
            )
        );
    }

    fn rejected(p: &str) -> bool {
        matches!(parse(p), Err(PathError::Invalid(_)))
    }

    #[test]
    fn traversal_in_any_part_is_rejected() {
        for p in [
            "/../foo/dev",
            "/foo/../dev",
            "/foo/dev/..",
            "/foo/dev/main/../../etc/passwd",
            "/foo/dev/main/%2e%2e/%2e%2e/etc/passwd",
            "/foo/dev/main/%2E%2E%2Fetc%2Fpasswd",
            "/foo/dev/main/..%252F..%252Fetc%252Fpasswd",
            "/foo/dev/..(_)..(_)etc/passwd",
            "/foo/dev/main(_)..(_)x",
            "/foo/dev/(_)etc/passwd",
            "/foo%23bar/dev",
            "/foo/dev/main/a%00b",
            "/foo/dev/main/a%5c..%5cb",
            "/foo/dev%2f../x",
            "/foo/d%zz",
        ] {
            assert!(rejected(p), "{p} must be rejected");
        }
    }

    #[test]
    fn profile_and_name_charset() {
        assert!(rejected("/foo/dev$x"));
        assert!(rejected("/foo/dev:file"));
        assert!(rejected("/fo%20o/dev"));
        assert!(parse("/foo/dev_1.2+x@y-z").is_ok());
    }

    proptest! {
        #[test]
        fn never_panics_and_never_yields_dotdot(s in "[a-z./%(_)#0-9A-F]{0,40}") {
            if let Ok(p) = parse(&s) {
                let text = format!("{p:?}");
                prop_assert!(!text.contains(".."));
            }
        }
    }
}
