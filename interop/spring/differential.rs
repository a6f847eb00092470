//! Differential testing against a reference Spring server: the same
//! scripted requests go to the reference and to ours, the answers are
//! compared after masking what legitimately varies, and every difference is
//! printed (a `DIFF` line with the request and both answers) and checked
//! against the list of known ones. Shared by the discovery-server and
//! config-server tests through `#[path]`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

/// A known difference: the step's name, the JSON pointers that differ
/// (`<status>` for the HTTP status, `<body>` for a whole body), and why.
pub(crate) type KnownDifference = (&'static str, &'static [&'static str], &'static str);

/// Replaces, anywhere in `v`, the value of every key for which `masked`
/// holds with `"<masked>"`.
pub(crate) fn mask_json(v: &mut Value, masked: &dyn Fn(&str) -> bool) {
    match v {
        Value::Object(map) => {
            for (k, inner) in map.iter_mut() {
                if masked(k) {
                    *inner = json!("<masked>");
                } else {
                    mask_json(inner, masked);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| mask_json(i, masked)),
        _ => {}
    }
}

/// The JSON pointers at which `a` and `b` differ (`<body>` when they are not
/// both objects or arrays and differ). Object key order is ignored; arrays
/// of different lengths differ as a whole.
pub(crate) fn differing_paths(a: &Value, b: &Value) -> Vec<String> {
    fn walk(a: &Value, b: &Value, at: &str, out: &mut Vec<String>) {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                for k in keys {
                    let here = format!("{at}/{k}");
                    match (x.get(k), y.get(k)) {
                        (Some(l), Some(r)) => walk(l, r, &here, out),
                        _ => out.push(here),
                    }
                }
            }
            (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
                for (i, (l, r)) in x.iter().zip(y).enumerate() {
                    walk(l, r, &format!("{at}/{i}"), out);
                }
            }
            _ if a == b => {}
            _ if at.is_empty() => out.push("<body>".to_owned()),
            _ => out.push(at.to_owned()),
        }
    }
    let mut out = Vec::new();
    walk(a, b, "", &mut out);
    out
}

/// One answer: HTTP status and body (raw, and normalized for comparison).
pub(crate) struct Answer {
    /// The HTTP status.
    pub(crate) status: u16,
    /// The body as received.
    pub(crate) raw: String,
    /// The body after masking.
    pub(crate) normalized: Value,
}

/// The differences found along a script.
#[derive(Default)]
pub(crate) struct Differences {
    found: BTreeMap<&'static str, Vec<String>>,
}

impl Differences {
    /// Compares the two answers to the step `name` (`request` describes it
    /// for the report); prints and records any difference.
    pub(crate) fn compare(
        &mut self,
        name: &'static str,
        request: &str,
        reference: &Answer,
        ours: &Answer,
    ) {
        let mut paths = differing_paths(&reference.normalized, &ours.normalized);
        if reference.status != ours.status {
            paths.insert(0, "<status>".to_owned());
        }
        if paths.is_empty() {
            return;
        }
        eprintln!(
            "DIFF {name}: {request}\n  differs at: {paths:?}\n  reference: {} {}\n  ours:      {} {}",
            reference.status, reference.raw, ours.status, ours.raw
        );
        assert!(
            self.found.insert(name, paths).is_none(),
            "step name {name} used twice"
        );
    }

    /// Fails unless the differences found are exactly `known` (so a new
    /// difference fails, and a fixed one must leave the list).
    pub(crate) fn assert_known(&self, known: &[KnownDifference]) {
        let found: Vec<(&str, Vec<String>)> = self
            .found
            .iter()
            .map(|(name, paths)| (*name, paths.clone()))
            .collect();
        let mut expected: Vec<(&str, Vec<String>)> = known
            .iter()
            .map(|(name, paths, _)| (*name, paths.iter().map(|p| (*p).to_owned()).collect()))
            .collect();
        expected.sort();
        assert_eq!(
            found, expected,
            "differences from the reference server changed (see the DIFF lines above)"
        );
    }
}
