//! The log reader on arbitrary bytes: it must never panic, every rejection
//! must be an input error naming the log, and memory must stay within the
//! (small) limits: libFuzzer's -rss_limit_mb catches a reader that grows.
#![no_main]

use std::io::Cursor;
use std::path::Path;

use gpubound::log::{Limits, LogReader};
use gpubound::Error;
use libfuzzer_sys::fuzz_target;

const NAME: &str = "fuzz.jsonl";

fn check(e: Error) {
    match e {
        Error::Input { location, .. } => assert_eq!(location.file, NAME),
        other => panic!("not an input error: {other}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_line_bytes: 4096,
        max_hypotheses: 1024,
        max_parameters: 1 << 14,
        max_candidates: 64,
        sampled_grid: false,
    };
    // No hypothesis file to find here: a relative `file` fails to open.
    let base = Path::new("/nonexistent-gpubound-fuzz");
    let mut reader = match LogReader::with_limits(NAME, Cursor::new(data), base, None, &limits) {
        Ok(r) => r,
        Err(e) => return check(e),
    };
    let model = reader.model().clone();
    assert!(model.hypotheses.len() <= limits.max_hypotheses);
    assert!(model.hypotheses.len() * model.hypotheses.dim() <= limits.max_parameters);
    loop {
        match reader.next_event() {
            Ok(None) => break,
            Ok(Some(gpubound::log::LogEvent::Step(s))) => {
                assert!(s.action < s.table.n_candidates);
                assert!(s.table.n_candidates <= limits.max_candidates);
                assert_eq!(s.table.dim(), model.hypotheses.dim());
            }
            Ok(Some(_)) => {}
            Err(e) => return check(e),
        }
    }
});
