//! Every class of bad input gets one clear error naming the file and line,
//! exit code 2, no panic, and no report file.

use std::path::Path;
use std::process::Command;

const MODEL: &str = r#"{"type":"model","hypotheses":{"kind":"grid","k":2,"d":2},"observation":{"kind":"gaussian","sigma":1.0,"harm_threshold":1.0}}"#;
const STREAM: &str = r#"{"type":"stream","id":"s","candidates":[[0,1],[1,1]]}"#;
const STEP: &str = r#"{"type":"step","action":1,"outcome":0.5}"#;

/// Runs `gpubound audit` on a log with these lines (plus extra args); returns
/// (exit code, stderr, whether the report file exists).
fn audit(lines: &[&str], extra: &[&str]) -> (i32, String, bool) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.jsonl");
    std::fs::write(
        &log,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
    let out = dir.path().join("report.jsonl");
    let o = Command::new(env!("CARGO_BIN_EXE_gpubound"))
        .arg("audit")
        .arg(&log)
        .arg("--out")
        .arg(&out)
        .args(extra)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
    assert!(
        leftovers <= 2,
        "temporary files left behind in {}",
        dir.path().display()
    );
    (o.status.code().unwrap(), stderr, Path::new(&out).exists())
}

/// Asserts a bad-input failure at `line` whose message contains `needle`.
fn rejected(lines: &[&str], extra: &[&str], line: Option<usize>, needle: &str) {
    rejected_all(lines, extra, line, &[needle]);
}

/// `rejected` with several parts the one message must hold.
fn rejected_all(lines: &[&str], extra: &[&str], line: Option<usize>, needles: &[&str]) {
    let (code, stderr, report) = audit(lines, extra);
    for needle in &needles[1..] {
        assert!(
            stderr.to_lowercase().contains(&needle.to_lowercase()),
            "{needle:?} not in {stderr:?}"
        );
    }
    let needle = needles[0];
    assert_eq!(code, 2, "exit code for {needle:?}: {stderr}");
    assert!(!report, "a report was written for {needle:?}");
    if let Some(l) = line {
        assert!(
            stderr.contains(&format!("log.jsonl:{l}:")),
            "no file:line {l} in {stderr:?}"
        );
    }
    assert!(
        stderr.to_lowercase().contains(&needle.to_lowercase()),
        "{needle:?} not in {stderr:?}"
    );
    assert_eq!(
        stderr.trim().lines().count(),
        1,
        "one clear error line: {stderr:?}"
    );
}

#[test]
fn a_good_log_passes() {
    let (code, stderr, report) = audit(&[MODEL, STREAM, STEP, STEP], &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(report);
}

#[test]
fn malformed_json() {
    rejected(
        &[MODEL, STREAM, r#"{"type":"step","action":1,"outcome":0.5"#],
        &[],
        Some(3),
        "malformed JSON",
    );
}

#[test]
fn unknown_field() {
    rejected(
        &[
            MODEL,
            STREAM,
            r#"{"type":"step","action":1,"outcome":0.5,"reward":2}"#,
        ],
        &[],
        Some(3),
        "unknown field `reward`",
    );
    rejected(
        &[MODEL, r#"{"type":"stream","candidats":[[0,1]]}"#, STEP],
        &[],
        Some(2),
        "unknown field",
    );
    rejected(
        &[
            r#"{"type":"model","hypotheses":{"kind":"grid","k":2,"d":2,"x":1},"observation":{"kind":"bernoulli"}}"#,
            STREAM,
            STEP,
        ],
        &[],
        Some(1),
        "unknown field",
    );
    rejected(
        &[MODEL, STREAM, r#"{"type":"stepp","action":1}"#],
        &[],
        Some(3),
        "unknown variant",
    );
}

#[test]
fn a_line_that_is_an_array() {
    rejected(
        &[MODEL, r#"["stream","s",[[0,1],[1,1]]]"#, STEP],
        &[],
        Some(2),
        "a line is a JSON object",
    );
}

#[test]
fn missing_field() {
    rejected(
        &[MODEL, STREAM, r#"{"type":"step","outcome":0.5}"#],
        &[],
        Some(3),
        "missing field `action`",
    );
    rejected(
        &[
            r#"{"type":"model","hypotheses":{"kind":"grid","k":2,"d":2},"observation":{"kind":"gaussian","sigma":1.0}}"#,
            STREAM,
            STEP,
        ],
        &[],
        Some(1),
        "missing field `harm_threshold`",
    );
}

#[test]
fn wrong_feature_dimension() {
    rejected(
        &[
            MODEL,
            r#"{"type":"stream","candidates":[[0,1],[1,1,1]]}"#,
            STEP,
        ],
        &[],
        Some(2),
        "candidate 1 has 3 features",
    );
    rejected(
        &[
            MODEL,
            STREAM,
            r#"{"type":"step","action":0,"outcome":1,"candidates":[[1]]}"#,
        ],
        &[],
        Some(3),
        "dimension 2",
    );
    rejected(
        &[
            MODEL,
            r#"{"type":"stream","candidates":[[0,1]],"true_params":[1]}"#,
            STEP,
        ],
        &[],
        Some(2),
        "true_params has 1",
    );
}

#[test]
fn action_out_of_range() {
    rejected(
        &[MODEL, STREAM, r#"{"type":"step","action":2,"outcome":0.5}"#],
        &[],
        Some(3),
        "action 2 is out of range",
    );
    rejected(
        &[
            MODEL,
            STREAM,
            r#"{"type":"step","action":-1,"outcome":0.5}"#,
        ],
        &[],
        Some(3),
        "invalid value",
    );
    rejected(
        &[
            MODEL,
            r#"{"type":"stream","candidates":[[0,1]],"true_hypothesis":4}"#,
            STEP,
        ],
        &[],
        Some(2),
        "true_hypothesis 4 is out of range",
    );
}

#[test]
fn nan_and_infinity() {
    // JSON has no NaN or infinity: the literals and overflowing numbers are refused
    rejected(
        &[MODEL, STREAM, r#"{"type":"step","action":1,"outcome":NaN}"#],
        &[],
        Some(3),
        "malformed JSON",
    );
    rejected(
        &[
            MODEL,
            STREAM,
            r#"{"type":"step","action":1,"outcome":1e999}"#,
        ],
        &[],
        Some(3),
        "number out of range",
    );
    rejected(
        &[MODEL, r#"{"type":"stream","candidates":[[0,1e400]]}"#, STEP],
        &[],
        Some(2),
        "number out of range",
    );
    rejected(
        &[
            MODEL,
            STREAM,
            r#"{"type":"step","action":1,"outcome":"NaN"}"#,
        ],
        &[],
        Some(3),
        "invalid type",
    );
}

#[test]
fn sigma_not_positive() {
    let m = r#"{"type":"model","hypotheses":{"kind":"grid","k":2,"d":2},"observation":{"kind":"gaussian","sigma":0,"harm_threshold":1}}"#;
    rejected(
        &[m, STREAM, STEP],
        &[],
        Some(1),
        "sigma must be a finite number > 0",
    );
    let m = r#"{"type":"model","hypotheses":{"kind":"grid","k":2,"d":2},"observation":{"kind":"gaussian","sigma":-1,"harm_threshold":1}}"#;
    rejected(&[m, STREAM, STEP], &[], Some(1), "sigma");
    rejected(
        &[MODEL, STREAM, STEP],
        &["--sigma", "0"],
        None,
        "sigma must be a finite number > 0",
    );
}

#[test]
fn alpha_outside_zero_one() {
    for a in ["0", "1.5", "-0.1"] {
        rejected(
            &[MODEL, STREAM, STEP],
            &["--alpha", a],
            None,
            "α must be in (0, 1]",
        );
    }
    rejected(
        &[MODEL, STREAM, STEP],
        &["--delta", "2"],
        None,
        "δ must be in (0, 1]",
    );
    rejected(
        &[MODEL, STREAM, STEP],
        &["--threshold", "1.5"],
        None,
        "threshold C must be in [0, 1]",
    );
}

#[test]
fn model_missing() {
    rejected(
        &[STREAM, STEP],
        &[],
        Some(1),
        "must start with a model line",
    );
}

#[test]
fn empty_log() {
    let (code, stderr, report) = audit(&[], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        !report && stderr.contains("log.jsonl: empty log"),
        "{stderr}"
    );
    rejected(&[MODEL, STREAM], &[], None, "empty log: it holds no steps");
    rejected(&[MODEL, ""], &[], None, "empty log");
}

#[test]
fn steps_before_the_model_or_stream() {
    rejected(
        &[STREAM, STEP, MODEL],
        &[],
        Some(1),
        "must start with a model line",
    );
    rejected(
        &[MODEL, STEP],
        &[],
        Some(2),
        "a step before any stream line",
    );
    rejected(
        &[MODEL, STREAM, STEP, MODEL, STEP],
        &[],
        Some(4),
        "a model line may only be the first line",
    );
}

#[test]
fn bad_outcomes_for_the_model() {
    let m = r#"{"type":"model","hypotheses":{"kind":"grid","k":2,"d":2},"observation":{"kind":"bernoulli"}}"#;
    rejected(
        &[m, STREAM, r#"{"type":"step","action":1,"outcome":0.5}"#],
        &[],
        Some(3),
        "0 or 1",
    );
}

#[test]
fn a_bad_line_late_in_a_long_log_leaves_no_report() {
    let mut lines = vec![MODEL, STREAM];
    lines.extend(std::iter::repeat_n(STEP, 5000));
    lines.push(r#"{"type":"step","action":7}"#);
    rejected(&lines, &[], Some(5003), "action 7 is out of range");
}

#[test]
fn bad_hypothesis_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("h.jsonl"),
        "{\"params\":[0,1]}\n{\"params\":[1]}\n",
    )
    .unwrap();
    let m = r#"{"type":"model","hypotheses":{"kind":"list","file":"h.jsonl"},"observation":{"kind":"bernoulli"}}"#;
    let log = dir.path().join("log.jsonl");
    std::fs::write(&log, format!("{m}\n{STREAM}\n{STEP}\n")).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_gpubound"))
        .arg("audit")
        .arg(&log)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("hypothesis 1 has 1 parameters"), "{stderr}");
    assert!(
        o.stdout.is_empty(),
        "nothing on stdout: a report is whole or absent"
    );
}

/// A grid model line `{0..k-1}^d` with the gaussian observation of `MODEL`.
fn grid(k: u64, d: u64) -> String {
    format!(
        r#"{{"type":"model","hypotheses":{{"kind":"grid","k":{k},"d":{d}}},"observation":{{"kind":"gaussian","sigma":1.0,"harm_threshold":1.0}}}}"#
    )
}

#[test]
fn a_grid_with_one_value_per_coordinate_in_a_huge_dimension_is_refused() {
    // k = 1 is one hypothesis, but 3e9 parameters of 8 bytes (24 GB): refused
    // before anything is allocated, naming the limit and how to raise it.
    let m = grid(1, 3_000_000_000);
    rejected_all(
        &[&m, STREAM, STEP],
        &[],
        Some(1),
        &["3000000000", "--max-parameters"],
    );
}

#[test]
fn a_grid_whose_size_overflows_is_caught_by_the_size_check() {
    // d = 2^31 wrapped to a negative power (k^d "= 0" hypotheses, α = inf);
    // d = 2^32 wrapped to k^0 = 1 hypothesis.
    for d in [1u64 << 31, 1 << 32, 64] {
        let m = grid(2, d);
        let (code, stderr, _) = audit(&[&m, STREAM, STEP], &[]);
        assert_eq!(code, 2, "d = {d}: {stderr}");
        assert!(
            stderr.contains("log.jsonl:1:") && stderr.contains("too large"),
            "d = {d}: {stderr}"
        );
        assert!(!stderr.contains("inf"), "d = {d}: {stderr}");
    }
}

#[test]
fn a_line_longer_than_the_limit_is_refused_with_the_limit_and_its_flag() {
    // Blanks inside the object keep the line valid JSON: only its length is wrong.
    let long = format!(
        r#"{{"type":"step","action":1,{}"outcome":0.5}}"#,
        " ".repeat(2000)
    );
    rejected_all(
        &[MODEL, STREAM, STEP, &long, STEP],
        &["--max-line-bytes", "1000"],
        Some(4),
        &["1000 bytes", "--max-line-bytes"],
    );
    // The same line is read when the limit allows it.
    let (code, stderr, _) = audit(
        &[MODEL, STREAM, STEP, &long, STEP],
        &["--max-line-bytes", "3000"],
    );
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn the_default_line_limit_is_16_mib() {
    let long = format!(
        r#"{{"type":"step","action":1,{}"outcome":0.5}}"#,
        " ".repeat(16 << 20)
    );
    rejected_all(
        &[MODEL, STREAM, &long],
        &[],
        Some(3),
        &["16777216 bytes", "--max-line-bytes"],
    );
}

#[test]
fn more_candidates_than_the_limit() {
    rejected_all(
        &[MODEL, STREAM, STEP],
        &["--max-candidates", "1"],
        Some(2),
        &["2 candidates", "--max-candidates"],
    );
    rejected_all(
        &[
            MODEL,
            r#"{"type":"stream","candidates":[[0,1]]}"#,
            r#"{"type":"step","action":0,"candidates":[[0,1],[1,1],[1,0]]}"#,
        ],
        &["--max-candidates", "2"],
        Some(3),
        &["3 candidates", "--max-candidates"],
    );
}

#[test]
fn more_hypotheses_than_the_limit() {
    let inline = r#"{"type":"model","hypotheses":{"kind":"list","params":[[0,0],[0,1],[1,1]]},"observation":{"kind":"bernoulli"}}"#;
    rejected_all(
        &[inline, STREAM, r#"{"type":"step","action":1,"outcome":1}"#],
        &["--max-hypotheses", "2"],
        Some(1),
        &["3 hypotheses", "--max-hypotheses"],
    );
    rejected_all(
        &[&grid(2, 2), STREAM, STEP],
        &["--max-hypotheses", "3"],
        Some(1),
        &["too large", "--max-hypotheses"],
    );
    let dir = tempfile::tempdir().unwrap();
    let h = dir.path().join("h.jsonl");
    std::fs::write(
        &h,
        "{\"params\":[0,1]}\n{\"params\":[1,1]}\n{\"params\":[1,0]}\n",
    )
    .unwrap();
    let m = format!(
        r#"{{"type":"model","hypotheses":{{"kind":"list","file":"{}"}},"observation":{{"kind":"bernoulli"}}}}"#,
        h.display()
    );
    rejected_all(
        &[&m, STREAM, r#"{"type":"step","action":1,"outcome":1}"#],
        &["--max-hypotheses", "2"],
        Some(1),
        &["h.jsonl:3", "--max-hypotheses"],
    );
}

#[test]
fn a_hypothesis_file_must_be_a_regular_file() {
    // /dev/zero has no line end and no end: it would be read forever.
    let m = r#"{"type":"model","hypotheses":{"kind":"list","file":"/dev/zero"},"observation":{"kind":"bernoulli"}}"#;
    rejected(
        &[m, STREAM, r#"{"type":"step","action":1,"outcome":1}"#],
        &[],
        Some(1),
        "/dev/zero: not a regular file",
    );
}

#[cfg(unix)]
#[test]
fn a_log_may_come_from_a_fifo() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("log.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            std::fs::write(&fifo, format!("{MODEL}\n{STREAM}\n{STEP}\n{STEP}\n")).unwrap()
        })
    };
    let o = Command::new(env!("CARGO_BIN_EXE_gpubound"))
        .args(["audit", "--quiet", "--backend", "cpu"])
        .arg(&fifo)
        .output()
        .unwrap();
    writer.join().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 2);
}

#[test]
fn a_utf8_byte_order_mark_is_accepted_at_the_start_of_each_file() {
    const BOM: &str = "\u{feff}";
    let first = format!("{BOM}{MODEL}");
    let (code, stderr, report) = audit(&[&first, STREAM, STEP], &[]);
    assert_eq!(code, 0, "log: {stderr}");
    assert!(report);
    // Only at the start: elsewhere it is not JSON.
    let late = format!("{BOM}{STEP}");
    rejected(&[MODEL, STREAM, &late], &[], Some(3), "malformed JSON");

    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model.json");
    std::fs::write(&model, format!("{BOM}{{{}", &MODEL[16..])).unwrap();
    let (code, stderr, _) = audit(&[STREAM, STEP], &["--model", model.to_str().unwrap()]);
    assert_eq!(code, 0, "model file: {stderr}");

    let h = dir.path().join("h.jsonl");
    std::fs::write(
        &h,
        format!("{BOM}{{\"params\":[0,1]}}\n{{\"params\":[1,1]}}\n"),
    )
    .unwrap();
    let m = format!(
        r#"{{"type":"model","hypotheses":{{"kind":"list","file":"{}"}},"observation":{{"kind":"bernoulli"}}}}"#,
        h.display()
    );
    let (code, stderr, _) = audit(
        &[&m, STREAM, r#"{"type":"step","action":1,"outcome":1}"#],
        &[],
    );
    assert_eq!(code, 0, "hypothesis file: {stderr}");
}
