//! The built-in templates, embedded in the binary, and the organisation's overrides, file by
//! file, from its `templates/` folder. `mailout templates export` copies the built-ins out.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The folder, relative to where mailout runs, holding an organisation's templates.
pub const DIR: &str = "templates";

/// Every built-in template file: its path under `templates/` and its text.
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "bulletin.html.hbs",
        include_str!("../../templates/bulletin.html.hbs"),
    ),
    (
        "bulletin.txt.hbs",
        include_str!("../../templates/bulletin.txt.hbs"),
    ),
    ("style.css", include_str!("../../templates/style.css")),
    (
        "partials/masthead.html.hbs",
        include_str!("../../templates/partials/masthead.html.hbs"),
    ),
    (
        "partials/contents.html.hbs",
        include_str!("../../templates/partials/contents.html.hbs"),
    ),
    (
        "partials/section.html.hbs",
        include_str!("../../templates/partials/section.html.hbs"),
    ),
    (
        "partials/signatories.html.hbs",
        include_str!("../../templates/partials/signatories.html.hbs"),
    ),
    (
        "partials/footer.html.hbs",
        include_str!("../../templates/partials/footer.html.hbs"),
    ),
    (
        "partials/section.txt.hbs",
        include_str!("../../templates/partials/section.txt.hbs"),
    ),
    (
        "partials/footer.txt.hbs",
        include_str!("../../templates/partials/footer.txt.hbs"),
    ),
];

/// The templates in use: the built-ins with any overrides applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Templates {
    files: BTreeMap<String, String>,
    overridden: Vec<PathBuf>,
}

impl Templates {
    /// Only the built-in templates.
    pub fn builtin() -> Templates {
        Templates {
            files: BUILTIN
                .iter()
                .map(|(name, text)| (name.to_string(), text.to_string()))
                .collect(),
            overridden: Vec::new(),
        }
    }

    /// The built-ins, overridden by every file of the same name in `dir`, plus any extra
    /// partials there. A missing `dir` means no overrides.
    pub fn load(dir: &Path) -> Result<Templates> {
        let mut templates = Templates::builtin();
        if !dir.is_dir() {
            return Ok(templates);
        }
        let mut names: Vec<String> = BUILTIN.iter().map(|(n, _)| n.to_string()).collect();
        let partials = dir.join("partials");
        if partials.is_dir() {
            let entries = std::fs::read_dir(&partials).map_err(|source| Error::Read {
                path: partials.clone(),
                source,
            })?;
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.ends_with(".html.hbs") || name.ends_with(".txt.hbs") {
                    names.push(format!("partials/{name}"));
                }
            }
        }
        names.sort();
        names.dedup();
        for name in names {
            let path = dir.join(&name);
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    if templates.files.get(&name) != Some(&text) {
                        templates.overridden.push(path);
                    }
                    templates.files.insert(name, text);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(Error::Read { path, source }),
            }
        }
        Ok(templates)
    }

    /// The text of template `name` (a path under `templates/`).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.files.get(name).map(String::as_str)
    }

    /// Every template, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.files.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The override files that differ from the built-ins.
    pub fn overridden(&self) -> &[PathBuf] {
        &self.overridden
    }

    /// SHA-256 over every template's name and text: changes when any template changes.
    pub fn fingerprint(&self) -> String {
        let mut hash = Sha256::new();
        for (name, text) in &self.files {
            hash.update(name.as_bytes());
            hash.update([0]);
            hash.update(text.as_bytes());
            hash.update([0]);
        }
        crate::text::hex(&hash.finalize())
    }
}

/// Writes the built-in templates into `dir`. Existing files are kept unless `force`; returns
/// the files written.
pub fn export(dir: &Path, force: bool) -> Result<Vec<PathBuf>> {
    let mut existing = Vec::new();
    for (name, _) in BUILTIN {
        let path = dir.join(name);
        if path.exists() && !force {
            existing.push(path);
        }
    }
    if let Some(first) = existing.first() {
        return Err(Error::Exists {
            path: first.clone(),
            hint: Some(format!(
                "{} template file(s) would be overwritten; pass `--force` to replace them",
                existing.len()
            )),
        });
    }
    let mut written = Vec::new();
    for (name, text) in BUILTIN {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| Error::Write {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        std::fs::write(&path, text).map_err(|source| Error::Write {
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_one_file_and_keep_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("partials")).unwrap();
        std::fs::write(dir.path().join("partials/footer.txt.hbs"), "bye\n").unwrap();
        std::fs::write(dir.path().join("partials/extra.html.hbs"), "<p>x</p>").unwrap();
        let t = Templates::load(dir.path()).unwrap();
        assert_eq!(t.get("partials/footer.txt.hbs"), Some("bye\n"));
        assert_eq!(t.get("partials/extra.html.hbs"), Some("<p>x</p>"));
        assert_eq!(
            t.get("bulletin.html.hbs"),
            Templates::builtin().get("bulletin.html.hbs")
        );
        assert_eq!(t.overridden().len(), 2);
        assert_ne!(t.fingerprint(), Templates::builtin().fingerprint());
    }

    #[test]
    fn export_refuses_to_overwrite_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let written = export(dir.path(), false).unwrap();
        assert_eq!(written.len(), BUILTIN.len());
        assert!(matches!(
            export(dir.path(), false),
            Err(Error::Exists { .. })
        ));
        assert_eq!(export(dir.path(), true).unwrap().len(), BUILTIN.len());
        let exported = Templates::load(dir.path()).unwrap();
        assert!(exported.overridden().is_empty());
    }
}
