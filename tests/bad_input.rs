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
    let (code, stderr, report) = audit(lines, extra);
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
