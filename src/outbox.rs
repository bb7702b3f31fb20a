//! The outbox: built mailouts on disk, `outbox/<number>/bulletin.{html,txt,eml}`. Files are
//! written to a temporary name and renamed, so a crash never leaves half a file.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::message::{Copy, Parts};

/// The default outbox folder.
pub const DEFAULT_DIR: &str = "outbox";

/// The files `build` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    /// The bulletin number.
    pub number: u32,
    /// `bulletin.html`
    pub html: PathBuf,
    /// `bulletin.txt`
    pub text: PathBuf,
    /// `bulletin.eml`
    pub eml: PathBuf,
}

/// Writes `copy` and its `parts` as edition `number` into `outbox`.
pub fn write_build(outbox: &Path, number: u32, copy: &Copy, parts: &Parts) -> Result<Built> {
    let dir = outbox.join(number.to_string());
    std::fs::create_dir_all(&dir).map_err(|source| Error::Write {
        path: dir.clone(),
        source,
    })?;
    let built = Built {
        number,
        html: dir.join("bulletin.html"),
        text: dir.join("bulletin.txt"),
        eml: dir.join("bulletin.eml"),
    };
    write_atomic(&built.html, parts.html.as_bytes())?;
    write_atomic(&built.text, parts.text.as_bytes())?;
    write_atomic(&built.eml, &copy.bytes)?;
    Ok(built)
}

/// Writes `bytes` to `path` through a temporary file in the same folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let fail = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    std::fs::write(&tmp, bytes).map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)
}
