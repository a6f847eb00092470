//! `${...}` placeholders, resolved the way Spring's property resolver does.
//!
//! `${key}` is replaced by the value of `key`, `${key:default}` falls back to
//! `default` when `key` is missing, placeholders nest (`${a:${b}}`), and the
//! value found is itself resolved. A placeholder that cannot be resolved is
//! left as written (Spring's views ignore unresolvable placeholders).
//!
//! A placeholder met again while it is being resolved is an error, as in
//! Spring: "Circular placeholder reference 'a' in property definitions".
//! Resolution is bounded by a [`Budget`] shared by everything one request
//! resolves: nesting depth, bytes produced and placeholders substituted, so
//! that no repository content (`a: ${b}${b}`, `b: ${c}${c}`, ...) can make a
//! request run long or grow large.

use std::borrow::Cow;

use crate::limits::{LimitExceeded, LimitReason, Limits, shorten};

/// Characters of a placeholder quoted in an error.
const QUOTED_CHARS: usize = 200;

/// Looks a key up; `None` when there is no such key.
pub(crate) type Lookup<'a> = dyn Fn(&str) -> Option<Cow<'a, str>> + 'a;

/// Why placeholders could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaceholderError {
    /// A placeholder refers, directly or not, to itself.
    #[error("Circular placeholder reference '{placeholder}' in property definitions")]
    Circular {
        /// The placeholder as written between `${` and `}` (its first 200
        /// characters).
        placeholder: String,
    },
    /// The request's resolution budget ran out.
    #[error(transparent)]
    Limit(#[from] LimitExceeded),
}

impl PlaceholderError {
    /// Whether a placeholder refers to itself.
    pub fn is_circular(&self) -> bool {
        matches!(self, Self::Circular { .. })
    }

    /// The reason counted in the metrics.
    pub fn reason(&self) -> LimitReason {
        match self {
            Self::Circular { .. } => LimitReason::PlaceholderCycle,
            Self::Limit(e) => e.reason(),
        }
    }
}

/// What one request may still spend on placeholder resolution.
#[derive(Debug, Clone)]
pub(crate) struct Budget {
    max_depth: usize,
    output_left: usize,
    /// Bytes of looked-up values that may still be read; bounded like the
    /// output, so that a long value referred to many times cannot cost
    /// more than the output bound allows.
    read_left: usize,
    output_limit: usize,
    substitutions_left: usize,
    substitution_limit: usize,
}

impl Budget {
    /// The budget of one request under `limits`.
    pub(crate) fn new(limits: &Limits) -> Self {
        Self {
            max_depth: limits.placeholder_depth,
            output_left: limits.placeholder_output_bytes,
            read_left: limits.placeholder_output_bytes,
            output_limit: limits.placeholder_output_bytes,
            substitutions_left: limits.placeholder_substitutions,
            substitution_limit: limits.placeholder_substitutions,
        }
    }

    fn output_exceeded(&self) -> LimitExceeded {
        LimitExceeded::new(
            LimitReason::PlaceholderOutput,
            "max_placeholder_output_bytes",
            self.output_limit,
        )
    }

    /// Appends `s` to `out` when the output budget allows it.
    fn emit(&mut self, out: &mut String, s: &str) -> Result<(), LimitExceeded> {
        if s.len() > self.output_left {
            return Err(self.output_exceeded());
        }
        self.output_left -= s.len();
        out.push_str(s);
        Ok(())
    }

    /// Takes `len` bytes of a looked-up value about to be resolved.
    fn read(&mut self, len: usize) -> Result<(), LimitExceeded> {
        if len > self.read_left {
            return Err(self.output_exceeded());
        }
        self.read_left -= len;
        Ok(())
    }

    /// Takes one substitution at nesting `depth`.
    fn substitute(&mut self, depth: usize) -> Result<(), LimitExceeded> {
        if depth >= self.max_depth {
            return Err(LimitExceeded::new(
                LimitReason::PlaceholderDepth,
                "max_placeholder_depth",
                self.max_depth,
            ));
        }
        if self.substitutions_left == 0 {
            return Err(LimitExceeded::new(
                LimitReason::PlaceholderSubstitutions,
                "max_placeholder_substitutions",
                self.substitution_limit,
            ));
        }
        self.substitutions_left -= 1;
        Ok(())
    }
}

/// Replaces every `${...}` in `text` using `lookup`, spending from `budget`.
pub(crate) fn resolve(
    text: &str,
    lookup: &Lookup<'_>,
    budget: &mut Budget,
) -> Result<String, PlaceholderError> {
    let mut resolver = Resolver {
        lookup,
        budget,
        visiting: Vec::new(),
    };
    let mut out = String::with_capacity(text.len().min(resolver.budget.output_left));
    resolver.resolve_into(text, 0, &mut out)?;
    Ok(out)
}

/// One resolution: the budget and the placeholders being resolved (the
/// stack that detects cycles; at most `max_depth` long).
struct Resolver<'l, 'a, 'b> {
    lookup: &'l Lookup<'a>,
    budget: &'b mut Budget,
    visiting: Vec<String>,
}

impl Resolver<'_, '_, '_> {
    /// Appends `text` with its placeholders resolved to `out`.
    fn resolve_into(
        &mut self,
        text: &str,
        depth: usize,
        out: &mut String,
    ) -> Result<(), PlaceholderError> {
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            self.budget.emit(out, &rest[..start])?;
            let after = &rest[start + 2..];
            let Some(end) = matching_close(after) else {
                // Unterminated: keep the remainder verbatim.
                self.budget.emit(out, &rest[start..])?;
                return Ok(());
            };
            self.expand(&after[..end], depth, out)?;
            rest = &after[end + 1..];
        }
        self.budget.emit(out, rest)?;
        Ok(())
    }

    /// Expands the body of one placeholder (`key` or `key:default`) into `out`.
    fn expand(
        &mut self,
        inner: &str,
        depth: usize,
        out: &mut String,
    ) -> Result<(), PlaceholderError> {
        self.budget.substitute(depth)?;
        if self.visiting.iter().any(|v| v == inner) {
            return Err(PlaceholderError::Circular {
                placeholder: shorten(inner, QUOTED_CHARS).into_owned(),
            });
        }
        self.visiting.push(inner.to_string());
        let (key_part, default) = match default_separator(inner) {
            Some(i) => (&inner[..i], Some(&inner[i + 1..])),
            None => (inner, None),
        };
        let mut key = String::new();
        self.resolve_into(key_part, depth + 1, &mut key)?;
        match (self.lookup)(&key) {
            Some(v) => {
                self.budget.read(v.len())?;
                self.resolve_into(&v, depth + 1, out)?;
            }
            None => match default {
                Some(d) => self.resolve_into(d, depth + 1, out)?,
                None => {
                    self.budget.emit(out, "${")?;
                    self.budget.emit(out, inner)?;
                    self.budget.emit(out, "}")?;
                }
            },
        }
        self.visiting.pop();
        Ok(())
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

    fn with(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<Cow<'static, str>> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned().map(Cow::Owned)
    }

    fn resolve_all(text: &str, lookup: &Lookup<'_>) -> Result<String, PlaceholderError> {
        resolve(text, lookup, &mut Budget::new(&Limits::default()))
    }

    fn ok(text: &str, lookup: &Lookup<'_>) -> String {
        resolve_all(text, lookup).unwrap()
    }

    #[test]
    fn resolves_keys_defaults_and_nesting() {
        let l = with(&[("a", "A"), ("b", "${a}-B"), ("name", "a")]);
        assert_eq!(ok("x ${a} y", &l), "x A y");
        assert_eq!(ok("${b}", &l), "A-B");
        assert_eq!(ok("${missing:dflt}", &l), "dflt");
        assert_eq!(ok("${missing:${a}}", &l), "A");
        assert_eq!(ok("${${name}}", &l), "A");
        assert_eq!(ok("${url:http://h:80}", &l), "http://h:80");
        assert_eq!(ok("${missing:}", &l), "");
    }

    #[test]
    fn unresolvable_and_unterminated_are_left_as_written() {
        let l = with(&[]);
        assert_eq!(ok("${nope}", &l), "${nope}");
        assert_eq!(ok("a ${open", &l), "a ${open");
    }

    #[test]
    fn the_same_placeholder_twice_in_a_row_is_not_a_cycle() {
        let l = with(&[("a", "v"), ("b", "${a}${a}"), ("c", "${b}/${b}")]);
        assert_eq!(ok("${c}", &l), "vv/vv");
    }

    #[test]
    fn cycles_are_reported_as_spring_reports_them() {
        let l = with(&[("a", "${b}"), ("b", "${a}")]);
        let err = resolve_all("${a}", &l).unwrap_err();
        assert!(err.is_circular());
        assert_eq!(
            err.to_string(),
            "Circular placeholder reference 'a' in property definitions"
        );
        let doubling = with(&[("a", "${a}${a}")]);
        let err = resolve_all("${a}", &doubling).unwrap_err();
        assert_eq!(err.reason(), LimitReason::PlaceholderCycle);
        let with_default = with(&[("a", "${a:x}")]);
        assert!(
            resolve_all("${a:x}", &with_default)
                .unwrap_err()
                .is_circular()
        );
    }

    /// `k0: x`, `k1: ${k0}${k0}`, ... `k{n}`: 2^n bytes without any cycle.
    fn doubling_chain(n: usize) -> Vec<(String, String)> {
        let mut pairs = vec![("k0".to_string(), "x".to_string())];
        for i in 1..=n {
            pairs.push((format!("k{i}"), format!("${{k{0}}}${{k{0}}}", i - 1)));
        }
        pairs
    }

    #[test]
    fn exponential_expansion_stops_at_the_output_or_substitution_bound() {
        let pairs = doubling_chain(30);
        let refs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let l = with(&refs);
        let err = resolve_all("${k30}", &l).unwrap_err();
        assert!(matches!(
            err.reason(),
            LimitReason::PlaceholderOutput | LimitReason::PlaceholderSubstitutions
        ));
        let small = Limits {
            placeholder_output_bytes: 1000,
            ..Limits::default()
        };
        let err = resolve("${k20}", &l, &mut Budget::new(&small)).unwrap_err();
        assert_eq!(err.reason(), LimitReason::PlaceholderOutput);
        assert_eq!(ok("${k3}", &l), "xxxxxxxx");
    }

    #[test]
    fn the_budget_is_shared_by_everything_a_request_resolves() {
        let l = with(&[("a", "v")]);
        let limits = Limits {
            placeholder_substitutions: 3,
            ..Limits::default()
        };
        let mut budget = Budget::new(&limits);
        for _ in 0..3 {
            assert_eq!(resolve("${a}", &l, &mut budget).unwrap(), "v");
        }
        let err = resolve("${a}", &l, &mut budget).unwrap_err();
        assert_eq!(err.reason(), LimitReason::PlaceholderSubstitutions);
    }

    #[test]
    fn a_long_value_referred_to_often_costs_the_output_budget_even_when_it_produces_nothing() {
        // `a` is a 1 MB placeholder whose default is never used: it expands
        // to "v" but each expansion reads the whole value.
        let long = format!("${{k:{}}}", "x".repeat(1 << 20));
        let l = with(&[("k", "v"), ("a", long.as_str())]);
        let many = "${a}".repeat(1000);
        let err = resolve_all(&many, &l).unwrap_err();
        assert_eq!(err.reason(), LimitReason::PlaceholderOutput);
        assert_eq!(ok("${a}${a}", &l), "vv");
    }

    #[test]
    fn deep_chains_stop_at_the_depth_bound() {
        let pairs: Vec<(String, String)> = (0..100)
            .map(|i| (format!("k{i}"), format!("${{k{}}}", i + 1)))
            .collect();
        let refs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let err = resolve_all("${k0}", &with(&refs)).unwrap_err();
        assert_eq!(err.reason(), LimitReason::PlaceholderDepth);
        let nested = format!("{}x{}", "${".repeat(100), "}".repeat(100));
        let err = resolve_all(&nested, &with(&[])).unwrap_err();
        assert_eq!(err.reason(), LimitReason::PlaceholderDepth);
    }

    /// Small bounds, so that a proptest case that hits them stays quick.
    fn small_limits() -> Limits {
        Limits {
            placeholder_depth: 8,
            placeholder_output_bytes: 4096,
            placeholder_substitutions: 256,
            ..Limits::default()
        }
    }

    proptest! {
        #[test]
        fn never_panics(s in "[${}:a-c]{0,40}") {
            let l = with(&[("a", "${b}"), ("b", "x")]);
            let _ = resolve_all(&s, &l);
        }

        /// Arbitrary values referring to each other (cycles, doubling,
        /// defaults, unterminated text) always finish within the bounds:
        /// the output never exceeds the budget and errors name a bound.
        #[test]
        fn arbitrary_inputs_terminate_within_the_bounds(
            values in proptest::collection::vec("([$]\\{|[abc:}x]){0,24}", 3),
            text in "([$]\\{|[abc:}x]){0,24}",
        ) {
            let pairs = [("a", values[0].as_str()), ("b", values[1].as_str()), ("c", values[2].as_str())];
            let l = with(&pairs);
            let limits = small_limits();
            let mut budget = Budget::new(&limits);
            match resolve(&text, &l, &mut budget) {
                Ok(out) => prop_assert!(out.len() <= limits.placeholder_output_bytes),
                Err(PlaceholderError::Circular { placeholder }) => {
                    prop_assert!(text.contains(&placeholder) || values.iter().any(|v| v.contains(&placeholder)));
                }
                Err(PlaceholderError::Limit(e)) => prop_assert!(e.setting().starts_with("max_placeholder_")),
            }
            prop_assert!(budget.substitutions_left <= limits.placeholder_substitutions);
        }
    }
}
