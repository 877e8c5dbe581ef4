//! `--format parquet`: the file read back with the parquet crate's Arrow
//! reader holds exactly the CSV report's rows, typed; it is written in row
//! groups; it needs `--out`; a failed audit leaves no file.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use arrow::array::{Array, BooleanArray, Float64Array, StringArray, UInt64Array};
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

const ARGS: [&str; 4] = ["--alpha", "0.1,1e-3", "-C", "0.05,0.2"];

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/report/small.jsonl")
}

fn audit(log: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gpubound"))
        .arg("audit")
        .arg(log)
        .args(ARGS)
        .args(["--backend", "cpu", "--quiet"])
        .args(extra)
        .output()
        .expect("run gpubound")
}

fn audit_ok(log: &Path, extra: &[&str]) {
    let out = audit(log, extra);
    assert!(
        out.status.success(),
        "gpubound failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn read_parquet(
    path: &Path,
) -> (
    Vec<String>,
    Vec<DataType>,
    Vec<bool>,
    Vec<RecordBatch>,
    usize,
) {
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap();
    let groups = builder.metadata().num_row_groups();
    let schema = builder.schema().clone();
    let names = schema.fields().iter().map(|f| f.name().clone()).collect();
    let types = schema
        .fields()
        .iter()
        .map(|f| f.data_type().clone())
        .collect();
    let nullable = schema.fields().iter().map(|f| f.is_nullable()).collect();
    let batches = builder
        .build()
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    (names, types, nullable, batches, groups)
}

/// A cell as the CSV writer prints it (empty for null).
fn cell(b: &RecordBatch, col: usize, row: usize) -> String {
    let a = b.column(col);
    if a.is_null(row) {
        return String::new();
    }
    match a.data_type() {
        DataType::Utf8 => a
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap()
            .value(row)
            .to_string(),
        DataType::UInt64 => a
            .as_any()
            .downcast_ref::<UInt64Array>()
            .unwrap()
            .value(row)
            .to_string(),
        DataType::Float64 => a
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap()
            .value(row)
            .to_string(),
        DataType::Boolean => a
            .as_any()
            .downcast_ref::<BooleanArray>()
            .unwrap()
            .value(row)
            .to_string(),
        t => panic!("unexpected type {t:?}"),
    }
}

#[test]
fn parquet_holds_the_csv_rows_typed() {
    let dir = tempfile::tempdir().unwrap();
    let pq = dir.path().join("r.parquet");
    let csv_path = dir.path().join("r.csv");
    let jsonl = dir.path().join("r.jsonl");
    let log = fixture();
    audit_ok(&log, &["--format", "parquet", "-o", pq.to_str().unwrap()]);
    audit_ok(&log, &["--format", "csv", "-o", csv_path.to_str().unwrap()]);
    audit_ok(&log, &["--format", "jsonl", "-o", jsonl.to_str().unwrap()]);

    let (names, types, nullable, batches, groups) = read_parquet(&pq);
    assert_eq!(groups, 1);

    let mut csv = csv::Reader::from_path(&csv_path).unwrap();
    let header: Vec<String> = csv.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(names, header, "the parquet columns are the CSV columns");

    // Types and nullability, column by column.
    for (i, name) in names.iter().enumerate() {
        let (want, null) = match name.as_str() {
            "stream" => (DataType::Utf8, false),
            "step" | "line" | "candidate" | "map_hypothesis" | "cautious_hypothesis" => {
                (DataType::UInt64, false)
            }
            "taken" => (DataType::Boolean, false),
            "outcome" => (DataType::Float64, true),
            "map_probability" | "entropy" => (DataType::Float64, false),
            n if n.starts_with("plausible_set_size[") => (DataType::UInt64, false),
            n if n.starts_with("rejected[") => {
                (DataType::Boolean, n.starts_with("rejected[oracle]"))
            }
            n => (DataType::Float64, n == "oracle"),
        };
        assert_eq!(types[i], want, "type of {name}");
        assert_eq!(nullable[i], null, "nullability of {name}");
    }
    // 9 step columns, |I_α| × 2 α, ĥ, 9 estimators (3 + 3 per-α families ×
    // 2 α), then the 9 again per threshold.
    assert_eq!(names.len(), 9 + 2 + 1 + 9 + 2 * 9);

    // Every cell equals the CSV's (CSV prints f64 in shortest round-trip form,
    // so equal text is equal value).
    let csv_rows: Vec<csv::StringRecord> = csv.records().map(|r| r.unwrap()).collect();
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, csv_rows.len());
    assert_eq!(rows, 120 * 4, "one row per (step, candidate)");
    let mut r = 0;
    let mut null_outcomes = 0;
    let mut null_oracles = 0;
    let outcome = names.iter().position(|n| n == "outcome").unwrap();
    let oracle = names.iter().position(|n| n == "oracle").unwrap();
    for b in &batches {
        for row in 0..b.num_rows() {
            for col in 0..b.num_columns() {
                assert_eq!(
                    cell(b, col, row),
                    csv_rows[r][col],
                    "row {r}, column {}",
                    names[col]
                );
            }
            null_outcomes += b.column(outcome).is_null(row) as usize;
            null_oracles += b.column(oracle).is_null(row) as usize;
            r += 1;
        }
    }
    // Stream 2 states no true hypothesis and lacks some outcomes.
    assert_eq!(null_oracles, 40 * 4);
    assert!(null_outcomes > 0);

    // The taken rows against the JSONL report.
    let steps: Vec<serde_json::Value> = std::fs::read_to_string(&jsonl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(steps.len(), 120);
    let col = |n: &str| names.iter().position(|x| x == n).unwrap();
    let b = &batches[0];
    let f64col = |n: &str| {
        b.column(col(n))
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap()
            .clone()
    };
    let taken = b
        .column(col("taken"))
        .as_any()
        .downcast_ref::<BooleanArray>()
        .unwrap();
    let step = b
        .column(col("step"))
        .as_any()
        .downcast_ref::<UInt64Array>()
        .unwrap();
    let stream = b
        .column(col("stream"))
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    let ps = f64col("plausible_set[alpha=0.001]");
    let pp = f64col("posterior_predictive");
    // serde_json (without its float_roundtrip feature) may parse the last
    // bit differently; the CSV comparison above is the exact one.
    let close = |a: f64, b: f64| (a - b).abs() <= 4.0 * f64::EPSILON * a.abs().max(b.abs());
    let mut seen = 0;
    for row in 0..b.num_rows() {
        if !taken.value(row) {
            continue;
        }
        let s = &steps[seen];
        assert_eq!(s["stream"].as_str().unwrap(), stream.value(row));
        assert_eq!(s["step"].as_u64().unwrap(), step.value(row));
        assert!(close(
            s["taken"]["plausible_set"]["0.001"].as_f64().unwrap(),
            ps.value(row)
        ));
        assert!(close(
            s["taken"]["posterior_predictive"].as_f64().unwrap(),
            pp.value(row)
        ));
        match s["outcome"].as_f64() {
            Some(y) => assert!(close(y, f64col("outcome").value(row))),
            None => assert!(b.column(col("outcome")).is_null(row)),
        }
        seen += 1;
    }
    assert_eq!(seen, 120, "one taken row per step");
}

/// A log long enough for several row groups: `steps` steps × 3 candidates.
fn long_log(path: &Path, steps: usize) {
    let mut f = std::io::BufWriter::new(File::create(path).unwrap());
    writeln!(f, r#"{{"type":"model","hypotheses":{{"kind":"grid","k":2,"d":2}},"observation":{{"kind":"gaussian","sigma":1.0,"harm_threshold":1.0}}}}"#).unwrap();
    writeln!(
        f,
        r#"{{"type":"stream","id":"long","true_params":[1,0],"candidates":[[1,0],[0,1],[0,0]]}}"#
    )
    .unwrap();
    let mut x: u64 = 12345;
    for t in 0..steps {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let y = ((x >> 33) % 2000) as f64 / 1000.0 - 0.5;
        writeln!(f, r#"{{"type":"step","action":{},"outcome":{y}}}"#, t % 3).unwrap();
    }
}

#[test]
fn parquet_is_written_in_row_groups() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("long.jsonl");
    let steps = 30_000;
    long_log(&log, steps);
    let pq = dir.path().join("long.parquet");
    audit_ok(&log, &["--format", "parquet", "-o", pq.to_str().unwrap()]);
    let (names, _, _, batches, groups) = read_parquet(&pq);
    let rows = 3 * steps;
    // A group ends with the first whole step that reaches ROW_GROUP_ROWS rows:
    // 65 538 = 3 × 21 846 rows, then the rest.
    let group = gpubound::report::parquet::ROW_GROUP_ROWS.div_ceil(3) * 3;
    assert_eq!(group, 65_538);
    assert_eq!(groups, 2);
    let meta = ParquetRecordBatchReaderBuilder::try_new(File::open(&pq).unwrap())
        .unwrap()
        .metadata()
        .clone();
    assert_eq!(meta.row_group(0).num_rows() as usize, group);
    assert_eq!(meta.row_group(1).num_rows() as usize, rows - group);
    assert_eq!(meta.file_metadata().num_rows() as usize, rows);
    // Steps 1..=n, each with candidates 0, 1, 2, in order across the groups.
    let step = names.iter().position(|n| n == "step").unwrap();
    let cand = names.iter().position(|n| n == "candidate").unwrap();
    let mut i = 0usize;
    for b in &batches {
        let s = b
            .column(step)
            .as_any()
            .downcast_ref::<UInt64Array>()
            .unwrap();
        let c = b
            .column(cand)
            .as_any()
            .downcast_ref::<UInt64Array>()
            .unwrap();
        for r in 0..b.num_rows() {
            assert_eq!(s.value(r) as usize, i / 3 + 1);
            assert_eq!(c.value(r) as usize, i % 3);
            i += 1;
        }
    }
    assert_eq!(i, rows);
}

#[test]
fn parquet_needs_out() {
    let out = audit(&fixture(), &["--format", "parquet"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--out"), "{err}");
}

#[test]
fn failed_audit_leaves_no_report() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("bad.jsonl");
    let mut text = std::fs::read_to_string(fixture()).unwrap();
    text.push_str("{\"type\": \"step\", \"action\": 99, \"outcome\": 0.5}\n");
    std::fs::write(&log, text).unwrap();
    let pq = dir.path().join("r.parquet");
    let html = dir.path().join("r.html");
    let out = audit(
        &log,
        &[
            "--format",
            "parquet",
            "-o",
            pq.to_str().unwrap(),
            "--html",
            html.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("out of range"));
    assert!(!pq.exists());
    assert!(!html.exists());
    // No temporary file left behind either.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("bad.jsonl")]);
}

/// Piped (as here), the audit draws no progress bar: with `--out`, the
/// summary goes to stdout and stderr stays empty; `--quiet` prints nothing.
#[test]
fn piped_run_prints_no_progress() {
    let dir = tempfile::tempdir().unwrap();
    let pq = dir.path().join("r.parquet");
    let run = |quiet: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_gpubound"));
        c.arg("audit")
            .arg(fixture())
            .args(ARGS)
            .args(["--backend", "cpu", "--format", "parquet", "-o"])
            .arg(&pq);
        if quiet {
            c.arg("--quiet");
        }
        c.output().unwrap()
    };
    let out = run(false);
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("gpubound audit of "));
    assert!(text.contains("120 steps"));
    assert!(
        !text.contains('\r') && !text.contains('\u{1b}'),
        "terminal codes in {text:?}"
    );
    let out = run(true);
    assert!(out.status.success());
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
}
