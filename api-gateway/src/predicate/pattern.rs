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
//! Host patterns follow Spring's `AntPathMatcher` with `.` as separator:
//! `**.example.org` matches any subdomain of `example.org`, `{sub}.example.org`
//! captures one label. Hosts are compared without case and without port.

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
                re.push_str("(?:/.*)?");
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
                re.push_str(&format!("(?P<{name}>(?:/.*)?)"));
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
                vars.push((name.clone(), m.as_str().to_owned()));
            }
        }
        true
    }
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
}
