//! What `gpubound.ray` and `gpubound.spark` need of the library beyond an
//! audit: the report's schema before any row, a shard's summary from its
//! report rows, and the merge of the shards' summaries. Conversions only.

use gpubound::api::{self, AuditOptions};
use gpubound::log::Limits;
use gpubound::report::parquet;
use gpubound::report::shards;
use gpubound::Error;
use pyo3::prelude::*;

use crate::arrow::{self, ArrowStream};
use crate::audit::load_model;
use crate::errors::{to_py, IntoPyResult};

fn parse(name: &str, text: &str) -> gpubound::Result<serde_json::Value> {
    serde_json::from_str(text).map_err(|e| Error::input(name, None, format!("not a summary: {e}")))
}

fn options(
    alpha: Vec<f64>,
    delta: Vec<f64>,
    prior_floor: Option<f64>,
    thresholds: Vec<f64>,
    top: usize,
) -> AuditOptions {
    AuditOptions {
        alpha,
        delta,
        prior_floor,
        thresholds,
        top,
        ..AuditOptions::default()
    }
}

/// The report's Arrow schema (`gpubound audit --format parquet`'s columns)
/// for a model and settings, as an empty Arrow stream.
#[pyfunction]
#[pyo3(signature = (*, model_json, alpha=Vec::new(), delta=Vec::new(), prior_floor=None,
    thresholds=vec![0.01]))]
pub fn report_schema(
    model_json: String,
    alpha: Vec<f64>,
    delta: Vec<f64>,
    prior_floor: Option<f64>,
    thresholds: Vec<f64>,
) -> PyResult<ArrowStream> {
    let (model, name) = load_model(Some(model_json), None, &Limits::default())
        .py()?
        .expect("a model was given");
    let o = options(alpha, delta, prior_floor, thresholds, 10);
    let settings = api::report_settings(&model, &o, &name).py()?;
    Ok(ArrowStream::from_batches(
        parquet::schema(&settings),
        Vec::new(),
    ))
}

/// A shard's summary (JSON) from its report rows: whole streams, in order of
/// line, then candidate; `model_json` and the settings are the audit's.
#[pyfunction]
#[pyo3(signature = (rows, *, model_json, alpha=Vec::new(), delta=Vec::new(), prior_floor=None,
    thresholds=vec![0.01], top=10, name="<report>"))]
#[allow(clippy::too_many_arguments)]
pub fn summarise_report(
    py: Python<'_>,
    rows: &Bound<'_, PyAny>,
    model_json: String,
    alpha: Vec<f64>,
    delta: Vec<f64>,
    prior_floor: Option<f64>,
    thresholds: Vec<f64>,
    top: usize,
    name: &str,
) -> PyResult<String> {
    let (_, batches) = arrow::read_all(py, arrow::import(rows)?)?;
    py.detach(|| {
        let (model, _) =
            load_model(Some(model_json), None, &Limits::default())?.expect("a model was given");
        let o = options(alpha, delta, prior_floor, thresholds, top);
        api::summarise_report(&batches, &model, &o, name).map(|v| v.to_string())
    })
    .py()
}

/// The summaries (JSON) of shards of one audit, merged: see
/// `report::shards::merge_summaries`.
#[pyfunction]
#[pyo3(signature = (parts, *, log, seconds, top=10))]
pub fn merge_summaries(
    parts: Vec<String>,
    log: &str,
    seconds: f64,
    top: usize,
) -> PyResult<String> {
    let parsed = parts
        .iter()
        .map(|p| parse("summaries", p))
        .collect::<gpubound::Result<Vec<_>>>()
        .map_err(to_py)?;
    shards::merge_summaries(&parsed, log, seconds, top)
        .map(|v| v.to_string())
        .py()
}
