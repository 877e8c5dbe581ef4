//! An audit in shards (what `gpubound.ray` and `gpubound.spark` run): a
//! shard of whole streams whose rows carry their `line` in the log audits
//! to the whole audit's rows for those streams; the shards' summaries merge
//! to the whole audit's summary; a summary read back from the report's rows
//! is the audit's; and a `line` column that shows a stream split in two, or
//! rows out of order, is bad input at the log's row.

use std::fs::File;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch, StringArray, UInt64Array};
use arrow::compute::{concat_batches, filter_record_batch, sort_to_indices, take_record_batch};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatchIterator;
use gpubound::api::{self, AuditJob, AuditOptions};
use gpubound::engine::BackendChoice;
use gpubound::log::columnar::ColumnarReader;
use gpubound::log::Limits;
use gpubound::report::parquet::BatchCollector;
use gpubound::report::shards::merge_summaries;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;

fn options() -> AuditOptions {
    AuditOptions {
        delta: vec![0.05, 0.5],
        thresholds: vec![0.01, 0.2],
        backend: BackendChoice::Cpu,
        ..AuditOptions::default()
    }
}

/// A simulated log (120 streams) as one Arrow batch with its model, and
/// that model's JSON.
fn simulated(dir: &Path) -> (RecordBatch, String) {
    let jsonl = dir.join("sim.jsonl");
    let parquet = dir.join("sim.parquet");
    let run = |args: &[&str]| {
        let ok = Command::new(env!("CARGO_BIN_EXE_gpubound"))
            .args(args)
            .status()
            .unwrap()
            .success();
        assert!(ok, "{args:?}");
    };
    let s = |p: &Path| p.to_str().unwrap().to_string();
    run(&[
        "simulate",
        "--episodes",
        "120",
        "--agent",
        "boltzmann",
        "--seed",
        "7",
        "-q",
        "-o",
        &s(&jsonl),
    ]);
    run(&["convert", &s(&jsonl), "-o", &s(&parquet), "-q"]);
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(&parquet).unwrap()).unwrap();
    let schema = builder.schema().clone();
    let batches: Vec<RecordBatch> = builder.build().unwrap().map(|b| b.unwrap()).collect();
    let model = schema.metadata()["gpubound.model"].clone();
    (concat_batches(&schema, &batches).unwrap(), model)
}

/// `rows` with a `line` column: `lines[i]` for row i.
fn with_lines(rows: &RecordBatch, lines: Vec<Option<u64>>) -> RecordBatch {
    let mut fields: Vec<Field> = rows
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new("line", DataType::UInt64, true));
    let mut columns: Vec<ArrayRef> = rows.columns().to_vec();
    columns.push(Arc::new(UInt64Array::from(lines)));
    RecordBatch::try_new(
        Arc::new(Schema::new_with_metadata(
            fields,
            rows.schema().metadata().clone(),
        )),
        columns,
    )
    .unwrap()
}

fn numbered(rows: &RecordBatch) -> RecordBatch {
    with_lines(rows, (1..=rows.num_rows() as u64).map(Some).collect())
}

/// Audits `rows` (one Arrow batch) as the Python binding does.
fn audit(rows: RecordBatch) -> gpubound::Result<(RecordBatch, Value)> {
    let schema = rows.schema();
    let input = ColumnarReader::new(
        "shard",
        RecordBatchIterator::new([Ok(rows)], schema),
        Path::new("."),
        None,
        &Limits::default(),
    )?;
    let job = AuditJob::new(Box::new(input), &options())?;
    let settings = job.report_settings().clone();
    let mut out = BatchCollector::new(&settings);
    let outcome = job.run(&mut out, false, &mut |_| {})?;
    let schema = out.schema();
    Ok((
        concat_batches(&schema, &out.into_batches()).unwrap(),
        outcome.summary_json(),
    ))
}

/// The summary without what describes the run (its name, time, device).
fn settled(mut v: Value) -> Value {
    for k in ["log", "seconds", "backend"] {
        v.as_object_mut().unwrap().remove(k);
    }
    v
}

fn stream_ids(rows: &RecordBatch) -> Vec<String> {
    let a = rows.column_by_name("stream").unwrap();
    let a = a.as_any().downcast_ref::<StringArray>().unwrap();
    (0..a.len()).map(|i| a.value(i).to_string()).collect()
}

#[test]
fn shards_of_whole_streams_give_the_whole_audit_and_its_summary() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = simulated(dir.path());
    let (whole_rows, whole) = audit(log.clone()).unwrap();
    // numbering the rows as they are changes nothing
    let (numbered_rows, numbered_summary) = audit(numbered(&log)).unwrap();
    assert_eq!(numbered_rows, whole_rows);
    assert_eq!(settled(numbered_summary), settled(whole.clone()));

    // three shards by a hash of the stream id: each holds whole streams,
    // interleaved in the log, their rows keeping the log's lines
    let ids = stream_ids(&log);
    let shard_of = |id: &str| id.bytes().map(usize::from).sum::<usize>() % 3;
    let all = numbered(&log);
    let mut parts = Vec::new();
    let mut rows = Vec::new();
    for k in 0..3 {
        let mask = BooleanArray::from(ids.iter().map(|id| shard_of(id) == k).collect::<Vec<_>>());
        let shard = filter_record_batch(&all, &mask).unwrap();
        assert!(shard.num_rows() > 0 && shard.num_rows() < log.num_rows());
        let (r, s) = audit(shard).unwrap();
        rows.push(r);
        parts.push(s);
    }
    let merged = merge_summaries(&parts, "shards", 1.5, 10).unwrap();
    assert_eq!(merged["log"], "shards");
    assert_eq!(merged["seconds"], 1.5);
    assert!(whole["streams"].as_u64().unwrap() == 120);
    assert!(!whole["riskiest"].as_array().unwrap().is_empty());
    assert_eq!(settled(merged), settled(whole.clone()));

    // the shards' rows, in line order, are the whole audit's
    let joined = concat_batches(&rows[0].schema(), &rows).unwrap();
    let lines = joined.column_by_name("line").unwrap();
    let order = sort_to_indices(lines, None, None).unwrap();
    // rows of one step share a line; a stable order keeps their candidates in order
    let mut idx: Vec<u32> = order.values().to_vec();
    let line_of = |i: u32| {
        lines
            .as_any()
            .downcast_ref::<UInt64Array>()
            .unwrap()
            .value(i as usize)
    };
    idx.sort_by_key(|&i| (line_of(i), i));
    let sorted = take_record_batch(&joined, &arrow::array::UInt32Array::from(idx)).unwrap();
    assert_eq!(sorted, whole_rows);
}

#[test]
fn a_summary_read_back_from_the_report_rows_is_the_audits() {
    let dir = tempfile::tempdir().unwrap();
    let (log, model) = simulated(dir.path());
    let (rows, summary) = audit(log).unwrap();
    let model = gpubound::log::model_from_json(
        "model",
        model.as_bytes(),
        Path::new("."),
        &Limits::default(),
    )
    .unwrap();
    let back = api::summarise_report(
        std::slice::from_ref(&rows),
        &model,
        &options(),
        "report",
        None,
    )
    .unwrap();
    assert_eq!(settled(back.clone()), settled(summary));
    // Spark's report has signed integers: the same summary
    let signed: Vec<ArrayRef> = rows
        .columns()
        .iter()
        .map(|c| match c.data_type() {
            DataType::UInt64 => arrow::compute::cast(c, &DataType::Int64).unwrap(),
            _ => c.clone(),
        })
        .collect();
    let fields: Vec<Field> = rows
        .schema()
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::UInt64 => Field::new(f.name(), DataType::Int64, f.is_nullable()),
            _ => f.as_ref().clone(),
        })
        .collect();
    let signed = RecordBatch::try_new(Arc::new(Schema::new(fields)), signed).unwrap();
    let again = api::summarise_report(&[signed], &model, &options(), "report", None).unwrap();
    assert_eq!(again, back);
}

#[test]
fn merged_riskiest_steps_keep_one_machines_order() {
    let step = |line: u64, estimate: f64| {
        serde_json::json!({"stream": "s", "step": 1, "line": line, "action": 0,
            "estimate": estimate, "oracle": null, "safest_candidate": 0, "safest_estimate": 0.0})
    };
    let part = |riskiest: Vec<Value>| {
        serde_json::json!({"log": "x", "model": "m", "backend": "cpu", "streams": 1, "steps": 2,
            "observed_steps": 2, "harmful_outcomes": 0, "triples": 10, "seconds": 0.1,
            "streams_with_truth": 0, "prior_floor": 0.5, "alphas": [], "unexplained_count": 0,
            "unexplained": [], "thresholds": [0.01], "rejections": {}, "guardrail": "g",
            "riskiest": riskiest})
    };
    // ties go to the earlier line, whichever shard holds it
    let merged = merge_summaries(
        &[
            part(vec![step(40, 0.5), step(41, 0.2)]),
            part(vec![step(7, 0.5), step(9, 0.9)]),
        ],
        "x",
        0.0,
        3,
    )
    .unwrap();
    let got: Vec<(u64, f64)> = merged["riskiest"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["line"].as_u64().unwrap(), r["estimate"].as_f64().unwrap()))
        .collect();
    assert_eq!(got, vec![(9, 0.9), (7, 0.5), (40, 0.5)]);
    assert_eq!(merged["steps"], 4);
    assert_eq!(merged["triples"], 20);
    // shards of one audit share its settings
    let mut other = part(vec![]);
    other["thresholds"] = serde_json::json!([0.2]);
    let err = merge_summaries(&[part(vec![]), other], "x", 0.0, 3).unwrap_err();
    assert!(err.to_string().contains("thresholds"), "{err}");
    assert!(merge_summaries(&[], "x", 0.0, 3)
        .unwrap_err()
        .to_string()
        .contains("empty log"));
}

fn refused(rows: RecordBatch) -> String {
    audit(rows).map(|_| ()).unwrap_err().to_string()
}

#[test]
fn lines_that_split_a_stream_or_run_backwards_are_bad_input_at_the_logs_row() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = simulated(dir.path());
    let n = log.num_rows() as u64;
    // a stream whose third step comes 100 rows after its second: split in two
    let steps = log.column_by_name("step").unwrap();
    let steps = arrow::compute::cast(steps, &DataType::UInt64).unwrap();
    let steps = steps.as_any().downcast_ref::<UInt64Array>().unwrap();
    let third = (0..steps.len()).find(|&i| steps.value(i) == 3).unwrap() as u64;
    let lines: Vec<Option<u64>> = (1..=n)
        .map(|l| Some(if l <= third { l } else { l + 100 }))
        .collect();
    let err = refused(with_lines(&log, lines));
    let want = format!(
        "shard: row {}: step 3 of stream {} at line {} does not follow its step 2 at line {third}",
        third + 101,
        stream_ids(&log)[third as usize],
        third + 101
    );
    assert!(err.contains(&want), "{err}\nwanted: {want}");
    // rows out of the log's order: a stream's first row numbered as the
    // row before it
    let j = (1..steps.len()).find(|&i| steps.value(i) == 1).unwrap() as u64;
    let lines: Vec<Option<u64>> = (1..=n)
        .map(|l| Some(if l <= j { l } else { l - 1 }))
        .collect();
    let err = refused(with_lines(&log, lines));
    assert!(
        err.contains(&format!(
            "row {}: line {j} after line {j}: rows are in the log's order",
            j + 1
        )),
        "{err}"
    );
    // a null or zero line
    let mut lines: Vec<Option<u64>> = (1..=n).map(Some).collect();
    lines[3] = None;
    assert!(refused(with_lines(&log, lines.clone())).contains("row 4: line is null"));
    lines[3] = Some(0);
    lines[0] = Some(0);
    assert!(refused(with_lines(&log, lines)).contains("line 0 is out of range"));
}

/// A report on sampled hypotheses read back from its rows: the audit's own
/// summary, its sampling totals included (draws from the prior and from the
/// sampler, the ESS, the hypotheses per step), but for the seconds spent,
/// which no row records (null).
#[test]
fn a_sampled_summary_read_back_from_its_rows_is_the_audits() {
    let dir = tempfile::tempdir().unwrap();
    let (log, model_json) = simulated(dir.path());
    let model_file = dir.path().join("m.json");
    let sampler = dir.path().join("s.bin");
    std::fs::write(&model_file, &model_json).unwrap();
    let ok = Command::new(env!("CARGO_BIN_EXE_gpubound"))
        .args(["sampler", "train", "-q", "--steps", "0", "--model"])
        .arg(&model_file)
        .arg("-o")
        .arg(&sampler)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let sampling = api::SamplerOptions {
        path: sampler.clone(),
        samples: 64,
        seed: 5,
        redraw_ess: 0.5,
        stream_indices: Vec::new(),
    };
    let options = AuditOptions {
        sampler: Some(sampling),
        ..options()
    };
    let schema = log.schema();
    let input = ColumnarReader::new(
        "shard",
        RecordBatchIterator::new([Ok(log)], schema),
        Path::new("."),
        None,
        &Limits::default(),
    )
    .unwrap();
    let job = AuditJob::new(Box::new(input), &options).unwrap();
    let settings = job.report_settings().clone();
    let mut out = BatchCollector::new(&settings);
    let outcome = job.run(&mut out, false, &mut |_| {}).unwrap();
    let rows = concat_batches(&out.schema(), &out.into_batches()).unwrap();
    let mut want = settled(outcome.summary_json());
    let model = gpubound::log::model_from_json(
        "model",
        model_json.as_bytes(),
        Path::new("."),
        &Limits::default(),
    )
    .unwrap();
    let (_, training_steps) = api::describe_sampler(&sampler).unwrap();
    let info = gpubound::audit::SamplingInfo {
        sampler: sampler.display().to_string(),
        training_steps,
        samples: 64,
        seed: 5,
        redraw_ess: 0.5,
    };
    let back = api::summarise_report(
        std::slice::from_ref(&rows),
        &model,
        &options,
        "report",
        Some(&info),
    )
    .unwrap();
    let mut back = settled(back);
    let (w, b) = (&mut want["sampling"], &mut back["sampling"]);
    for k in [
        "draw_seconds",
        "prior_seconds",
        "reweigh_seconds",
        "estimate_seconds",
    ] {
        assert!(w[k].as_f64().unwrap() >= 0.0, "{k}");
        assert_eq!(b[k], Value::Null, "{k}");
        w[k] = Value::Null;
    }
    // the audit adds the ESS in another order (streams in parallel)
    let (we, be) = (
        w["ess_mean"].as_f64().unwrap(),
        b["ess_mean"].as_f64().unwrap(),
    );
    assert!((we - be).abs() <= 1e-12 * we, "{we} {be}");
    b["ess_mean"] = w["ess_mean"].clone();
    assert_eq!(back, want);
    // what the test relies on: both kinds of draw, fewer hypotheses than H
    let s = &want["sampling"];
    assert_eq!(s["prior_draws"], want["streams"]);
    assert!(s["redraws"].as_u64().unwrap() > 0);
    assert!(want["triples"].as_u64().unwrap() < 64 * 10 * want["steps"].as_u64().unwrap());
}
