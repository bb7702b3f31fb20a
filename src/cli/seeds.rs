//! `mailout seeds check [JOB]`: did the job's copy reach each seed mailbox, and where.

use std::process::ExitCode;

use clap::Subcommand;
use mailout::Error;
use mailout::runtime::Runtime;
use mailout::seeds::Found;
use mailout::workspace::{Options, Workspace};

use super::output::{cell, errln, outln, print_table};

/// `mailout seeds …`
#[derive(Subcommand, Debug)]
pub enum SeedsCommand {
    /// Read each seed mailbox (inbox and junk) for the job's copy: inbox, junk or not
    /// arrived, with the time from send to arrival. Exit 2 when any is not in the inbox.
    Check {
        /// The job [default: the newest].
        job: Option<i64>,
        /// The answer as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `mailout seeds check`, on `runtime`.
pub fn seeds(
    options: &Options,
    command: SeedsCommand,
    runtime: &Runtime,
) -> Result<ExitCode, Error> {
    let SeedsCommand::Check { job, json } = command;
    let workspace = Workspace::open(options)?;
    let check = mailout::seeds::check(&workspace, job, runtime)?;
    if json {
        let text = serde_json::to_string_pretty(&check).map_err(|e| Error::Failed {
            context: "could not write the seed check as JSON".into(),
            source: Box::new(e),
        })?;
        outln!("{text}");
    } else {
        outln!("seeds for job {} (bulletin {}):", check.job, check.number);
        let mut rows = vec![
            ["SEED", "FOUND", "FOLDER", "DELAY"]
                .map(String::from)
                .to_vec(),
        ];
        for seed in &check.seeds {
            rows.push(vec![
                cell(&seed.address, 200),
                seed.found.as_str().to_string(),
                cell(seed.folder.as_deref().unwrap_or("-"), 80),
                seed.delay_secs.map_or("-".into(), |s| format!("{s} s")),
            ]);
        }
        print_table(&rows);
        for seed in &check.seeds {
            if let Some(note) = &seed.note {
                errln!(
                    "{}: {}: {}",
                    seed.address,
                    seed.found.as_str(),
                    cell(note, 400)
                );
            }
        }
        let mut parts = Vec::new();
        for (found, words) in [
            (Found::Inbox, "in the inbox"),
            (Found::Junk, "in junk"),
            (Found::NotArrived, "not arrived"),
            (Found::NotSent, "not sent"),
            (Found::NotChecked, "not checked"),
        ] {
            let n = check.count(found);
            if n > 0 {
                parts.push(format!("{n} {words}"));
            }
        }
        outln!("seeds: {}", parts.join(", "));
    }
    Ok(if check.count(Found::Inbox) == check.seeds.len() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}
