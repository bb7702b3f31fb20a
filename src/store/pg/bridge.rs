//! The database thread: the sync `postgres` client lives on a thread of its own, and every
//! call is a closure sent to it over a channel; its connection, prepared statements,
//! transactions, and how its session's commits wait for the disk ([`Commits`]).

use std::borrow::Cow;
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::mpsc;

use postgres::types::ToSql;
use postgres::{Client, GenericClient, NoTls, Row, Statement, Transaction};

use crate::error::{BoxError, Error, Result};

use super::{PgStore, quote_ident};

/// Work for the database thread.
pub(super) type Task = Box<dyn FnOnce(&mut Conn) + Send>;

/// What goes wrong on the database thread.
pub(super) enum Fail {
    /// The driver's error (classified as unreachable or not when reported).
    Pg(postgres::Error),
    /// Data the store cannot use (a number out of range, a value of the wrong type).
    Bad(BoxError),
}

impl From<postgres::Error> for Fail {
    fn from(e: postgres::Error) -> Fail {
        Fail::Pg(e)
    }
}

/// A result on the database thread.
pub(super) type Step<T> = std::result::Result<T, Fail>;

pub(super) fn bad(why: impl Into<String>) -> Fail {
    Fail::Bad(why.into().into())
}

/// Whether `e` means the connection is gone (or the server cannot take it now), so that
/// trying again later may work.
pub(super) fn lost(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.as_db_error() {
        Some(db) => {
            let code = db.code().code();
            code.starts_with("08")
                || matches!(code, "57P01" | "57P02" | "57P03" | "57P05" | "53300")
                || matches!(db.severity(), "FATAL" | "PANIC")
        }
        // No SQLSTATE: the socket, the protocol or a timeout, except for these mistakes of
        // ours or of the configuration.
        None => {
            let text = e.to_string();
            ![
                "error serializing",
                "error deserializing",
                "invalid column",
                "query returned",
                "expected ",
                "invalid configuration",
                "invalid connection string",
                "authentication error",
            ]
            .iter()
            .any(|mistake| text.starts_with(mistake))
        }
    }
}

/// The database thread's state: the connection (when there is one) and its statements.
pub(super) struct Conn {
    pub(super) config: postgres::Config,
    pub(super) schema: Option<String>,
    pub(super) location: String,
    pub(super) client: Option<Client>,
    pub(super) statements: HashMap<String, Statement>,
    /// How this session's commits wait for the disk (`synchronous_commit`) and its
    /// statements are planned: the journal's results set them (commits off under
    /// `durability = "process"`, on under `"full"`), and any other call puts the server's
    /// settings back first.
    pub(super) commits: Commits,
}

/// How a call's commits wait for the disk, and how its statements are planned.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Commits {
    /// As the server (or the connection's options) say.
    Server,
    /// The journal's results, without waiting (`synchronous_commit = off`).
    Quick,
    /// The journal's results, on disk before the call returns (`synchronous_commit = on`).
    Durable,
}

impl Commits {
    /// The results' statement ([`super::claims::MARK`]) is planned once, not at each
    /// group (`plan_cache_mode = force_generic_plan`). Left to itself, PostgreSQL plans it
    /// afresh for every group of fewer than about ten results (its generic plan reckons on
    /// ten rows from the arrays, so it looks dearer than a plan for eight); planning was
    /// about a third of the server's work in a send. The generic plan is the one every
    /// group wants whatever its size: each result finds its row by the primary key.
    fn setting(self) -> &'static str {
        match self {
            Commits::Server => "RESET synchronous_commit; RESET plan_cache_mode",
            Commits::Quick => {
                "SET synchronous_commit = off; SET plan_cache_mode = force_generic_plan"
            }
            Commits::Durable => {
                "SET synchronous_commit = on; SET plan_cache_mode = force_generic_plan"
            }
        }
    }
}

impl Conn {
    /// Runs `f` on the connection, connecting first when there is none, its commits made
    /// as `commits` says.
    pub(super) fn attempt<R>(
        &mut self,
        commits: Commits,
        f: impl FnOnce(&mut Db<'_, Client>) -> Step<R>,
    ) -> Step<R> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.client = None;
            self.statements.clear();
            self.commits = Commits::Server;
            let mut client = self.config.connect(NoTls)?;
            if let Some(schema) = &self.schema {
                client.batch_execute(&format!("SET search_path TO {}", quote_ident(schema)))?;
            }
            self.client = Some(client);
        }
        let Conn {
            client: Some(client),
            statements,
            commits: session,
            ..
        } = self
        else {
            return Err(bad("no connection"));
        };
        if *session != commits {
            // Set for the session, not in each statement: a `set_config` joined into the
            // results' statement made every group of results slower.
            client.batch_execute(commits.setting())?;
            *session = commits;
        }
        f(&mut Db {
            c: client,
            cache: statements,
        })
    }

    /// [`Conn::attempt`], with failures turned into the store's errors.
    pub(super) fn run<R>(
        &mut self,
        context: &str,
        commits: Commits,
        f: impl FnOnce(&mut Db<'_, Client>) -> Step<R>,
    ) -> Result<R> {
        match self.attempt(commits, f) {
            Ok(r) => Ok(r),
            Err(Fail::Pg(e)) if lost(&e) => {
                self.client = None;
                self.statements.clear();
                Err(Error::StoreUnreachable {
                    location: self.location.clone(),
                    source: Box::new(e),
                })
            }
            Err(Fail::Pg(e)) => Err(Error::Store {
                location: self.location.clone(),
                context: context.to_string(),
                source: Box::new(e),
            }),
            Err(Fail::Bad(source)) => Err(Error::Store {
                location: self.location.clone(),
                context: context.to_string(),
                source,
            }),
        }
    }
}

/// The database thread's loop: one task at a time until the store is dropped.
pub(super) fn serve(mut conn: Conn, tasks: mpsc::Receiver<Task>) {
    while let Ok(task) = tasks.recv() {
        if std::panic::catch_unwind(AssertUnwindSafe(|| task(&mut conn))).is_err() {
            // The connection may be mid-statement: start afresh.
            conn.client = None;
            conn.statements.clear();
        }
    }
}

/// A connection or transaction, with the connection's prepared statements.
pub(super) struct Db<'a, C> {
    pub(super) c: &'a mut C,
    pub(super) cache: &'a mut HashMap<String, Statement>,
}

pub(super) type Params<'p> = [&'p (dyn ToSql + Sync)];

impl<C: GenericClient> Db<'_, C> {
    /// The prepared statement for `sql`, prepared on first use.
    pub(super) fn statement(&mut self, sql: &str) -> Step<Statement> {
        if let Some(statement) = self.cache.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.c.prepare(sql)?;
        self.cache.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }

    pub(super) fn execute(&mut self, sql: &str, params: &Params<'_>) -> Step<u64> {
        let statement = self.statement(sql)?;
        Ok(self.c.execute(&statement, params)?)
    }

    pub(super) fn query(&mut self, sql: &str, params: &Params<'_>) -> Step<Vec<Row>> {
        let statement = self.statement(sql)?;
        Ok(self.c.query(&statement, params)?)
    }

    pub(super) fn query_one(&mut self, sql: &str, params: &Params<'_>) -> Step<Row> {
        let statement = self.statement(sql)?;
        Ok(self.c.query_one(&statement, params)?)
    }

    pub(super) fn query_opt(&mut self, sql: &str, params: &Params<'_>) -> Step<Option<Row>> {
        let statement = self.statement(sql)?;
        Ok(self.c.query_opt(&statement, params)?)
    }
}

impl Db<'_, Client> {
    /// Runs `f` in a transaction, committed when it succeeds (rolled back otherwise).
    pub(super) fn transaction<R>(
        &mut self,
        f: impl FnOnce(&mut Db<'_, Transaction<'_>>) -> Step<R>,
    ) -> Step<R> {
        let mut tx = self.c.transaction()?;
        let r = f(&mut Db {
            c: &mut tx,
            cache: &mut *self.cache,
        })?;
        tx.commit()?;
        Ok(r)
    }
}

impl PgStore {
    fn stopped(&self) -> Error {
        Error::Store {
            location: self.location.clone(),
            context: "the database thread has stopped".into(),
            source: "no answer".into(),
        }
    }

    fn send(&self, task: Task) -> Result<()> {
        self.tasks
            .as_ref()
            .ok_or_else(|| self.stopped())?
            .send(task)
            .map_err(|_| self.stopped())
    }

    /// Runs `f` on the database thread and waits for its answer.
    pub(super) fn call<R, F>(&self, context: impl Into<Cow<'static, str>>, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Db<'_, Client>) -> Step<R> + Send + 'static,
    {
        self.call_with(context, Commits::Server, f)
    }

    /// [`PgStore::call`], its commits made as `commits` says.
    pub(super) fn call_with<R, F>(
        &self,
        context: impl Into<Cow<'static, str>>,
        commits: Commits,
        f: F,
    ) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Db<'_, Client>) -> Step<R> + Send + 'static,
    {
        let context = context.into();
        let (reply, answer) = mpsc::sync_channel(1);
        self.send(Box::new(move |conn: &mut Conn| {
            let _ = reply.send(conn.run(&context, commits, f));
        }))?;
        answer.recv().map_err(|_| self.stopped())?
    }
}

impl PgStore {
    /// How the journal's results are committed: without waiting for the disk under
    /// `durability = "process"`, on disk under `"full"`.
    pub(super) fn marks_commit(&self) -> Commits {
        if self.quick_marks.load(std::sync::atomic::Ordering::Relaxed) {
            Commits::Quick
        } else {
            Commits::Durable
        }
    }

    /// [`PgStore::call_with`] without waiting: the answer comes through the returned
    /// future, so an async caller hands the call over without a thread of its own to
    /// block.
    pub(super) fn call_soon<F>(
        &self,
        context: &'static str,
        commits: Commits,
        f: F,
    ) -> crate::store::Pending
    where
        F: FnOnce(&mut Db<'_, Client>) -> Step<()> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let sent = self.send(Box::new(move |conn: &mut Conn| {
            let _ = reply.send(conn.run(context, commits, f));
        }));
        let location = self.location.clone();
        Box::pin(async move {
            sent?;
            answer.await.map_err(|_| Error::Store {
                location,
                context: context.into(),
                source: "the database thread gave no answer (the call failed)".into(),
            })?
        })
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // Closing the channel ends the thread, which closes the connection.
        self.tasks = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
