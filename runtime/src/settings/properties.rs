//! `.properties` settings files: read as Spring Boot reads them
//! ([`crate::properties`] on ISO-8859-1 bytes), and their keys, with list
//! indices and bracketed map keys
//! (`spring.cloud.gateway.routes[0].predicates[1]=Path=/x`,
//! `metadata[a.b]=1`), turned into the same tree a YAML file gives.

use serde_json::{Map, Value};

use super::{canonical, is_struct, schema_child};

/// The documents of a `.properties` file's `bytes` (ISO-8859-1, as Spring
/// Boot reads them), each its keys and values in order.
pub(super) fn documents(bytes: &[u8]) -> Vec<Map<String, Value>> {
    let text: String = bytes.iter().map(|&b| char::from(b)).collect();
    crate::properties::parse_documents(&text)
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
pub(super) fn tree(
    properties: &Map<String, Value>,
    schema: &Value,
) -> Result<Value, (String, String)> {
    let mut root = Value::Object(Map::new());
    for (key, value) in properties {
        let segs = segments(key).map_err(|r| (key.clone(), format!("the key {r}")))?;
        insert(&mut root, &segs, Some(schema), value.clone()).map_err(|r| (key.clone(), r))?;
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

    #[test]
    fn bytes_are_iso_8859_1_and_documents_split_as_spring_boot_splits_them() {
        let docs =
            documents(b"k=caf\xe9\n#---\nspring.config.activate.on-profile=dev\nk=2\n!---\n");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0]["k"], "café");
        assert_eq!(docs[1]["k"], "2");
    }

    #[test]
    fn indices_make_lists_and_brackets_keep_map_keys_whole() {
        let props = &documents(
            b"routes[0].id=r\nroutes[0].predicates[0]=Path=/a/**\nroutes[0].predicates[1]=Method=GET\n\
              routes[1].id=s\nroutes[0].metadata[x.y]=1\nroutes[0].filters[0].args.regexp=/a/(?<s>.*)\n",
        )[0];
        let tree = tree(props, &json!({})).expect("a tree");
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
            &documents(b"eureka.instance.metadata-map.zone.name=z1\neureka.instance.port=9\n")[0];
        assert_eq!(
            tree(props, &schema).expect("a tree"),
            json!({"eureka": {"instance": {"metadata-map": {"zone.name": "z1"}, "port": "9"}}})
        );
    }

    #[test]
    fn bad_keys_and_gaps_are_named() {
        let gap = &documents(b"routes[0].id=a\nroutes[2].id=b\n")[0];
        let (key, reason) = tree(gap, &json!({})).expect_err("a gap");
        assert_eq!(key, "routes[1]");
        assert!(reason.contains("without a gap"), "{reason}");
        for bad in ["a..b=1", "a[]=1", "a[99999999]=1"] {
            let props = &documents(bad.as_bytes())[0];
            let (key, _) = tree(props, &json!({})).expect_err(bad);
            assert_eq!(key, bad.split('=').next().unwrap_or(""));
        }
    }
}
