//! The files a command reads besides its config and templates: bulletins and their
//! attachments, each read (and hashed) once per command however many steps look at it,
//! so that every step of one command sees the same bytes.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// One file as read.
#[derive(Debug)]
pub struct Input {
    /// Its bytes.
    pub bytes: Vec<u8>,
    sha256: OnceLock<String>,
}

impl Input {
    /// The SHA-256 of its bytes, in lowercase hex (computed once).
    pub fn sha256(&self) -> &str {
        self.sha256
            .get_or_init(|| crate::text::hex(&Sha256::digest(&self.bytes)))
    }
}

/// The files read so far, by path, and the folder attachment paths are relative to.
#[derive(Debug)]
pub struct Inputs {
    base: PathBuf,
    read: RefCell<HashMap<PathBuf, Arc<Input>>>,
}

impl Inputs {
    /// Nothing read yet; attachments are found under `base`.
    pub fn new(base: impl Into<PathBuf>) -> Inputs {
        Inputs {
            base: base.into(),
            read: RefCell::default(),
        }
    }

    /// The folder attachment paths are relative to.
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// The file at `path` (relative to the working directory, or absolute), read on first
    /// use.
    pub fn read(&self, path: &Path) -> Result<Arc<Input>> {
        if let Some(input) = self.read.borrow().get(key(path)) {
            return Ok(Arc::clone(input));
        }
        let bytes = std::fs::read(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let input = Arc::new(Input {
            bytes,
            sha256: OnceLock::new(),
        });
        self.read
            .borrow_mut()
            .insert(key(path).to_path_buf(), Arc::clone(&input));
        Ok(input)
    }

    /// The attachment a bulletin names as `name` (relative to the base): its path, and the
    /// file read on first use.
    pub fn attachment(&self, name: &str) -> (PathBuf, Result<Arc<Input>>) {
        let path = self.base.join(name);
        let input = self.read(&path);
        (path, input)
    }
}

/// `path` as the caches know it: `./a.toml` and `a.toml` are one file.
pub(crate) fn key(path: &Path) -> &Path {
    path.strip_prefix(".").unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_read_once_and_a_missing_one_names_its_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), "one").unwrap();
        let inputs = Inputs::new(dir.path());
        let (_, first) = inputs.attachment("a.txt");
        let first = first.unwrap();
        std::fs::write(dir.path().join("a.txt"), "two").unwrap();
        let (_, again) = inputs.attachment("a.txt");
        assert_eq!(
            again.unwrap().bytes,
            b"one",
            "the same bytes all command long"
        );
        assert_eq!(
            first.sha256(),
            "7692c3ad3540bb803c020b3aee66cd8887123234ea0c6e7143c0add73ff431ed"
        );
        let (path, missing) = inputs.attachment("gone.pdf");
        let error = missing.unwrap_err().to_string();
        assert!(error.contains(&path.display().to_string()), "{error}");
    }
}
