//! The `wavegate` binary: parse → run → exit code.
//!
//! Exit codes (a contract, see DESIGN.md): 0 success, 1 the operation failed (a failed check,
//! a 5xx or a network failure), 2 usage or input error (a 4xx from the server included).

mod cli;
mod client;
mod commands;
mod rollout_cmd;
mod telemetry;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            let code = e.downcast_ref::<commands::Failure>().map_or(1, |f| f.exit_code());
            eprintln!("error: {e:#}");
            ExitCode::from(code)
        }
    }
}
