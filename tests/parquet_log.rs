//! Parquet action logs: `gpubound convert` round trips (the shipped
//! example, simulated and contextual logs) give the same audit as the JSON
//! Lines original; int64 ids, fixed-size lists and null candidates read as
//! their JSON Lines equivalents; every kind of bad Parquet input exits 2,
//! names the file, row group and row, and writes no report.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, FixedSizeListBuilder, Float64Array, Float64Builder, Int32Array, Int64Array,
    ListBuilder, StringArray,
};
use arrow::datatypes::{Field, Schema};
use arrow::record_batch::{RecordBatch, RecordBatchIterator};
use gpubound::log::columnar::ColumnarReader;
use gpubound::log::writer::{LogWriter, ParquetLogWriter};
use gpubound::log::LogEvent;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

fn gpubound(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gpubound"))
        .args(args)
        .output()
        .expect("run gpubound")
}

fn ok(args: &[&str]) -> Output {
    let out = gpubound(args);
    assert!(
        out.status.success(),
        "gpubound {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The CSV report of an audit of `log`.
fn audit_csv(log: &Path, dir: &Path, extra: &[&str]) -> String {
    let out = dir.join(format!(
        "{}.csv",
        log.file_name().unwrap().to_str().unwrap()
    ));
    let mut args = vec!["audit", s(log), "--backend", "cpu", "-q", "--format", "csv"];
    args.extend_from_slice(&["--alpha", "0.1,1e-3", "-C", "0.05,0.5", "-o", s(&out)]);
    args.extend_from_slice(extra);
    ok(&args);
    std::fs::read_to_string(out).unwrap()
}

/// The report's rows without the `line` column (a JSON Lines log numbers
/// its lines, a Parquet log its rows), and that column on its own.
fn split_line_column(csv: &str) -> (Vec<String>, Vec<String>) {
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let at = header.iter().position(|c| *c == "line").unwrap();
    csv.lines()
        .map(|l| {
            let mut cells: Vec<&str> = l.split(',').collect();
            let line = cells.remove(at).to_string();
            (cells.join(","), line)
        })
        .unzip()
}

/// For each report row of a JSON Lines log, the step's 1-based position in
/// the whole log: what a Parquet log's `line` column holds (its row).
fn step_ordinals(jsonl: &str, csv: &str) -> Vec<String> {
    // Each step line's position among the step lines, by its line number.
    let mut ordinal = std::collections::HashMap::new();
    for (i, l) in jsonl.lines().enumerate() {
        if l.contains("\"type\":\"step\"") {
            let n = ordinal.len() + 1;
            ordinal.insert((i + 1).to_string(), n.to_string());
        }
    }
    let (_, lines) = split_line_column(csv);
    let mut out = vec!["line".to_string()];
    out.extend(lines[1..].iter().map(|l| ordinal[l].clone()));
    out
}

/// Converts `log` to Parquet and back, audits all three, and checks the
/// reports agree.
fn round_trip(log: &Path, dir: &Path) {
    let pq = dir.join("log.parquet");
    let back = dir.join("back.jsonl");
    ok(&["convert", s(log), "-o", s(&pq), "-q"]);
    ok(&["convert", s(&pq), "-o", s(&back), "-q"]);
    let original = audit_csv(log, dir, &[]);
    let columnar = audit_csv(&pq, dir, &[]);
    let again = audit_csv(&back, dir, &[]);
    assert!(original.lines().count() > 1);
    assert_eq!(
        again, original,
        "the round-tripped JSON Lines audits differently"
    );
    let (want, _) = split_line_column(&original);
    let (got, rows) = split_line_column(&columnar);
    assert_eq!(got, want, "the Parquet log audits differently");
    let text = std::fs::read_to_string(log).unwrap();
    assert_eq!(rows, step_ordinals(&text, &original));
}

#[test]
fn the_shipped_example_round_trips_to_the_same_audit() {
    let dir = tempfile::tempdir().unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/exploding_bandit.jsonl");
    round_trip(&example, dir.path());
}

#[test]
fn a_simulated_log_round_trips_to_the_same_audit() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("sim.jsonl");
    ok(&[
        "simulate",
        "-n",
        "12",
        "--steps",
        "7",
        "-d",
        "3",
        "--arms",
        "5",
        "--seed",
        "4",
        "-q",
        "-o",
        s(&log),
    ]);
    round_trip(&log, dir.path());
}

/// A contextual log: real-valued candidates of its own at every step,
/// missing outcomes, streams without and with ids, true parameters.
fn contextual_log() -> String {
    let mut text = String::from(
        r#"{"type":"model","hypotheses":{"kind":"list","params":[[0.5,-1.25],[2,0.125],[-0.75,1]]},"observation":{"kind":"gaussian","sigma":0.7,"harm_threshold":0.9}}"#,
    );
    text.push('\n');
    let mut x = 0.3125_f64;
    let mut next = || {
        x = (x * 7.123456789 + 0.1).fract();
        x * 2.0 - 1.0
    };
    for stream in 0..4 {
        match stream {
            0 => text.push_str("{\"type\":\"stream\"}\n"),
            1 => text.push_str("{\"type\":\"stream\",\"id\":7,\"true_hypothesis\":2}\n"),
            _ => text.push_str(&format!(
                "{{\"type\":\"stream\",\"id\":\"s{stream}\",\"true_params\":[0.1,{}]}}\n",
                next()
            )),
        }
        for step in 0..5 + stream {
            let a = 2 + step % 3;
            let rows: Vec<String> = (0..a).map(|_| format!("[{},{}]", next(), next())).collect();
            let outcome = if step % 4 == 3 {
                String::new()
            } else {
                format!(",\"outcome\":{}", next() * 3.0)
            };
            text.push_str(&format!(
                "{{\"type\":\"step\",\"action\":{}{outcome},\"candidates\":[{}]}}\n",
                step % a,
                rows.join(",")
            ));
        }
    }
    text
}

#[test]
fn a_contextual_log_round_trips_to_the_same_audit() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("ctx.jsonl");
    std::fs::write(&log, contextual_log()).unwrap();
    round_trip(&log, dir.path());
}

/// The batches of a Parquet report with its `line` column dropped.
fn report_without_line(path: &Path) -> Vec<RecordBatch> {
    let r = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap())
        .unwrap()
        .build()
        .unwrap();
    r.map(|b| {
        let b = b.unwrap();
        let keep: Vec<usize> = (0..b.num_columns())
            .filter(|&i| b.schema().field(i).name() != "line")
            .collect();
        b.project(&keep).unwrap()
    })
    .collect()
}

#[test]
fn small_row_groups_cut_streams_and_give_the_same_parquet_report() {
    let dir = tempfile::tempdir().unwrap();
    let text = contextual_log();
    let mut input = gpubound::log::LogReader::new(
        "ctx.jsonl",
        std::io::Cursor::new(text.clone().into_bytes()),
        Path::new("."),
        None,
    )
    .unwrap();
    let spec = input.model_spec().unwrap().clone();
    let pq = dir.path().join("groups.parquet");
    // Groups of 4 rows: streams of 5 to 8 steps straddle them.
    let mut w: Box<dyn LogWriter> = Box::new(
        ParquetLogWriter::with_rows_per_group(File::create(&pq).unwrap(), &spec, 4).unwrap(),
    );
    while let Some(e) = input.next_event().unwrap() {
        w.write_event(&e).unwrap();
    }
    assert_eq!(w.finish().unwrap(), 0);
    let groups = ParquetRecordBatchReaderBuilder::try_new(File::open(&pq).unwrap())
        .unwrap()
        .metadata()
        .num_row_groups();
    assert_eq!(groups, 26_usize.div_ceil(4));
    let jsonl = dir.path().join("ctx.jsonl");
    std::fs::write(&jsonl, &text).unwrap();
    let mut reports = Vec::new();
    for log in [&jsonl, &pq] {
        let out = dir.path().join(format!(
            "{}.report.parquet",
            s(log.file_name().unwrap().as_ref())
        ));
        ok(&[
            "audit",
            s(log),
            "--backend",
            "cpu",
            "-q",
            "--format",
            "parquet",
            "--alpha",
            "0.1,1e-3",
            "-o",
            s(&out),
        ]);
        reports.push(report_without_line(&out));
    }
    let rows: usize = reports[0].iter().map(|b| b.num_rows()).sum();
    assert!(rows > 26);
    let concat = |bs: &[RecordBatch]| arrow::compute::concat_batches(&bs[0].schema(), bs).unwrap();
    assert_eq!(concat(&reports[1]), concat(&reports[0]));
}

const MODEL: &str = r#"{"hypotheses":{"kind":"grid","k":2,"d":2},"observation":{"kind":"gaussian","sigma":1.0,"harm_threshold":1.0}}"#;

/// A table of candidate tables (`None` = null) as list<list<float64>>.
fn lists(tables: &[Option<Vec<Vec<f64>>>]) -> ArrayRef {
    let mut b = ListBuilder::new(ListBuilder::new(Float64Builder::new()));
    for t in tables {
        match t {
            Some(rows) => {
                for r in rows {
                    b.values().values().append_slice(r);
                    b.values().append(true);
                }
                b.append(true);
            }
            None => b.append_null(),
        }
    }
    Arc::new(b.finish())
}

/// Writes these columns as a Parquet file in row groups of `group` rows.
fn write_parquet(path: &Path, columns: Vec<(&str, ArrayRef)>, model: Option<&str>, group: usize) {
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
            .collect::<Vec<_>>(),
    ));
    let batch = RecordBatch::try_new(
        schema.clone(),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .unwrap();
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(group))
        .set_key_value_metadata(
            model.map(|m| vec![KeyValue::new("gpubound.model".into(), m.to_string())]),
        )
        .build();
    let mut w = ArrowWriter::try_new(File::create(path).unwrap(), schema, Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

/// Two streams of three steps in the columnar schema, bandit-style: the
/// stream's table on its first row, null after.
struct Log {
    stream: Vec<&'static str>,
    step: Vec<i64>,
    action: Vec<i64>,
    outcome: Vec<Option<f64>>,
    candidates: Vec<Option<Vec<Vec<f64>>>>,
}

fn good() -> Log {
    let t = Some(vec![vec![1.0, 0.0], vec![0.0, 1.0], vec![1.0, 1.0]]);
    Log {
        stream: vec!["a", "a", "a", "b", "b", "b"],
        step: vec![1, 2, 3, 1, 2, 3],
        action: vec![0, 2, 1, 1, 1, 0],
        outcome: vec![
            Some(0.5),
            None,
            Some(1.5),
            Some(-0.25),
            Some(2.0),
            Some(0.0),
        ],
        candidates: vec![t.clone(), None, None, t, None, None],
    }
}

impl Log {
    fn columns(&self) -> Vec<(&'static str, ArrayRef)> {
        vec![
            ("stream", Arc::new(StringArray::from(self.stream.clone()))),
            ("step", Arc::new(Int64Array::from(self.step.clone()))),
            ("action", Arc::new(Int64Array::from(self.action.clone()))),
            (
                "outcome",
                Arc::new(Float64Array::from(self.outcome.clone())),
            ),
            ("candidates", lists(&self.candidates)),
        ]
    }
}

/// The JSON Lines form of `good()`.
const GOOD_JSONL: &str = concat!(
    r#"{"type":"model","hypotheses":{"kind":"grid","k":2,"d":2},"observation":{"kind":"gaussian","sigma":1.0,"harm_threshold":1.0}}"#,
    "\n",
    r#"{"type":"stream","id":"a","candidates":[[1,0],[0,1],[1,1]]}"#,
    "\n",
    r#"{"type":"step","action":0,"outcome":0.5}"#,
    "\n",
    r#"{"type":"step","action":2}"#,
    "\n",
    r#"{"type":"step","action":1,"outcome":1.5}"#,
    "\n",
    r#"{"type":"stream","id":"b","candidates":[[1,0],[0,1],[1,1]]}"#,
    "\n",
    r#"{"type":"step","action":1,"outcome":-0.25}"#,
    "\n",
    r#"{"type":"step","action":1,"outcome":2.0}"#,
    "\n",
    r#"{"type":"step","action":0,"outcome":0.0}"#,
    "\n",
);

#[test]
fn a_hand_built_parquet_log_audits_as_its_json_lines_form() {
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("good.jsonl");
    std::fs::write(&jsonl, GOOD_JSONL).unwrap();
    let pq = dir.path().join("good.parquet");
    write_parquet(&pq, good().columns(), Some(MODEL), 2);
    let (want, _) = split_line_column(&audit_csv(&jsonl, dir.path(), &[]));
    let (got, rows) = split_line_column(&audit_csv(&pq, dir.path(), &[]));
    assert_eq!(got, want);
    // Three candidates per step, rows 1 to 6.
    let expected: Vec<String> = std::iter::once("line".to_string())
        .chain((1..=6).flat_map(|r| std::iter::repeat_n(r.to_string(), 3)))
        .collect();
    assert_eq!(rows, expected);
}

#[test]
fn int64_ids_fixed_size_lists_and_narrow_actions_read_as_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("ids.jsonl");
    std::fs::write(
        &jsonl,
        GOOD_JSONL
            .replace(r#""id":"a""#, r#""id":10"#)
            .replace(r#""id":"b""#, r#""id":-3"#),
    )
    .unwrap();
    let log = good();
    let mut cands =
        FixedSizeListBuilder::new(FixedSizeListBuilder::new(Float64Builder::new(), 2), 3);
    for t in &log.candidates {
        // A fixed-size list holds its slots even where null.
        let rows = t.clone().unwrap_or(vec![vec![0.0; 2]; 3]);
        for r in rows {
            cands.values().values().append_slice(&r);
            cands.values().append(true);
        }
        cands.append(t.is_some());
    }
    let columns: Vec<(&str, ArrayRef)> = vec![
        (
            "stream",
            Arc::new(Int64Array::from(vec![10, 10, 10, -3, -3, -3])),
        ),
        ("step", Arc::new(Int64Array::from(log.step.clone()))),
        ("action", Arc::new(Int32Array::from(vec![0, 2, 1, 1, 1, 0]))),
        ("outcome", Arc::new(Float64Array::from(log.outcome.clone()))),
        ("candidates", Arc::new(cands.finish())),
    ];
    let pq = dir.path().join("ids.parquet");
    write_parquet(&pq, columns, Some(MODEL), 4);
    let (want, _) = split_line_column(&audit_csv(&jsonl, dir.path(), &[]));
    let (got, _) = split_line_column(&audit_csv(&pq, dir.path(), &[]));
    assert_eq!(got, want);
    assert!(got[1].starts_with("10,1,") && got.last().unwrap().starts_with("-3,3,"));
}

#[test]
fn arrow_batches_in_memory_are_a_log_too() {
    let log = good();
    let columns = log.columns();
    let schema = Arc::new(
        Schema::new(
            columns
                .iter()
                .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
                .collect::<Vec<_>>(),
        )
        .with_metadata(std::collections::HashMap::from([(
            "gpubound.model".to_string(),
            MODEL.to_string(),
        )])),
    );
    let batch = RecordBatch::try_new(
        schema.clone(),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .unwrap();
    // Two batches: the second stream in a batch of its own.
    let batches = vec![Ok(batch.slice(0, 3)), Ok(batch.slice(3, 3))];
    let input = RecordBatchIterator::new(batches, schema.clone());
    let mut r =
        ColumnarReader::new("arrow", input, Path::new("."), None, &Default::default()).unwrap();
    let mut seen = Vec::new();
    while let Some(e) = r.next_event().unwrap() {
        seen.push(match e {
            LogEvent::Stream(s) => format!("stream {} at {}", s.id, s.line),
            LogEvent::Step(s) => format!(
                "step {} row {} action {} shared {} of {}",
                s.step, s.line, s.action, s.shared_table, s.table.n_candidates
            ),
        });
    }
    assert_eq!(
        seen,
        [
            "stream a at 1",
            "step 1 row 1 action 0 shared false of 3",
            "step 2 row 2 action 2 shared true of 3",
            "step 3 row 3 action 1 shared true of 3",
            "stream b at 4",
            "step 1 row 4 action 1 shared false of 3",
            "step 2 row 5 action 1 shared true of 3",
            "step 3 row 6 action 0 shared true of 3",
        ]
    );
    // Without row groups, an error names the row alone.
    let mut bad = good();
    bad.action[4] = 3;
    let columns = bad.columns();
    let batch = RecordBatch::try_new(
        schema.clone(),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .unwrap();
    let input = RecordBatchIterator::new(vec![Ok(batch)], schema);
    let mut r =
        ColumnarReader::new("arrow", input, Path::new("."), None, &Default::default()).unwrap();
    let e = loop {
        match r.next_event() {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the bad action was read"),
            Err(e) => break e.to_string(),
        }
    };
    assert_eq!(
        e,
        "arrow: row 5: action 3 is out of range: there are 3 candidates (0-based)"
    );
}

/// Audits `path` expecting bad input: exit 2, no report; returns stderr.
fn refused(path: &Path, extra: &[&str]) -> String {
    let out_file = path.with_extension("csv");
    let mut args = vec![
        "audit",
        s(path),
        "--backend",
        "cpu",
        "-q",
        "-o",
        s(&out_file),
    ];
    args.extend_from_slice(extra);
    let out = gpubound(&args);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{path:?}: {err}");
    assert!(!out_file.exists(), "{path:?}: a report was written");
    assert!(err.contains(s(path)), "{err}");
    err
}

/// Writes `good()` changed by `change` (row groups of 2 rows: 3 groups)
/// and checks the audit refuses it at `row` with `message`.
fn refused_at(name: &str, change: impl FnOnce(&mut Log), row: usize, message: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("{name}.parquet"));
    let mut log = good();
    change(&mut log);
    write_parquet(&path, log.columns(), Some(MODEL), 2);
    let err = refused(&path, &[]);
    let place = format!(
        "{}: row {row} (row group {} of 3, row {} in it): ",
        s(&path),
        (row - 1) / 2 + 1,
        (row - 1) % 2 + 1
    );
    assert!(err.contains(&format!("{place}{message}")), "{name}: {err}");
}

#[test]
fn bad_rows_are_named_by_file_row_group_and_row() {
    refused_at(
        "action",
        |l| l.action[4] = 3,
        5,
        "action 3 is out of range: there are 3 candidates (0-based)",
    );
    refused_at(
        "negative_action",
        |l| l.action[1] = -1,
        2,
        "action -1 is out of range",
    );
    refused_at(
        "ragged",
        |l| l.candidates[3] = Some(vec![vec![1.0, 0.0], vec![0.0, 1.0, 2.0]]),
        4,
        "candidates: candidate 1 has 3 features, the model's hypotheses have dimension 2",
    );
    refused_at(
        "dimension",
        |l| l.candidates[2] = Some(vec![vec![1.0, 0.0, 0.0]]),
        3,
        "candidates: candidate 0 has 3 features, the model's hypotheses have dimension 2",
    );
    refused_at(
        "nan_feature",
        |l| l.candidates[5] = Some(vec![vec![1.0, f64::NAN]]),
        6,
        "candidates: candidate 0 has a non-finite feature NaN",
    );
    refused_at(
        "infinite_outcome",
        |l| l.outcome[2] = Some(f64::INFINITY),
        3,
        "outcome must be a finite number, got inf",
    );
    refused_at(
        "gap",
        |l| l.step[2] = 4,
        3,
        "step 4 after step 2 of stream a: a gap",
    );
    refused_at(
        "repeat",
        |l| l.step[2] = 2,
        3,
        "step 2 after step 2 of stream a: steps must be 1, 2, … in order, without repeats",
    );
    refused_at(
        "interleaved",
        |l| l.stream[2] = "b",
        3,
        "stream b begins at step 3: a stream's rows are contiguous, from step 1",
    );
    refused_at(
        "no_table",
        |l| l.candidates[3] = None,
        4,
        "candidates is null and the stream's first row gives none",
    );
}

/// A change to a log's columns.
type ColumnChange = Box<dyn Fn(&mut Vec<(&str, ArrayRef)>)>;

#[test]
fn bad_columns_and_models_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, ColumnChange, Option<&str>, &str)> = vec![
        (
            "missing",
            Box::new(|c| {
                c.remove(2);
            }),
            Some(MODEL),
            "missing column `action`",
        ),
        (
            "wrong_type",
            Box::new(|c| c[3].1 = Arc::new(StringArray::from(vec!["1"; 6]))),
            Some(MODEL),
            "column `outcome` is Utf8, expected float64",
        ),
        (
            "unknown",
            Box::new(|c| c.push(("note", Arc::new(StringArray::from(vec!["x"; 6]))))),
            Some(MODEL),
            "unknown column `note`",
        ),
        ("no_model", Box::new(|_| {}), None, "no model"),
        (
            "bad_model",
            Box::new(|_| {}),
            Some(r#"{"hypotheses":{"kind":"grid","k":2},"observation":{"kind":"bernoulli"}}"#),
            "model: missing field `d` of the grid",
        ),
    ];
    for (name, change, model, message) in cases {
        let path = dir.path().join(format!("{name}.parquet"));
        let mut columns = good().columns();
        change(&mut columns);
        write_parquet(&path, columns, model, 2);
        let err = refused(&path, &[]);
        assert!(err.contains(message), "{name}: {err}");
    }
}

#[test]
fn a_truncated_or_corrupt_file_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("whole.parquet");
    write_parquet(&path, good().columns(), Some(MODEL), 2);
    let bytes = std::fs::read(&path).unwrap();
    for (name, data) in [
        ("cut", bytes[..bytes.len() / 2].to_vec()),
        ("cut_end", bytes[..bytes.len() - 1].to_vec()),
        ("empty", Vec::new()),
    ] {
        let p = dir.path().join(format!("{name}.parquet"));
        std::fs::write(&p, data).unwrap();
        let err = refused(&p, &[]);
        assert!(err.contains("not a readable Parquet file"), "{name}: {err}");
    }
    // The data pages damaged, the footer whole: the error names a row group.
    let mut damaged = bytes.clone();
    for b in &mut damaged[4..bytes.len() / 3] {
        *b = 0xAB;
    }
    let p = dir.path().join("damaged.parquet");
    std::fs::write(&p, damaged).unwrap();
    let err = refused(&p, &[]);
    assert!(err.contains("row group 1 of 3"), "{err}");
}

#[test]
fn the_format_follows_the_name_or_the_option() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.data");
    write_parquet(&path, good().columns(), Some(MODEL), 2);
    // Read as JSON Lines by default: not JSON.
    let err = refused(&path, &[]);
    assert!(err.contains("malformed JSON"), "{err}");
    let jsonl = dir.path().join("good.jsonl");
    std::fs::write(&jsonl, GOOD_JSONL).unwrap();
    let (want, _) = split_line_column(&audit_csv(&jsonl, dir.path(), &[]));
    let (got, _) = split_line_column(&audit_csv(
        &path,
        dir.path(),
        &["--input-format", "parquet"],
    ));
    assert_eq!(got, want);
    // Parquet cannot come from standard input.
    let out = gpubound(&[
        "audit",
        "-",
        "--input-format",
        "parquet",
        "-q",
        "--backend",
        "cpu",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be read from standard input"));
}

#[test]
fn convert_never_writes_over_its_input() {
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("good.jsonl");
    std::fs::write(&jsonl, GOOD_JSONL).unwrap();
    let out = gpubound(&[
        "convert",
        s(&jsonl),
        "-o",
        s(&jsonl),
        "--output-format",
        "jsonl",
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&jsonl).unwrap(), GOOD_JSONL);
}

/// `log` cut into Parquet files of rows `[cuts[i], cuts[i+1])` in a
/// folder: `part-0.parquet`, `part-1.parquet`, …
fn folder_of(dir: &Path, log: &Log, cuts: &[usize]) -> std::path::PathBuf {
    let folder = dir.join("log");
    std::fs::create_dir(&folder).unwrap();
    for (i, w) in cuts.windows(2).enumerate() {
        let columns = log
            .columns()
            .into_iter()
            .map(|(n, a)| (n, a.slice(w[0], w[1] - w[0])))
            .collect();
        write_parquet(
            &folder.join(format!("part-{i}.parquet")),
            columns,
            Some(MODEL),
            100,
        );
    }
    folder
}

#[test]
fn a_folder_of_parquet_files_is_one_log_rows_numbered_across_them() {
    let dir = tempfile::tempdir().unwrap();
    let one = dir.path().join("one.parquet");
    write_parquet(&one, good().columns(), Some(MODEL), 100);
    // cut inside both streams: a stream may go on in the next file
    let folder = folder_of(dir.path(), &good(), &[0, 2, 5, 6]);
    std::fs::write(folder.join("_SUCCESS"), "").unwrap();
    let want = audit_csv(&one, dir.path(), &[]);
    assert_eq!(audit_csv(&folder, dir.path(), &[]), want);
    assert!(want.lines().count() > 6);

    // an output that would replace one of its files is refused
    let part = folder.join("part-1.parquet");
    let before = std::fs::read(&part).unwrap();
    let out = gpubound(&["audit", s(&folder), "-q", "-o", s(&part)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is a file of the log"));
    assert_eq!(std::fs::read(&part).unwrap(), before);
}

#[test]
fn a_bad_row_of_a_folder_is_named_by_its_row_in_the_log_and_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = good();
    log.action[4] = 3;
    let folder = folder_of(dir.path(), &log, &[0, 2, 5, 6]);
    let err = refused(&folder, &[]);
    let want = format!(
        "{}: row 5 ({}, row group 1 of 1, row 3 in it): action 3 is out of range",
        s(&folder),
        s(&folder.join("part-1.parquet"))
    );
    assert!(err.contains(&want), "{err}\nwanted: {want}");

    // a file whose columns differ from the first's
    let dir = tempfile::tempdir().unwrap();
    let folder = folder_of(dir.path(), &good(), &[0, 3, 6]);
    let mut columns = good().columns();
    columns[1].1 = Arc::new(Int32Array::from(vec![1, 2, 3, 1, 2, 3]));
    write_parquet(&folder.join("part-1.parquet"), columns, Some(MODEL), 100);
    let err = refused(&folder, &[]);
    assert!(
        err.contains("part-1.parquet: its columns or its model differ from"),
        "{err}"
    );

    // a folder without Parquet files
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert!(refused(&empty, &[]).contains("a folder without .parquet files"));
}
