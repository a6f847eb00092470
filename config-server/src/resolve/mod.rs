//! Which files apply to a request, in which order, and what they hold.
//!
//! For application `foo` and profiles `dev,mysql` the property sources are,
//! highest priority first: `foo-mysql`, `application-mysql`, `foo-dev`,
//! `application-dev`, `foo`, `application`. The last profile wins and the
//! application's own file beats the shared `application` file. Each name is
//! looked up with the extensions `.properties`, `.yml`, `.yaml` (in that
//! order, as Spring Boot ranks `.properties` above YAML in one location) in
//! every search directory (later search paths first, the repository root
//! last). Within a multi-document file (YAML `---`, `.properties` `#---`)
//! later documents win, and a document with
//! `spring.config.activate.on-profile` (or `spring.profiles`) only counts
//! when its profile expression matches. Profile groups
//! (`spring.profiles.group.*`) expand the requested profiles first
//! ([`active_profiles`]).
//!
//! Everything here is pure: files are read through [`FileSource`].

mod activation;
pub mod placeholder;
pub(crate) mod yaml;

use cloud_protocol::config::PropertySource;
use cloud_runtime::properties;
use serde_json::{Map, Value};

/// The extensions looked up for each candidate name, highest priority first.
pub const EXTENSIONS: [&str; 3] = ["properties", "yml", "yaml"];

/// The shared application name whose files apply to every application.
pub const SHARED_APPLICATION: &str = "application";

/// A file that exists but could not be read (the store failed, not the
/// file's content).
#[derive(Debug, thiserror::Error)]
#[error("cannot read {path}: {source}")]
pub struct ReadError {
    path: String,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl ReadError {
    /// `path` could not be read because of `source`.
    pub fn new(
        path: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self {
            path: path.into(),
            source: source.into(),
        }
    }

    /// The path that could not be read.
    pub fn path(&self) -> &str {
        &self.path
    }
}

/// Read access to the files of one version of a configuration repository.
pub trait FileSource {
    /// The bytes of the file at `path` (relative, `/`-separated), or `None`
    /// when there is no such regular file.
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, ReadError>;
    /// The property source name Spring would show for `path`.
    fn source_name(&self, path: &str) -> String;

    /// Every copy of `path` with its source name, highest priority first.
    /// One store has at most one; a set of directories may have several.
    fn read_all(&self, path: &str) -> Result<Vec<(String, Vec<u8>)>, ReadError> {
        Ok(self
            .read(path)?
            .map(|bytes| (self.source_name(path), bytes))
            .into_iter()
            .collect())
    }
}

/// A file that could not be turned into property sources.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The store failed to read a file.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// A file is not valid YAML or not UTF-8.
    #[error("{path}: {reason}")]
    Parse {
        /// The file's path in the repository.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// File base names (no extension) that apply to `apps` and `profiles`,
/// highest priority first.
pub fn candidate_names(apps: &[String], profiles: &[String]) -> Vec<String> {
    let mut names: Vec<&str> = apps.iter().rev().map(String::as_str).collect();
    names.retain(|n| *n != SHARED_APPLICATION);
    names.push(SHARED_APPLICATION);
    let mut out = Vec::new();
    for profile in dedup_keep_last(profiles).iter().rev() {
        for name in &names {
            out.push(format!("{name}-{profile}"));
        }
    }
    out.extend(names.iter().map(|n| n.to_string()));
    out
}

/// Profiles without repeats, keeping each one's last position (which is the
/// one that decides its priority).
fn dedup_keep_last(profiles: &[String]) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for p in profiles {
        out.retain(|q| *q != p);
        out.push(p);
    }
    out
}

/// Expands search path patterns (`{application}`, `{profile}`, `{label}`)
/// into directories to look in, highest priority first; the root (`""`) is
/// always searched, last.
pub fn search_dirs(
    patterns: &[String],
    apps: &[String],
    profiles: &[String],
    label: &str,
) -> Vec<String> {
    let mut dirs: Vec<String> = Vec::new();
    for pattern in patterns.iter().rev() {
        let app_values: Vec<&str> = if pattern.contains("{application}") {
            apps.iter().rev().map(String::as_str).collect()
        } else {
            vec![""]
        };
        let profile_values: Vec<&str> = if pattern.contains("{profile}") {
            profiles.iter().rev().map(String::as_str).collect()
        } else {
            vec![""]
        };
        for app in &app_values {
            for profile in &profile_values {
                let dir = pattern
                    .replace("{application}", app)
                    .replace("{profile}", profile)
                    .replace("{label}", label);
                let dir = dir.trim_matches('/').to_string();
                if !dirs.contains(&dir) {
                    dirs.push(dir);
                }
            }
        }
    }
    dirs.retain(|d| !d.is_empty());
    dirs.push(String::new());
    dirs
}

/// Joins a search directory and a file name.
pub fn join(dir: &str, file: &str) -> String {
    if dir.is_empty() {
        file.to_string()
    } else {
        format!("{dir}/{file}")
    }
}

/// The property sources for `apps` and `profiles`, highest priority first.
pub fn property_sources(
    files: &dyn FileSource,
    dirs: &[String],
    apps: &[String],
    profiles: &[String],
) -> Result<Vec<PropertySource>, ResolveError> {
    let mut out = Vec::new();
    each_file(
        files,
        dirs,
        &candidate_names(apps, profiles),
        |source_name, path, ext, text| {
            sources_of_file(source_name, path, ext, text, profiles, &mut out)
        },
    )?;
    Ok(out)
}

/// Calls `visit(source name, path, extension, text)` for every copy of
/// every file `names` stand for, highest priority first.
fn each_file(
    files: &dyn FileSource,
    dirs: &[String],
    names: &[String],
    mut visit: impl FnMut(&str, &str, &str, &str) -> Result<(), ResolveError>,
) -> Result<(), ResolveError> {
    for name in names {
        for dir in dirs {
            for ext in EXTENSIONS {
                let path = join(dir, &format!("{name}.{ext}"));
                for (source_name, bytes) in files.read_all(&path)? {
                    let text = String::from_utf8(bytes).map_err(|_| ResolveError::Parse {
                        path: path.clone(),
                        reason: "not UTF-8".into(),
                    })?;
                    visit(&source_name, &path, ext, &text)?;
                }
            }
        }
    }
    Ok(())
}

fn sources_of_file(
    source_name: &str,
    path: &str,
    ext: &str,
    text: &str,
    profiles: &[String],
    out: &mut Vec<PropertySource>,
) -> Result<(), ResolveError> {
    let docs = documents_of_file(path, ext, text)?;
    let several = docs.len() > 1;
    let mut picked: Vec<(usize, Map<String, Value>)> = docs
        .into_iter()
        .enumerate()
        .filter(|(_, d)| !d.is_empty())
        .filter(|(_, d)| activation::condition(d).is_none_or(|c| activation::applies(&c, profiles)))
        .collect();
    picked.reverse();
    for (i, doc) in picked {
        let source_name = if several {
            format!("{source_name} (document #{i})")
        } else {
            source_name.to_string()
        };
        out.push(PropertySource::new(source_name, doc));
    }
    Ok(())
}

/// The documents of a `.properties` or YAML file, in file order.
fn documents_of_file(
    path: &str,
    ext: &str,
    text: &str,
) -> Result<Vec<Map<String, Value>>, ResolveError> {
    if ext == "properties" {
        return Ok(properties::parse_documents(text));
    }
    yaml::parse_documents(text).map_err(|e| ResolveError::Parse {
        path: path.to_string(),
        reason: e.to_string(),
    })
}

/// The key prefix of profile groups.
const GROUP_PREFIX: &str = "spring.profiles.group.";

/// The profiles a request for `profiles` turns on, as Spring Boot expands
/// profile groups: each profile followed by the members of its group
/// (`spring.profiles.group.<name>: a,b`, or a list), recursively, repeats
/// dropped. Groups are read from the documents that apply without any
/// profile (the files of `apps` and `application` without a profile
/// suffix, documents without `on-profile`); the highest-priority definition
/// of a group wins.
pub fn active_profiles(
    files: &dyn FileSource,
    dirs: &[String],
    apps: &[String],
    profiles: &[String],
) -> Result<Vec<String>, ResolveError> {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    each_file(
        files,
        dirs,
        &candidate_names(apps, &[]),
        |_, path, ext, text| {
            // Later documents win within a file.
            for doc in documents_of_file(path, ext, text)?.iter().rev() {
                if activation::condition(doc).is_none() {
                    add_groups(doc, &mut groups);
                }
            }
            Ok(())
        },
    )?;
    Ok(expand_groups(profiles, &groups))
}

/// Adds the groups `doc` defines that are not defined yet.
fn add_groups(doc: &Map<String, Value>, groups: &mut Vec<(String, Vec<String>)>) {
    let mut found: Vec<(String, Vec<String>)> = Vec::new();
    for (key, value) in doc {
        let Some(rest) = key.strip_prefix(GROUP_PREFIX) else {
            continue;
        };
        let (group, listed) = match rest.split_once('[') {
            Some((group, _)) => (group, true),
            None => (rest, false),
        };
        let members: Vec<String> = match value {
            Value::String(s) if !listed => s
                .split(',')
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .map(str::to_string)
                .collect(),
            Value::Null => Vec::new(),
            other => vec![
                other
                    .as_str()
                    .map_or_else(|| other.to_string(), str::to_string),
            ],
        };
        match found.iter_mut().find(|(g, _)| g == group) {
            Some((_, all)) if listed => all.extend(members),
            Some((_, all)) => *all = members,
            None => found.push((group.to_string(), members)),
        }
    }
    for (group, members) in found {
        if !groups.iter().any(|(g, _)| *g == group) {
            groups.push((group, members));
        }
    }
}

/// Spring Boot's `Profiles.expandProfiles`: depth first, each profile
/// before its group's members, the first occurrence kept.
fn expand_groups(profiles: &[String], groups: &[(String, Vec<String>)]) -> Vec<String> {
    let mut stack: Vec<&str> = profiles.iter().rev().map(String::as_str).collect();
    let mut out: Vec<String> = Vec::new();
    while let Some(current) = stack.pop() {
        if out.iter().any(|p| p == current) {
            continue;
        }
        out.push(current.to_string());
        if let Some((_, members)) = groups.iter().find(|(g, _)| g == current) {
            stack.extend(members.iter().rev().map(String::as_str));
        }
    }
    out
}

/// Candidate paths for a plain-text file request, highest priority first:
/// for `nginx.conf` and profile `dev`, `nginx-dev.conf` then `nginx.conf`,
/// in every search directory.
pub fn plain_text_candidates(path: &str, profiles: &[String], dirs: &[String]) -> Vec<String> {
    let (dir_part, file) = match path.rsplit_once('/') {
        Some((d, f)) => (Some(d), f),
        None => (None, path),
    };
    let (stem, ext) = match file.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() => (s, Some(e)),
        _ => (file, None),
    };
    let mut names = Vec::new();
    for profile in dedup_keep_last(profiles).iter().rev() {
        let n = match ext {
            Some(e) => format!("{stem}-{profile}.{e}"),
            None => format!("{stem}-{profile}"),
        };
        names.push(n);
    }
    names.push(file.to_string());
    let mut out = Vec::new();
    for name in names {
        let rel = match dir_part {
            Some(d) => format!("{d}/{name}"),
            None => name,
        };
        for dir in dirs {
            out.push(join(dir, &rel));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashMap;

    struct Files(HashMap<String, String>);

    impl FileSource for Files {
        fn read(&self, path: &str) -> Result<Option<Vec<u8>>, ReadError> {
            Ok(self.0.get(path).map(|s| s.clone().into_bytes()))
        }
        fn source_name(&self, path: &str) -> String {
            format!("test:{path}")
        }
    }

    fn files(pairs: &[(&str, &str)]) -> Files {
        Files(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn last_profile_wins_and_own_file_beats_application() {
        let names = candidate_names(&strings(&["foo"]), &strings(&["dev", "mysql"]));
        assert_eq!(
            names,
            [
                "foo-mysql",
                "application-mysql",
                "foo-dev",
                "application-dev",
                "foo",
                "application"
            ]
        );
    }

    #[test]
    fn the_shared_application_is_not_listed_twice() {
        let names = candidate_names(&strings(&["application"]), &strings(&["dev"]));
        assert_eq!(names, ["application-dev", "application"]);
    }

    #[test]
    fn sources_come_highest_priority_first_with_properties_before_yaml() {
        let f = files(&[
            ("application.yml", "a: 1\n"),
            ("foo.yml", "a: 2\n"),
            ("foo.properties", "a=3\n"),
            ("foo-dev.yaml", "a: 4\n"),
            ("bar.yml", "a: 5\n"),
        ]);
        let srcs =
            property_sources(&f, &[String::new()], &strings(&["foo"]), &strings(&["dev"])).unwrap();
        let names: Vec<_> = srcs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "test:foo-dev.yaml",
                "test:foo.properties",
                "test:foo.yml",
                "test:application.yml"
            ]
        );
        assert_eq!(srcs[1].source["a"], json!("3"));
        assert_eq!(srcs[2].source["a"], json!(2));
    }

    #[test]
    fn profile_documents_apply_only_when_active_and_later_documents_win() {
        let text = "a: base\n---\nspring:\n  config:\n    activate:\n      on-profile: dev\na: dev\n---\nspring:\n  profiles: prod\na: prod\n";
        let f = files(&[("foo.yml", text)]);
        let srcs =
            property_sources(&f, &[String::new()], &strings(&["foo"]), &strings(&["dev"])).unwrap();
        let names: Vec<_> = srcs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            ["test:foo.yml (document #1)", "test:foo.yml (document #0)"]
        );
        assert_eq!(srcs[0].source["a"], json!("dev"));
    }

    #[test]
    fn search_paths_expand_placeholders_and_rank_above_the_root() {
        let dirs = search_dirs(
            &strings(&["shared", "{application}/{profile}"]),
            &strings(&["foo"]),
            &strings(&["dev"]),
            "main",
        );
        assert_eq!(dirs, ["foo/dev", "shared", ""]);
        let f = files(&[("foo.yml", "a: root\n"), ("foo/dev/foo.yml", "a: nested\n")]);
        let srcs = property_sources(&f, &dirs, &strings(&["foo"]), &strings(&["dev"])).unwrap();
        assert_eq!(srcs[0].source["a"], json!("nested"));
        assert_eq!(srcs[1].source["a"], json!("root"));
    }

    #[test]
    fn invalid_yaml_names_the_file() {
        let f = files(&[("foo.yml", "a: [1\n")]);
        let err = property_sources(&f, &[String::new()], &strings(&["foo"]), &strings(&["dev"]))
            .unwrap_err();
        assert!(err.to_string().starts_with("foo.yml:"), "{err}");
    }

    #[test]
    fn properties_documents_activate_by_profile_like_yaml() {
        let text = "a=base\n#---\nspring.config.activate.on-profile=dev\na=dev\n";
        let f = files(&[("foo.properties", text)]);
        let of_foo = |profile: &str| {
            property_sources(
                &f,
                &[String::new()],
                &strings(&["foo"]),
                &strings(&[profile]),
            )
            .unwrap()
            .into_iter()
            .map(|s| (s.name, s.source["a"].clone()))
            .collect::<Vec<_>>()
        };
        assert_eq!(
            of_foo("qa"),
            [(
                "test:foo.properties (document #0)".to_string(),
                json!("base")
            )]
        );
        assert_eq!(
            of_foo("dev"),
            [
                (
                    "test:foo.properties (document #1)".to_string(),
                    json!("dev")
                ),
                (
                    "test:foo.properties (document #0)".to_string(),
                    json!("base")
                )
            ]
        );
    }

    #[test]
    fn profile_groups_expand_depth_first_from_unconditional_documents() {
        let f = files(&[
            (
                "application.yml",
                "spring:\n  profiles:\n    group:\n      bundle: dev,docs\n      dev: [db, cache]\n      loop: loop\n",
            ),
            (
                "foo.properties",
                "spring.profiles.group.other=x\n#---\nspring.config.activate.on-profile=bundle\nspring.profiles.group.docs=never\n",
            ),
        ]);
        let dirs = [String::new()];
        let apps = strings(&["foo"]);
        let active = |p: &[&str]| active_profiles(&f, &dirs, &apps, &strings(p)).unwrap();
        assert_eq!(
            active(&["bundle"]),
            ["bundle", "dev", "db", "cache", "docs"]
        );
        assert_eq!(active(&["qa", "other"]), ["qa", "other", "x"]);
        assert_eq!(active(&["loop", "loop"]), ["loop"]);
        assert_eq!(
            active(&["docs"]),
            ["docs"],
            "groups under on-profile do not count"
        );
    }

    #[test]
    fn the_own_file_defines_a_group_before_application() {
        let f = files(&[
            ("application.yml", "spring.profiles.group.g: a\n"),
            ("foo.yml", "spring.profiles.group.g: b\n"),
        ]);
        let active =
            active_profiles(&f, &[String::new()], &strings(&["foo"]), &strings(&["g"])).unwrap();
        assert_eq!(active, ["g", "b"]);
    }

    #[test]
    fn plain_text_prefers_the_profile_variant() {
        let c = plain_text_candidates("conf/nginx.conf", &strings(&["dev"]), &[String::new()]);
        assert_eq!(c, ["conf/nginx-dev.conf", "conf/nginx.conf"]);
    }
}
