//! A pool of long-lived `git cat-file --batch` readers.
//!
//! Each reader is one child process that answers object requests over a
//! pipe; the pool lets several requests read at the same time. Nothing is
//! checked out and nothing in the repository is locked: git's object
//! database is safe to read while a fetch adds new packs.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;

use crate::backend::BackendError;

/// An object as `cat-file` returns it.
pub(crate) struct Object {
    /// Full object id (hex).
    pub(crate) oid: String,
    /// `blob`, `tree`, `commit` or `tag`.
    pub(crate) kind: String,
    /// The raw content.
    pub(crate) data: Vec<u8>,
}

struct Reader {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Drop for Reader {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Reader {
    fn spawn(repo: &Path) -> Result<Self, BackendError> {
        let mut child = Command::new("git")
            .arg("-C")
            .arg(repo)
            .args(["cat-file", "--batch"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| BackendError::io("spawn git cat-file", e))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            return Err(BackendError::Git {
                command: "cat-file".into(),
                message: "no pipes".into(),
            });
        };
        Ok(Self {
            child,
            stdin,
            stdout: BufReader::new(stdout),
        })
    }

    fn get(&mut self, spec: &str) -> std::io::Result<Option<Object>> {
        writeln!(self.stdin, "{spec}")?;
        self.stdin.flush()?;
        let mut header = String::new();
        if self.stdout.read_line(&mut header)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "cat-file exited",
            ));
        }
        let mut parts = header.trim_end().split(' ');
        let (Some(oid), Some(kind), Some(size)) = (parts.next(), parts.next(), parts.next()) else {
            // "<spec> missing" / "<spec> ambiguous"
            return Ok(None);
        };
        let size: usize = size
            .parse()
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "bad size"))?;
        let mut data = vec![0u8; size + 1];
        self.stdout.read_exact(&mut data)?;
        data.pop();
        Ok(Some(Object {
            oid: oid.to_string(),
            kind: kind.to_string(),
            data,
        }))
    }
}

/// A fixed number of readers over one repository.
pub(crate) struct CatFilePool {
    repo: PathBuf,
    readers: Vec<Mutex<Option<Reader>>>,
    next: AtomicUsize,
}

impl CatFilePool {
    /// A pool of `size` readers (spawned lazily) over the bare repo `repo`.
    pub(crate) fn new(repo: PathBuf, size: usize) -> Self {
        Self {
            repo,
            readers: (0..size.max(1)).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// Looks up `spec` (any object name git understands, e.g. `<oid>` or
    /// `<hex>^{commit}`); `None` when missing or ambiguous.
    pub(crate) fn get(&self, spec: &str) -> Result<Option<Object>, BackendError> {
        if spec.contains('\n') {
            return Ok(None);
        }
        // Take a free reader if there is one, else wait for one in turn.
        let slot = self
            .readers
            .iter()
            .find_map(|r| r.try_lock())
            .unwrap_or_else(|| {
                let i = self.next.fetch_add(1, Ordering::Relaxed) % self.readers.len();
                self.readers[i].lock()
            });
        let mut slot = slot;
        if slot.is_none() {
            *slot = Some(Reader::spawn(&self.repo)?);
        }
        let reader = slot.as_mut().ok_or_else(|| BackendError::Git {
            command: "cat-file".into(),
            message: "reader not started".into(),
        })?;
        match reader.get(spec) {
            Ok(obj) => Ok(obj),
            Err(e) => {
                // A broken pipe leaves the protocol out of step: start afresh.
                *slot = None;
                Err(BackendError::io("git cat-file", e))
            }
        }
    }
}
