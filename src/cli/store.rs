//! `mailout store migrate`: this SQLite store into an empty PostgreSQL database.

use std::process::ExitCode;

use clap::Subcommand;
use mailout::Error;
use mailout::workspace::{Options, Workspace};

use super::output::{errln, outln, print_table};

/// `mailout store …`
#[derive(Subcommand, Debug)]
pub enum StoreCommand {
    /// Copy this SQLite store into an empty PostgreSQL database, and check the counts.
    Migrate {
        /// The PostgreSQL database: postgres://USER@HOST:PORT/DB (password in the URL or
        /// in [store] password_env).
        #[arg(long, value_name = "URL")]
        to: String,
    },
}

/// `mailout store migrate`.
pub fn store(options: &Options, command: StoreCommand) -> Result<ExitCode, Error> {
    let StoreCommand::Migrate { to } = command;
    let workspace = Workspace::open(options)?;
    let report = workspace.migrate_store(&to, &mut |table, n| {
        errln!(
            "copied {} of {table}",
            mailout::text::count(n, "row", "rows")
        )
    })?;
    let mut rows = vec![["TABLE", "SQLITE", "POSTGRESQL"].map(String::from).to_vec()];
    for (table, from, to) in &report.tables {
        rows.push(vec![table.to_string(), from.to_string(), to.to_string()]);
    }
    print_table(&rows);
    outln!(
        "migrated to {}; set `[store] path` to it (or pass --store) and run the same commands",
        mailout::store::redact(&to)
    );
    Ok(ExitCode::SUCCESS)
}
