//! The `wavegate` binary: parse → run → exit code.
//!
//! Exit codes (a contract, see DESIGN.md): 0 success, 1 the operation failed (a failed check,
//! a 5xx or a network failure), 2 usage or input error (a 4xx from the server included).

mod cli;
mod client;
mod cmd;
mod credentials;
mod demo;
mod edge;
mod failure;
mod input;
mod output;
mod telemetry;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;

/// jemalloc, not the system's allocator: event ingest runs about a quarter faster with it (the
/// allocator was a third of ingest's CPU), and what a burst frees is purged back to the system
/// by `wavegate_server::memory::release` (docs/benchmarks.md, "Choosing the allocator").
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read once before its first allocation (it looks this symbol up by name:
/// `malloc_conf`, with tikv-jemalloc-sys's `_rjem_` prefix). One arena per CPU, chosen by the
/// CPU a thread runs on (instead of four per CPU), and a thread cache of objects up to 4 KiB (not
/// 32 KiB) keep an idle server's heap near the system allocator's at no cost to ingest
/// (docs/benchmarks.md, "The `dist` profile and jemalloc's options");
/// `_RJEM_MALLOC_CONF` still overrides them at run time. `tests/it/memory.rs` checks that
/// jemalloc reads them.
#[cfg(not(target_env = "msvc"))]
#[allow(unsafe_code)]
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: &[u8; 36] = b"percpu_arena:percpu,tcache_max:4096\0";

fn main() -> ExitCode {
    quiet_on_broken_pipe();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(cmd::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            let code = e.downcast_ref::<failure::Failure>().map_or(1, |f| f.exit_code());
            // A message may quote a URL (a database's, a server's): never with its credentials.
            eprintln!("error: {}", wavegate_core::text::redact_urls_in(&format!("{e:#}")));
            ExitCode::from(code)
        }
    }
}

/// `wavegate … | head` closes stdout early; Rust's `println!` then panics with EPIPE. A CLI should
/// just stop, as other Unix tools do, so that one panic exits quietly; any other panic keeps the
/// default report.
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.contains("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}
