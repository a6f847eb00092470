//! Resolved environments, cached per (application, profiles, label, commit).
//!
//! A request is answered from the cache while the backend's generation has
//! not moved: one map lookup, then the pre-serialized JSON bytes are written.
//! After a refresh that changed something the generation moves; the next
//! request for a key checks the commit its label now names and either
//! re-stamps the entry (same commit) or resolves it again. Resolution (git
//! reads, YAML parsing, decryption) runs on the blocking pool.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use cloud_protocol::config::Environment;
use parking_lot::RwLock;
use tokio::sync::watch;

use crate::backend::{BackendError, Snapshot};
use crate::crypto::{TextEncryptor, decrypt_environment};
use crate::limits::{LimitExceeded, LimitReason, Limits};
use crate::metrics::Metrics;
use crate::repos::{Repositories, Repository};
use crate::resolve::{self, ResolveError};

/// Entries kept before the cache is cleared wholesale.
const CACHE_LIMIT: usize = 10_000;

/// What a client asked for, already validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvRequest {
    /// The application name(s), comma-separated as requested.
    pub name: String,
    /// The profiles, comma-separated as requested.
    pub profiles: String,
    /// The label (`(_)` already turned into `/`), or `None` for the default.
    pub label: Option<String>,
}

impl EnvRequest {
    /// A request for `name` and `profiles` at `label`.
    pub fn new(name: &str, profiles: &str, label: Option<&str>) -> Self {
        Self {
            name: name.to_string(),
            profiles: profiles.to_string(),
            label: label.map(str::to_string),
        }
    }

    fn apps(&self) -> Vec<String> {
        split_list(&self.name)
    }

    fn profile_list(&self) -> Vec<String> {
        split_list(&self.profiles)
    }

    /// Checks the list lengths against `limits` without splitting.
    fn check_lists(&self, limits: &Limits) -> Result<(), LimitExceeded> {
        let count = |s: &str| s.split(',').filter(|p| !p.trim().is_empty()).count();
        if count(&self.name) > limits.applications {
            return Err(LimitExceeded::new(
                LimitReason::Applications,
                "max_applications_per_request",
                limits.applications,
            ));
        }
        if count(&self.profiles) > limits.profiles {
            return Err(LimitExceeded::new(
                LimitReason::Profiles,
                "max_profiles_per_request",
                limits.profiles,
            ));
        }
        Ok(())
    }

    fn cache_key(&self) -> String {
        format!(
            "{}\u{0}{}\u{0}{}",
            self.name,
            self.profiles,
            self.label.as_deref().unwrap_or("")
        )
    }
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

/// A resolved environment and its serialized forms.
#[derive(Debug)]
pub struct Resolved {
    /// The environment (values decrypted).
    pub env: Environment,
    /// `env` as JSON, ready to write.
    pub json: Bytes,
    /// A digest of the property sources: changes when any value changes.
    pub digest: String,
    cache_version: String,
}

struct CacheEntry {
    generation: u64,
    resolved: Arc<Resolved>,
}

/// Why an environment could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    /// The backend failed or the label is unknown.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// A file could not be parsed.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// The request goes over a limit.
    #[error(transparent)]
    Limit(#[from] LimitExceeded),
    /// The blocking task failed.
    #[error("resolution task failed: {0}")]
    Task(#[source] tokio::task::JoinError),
    /// The environment could not be serialized.
    #[error("serialize the environment: {0}")]
    Serialize(#[source] serde_json::Error),
}

impl EnvError {
    /// Whether the request named a label that does not exist (a client
    /// error, answered 404).
    pub fn is_no_such_label(&self) -> bool {
        matches!(self, Self::Backend(b) if b.is_no_such_label())
    }

    /// Whether the repository has nothing to serve yet (answered 503 until
    /// its first clone succeeds).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Backend(b) if b.is_unavailable())
    }
}

/// Refuses a request that would look up more than `limits` allows.
fn check_lookups(lookups: usize, limits: &Limits) -> Result<(), LimitExceeded> {
    if lookups > limits.file_lookups {
        return Err(LimitExceeded::new(
            LimitReason::FileLookups,
            "max_file_lookups_per_request",
            limits.file_lookups,
        ));
    }
    Ok(())
}

/// The environment service: repositories, key, cache and the generation
/// counter that watchers follow.
pub struct Environments {
    repos: Repositories,
    encryptor: Option<TextEncryptor>,
    cache: RwLock<HashMap<String, CacheEntry>>,
    /// The same entries keyed by the raw request path, so that a repeat
    /// request skips parsing too. Only validated paths are ever inserted.
    by_path: RwLock<HashMap<String, CacheEntry>>,
    generation: watch::Sender<u64>,
    counter: AtomicU64,
    metrics: Arc<Metrics>,
    limits: Limits,
}

impl std::fmt::Debug for Environments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Environments")
            .field("repos", &self.repos)
            .field("generation", &*self.generation.borrow())
            .finish()
    }
}

impl Environments {
    /// A service over `repos`.
    pub fn new(
        repos: Repositories,
        encryptor: Option<TextEncryptor>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            repos,
            encryptor,
            cache: RwLock::new(HashMap::new()),
            by_path: RwLock::new(HashMap::new()),
            generation: watch::channel(1).0,
            counter: AtomicU64::new(1),
            metrics,
            limits: Limits::default(),
        }
    }

    /// The same service with per-request `limits` (default:
    /// [`Limits::default`], the defaults of [`crate::Settings`]).
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The per-request limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Counts a tripped limit and hands the error back.
    fn tripped(&self, e: LimitExceeded) -> EnvError {
        self.metrics.limit_tripped(e.reason());
        EnvError::Limit(e)
    }

    /// The repositories.
    pub fn repos(&self) -> &Repositories {
        &self.repos
    }

    fn repo_for(&self, req: &EnvRequest) -> &Repository {
        self.repos.pick(&req.apps(), &req.profile_list())
    }

    /// The symmetric encryptor, when a key is configured.
    pub fn encryptor(&self) -> Option<&TextEncryptor> {
        self.encryptor.as_ref()
    }

    /// Follows the generation: it moves after every refresh that changed
    /// something.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// Refreshes every repository (on the blocking pool) and moves the
    /// generation when something changed. Returns whether it did; an error
    /// when any repository failed (the others are still refreshed).
    pub async fn refresh(self: &Arc<Self>) -> Result<bool, EnvError> {
        let backends: Vec<_> = self.repos.all().map(|r| r.backend.clone()).collect();
        let names: Vec<String> = backends.iter().map(|b| b.describe()).collect();
        let detail = format!("refresh {}", names.join(", "));
        let changed = cloud_runtime::shutdown::spawn_blocking(detail, move || {
            let mut changed = false;
            let mut error = None;
            for b in backends {
                match b.refresh() {
                    Ok(c) => changed |= c,
                    Err(e) => error = Some(e),
                }
            }
            match error {
                // Still announce what did change before reporting the failure.
                Some(e) if !changed => Err(e),
                _ => Ok(changed),
            }
        })
        .await
        .map_err(EnvError::Task)?;
        match changed {
            Ok(changed) => {
                self.metrics.refresh_ok.fetch_add(1, Ordering::Relaxed);
                if changed {
                    let g = self.counter.fetch_add(1, Ordering::AcqRel) + 1;
                    self.generation.send_replace(g);
                    tracing::info!(generation = g, "repository changed");
                }
                Ok(changed)
            }
            Err(e) => {
                self.metrics.refresh_failed.fetch_add(1, Ordering::Relaxed);
                Err(e.into())
            }
        }
    }

    /// Whether every repository can serve (a git repository cannot before
    /// its first clone).
    pub fn is_serving(&self) -> bool {
        self.repos.all().all(|r| r.backend.health().serving)
    }

    fn current_generation(&self) -> u64 {
        self.counter.load(Ordering::Acquire)
    }

    /// The environment last served for the raw request path `raw`, if the
    /// repository has not changed since. No parsing, no allocation.
    pub fn lookup_path(&self, raw: &str) -> Option<Arc<Resolved>> {
        let generation = self.current_generation();
        let cache = self.by_path.read();
        let entry = cache.get(raw)?;
        if entry.generation == generation {
            self.metrics.cache_hits.fetch_add(1, Ordering::Relaxed);
            Some(entry.resolved.clone())
        } else {
            None
        }
    }

    /// [`Environments::get`], remembering the answer under the raw request
    /// path `raw` (which must be the validated path `req` was parsed from).
    pub async fn get_for_path(
        self: &Arc<Self>,
        raw: &str,
        req: &EnvRequest,
    ) -> Result<Arc<Resolved>, EnvError> {
        let generation = self.current_generation();
        let resolved = self.get(req).await?;
        let mut cache = self.by_path.write();
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(
            raw.to_string(),
            CacheEntry {
                generation,
                resolved: resolved.clone(),
            },
        );
        Ok(resolved)
    }

    /// The environment for `req`, from the cache when still valid.
    pub async fn get(self: &Arc<Self>, req: &EnvRequest) -> Result<Arc<Resolved>, EnvError> {
        req.check_lists(&self.limits).map_err(|e| self.tripped(e))?;
        let generation = self.current_generation();
        let key = req.cache_key();
        if let Some(entry) = self.cache.read().get(&key)
            && entry.generation == generation
        {
            self.metrics.cache_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(entry.resolved.clone());
        }
        self.metrics.cache_misses.fetch_add(1, Ordering::Relaxed);
        let this = self.clone();
        let req_owned = req.clone();
        let previous = self.cache.read().get(&key).map(|e| e.resolved.clone());
        let detail = format!("resolve {}/{}", req.name, req.profiles);
        let resolved = cloud_runtime::shutdown::spawn_blocking(detail, move || {
            let repo = this.repo_for(&req_owned);
            let snapshot = repo.backend.snapshot(req_owned.label.as_deref())?;
            if let Some(prev) = previous
                && prev.cache_version == snapshot.cache_version()
            {
                return Ok::<_, EnvError>(prev);
            }
            this.resolve(&req_owned, repo, snapshot.as_ref())
                .map(Arc::new)
        })
        .await
        .map_err(EnvError::Task)??;
        let mut cache = self.cache.write();
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(
            key,
            CacheEntry {
                generation,
                resolved: resolved.clone(),
            },
        );
        Ok(resolved)
    }

    fn label_text<'a>(req: &'a EnvRequest, repo: &'a Repository) -> &'a str {
        req.label
            .as_deref()
            .unwrap_or_else(|| repo.backend.default_label())
    }

    /// Resolves `req` against `snapshot` (blocking).
    fn resolve(
        &self,
        req: &EnvRequest,
        repo: &Repository,
        snapshot: &dyn Snapshot,
    ) -> Result<Resolved, EnvError> {
        let apps = req.apps();
        let profiles = req.profile_list();
        let label = Self::label_text(req, repo).to_string();
        let dirs = resolve::search_dirs(&repo.search_paths, &apps, &profiles, &label);
        let lookups_of = |names: usize| {
            check_lookups(
                names
                    .saturating_mul(dirs.len())
                    .saturating_mul(resolve::EXTENSIONS.len()),
                &self.limits,
            )
            .map_err(|e| self.tripped(e))
        };
        // Profile groups are read from the files without a profile first.
        lookups_of(resolve::candidate_names(&apps, &[]).len())?;
        let active = resolve::active_profiles(snapshot, &dirs, &apps, &profiles)?;
        lookups_of(resolve::candidate_names(&apps, &active).len())?;
        let sources = resolve::property_sources(snapshot, &dirs, &apps, &active)?;
        let mut env = Environment::new(req.name.clone(), profiles);
        env.label = Some(label);
        env.version = snapshot.version().map(str::to_string);
        env.property_sources = sources;
        let failed = decrypt_environment(&mut env, self.encryptor.as_ref());
        if !failed.is_empty() {
            tracing::warn!(app = %req.name, keys = %failed.join(", "), "could not decrypt {{cipher}} values");
        }
        let sources_json =
            serde_json::to_vec(&env.property_sources).map_err(EnvError::Serialize)?;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        sources_json.hash(&mut h);
        let json = serde_json::to_vec(&env).map_err(EnvError::Serialize)?;
        Ok(Resolved {
            env,
            json: Bytes::from(json),
            digest: format!("{:016x}", h.finish()),
            cache_version: snapshot.cache_version().to_string(),
        })
    }

    /// Reads a plain-text file for `req` at `path`, trying the profile
    /// variants first. Returns the path found and the bytes.
    pub async fn plain_file(
        self: &Arc<Self>,
        req: &EnvRequest,
        path: &str,
    ) -> Result<Option<(String, Vec<u8>)>, EnvError> {
        req.check_lists(&self.limits).map_err(|e| self.tripped(e))?;
        let this = self.clone();
        let req = req.clone();
        let path = path.to_string();
        let detail = format!("read {path} for {}/{}", req.name, req.profiles);
        cloud_runtime::shutdown::spawn_blocking(detail, move || {
            let repo = this.repo_for(&req);
            let snapshot = repo.backend.snapshot(req.label.as_deref())?;
            let apps = req.apps();
            let profiles = req.profile_list();
            let label = Self::label_text(&req, repo).to_string();
            let dirs = resolve::search_dirs(&repo.search_paths, &apps, &profiles, &label);
            let candidates = resolve::plain_text_candidates(&path, &profiles, &dirs);
            check_lookups(candidates.len(), &this.limits).map_err(|e| this.tripped(e))?;
            for candidate in candidates {
                if let Some(bytes) = snapshot.read(&candidate).map_err(ResolveError::from)? {
                    return Ok(Some((candidate, bytes)));
                }
            }
            Ok(None)
        })
        .await
        .map_err(EnvError::Task)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::native::NativeBackend;
    use serde_json::json;

    fn service(dir: &std::path::Path) -> Arc<Environments> {
        let backend = NativeBackend::new(vec![dir.into()], "main").unwrap();
        Arc::new(Environments::new(
            Repositories::new(
                Repository::new("default", Arc::new(backend), vec![]),
                vec![],
            ),
            None,
            Arc::new(Metrics::default()),
        ))
    }

    #[tokio::test]
    async fn repeat_requests_hit_the_cache_until_a_refresh_changes_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("foo.yml"), "a: 1\n").unwrap();
        let s = service(dir.path());
        let req = EnvRequest::new("foo", "dev", None);
        let first = s.get(&req).await.unwrap();
        let again = s.get(&req).await.unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(first.env.get("a"), Some(&json!(1)));

        std::fs::write(dir.path().join("foo.yml"), "a: 22\n").unwrap();
        assert!(s.refresh().await.unwrap());
        let after = s.get(&req).await.unwrap();
        assert_eq!(after.env.get("a"), Some(&json!(22)));
        assert_ne!(after.digest, first.digest);
    }

    #[tokio::test]
    async fn json_bytes_are_the_serialized_environment() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("application.properties"), "x=y\n").unwrap();
        let s = service(dir.path());
        let r = s
            .get(&EnvRequest::new("foo", "default", None))
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&r.json).unwrap();
        assert_eq!(v["name"], json!("foo"));
        assert_eq!(v["label"], json!("main"));
        assert_eq!(v["propertySources"][0]["source"]["x"], json!("y"));
    }
}
