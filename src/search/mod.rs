//! The archive's search language and how text folds into words for it: one definition,
//! used by the archive (indexing, snippets, the command) and translated by each store
//! backend, which therefore needs nothing else from the archive.

pub mod query;
pub mod words;
