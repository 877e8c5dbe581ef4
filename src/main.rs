//! The `gpubound` binary: parse the command line, run, map errors to exit codes.

use std::process::ExitCode;

use clap::Parser;
use gpubound::cli::{exit, Cli};

// Batches allocate and free arrays of many MiB; mimalloc reuses them instead
// of handing pages back to the kernel and faulting them in again.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match gpubound::commands::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("gpubound: error: {e:#}");
            let bad_input = e
                .downcast_ref::<gpubound::Error>()
                .is_some_and(|e| e.is_bad_input());
            ExitCode::from(if bad_input {
                exit::BAD_INPUT
            } else {
                exit::FAILURE
            })
        }
    }
}
