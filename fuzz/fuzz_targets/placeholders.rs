//! The placeholder resolver: the first line is the text, the other lines
//! `key=value` definitions (cycles welcome). It always finishes, within the
//! output bound, or refuses with an error.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.lines();
    let Some(first) = lines.next() else { return };
    let values: HashMap<String, String> = lines
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let limits = config_server::fuzzing::default_limits();
    if let Ok(out) = config_server::fuzzing::placeholders(first, &values) {
        assert!(out.len() <= limits.placeholder_output_bytes);
    }
});
