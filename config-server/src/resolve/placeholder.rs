//! `${...}` placeholders, resolved the way Spring's property resolver does.
//!
//! `${key}` is replaced by the value of `key`, `${key:default}` falls back to
//! `default` when `key` is missing, placeholders nest (`${a:${b}}`), and the
//! value found is itself resolved. A placeholder that cannot be resolved is
//! left as written; a cycle stops after a fixed depth instead of looping.

/// How deep resolved values may refer to other values.
const MAX_DEPTH: usize = 32;

/// Replaces every `${...}` in `text` using `lookup`.
pub(crate) fn resolve(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    resolve_at(text, lookup, 0)
}

fn resolve_at(text: &str, lookup: &dyn Fn(&str) -> Option<String>, depth: usize) -> String {
    if depth > MAX_DEPTH || !text.contains("${") {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = matching_close(after) else {
            // Unterminated: keep the remainder verbatim.
            out.push_str(&rest[start..]);
            return out;
        };
        let inner = &after[..end];
        out.push_str(&expand(inner, lookup, depth));
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Expands the body of one placeholder (`key` or `key:default`).
fn expand(inner: &str, lookup: &dyn Fn(&str) -> Option<String>, depth: usize) -> String {
    let (key_part, default) = match default_separator(inner) {
        Some(i) => (&inner[..i], Some(&inner[i + 1..])),
        None => (inner, None),
    };
    let key = resolve_at(key_part, lookup, depth + 1);
    match lookup(&key) {
        Some(v) => resolve_at(&v, lookup, depth + 1),
        None => match default {
            Some(d) => resolve_at(d, lookup, depth + 1),
            None => format!("${{{inner}}}"),
        },
    }
}

/// Index of the `}` that closes a placeholder whose body starts `s`.
fn matching_close(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' && bytes.get(i + 1) == Some(&b'{') {
            depth += 1;
            i += 2;
            continue;
        }
        if bytes[i] == b'}' {
            if depth == 0 {
                return Some(i);
            }
            depth -= 1;
        }
        i += 1;
    }
    None
}

/// Index of the first `:` of `inner` that is not inside a nested placeholder.
fn default_separator(inner: &str) -> Option<usize> {
    let bytes = inner.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' => depth = depth.saturating_sub(1),
            b':' if depth == 0 => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn with(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn resolves_keys_defaults_and_nesting() {
        let l = with(&[("a", "A"), ("b", "${a}-B"), ("name", "a")]);
        assert_eq!(resolve("x ${a} y", &l), "x A y");
        assert_eq!(resolve("${b}", &l), "A-B");
        assert_eq!(resolve("${missing:dflt}", &l), "dflt");
        assert_eq!(resolve("${missing:${a}}", &l), "A");
        assert_eq!(resolve("${${name}}", &l), "A");
        assert_eq!(resolve("${url:http://h:80}", &l), "http://h:80");
        assert_eq!(resolve("${missing:}", &l), "");
    }

    #[test]
    fn unresolvable_and_unterminated_are_left_as_written() {
        let l = with(&[]);
        assert_eq!(resolve("${nope}", &l), "${nope}");
        assert_eq!(resolve("a ${open", &l), "a ${open");
    }

    #[test]
    fn cycles_stop() {
        let l = with(&[("a", "${b}"), ("b", "${a}")]);
        let out = resolve("${a}", &l);
        assert!(out.contains("${"));
    }

    proptest! {
        #[test]
        fn never_panics(s in "[${}:a-c]{0,40}") {
            let l = with(&[("a", "${b}"), ("b", "x")]);
            let _ = resolve(&s, &l);
        }
    }
}
