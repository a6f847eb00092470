//! SCG's path and host patterns, compiled once to one regular expression
//! each.
//!
//! Path patterns follow Spring's `PathPattern`: `?` is one character, `*`
//! any characters within a segment, `**` any number of whole segments
//! (also none: `/users/**` matches `/users`), `{name}` captures one
//! segment, `{name:regex}` one segment matching `regex`, `{*name}` the rest
//! of the path (with its leading `/`). With `matchTrailingSlash` (the
//! default) a pattern also matches the path with one `/` added.
//!
//! A path pattern is matched against the path as Spring's `PathContainer`
//! gives it to `PathPattern` ([`decoded_path`]): each segment without its
//! `;parameters` and percent-decoded, so that `/%61dmin/x` and
//! `/admin;v=1/x` take the `/admin/**` route, as they do in SCG and as the
//! upstream, which decodes them too, will read them. A `%2F` stays inside
//! its segment, and the captures hold decoded values.
//!
//! Host patterns follow Spring's `AntPathMatcher` with `.` as separator:
//! `**.example.org` matches any subdomain of `example.org`, `{sub}.example.org`
//! captures one label. Hosts are compared without case and without port.

use std::borrow::Cow;

use regex::Regex;

use crate::config::InvalidDefinition;

/// A compiled pattern and the names of its captures.
#[derive(Debug, Clone)]
pub struct Pattern {
    text: String,
    /// Literal text every match starts with: checked before the regex, so
    /// most routes are ruled out by a byte comparison.
    prefix: String,
    regex: Regex,
    names: Vec<String>,
    /// How a match is decided: most path patterns are literal and need
    /// no regex.
    shape: Shape,
    /// A path pattern: captures turn [`decoded_path`]'s `%2F` back into
    /// `/`.
    is_path: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// By the regex.
    Regex,
    /// A literal path: equal to `prefix`, or `prefix` and one `/` when
    /// `trailing_slash`.
    Literal { trailing_slash: bool },
    /// A literal path and `/**`: `prefix`, or `prefix` and `/` and
    /// anything.
    Subtree,
}

impl Pattern {
    /// A path pattern.
    pub fn path(text: &str, match_trailing_slash: bool) -> Result<Pattern, InvalidDefinition> {
        if !text.starts_with('/') {
            return Err(InvalidDefinition::new(
                "predicate Path",
                format!("pattern `{text}` must start with `/`"),
            ));
        }
        let mut re = String::from("^");
        let mut names = Vec::new();
        let segments: Vec<&str> = text[1..].split('/').collect();
        let last = segments.len() - 1;
        for (i, segment) in segments.iter().enumerate() {
            if *segment == "**" {
                re.push_str("(?:/(?s:.*))?");
                continue;
            }
            if let Some(name) = segment.strip_prefix("{*").and_then(|s| s.strip_suffix('}')) {
                if i != last {
                    return Err(InvalidDefinition::new(
                        "predicate Path",
                        format!("`{{*{name}}}` must be the last segment of `{text}`"),
                    ));
                }
                check_name(name, text)?;
                re.push_str(&format!("(?P<{name}>(?:/(?s:.*))?)"));
                names.push(name.to_owned());
                continue;
            }
            re.push('/');
            segment_regex(segment, '/', text, &mut re, &mut names)?;
        }
        let ends_open = text.ends_with('/')
            || text.ends_with("**")
            || text.ends_with('}') && text.contains("{*");
        if match_trailing_slash && !ends_open {
            re.push_str("/?");
        }
        re.push('$');
        let mut pattern = Pattern::build(text, &re, names, "predicate Path")?;
        pattern.prefix = literal_prefix(text);
        pattern.is_path = true;
        let literal = |t: &str| !t.contains(['*', '?', '{', '}']);
        pattern.shape = if literal(text) {
            Shape::Literal {
                trailing_slash: match_trailing_slash && !ends_open,
            }
        } else if let Some(head) = text.strip_suffix("/**")
            && literal(head)
        {
            Shape::Subtree
        } else {
            Shape::Regex
        };
        Ok(pattern)
    }

    /// A host pattern.
    pub fn host(text: &str) -> Result<Pattern, InvalidDefinition> {
        let lower = text.to_ascii_lowercase();
        let mut re = String::from("^");
        let mut names = Vec::new();
        let labels: Vec<&str> = lower.split('.').collect();
        for (i, label) in labels.iter().enumerate() {
            if *label == "**" {
                // Any number of labels with their dots (at the start) or
                // with the dot before them (elsewhere).
                if i == 0 {
                    re.push_str("(?:[^.]+\\.)*");
                } else {
                    re.push_str("(?:\\.[^.]+)*");
                }
                continue;
            }
            let after_leading_any = i == 1 && labels[0] == "**";
            if i > 0 && !after_leading_any {
                re.push_str("\\.");
            }
            segment_regex(label, '.', text, &mut re, &mut names)?;
        }
        re.push('$');
        Pattern::build(text, &re, names, "predicate Host")
    }

    fn build(
        text: &str,
        re: &str,
        names: Vec<String>,
        what: &str,
    ) -> Result<Pattern, InvalidDefinition> {
        let regex = Regex::new(re).map_err(|e| {
            InvalidDefinition::new(what, format!("pattern `{text}` is not valid")).with_source(e)
        })?;
        Ok(Pattern {
            text: text.to_owned(),
            prefix: String::new(),
            regex,
            names,
            shape: Shape::Regex,
            is_path: false,
        })
    }

    /// The pattern as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether `subject` matches; captures go into `vars`.
    pub fn matches(&self, subject: &str, vars: &mut Vec<(String, String)>) -> bool {
        let Some(rest) = subject.strip_prefix(self.prefix.as_str()) else {
            return false;
        };
        match self.shape {
            Shape::Literal { trailing_slash } => {
                return rest.is_empty() || trailing_slash && rest == "/";
            }
            Shape::Subtree => return rest.is_empty() || rest.starts_with('/'),
            Shape::Regex => {}
        }
        if self.names.is_empty() {
            return self.regex.is_match(subject);
        }
        let Some(caps) = self.regex.captures(subject) else {
            return false;
        };
        for name in &self.names {
            if let Some(m) = caps.name(name) {
                let value = match self.is_path && m.as_str().contains(ENCODED_SLASH) {
                    true => m.as_str().replace(ENCODED_SLASH, "/"),
                    false => m.as_str().to_owned(),
                };
                vars.push((name.clone(), value));
            }
        }
        true
    }
}

/// How [`decoded_path`] writes a `/` decoded inside a segment.
const ENCODED_SLASH: &str = "%2F";

/// A path with a `%` escape that is not two hex digits (400 before
/// routing, as SCG answers it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedEscape;

/// `path` (as received) the way path patterns see it, as Spring's
/// `PathContainer` gives it to `PathPattern`: each segment cut at its
/// first `;` (matrix parameters) and percent-decoded as UTF-8 (invalid
/// UTF-8 becomes U+FFFD). A `/` decoded inside a segment is written `%2F`,
/// so that it does not split the segment; captures turn it back into `/`.
/// Borrowed when there is nothing to decode or cut, as for most paths.
pub fn decoded_path(path: &str) -> Result<Cow<'_, str>, MalformedEscape> {
    if !path.contains(['%', ';']) {
        return Ok(Cow::Borrowed(path));
    }
    let mut bytes = Vec::with_capacity(path.len());
    for (i, segment) in path.as_bytes().split(|&c| c == b'/').enumerate() {
        if i > 0 {
            bytes.push(b'/');
        }
        let value = match segment.iter().position(|&c| c == b';') {
            Some(end) => &segment[..end],
            None => segment,
        };
        let mut j = 0;
        while j < value.len() {
            let c = value[j];
            j += 1;
            if c != b'%' {
                bytes.push(c);
                continue;
            }
            let decoded = cloud_runtime::percent::escape_at(value, j - 1).ok_or(MalformedEscape)?;
            j += 2;
            match decoded {
                b'/' => bytes.extend_from_slice(ENCODED_SLASH.as_bytes()),
                d => bytes.push(d),
            }
        }
    }
    Ok(Cow::Owned(String::from_utf8_lossy(&bytes).into_owned()))
}

/// The literal start of a path pattern: up to its first `*`, `?` or `{`,
/// without the `/` before it (which `/**` and `{*rest}` make optional).
fn literal_prefix(pattern: &str) -> String {
    match pattern.find(['*', '?', '{']) {
        Some(i) => pattern[..i].trim_end_matches('/').to_owned(),
        None => pattern.to_owned(),
    }
}

fn check_name(name: &str, pattern: &str) -> Result<(), InvalidDefinition> {
    let ok = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(InvalidDefinition::new(
            "predicate",
            format!("capture name `{name}` in `{pattern}` must be letters, digits and `_`"),
        ))
    }
}

/// Appends the regex of one segment (or host label): literals, `?`, `*`
/// and `{name}` / `{name:regex}` captures.
fn segment_regex(
    segment: &str,
    separator: char,
    pattern: &str,
    re: &mut String,
    names: &mut Vec<String>,
) -> Result<(), InvalidDefinition> {
    let not_sep = format!("[^{}]", regex::escape(&separator.to_string()));
    let mut rest = segment;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('{') {
            let Some(end) = capture_end(after) else {
                return Err(InvalidDefinition::new(
                    "predicate",
                    format!("unclosed `{{` in `{pattern}`"),
                ));
            };
            let inner = &after[..end];
            let (name, custom) = match inner.split_once(':') {
                Some((n, r)) => (n, Some(r)),
                None => (inner, None),
            };
            check_name(name, pattern)?;
            match custom {
                Some(r) => re.push_str(&format!("(?P<{name}>{r})")),
                None => re.push_str(&format!("(?P<{name}>{not_sep}+)")),
            }
            names.push(name.to_owned());
            rest = &after[end + 1..];
        } else {
            let c = rest.chars().next().unwrap_or_default();
            match c {
                '*' => re.push_str(&format!("{not_sep}*")),
                '?' => re.push_str(&not_sep),
                other => re.push_str(&regex::escape(&other.to_string())),
            }
            rest = &rest[c.len_utf8()..];
        }
    }
    Ok(())
}

/// The index of the `}` closing a capture, counting nested braces of a
/// custom regex (`{id:[0-9]{3}}`).
fn capture_end(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return Some(i),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_patterns_match_as_their_regex_does() {
        let subjects = [
            "", "/", "//", "/api", "/api/", "/api//", "/api/x", "/api/x/y", "/apix", "/ap", "/API",
            "/api/x/", "/a/b", "/a/b/", "/a/bc", "/a//b",
        ];
        for text in [
            "/", "/api", "/api/", "/api/**", "/**", "/a/b", "/a/b/**", "/a//b",
        ] {
            for trailing in [true, false] {
                let fast = Pattern::path(text, trailing).expect("pattern");
                assert_ne!(fast.shape, Shape::Regex, "{text} takes the fast path");
                let mut slow = fast.clone();
                slow.shape = Shape::Regex;
                for subject in subjects {
                    let mut vars = Vec::new();
                    assert_eq!(
                        fast.matches(subject, &mut vars),
                        slow.matches(subject, &mut vars),
                        "pattern {text} (trailing slash {trailing}) on {subject:?}"
                    );
                }
            }
        }
        for text in ["/api/*", "/a/**/b", "/{id}", "/a?"] {
            assert_eq!(
                Pattern::path(text, true).expect("pattern").shape,
                Shape::Regex
            );
        }
    }

    #[test]
    fn paths_are_matched_decoded_and_without_matrix_parameters() {
        fn decoded(p: &str) -> Cow<'_, str> {
            decoded_path(p).expect("well-formed")
        }
        assert!(matches!(
            decoded("/plain/path"),
            Cow::Borrowed("/plain/path")
        ));
        assert_eq!(decoded("/%61dmin/x"), "/admin/x");
        assert_eq!(decoded("/admin;jsessionid=1/x;v=2"), "/admin/x");
        assert_eq!(decoded("/a%3Bb;c/d"), "/a;b/d");
        assert_eq!(decoded("/caf%C3%A9/%25"), "/café/%");
        assert_eq!(decoded("/bad/%e9"), "/bad/\u{FFFD}");
        assert_eq!(decoded("/a%2Fb/c%2fd"), "/a%2Fb/c%2Fd");
        for malformed in ["/a/%zz", "/a/%", "/a/%4", "/%g1/x", "/a%2"] {
            assert_eq!(decoded_path(malformed), Err(MalformedEscape), "{malformed}");
        }
        // A parameter's own escapes are not looked at.
        assert_eq!(decoded("/a;x=%zz/b"), "/a/b");

        let admin = Pattern::path("/admin/**", true).expect("pattern");
        let mut vars = Vec::new();
        for routed in ["/%61dmin/x", "/admin;v=1/x", "/adm%69n"] {
            assert!(admin.matches(&decoded(routed), &mut vars), "{routed}");
        }
        for other in ["/admin%2Fx", "/%41DMIN/x", "/admins"] {
            assert!(!admin.matches(&decoded(other), &mut vars), "{other}");
        }
    }

    #[test]
    fn path_captures_are_decoded_values_and_a_decoded_slash_stays_in_its_segment() {
        let captures = |pattern: &str, path: &str| {
            let mut vars = Vec::new();
            let p = Pattern::path(pattern, true).expect("pattern");
            let matched = p.matches(&decoded_path(path).expect("well-formed"), &mut vars);
            matched.then_some(vars)
        };
        let pair = |a: &str, b: &str| {
            vec![
                ("a".to_owned(), a.to_owned()),
                ("b".to_owned(), b.to_owned()),
            ]
        };
        assert_eq!(
            captures("/c/{a}/{b}", "/c/a%20b/c%2Fd"),
            Some(pair("a b", "c/d"))
        );
        assert_eq!(
            captures("/c/{a}/{b}", "/c/a;m=1/b;n=2"),
            Some(pair("a", "b"))
        );
        assert_eq!(
            captures("/c/{a}/{b}", "/c/a%2Fb"),
            None,
            "one segment, not two"
        );
        assert_eq!(
            captures("/c/{a}/{*b}", "/c/x/y%2Fz/%0A;p"),
            Some(pair("x", "/y/z/\n")),
            "the rest of the path, any character"
        );
        assert_eq!(captures("/c/**", "/c/a/%0A"), Some(Vec::new()));
        // Host captures are left as they are.
        let host = Pattern::host("{a}.example.org").expect("pattern");
        let mut vars = Vec::new();
        assert!(host.matches("x%2Fy.example.org", &mut vars));
        assert_eq!(vars, vec![("a".to_owned(), "x%2Fy".to_owned())]);
    }
}
