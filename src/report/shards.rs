//! Summaries of an audit run in shards (a cluster's tasks, each auditing
//! whole streams): merging the shards' summaries into the one a single
//! machine gives, and summarising a shard from its report rows alone.
//!
//! Streams are independent, so every count of a summary adds over shards;
//! the riskiest steps are each shard's top N merged to the global top N, in
//! the single machine's order (riskiest first, earlier lines first on ties),
//! which holds when every row carries its line in the whole log.

use std::cmp::Ordering;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type, UInt64Type};
use serde_json::{Map, Value};

use super::summary::{Summary, SummaryStep};
use super::ReportSettings;
use crate::audit::{AuditTotals, SamplingInfo, SamplingTotals, MAX_LISTED_UNEXPLAINED};
use crate::estimators::{CandidateEstimates, Estimator, EstimatorKind};
use crate::model::Model;
use crate::{Error, Result};

/// The step being gathered from a report's rows: stream, step, line, the
/// action taken (once its row is seen) and the outcome.
type OpenStep = (Arc<str>, usize, usize, Option<usize>, Option<f64>);

fn bad(name: &str, message: impl Into<String>) -> Error {
    Error::input(name, None, message)
}

/// Fields every shard must state alike: they come from the settings.
const SAME: [&str; 5] = ["model", "prior_floor", "alphas", "thresholds", "guardrail"];
/// Counts that add.
const SUMS: [&str; 7] = [
    "streams",
    "steps",
    "observed_steps",
    "harmful_outcomes",
    "triples",
    "streams_with_truth",
    "unexplained_count",
];

fn line_of(v: &Value) -> u64 {
    v["line"].as_u64().unwrap_or(u64::MAX)
}

/// Merges the summaries (`Summary::to_json`) of shards that audited
/// disjoint sets of whole streams of one log with one set of options.
/// `log` and `seconds` describe the whole run; `top` is the number of
/// riskiest steps kept.
pub fn merge_summaries(parts: &[Value], log: &str, seconds: f64, top: usize) -> Result<Value> {
    let name = "summaries";
    let first = parts
        .first()
        .ok_or_else(|| bad(log, "empty log: it holds no steps"))?;
    let mut merged = first.clone();
    let obj = merged
        .as_object_mut()
        .ok_or_else(|| bad(name, "a summary is not a JSON object"))?;
    for (i, p) in parts.iter().enumerate().skip(1) {
        for k in SAME {
            if p.get(k) != first.get(k) {
                return Err(bad(
                    name,
                    format!("shard {} states another `{k}` than shard 1: shards of one audit share its model and settings", i + 1),
                ));
            }
        }
    }
    for k in SUMS {
        let mut total = 0u64;
        for p in parts {
            total += p[k]
                .as_u64()
                .ok_or_else(|| bad(name, format!("`{k}` is not a count")))?;
        }
        obj.insert(k.into(), total.into());
    }
    if first.get("sampling").is_some() {
        let sampling = merge_sampling(parts)?;
        obj.insert("sampling".into(), sampling);
    }
    // backends: one when every shard ran on the same kind of device
    let mut backends: Vec<&str> = parts.iter().filter_map(|p| p["backend"].as_str()).collect();
    backends.sort_unstable();
    backends.dedup();
    obj.insert("backend".into(), backends.join("; ").into());
    obj.insert("log".into(), log.into());
    obj.insert("seconds".into(), seconds.into());

    let mut unexplained: Vec<Value> = parts
        .iter()
        .flat_map(|p| p["unexplained"].as_array().cloned().unwrap_or_default())
        .collect();
    unexplained.sort_by_key(line_of);
    unexplained.truncate(MAX_LISTED_UNEXPLAINED);
    obj.insert("unexplained".into(), unexplained.into());

    let mut rejections: Map<String, Value> = Map::new();
    for p in parts {
        let Some(per_threshold) = p["rejections"].as_object() else {
            continue;
        };
        for (c, per_estimator) in per_threshold {
            let into = rejections
                .entry(c.clone())
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()
                .expect("an object");
            for (e, n) in per_estimator.as_object().into_iter().flatten() {
                let slot = into.entry(e.clone()).or_insert_with(|| {
                    serde_json::json!({"rejected": 0, "with_safer_candidate": 0, "evaluated": 0})
                });
                for k in ["rejected", "with_safer_candidate", "evaluated"] {
                    let sum = slot[k].as_u64().unwrap_or(0) + n[k].as_u64().unwrap_or(0);
                    slot[k] = sum.into();
                }
            }
        }
    }
    obj.insert("rejections".into(), Value::Object(rejections));

    // riskiest first; on ties the earlier line, as one machine keeps them
    let mut riskiest: Vec<Value> = parts
        .iter()
        .flat_map(|p| p["riskiest"].as_array().cloned().unwrap_or_default())
        .collect();
    let estimate = |v: &Value| v["estimate"].as_f64().unwrap_or(f64::NEG_INFINITY);
    riskiest.sort_by(|a, b| {
        estimate(b)
            .partial_cmp(&estimate(a))
            .unwrap_or(Ordering::Equal)
            .then(line_of(a).cmp(&line_of(b)))
    });
    riskiest.truncate(top);
    obj.insert("riskiest".into(), riskiest.into());
    Ok(merged)
}

/// The shards' sampling totals (audits on sampled hypotheses) as one: the
/// draws and the seconds add, the least ESS is the least of all, the mean
/// ESS is the shards' means weighted by their steps (every step has one).
fn merge_sampling(parts: &[Value]) -> Result<Value> {
    let name = "summaries";
    let first = &parts[0]["sampling"];
    let mut merged = first.clone();
    let obj = merged
        .as_object_mut()
        .ok_or_else(|| bad(name, "`sampling` is not a JSON object"))?;
    for (i, p) in parts.iter().enumerate().skip(1) {
        for k in [
            "sampler",
            "training_steps",
            "samples",
            "seed",
            "redraw_ess",
            "guarantees",
        ] {
            if p["sampling"].get(k) != first.get(k) {
                return Err(bad(
                    name,
                    format!("shard {} states another sampling `{k}` than shard 1: shards of one audit share its sampler and settings", i + 1),
                ));
            }
        }
    }
    let number = |p: &Value, k: &str| {
        p["sampling"][k]
            .as_f64()
            .ok_or_else(|| bad(name, format!("sampling `{k}` is not a number")))
    };
    for k in ["prior_draws", "redraws"] {
        let mut total = 0u64;
        for p in parts {
            total += p["sampling"][k]
                .as_u64()
                .ok_or_else(|| bad(name, format!("sampling `{k}` is not a count")))?;
        }
        obj.insert(k.into(), total.into());
    }
    // seconds add; a summary read back from rows knows none (null)
    for k in [
        "draw_seconds",
        "prior_seconds",
        "reweigh_seconds",
        "estimate_seconds",
    ] {
        let mut total = Some(0.0);
        for p in parts {
            total = match &p["sampling"][k] {
                Value::Null => None,
                _ => total.map(|t| number(p, k).map(|s| t + s)).transpose()?,
            };
        }
        obj.insert(k.into(), total.into());
    }
    let (mut ess_sum, mut steps, mut ess_min) = (0.0, 0u64, f64::INFINITY);
    for p in parts {
        let n = p["steps"].as_u64().unwrap_or(0);
        if n > 0 {
            ess_sum += number(p, "ess_mean")? * n as f64;
            ess_min = ess_min.min(number(p, "ess_min")?);
            steps += n;
        }
    }
    if steps > 0 {
        obj.insert("ess_mean".into(), (ess_sum / steps as f64).into());
        obj.insert("ess_min".into(), ess_min.into());
    }
    Ok(merged)
}

/// The report's columns a summary reads, found by name in a batch.
struct ReportColumns {
    stream: ArrayRef,
    step: ArrayRef,
    line: ArrayRef,
    candidate: ArrayRef,
    taken: ArrayRef,
    outcome: ArrayRef,
    cautious_hypothesis: ArrayRef,
    /// per estimator of the settings
    estimates: Vec<ArrayRef>,
}

impl ReportColumns {
    fn find(b: &RecordBatch, settings: &ReportSettings, name: &str) -> Result<Self> {
        let col = |c: &str, ty: &DataType| -> Result<ArrayRef> {
            let a = b
                .column_by_name(c)
                .ok_or_else(|| bad(name, format!("the report has no column `{c}`")))?;
            // Spark has no unsigned integers: its reports carry int64
            cast(a, ty).map_err(|e| bad(name, format!("column `{c}`: {e}")))
        };
        let u = &DataType::UInt64;
        let f = &DataType::Float64;
        Ok(ReportColumns {
            stream: col("stream", &DataType::Utf8)?,
            step: col("step", u)?,
            line: col("line", u)?,
            candidate: col("candidate", u)?,
            taken: col("taken", &DataType::Boolean)?,
            outcome: col("outcome", f)?,
            cautious_hypothesis: col("cautious_hypothesis", u)?,
            estimates: settings
                .estimators
                .iter()
                .map(|e| col(&e.label(&settings.alphas), f))
                .collect::<Result<_>>()?,
        })
    }
}

/// A candidate's estimates, read back from its report row.
fn estimates_at(
    c: &ReportColumns,
    estimators: &[Estimator],
    n_alpha: usize,
    i: usize,
) -> CandidateEstimates {
    let mut e = CandidateEstimates {
        posterior_predictive: 0.0,
        cautious_theory: 0.0,
        cautious_hypothesis: c.cautious_hypothesis.as_primitive::<UInt64Type>().value(i) as u32,
        plausible_set: vec![0.0; n_alpha],
        ville_max: vec![0.0; n_alpha],
        ville_sum: vec![0.0; n_alpha],
        oracle: None,
    };
    for (est, col) in estimators.iter().zip(&c.estimates) {
        let a = col.as_primitive::<Float64Type>();
        let v = (!a.is_null(i)).then(|| a.value(i));
        let x = v.unwrap_or(f64::NAN);
        match (est.kind, est.alpha) {
            (EstimatorKind::PosteriorPredictive, _) => e.posterior_predictive = x,
            (EstimatorKind::CautiousTheory, _) => e.cautious_theory = x,
            (EstimatorKind::PlausibleSet, Some(k)) => e.plausible_set[k] = x,
            (EstimatorKind::VilleMax, Some(k)) => e.ville_max[k] = x,
            (EstimatorKind::VilleSum, Some(k)) => e.ville_sum[k] = x,
            (EstimatorKind::Oracle, _) => e.oracle = v,
            _ => {}
        }
    }
    e
}

/// The sample set's columns of a report on sampled hypotheses.
struct SampledColumns {
    ess: ArrayRef,
    redrawn: ArrayRef,
    distinct: ArrayRef,
}

impl SampledColumns {
    fn find(b: &RecordBatch, name: &str) -> Result<Self> {
        let col = |c: &str, ty: &DataType| -> Result<ArrayRef> {
            let a = b.column_by_name(c).ok_or_else(|| {
                bad(
                    name,
                    format!(
                        "the report has no column `{c}`: it is not a report on sampled hypotheses"
                    ),
                )
            })?;
            cast(a, ty).map_err(|e| bad(name, format!("column `{c}`: {e}")))
        };
        Ok(SampledColumns {
            ess: col("sample_ess", &DataType::Float64)?,
            redrawn: col("sample_redrawn", &DataType::Boolean)?,
            distinct: col("sample_distinct", &DataType::UInt64)?,
        })
    }
}

/// The summary (`Summary::to_json`) of a shard, from its report rows alone:
/// whole streams, rows in log order (by line, then candidate), with the
/// model and the settings of the audit that wrote them. The same summary the
/// audit itself gave, since it reads the same values; for a report on
/// sampled hypotheses (`sampling`) the sampling totals too, but for the
/// seconds spent, which no row records (null), and unexplained outcomes
/// skipped (`--skip-unexplained`), which count as observed here.
pub fn summarise_report(
    batches: &[RecordBatch],
    model: &Model,
    settings: &ReportSettings,
    guardrail: Estimator,
    top: usize,
    name: &str,
    sampling: Option<&SamplingInfo>,
) -> Result<Value> {
    let mut summary = Summary::new(settings.clone(), guardrail, top);
    let mut totals = AuditTotals::default();
    let mut sampled = sampling.map(|info| SamplingTotals {
        info: info.clone(),
        redraws: 0,
        prior_draws: 0,
        steps: 0,
        ess_sum: 0.0,
        ess_min: f64::INFINITY,
        draw_seconds: f64::NAN,
        prior_seconds: f64::NAN,
        reweigh_seconds: f64::NAN,
        estimate_seconds: f64::NAN,
    });
    // whether the stream has had an outcome: a set drawn before any comes
    // from the prior
    let mut observed = false;
    let h = model.hypotheses.len() as u64;
    // a step's hypotheses: the grid's, or its sample set's distinct members
    let mut per_candidate = h;
    let n_alpha = settings.alphas.len();
    // the step being gathered: its first row's place and its candidates
    let mut candidates: Vec<CandidateEstimates> = Vec::new();
    let mut stream_line = 0usize;
    let mut stream_has_truth = false;
    let mut open: Option<OpenStep> = None;
    let mut finish = |open: &mut Option<OpenStep>,
                      candidates: &mut Vec<CandidateEstimates>,
                      stream_line: usize,
                      stream_has_truth: bool,
                      per_candidate: u64|
     -> Result<()> {
        let Some((stream, step, line, action, outcome)) = open.take() else {
            return Ok(());
        };
        let action = action
            .ok_or_else(|| bad(name, format!("line {line}: no row of the step is `taken`")))?;
        totals.steps += 1;
        totals.observed_steps += outcome.is_some() as usize;
        totals.triples += per_candidate * candidates.len() as u64;
        summary.add_step(
            model,
            &SummaryStep {
                stream: &stream,
                stream_line,
                stream_has_truth,
                step,
                line,
                action,
                outcome,
                candidates,
            },
        );
        candidates.clear();
        Ok(())
    };
    for b in batches {
        let c = ReportColumns::find(b, settings, name)?;
        let (streams, steps, lines, cands, taken, outcomes) = (
            c.stream.as_string::<i32>(),
            c.step.as_primitive::<UInt64Type>(),
            c.line.as_primitive::<UInt64Type>(),
            c.candidate.as_primitive::<UInt64Type>(),
            c.taken.as_boolean(),
            c.outcome.as_primitive::<Float64Type>(),
        );
        let sample_columns = match sampled {
            Some(_) => Some(SampledColumns::find(b, name)?),
            None => None,
        };
        for i in 0..b.num_rows() {
            let line = lines.value(i) as usize;
            let candidate = cands.value(i) as usize;
            if open.as_ref().is_some_and(|o| o.2 != line) {
                finish(
                    &mut open,
                    &mut candidates,
                    stream_line,
                    stream_has_truth,
                    per_candidate,
                )?;
            }
            if candidate != candidates.len() {
                return Err(bad(
                    name,
                    format!("line {line}: candidate {candidate} where {} was next: rows in order of line, then candidate", candidates.len()),
                ));
            }
            let e = estimates_at(&c, &settings.estimators, n_alpha, i);
            if candidate == 0 {
                let step = steps.value(i) as usize;
                if step == 1 {
                    totals.streams += 1;
                    stream_line = line;
                    stream_has_truth = e.oracle.is_some();
                }
                let outcome = (!outcomes.is_null(i)).then(|| outcomes.value(i));
                open = Some((streams.value(i).into(), step, line, None, outcome));
                if let (Some(t), Some(c)) = (&mut sampled, &sample_columns) {
                    if step == 1 {
                        observed = false;
                    }
                    let ess = c.ess.as_primitive::<Float64Type>().value(i);
                    t.steps += 1;
                    t.ess_sum += ess;
                    t.ess_min = t.ess_min.min(ess);
                    if c.redrawn.as_boolean().value(i) {
                        if observed {
                            t.redraws += 1;
                        } else {
                            t.prior_draws += 1;
                        }
                    }
                    per_candidate = c.distinct.as_primitive::<UInt64Type>().value(i);
                    observed |= outcome.is_some();
                }
            }
            if taken.value(i) {
                if let Some(o) = open.as_mut() {
                    o.3 = Some(candidate);
                }
            }
            candidates.push(e);
        }
    }
    finish(
        &mut open,
        &mut candidates,
        stream_line,
        stream_has_truth,
        per_candidate,
    )?;
    if let Some(t) = &mut sampled {
        if t.steps == 0 {
            t.ess_min = f64::NAN;
        }
    }
    totals.sampling = sampled;
    Ok(summary.to_json(name, model, "", &totals, 0.0))
}
