//! The PostgreSQL backend (being written).

use super::{Store, redact};
use crate::error::{Error, Result};

/// Connects to `url`, creating and migrating the schema as needed.
pub fn open(url: &str, _password_env: &str) -> Result<Box<dyn Store>> {
    Err(Error::Usage(format!("{}: not yet", redact(url))))
}
