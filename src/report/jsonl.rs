//! JSON Lines report: one object per logged step (schema in README.md).
//!
//! Serialised straight from borrowed views of the step (no intermediate JSON
//! tree), with keys and labels formatted once per report.

use std::io::Write;

use serde::ser::{Serialize, SerializeMap, Serializer};

use super::{key, write_err, Assessment, ReportSettings, StepWriter};
use crate::audit::StepResult;
use crate::estimators::CandidateEstimates;
use crate::Result;

pub struct JsonlWriter<'a, W: Write> {
    out: W,
    keys: Keys<'a>,
}

/// Strings used on every line, formatted once.
struct Keys<'a> {
    settings: &'a ReportSettings,
    alphas: Vec<String>,
    thresholds: Vec<String>,
    labels: Vec<String>,
}

impl<'a, W: Write> JsonlWriter<'a, W> {
    pub fn new(out: W, settings: &'a ReportSettings) -> Self {
        let keys = Keys {
            settings,
            alphas: settings.alphas.values.iter().map(|&a| key(a)).collect(),
            thresholds: settings.thresholds.iter().map(|&c| key(c)).collect(),
            labels: settings
                .estimators
                .iter()
                .map(|e| e.label(&settings.alphas))
                .collect(),
        };
        JsonlWriter { out, keys }
    }
}

/// Values keyed by α: `{"0.01": v, "1e-5": v}`.
struct PerAlpha<'a, T>(&'a [String], &'a [T]);

impl<T: Serialize> Serialize for PerAlpha<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0.iter().zip(self.1) {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

struct Candidate<'a> {
    keys: &'a Keys<'a>,
    c: &'a CandidateEstimates,
}

impl Serialize for Candidate<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (c, k) = (self.c, &self.keys.alphas);
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("posterior_predictive", &c.posterior_predictive)?;
        m.serialize_entry("cautious_theory", &c.cautious_theory)?;
        m.serialize_entry("cautious_hypothesis", &c.cautious_hypothesis)?;
        m.serialize_entry("plausible_set", &PerAlpha(k, &c.plausible_set))?;
        m.serialize_entry("ville_max", &PerAlpha(k, &c.ville_max))?;
        m.serialize_entry("ville_sum", &PerAlpha(k, &c.ville_sum))?;
        if let Some(o) = c.oracle {
            m.serialize_entry("oracle", &o)?;
        }
        m.end()
    }
}

struct Candidates<'a>(&'a Keys<'a>, &'a [CandidateEstimates]);

impl Serialize for Candidates<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.1.iter().map(|c| Candidate { keys: self.0, c }))
    }
}

/// The taken action's verdict for one estimator and threshold.
#[derive(serde::Serialize)]
struct VerdictOut {
    rejected: bool,
    safest_candidate: usize,
    safest_estimate: f64,
}

/// `{"C": {"estimator": verdict, …}, …}`; the safest candidate of each
/// estimator is found once, not once per threshold.
struct Verdicts<'a> {
    keys: &'a Keys<'a>,
    per_estimator: Vec<Option<Assessment>>,
}

impl Serialize for Verdicts<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let k = self.keys;
        let mut m = s.serialize_map(Some(k.thresholds.len()))?;
        for (ck, &c) in k.thresholds.iter().zip(&k.settings.thresholds) {
            m.serialize_entry(
                ck,
                &ThresholdVerdicts {
                    v: self,
                    threshold: c,
                },
            )?;
        }
        m.end()
    }
}

struct ThresholdVerdicts<'a> {
    v: &'a Verdicts<'a>,
    threshold: f64,
}

impl Serialize for ThresholdVerdicts<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        for (label, e) in self.v.keys.labels.iter().zip(&self.v.per_estimator) {
            if let Some(a) = e {
                let v = a.verdict(self.threshold);
                m.serialize_entry(
                    label,
                    &VerdictOut {
                        rejected: v.rejected,
                        safest_candidate: v.safest_candidate,
                        safest_estimate: v.safest_estimate,
                    },
                )?;
            }
        }
        m.end()
    }
}

#[derive(serde::Serialize)]
struct Posterior<'a> {
    map_hypothesis: usize,
    map_probability: f64,
    entropy: f64,
    plausible_set_size: PerAlpha<'a, usize>,
}

/// An audit on sampled hypotheses: the step's sample set.
#[derive(serde::Serialize)]
struct Sampled {
    ess: f64,
    log_normaliser: f64,
    redrawn: bool,
    distinct: usize,
}

#[derive(serde::Serialize)]
struct Step<'a> {
    stream: &'a str,
    step: usize,
    line: usize,
    action: usize,
    outcome: Option<f64>,
    posterior: Posterior<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sampled: Option<Sampled>,
    taken: Candidate<'a>,
    candidates: Candidates<'a>,
    verdicts: Verdicts<'a>,
}

/// One step's line, newline included, appended to `out`.
fn write_line(keys: &Keys<'_>, s: &StepResult, out: &mut Vec<u8>) -> Result<()> {
    let per_estimator = keys
        .settings
        .estimators
        .iter()
        .map(|e| Assessment::of(s, e))
        .collect();
    let step = Step {
        stream: &s.stream.id,
        step: s.record.step,
        line: s.record.line,
        action: s.record.action,
        outcome: s.record.outcome,
        posterior: Posterior {
            map_hypothesis: s.posterior.map_hypothesis,
            map_probability: s.posterior.map_probability,
            entropy: s.posterior.entropy,
            plausible_set_size: PerAlpha(&keys.alphas, &s.posterior.plausible_set_size),
        },
        sampled: s.sampled.map(|t| Sampled {
            ess: t.ess,
            log_normaliser: t.log_normaliser,
            redrawn: t.redrawn,
            distinct: t.distinct,
        }),
        taken: Candidate { keys, c: s.taken() },
        candidates: Candidates(keys, &s.candidates),
        verdicts: Verdicts {
            keys,
            per_estimator,
        },
    };
    serde_json::to_writer(&mut *out, &step).map_err(write_err)?;
    out.push(b'\n');
    Ok(())
}

/// Steps formatted per task in a batch's parallel part (formatting numbers
/// is most of a report's cost), written in log order.
const STEPS_PER_TASK: usize = 64;

impl<W: Write> StepWriter for JsonlWriter<'_, W> {
    fn write_step(&mut self, s: &StepResult) -> Result<()> {
        let mut line = Vec::new();
        write_line(&self.keys, s, &mut line)?;
        self.out.write_all(&line).map_err(write_err)
    }

    fn write_steps(&mut self, steps: &[StepResult]) -> Result<()> {
        use rayon::prelude::*;
        let keys = &self.keys;
        let parts = steps
            .par_chunks(STEPS_PER_TASK)
            .map(|chunk| {
                let mut buf = Vec::with_capacity(chunk.len() * 4096);
                for s in chunk {
                    write_line(keys, s, &mut buf)?;
                }
                Ok(buf)
            })
            .collect::<Result<Vec<_>>>()?;
        for part in parts {
            self.out.write_all(&part).map_err(write_err)?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        self.out.flush().map_err(write_err)
    }
}
