//! Several repositories, chosen per request by `application/profile`
//! patterns, as Spring's `spring.cloud.config.server.git.repos`.
//!
//! A pattern is `{application}/{profile}` with `*` wildcards; a pattern
//! without `/` means `<pattern>/*`. The first repository with a pattern that
//! matches any requested (application, profile) pair serves the request;
//! otherwise the default repository does.

use std::sync::Arc;

use crate::backend::Backend;

/// One repository and the requests it serves.
#[derive(Clone)]
pub struct Repository {
    /// A name for logs and health.
    pub name: String,
    /// `application/profile` patterns; empty for the default repository.
    pub patterns: Vec<String>,
    /// Where its files come from.
    pub backend: Arc<dyn Backend>,
    /// Its search paths (with `{application}`, `{profile}`, `{label}`).
    pub search_paths: Vec<String>,
}

impl std::fmt::Debug for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repository")
            .field("name", &self.name)
            .field("patterns", &self.patterns)
            .finish()
    }
}

impl Repository {
    /// A repository with no patterns (a default).
    pub fn new(
        name: impl Into<String>,
        backend: Arc<dyn Backend>,
        search_paths: Vec<String>,
    ) -> Self {
        Self {
            name: name.into(),
            patterns: Vec::new(),
            backend,
            search_paths,
        }
    }

    /// Whether this repository serves any of `apps` × `profiles`.
    pub fn matches(&self, apps: &[String], profiles: &[String]) -> bool {
        self.patterns.iter().any(|p| {
            let (app_pat, profile_pat) = p.split_once('/').unwrap_or((p.as_str(), "*"));
            apps.iter().any(|a| glob(app_pat, a))
                && (profiles.is_empty() || profiles.iter().any(|pr| glob(profile_pat, pr)))
        })
    }
}

/// The default repository and the pattern-matched ones, in order.
#[derive(Debug, Clone)]
pub struct Repositories {
    default: Repository,
    others: Vec<Repository>,
}

impl Repositories {
    /// `default` serves whatever no repository of `others` matches.
    pub fn new(default: Repository, others: Vec<Repository>) -> Self {
        Self { default, others }
    }

    /// The repository that serves `apps` and `profiles`.
    pub fn pick(&self, apps: &[String], profiles: &[String]) -> &Repository {
        self.others
            .iter()
            .find(|r| r.matches(apps, profiles))
            .unwrap_or(&self.default)
    }

    /// The default repository.
    pub fn default_repo(&self) -> &Repository {
        &self.default
    }

    /// Every repository, the default first.
    pub fn all(&self) -> impl Iterator<Item = &Repository> {
        std::iter::once(&self.default).chain(self.others.iter())
    }
}

/// `*` matches any run of characters (including none); everything else is
/// literal.
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::native::NativeBackend;

    fn backend() -> Arc<dyn Backend> {
        let dir = std::env::temp_dir();
        Arc::new(NativeBackend::new(vec![dir], "main").unwrap())
    }

    fn repo(name: &str, patterns: &[&str]) -> Repository {
        Repository {
            patterns: patterns.iter().map(|s| s.to_string()).collect(),
            ..Repository::new(name, backend(), vec![])
        }
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn globs() {
        assert!(glob("*", "anything"));
        assert!(glob("special*", "special-app"));
        assert!(glob("*special*", "my-special-app"));
        assert!(glob("a*b*c", "aXXbYYc"));
        assert!(!glob("a*b*c", "aXXc"));
        assert!(!glob("special*", "notspecial"));
        assert!(glob("exact", "exact"));
        assert!(!glob("ab*ba", "aba"));
    }

    #[test]
    fn first_matching_repository_wins_else_default() {
        let repos = Repositories::new(
            repo("default", &[]),
            vec![
                repo("special", &["special*/dev*", "*special*/dev*"]),
                repo("simple", &["simple"]),
                repo("local", &["local*"]),
            ],
        );
        let pick = |a: &[&str], p: &[&str]| repos.pick(&s(a), &s(p)).name.clone();
        assert_eq!(pick(&["special-app"], &["dev"]), "special");
        assert_eq!(pick(&["special-app"], &["prod"]), "default");
        assert_eq!(pick(&["my-special"], &["prod", "dev1"]), "special");
        assert_eq!(pick(&["simple"], &["anything"]), "simple");
        assert_eq!(pick(&["localfoo"], &["x"]), "local");
        assert_eq!(pick(&["other"], &["dev"]), "default");
        assert_eq!(repos.all().count(), 4);
    }
}
