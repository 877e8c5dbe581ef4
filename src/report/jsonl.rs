//! JSON Lines report: one object per logged step (schema in README.md).

use std::io::Write;

use serde_json::{json, Map, Value};

use super::{key, write_err, ReportSettings, StepWriter, Verdict};
use crate::audit::StepResult;
use crate::estimators::{CandidateEstimates, EstimatorKind};
use crate::Result;

pub struct JsonlWriter<'a, W: Write> {
    out: W,
    settings: &'a ReportSettings,
}

impl<'a, W: Write> JsonlWriter<'a, W> {
    pub fn new(out: W, settings: &'a ReportSettings) -> Self {
        JsonlWriter { out, settings }
    }
}

/// A per-α list as an object keyed by α.
fn per_alpha(settings: &ReportSettings, values: &[f64]) -> Value {
    let mut m = Map::new();
    for (a, v) in settings.alphas.values.iter().zip(values) {
        m.insert(key(*a), json!(v));
    }
    Value::Object(m)
}

pub fn candidate_json(settings: &ReportSettings, c: &CandidateEstimates) -> Value {
    let mut m = Map::new();
    m.insert(
        EstimatorKind::PosteriorPredictive.name().into(),
        json!(c.posterior_predictive),
    );
    m.insert(
        EstimatorKind::CautiousTheory.name().into(),
        json!(c.cautious_theory),
    );
    m.insert("cautious_hypothesis".into(), json!(c.cautious_hypothesis));
    m.insert(
        EstimatorKind::PlausibleSet.name().into(),
        per_alpha(settings, &c.plausible_set),
    );
    m.insert(
        EstimatorKind::VilleMax.name().into(),
        per_alpha(settings, &c.ville_max),
    );
    m.insert(
        EstimatorKind::VilleSum.name().into(),
        per_alpha(settings, &c.ville_sum),
    );
    if let Some(o) = c.oracle {
        m.insert(EstimatorKind::Oracle.name().into(), json!(o));
    }
    Value::Object(m)
}

pub fn step_json(settings: &ReportSettings, s: &StepResult) -> Value {
    let mut verdicts = Map::new();
    for &c in &settings.thresholds {
        let mut per = Map::new();
        for e in &settings.estimators {
            if let Some(v) = Verdict::of(s, e, c) {
                per.insert(
                    e.label(&settings.alphas),
                    json!({
                        "rejected": v.rejected,
                        "safest_candidate": v.safest_candidate,
                        "safest_estimate": v.safest_estimate,
                    }),
                );
            }
        }
        verdicts.insert(key(c), Value::Object(per));
    }
    let mut sizes = Map::new();
    for (a, n) in settings
        .alphas
        .values
        .iter()
        .zip(&s.posterior.plausible_set_size)
    {
        sizes.insert(key(*a), json!(n));
    }
    json!({
        "stream": s.stream.id,
        "step": s.record.step,
        "line": s.record.line,
        "action": s.record.action,
        "outcome": s.record.outcome,
        "posterior": {
            "map_hypothesis": s.posterior.map_hypothesis,
            "map_probability": s.posterior.map_probability,
            "entropy": s.posterior.entropy,
            "plausible_set_size": sizes,
        },
        "taken": candidate_json(settings, s.taken()),
        "candidates": s.candidates.iter().map(|c| candidate_json(settings, c)).collect::<Vec<_>>(),
        "verdicts": verdicts,
    })
}

impl<W: Write> StepWriter for JsonlWriter<'_, W> {
    fn write_step(&mut self, s: &StepResult) -> Result<()> {
        serde_json::to_writer(&mut self.out, &step_json(self.settings, s)).map_err(write_err)?;
        self.out.write_all(b"\n").map_err(write_err)
    }

    fn finish(&mut self) -> Result<()> {
        self.out.flush().map_err(write_err)
    }
}
