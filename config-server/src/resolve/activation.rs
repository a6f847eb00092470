//! Which YAML documents apply to the active profiles.
//!
//! A document is activated by `spring.config.activate.on-profile` (Spring Boot
//! 2.4+) or the older `spring.profiles`. Both accept a comma-separated list
//! (or a YAML list) whose entries are profile expressions: `dev`, `!dev`,
//! `dev & mysql`, `dev | test`, with parentheses. The document applies when
//! any entry matches.

use serde_json::{Map, Value};

const ON_PROFILE: &str = "spring.config.activate.on-profile";
const LEGACY: &str = "spring.profiles";

/// The profile condition of a document, if it has one.
pub(crate) fn condition(doc: &Map<String, Value>) -> Option<Vec<String>> {
    for base in [ON_PROFILE, LEGACY] {
        if let Some(Value::String(s)) = doc.get(base) {
            return Some(s.split(',').map(|p| p.trim().to_string()).collect());
        }
        let listed: Vec<String> = (0..)
            .map_while(|i| doc.get(&format!("{base}[{i}]")))
            .filter_map(|v| v.as_str().map(|s| s.trim().to_string()))
            .collect();
        if !listed.is_empty() {
            return Some(listed);
        }
    }
    None
}

/// Whether a document with `condition` applies when `active` are on.
pub(crate) fn applies(condition: &[String], active: &[String]) -> bool {
    condition.iter().any(|expr| Expr::new(expr, active).eval())
}

/// A tiny recursive-descent evaluator over `!`, `&`, `|` and parentheses.
struct Expr<'a> {
    tokens: Vec<&'a str>,
    pos: usize,
    active: &'a [String],
}

impl<'a> Expr<'a> {
    fn new(text: &'a str, active: &'a [String]) -> Self {
        let mut tokens = Vec::new();
        let mut start = None;
        for (i, c) in text.char_indices() {
            if matches!(c, '!' | '&' | '|' | '(' | ')') || c.is_whitespace() {
                if let Some(s) = start.take() {
                    tokens.push(&text[s..i]);
                }
                if !c.is_whitespace() {
                    tokens.push(&text[i..i + 1]);
                }
            } else if start.is_none() {
                start = Some(i);
            }
        }
        if let Some(s) = start {
            tokens.push(&text[s..]);
        }
        Self {
            tokens,
            pos: 0,
            active,
        }
    }

    fn eval(&mut self) -> bool {
        self.or()
    }

    fn or(&mut self) -> bool {
        let mut v = self.and();
        while self.eat("|") {
            let rhs = self.and();
            v = v || rhs;
        }
        v
    }

    fn and(&mut self) -> bool {
        let mut v = self.unary();
        while self.eat("&") {
            let rhs = self.unary();
            v = v && rhs;
        }
        v
    }

    fn unary(&mut self) -> bool {
        if self.eat("!") {
            return !self.unary();
        }
        if self.eat("(") {
            let v = self.or();
            self.eat(")");
            return v;
        }
        match self.tokens.get(self.pos) {
            Some(name) => {
                self.pos += 1;
                self.active.iter().any(|a| a == name)
            }
            None => false,
        }
    }

    fn eat(&mut self, tok: &str) -> bool {
        if self.tokens.get(self.pos) == Some(&tok) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn active(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn reads_both_keys_and_lists() {
        let mut d = Map::new();
        d.insert(ON_PROFILE.into(), json!("dev, test"));
        assert_eq!(condition(&d), Some(vec!["dev".into(), "test".into()]));
        let mut d = Map::new();
        d.insert("spring.profiles[0]".into(), json!("a"));
        d.insert("spring.profiles[1]".into(), json!("b"));
        assert_eq!(condition(&d), Some(vec!["a".into(), "b".into()]));
        assert_eq!(condition(&Map::new()), None);
    }

    #[test]
    fn evaluates_expressions() {
        let on = active(&["dev", "mysql"]);
        assert!(applies(&["dev".into()], &on));
        assert!(!applies(&["prod".into()], &on));
        assert!(applies(&["!prod".into()], &on));
        assert!(!applies(&["!dev".into()], &on));
        assert!(applies(&["dev & mysql".into()], &on));
        assert!(!applies(&["dev & pg".into()], &on));
        assert!(applies(&["prod | mysql".into()], &on));
        assert!(applies(&["(prod | dev) & !pg".into()], &on));
        assert!(applies(&["prod".into(), "dev".into()], &on));
    }
}
