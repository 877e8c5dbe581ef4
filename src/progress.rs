//! Progress bars on a terminal; nothing at all when stderr is piped or the
//! user asked for quiet.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a visible bar redraws by itself, so that the elapsed time, ETA
/// and spinner move between updates (the audit updates once per batch).
const TICK: Duration = Duration::from_millis(200);

/// A bar over `len` units (bytes of input, episodes, runs), or a spinner when
/// the length is unknown. Hidden unless stderr is a terminal.
pub fn bar(len: Option<u64>, quiet: bool, what: &str) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = styled(len, ProgressDrawTarget::stderr());
    bar.set_prefix(what.to_string());
    bar.enable_steady_tick(TICK);
    bar
}

/// The bar's look, on any draw target. `{wide_bar}` takes the width the
/// rest of the line leaves, so the line never wraps on a narrow terminal.
fn styled(len: Option<u64>, target: ProgressDrawTarget) -> ProgressBar {
    match len {
        Some(n) => ProgressBar::with_draw_target(Some(n), target).with_style(
            ProgressStyle::with_template(
                "{prefix} [{wide_bar}] {percent:>3}% {msg} [{elapsed_precise}, eta {eta}]",
            )
            .expect("valid template")
            .progress_chars("=> "),
        ),
        None => ProgressBar::with_draw_target(None, target).with_style(
            ProgressStyle::with_template("{prefix} {spinner} {msg} [{elapsed_precise}]")
                .expect("valid template"),
        ),
    }
}

/// Updates a log-reading bar: position in bytes, message in steps and the
/// step rate.
pub fn set(bar: &ProgressBar, bytes: u64, steps: usize) {
    if bar.is_hidden() {
        return;
    }
    bar.set_position(bytes);
    bar.set_message(message(steps, bar.elapsed()));
}

/// `"1.2M steps, 35.1k steps/s"`.
fn message(steps: usize, elapsed: Duration) -> String {
    let rate = steps as f64 / elapsed.as_secs_f64().max(1e-3);
    format!("{} steps, {} steps/s", si(steps as f64), si(rate))
}

/// A count with an SI suffix and 3 significant digits: 950, 12.3k, 4.56M.
fn si(x: f64) -> String {
    let (v, suffix) = if x >= 1e9 {
        (x / 1e9, "G")
    } else if x >= 1e6 {
        (x / 1e6, "M")
    } else if x >= 1e3 {
        (x / 1e3, "k")
    } else {
        return format!("{x:.0}");
    };
    if v >= 100.0 {
        format!("{v:.0}{suffix}")
    } else if v >= 10.0 {
        format!("{v:.1}{suffix}")
    } else {
        format!("{v:.2}{suffix}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_is_hidden() {
        assert!(bar(Some(10), true, "x").is_hidden());
        assert!(bar(None, true, "x").is_hidden());
    }

    #[test]
    fn si_counts() {
        assert_eq!(si(0.0), "0");
        assert_eq!(si(950.0), "950");
        assert_eq!(si(12_345.0), "12.3k");
        assert_eq!(si(4_560_000.0), "4.56M");
        assert_eq!(si(123_456_789.0), "123M");
        assert_eq!(si(2.5e9), "2.50G");
    }

    #[test]
    fn message_has_rate() {
        assert_eq!(
            message(400_000, Duration::from_secs(20)),
            "400k steps, 20.0k steps/s"
        );
    }
}
