//! mailout drafts, sends and archives an organisation's numbered email bulletins.
//!
//! The compose flow, one module per step:
//! [`bulletin`] (the TOML file, validated with places) → [`edition`] (numbered, resolved) →
//! [`render`] (HTML and text from handlebars templates) → [`message`] (personal MIME copies)
//! → [`outbox`] (files on disk) → [`send`] (the job's journal, worked through over SMTP,
//! sendmail or files). [`members`] holds the roster and list selection, [`numbering`] and
//! [`store`] the series' history; [`serve`] answers unsubscribe links; [`workspace`] ties
//! them together for the command line.

#![warn(missing_docs)]

pub mod address;
pub mod approval;
pub mod archive;
pub mod bounces;
pub mod bulletin;
pub mod clock;
pub mod config;
pub mod consent;
pub mod diagnostic;
pub mod dkim;
pub mod edition;
pub mod env_file;
pub mod error;
pub mod host;
pub mod init;
pub mod inputs;
pub mod lint;
pub mod members;
pub mod message;
pub mod numbering;
pub mod outbox;
pub mod preview;
pub mod recipient;
pub mod render;
pub mod report;
pub mod runtime;
pub mod search;
pub mod seeds;
pub mod send;
pub mod serve;
pub mod store;
pub mod suggest;
#[cfg(test)]
mod testing;
pub mod text;
pub mod tls;
pub mod token;
pub mod toml_file;
pub mod unsubscribes;
pub mod workspace;

pub use error::{Error, Result};
