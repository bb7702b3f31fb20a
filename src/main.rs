//! The `mailout` command line: parses arguments and dispatches to a command module in
//! [`cli`], which calls the library and prints; maps errors to exit codes (0 ok, 1 error,
//! 2 finished with some recipients failed or uncertain).

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use cli::output::errln;
use cli::{archive, bounces, draft, init, roster, seeds, send, serve, store};
use mailout::Error;
use mailout::report::Reporter;
use mailout::runtime::Runtime;
use mailout::workspace::Options;

/// Draft, send and archive an organisation's numbered email bulletins.
#[derive(Parser, Debug)]
#[command(name = "mailout", version, about, propagate_version = true)]
struct Cli {
    /// The organisation's config file [default: config/mailout.toml].
    #[arg(long, global = true, value_name = "PATH", env = "MAILOUT_CONFIG")]
    config: Option<PathBuf>,

    /// The store: a SQLite file or a postgres:// URL [default: [store] path, mailout.sqlite].
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
    /// Set up a folder for a new organisation: a commented config, bulletins/, a sample
    /// members.csv, a token secret in .mailout.env, and a .gitignore.
    Init(init::Init),
    /// Start a bulletin file for the next free number.
    New(draft::New),
    /// Report every mistake in bulletin files, as FILE:LINE:COL, and the pre-send warnings.
    Check(draft::Check),
    /// Build bulletins into OUTBOX/<number>/bulletin.{html,txt,eml}.
    Build(draft::Build),
    /// Work with the templates.
    Templates {
        #[command(subcommand)]
        command: draft::Templates,
    },
    /// Send a bulletin: one personal copy per selected member.
    Send(Box<send::Send>),
    /// Approve a bulletin's content as it is now ([approval] required).
    Approve(draft::Approve),
    /// The approvals of a bulletin, and whether they still hold.
    Approvals(draft::Approvals),
    /// Send for running jobs, beside other workers on this or other machines.
    Worker(send::Worker),
    /// Live send workers: host, pid, rows claimed, copies sent, last heartbeat.
    Workers,
    /// Seed mailboxes that confirm arrival ([seeds]).
    Seeds {
        #[command(subcommand)]
        command: seeds::SeedsCommand,
    },
    /// The store itself.
    Store {
        #[command(subcommand)]
        command: store::StoreCommand,
    },
    /// The member roster.
    Members {
        #[command(subcommand)]
        command: roster::Members,
    },
    /// Every branch, employer and named list, with its member count.
    Lists,
    /// Never send to these addresses again.
    Unsubscribe(roster::Unsubscribe),
    /// Read mail sent to the unsubscribe address; unsubscribe the members it verifies.
    Unsubscribes(roster::Unsubscribes),
    /// Addresses that are never sent to, and why.
    Suppressed,
    /// Send jobs, newest first.
    Jobs,
    /// One send job: its state, its failures and its uncertain copies.
    Job(send::JobArgs),
    /// Import received mail into the archive: .eml files, folders, mbox, Maildir, or IMAP.
    Import(archive::Import),
    /// The archive of received mail.
    Archive {
        #[command(subcommand)]
        command: archive::ArchiveCommand,
    },
    /// Read delivery status notifications: suppress addresses that do not work, count
    /// soft failures, report problems with our own sending (exit 2).
    Bounces(bounces::Bounces),
    /// Lift a bounce or manual suppression (a member's own unsubscribe only with --force).
    Unsuppress(bounces::Unsuppress),
    /// The one-click unsubscribe endpoint.
    Serve(serve::Serve),
    /// A live page while drafting: HTML and text side by side, per audience; it rebuilds
    /// when the bulletin, a template or the config changes.
    Preview(draft::Preview),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::output::init_tracing(cli.verbose);
    // The process's one async runtime, built when a command first needs it.
    let runtime = Runtime::new();
    let code = match run(cli, &runtime) {
        Ok(code) => code,
        Err(e) => {
            cli::output::report(&e);
            ExitCode::from(1)
        }
    };
    runtime.shutdown();
    if cli::output::stdout_failed() {
        errln!("error: could not write the output");
        return ExitCode::from(1);
    }
    code
}

fn run(cli: Cli, rt: &Runtime) -> Result<ExitCode, Error> {
    let options = Options {
        config: cli.config,
        store: cli.store,
        report: Reporter::new(cli::output::Terminal::new()),
    };
    let o = &options;
    // The config is not read by these two; every other command says once when it falls
    // back to the demo organisation.
    let reads_config = !matches!(cli.command, Command::Init(_) | Command::Templates { .. });
    if reads_config && options.uses_demo() {
        init::demo_notice();
    }
    match cli.command {
        Command::Init(args) => init::init(args),
        Command::New(args) => draft::new(o, args),
        Command::Check(args) => draft::check(o, args),
        Command::Build(args) => draft::build(o, args),
        Command::Templates { command } => draft::templates(command),
        Command::Preview(args) => draft::preview(options, args, rt),
        Command::Approve(args) => draft::approve(o, args),
        Command::Approvals(args) => draft::approvals(o, args),
        Command::Send(args) => send::send(o, *args, rt),
        Command::Worker(args) => send::worker(o, args, rt),
        Command::Workers => send::workers(o),
        Command::Jobs => send::jobs(o),
        Command::Job(args) => send::job(o, args),
        Command::Seeds { command } => seeds::seeds(o, command, rt),
        Command::Store { command } => store::store(o, command),
        Command::Members { command } => roster::members(o, command),
        Command::Lists => roster::lists(o),
        Command::Unsubscribe(args) => roster::unsubscribe(o, args),
        Command::Unsubscribes(args) => roster::unsubscribes(o, args, rt),
        Command::Suppressed => roster::suppressed(o),
        Command::Import(args) => archive::import(o, args, rt),
        Command::Archive { command } => archive::archive(o, command),
        Command::Bounces(args) => bounces::bounces(o, args, rt),
        Command::Unsuppress(args) => bounces::unsuppress(o, args),
        Command::Serve(args) => serve::serve(o, args, rt),
    }
}
