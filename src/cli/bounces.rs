//! `mailout bounces`: delivery status notifications, each failure classified by reason;
//! hard ones suppressed, soft ones counted, sender-side ones reported (never suppressed).
//! `mailout unsuppress`: lifts a bounce or manual suppression.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use mailout::bounces::{self, Own, SoftRule};
use mailout::consent::Lifted;
use mailout::runtime::Runtime;
use mailout::workspace::{Options, Workspace};
use mailout::{Error, archive};

use super::output::{cell, count, errln, outln};

/// `mailout bounces`
#[derive(Args, Debug)]
pub struct Bounces {
    /// Files and folders of bounce messages.
    paths: Vec<PathBuf>,
    /// A mailbox over IMAP: imaps://USER@HOST/MAILBOX (password in MAILOUT_IMAP_PASSWORD).
    #[arg(long, value_name = "URL")]
    imap: Option<String>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// `mailout unsuppress`
#[derive(Args, Debug)]
pub struct Unsuppress {
    /// Addresses.
    #[arg(required = true)]
    addresses: Vec<String>,
    /// Why, for the record.
    #[arg(long, required = true)]
    reason: String,
}

/// `mailout bounces`: exit 2 when a failure is a problem with our own sending (IMAP is
/// read on `runtime`).
pub fn bounces(options: &Options, args: Bounces, runtime: &Runtime) -> Result<ExitCode, Error> {
    let workspace = Workspace::open(options)?;
    let store = workspace.store()?;
    let own = Own::from_config(&workspace.config);
    let rule = SoftRule {
        limit: workspace.config.bounces.soft_limit,
        days: workspace.config.bounces.soft_days,
    };
    let mut report = bounces::Report::default();
    archive::read_mail(
        store,
        &args.paths,
        args.imap.as_deref(),
        runtime,
        "bounces",
        &mut |source, raw| bounces::process(store, &own, rule, raw, source, &mut report),
        &mut |source, error| errln!("warning: could not read `{source}`: {error}"),
    )?;
    if !args.json {
        for h in &report.bounces {
            let b = &h.bounce;
            outln!(
                "{:<11}  {:<14}  {}  {}{}  {}{}",
                b.reason.consequence().as_str(),
                b.reason.as_str(),
                cell(&b.recipient, 200),
                b.status.as_deref().unwrap_or("-"),
                h.job.map(|j| format!("  job {j}")).unwrap_or_default(),
                h.action,
                b.diagnostic
                    .as_deref()
                    .map(|d| format!("  ({})", cell(d, 100)))
                    .unwrap_or_default(),
            );
        }
    }
    let problems = report.sender_side();
    for (domain, reason, n, example) in &problems {
        errln!(
            "problem with our sending: {} at {domain} refused us: {} ({}); nobody was suppressed. Example: {}",
            count(*n, "recipient", "recipients"),
            reason.describe(),
            reason.as_str(),
            cell(example, 160)
        );
    }
    if args.json {
        outln!(
            "{}",
            serde_json::to_string(&report.summary()).unwrap_or_default()
        );
    } else {
        outln!(
            "bounces: {}  hard: {}  soft: {}  sender-side: {}  not bounces: {}",
            report.bounce_messages(),
            report.hard,
            report.soft,
            report.sender_side,
            report.not_bounces
        );
    }
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// `mailout unsuppress`: a bounce or manual suppression lifted; a member's own
/// unsubscribe never: only they can undo it, on their preferences page.
pub fn unsuppress(options: &Options, args: Unsuppress) -> Result<ExitCode, Error> {
    let workspace = Workspace::open(options)?;
    let mut refused = false;
    for raw in &args.addresses {
        let email = mailout::consent::address(raw)?;
        match mailout::consent::lift(&workspace, &email, &args.reason)? {
            Lifted::NotSuppressed => outln!("{email} is not suppressed"),
            Lifted::Theirs(reason) => {
                refused = true;
                errln!(
                    "error: {email} is suppressed because they asked ({reason}); only they can undo that, with the Re-subscribe button on their preferences page (the link in any bulletin's footer, or emailed to them from /p/ on the unsubscribe host)"
                );
            }
            Lifted::Lifted(s) => outln!(
                "{email}: no longer suppressed (was {}{}); reason: {}",
                s.reason,
                s.detail
                    .map(|d| format!(": {}", cell(&d, 100)))
                    .unwrap_or_default(),
                args.reason
            ),
        }
    }
    Ok(if refused {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
