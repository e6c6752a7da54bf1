//! One module per subcommand of [`crate::cli::Command`]. Local subcommands (`serve`, `drill`,
//! `restore`, `plan lint`, `flag import-unleash`) work on files or the database directly; the
//! rest talk to a server through [`crate::client::Client`] and print through
//! [`crate::output`]. `edge` is the relay's own `run`, and `demo` its own module.

mod audit;
mod backup;
mod calendar;
mod change;
mod drill;
mod env;
mod eval;
mod feedback;
mod flag;
mod freeze;
mod incident;
mod login;
mod notify;
mod plan;
mod release;
mod report;
mod restore;
mod rollout;
mod scorecard;
mod serve;
mod token;

use std::process::ExitCode;

use crate::cli::{Cli, Command};

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => serve::run(*args).await,
        Command::Token { command, remote } => token::run(command, &remote).await,
        Command::Flag { command, remote } => flag::run(command, &remote).await,
        Command::Env { command, remote } => env::run(command, &remote).await,
        Command::Change { command, remote } => change::run(command, &remote).await,
        Command::Eval(args) => eval::run(args).await,
        Command::Plan { command, remote } => plan::run(command, &remote).await,
        Command::Release { command, remote } => release::run(command, &remote).await,
        Command::Rollout { command, remote } => rollout::run(command, &remote).await,
        Command::Calendar { days, ics, remote } => calendar::run(days, ics, &remote).await,
        Command::Report { command, remote } => report::run(command, &remote).await,
        Command::Freeze { command, remote } => freeze::run(command, &remote).await,
        Command::Feedback { command, remote } => feedback::run(command, &remote).await,
        Command::Incident { command, remote } => incident::run(command, &remote).await,
        Command::Login { no_browser, timeout, remote } => {
            login::login(no_browser, &timeout, &remote).await
        }
        Command::Logout { remote } => login::logout(&remote).await,
        Command::Whoami { remote } => login::whoami(&remote).await,
        Command::Scorecard { command, remote } => scorecard::run(command, &remote).await,
        Command::Drill(args) => drill::run(args).await,
        Command::Notify { command, remote } => notify::run(command, &remote).await,
        Command::Edge(args) => crate::edge::run(args).await,
        Command::Backup(args) => backup::run(args).await,
        Command::Restore(args) => restore::run(args).await,
        Command::Demo(args) => crate::demo::run(args).await,
        Command::Audit { command, remote } => audit::run(command, &remote).await,
    }
}
