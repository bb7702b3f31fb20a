//! A fluent helper around the real binary in a temporary folder (after mdBook's `BookTest`
//! and just's `Test`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository, for copying its samples.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A temporary organisation folder, with its store in a SQLite file there (the default) or
/// in a PostgreSQL schema of its own ([`Test::on`]).
pub struct Test {
    dir: tempfile::TempDir,
    schema: Option<String>,
}

/// Which store a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `mailout.sqlite` in the test's folder.
    Sqlite,
    /// A schema of its own in the database `MAILOUT_TEST_PG` names.
    Postgres,
}

impl Backend {
    /// PostgreSQL when `MAILOUT_TEST_PG` holds a URL; otherwise reports the test skipped
    /// ([`skip`]) and gives `None`.
    pub fn postgres() -> Option<Backend> {
        match pg_url() {
            Some(_) => Some(Backend::Postgres),
            None => {
                skip("MAILOUT_TEST_PG is not set (scripts/test starts PostgreSQL and sets it)");
                None
            }
        }
    }
}

/// Reports that the running test cannot do its work here, and why (a server or data it
/// needs is missing): a line `SKIPPED test: reason` on stderr and the same in the file
/// `MAILOUT_SKIP_LOG` names (`scripts/test` counts them). Under `CI=true` the test then
/// fails. The caller returns after it.
#[track_caller]
pub fn skip(reason: &str) {
    use std::io::Write;
    // The test harness runs each test on a thread named after it.
    let test = std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string();
    let ci = std::env::var("CI").as_deref() == Ok("true");
    // Straight to stderr, past the test harness's capture, so that a plain `cargo test`
    // shows it too.
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {reason}");
    if let Some(log) = std::env::var_os("MAILOUT_SKIP_LOG") {
        let outcome = if ci { "failed" } else { "skipped" };
        let line = format!("{test}\t{reason}\t{outcome}\n");
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .and_then(|mut file| file.write_all(line.as_bytes()))
            .unwrap_or_else(|e| panic!("writing to {}: {e}", log.to_string_lossy()));
    }
    assert!(
        !ci,
        "{test} cannot run: {reason} (under CI=true a skip is a failure)"
    );
}

/// The test database's URL, from `MAILOUT_TEST_PG`.
pub fn pg_url() -> Option<String> {
    std::env::var("MAILOUT_TEST_PG")
        .ok()
        .filter(|u| !u.trim().is_empty())
}

/// Runs the test body once on SQLite and once on PostgreSQL (when `MAILOUT_TEST_PG` is set;
/// otherwise the PostgreSQL run reports a skip): `on_both! { fn name(backend) { … } }`
/// makes `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! on_both {
    ($(fn $name:ident($backend:ident) $body:block)*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[allow(unused_imports)]
            use $crate::harness::Backend;

            fn body($backend: Backend) $body

            #[test]
            fn sqlite() {
                body(Backend::Sqlite)
            }

            #[test]
            fn postgres() {
                if let Some(backend) = Backend::postgres() {
                    body(backend)
                }
            }
        }
    )*};
}

/// A fresh schema name for one test.
fn fresh_schema() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // Random, so that a schema left by a killed run is never taken up again.
    let random = u32::from_le_bytes(mailout::clock::random_bytes().expect("random bytes"));
    format!(
        "t_{}_{}_{random:x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

impl Drop for Test {
    fn drop(&mut self) {
        if let (Some(schema), Some(url)) = (&self.schema, pg_url())
            && let Ok(mut client) = postgres::Client::connect(&url, postgres::NoTls)
        {
            let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
        }
    }
}

/// Internal formatting that must never reach a person: Rust's `Debug` of an `Option`, a
/// `Result`, or the send outcomes.
const NOT_FOR_PEOPLE: &[&str] = &[
    "Some(",
    "None)",
    "Err(",
    "Ok(",
    "Temporary(",
    "Permanent(",
    "Uncertain(",
    "Broken(",
];

/// Every run of every test goes through here: a panic (exit 101) is a bug whatever the
/// input, and what mailout writes is sentences, never internal formatting. Commands that
/// print archived mail as it came (`archive show`, `--raw`, `export`) are checked on stderr
/// only.
#[track_caller]
fn assert_for_people(args: &[&str], run: &Run) {
    assert_ne!(
        run.code, 101,
        "mailout {args:?} panicked\nstdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    let shows_mail = args.iter().any(|a| ["show", "--raw", "export"].contains(a));
    let mut streams = vec![("stderr", &run.stderr)];
    if !shows_mail {
        streams.push(("stdout", &run.stdout));
    }
    for (name, text) in streams {
        for bad in NOT_FOR_PEOPLE {
            assert!(
                !text.contains(bad),
                "mailout {args:?} printed `{bad}` on {name}:\n{text}"
            );
        }
    }
}

/// What a run printed and returned.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// What a command run without a config says first, once, on stderr.
pub const DEMO_NOTICE: &str = "note: no `config/mailout.toml` here, so this uses the demo organisation (Example Union, built-in defaults); run `mailout init` to set up your own\n";

impl Run {
    /// Checks that stderr starts with the demo notice, once, and takes it off, for a test
    /// that runs without a config and looks at what else is said.
    #[track_caller]
    pub fn after_demo_notice(mut self) -> Run {
        assert!(
            self.stderr.starts_with(DEMO_NOTICE),
            "no demo notice first:\n{}",
            self.stderr
        );
        self.stderr = self.stderr[DEMO_NOTICE.len()..].to_string();
        assert!(
            !self.stderr.contains("demo organisation"),
            "the demo notice twice:\n{}",
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn success(self) -> Run {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn code(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

impl Test {
    /// An empty folder: no config, so built-in defaults apply.
    pub fn new() -> Test {
        Test {
            dir: tempfile::tempdir().expect("temp dir"),
            schema: None,
        }
    }

    /// A folder with the repository's `config/` and `examples/`, as a union would have.
    pub fn with_examples() -> Test {
        let t = Test::new();
        for folder in ["config", "examples"] {
            copy_dir(&repo().join(folder), &t.path().join(folder));
        }
        t
    }

    /// Puts this test's store on `backend` (call it before the first run).
    pub fn on(mut self, backend: Backend) -> Test {
        if backend == Backend::Postgres {
            self.schema = Some(fresh_schema());
        }
        self
    }

    /// The store this test's runs use: `--store` for the commands that need it spelled out.
    pub fn store_location(&self) -> String {
        match (&self.schema, pg_url()) {
            (Some(schema), Some(url)) => {
                let join = if url.contains('?') { '&' } else { '?' };
                format!("{url}{join}schema={schema}")
            }
            _ => "mailout.sqlite".into(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(self, name: &str, text: &str) -> Test {
        let path = self.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
        self
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path().join(name))
            .unwrap_or_else(|e| panic!("reading {name}: {e}"))
    }

    pub fn bytes(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path().join(name)).unwrap_or_else(|e| panic!("reading {name}: {e}"))
    }

    pub fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mailout"));
        command
            .current_dir(self.path())
            .env_remove("MAILOUT_CONFIG")
            .env_remove("MAILOUT_STORE")
            .env_remove("MAILOUT_LOG")
            .env("MAILOUT_TOKEN_SECRET", "integration-test-secret")
            .env("SOURCE_DATE_EPOCH", "1795000000");
        if self.schema.is_some() {
            command.env("MAILOUT_STORE", self.store_location());
        }
        command
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_command(self.command().args(args))
    }

    /// Runs `command` (from [`Test::command`], with changes of the test's own).
    pub fn run_command(&self, command: &mut Command) -> Run {
        let Output {
            status,
            stdout,
            stderr,
        } = command.output().expect("run mailout");
        let run = Run {
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8(stdout).expect("utf-8 stdout"),
            stderr: String::from_utf8(stderr).expect("utf-8 stderr"),
        };
        let args: Vec<String> = command
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_for_people(&args, &run);
        run
    }

    /// [`Test::run`] without the harness's `MAILOUT_TOKEN_SECRET`, so the folder's
    /// `.mailout.env` (or the store) supplies the secret.
    pub fn run_without_secret(&self, args: &[&str]) -> Run {
        self.run_command(self.command().env_remove("MAILOUT_TOKEN_SECRET").args(args))
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path().join(name)
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The example bulletins, by file name.
pub fn examples() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo().join("examples/bulletins"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    names.sort();
    names
}

/// The number a bulletin file sets.
pub fn number_of(name: &str) -> String {
    name.split('-').next().unwrap().to_string()
}

impl Test {
    /// Appends `text` to the file `name`.
    pub fn append(self, name: &str, text: &str) -> Test {
        let mut current = std::fs::read_to_string(self.path().join(name)).unwrap_or_default();
        current.push_str(text);
        self.write(name, &current)
    }

    /// Writes `members.csv` with `n` members `member00000@members.test`…, spread over four
    /// employers and four branches, and imports it.
    pub fn with_members(self, n: usize) -> Test {
        let employers = ["NPS", "Cafcass", "PbNI", "CRC"];
        let branches = ["London", "Wales", "Yorkshire", "Midlands"];
        let mut csv = String::from("email,name,branch,employer\n");
        for i in 0..n {
            csv.push_str(&format!(
                "member{i:05}@members.test,Member{i} Surname,{},{}\n",
                branches[i % 4],
                employers[(i / 4) % 4]
            ));
        }
        let t = self.write("members.csv", &csv);
        t.run(&["members", "import", "members.csv"]).success();
        t
    }

    /// Points `[smtp]` at 127.0.0.1:`port` in plain text, with `extra` keys.
    pub fn with_smtp(self, port: u16, extra: &str) -> Test {
        self.append(
            "config/mailout.toml",
            &format!("\n[smtp]\nurl = \"smtp://127.0.0.1:{port}?tls=none\"\n{extra}\n"),
        )
    }
}

/// The secret the harness gives every run for unsubscribe tokens.
pub const TOKEN_SECRET: &str = "integration-test-secret";

impl Test {
    /// Points `[smtp]` at `url`.
    pub fn with_smtp_url(self, url: &str) -> Test {
        self.append(
            "config/mailout.toml",
            &format!("\n[smtp]\nurl = \"{url}\"\n"),
        )
    }
}

impl Test {
    /// Checks that this test's runs really used `backend`: on SQLite the file is in the
    /// folder; on PostgreSQL no SQLite file appeared and the test's schema holds tables.
    #[track_caller]
    pub fn assert_store_on(&self, backend: Backend) {
        let file = self.file("mailout.sqlite");
        match backend {
            Backend::Sqlite => assert!(file.exists(), "no store at {}", file.display()),
            Backend::Postgres => {
                assert!(
                    !file.exists(),
                    "a PostgreSQL test wrote {}: MAILOUT_STORE was not used",
                    file.display()
                );
                let schema = self.schema.as_deref().expect("Test::on(Backend::Postgres)");
                let url = pg_url().expect("MAILOUT_TEST_PG");
                let mut client = postgres::Client::connect(&url, postgres::NoTls)
                    .expect("connect to MAILOUT_TEST_PG");
                let tables: i64 = client
                    .query_one(
                        "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1",
                        &[&schema],
                    )
                    .expect("count the schema's tables")
                    .get(0);
                assert!(tables > 0, "schema {schema} holds no tables");
            }
        }
    }
}
