//! `mailout init`: a new organisation's folder, ready for `mailout new`. A commented
//! `config/mailout.toml` with placeholders to replace, `bulletins/`, a sample
//! `members.csv`, a random token secret in `.mailout.env` (mode 0600), and a `.gitignore`
//! that keeps the secret, the store and built mail out of git. Nothing the user already has
//! is lost: only the config is ever replaced, and only when asked.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;

use crate::clock;
use crate::config;
use crate::env_file;
use crate::error::{Error, Result};
use crate::outbox;

/// The config `init` writes: loads and validates as it is.
pub const CONFIG: &str = include_str!("mailout.toml");

/// The sample roster `init` writes: fictional members in the documented columns.
pub const MEMBERS: &str = include_str!("members.csv");

/// The number of the first bulletin in a new folder (the config's `[numbering] start`).
pub const FIRST_NUMBER: u32 = 1;

/// The variable the written config names for the token secret.
const SECRET_VARIABLE: &str = "MAILOUT_TOKEN_SECRET";

/// What `.gitignore` must hold: the secret, the store (with SQLite's `-wal` and `-shm`
/// files) and the outbox.
pub const IGNORED: [&str; 3] = [env_file::FILE, "mailout.sqlite*", "outbox/"];

/// What `init` did to one file or folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The file or folder, under the folder `init` was given.
    pub path: PathBuf,
    /// What happened to it.
    pub done: Done,
    /// What it is for, in a few words.
    pub about: &'static str,
}

/// What happened to a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    /// It did not exist and was written.
    Created,
    /// It existed and was replaced (`--force`, the config only).
    Replaced,
    /// It existed and was left as it was.
    Kept,
    /// It existed and lines were added to it.
    Extended,
}

/// Writes a new organisation's folder into `dir` (created if missing). Refuses, naming
/// the file, when `dir/config/mailout.toml` exists, unless `force`; even then the roster,
/// the secret and the bulletins are kept (a new secret would break the unsubscribe links
/// of every copy already sent).
pub fn init(dir: &Path, force: bool) -> Result<Vec<Step>> {
    if dir.as_os_str().is_empty() {
        return Err(Error::Usage(
            "the folder to set up has an empty name; `.` is the current folder".into(),
        ));
    }
    let config_path = under(dir, config::DEFAULT_PATH);
    let config_existed = exists(&config_path)?;
    if config_existed && !force {
        return Err(Error::Exists {
            path: config_path,
            hint: Some(
                "add `--force` to replace it with a fresh one (the roster, the secret and the bulletins are kept)"
                    .into(),
            ),
        });
    }
    let mut steps = Vec::new();
    create_dir(&under(dir, "config"))?;
    outbox::write_atomic(&config_path, CONFIG.as_bytes())?;
    steps.push(Step {
        path: config_path,
        done: if config_existed {
            Done::Replaced
        } else {
            Done::Created
        },
        about: "the organisation's settings: replace the values marked `# <- CHANGE`",
    });
    steps.push(bulletins(&under(dir, "bulletins"))?);
    steps.push(members(&under(dir, "members.csv"))?);
    steps.push(secret(&env_file::path(dir))?);
    steps.push(gitignore(&under(dir, ".gitignore"))?);
    Ok(steps)
}

/// `rel` inside `dir`, as the user would write it (`config/mailout.toml` for `.`).
fn under(dir: &Path, rel: &str) -> PathBuf {
    if dir == Path::new(".") {
        PathBuf::from(rel)
    } else {
        dir.join(rel)
    }
}

/// `bulletins/`, with a `.gitkeep` when it is empty so that git keeps it.
fn bulletins(dir: &Path) -> Result<Step> {
    create_dir(dir)?;
    let empty = std::fs::read_dir(dir)
        .map_err(|source| Error::Read {
            path: dir.to_path_buf(),
            source,
        })?
        .next()
        .is_none();
    let keep = dir.join(".gitkeep");
    if empty {
        write_new(&keep, b"", None)?;
    }
    Ok(Step {
        path: if empty { keep } else { dir.to_path_buf() },
        done: if empty { Done::Created } else { Done::Kept },
        about: "one file per bulletin (`mailout new` starts one)",
    })
}

/// A sample roster, unless there is one (a real roster is never overwritten).
fn members(path: &Path) -> Result<Step> {
    let about = "fictional members to try with; replace them with your roster";
    if exists(path)? {
        return Ok(Step {
            path: path.to_path_buf(),
            done: Done::Kept,
            about: "the roster",
        });
    }
    write_new(path, MEMBERS.as_bytes(), None)?;
    Ok(Step {
        path: path.to_path_buf(),
        done: Done::Created,
        about,
    })
}

/// A random token secret in `.mailout.env`, readable by its owner only. An existing file
/// that sets the secret is kept; one that does not gets the line added.
fn secret(path: &Path) -> Result<Step> {
    let about = "the token secret that signs unsubscribe links: back it up, never commit it";
    let line = format!("{SECRET_VARIABLE}={}\n", new_secret()?);
    if !exists(path)? {
        let text = format!(
            "# Written by `mailout init`: secrets for mailout in this folder. Never commit this file.\n\
             # {SECRET_VARIABLE} signs the unsubscribe links in every copy. Keep it and back it up:\n\
             # a new value breaks the links in bulletins already sent. Every machine that sends or\n\
             # serves for this organisation needs the same value. The environment variable, when\n\
             # set, wins over this file.\n\
             {line}"
        );
        write_new(path, text.as_bytes(), Some(0o600))?;
        return Ok(Step {
            path: path.to_path_buf(),
            done: Done::Created,
            about,
        });
    }
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let pairs = env_file::parse(path, &text)?;
    if env_file::get(&pairs, SECRET_VARIABLE).is_some() {
        return Ok(Step {
            path: path.to_path_buf(),
            done: Done::Kept,
            about,
        });
    }
    let separator = if text.is_empty() || text.ends_with('\n') {
        ""
    } else {
        "\n"
    };
    append(path, &format!("{separator}{line}"))?;
    restrict(path)?;
    Ok(Step {
        path: path.to_path_buf(),
        done: Done::Extended,
        about,
    })
}

/// `.gitignore` with [`IGNORED`]; an existing one gets the lines it lacks.
fn gitignore(path: &Path) -> Result<Step> {
    let about = "keeps the secret, the store and built mail out of git";
    if !exists(path)? {
        let mut text = String::from("# Written by `mailout init`: never commit these.\n");
        for line in IGNORED {
            text.push_str(line);
            text.push('\n');
        }
        write_new(path, text.as_bytes(), None)?;
        return Ok(Step {
            path: path.to_path_buf(),
            done: Done::Created,
            about,
        });
    }
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let missing: Vec<&str> = IGNORED
        .into_iter()
        .filter(|wanted| !text.lines().any(|l| l.trim() == *wanted))
        .collect();
    if missing.is_empty() {
        return Ok(Step {
            path: path.to_path_buf(),
            done: Done::Kept,
            about,
        });
    }
    let mut added = String::new();
    if !text.is_empty() && !text.ends_with('\n') {
        added.push('\n');
    }
    added.push_str("# Added by `mailout init`: never commit these.\n");
    for line in missing {
        added.push_str(line);
        added.push('\n');
    }
    append(path, &added)?;
    Ok(Step {
        path: path.to_path_buf(),
        done: Done::Extended,
        about,
    })
}

/// 32 random bytes as 43 URL-safe characters.
fn new_secret() -> Result<String> {
    let bytes = clock::random_bytes::<32>().map_err(|source| Error::Io {
        context: "could not make a token secret from the system's random source".into(),
        path: None,
        source,
    })?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Whether `path` exists (a dangling link counts: it is not ours to replace). Below a file
/// nothing exists; making the folder then says why it cannot be.
fn exists(path: &Path) -> Result<bool> {
    use std::io::ErrorKind;
    match std::fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => Ok(false),
        Err(source) => Err(Error::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Write {
        path: dir.to_path_buf(),
        source,
    })
}

/// Writes a file that must not exist yet, with `mode` (on Unix) from the start, so that a
/// secret is never readable by others, not even for a moment.
fn write_new(path: &Path, bytes: &[u8], mode: Option<u32>) -> Result<()> {
    let fail = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if let Some(mode) = mode {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path).map_err(fail)?;
    file.write_all(bytes).map_err(fail)?;
    if mode.is_some() {
        restrict(path)?;
    }
    Ok(())
}

fn append(path: &Path, text: &str) -> Result<()> {
    let fail = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(fail)
}

/// Makes `path` readable and writable by its owner only (the umask may have left less,
/// never more, at creation; an existing file may have had more).
fn restrict(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(
            |source| Error::Write {
                path: path.to_path_buf(),
                source,
            },
        )?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn the_written_config_loads_and_names_the_secret_variable() {
        let config = Config::parse(Path::new("config/mailout.toml"), CONFIG).unwrap();
        assert!(config.validate().is_empty(), "{:?}", config.validate());
        assert_eq!(config.numbering.start, FIRST_NUMBER);
        assert_eq!(config.sender.token_secret_env, SECRET_VARIABLE);
        assert_eq!(config.store.path, "mailout.sqlite");
        assert!(
            config.smtp.is_none(),
            "a new folder sends to files until told"
        );
        // Every placeholder is marked.
        for key in ["name = ", "from = ", "address = ", "unsubscribe_url = "] {
            let line = CONFIG.lines().find(|l| l.starts_with(key)).unwrap();
            assert!(line.ends_with("# <- CHANGE"), "{line}");
        }
    }

    #[test]
    fn secrets_are_long_and_differ() {
        let (a, b) = (new_secret().unwrap(), new_secret().unwrap());
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }
}
