//! The journal's thread: one store connection that reads pending rows in batches and writes
//! delivery results with group commit. A worker waits for its result to be committed before
//! it takes the next recipient, so after a crash at most one copy per worker (the ones in
//! flight) can go out twice.

use std::sync::mpsc;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use crate::error::{Error, Result};
use crate::store::{self, Entry, Mark};

enum Command {
    Fetch {
        job: i64,
        after: i64,
        limit: usize,
        reply: oneshot::Sender<Result<Vec<Entry>>>,
    },
    Mark {
        mark: Mark,
        reply: oneshot::Sender<Result<()>>,
    },
}

/// A handle to the journal thread. Cloning it shares the thread.
#[derive(Clone)]
pub struct Journal {
    tx: mpsc::Sender<Command>,
    job: i64,
}

/// The thread itself; join it after the last handle is dropped.
pub struct JournalThread(JoinHandle<()>);

impl JournalThread {
    /// Waits for the thread to finish its last commit.
    pub fn join(self) {
        let _ = self.0.join();
    }
}

/// Most results committed in one transaction.
const GROUP: usize = 512;

impl Journal {
    /// Opens the store at `location` on a new thread, for job `job`.
    pub fn start(location: &str, job: i64) -> Result<(Journal, JournalThread)> {
        let store = store::open(location)?;
        let (tx, rx) = mpsc::channel::<Command>();
        let handle = std::thread::Builder::new()
            .name("journal".into())
            .spawn(move || run(store, rx))
            .map_err(|e| Error::Usage(format!("could not start the journal thread: {e}")))?;
        Ok((Journal { tx, job }, JournalThread(handle)))
    }

    /// Up to `limit` pending rows after `after`, in order.
    pub async fn fetch(&self, after: i64, limit: usize) -> Result<Vec<Entry>> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Fetch {
                job: self.job,
                after,
                limit,
                reply,
            })
            .map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }

    /// Records `mark` and returns once it is committed.
    pub async fn mark(&self, mark: Mark) -> Result<()> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Mark { mark, reply })
            .map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }

    /// The job this journal belongs to.
    pub fn job(&self) -> i64 {
        self.job
    }
}

fn gone() -> Error {
    Error::Usage("the journal thread stopped".into())
}

fn run(store: Box<dyn store::Store>, rx: mpsc::Receiver<Command>) {
    let mut marks = Vec::with_capacity(GROUP);
    let mut replies = Vec::with_capacity(GROUP);
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(command) = next.take() {
            match command {
                Command::Fetch {
                    job,
                    after,
                    limit,
                    reply,
                } => {
                    let _ = reply.send(store.pending(job, after, limit));
                }
                Command::Mark { mark, reply } => {
                    marks.push(mark);
                    replies.push(reply);
                    // Gather every result already waiting into the same transaction.
                    while marks.len() < GROUP {
                        match rx.try_recv() {
                            Ok(Command::Mark { mark, reply }) => {
                                marks.push(mark);
                                replies.push(reply);
                            }
                            Ok(other) => {
                                next = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    let result = store.mark(&marks);
                    for reply in replies.drain(..) {
                        let _ = reply.send(match &result {
                            Ok(()) => Ok(()),
                            Err(e) => Err(Error::Usage(format!(
                                "the journal could not be written: {e}"
                            ))),
                        });
                    }
                    marks.clear();
                }
            }
        }
    }
}
