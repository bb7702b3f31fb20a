//! Sign-off (PRODUCT.md §6a): `[approval] required = N` different people must approve the
//! exact content members will receive before `mailout send` starts a job. The content is a
//! SHA-256 of the bulletin (with its attachments), the templates in use, and the parts of
//! the config that shape the message; any change voids earlier approvals.

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::store::Approval;
use crate::text::hex;
use crate::workspace::{Workspace, source_key};

/// The config tables that do not change what members receive: editing them keeps
/// approvals.
const NOT_CONTENT: &[&str] = &["smtp", "store", "approval", "numbering", "lists", "origin"];

/// The SHA-256 of everything that shapes what members receive of the bulletin at `path`.
pub fn content_hash(workspace: &Workspace, path: &Path) -> Result<String> {
    let bulletin = workspace.bulletin(path)?;
    let bulletin_hash = bulletin.content_hash(workspace.inputs())?;
    let mut config = serde_json::to_value(&workspace.config).map_err(|e| Error::Failed {
        context: "could not encode the config to hash what it says".into(),
        source: Box::new(e),
    })?;
    if let Some(table) = config.as_object_mut() {
        for key in NOT_CONTENT {
            table.remove(*key);
        }
    }
    let digest = Sha256::new()
        .chain_update(b"bulletin\0")
        .chain_update(bulletin_hash.as_bytes())
        .chain_update(b"\0templates\0")
        .chain_update(workspace.templates.fingerprint().as_bytes())
        .chain_update(b"\0config\0")
        .chain_update(config.to_string().as_bytes())
        .finalize();
    Ok(hex(&digest))
}

/// Where a bulletin stands with its approvals.
#[derive(Debug, Clone)]
pub struct Status {
    /// The content now.
    pub content_hash: String,
    /// Every approval recorded for the file, with whether it is of the content now.
    pub approvals: Vec<(Approval, bool)>,
    /// How many different people must approve.
    pub required: u32,
}

impl Status {
    /// Different people who approved the content as it is now.
    pub fn valid(&self) -> usize {
        self.approvals
            .iter()
            .filter(|(_, current)| *current)
            .count()
    }

    /// Whether a send may start.
    pub fn satisfied(&self) -> bool {
        self.valid() >= self.required as usize
    }

    /// Why a send may not start, naming who approved what.
    pub fn refusal(&self, file: &Path) -> String {
        let mut text = format!(
            "`{}` needs {} approval{} of its content as it is now, and has {}",
            file.display(),
            self.required,
            if self.required == 1 { "" } else { "s" },
            self.valid()
        );
        for (a, current) in &self.approvals {
            text.push_str(&format!(
                "\n  {} approved at {} content {}{}",
                a.name,
                a.at,
                &a.content_hash[..12.min(a.content_hash.len())],
                if *current {
                    ""
                } else {
                    " — the bulletin, a template or the config has changed since: void"
                }
            ));
        }
        text.push_str(&format!(
            "\n  content now: {}; approve with `mailout approve {} --as NAME`",
            &self.content_hash[..12],
            file.display()
        ));
        text
    }
}

/// The approvals of the bulletin at `path`.
pub fn status(workspace: &Workspace, path: &Path) -> Result<Status> {
    let content_hash = content_hash(workspace, path)?;
    let approvals = workspace
        .store()?
        .approvals(&source_key(path))?
        .into_iter()
        .map(|a| {
            let current = a.content_hash == content_hash;
            (a, current)
        })
        .collect();
    Ok(Status {
        content_hash,
        approvals,
        required: workspace.config.approval.required,
    })
}

/// Records that `name` approves the bulletin at `path` as it is now.
pub fn approve(workspace: &Workspace, path: &Path, name: &str) -> Result<Status> {
    let name = name.trim();
    if name.is_empty() || name.chars().any(char::is_control) {
        return Err(Error::Usage(
            "`--as` needs the approver's name, on one line".into(),
        ));
    }
    // Only a bulletin that builds can be approved.
    workspace.edition(path)?;
    let content_hash = content_hash(workspace, path)?;
    workspace.store()?.approve(&Approval {
        source: source_key(path),
        name: name.to_string(),
        content_hash,
        at: crate::clock::stamp(),
    })?;
    status(workspace, path)
}
