//! One integration-test binary: runs the real `mailout` executable in a temporary folder and
//! checks its files and output. One module per feature.

mod account;
mod archive;
mod bounces;
mod browser;
mod build;
mod check;
mod consent;
mod drafting;
mod e2e;
mod faults;
mod harness;
mod headers;
mod hostile;
mod inbound;
mod init;
mod lint;
mod members;
mod mime;
mod new;
mod preferences;
mod preview;
mod report;
mod samples;
mod scale;
mod schedule;
mod seeds;
mod selfcontained;
mod send;
mod serve;
mod servers;
mod sitecheck;
mod templates;
mod unsubscribes;
