//! The command groups of the `mailout` binary, one module each; every command calls the
//! library and prints what it returns.

pub mod archive;
pub mod bounces;
pub mod draft;
pub mod init;
pub mod output;
pub mod roster;
pub mod seeds;
pub mod send;
pub mod serve;
pub mod store;
