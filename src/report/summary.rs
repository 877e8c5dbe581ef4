//! The summary for a person: what was read, how many taken actions each
//! guardrail would have rejected, whether a candidate under the threshold was
//! there instead, and the riskiest steps. Bounded memory: counters and a
//! top-N list.

use std::fmt::Write as _;

use super::{key, Assessment, ReportSettings};
use crate::audit::{AuditTotals, SamplingTotals, StepResult};
use crate::estimators::{CandidateEstimates, Estimator, EstimatorKind};
use crate::model::{Model, ObservationModel};

/// One of the riskiest taken actions.
#[derive(Debug, Clone, PartialEq)]
pub struct RiskyStep {
    pub stream: String,
    pub step: usize,
    pub line: usize,
    pub action: usize,
    pub estimate: f64,
    pub oracle: Option<f64>,
    pub safest_candidate: usize,
    pub safest_estimate: f64,
}

/// What the summary reads of one step.
#[derive(Debug, Clone, Copy)]
pub struct SummaryStep<'a> {
    pub stream: &'a str,
    /// The line of the stream's first step: a new value begins a stream.
    pub stream_line: usize,
    /// The stream states its true hypothesis.
    pub stream_has_truth: bool,
    pub step: usize,
    pub line: usize,
    /// The taken action: an index into `candidates`.
    pub action: usize,
    pub outcome: Option<f64>,
    pub candidates: &'a [CandidateEstimates],
}

/// Counts for one (estimator, threshold).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RejectionCount {
    /// Taken actions the guardrail would have rejected.
    pub rejected: usize,
    /// … of which a candidate under the threshold was available.
    pub with_safer_candidate: usize,
    /// Steps where the estimator had a value.
    pub evaluated: usize,
}

#[derive(Debug, Clone)]
pub struct Summary {
    pub settings: ReportSettings,
    /// The estimator that ranks the riskiest steps and decides `--fail-on-reject`.
    pub guardrail: Estimator,
    /// `[threshold][estimator]`
    pub counts: Vec<Vec<RejectionCount>>,
    pub riskiest: Vec<RiskyStep>,
    pub top_n: usize,
    pub harmful_outcomes: usize,
    pub streams_with_truth: usize,
    last_stream_line: usize,
}

impl Summary {
    pub fn new(settings: ReportSettings, guardrail: Estimator, top_n: usize) -> Self {
        let counts = vec![
            vec![RejectionCount::default(); settings.estimators.len()];
            settings.thresholds.len()
        ];
        Summary {
            settings,
            guardrail,
            counts,
            riskiest: Vec::new(),
            top_n,
            harmful_outcomes: 0,
            streams_with_truth: 0,
            last_stream_line: 0,
        }
    }

    pub fn add(&mut self, model: &Model, s: &StepResult) {
        self.add_step(
            model,
            &SummaryStep {
                stream: &s.stream.id,
                stream_line: s.stream.line,
                stream_has_truth: s.stream.true_params.is_some(),
                step: s.record.step,
                line: s.record.line,
                action: s.record.action,
                outcome: s.record.outcome,
                candidates: &s.candidates,
            },
        );
    }

    /// Counts a step given by what the summary reads of it: an audited step,
    /// or one read back from a report's rows (`readback`).
    pub fn add_step(&mut self, model: &Model, s: &SummaryStep<'_>) {
        if s.stream_line != self.last_stream_line {
            self.last_stream_line = s.stream_line;
            self.streams_with_truth += s.stream_has_truth as usize;
        }
        if let Some(y) = s.outcome {
            self.harmful_outcomes += match model.observation {
                ObservationModel::Gaussian { harm_threshold, .. } => y > harm_threshold,
                ObservationModel::Bernoulli => y == 1.0,
            } as usize;
        }
        for (ei, e) in self.settings.estimators.iter().enumerate() {
            let Some(a) = Assessment::of_candidates(s.candidates, s.action, e) else {
                continue;
            };
            for (ti, &c) in self.settings.thresholds.iter().enumerate() {
                let v = a.verdict(c);
                let n = &mut self.counts[ti][ei];
                n.evaluated += 1;
                if v.rejected {
                    n.rejected += 1;
                    n.with_safer_candidate += v.safer_available(c) as usize;
                }
            }
        }
        let taken = &s.candidates[s.action];
        if let Some(estimate) = self.guardrail.value(taken) {
            let (safest_candidate, safest_estimate) =
                super::safest(s.candidates, &self.guardrail).unwrap_or((s.action, estimate));
            let risky = RiskyStep {
                stream: s.stream.to_string(),
                step: s.step,
                line: s.line,
                action: s.action,
                estimate,
                oracle: taken.oracle,
                safest_candidate,
                safest_estimate,
            };
            // Keep the top N, most risky first; earlier steps win ties.
            let pos = self.riskiest.partition_point(|r| r.estimate >= estimate);
            if pos < self.top_n {
                self.riskiest.insert(pos, risky);
                self.riskiest.truncate(self.top_n);
            }
        }
    }

    /// Did the guardrail reject any taken action, at any threshold?
    pub fn guardrail_rejected_any(&self) -> bool {
        let ei = self
            .settings
            .estimators
            .iter()
            .position(|e| *e == self.guardrail);
        ei.is_some_and(|ei| self.counts.iter().any(|per| per[ei].rejected > 0))
    }

    /// The text a person reads.
    pub fn render(
        &self,
        log_name: &str,
        model: &Model,
        backend: &str,
        totals: &AuditTotals,
        seconds: f64,
    ) -> String {
        let mut s = String::new();
        let alphas = &self.settings.alphas;
        let _ = writeln!(s, "gpubound audit of {log_name}");
        let _ = writeln!(s, "  model:   {}", model.describe());
        let _ = writeln!(s, "  backend: {backend}");
        let _ = writeln!(
            s,
            "  read:    {} streams, {} steps ({} with an outcome, {} harmful), {:.3e} (hypothesis, step, candidate) triples in {:.2} s ({:.3e} triples/s)",
            totals.streams,
            totals.steps,
            totals.observed_steps,
            self.harmful_outcomes,
            totals.triples as f64,
            seconds,
            totals.triples as f64 / seconds.max(1e-9)
        );
        let _ = writeln!(
            s,
            "  oracle:  true hypothesis stated for {} of {} streams",
            self.streams_with_truth, totals.streams
        );
        if let Some(t) = &totals.sampling {
            for line in sampling_lines(t) {
                let _ = writeln!(s, "  {line}");
            }
        }
        for (i, a) in alphas.values.iter().enumerate() {
            let d = alphas.delta(i);
            let _ = writeln!(
                s,
                "  alpha = {a:e}: implied delta = alpha / p_min = {d:.4} (p_min = {:.4e}){}",
                alphas.prior_floor,
                if d <= 1.0 {
                    format!(
                        ": plausible-set and Ville bounds hold at every step of a stream w.p. >= {:.4}{}",
                        1.0 - d,
                        if totals.sampling.is_some() { " (for the sampled sets)" } else { "" }
                    )
                } else {
                    ": delta > 1, no guarantee".to_string()
                }
            );
        }
        render_unexplained(&mut s, totals);
        for (ti, &c) in self.settings.thresholds.iter().enumerate() {
            let _ = writeln!(
                s,
                "\nTaken actions a guardrail with threshold C = {} would have rejected:",
                key(c)
            );
            let _ = writeln!(
                s,
                "  {:<36} {:>16} {:>26}",
                "estimator", "rejected", "of which a candidate <= C"
            );
            for (ei, e) in self.settings.estimators.iter().enumerate() {
                let n = self.counts[ti][ei];
                if n.evaluated == 0 {
                    continue;
                }
                let _ = writeln!(
                    s,
                    "  {:<36} {:>7} ({:>5.1}%) {:>26}",
                    e.label(alphas),
                    n.rejected,
                    100.0 * n.rejected as f64 / n.evaluated as f64,
                    n.with_safer_candidate
                );
            }
        }
        if !self.riskiest.is_empty() {
            let _ = writeln!(
                s,
                "\nRiskiest taken actions by {}:",
                self.guardrail.label(alphas)
            );
            let _ = writeln!(
                s,
                "  {:<14} {:>6} {:>8} {:>7} {:>12} {:>12} {:>22}",
                "stream", "step", "line", "action", "estimate", "oracle", "safest candidate"
            );
            for r in &self.riskiest {
                let _ = writeln!(
                    s,
                    "  {:<14} {:>6} {:>8} {:>7} {:>12.4e} {:>12} {:>22}",
                    r.stream,
                    r.step,
                    r.line,
                    r.action,
                    r.estimate,
                    r.oracle
                        .map(|o| format!("{o:.4e}"))
                        .unwrap_or_else(|| "-".into()),
                    format!("{} ({:.3e})", r.safest_candidate, r.safest_estimate)
                );
            }
        }
        s
    }
}

impl Summary {
    /// The summary as data: everything `render` states, for the library's
    /// users (`gpubound.audit(...).summary` in Python). Rejections are keyed
    /// by threshold, then by estimator column name; estimators without a
    /// value at any step (the oracle without a stated truth) are left out,
    /// as in the text.
    pub fn to_json(
        &self,
        log_name: &str,
        model: &Model,
        backend: &str,
        totals: &AuditTotals,
        seconds: f64,
    ) -> serde_json::Value {
        use serde_json::{json, Map, Value};
        let alphas = &self.settings.alphas;
        let alpha_rows: Vec<Value> = (0..alphas.len())
            .map(|i| {
                let d = alphas.delta(i);
                json!({
                    "alpha": alphas.values[i],
                    "delta": d,
                    "coverage": if d <= 1.0 { Value::from(1.0 - d) } else { Value::Null },
                })
            })
            .collect();
        let mut rejections = Map::new();
        for (ti, &c) in self.settings.thresholds.iter().enumerate() {
            let mut per = Map::new();
            for (ei, e) in self.settings.estimators.iter().enumerate() {
                let n = self.counts[ti][ei];
                if n.evaluated == 0 {
                    continue;
                }
                per.insert(
                    e.label(alphas),
                    json!({
                        "rejected": n.rejected,
                        "with_safer_candidate": n.with_safer_candidate,
                        "evaluated": n.evaluated,
                    }),
                );
            }
            rejections.insert(key(c), Value::Object(per));
        }
        let riskiest: Vec<Value> = self
            .riskiest
            .iter()
            .map(|r| {
                json!({
                    "stream": r.stream,
                    "step": r.step,
                    "line": r.line,
                    "action": r.action,
                    "estimate": r.estimate,
                    "oracle": r.oracle,
                    "safest_candidate": r.safest_candidate,
                    "safest_estimate": r.safest_estimate,
                })
            })
            .collect();
        let unexplained: Vec<Value> = totals
            .unexplained
            .iter()
            .map(|u| json!({"stream": u.stream, "step": u.step, "line": u.line}))
            .collect();
        let mut out = json!({
            "log": log_name,
            "model": model.describe(),
            "backend": backend,
            "streams": totals.streams,
            "steps": totals.steps,
            "observed_steps": totals.observed_steps,
            "harmful_outcomes": self.harmful_outcomes,
            "triples": totals.triples,
            "seconds": seconds,
            "streams_with_truth": self.streams_with_truth,
            "prior_floor": alphas.prior_floor,
            "alphas": alpha_rows,
            "unexplained_count": totals.unexplained_count,
            "unexplained": unexplained,
            "thresholds": self.settings.thresholds,
            "rejections": rejections,
            "guardrail": self.guardrail.label(alphas),
            "riskiest": riskiest,
        });
        if let Some(t) = &totals.sampling {
            out["sampling"] = sampling_json(t);
        }
        out
    }
}

/// What an audit on sampled hypotheses says of its sets (SPEC §1: the
/// guarantees hold for the sampled set, not for the space).
pub fn sampling_lines(t: &SamplingTotals) -> [String; 3] {
    let i = &t.info;
    [
        format!(
            "sampled: every estimate is over N = {} hypotheses drawn per set from the sampler {} \
             ({} training steps; seed {}), not over the grid: the plausible-set and Ville \
             guarantees hold for each step's sampled set taken as the hypothesis space, not for \
             the grid",
            i.samples, i.sampler, i.training_steps, i.seed
        ),
        format!(
            "sets:    {} drawn from the prior (a stream's first step), {} redrawn from the sampler \
             (ESS < {}·N); ESS per step: mean {:.1}, min {:.2} (of {})",
            t.prior_draws,
            t.redraws,
            i.redraw_ess,
            t.ess_mean(),
            t.ess_min,
            i.samples
        ),
        format!(
            "cost:    {:.2} s drawing from the sampler ({:.1} ms per set), {:.2} s from the prior, \
             {:.2} s weighing ({:.3} ms per step), {:.2} s in the estimators ({:.3} ms per step); \
             thread-seconds",
            t.draw_seconds,
            1e3 * t.draw_seconds / t.redraws.max(1) as f64,
            t.prior_seconds,
            t.reweigh_seconds,
            1e3 * t.reweigh_seconds / t.steps.max(1) as f64,
            t.estimate_seconds,
            1e3 * t.estimate_seconds / t.steps.max(1) as f64
        ),
    ]
}

/// The sampling totals as data (`Summary::to_json`).
pub fn sampling_json(t: &SamplingTotals) -> serde_json::Value {
    let i = &t.info;
    serde_json::json!({
        "sampler": i.sampler,
        "training_steps": i.training_steps,
        "samples": i.samples,
        "seed": i.seed,
        "redraw_ess": i.redraw_ess,
        "prior_draws": t.prior_draws,
        "redraws": t.redraws,
        "ess_mean": t.ess_mean(),
        "ess_min": t.ess_min,
        "draw_seconds": t.draw_seconds,
        "prior_seconds": t.prior_seconds,
        "reweigh_seconds": t.reweigh_seconds,
        "estimate_seconds": t.estimate_seconds,
        "guarantees": "for each step's sampled set taken as the hypothesis space, not for the grid",
    })
}

/// The outcomes `--skip-unexplained` treated as missing (SPEC §2): the
/// model is wrong for their streams, so the reader should know which.
fn render_unexplained(s: &mut String, totals: &AuditTotals) {
    let n = totals.unexplained_count;
    if n == 0 {
        return;
    }
    let _ = writeln!(
        s,
        "\n{n} outcome{} no hypothesis can explain {} treated as missing (--skip-unexplained); the model is wrong for {} stream{}:",
        if n == 1 { "" } else { "s" },
        if n == 1 { "was" } else { "were" },
        if n == 1 { "its" } else { "their" },
        if n == 1 { "" } else { "s" },
    );
    let _ = writeln!(s, "  {:<14} {:>6} {:>8}", "stream", "step", "line");
    for u in &totals.unexplained {
        let _ = writeln!(s, "  {:<14} {:>6} {:>8}", u.stream, u.step, u.line);
    }
    if n > totals.unexplained.len() {
        let _ = writeln!(s, "  … and {} more", n - totals.unexplained.len());
    }
}

/// The default guardrail: the plausible set at the first α.
pub fn default_guardrail(kind: EstimatorKind) -> Estimator {
    Estimator {
        kind,
        alpha: if kind.per_alpha() { Some(0) } else { None },
    }
}
