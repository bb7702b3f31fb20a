//! The `mailout` command line: parses arguments, calls the library, prints results and
//! maps errors to exit codes (0 ok, 1 error, 2 finished with some recipients failed).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use mailout::workspace::{Options, Workspace};
use mailout::{Error, outbox, render::templates};

/// Draft, send and archive an organisation's numbered email bulletins.
#[derive(Parser, Debug)]
#[command(name = "mailout", version, about, propagate_version = true)]
struct Cli {
    /// The organisation's config file.
    #[arg(long, global = true, value_name = "PATH", env = "MAILOUT_CONFIG")]
    config: Option<PathBuf>,

    /// The store: a SQLite file (default from the config).
    #[arg(long, global = true, value_name = "PATH|URL", env = "MAILOUT_STORE")]
    store: Option<String>,

    /// Log more (repeat for more detail).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start a bulletin file for the next free number.
    New {
        /// Folder for bulletin files.
        #[arg(long, default_value = "bulletins")]
        dir: PathBuf,
        /// Use this number instead of the next free one.
        #[arg(long)]
        number: Option<u32>,
    },
    /// Report every mistake in bulletin files, as FILE:LINE:COL.
    Check {
        /// Bulletin files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Build bulletins into OUTBOX/<number>/bulletin.{html,txt,eml}.
    Build {
        /// Bulletin files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Where built mailouts go.
        #[arg(long, default_value = outbox::DEFAULT_DIR)]
        outbox: PathBuf,
    },
    /// Work with the templates.
    Templates {
        #[command(subcommand)]
        command: TemplatesCommand,
    },
}

#[derive(Subcommand, Debug)]
enum TemplatesCommand {
    /// Copy the built-in templates out, to edit them.
    Export {
        /// Where to write them.
        #[arg(default_value = templates::DIR)]
        dir: PathBuf,
        /// Overwrite files that exist.
        #[arg(long)]
        force: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            report(&e);
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode, Error> {
    let options = Options {
        config: cli.config,
        store: cli.store,
    };
    match cli.command {
        Command::Templates {
            command: TemplatesCommand::Export { dir, force },
        } => {
            for path in templates::export(&dir, force)? {
                println!("{}", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::New { dir, number } => {
            let workspace = Workspace::open(&options)?;
            let (_, path) = workspace.new_bulletin(&dir, number)?;
            println!("{}", path.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { files } => {
            let workspace = Workspace::open(&options)?;
            let mut failed = false;
            for file in &files {
                let checked = workspace.check(file)?;
                for d in &checked.diagnostics {
                    eprintln!("{d}");
                }
                if checked.errors() > 0 {
                    failed = true;
                } else {
                    let number = checked
                        .number
                        .map(|n| format!(", number {n}"))
                        .unwrap_or_default();
                    println!(
                        "{}: ok ({} section{}{number})",
                        file.display(),
                        checked.sections,
                        if checked.sections == 1 { "" } else { "s" }
                    );
                }
            }
            Ok(if failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Build { files, outbox } => {
            let workspace = Workspace::open(&options)?;
            for file in &files {
                let built = workspace.build(file, &outbox)?;
                for path in [&built.html, &built.text, &built.eml] {
                    println!("{}", path.display());
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Prints `error: …` and one `caused by: …` per source; file problems print in full first.
fn report(error: &Error) {
    for d in error.diagnostics() {
        eprintln!("{d}");
    }
    eprintln!("error: {error}");
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        eprintln!("caused by: {cause}");
        source = cause.source();
    }
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("MAILOUT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
