//! The `gpubound` binary: parse the command line, run, map errors to exit codes.

use std::process::ExitCode;

use clap::Parser;
use gpubound::cli::{exit, Cli};

// Batches allocate and free arrays of many MiB; mimalloc reuses them instead
// of handing pages back to the kernel and faulting them in again.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    quiet_headless_wayland();
    let cli = Cli::parse();
    // Ctrl-C, `timeout`, systemd: remove unfinished outputs, exit 130/143/129.
    if let Err(e) = gpubound::report::undo_on_signals() {
        eprintln!("gpubound: error: cannot handle interruptions: {e}");
        return ExitCode::from(exit::FAILURE);
    }
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

/// On a machine without a desktop session, wgpu's Vulkan start-up asks
/// libwayland for a display, and libwayland prints "error: XDG_RUNTIME_DIR
/// is invalid or not set in the environment." twice, which reads like a
/// failure of the audit. gpubound draws nothing; given an absolute
/// `WAYLAND_DISPLAY` that does not exist, libwayland fails quietly. Only
/// where no Wayland session could be reached anyway (neither variable set).
fn quiet_headless_wayland() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none()
        && std::env::var_os("WAYLAND_DISPLAY").is_none()
    {
        // No other thread exists yet.
        std::env::set_var("WAYLAND_DISPLAY", "/nonexistent/gpubound-headless");
    }
}
