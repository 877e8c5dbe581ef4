//! What `gpubound.ray` and `gpubound.spark` need of the library beyond an
//! audit: the report's schema before any row, a shard's summary from its
//! report rows, and the merge of the shards' summaries. Conversions only.

use gpubound::api::{self, AuditOptions};
use gpubound::audit::SamplingInfo;
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
    thresholds=vec![0.01], sampled=false))]
pub fn report_schema(
    model_json: String,
    alpha: Vec<f64>,
    delta: Vec<f64>,
    prior_floor: Option<f64>,
    thresholds: Vec<f64>,
    sampled: bool,
) -> PyResult<ArrowStream> {
    let (model, name) = load_model(Some(model_json), None, &limits(sampled))
        .py()?
        .expect("a model was given");
    let o = options(alpha, delta, prior_floor, thresholds, 10);
    let mut settings = api::report_settings(&model, &o, &name).py()?;
    settings.sampled = sampled;
    Ok(ArrowStream::from_batches(
        parquet::schema(&settings),
        Vec::new(),
    ))
}

/// A shard's summary (JSON) from its report rows: whole streams, in order of
/// line, then candidate; `model_json` and the settings are the audit's.
#[pyfunction]
#[pyo3(signature = (rows, *, model_json, alpha=Vec::new(), delta=Vec::new(), prior_floor=None,
    thresholds=vec![0.01], top=10, name="<report>", sampling=None))]
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
    sampling: Option<String>,
) -> PyResult<String> {
    let (_, batches) = arrow::read_all(py, arrow::import(rows)?)?;
    py.detach(|| {
        let sampling = sampling.map(|s| sampling_info(&s)).transpose()?;
        let (model, _) = load_model(Some(model_json), None, &limits(sampling.is_some()))?
            .expect("a model was given");
        let o = options(alpha, delta, prior_floor, thresholds, top);
        api::summarise_report(&batches, &model, &o, name, sampling.as_ref()).map(|v| v.to_string())
    })
    .py()
}

/// The limits a model is read with: a grid too large to enumerate is read
/// for an audit on sampled hypotheses.
fn limits(sampled: bool) -> Limits {
    Limits {
        sampled_grid: sampled,
        ..Limits::default()
    }
}

/// `summarise_report`'s `sampling`: JSON with the sampler file, its
/// training steps, the draws per set, the seed and the redraw rule.
fn sampling_info(text: &str) -> gpubound::Result<SamplingInfo> {
    let bad = |what: &str| Error::Setting(format!("sampling: {what}"));
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| bad(&e.to_string()))?;
    let obj = v.as_object().ok_or_else(|| bad("not a JSON object"))?;
    const FIELDS: [&str; 5] = ["sampler", "training_steps", "samples", "seed", "redraw_ess"];
    if let Some(k) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(bad(&format!("unknown field `{k}`")));
    }
    let count = |k: &str| {
        v[k].as_u64()
            .ok_or_else(|| bad(&format!("`{k}` must be a count")))
    };
    Ok(SamplingInfo {
        sampler: v["sampler"]
            .as_str()
            .ok_or_else(|| bad("`sampler` must be a string"))?
            .to_string(),
        training_steps: count("training_steps")?,
        samples: count("samples")? as usize,
        seed: count("seed")?,
        redraw_ess: v["redraw_ess"]
            .as_f64()
            .ok_or_else(|| bad("`redraw_ess` must be a number"))?,
    })
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
