//! The library's front door (`gpubound::api`), which the CLI and the Python
//! binding both use: its in-memory Arrow rows are the Parquet report's, and
//! its summary as data states what the text states.

use std::fs::File;
use std::path::Path;
use std::process::Command;

use arrow::array::{Array, BooleanArray, StringArray, UInt64Array};
use arrow::compute::concat_batches;
use arrow::record_batch::RecordBatch;
use gpubound::api::{AuditJob, AuditOptions};
use gpubound::engine::BackendChoice;
use gpubound::log::{self, Limits};
use gpubound::report::parquet::BatchCollector;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

fn example() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/exploding_bandit.jsonl")
        .display()
        .to_string()
}

fn options() -> AuditOptions {
    AuditOptions {
        delta: vec![0.05, 0.5],
        thresholds: vec![0.01, 0.2],
        backend: BackendChoice::Cpu,
        ..AuditOptions::default()
    }
}

fn cli_parquet(log: &str, out: &Path) -> RecordBatch {
    let status = Command::new(env!("CARGO_BIN_EXE_gpubound"))
        .args(["audit", log, "--delta", "0.05,0.5", "-C", "0.01,0.2"])
        .args(["--backend", "cpu", "-q", "--format", "parquet", "-o"])
        .arg(out)
        .status()
        .unwrap();
    assert!(status.success());
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(out).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
    concat_batches(&batches[0].schema(), &batches).unwrap()
}

fn api_rows(log: &str) -> (RecordBatch, serde_json::Value, String) {
    let input = log::open(log, None, &Limits::default()).unwrap();
    let job = AuditJob::new(Box::new(input), &options()).unwrap();
    let settings = job.report_settings().clone();
    let mut rows = BatchCollector::new(&settings);
    let outcome = job.run(&mut rows, false, &mut |_| {}).unwrap();
    let schema = rows.schema();
    let batch = concat_batches(&schema, &rows.into_batches()).unwrap();
    (batch, outcome.summary_json(), outcome.summary_text())
}

#[test]
fn in_memory_rows_are_the_parquet_reports_rows() {
    let dir = tempfile::tempdir().unwrap();
    let log = example();
    let from_cli = cli_parquet(&log, &dir.path().join("r.parquet"));
    let (from_api, _, _) = api_rows(&log);
    assert!(from_api.num_rows() > 100);
    // Parquet keeps the schema's field names, types and nullability.
    assert_eq!(from_api.schema().fields(), from_cli.schema().fields());
    assert_eq!(from_api, from_cli);
}

#[test]
fn summary_as_data_counts_what_the_rows_say() {
    let (rows, summary, text) = api_rows(&example());
    let col = |name: &str| rows.column_by_name(name).unwrap().clone();
    let taken = col("taken");
    let taken = taken.as_any().downcast_ref::<BooleanArray>().unwrap();
    let streams = col("stream");
    let streams = streams.as_any().downcast_ref::<StringArray>().unwrap();
    let steps = col("step");
    let steps = steps.as_any().downcast_ref::<UInt64Array>().unwrap();
    let n_steps = (0..rows.num_rows()).filter(|&i| taken.value(i)).count();
    assert_eq!(summary["steps"], n_steps);
    let distinct: std::collections::BTreeSet<&str> =
        (0..rows.num_rows()).map(|i| streams.value(i)).collect();
    assert_eq!(summary["streams"], distinct.len());
    let mut checked = 0;
    let mut without_safer = 0;
    for (c, per) in summary["rejections"].as_object().unwrap() {
        for (label, counts) in per.as_object().unwrap() {
            let rejected = col(&format!("rejected[{label}][C={c}]"));
            let rejected = rejected.as_any().downcast_ref::<BooleanArray>().unwrap();
            let n = (0..rows.num_rows())
                .filter(|&i| taken.value(i) && rejected.is_valid(i) && rejected.value(i))
                .count();
            assert_eq!(counts["rejected"], n, "{label} at C = {c}");
            // of those, the steps where some candidate's estimate is ≤ C
            let est = col(label);
            let est = est
                .as_any()
                .downcast_ref::<arrow::array::Float64Array>()
                .unwrap();
            let line = col("line");
            let line = line.as_any().downcast_ref::<UInt64Array>().unwrap();
            let threshold: f64 = c.parse().unwrap();
            let safer = (0..rows.num_rows())
                .filter(|&i| taken.value(i) && rejected.is_valid(i) && rejected.value(i))
                .filter(|&i| {
                    (0..rows.num_rows()).any(|j| {
                        line.value(j) == line.value(i)
                            && est.is_valid(j)
                            && est.value(j) <= threshold
                    })
                })
                .count();
            assert_eq!(counts["with_safer_candidate"], safer, "{label} at C = {c}");
            without_safer += n - safer;
            // and the text says the same number on that estimator's line
            assert!(
                text.contains(&format!("{label:<36} {n:>7}")),
                "{label}: {text}"
            );
            checked += 1;
        }
    }
    assert_eq!(
        checked,
        2 * (2 + 3 * 2 + 1),
        "every estimator at both thresholds"
    );
    // rejections with no candidate ≤ C happen: the count is not `rejected`
    assert!(without_safer > 0);
    let risky = &summary["riskiest"][0];
    let at = (0..rows.num_rows())
        .find(|&i| {
            taken.value(i)
                && streams.value(i) == risky["stream"].as_str().unwrap()
                && steps.value(i) == risky["step"].as_u64().unwrap()
        })
        .expect("the riskiest step is a row");
    let guardrail = summary["guardrail"].as_str().unwrap();
    let est = col(guardrail);
    let est = est
        .as_any()
        .downcast_ref::<arrow::array::Float64Array>()
        .unwrap();
    assert_eq!(risky["estimate"].as_f64().unwrap(), est.value(at));
    assert_eq!(summary["alphas"][1]["delta"].as_f64().unwrap(), 0.5);
}

/// A batch of steps formatted in parallel (`write_steps`, what an audit
/// uses) is, byte for byte, the steps written one at a time in log order:
/// JSON Lines and CSV, over several batches of a simulated log with many
/// short streams.
#[test]
fn a_report_written_in_batches_is_the_steps_written_one_at_a_time() {
    use gpubound::report::{self, ReportFormat};
    let dir = tempfile::tempdir().unwrap();
    let sim = dir.path().join("sim.jsonl");
    let status = Command::new(env!("CARGO_BIN_EXE_gpubound"))
        .args(["simulate", "--episodes", "400", "--seed", "9", "-q", "-o"])
        .arg(&sim)
        .status()
        .unwrap();
    assert!(status.success());
    let sim = sim.display().to_string();
    for format in [ReportFormat::Jsonl, ReportFormat::Csv] {
        let input = log::open(&sim, None, &Limits::default()).unwrap();
        let job = AuditJob::new(Box::new(input), &options()).unwrap();
        let settings = job.report_settings().clone();
        let mut batched = Vec::new();
        {
            let mut w = report::writer_for(format, &mut batched, &settings).unwrap();
            job.run(w.as_mut(), false, &mut |_| {}).unwrap();
        }

        let mut input = log::open(&sim, None, &Limits::default()).unwrap();
        let engine = gpubound::engine::cpu::CpuEngine::new();
        let audit_settings = gpubound::audit::AuditSettings {
            alphas: settings.alphas.clone(),
            shared_world: false,
            // small batches: many batch boundaries
            batch_elements: 1024 * 100,
            skip_unexplained: false,
        };
        let mut single = Vec::new();
        {
            let mut w = report::writer_for(format, &mut single, &settings).unwrap();
            gpubound::audit::run(
                &mut input,
                &engine,
                &audit_settings,
                |s| w.write_step(&s),
                |_| {},
            )
            .unwrap();
            w.finish().unwrap();
        }
        let lines = single.iter().filter(|&&b| b == b'\n').count();
        assert!(lines > 1000, "{format:?}: {lines} lines");
        assert!(batched == single, "{format:?}: the reports differ");
    }
}
