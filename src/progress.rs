//! Progress bars on a terminal; nothing at all when stderr is piped or the
//! user asked for quiet.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar over `len` units (bytes of input, episodes, runs), or a spinner when
/// the length is unknown. Hidden unless stderr is a terminal.
pub fn bar(len: Option<u64>, quiet: bool, what: &str) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = match len {
        Some(n) => ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr()).with_style(
            ProgressStyle::with_template(
                "{prefix} [{bar:30}] {percent}% {msg} ({elapsed} elapsed, eta {eta})",
            )
            .expect("valid template")
            .progress_chars("=> "),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{prefix} {spinner} {msg} ({elapsed})")
                .expect("valid template"),
        ),
    };
    bar.set_prefix(what.to_string());
    bar
}

/// Updates a log-reading bar: position in bytes, message in steps.
pub fn set(bar: &ProgressBar, bytes: u64, steps: usize) {
    if bar.is_hidden() {
        return;
    }
    bar.set_position(bytes);
    let rate = steps as f64 / bar.elapsed().as_secs_f64().max(1e-3);
    bar.set_message(format!("{steps} steps, {rate:.0} steps/s"));
}
