//! `mailout init`: sets up a folder for a new organisation and says what to do next; and
//! the notice every other command gives when it finds no config and uses the demo.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use mailout::Error;
use mailout::init::{self, Done, FIRST_NUMBER};

use super::output::{cell, errln, outln};

/// `mailout init`
#[derive(Args, Debug)]
pub struct Init {
    /// The folder to set up (created if missing).
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Replace an existing config/mailout.toml (the roster, the secret and the bulletins
    /// are always kept).
    #[arg(long)]
    force: bool,
}

/// Said once, on stderr, by a command that finds no config file.
pub const DEMO_NOTICE: &str = "note: no `config/mailout.toml` here, so this uses the demo organisation (Example Union, built-in defaults); run `mailout init` to set up your own";

/// Prints [`DEMO_NOTICE`].
pub fn demo_notice() {
    errln!("{DEMO_NOTICE}");
}

/// The widest a path is shown (a hostile folder name cannot flood the terminal).
const PATH_WIDTH: usize = 1024;

/// `mailout init`: what was written, then the next steps.
pub fn init(args: Init) -> Result<ExitCode, Error> {
    let steps = init::init(&args.dir, args.force)?;
    let rows: Vec<(&str, String, &str)> = steps
        .iter()
        .map(|s| {
            let verb = match s.done {
                Done::Created => "wrote",
                Done::Replaced => "replaced",
                Done::Kept => "kept",
                Done::Extended => "added to",
            };
            (
                verb,
                cell(&s.path.display().to_string(), PATH_WIDTH),
                s.about,
            )
        })
        .collect();
    let width = rows
        .iter()
        .map(|(_, path, _)| path.chars().count())
        .max()
        .unwrap_or(0);
    for (verb, path, about) in &rows {
        let pad = width - path.chars().count();
        outln!("{verb:<8} {path}{:pad$}  {about}", "");
    }
    let n = FIRST_NUMBER;
    let bulletin = format!("bulletins/{n}.toml");
    outln!();
    outln!("Next steps:");
    if args.dir != Path::new(".") {
        outln!(
            "  cd {}",
            cell(
                &shell_quote(&cd_path(&args.dir.to_string_lossy())),
                PATH_WIDTH
            )
        );
    }
    let lines = [
        ("mailout new".to_string(), format!("writes {bulletin}")),
        (
            format!("mailout check {bulletin}"),
            "every mistake, with its line".to_string(),
        ),
        (
            format!("mailout build {bulletin}"),
            format!("outbox/{n}/bulletin.{{html,txt,eml}}"),
        ),
        (
            "mailout members import members.csv".to_string(),
            "the sample members; then your own roster".to_string(),
        ),
        (
            format!("mailout send {bulletin} --to all --dry-run"),
            "who would receive it".to_string(),
        ),
    ];
    for (command, comment) in lines {
        outln!("  {command:<50} # {comment}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `dir` as `cd` takes it: a relative path that starts with `-` gets `./` in front, so
/// that `cd` does not read it as an option (`cd -` goes back to the last folder).
fn cd_path(dir: &str) -> String {
    if dir.starts_with('-') {
        format!("./{dir}")
    } else {
        dir.to_string()
    }
}

/// `text` as one word for a POSIX shell: as it is when it is plain, else in single quotes.
fn shell_quote(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./+,:@%".contains(c));
    if plain {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::{cd_path, shell_quote};

    #[test]
    fn a_folder_named_like_an_option_is_not_one_to_cd() {
        assert_eq!(cd_path("-"), "./-");
        assert_eq!(cd_path("-P union"), "./-P union");
        assert_eq!(cd_path("union"), "union");
        assert_eq!(cd_path("/srv/-union"), "/srv/-union");
    }

    #[test]
    fn quotes_what_a_shell_would_split() {
        assert_eq!(shell_quote("union"), "union");
        assert_eq!(shell_quote("../my-union"), "../my-union");
        assert_eq!(shell_quote("my union"), "'my union'");
        assert_eq!(shell_quote("Jo's union"), r"'Jo'\''s union'");
        assert_eq!(shell_quote(""), "''");
    }
}
