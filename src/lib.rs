//! mailout drafts, sends and archives an organisation's numbered email bulletins.
//!
//! The compose flow, one module per step:
//! [`bulletin`] (the TOML file, validated with places) → [`edition`] (numbered, resolved) →
//! [`render`] (HTML and text from handlebars templates) → [`message`] (personal MIME copies)
//! → [`outbox`] (files on disk). [`numbering`] and [`store`] keep the series' history;
//! [`workspace`] ties them together for the command line.

#![warn(missing_docs)]

pub mod bulletin;
pub mod clock;
pub mod config;
pub mod diagnostic;
pub mod edition;
pub mod error;
pub mod message;
pub mod numbering;
pub mod outbox;
pub mod recipient;
pub mod render;
pub mod store;
pub mod token;
pub mod toml_file;
pub mod workspace;

pub use error::{Error, Result};
