//! `.properties` parsing with `java.util.Properties` rules, shared by the
//! settings layering (`--config application.properties`) and
//! config-server (the `.properties` files it serves and writes).
//!
//! Comments start with `#` or `!`; a key ends at the first unescaped `=`, `:`
//! or whitespace; a line ending in an odd number of backslashes continues on
//! the next line (whose leading whitespace is dropped); `\t`, `\n`, `\r`, `\f`,
//! `\uXXXX` are escapes and any other escaped character stands for itself.
//! Every value is a string, as in Java.
//!
//! As in Spring Boot, a file holds several documents separated by a line
//! `#---` or `!---` (at the start of the line, nothing but whitespace after
//! it, and not right after a comment line with the same prefix); empty
//! documents are dropped, and a comment line before the first entry of a
//! document joins that document to the one before (Boot's
//! `OriginTrackedPropertiesLoader` does the same).

use serde_json::{Map, Value};

/// Parses `.properties` text into keys and string values, in file order.
/// A later duplicate key replaces the earlier value (as Java does).
pub fn parse(text: &str) -> Map<String, Value> {
    let mut out = Map::new();
    for logical in logical_lines(text) {
        let (key, value) = split_entry(&logical);
        out.insert(unescape(key), Value::String(unescape(value)));
    }
    out
}

/// Parses `.properties` text into its documents (see the module doc), in
/// file order, empty ones dropped.
pub fn parse_documents(text: &str) -> Vec<Map<String, Value>> {
    let text = text.replace("\r\n", "\n");
    let mut chunks: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut has_entry = false;
    let mut continues = false;
    let mut last_comment: Option<char> = None;
    for raw in text.split(['\n', '\r']) {
        if !continues {
            let t = raw.trim_start_matches([' ', '\t', '\u{c}']);
            if t.is_empty() {
                continue;
            }
            if let Some(prefix) = t.chars().next().filter(|c| matches!(c, '#' | '!')) {
                if is_document_separator(raw) && last_comment != Some(prefix) {
                    if has_entry {
                        chunks.push(std::mem::take(&mut current));
                    }
                    current.clear();
                    has_entry = false;
                    last_comment = None;
                    continue;
                }
                if !has_entry && let Some(previous) = chunks.pop() {
                    current = previous + &current;
                    has_entry = true;
                }
                last_comment = Some(prefix);
                continue;
            }
            last_comment = None;
            has_entry = true;
        }
        current.push_str(raw);
        current.push('\n');
        let trailing = raw.chars().rev().take_while(|c| *c == '\\').count();
        continues = trailing % 2 == 1;
    }
    if has_entry {
        chunks.push(current);
    }
    chunks
        .iter()
        .map(|chunk| parse(chunk))
        .filter(|doc| !doc.is_empty())
        .collect()
}

/// `#---` or `!---` at the start of the line, then only whitespace.
fn is_document_separator(line: &str) -> bool {
    (line.starts_with("#---") || line.starts_with("!---")) && line[4..].trim().is_empty()
}

/// Joins continuation lines and drops blank and comment lines. The result
/// keeps escapes untouched except the line-joining backslash.
fn logical_lines(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current: Option<String> = None;
    let text = text.replace("\r\n", "\n");
    for raw in text.split(['\n', '\r']) {
        let piece = match current {
            Some(_) => raw.trim_start_matches([' ', '\t', '\u{c}']),
            None => {
                let t = raw.trim_start_matches([' ', '\t', '\u{c}']);
                if t.is_empty() || t.starts_with('#') || t.starts_with('!') {
                    continue;
                }
                t
            }
        };
        let trailing = piece.chars().rev().take_while(|c| *c == '\\').count();
        let continues = trailing % 2 == 1;
        let body = if continues {
            &piece[..piece.len() - 1]
        } else {
            piece
        };
        let acc = current.get_or_insert_with(String::new);
        acc.push_str(body);
        if !continues {
            lines.extend(current.take());
        }
    }
    // A file ending in a continuation still yields its last entry.
    lines.extend(current);
    lines
}

/// Splits a logical line into the raw (still escaped) key and value.
fn split_entry(line: &str) -> (&str, &str) {
    let bytes = line.as_bytes();
    let mut i = 0;
    let mut key_end = line.len();
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'=' | b':' | b' ' | b'\t' | 0x0c => {
                key_end = i;
                break;
            }
            _ => i += 1,
        }
    }
    let key_end = key_end.min(line.len());
    let rest = &line[key_end..];
    let rest = rest.trim_start_matches([' ', '\t', '\u{c}']);
    let rest = rest
        .strip_prefix('=')
        .or_else(|| rest.strip_prefix(':'))
        .unwrap_or(rest);
    let value = rest.trim_start_matches([' ', '\t', '\u{c}']);
    (&line[..key_end], value)
}

/// Applies the escapes of `java.util.Properties`.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\u{c}'),
            Some('u') => {
                let hex: String = chars.clone().take(4).collect();
                match u32::from_str_radix(&hex, 16)
                    .ok()
                    .filter(|_| hex.len() == 4)
                {
                    Some(code) => {
                        out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                        for _ in 0..4 {
                            chars.next();
                        }
                    }
                    // Java throws on a malformed \u escape; we keep the text.
                    None => out.push('u'),
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// Escapes a key or value for writing a `.properties` line.
pub fn escape(s: &str, is_key: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.chars().enumerate() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{c}' => out.push_str("\\f"),
            ' ' if is_key || i == 0 => out.push_str("\\ "),
            '=' | ':' | '#' | '!' if is_key => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn separators_comments_and_whitespace() {
        let m = parse("# c\n! c\n a=1\nb : 2\nc 3\nd\te=4\n\nempty=\nkeyonly\n");
        assert_eq!(m["a"], json!("1"));
        assert_eq!(m["b"], json!("2"));
        assert_eq!(m["c"], json!("3"));
        assert_eq!(m["d"], json!("e=4"));
        assert_eq!(m["empty"], json!(""));
        assert_eq!(m["keyonly"], json!(""));
    }

    #[test]
    fn continuation_lines_join_and_drop_leading_whitespace() {
        let m = parse("fruits = apple, \\\n    banana, \\\r\n    pear\nx=\\\\\ny=1");
        assert_eq!(m["fruits"], json!("apple, banana, pear"));
        assert_eq!(
            m["x"],
            json!("\\"),
            "an even number of backslashes is no continuation"
        );
        assert_eq!(m["y"], json!("1"));
    }

    #[test]
    fn escapes_in_keys_and_values() {
        let m = parse("my\\ key\\=x = a\\tb\\u0041\\n\\q\n");
        assert_eq!(m["my key=x"], json!("a\tbA\nq"));
    }

    #[test]
    fn later_duplicate_wins_and_order_is_kept() {
        let m = parse("b=1\na=2\nb=3\n");
        let keys: Vec<_> = m.keys().cloned().collect();
        assert_eq!(keys, ["b", "a"]);
        assert_eq!(m["b"], json!("3"));
    }

    #[test]
    fn escape_round_trips_through_parse() {
        let key = "we:ird = key\\";
        let value = " lead\tand\nnew";
        let line = format!("{}={}", escape(key, true), escape(value, false));
        let m = parse(&line);
        assert_eq!(m[key], json!(value));
    }

    #[test]
    fn documents_split_at_hash_or_bang_dashes() {
        let docs = parse_documents("a=1\n#---\nb=2\n!---  \nc=3\n");
        assert_eq!(docs.len(), 3);
        assert_eq!(docs[0]["a"], json!("1"));
        assert_eq!(docs[1]["b"], json!("2"));
        assert_eq!(docs[2]["c"], json!("3"));
        assert_eq!(parse_documents("a=1\n").len(), 1);
    }

    #[test]
    fn empty_documents_are_dropped() {
        let docs = parse_documents("#---\na=1\n#---\n#---\nb=2\n#---\n");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1]["b"], json!("2"));
    }

    #[test]
    fn what_is_no_separator_stays_in_the_document() {
        // Indented, longer, after a comment with the same prefix, inside a
        // continued value.
        let docs = parse_documents(" #---\na=1\n#----x\n# c\n#---\nb=2\nv=x\\\n#---\n");
        assert_eq!(docs.len(), 1, "{docs:?}");
        assert_eq!(docs[0]["b"], json!("2"));
        assert_eq!(docs[0]["v"], json!("x#---"));
    }

    #[test]
    fn a_comment_right_after_a_separator_joins_the_documents() {
        let docs = parse_documents("a=1\n#---\n# note\nb=2\n");
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0]["b"], json!("2"));
    }

    proptest! {
        #[test]
        fn parse_documents_never_panics(s in "[#!\\-a=\n ]{0,40}") {
            let _ = parse_documents(&s);
        }

        #[test]
        fn parse_never_panics(s in "\\PC*") {
            let _ = parse(&s);
        }

        #[test]
        fn escaped_pairs_round_trip(k in "[a-z =:#!\\\\\t]{1,8}", v in "[a-z =:\\\\\t\n]{0,8}") {
            let m = parse(&format!("{}={}\n", escape(&k, true), escape(&v, false)));
            prop_assert_eq!(m.get(&k), Some(&Value::String(v)));
        }
    }
}
