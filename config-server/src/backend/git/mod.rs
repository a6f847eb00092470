//! Configuration read from a bare local mirror of a git repository.
//!
//! The mirror is cloned with `git clone --mirror` and refreshed with
//! `git fetch --prune` in the background, never on the request path. A label
//! (branch, tag or commit id) resolves to a commit through an in-memory ref
//! table swapped atomically after each fetch; files are read from that
//! commit's trees through a pool of `git cat-file --batch` readers. There is
//! no working tree, so any number of labels are served at once.
//!
//! When the remote is unreachable the last fetched commits keep being served
//! and health reports the failure; an existing mirror is reused at boot even
//! when the remote is down. With no mirror and an unreachable remote the
//! backend opens anyway, unless `clone_on_start` asks to fail fast (Spring's
//! `clone-on-start`): requests are answered as unavailable
//! ([`BackendError::Unavailable`]) and every refresh tries the clone again
//! until it succeeds. Symbolic links stored in the repository are never
//! followed.

mod catfile;
mod tree;

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use parking_lot::Mutex;

use super::{Backend, BackendError, BackendHealth, Snapshot, age_seconds, unix_now};
use crate::resolve::{FileSource, ReadError};
use catfile::CatFilePool;
use tree::{Entry, EntryKind};

/// How many cached tree listings are kept before the cache is cleared.
const TREE_CACHE_LIMIT: usize = 20_000;

/// Settings of a git backend.
#[derive(Clone)]
pub struct GitSettings {
    /// The remote: `file://` URL, local path or `https://` URL.
    pub uri: String,
    /// Where the bare mirror lives.
    pub mirror_dir: PathBuf,
    /// The label used when a request names none. `main` falls back to
    /// `master` when the repository has no `main`.
    pub default_label: String,
    /// Number of concurrent `cat-file` readers. Default is 4.
    pub readers: usize,
    /// Fail at open when the first clone fails (Spring's
    /// `clone-on-start`). Default is false: open anyway and retry.
    pub clone_on_start: bool,
    /// User name and password for an `https://` remote. Default is none.
    pub credentials: Option<(String, String)>,
}

impl GitSettings {
    /// Settings for `uri` with the mirror under the system temp directory.
    pub fn new(uri: impl Into<String>) -> Self {
        let uri = uri.into();
        let mirror_dir = default_mirror_dir(&uri);
        Self {
            uri,
            mirror_dir,
            default_label: "main".into(),
            readers: 4,
            clone_on_start: false,
            credentials: None,
        }
    }
}

impl std::fmt::Debug for GitSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitSettings")
            .field("uri", &redact(&self.uri))
            .field("mirror_dir", &self.mirror_dir)
            .field("default_label", &self.default_label)
            .field("readers", &self.readers)
            .finish()
    }
}

/// `text` with the userinfo of every URL in it removed:
/// `https://alice:secret@host/cfg.git` becomes `https://host/cfg.git`.
/// Applied to everything derived from the remote URI that leaves the
/// process (property source names, health, error messages, logs), so that
/// credentials in `git_uri` are never shown.
pub fn redact(text: &str) -> Cow<'_, str> {
    if !text.contains("://") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        out.push_str(&rest[..i + 3]);
        let after = &rest[i + 3..];
        let end = after
            .find(|c: char| c.is_whitespace() || matches!(c, '/' | '?' | '#' | '\'' | '"'))
            .unwrap_or(after.len());
        let authority = &after[..end];
        out.push_str(
            authority
                .rfind('@')
                .map_or(authority, |at| &authority[at + 1..]),
        );
        rest = &after[end..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// `<tmp>/config-server/<hash of uri>.git`.
pub fn default_mirror_dir(uri: &str) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    uri.hash(&mut h);
    std::env::temp_dir()
        .join("config-server")
        .join(format!("{:016x}.git", h.finish()))
}

#[derive(Debug, Default)]
struct Refs {
    branches: HashMap<String, String>,
    tags: HashMap<String, String>,
}

#[derive(Debug, Default)]
struct FetchState {
    last_success: Option<u64>,
    last_error: Option<String>,
}

struct Inner {
    settings: GitSettings,
    /// `settings.uri` without credentials, for everything shown.
    shown_uri: String,
    refs: ArcSwap<Refs>,
    readers: CatFilePool,
    trees: Mutex<HashMap<String, Arc<Vec<Entry>>>>,
    commits: Mutex<HashMap<String, String>>,
    fetch: Mutex<FetchState>,
    oid_len: AtomicU64,
    /// Whether the mirror exists (the first clone succeeded).
    cloned: AtomicBool,
    /// Held while cloning or fetching, so that two never overlap.
    remote_lock: Mutex<()>,
}

/// A git repository served from a bare local mirror.
#[derive(Clone)]
pub struct GitBackend {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for GitBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitBackend")
            .field("uri", &self.inner.shown_uri)
            .field("mirror", &self.inner.settings.mirror_dir)
            .finish()
    }
}

/// How long a clone or fetch may take before it is killed.
const NETWORK_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs git and returns its standard output. The command is killed when it
/// runs longer than `timeout`, so a hung remote cannot stall refreshes.
fn git_with_timeout(
    dir: Option<&Path>,
    args: &[&str],
    timeout: Duration,
    env: &[(String, String)],
) -> Result<String, BackendError> {
    let mut cmd = Command::new("git");
    if let Some(d) = dir {
        cmd.arg("-C").arg(d);
    }
    let mut child = cmd
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| BackendError::io("run git", e))?;
    let command = args
        .iter()
        .find(|a| !a.starts_with('-') && !a.contains('='))
        .copied()
        .unwrap_or("git")
        .to_string();
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let mut waited = Duration::ZERO;
    let mut step = Duration::from_millis(1);
    let status = loop {
        if let Some(status) = child
            .try_wait()
            .map_err(|e| BackendError::io("wait git", e))?
        {
            break status;
        }
        if waited >= timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Err(BackendError::Git {
                command,
                message: format!("timed out after {}s", timeout.as_secs()),
            });
        }
        std::thread::sleep(step);
        waited += step;
        step = (step * 2).min(Duration::from_millis(50));
    };
    let joined = |pipe: std::thread::JoinHandle<Vec<u8>>| {
        pipe.join().map_err(|_| BackendError::Git {
            command: command.clone(),
            message: "the thread reading its output panicked".into(),
        })
    };
    let stdout = joined(out)?;
    let stderr = joined(err)?;
    if status.success() {
        Ok(String::from_utf8_lossy(&stdout).into_owned())
    } else {
        Err(BackendError::Git {
            command,
            message: redact(String::from_utf8_lossy(&stderr).trim()).into_owned(),
        })
    }
}

/// Runs git with the default timeout.
fn git(dir: Option<&Path>, args: &[&str]) -> Result<String, BackendError> {
    git_with_timeout(dir, args, NETWORK_TIMEOUT, &[])
}

/// Environment that gives git the remote's credentials as an HTTP
/// `Authorization` header. Passed through the environment (git's
/// `GIT_CONFIG_*` variables), never on the command line where other users
/// could read it.
fn credential_env(credentials: Option<&(String, String)>) -> Vec<(String, String)> {
    use base64::Engine;
    let Some((user, password)) = credentials else {
        return Vec::new();
    };
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    vec![
        ("GIT_CONFIG_COUNT".into(), "1".into()),
        ("GIT_CONFIG_KEY_0".into(), "http.extraHeader".into()),
        (
            "GIT_CONFIG_VALUE_0".into(),
            format!("Authorization: Basic {token}"),
        ),
    ]
}

/// When a mirror left by an earlier run was last fetched or cloned (the
/// newest of `FETCH_HEAD` and `packed-refs`), in seconds since the Unix
/// epoch, so that health can tell how old the served commits are.
fn last_fetch_on_disk(mirror: &Path) -> Option<u64> {
    ["FETCH_HEAD", "packed-refs"]
        .iter()
        .filter_map(|f| std::fs::metadata(mirror.join(f)).ok()?.modified().ok())
        .filter_map(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
        .max()
}

impl GitBackend {
    /// Opens the mirror, cloning it when missing, fetching when present. A
    /// failed fetch of an existing mirror is logged and reported in health.
    /// A failed first clone is an error with `clone_on_start`; without it
    /// the backend opens unavailable and [`Backend::refresh`] retries the
    /// clone.
    pub fn open(settings: GitSettings) -> Result<Self, BackendError> {
        let dir = settings.mirror_dir.clone();
        let existing = dir.join("HEAD").is_file();
        let backend = Self {
            inner: Arc::new(Inner {
                readers: CatFilePool::new(dir.clone(), settings.readers),
                shown_uri: redact(&settings.uri).into_owned(),
                settings,
                refs: ArcSwap::from_pointee(Refs::default()),
                trees: Mutex::new(HashMap::new()),
                commits: Mutex::new(HashMap::new()),
                fetch: Mutex::new(FetchState::default()),
                oid_len: AtomicU64::new(20),
                cloned: AtomicBool::new(existing),
                remote_lock: Mutex::new(()),
            }),
        };
        if existing {
            backend.inner.fetch.lock().last_success = last_fetch_on_disk(&dir);
            backend.load_refs()?;
            if let Err(e) = backend.refresh() {
                tracing::warn!(error = %e, "remote unreachable at boot; serving the existing mirror");
            }
        } else if let Err(e) = backend.refresh() {
            if backend.inner.settings.clone_on_start {
                return Err(e);
            }
            tracing::warn!(
                uri = %backend.inner.settings.uri,
                error = %e,
                "first clone failed; answering 503 and retrying in the background"
            );
        }
        Ok(backend)
    }

    /// Whether the first clone has succeeded.
    pub fn is_cloned(&self) -> bool {
        self.inner.cloned.load(Ordering::Acquire)
    }

    /// Clones the mirror (the remote lock is held).
    fn clone_mirror(&self) -> Result<(), BackendError> {
        let settings = &self.inner.settings;
        let dir = &settings.mirror_dir;
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| BackendError::io(format!("create {}", parent.display()), e))?;
        }
        let dir_text = dir.to_string_lossy().into_owned();
        git_with_timeout(
            None,
            &["clone", "--mirror", "--quiet", &settings.uri, &dir_text],
            NETWORK_TIMEOUT,
            &credential_env(settings.credentials.as_ref()),
        )?;
        self.load_refs()?;
        self.inner.cloned.store(true, Ordering::Release);
        tracing::info!(uri = %settings.uri, mirror = %dir.display(), "cloned the repository");
        Ok(())
    }

    /// Fetches into the existing mirror (the remote lock is held); returns
    /// whether branches or tags moved.
    fn fetch(&self) -> Result<bool, BackendError> {
        git_with_timeout(
            Some(&self.inner.settings.mirror_dir),
            &[
                "-c",
                "http.lowSpeedLimit=1000",
                "-c",
                "http.lowSpeedTime=30",
                "fetch",
                "--prune",
                "--quiet",
                "origin",
            ],
            NETWORK_TIMEOUT,
            &credential_env(self.inner.settings.credentials.as_ref()),
        )?;
        self.load_refs()
    }

    /// The mirror's directory.
    pub fn mirror_dir(&self) -> &Path {
        &self.inner.settings.mirror_dir
    }

    /// Re-reads branches and tags; returns whether they changed.
    fn load_refs(&self) -> Result<bool, BackendError> {
        let out = git(
            Some(&self.inner.settings.mirror_dir),
            &[
                "for-each-ref",
                "--format=%(refname) %(objectname) %(*objectname)",
                "refs/heads",
                "refs/tags",
            ],
        )?;
        let mut refs = Refs::default();
        for line in out.lines() {
            let mut p = line.split(' ');
            let (Some(name), Some(oid)) = (p.next(), p.next()) else {
                continue;
            };
            let peeled = p.next().filter(|s| !s.is_empty()).unwrap_or(oid);
            self.inner
                .oid_len
                .store((oid.len() / 2) as u64, Ordering::Relaxed);
            if let Some(b) = name.strip_prefix("refs/heads/") {
                refs.branches.insert(b.to_string(), peeled.to_string());
            } else if let Some(t) = name.strip_prefix("refs/tags/") {
                refs.tags.insert(t.to_string(), peeled.to_string());
            }
        }
        let old = self.inner.refs.load();
        let changed = old.branches != refs.branches || old.tags != refs.tags;
        self.inner.refs.store(Arc::new(refs));
        Ok(changed)
    }

    /// The commit a label names.
    fn resolve_label(&self, label: &str) -> Result<String, BackendError> {
        let refs = self.inner.refs.load();
        if let Some(c) = refs.branches.get(label).or_else(|| refs.tags.get(label)) {
            return Ok(c.clone());
        }
        let is_hex =
            (4..=64).contains(&label.len()) && label.bytes().all(|b| b.is_ascii_hexdigit());
        if !is_hex {
            return Err(BackendError::NoSuchLabel(label.to_string()));
        }
        if let Some(c) = self.inner.commits.lock().get(label) {
            return Ok(c.clone());
        }
        match self.inner.readers.get(&format!("{label}^{{commit}}"))? {
            Some(obj) if obj.kind == "commit" => {
                let mut commits = self.inner.commits.lock();
                if commits.len() >= TREE_CACHE_LIMIT {
                    commits.clear();
                }
                commits.insert(label.to_string(), obj.oid.clone());
                Ok(obj.oid)
            }
            _ => Err(BackendError::NoSuchLabel(label.to_string())),
        }
    }
}

impl Inner {
    fn tree(&self, spec: &str) -> Result<Option<Arc<Vec<Entry>>>, BackendError> {
        if let Some(t) = self.trees.lock().get(spec) {
            return Ok(Some(t.clone()));
        }
        let Some(obj) = self.readers.get(spec)? else {
            return Ok(None);
        };
        if obj.kind != "tree" {
            return Ok(None);
        }
        let oid_len = self.oid_len.load(Ordering::Relaxed) as usize;
        let entries = Arc::new(tree::parse(&obj.data, oid_len));
        let mut trees = self.trees.lock();
        if trees.len() > TREE_CACHE_LIMIT {
            trees.clear();
        }
        trees.insert(spec.to_string(), entries.clone());
        Ok(Some(entries))
    }

    /// Reads `path` at `commit`, walking trees; symlinks are refused.
    fn read(&self, commit: &str, path: &str) -> Result<Option<Vec<u8>>, BackendError> {
        let parts: Vec<&str> = path.split('/').collect();
        if parts
            .iter()
            .any(|p| p.is_empty() || *p == "." || *p == "..")
        {
            return Ok(None);
        }
        let Some(mut tree) = self.tree(&format!("{commit}^{{tree}}"))? else {
            return Ok(None);
        };
        for (i, part) in parts.iter().enumerate() {
            let Some(entry) = tree.iter().find(|e| e.name == *part).cloned() else {
                return Ok(None);
            };
            let last = i + 1 == parts.len();
            match (entry.kind, last) {
                (EntryKind::Tree, false) => match self.tree(&entry.oid)? {
                    Some(t) => tree = t,
                    None => return Ok(None),
                },
                (EntryKind::File, true) => {
                    return Ok(self.readers.get(&entry.oid)?.map(|o| o.data));
                }
                (EntryKind::Symlink, _) => {
                    tracing::warn!(%path, "not following a symlink stored in the repository");
                    return Ok(None);
                }
                _ => return Ok(None),
            }
        }
        Ok(None)
    }
}

impl Backend for GitBackend {
    fn snapshot(&self, label: Option<&str>) -> Result<Arc<dyn Snapshot>, BackendError> {
        if !self.is_cloned() {
            let reason = self.inner.fetch.lock().last_error.clone();
            return Err(BackendError::Unavailable {
                repository: self.inner.settings.uri.clone(),
                reason: reason.unwrap_or_else(|| "the first clone has not finished".into()),
            });
        }
        let commit = self.resolve_label(label.unwrap_or_else(|| self.default_label()))?;
        Ok(Arc::new(GitSnapshot {
            inner: self.inner.clone(),
            commit,
        }))
    }

    /// Fetches; before the first clone has succeeded, tries the clone
    /// (and reports a change when it succeeds).
    fn refresh(&self) -> Result<bool, BackendError> {
        let result = {
            let _remote = self.inner.remote_lock.lock();
            if self.is_cloned() {
                self.fetch()
            } else {
                self.clone_mirror().map(|()| true)
            }
        };
        let mut state = self.inner.fetch.lock();
        match result {
            Ok(changed) => {
                state.last_success = Some(unix_now());
                state.last_error = None;
                Ok(changed)
            }
            Err(e) => {
                state.last_error = Some(e.to_string());
                Err(e)
            }
        }
    }

    fn health(&self) -> BackendHealth {
        let serving = self.is_cloned();
        let last_good_commit = serving
            .then(|| self.resolve_label(self.default_label()).ok())
            .flatten();
        let state = self.inner.fetch.lock();
        BackendHealth {
            status: if serving && state.last_error.is_none() {
                "UP"
            } else {
                "DOWN"
            },
            repository: self.inner.shown_uri.clone(),
            last_successful_refresh: state.last_success,
            last_successful_refresh_age_seconds: age_seconds(state.last_success),
            last_good_commit,
            last_error: state.last_error.clone(),
            serving,
        }
    }

    fn describe(&self) -> String {
        format!("git {}", self.inner.settings.uri)
    }

    /// The configured default label; `main` falls back to `master` when the
    /// repository has a `master` and no `main` (then answered as the label,
    /// as Spring's JGit repository does once it has fallen back).
    fn default_label(&self) -> &str {
        let default = self.inner.settings.default_label.as_str();
        if default == "main" {
            let refs = self.inner.refs.load();
            let has = |l: &str| refs.branches.contains_key(l) || refs.tags.contains_key(l);
            if !has("main") && has("master") {
                return "master";
            }
        }
        default
    }
}

struct GitSnapshot {
    inner: Arc<Inner>,
    commit: String,
}

impl FileSource for GitSnapshot {
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, ReadError> {
        self.inner
            .read(&self.commit, path)
            .map_err(|e| ReadError::new(path, e))
    }

    fn source_name(&self, path: &str) -> String {
        format!("{}/{path}", self.inner.shown_uri.trim_end_matches('/'))
    }
}

impl Snapshot for GitSnapshot {
    fn version(&self) -> Option<&str> {
        Some(&self.commit)
    }

    fn cache_version(&self) -> &str {
        &self.commit
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redact_removes_userinfo_from_every_url() {
        assert_eq!(
            redact("https://alice:TOPSECRET@host/cfg.git"),
            "https://host/cfg.git"
        );
        assert_eq!(
            redact("https://token@host:8443/a?x=1"),
            "https://host:8443/a?x=1"
        );
        assert_eq!(redact("file:///tmp/repo"), "file:///tmp/repo");
        assert_eq!(redact("/plain/path"), "/plain/path");
        assert_eq!(
            redact("fatal: unable to access 'https://alice:p@ss@host/cfg.git/': 403"),
            "fatal: unable to access 'https://host/cfg.git/': 403"
        );
        assert_eq!(
            redact("a http://u:p@h b https://v:q@i/x"),
            "a http://h b https://i/x"
        );
        let debug = format!(
            "{:?}",
            super::GitSettings::new("https://alice:TOPSECRET@h/r.git")
        );
        assert!(
            debug.contains("https://h/r.git") && !debug.contains("TOPSECRET"),
            "{debug}"
        );
    }
}
