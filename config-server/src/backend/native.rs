//! Configuration read from local directories (Spring's `native` profile).
//!
//! Several directories may be given; later ones rank higher, like search
//! locations: each directory's copy of a file is its own property source.
//! Plain-text files come from the highest directory that has them. Reads never leave a directory: paths are checked for `..`
//! and symlinks are only followed when their target stays inside it.
//! The label is ignored unless a search path uses `{label}`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use super::{Backend, BackendError, BackendHealth, Snapshot, age_seconds, unix_now};
use crate::resolve::{FileSource, ReadError};

/// Directories of configuration files.
#[derive(Debug)]
pub struct NativeBackend {
    roots: Vec<PathBuf>,
    default_label: String,
    generation: AtomicU64,
    fingerprint: Mutex<u64>,
    last_refresh: AtomicU64,
}

impl NativeBackend {
    /// Serves `dirs` (later ones rank higher). Each must exist.
    pub fn new(dirs: Vec<PathBuf>, default_label: &str) -> Result<Self, BackendError> {
        let mut roots = Vec::new();
        for d in dirs {
            let canonical = d
                .canonicalize()
                .map_err(|e| BackendError::io(format!("native dir {}", d.display()), e))?;
            roots.push(canonical);
        }
        let backend = Self {
            roots,
            default_label: default_label.to_string(),
            generation: AtomicU64::new(1),
            fingerprint: Mutex::new(0),
            last_refresh: AtomicU64::new(unix_now()),
        };
        *backend.fingerprint.lock() = backend.scan();
        Ok(backend)
    }

    /// A cheap fingerprint of the trees: paths, sizes and modification times.
    fn scan(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        for root in &self.roots {
            let mut stack = vec![root.clone()];
            while let Some(dir) = stack.pop() {
                let Ok(entries) = std::fs::read_dir(&dir) else {
                    continue;
                };
                let mut entries: Vec<_> = entries.flatten().collect();
                entries.sort_by_key(|e| e.path());
                for e in entries {
                    let Ok(meta) = e.metadata() else { continue };
                    e.path().hash(&mut h);
                    meta.len().hash(&mut h);
                    if let Ok(m) = meta.modified() {
                        m.hash(&mut h);
                    }
                    if meta.is_dir() && !e.file_name().to_string_lossy().starts_with('.') {
                        stack.push(e.path());
                    }
                }
            }
        }
        h.finish()
    }
}

impl Backend for NativeBackend {
    fn snapshot(&self, _label: Option<&str>) -> Result<Arc<dyn Snapshot>, BackendError> {
        Ok(Arc::new(NativeSnapshot {
            roots: self.roots.clone(),
            generation: format!("native-{}", self.generation.load(Ordering::Acquire)),
        }))
    }

    fn refresh(&self) -> Result<bool, BackendError> {
        let now = self.scan();
        let mut fp = self.fingerprint.lock();
        self.last_refresh.store(unix_now(), Ordering::Release);
        if *fp != now {
            *fp = now;
            self.generation.fetch_add(1, Ordering::AcqRel);
            return Ok(true);
        }
        Ok(false)
    }

    fn health(&self) -> BackendHealth {
        BackendHealth {
            status: "UP",
            repository: self
                .roots
                .iter()
                .map(|r| format!("file:{}", r.display()))
                .collect::<Vec<_>>()
                .join(","),
            last_successful_refresh: Some(self.last_refresh.load(Ordering::Acquire)),
            last_successful_refresh_age_seconds: age_seconds(Some(
                self.last_refresh.load(Ordering::Acquire),
            )),
            last_good_commit: None,
            last_error: None,
            serving: true,
        }
    }

    fn default_label(&self) -> &str {
        &self.default_label
    }

    fn describe(&self) -> String {
        "native directories".into()
    }
}

struct NativeSnapshot {
    roots: Vec<PathBuf>,
    generation: String,
}

impl NativeSnapshot {
    /// The file `rel` in `root`, only if it is a regular file inside `root`.
    fn locate(root: &Path, rel: &str) -> Option<PathBuf> {
        if rel
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == ".." || c.contains('\\'))
        {
            return None;
        }
        let candidate = root.join(rel);
        let canonical = candidate.canonicalize().ok()?;
        if !canonical.starts_with(root) {
            tracing::warn!(path = %rel, "refusing a symlink that leaves the native directory");
            return None;
        }
        canonical.is_file().then_some(canonical)
    }

    fn find(&self, rel: &str) -> Option<(&Path, PathBuf)> {
        self.roots
            .iter()
            .rev()
            .find_map(|root| Self::locate(root, rel).map(|p| (root.as_path(), p)))
    }
}

impl FileSource for NativeSnapshot {
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, ReadError> {
        match self.find(path) {
            Some((_, p)) => std::fs::read(&p)
                .map(Some)
                .map_err(|e| ReadError::new(p.display().to_string(), e)),
            None => Ok(None),
        }
    }

    fn source_name(&self, path: &str) -> String {
        match self.find(path) {
            Some((root, _)) => format!("file:{}/{path}", root.display()),
            None => format!("file:{path}"),
        }
    }

    fn read_all(&self, path: &str) -> Result<Vec<(String, Vec<u8>)>, ReadError> {
        let mut out = Vec::new();
        for root in self.roots.iter().rev() {
            if let Some(p) = Self::locate(root, path) {
                let bytes =
                    std::fs::read(&p).map_err(|e| ReadError::new(p.display().to_string(), e))?;
                out.push((format!("file:{}/{path}", root.display()), bytes));
            }
        }
        Ok(out)
    }
}

impl Snapshot for NativeSnapshot {
    fn version(&self) -> Option<&str> {
        None
    }

    fn cache_version(&self) -> &str {
        &self.generation
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_inside_and_refuses_escapes() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.yml"), "s: 1\n").unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("foo.yml"), "a: 1\n").unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("secret.yml"),
            dir.path().join("evil.yml"),
        )
        .unwrap();
        std::fs::write(dir.path().join("real.yml"), "r: 1\n").unwrap();
        std::os::unix::fs::symlink(dir.path().join("real.yml"), dir.path().join("alias.yml"))
            .unwrap();
        let b = NativeBackend::new(vec![dir.path().into()], "main").unwrap();
        let s = b.snapshot(None).unwrap();
        assert!(s.read("foo.yml").unwrap().is_some());
        assert!(s.read("evil.yml").unwrap().is_none());
        assert!(
            s.read("alias.yml").unwrap().is_some(),
            "links inside are fine"
        );
        assert!(s.read("../x").unwrap().is_none());
        assert!(s.read("missing.yml").unwrap().is_none());
        assert_eq!(s.version(), None);
    }

    #[test]
    fn refresh_bumps_the_cache_version_only_on_change() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("foo.yml"), "a: 1\n").unwrap();
        let b = NativeBackend::new(vec![dir.path().into()], "main").unwrap();
        let v1 = b.snapshot(None).unwrap().cache_version().to_string();
        assert!(!b.refresh().unwrap());
        std::fs::write(dir.path().join("foo.yml"), "a: 22\n").unwrap();
        assert!(b.refresh().unwrap());
        assert_ne!(b.snapshot(None).unwrap().cache_version(), v1);
    }

    #[test]
    fn every_directory_contributes_later_ones_first() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        std::fs::write(a.path().join("foo.yml"), "a: 1\nonly_a: x\n").unwrap();
        std::fs::write(b.path().join("foo.yml"), "a: 2\n").unwrap();
        let nb = NativeBackend::new(vec![a.path().into(), b.path().into()], "main").unwrap();
        let s = nb.snapshot(None).unwrap();
        let all = s.read_all("foo.yml").unwrap();
        assert_eq!(all.len(), 2);
        assert!(all[0].0.ends_with(&format!(
            "{}/foo.yml",
            b.path().canonicalize().unwrap().display()
        )));
        assert_eq!(all[1].1, b"a: 1\nonly_a: x\n");
    }

    #[test]
    fn later_directories_win() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        std::fs::write(a.path().join("foo.yml"), "a: 1\n").unwrap();
        std::fs::write(b.path().join("foo.yml"), "a: 2\n").unwrap();
        let nb = NativeBackend::new(vec![a.path().into(), b.path().into()], "main").unwrap();
        let s = nb.snapshot(None).unwrap();
        assert_eq!(s.read("foo.yml").unwrap().unwrap(), b"a: 2\n");
    }
}
