//! `mailout serve`: the unsubscribe endpoint.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Args;
use mailout::runtime::Runtime;
use mailout::workspace::{Options, Workspace};
use mailout::{Error, serve};

use super::output::errln;

/// `mailout serve`
#[derive(Args, Debug)]
pub struct Serve {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8025")]
    listen: SocketAddr,
}

/// `mailout serve`: on `runtime`, until Ctrl-C.
pub fn serve(options: &Options, args: Serve, runtime: &Runtime) -> Result<ExitCode, Error> {
    let workspace = Workspace::open(options)?;
    let state = std::sync::Arc::new(serve::ServeState::for_workspace(&workspace)?);
    runtime.block_on(serve::serve(state, args.listen, |bound| {
        errln!("listening on http://{bound}");
    }))??;
    Ok(ExitCode::SUCCESS)
}
