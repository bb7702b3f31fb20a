//! Drafting commands: `new`, `check`, `build`, `templates export`, `preview`, `approve`
//! and `approvals`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use mailout::runtime::Runtime;
use mailout::workspace::{Options, Workspace};
use mailout::{Error, outbox, render::templates};

use super::output::{errln, outln, print_table};

/// `mailout new`
#[derive(Args, Debug)]
pub struct New {
    /// Folder for bulletin files.
    #[arg(long, default_value = "bulletins")]
    dir: PathBuf,
    /// Use this number instead of the next free one.
    #[arg(long)]
    number: Option<u32>,
}

/// `mailout check`
#[derive(Args, Debug)]
pub struct Check {
    /// Bulletin files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Treat the pre-send warnings as errors (exit 1).
    #[arg(long)]
    strict: bool,
}

/// `mailout build`
#[derive(Args, Debug)]
pub struct Build {
    /// Bulletin files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Where built mailouts go.
    #[arg(long, default_value = outbox::DEFAULT_DIR)]
    outbox: PathBuf,
}

/// `mailout templates …`
#[derive(Subcommand, Debug)]
pub enum Templates {
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

/// `mailout preview`
#[derive(Args, Debug)]
pub struct Preview {
    /// The bulletin file.
    file: PathBuf,
    /// Address to listen on (loopback by default; port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8026")]
    listen: SocketAddr,
}

/// `mailout approve`
#[derive(Args, Debug)]
pub struct Approve {
    /// The bulletin file.
    file: PathBuf,
    /// Who approves.
    #[arg(long = "as", value_name = "NAME")]
    name: String,
}

/// `mailout approvals`
#[derive(Args, Debug)]
pub struct Approvals {
    /// The bulletin file.
    file: PathBuf,
}

/// `mailout new`: a skeleton for the next free number.
pub fn new(options: &Options, args: New) -> Result<ExitCode, Error> {
    let workspace = Workspace::open_draft(options)?;
    let (_, path) = workspace.new_bulletin(&args.dir, args.number)?;
    outln!("{}", path.display());
    Ok(ExitCode::SUCCESS)
}

/// `mailout check`: every problem with its place, then `FILE: ok (…)`.
pub fn check(options: &Options, args: Check) -> Result<ExitCode, Error> {
    let workspace = Workspace::open(options)?;
    let mut failed = false;
    // A warning about sending rather than about a file: once, without a place.
    for warning in workspace.send_warnings(workspace.config.smtp.is_some())? {
        let severity = if args.strict { "error" } else { "warning" };
        errln!("{severity}: {warning}");
        failed |= args.strict;
    }
    for file in &args.files {
        let mut checked = workspace.check(file)?;
        if args.strict {
            mailout::lint::make_errors(&mut checked.diagnostics);
        }
        for d in &checked.diagnostics {
            errln!("{d}");
        }
        if checked.errors() > 0 {
            failed = true;
        } else {
            let number = checked
                .number
                .map(|n| format!(", number {n}"))
                .unwrap_or_default();
            let warnings = match checked.warnings() {
                0 => String::new(),
                1 => ", 1 warning".to_string(),
                n => format!(", {n} warnings"),
            };
            outln!(
                "{}: ok ({} section{}{number}{warnings})",
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

/// `mailout build`: the built files' paths.
pub fn build(options: &Options, args: Build) -> Result<ExitCode, Error> {
    let workspace = Workspace::open_draft(options)?;
    for file in &args.files {
        let built = workspace.build(file, &args.outbox)?;
        for path in [&built.html, &built.text, &built.eml] {
            outln!("{}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `mailout templates export`.
pub fn templates(command: Templates) -> Result<ExitCode, Error> {
    let Templates::Export { dir, force } = command;
    for path in templates::export(&dir, force)? {
        outln!("{}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `mailout preview`: serves on `runtime` until Ctrl-C.
pub fn preview(options: Options, args: Preview, runtime: &Runtime) -> Result<ExitCode, Error> {
    let preview = mailout::preview::Preview::start(options, args.file)?;
    runtime.block_on(preview.serve(args.listen, |bound| {
        if !bound.ip().is_loopback() {
            errln!("warning: the preview is open to the network on {bound}");
        }
        outln!("preview: http://{bound}/");
    }))??;
    Ok(ExitCode::SUCCESS)
}

/// `mailout approve`.
pub fn approve(options: &Options, args: Approve) -> Result<ExitCode, Error> {
    let workspace = Workspace::open(options)?;
    let status = mailout::approval::approve(&workspace, &args.file, &args.name)?;
    outln!(
        "approved `{}` as {} (content {}); {} of {} required",
        args.file.display(),
        args.name.trim(),
        &status.content_hash[..12],
        status.valid(),
        status.required
    );
    Ok(ExitCode::SUCCESS)
}

/// `mailout approvals`.
pub fn approvals(options: &Options, args: Approvals) -> Result<ExitCode, Error> {
    let workspace = Workspace::open_read_only(options)?;
    let status = mailout::approval::status(&workspace, &args.file)?;
    let mut rows = vec![
        ["NAME", "AT", "CONTENT", "STATE"]
            .map(String::from)
            .to_vec(),
    ];
    for (a, current) in &status.approvals {
        rows.push(vec![
            a.name.clone(),
            a.at.clone(),
            a.content_hash[..12.min(a.content_hash.len())].to_string(),
            if *current {
                "valid"
            } else {
                "void: changed since"
            }
            .to_string(),
        ]);
    }
    print_table(&rows);
    outln!(
        "content now {}: {} of {} required approvals",
        &status.content_hash[..12],
        status.valid(),
        status.required
    );
    Ok(ExitCode::SUCCESS)
}
