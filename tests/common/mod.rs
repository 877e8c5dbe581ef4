//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::io::Cursor;
use std::path::{Path, PathBuf};

use gpubound::audit::{self, AuditSettings, AuditTotals, EventSource, StepResult};
use gpubound::engine::Engine;
use gpubound::estimators::Alphas;
use gpubound::log::LogReader;

/// `../shared/reference` beside the crate (the CI clone has it there too).
pub fn reference_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference")
}

/// Asserts `got ≈ want` within a relative or an absolute tolerance.
pub fn close(got: f64, want: f64, rel: f64, abs: f64, what: &str) {
    let d = (got - want).abs();
    assert!(
        d <= abs || d <= rel * want.abs(),
        "{what}: got {got:e}, want {want:e} (|Δ| = {d:e})"
    );
}

/// Audits a log given as text, with these α and prior floor.
pub fn audit_text(text: &str, alphas: &[f64], floor: f64, engine: &dyn Engine) -> Vec<StepResult> {
    audit_text_batched(text, alphas, floor, engine, audit::DEFAULT_BATCH_ELEMENTS)
}

/// A reader over a log held in a string.
pub fn reader(text: &str) -> LogReader<Cursor<Vec<u8>>> {
    LogReader::new(
        "test.jsonl",
        Cursor::new(text.as_bytes().to_vec()),
        Path::new("."),
        None,
    )
    .unwrap()
}

/// `audit_text` with a given batch size (in step × hypothesis pairs).
pub fn audit_text_batched(
    text: &str,
    alphas: &[f64],
    floor: f64,
    engine: &dyn Engine,
    batch_elements: usize,
) -> Vec<StepResult> {
    let settings = AuditSettings {
        alphas: Alphas::new(alphas.to_vec(), floor).unwrap(),
        shared_world: false,
        batch_elements,
        skip_unexplained: false,
    };
    audit_source(&mut reader(text), engine, &settings)
}

/// Every step's result of an audit of `source`.
pub fn audit_source<S: EventSource>(
    source: &mut S,
    engine: &dyn Engine,
    settings: &AuditSettings,
) -> Vec<StepResult> {
    audit_source_totals(source, engine, settings).0
}

/// `audit_source`, and the audit's totals.
pub fn audit_source_totals<S: EventSource>(
    source: &mut S,
    engine: &dyn Engine,
    settings: &AuditSettings,
) -> (Vec<StepResult>, AuditTotals) {
    let mut out = Vec::new();
    let totals = audit::run(
        source,
        engine,
        settings,
        |s| {
            out.push(s);
            Ok(())
        },
        |_| {},
    )
    .unwrap_or_else(|e| panic!("audit on {}: {e}", engine.info()));
    (out, totals)
}

/// The normalised log posterior before every step of a one-stream log.
pub fn log_posteriors(text: &str) -> Vec<Vec<f64>> {
    use gpubound::engine::{cpu::CpuEngine, Batch, BatchStep};
    let mut reader = reader(text);
    let model = reader.model().clone();
    let mut batch = Batch::new(&model);
    let mut table = None;
    while let Some(ev) = reader.next_event().unwrap() {
        if let gpubound::log::LogEvent::Step(s) = ev {
            let t = *table.get_or_insert_with(|| batch.push_table((*s.table).clone()));
            batch.push_step(BatchStep {
                table: t,
                action: s.action as u32,
                outcome: s.outcome,
            });
        }
    }
    let engine = CpuEngine::new();
    let mut prepared = engine.prepare(&batch).unwrap();
    let mut rows = prepared.log_likelihoods().unwrap();
    let mut carry = model.hypotheses.log_prior();
    gpubound::posterior::accumulate(&mut carry, rows.view_mut());
    rows.rows()
        .into_iter()
        .map(|r| {
            let lse = gpubound::posterior::log_sum_exp(r.as_slice().unwrap());
            r.iter().map(|v| v - lse).collect()
        })
        .collect()
}

/// A GPU engine whose kernels have this shape whatever the adapter's kind
/// (lavapipe's own is `Serial`), one per shape for the whole test binary.
/// Panics with advice when no wgpu adapter is found.
pub fn gpu_engine(
    shape: gpubound::engine::gpu::KernelShape,
) -> &'static gpubound::engine::gpu::GpuEngine {
    use gpubound::engine::gpu::{GpuEngine, KernelShape};
    use std::sync::OnceLock;
    static SERIAL: OnceLock<Result<GpuEngine, String>> = OnceLock::new();
    static PARALLEL: OnceLock<Result<GpuEngine, String>> = OnceLock::new();
    let cell = match shape {
        KernelShape::Serial => &SERIAL,
        KernelShape::Parallel => &PARALLEL,
    };
    match cell.get_or_init(|| GpuEngine::with_shape(shape).map_err(|e| e.to_string())) {
        Ok(g) => g,
        Err(e) => panic!(
            "the GPU tests need a wgpu adapter and found none ({e}). Install a Vulkan driver \
             (mesa-vulkan-drivers provides lavapipe) or run with WGPU_BACKEND=gl for llvmpipe."
        ),
    }
}

/// A JSON array of numbers.
pub fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}
