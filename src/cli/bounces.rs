//! `mailout bounces`: delivery status notifications, classified; hard bounces suppressed.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use mailout::workspace::{Options, Workspace};
use mailout::{Error, archive, bounces};

use super::output::{cell, errln, outln};

/// `mailout bounces`
#[derive(Args, Debug)]
pub struct Bounces {
    /// Files and folders of bounce messages.
    paths: Vec<PathBuf>,
    /// A mailbox over IMAP: imaps://USER@HOST/MAILBOX (password in MAILOUT_IMAP_PASSWORD).
    #[arg(long, value_name = "URL")]
    imap: Option<String>,
}

/// `mailout bounces`.
pub fn bounces(options: &Options, args: Bounces) -> Result<ExitCode, Error> {
    let workspace = Workspace::open(options)?;
    let store = workspace.store()?;
    let mut report = bounces::Report::default();
    archive::read_mail(
        store,
        &args.paths,
        args.imap.as_deref(),
        "bounces",
        &mut |source, raw| bounces::process(store, raw, source, &mut report),
        &mut |source, error| errln!("warning: could not read `{source}`: {error}"),
    )?;
    for (b, job) in &report.bounces {
        outln!(
            "{:<7}  {}  {}{}{}",
            b.class.as_str(),
            cell(&b.recipient, 200),
            b.status.as_deref().unwrap_or("-"),
            job.map(|j| format!("  job {j}")).unwrap_or_default(),
            b.diagnostic
                .as_deref()
                .map(|d| format!("  ({})", cell(d, 100)))
                .unwrap_or_default(),
        );
    }
    outln!(
        "messages: {}  bounces: {}  hard: {}  soft: {}  unknown: {}  suppressed: {}  not bounces: {}",
        report.messages,
        report.bounces.len(),
        report.count(bounces::Class::Hard),
        report.count(bounces::Class::Soft),
        report.count(bounces::Class::Unknown),
        report.suppressed,
        report.not_bounces
    );
    Ok(ExitCode::SUCCESS)
}
