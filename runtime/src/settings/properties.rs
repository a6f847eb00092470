//! `.properties` files as Spring Boot reads them: Java's format (`key=value`,
//! `key: value` or `key value`; `#` and `!` comments; `\` escapes and line
//! continuations; ISO-8859-1 bytes), documents separated by a `#---` or
//! `!---` line, and keys with list indices and bracketed map keys
//! (`spring.cloud.gateway.routes[0].predicates[1]=Path=/x`,
//! `metadata[a.b]=1`), turned into the same tree a YAML file gives.

use serde_json::{Map, Value};

use super::{canonical, is_struct, schema_child};

/// One `key=value` line, with the line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Property {
    pub key: String,
    pub value: String,
    pub line: usize,
}

/// The documents of `bytes` (ISO-8859-1, as Spring Boot reads them), each
/// its properties in order.
pub(super) fn documents(bytes: &[u8]) -> Vec<Vec<Property>> {
    let text: String = bytes.iter().map(|&b| char::from(b)).collect();
    let mut docs = vec![Vec::new()];
    let mut lines = text.lines().enumerate().peekable();
    while let Some((index, raw)) = lines.next() {
        let trimmed = raw.trim_start();
        if raw == "#---" || raw == "!---" {
            docs.push(Vec::new());
            continue;
        }
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('!') {
            continue;
        }
        // A logical line: natural lines joined while one ends in an odd
        // number of backslashes (the next one's leading blanks dropped).
        let mut logical = String::from(trimmed);
        while ends_in_continuation(&logical) {
            logical.pop();
            match lines.next() {
                Some((_, next)) => logical.push_str(next.trim_start()),
                None => break,
            }
        }
        let (key, value) = split_pair(&logical);
        if let Some(doc) = docs.last_mut() {
            doc.push(Property {
                key,
                value,
                line: index + 1,
            });
        }
    }
    docs.retain(|d| !d.is_empty());
    docs
}

fn ends_in_continuation(line: &str) -> bool {
    line.bytes().rev().take_while(|b| *b == b'\\').count() % 2 == 1
}

/// The key (up to the first unescaped `=`, `:` or blank) and the value
/// (after the separator and the blanks around it), both unescaped.
fn split_pair(line: &str) -> (String, String) {
    let mut chars = line.chars().peekable();
    let mut key = String::new();
    while let Some(c) = chars.next() {
        match c {
            '\\' => push_escaped(&mut key, &mut chars),
            '=' | ':' => break,
            c if c.is_whitespace() => {
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
                if matches!(chars.peek(), Some('=' | ':')) {
                    chars.next();
                }
                break;
            }
            c => key.push(c),
        }
    }
    while chars.peek().is_some_and(|c| c.is_whitespace()) {
        chars.next();
    }
    let mut value = String::new();
    while let Some(c) = chars.next() {
        match c {
            '\\' => push_escaped(&mut value, &mut chars),
            c => value.push(c),
        }
    }
    // Spring Boot trims a value's trailing blanks (Java keeps them).
    let kept = value.trim_end().len();
    value.truncate(kept);
    (key, value)
}

fn push_escaped(out: &mut String, chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    match chars.next() {
        Some('t') => out.push('\t'),
        Some('n') => out.push('\n'),
        Some('r') => out.push('\r'),
        Some('f') => out.push('\u{c}'),
        Some('u') => {
            let hex: String = chars.by_ref().take(4).collect();
            match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                Some(c) if hex.len() == 4 => out.push(c),
                _ => {
                    out.push_str("\\u");
                    out.push_str(&hex);
                }
            }
        }
        Some(other) => out.push(other),
        None => {}
    }
}

/// One level of a property key.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Name(String),
    Index(usize),
    /// `[a.b]`: a map key taken whole.
    Key(String),
}

fn segments(key: &str) -> Result<Vec<Segment>, String> {
    let mut out = Vec::new();
    let mut name = String::new();
    let mut chars = key.chars();
    let flush = |name: &mut String, out: &mut Vec<Segment>| {
        if !name.is_empty() {
            out.push(Segment::Name(std::mem::take(name)));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '.' => {
                if name.is_empty()
                    && !matches!(out.last(), Some(Segment::Index(_) | Segment::Key(_)))
                {
                    return Err("has an empty level".to_owned());
                }
                flush(&mut name, &mut out);
            }
            '[' => {
                flush(&mut name, &mut out);
                let inside: String = chars.by_ref().take_while(|c| *c != ']').collect();
                let inside = inside.trim();
                if inside.is_empty() {
                    return Err("has an empty `[]`".to_owned());
                }
                out.push(match inside.parse::<usize>() {
                    Ok(i) => Segment::Index(i),
                    Err(_) => Segment::Key(inside.trim_matches(['"', '\'']).to_owned()),
                });
            }
            c => name.push(c),
        }
    }
    flush(&mut name, &mut out);
    if out.is_empty() {
        return Err("is empty".to_owned());
    }
    Ok(out)
}

/// The tree of one document's properties; `schema` tells free-form maps
/// (whose keys keep their dots: `metadata-map.a.b=1` is the key `a.b`). On
/// failure, the key and the reason.
pub(super) fn tree(properties: &[Property], schema: &Value) -> Result<Value, (String, String)> {
    let mut root = Value::Object(Map::new());
    for p in properties {
        let segs = segments(&p.key).map_err(|r| (p.key.clone(), format!("the key {r}")))?;
        insert(
            &mut root,
            &segs,
            Some(schema),
            Value::String(p.value.clone()),
        )
        .map_err(|r| (p.key.clone(), r))?;
    }
    check_no_gaps(&root, &mut String::new())?;
    Ok(root)
}

fn insert(
    node: &mut Value,
    segs: &[Segment],
    schema: Option<&Value>,
    value: Value,
) -> Result<(), String> {
    let Some((first, rest)) = segs.split_first() else {
        *node = value;
        return Ok(());
    };
    match first {
        Segment::Index(i) => {
            if *i > 10_000 {
                return Err(format!("index {i} is too large"));
            }
            if !node.is_array() {
                *node = Value::Array(Vec::new());
            }
            let Value::Array(items) = node else {
                return Ok(());
            };
            if items.len() <= *i {
                items.resize(*i + 1, Value::Null);
            }
            let child_schema = schema.and_then(|s| s.as_array()).and_then(|a| a.first());
            insert(&mut items[*i], rest, child_schema, value)
        }
        Segment::Name(_) | Segment::Key(_) => {
            let free_form = schema.is_some_and(|s| s.is_object() && !is_struct(s));
            // In a free-form map, the rest of the dotted name is one key.
            let (key, rest) = match first {
                Segment::Name(n) if free_form => {
                    let names = rest
                        .iter()
                        .take_while(|s| matches!(s, Segment::Name(_)))
                        .count();
                    let mut key = n.clone();
                    for s in &rest[..names] {
                        if let Segment::Name(more) = s {
                            key.push('.');
                            key.push_str(more);
                        }
                    }
                    (key, &rest[names..])
                }
                Segment::Name(n) | Segment::Key(n) => (n.clone(), rest),
                Segment::Index(_) => return Ok(()),
            };
            let child_schema = schema
                .filter(|s| is_struct(s))
                .and_then(|s| schema_child(s, &key))
                .map(|(_, v)| v);
            if !node.is_object() {
                *node = Value::Object(Map::new());
            }
            let Value::Object(map) = node else {
                return Ok(());
            };
            // Relaxed names of one level meet in one entry.
            let existing = map
                .keys()
                .find(|k| canonical(k) == canonical(&key) && child_schema.is_some())
                .cloned();
            let slot = map.entry(existing.unwrap_or(key)).or_insert(Value::Null);
            insert(slot, rest, child_schema, value)
        }
    }
}

/// Spring refuses a list whose indices skip one (`[0]` and `[2]`).
fn check_no_gaps(node: &Value, path: &mut String) -> Result<(), (String, String)> {
    match node {
        Value::Object(map) => {
            for (k, v) in map {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                check_no_gaps(v, path)?;
                path.truncate(len);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                if v.is_null() {
                    return Err((
                        format!("{path}[{i}]"),
                        format!(
                            "the list `{path}` has no element [{i}] (its indices must run from 0 without a gap)"
                        ),
                    ));
                }
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                check_no_gaps(v, path)?;
                path.truncate(len);
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        documents(text.as_bytes())
            .concat()
            .into_iter()
            .map(|p| (p.key, p.value))
            .collect()
    }

    #[test]
    fn java_syntax_as_spring_boot_reads_it() {
        let text = "# comment\n! also a comment\n  \na=1\nb : two words  \nc three\nd=x=y:z\n\
                    e=first \\\n    second\nf\\ g=h\ni=\\u00e9\\t\\\\\nj\n";
        assert_eq!(
            pairs(text),
            [
                ("a", "1"),
                ("b", "two words"),
                ("c", "three"),
                ("d", "x=y:z"),
                ("e", "first second"),
                ("f g", "h"),
                ("i", "é\t\\"),
                ("j", ""),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        // ISO-8859-1 bytes, as Spring Boot reads the file.
        assert_eq!(
            pairs("k=caf\u{e9}")[0].1,
            "cafÃ©",
            "UTF-8 bytes read as Latin-1"
        );
        let latin1 = documents(b"k=caf\xe9");
        assert_eq!(latin1[0][0].value, "café");
    }

    #[test]
    fn documents_are_separated_by_a_dashes_comment() {
        let docs = documents(b"a=1\n#---\nspring.config.activate.on-profile=dev\na=2\n!---\n");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1][1].line, 4);
    }

    #[test]
    fn indices_make_lists_and_brackets_keep_map_keys_whole() {
        let props = documents(
            b"routes[0].id=r\nroutes[0].predicates[0]=Path=/a/**\nroutes[0].predicates[1]=Method=GET\n\
              routes[1].id=s\nroutes[0].metadata[x.y]=1\nroutes[0].filters[0].args.regexp=/a/(?<s>.*)\n",
        )
        .concat();
        let tree = tree(&props, &json!({})).expect("a tree");
        assert_eq!(
            tree,
            json!({"routes": [
                {"id": "r", "predicates": ["Path=/a/**", "Method=GET"], "metadata": {"x.y": "1"},
                 "filters": [{"args": {"regexp": "/a/(?<s>.*)"}}]},
                {"id": "s"}
            ]})
        );
    }

    #[test]
    fn free_form_maps_keep_dotted_keys() {
        let schema = json!({"eureka": {"instance": {"metadata-map": {}, "port": 0}}});
        let props =
            documents(b"eureka.instance.metadata-map.zone.name=z1\neureka.instance.port=9\n")
                .concat();
        assert_eq!(
            tree(&props, &schema).expect("a tree"),
            json!({"eureka": {"instance": {"metadata-map": {"zone.name": "z1"}, "port": "9"}}})
        );
    }

    #[test]
    fn bad_keys_and_gaps_are_named() {
        let gap = documents(b"routes[0].id=a\nroutes[2].id=b\n").concat();
        let (key, reason) = tree(&gap, &json!({})).expect_err("a gap");
        assert_eq!(key, "routes[1]");
        assert!(reason.contains("without a gap"), "{reason}");
        for bad in ["a..b=1", "a[]=1", "a[99999999]=1"] {
            let props = documents(bad.as_bytes()).concat();
            let (key, _) = tree(&props, &json!({})).expect_err(bad);
            assert_eq!(key, bad.split('=').next().unwrap_or(""));
        }
    }
}
