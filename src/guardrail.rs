//! The guardrail inside an agent's loop: the audit's bound, online, one step
//! at a time. Before each action the agent asks for the estimates (or a
//! verdict) for the step's candidates; after it, it reports the outcome.
//!
//! ```text
//! let mut g = Guardrail::new(model, alphas, 0.01, estimator, BackendChoice::Cpu)?;
//! loop {
//!     let v = g.check(&candidates, action)?;      // before acting
//!     if !v.allowed { action = v.safest_candidate }
//!     g.observe(&candidates, action, outcome)?;   // after: the posterior update
//! }
//! ```
//!
//! It keeps one stream's posterior `L_t(h)` in f64 log space, exactly as the
//! audit keeps it (the log prior plus each outcome's log-likelihood, added
//! in step order), and computes each step with the CPU engine's own per-step
//! functions (`engine::cpu::weigh_and_reduce_row`, `loglik_row`) and
//! `estimators::finish`: replaying a log gives the audit's numbers to the
//! bit (tests/guardrail.rs).
//!
//! **Harm paths.** The audit tabulates `q` for a candidate table that
//! several steps of a batch share and computes it lazily, for the
//! hypotheses that matter, for a table of one step; both paths give the same
//! bits (the weight sums are taken over the full row, and both leave out the
//! same negligible products: tests/batch_bits.rs). So the guardrail takes
//! whichever is faster: lazy at a table's first step (a contextual stream
//! brings a new table at every step), tabulated once a later step uses the
//! same table (a bandit's).

use crate::audit::PosteriorSummary;
use crate::engine::cpu::{harm, loglik, weigh_and_reduce_row, HarmTable};
use crate::engine::{Backend, BackendChoice, CandidateTable};
use crate::estimators::{self, Alphas, CandidateEstimates, Estimator, EstimatorKind};
use crate::model::Model;
use crate::posterior::{self, CutScratch, PlausibleCut};
use crate::report;
use crate::{Error, Result};

/// One stream's online guardrail.
#[derive(Debug, Clone)]
pub struct Guardrail {
    model: Model,
    alphas: Alphas,
    threshold: f64,
    estimator: Estimator,
    prior: Vec<f64>,
    /// `L_t(h)`: the log prior plus the log-likelihoods observed so far.
    log_posterior: Vec<f64>,
    /// Steps observed since the stream started.
    steps: usize,
    /// Steps observed since the guardrail was built (tells a table an
    /// earlier step used, across streams).
    all_steps: usize,
    table: TableCache,
    // scratch, so that a step allocates nothing once warm
    row: Vec<f64>,
    weight: Vec<f64>,
    scratch: CutScratch,
    cuts: Vec<PlausibleCut>,
    thresholds: Vec<f64>,
    estimates: Estimates,
}

/// The last candidate table seen, and its harm table (tabulated once a
/// later step uses the same table: the module's doc says why).
#[derive(Debug, Clone)]
struct TableCache {
    features: CandidateTable,
    /// `all_steps` when the table was first seen.
    first_step: usize,
    harm: HarmTable,
}

/// Every estimator for every candidate of one step, before its outcome: the
/// audit's numbers at that step (`oracle` is `None`: `h*` is unknown online).
#[derive(Debug, Clone, PartialEq)]
pub struct Estimates {
    /// One per candidate, in the table's order.
    pub candidates: Vec<CandidateEstimates>,
    /// The posterior before the step, as the report summarises it.
    pub posterior: PosteriorSummary,
}

impl Estimates {
    /// `estimator`'s estimate for candidate `a` (`None` for the oracle).
    pub fn value(&self, estimator: &Estimator, a: usize) -> Option<f64> {
        estimator.value(&self.candidates[a])
    }

    /// The safest candidate under `estimator` and its estimate, with the
    /// report's tie rule (`report::SAFEST_TIE_TOLERANCE`).
    pub fn safest(&self, estimator: &Estimator) -> Option<(usize, f64)> {
        report::safest(&self.candidates, estimator)
    }

    /// Every estimator's column (one value per candidate), keyed like the
    /// report's columns: `posterior_predictive`, `cautious_theory`,
    /// `plausible_set[alpha=…]`, `ville_max[alpha=…]`, `ville_sum[alpha=…]`.
    pub fn columns(&self, alphas: &Alphas) -> Vec<(String, Vec<f64>)> {
        Estimator::all(alphas)
            .into_iter()
            .filter(|e| e.kind != EstimatorKind::Oracle)
            .map(|e| {
                let column = self.candidates.iter().filter_map(|c| e.value(c)).collect();
                (e.label(alphas), column)
            })
            .collect()
    }

    /// `columns`' values into `out`, one row of A values per column, in
    /// `columns`' order (`out` holds `columns.len() × A`); the oracle's row
    /// is NaN. What `Estimator::value` gives for each, with the estimator
    /// matched once per row rather than once per value (a call from Python
    /// fills 23 × 10 values: 0.35 → 0.17 µs).
    pub fn write_columns(&self, columns: &[Estimator], out: &mut [f64]) {
        fn fill(
            row: &mut [f64],
            cands: &[CandidateEstimates],
            f: impl Fn(&CandidateEstimates) -> f64,
        ) {
            for (v, c) in row.iter_mut().zip(cands) {
                *v = f(c);
            }
        }
        let a = self.candidates.len();
        if a == 0 {
            return;
        }
        let cands = &self.candidates[..];
        let at = |v: &[f64], i: usize| v.get(i).copied().unwrap_or(f64::NAN);
        for (row, e) in out.chunks_exact_mut(a).zip(columns) {
            match (e.kind, e.alpha) {
                (EstimatorKind::PosteriorPredictive, _) => {
                    fill(row, cands, |c| c.posterior_predictive)
                }
                (EstimatorKind::CautiousTheory, _) => fill(row, cands, |c| c.cautious_theory),
                (EstimatorKind::PlausibleSet, Some(i)) => {
                    fill(row, cands, |c| at(&c.plausible_set, i))
                }
                (EstimatorKind::VilleMax, Some(i)) => fill(row, cands, |c| at(&c.ville_max, i)),
                (EstimatorKind::VilleSum, Some(i)) => fill(row, cands, |c| at(&c.ville_sum, i)),
                _ => fill(row, cands, |c| e.value(c).unwrap_or(f64::NAN)),
            }
        }
    }
}

/// The guardrail's decision on one action.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    /// The estimate is at most the threshold `C` (an estimate equal to `C`
    /// is allowed, as in the audit).
    pub allowed: bool,
    /// The chosen estimator's estimate for the action.
    pub estimate: f64,
    /// The candidate with the smallest estimate (the report's tie rule)…
    pub safest_candidate: usize,
    /// … and its estimate.
    pub safest_estimate: f64,
}

impl Guardrail {
    /// A guardrail at the prior of `model`, rejecting an action when
    /// `estimator` (not the oracle, which needs `h*`) exceeds `threshold`.
    ///
    /// `backend`: every choice runs on the CPU. One step is `A × H` triples
    /// (10 240 at the paper's size), a few microseconds of CPU work; a GPU
    /// dispatch and read-back alone costs tens of microseconds, so a device
    /// can only make a step slower. The choice is taken so that callers (the
    /// Python binding) pass what they pass to the audit.
    pub fn new(
        model: Model,
        alphas: Alphas,
        threshold: f64,
        estimator: Estimator,
        backend: BackendChoice,
    ) -> Result<Self> {
        let _ = backend; // always the CPU: see above
        model
            .observation
            .validate()
            .map_err(|m| Error::Setting(format!("model: {m}")))?;
        if !(0.0..=1.0).contains(&threshold) {
            return Err(Error::Setting(format!(
                "a threshold C must be in [0, 1], got {threshold}"
            )));
        }
        match (estimator.kind, estimator.alpha) {
            (EstimatorKind::Oracle, _) => {
                return Err(Error::Setting(
                    "the oracle needs the true hypothesis: no guardrail can use it online".into(),
                ))
            }
            (kind, Some(i)) if kind.per_alpha() && i < alphas.len() => {}
            (kind, None) if !kind.per_alpha() => {}
            (kind, alpha) => {
                return Err(Error::Setting(format!(
                    "estimator {} with α index {alpha:?}: {} α given, and only plausible_set, \
                     ville_max and ville_sum take one",
                    kind.name(),
                    alphas.len()
                )))
            }
        }
        let h = model.hypotheses.len();
        let prior = model.hypotheses.log_prior();
        let n_alpha = alphas.len();
        let none = PlausibleCut {
            threshold: 0.0,
            size: 0,
        };
        Ok(Guardrail {
            log_posterior: prior.clone(),
            prior,
            steps: 0,
            all_steps: 0,
            table: TableCache {
                features: CandidateTable {
                    features: Vec::new(),
                    n_candidates: 0,
                },
                first_step: 0,
                harm: HarmTable {
                    n_candidates: 0,
                    stride: 0,
                    wx: Vec::new(),
                    q: Vec::new(),
                },
            },
            row: vec![0.0; h],
            weight: vec![0.0; h],
            scratch: CutScratch::default(),
            cuts: vec![none; n_alpha],
            thresholds: vec![0.0; n_alpha],
            estimates: Estimates {
                candidates: Vec::new(),
                posterior: PosteriorSummary {
                    map_hypothesis: 0,
                    map_probability: 0.0,
                    entropy: 0.0,
                    plausible_set_size: vec![0; n_alpha],
                },
            },
            model,
            alphas,
            threshold,
            estimator,
        })
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    pub fn alphas(&self) -> &Alphas {
        &self.alphas
    }

    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    pub fn estimator(&self) -> Estimator {
        self.estimator
    }

    /// Where the guardrail computes: always the CPU (see `new`).
    pub fn backend(&self) -> Backend {
        Backend::Cpu
    }

    /// Steps observed since the stream started (`observe` calls, with or
    /// without an outcome).
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// `L_t(h)`, the unnormalised log posterior before the next step.
    pub fn log_posterior(&self) -> &[f64] {
        &self.log_posterior
    }

    /// A new stream: back to the prior.
    pub fn reset(&mut self) {
        self.log_posterior.copy_from_slice(&self.prior);
        self.steps = 0;
    }

    /// Every estimator for every candidate, before the step's outcome.
    pub fn estimates(&mut self, candidates: &CandidateTable) -> Result<&Estimates> {
        self.validate(candidates)?;
        self.use_table(candidates);
        self.row.copy_from_slice(&self.log_posterior);
        let (reduced, map) = weigh_and_reduce_row(
            &self.model,
            &self.table.features,
            &self.table.harm,
            &mut self.row,
            &mut self.weight,
            &self.alphas.values,
            &mut self.scratch,
            &mut self.cuts,
            &mut self.thresholds,
        );
        // the audit's checks and estimators (audit::finish), for one step
        let step = self.steps + 1;
        let violated = |what: String| {
            Error::Internal(format!(
                "guardrail, step {step}: {what}: the posterior of this step is not a distribution"
            ))
        };
        let h = self.prior.len();
        let z = reduced.weight_sum;
        let entropy = z.ln() - reduced.weighted_log_rel / z;
        if !(z >= 1.0 && z.is_finite() && entropy.is_finite()) {
            return Err(violated(format!(
                "the relative weights sum to {z} (entropy {entropy})"
            )));
        }
        if map >= h || self.cuts.iter().any(|c| c.size == 0 || c.size > h) {
            return Err(violated(format!(
                "MAP {map} of {h} hypotheses, plausible sets of sizes {:?}",
                self.cuts.iter().map(|c| c.size).collect::<Vec<_>>()
            )));
        }
        let n_alpha = self.alphas.len();
        let out = &mut self.estimates;
        // reused between calls: their vectors are not allocated again
        out.candidates
            .resize_with(candidates.n_candidates, Default::default);
        for (a, c) in out.candidates.iter_mut().enumerate() {
            estimators::finish_into(
                c,
                &self.alphas,
                z,
                reduced.weighted_harm[a],
                reduced.cautious_hypothesis[a],
                reduced.cautious_harm[a],
                reduced.cautious_log_score[a],
                &reduced.plausible_harm[a * n_alpha..(a + 1) * n_alpha],
                None,
            )
            .map_err(|e| violated(format!("candidate {a}: {e}")))?;
        }
        let p = &mut out.posterior;
        p.map_hypothesis = map;
        p.map_probability = 1.0 / z;
        p.entropy = entropy.max(0.0);
        for (s, c) in p.plausible_set_size.iter_mut().zip(&self.cuts) {
            *s = c.size;
        }
        Ok(&self.estimates)
    }

    /// The verdict on `action`: allowed iff the chosen estimator's estimate
    /// is at most the threshold; with the safest candidate.
    pub fn check(&mut self, candidates: &CandidateTable, action: usize) -> Result<Verdict> {
        self.validate(candidates)?;
        self.validate_action(candidates, action)?;
        let (estimator, threshold) = (self.estimator, self.threshold);
        let e = self.estimates(candidates)?;
        // `new` refused the oracle: every other estimator has a value
        let estimate = e.value(&estimator, action).expect("not the oracle");
        let (safest_candidate, safest_estimate) = e.safest(&estimator).expect("not the oracle");
        Ok(Verdict {
            allowed: estimate <= threshold,
            estimate,
            safest_candidate,
            safest_estimate,
        })
    }

    /// The posterior update with the taken action's outcome; `None` (no
    /// outcome, `"outcome": null` in a log) moves to the next step without
    /// one. An outcome no hypothesis with positive posterior can explain is
    /// bad input (SPEC §2) and leaves the guardrail as it was, so the caller
    /// may go on as if the outcome were missing.
    pub fn observe(
        &mut self,
        candidates: &CandidateTable,
        action: usize,
        outcome: Option<f64>,
    ) -> Result<()> {
        self.validate(candidates)?;
        self.validate_action(candidates, action)?;
        if let Some(y) = outcome {
            self.model
                .observation
                .validate_outcome(y)
                .map_err(|m| self.input_error(m))?;
            self.use_table(candidates);
            loglik::loglik_row(
                &self.model,
                &self.table.harm,
                &self.table.features,
                action,
                y,
                &mut self.row,
            );
            // the audit's `posterior::accumulate`: L += ln p, per hypothesis
            for (l, &c) in self.row.iter_mut().zip(&self.log_posterior) {
                *l += c;
            }
            if posterior::is_void(posterior::max_log(&self.row)) {
                return Err(self.input_error(format!(
                    "no hypothesis with positive posterior can explain the outcome {y:e} \
                     (its log-likelihood is -inf, below {:e}, or not a number under each): the \
                     model is wrong for this stream; the guardrail is left as before the outcome",
                    posterior::LOG_ZERO
                )));
            }
            std::mem::swap(&mut self.row, &mut self.log_posterior);
        }
        self.steps += 1;
        self.all_steps += 1;
        Ok(())
    }

    /// Makes `candidates` the cached table, tabulating its harm once an
    /// earlier step used the same table (the faster path: module's doc).
    fn use_table(&mut self, candidates: &CandidateTable) {
        let c = &mut self.table;
        if c.features != *candidates {
            // reuse the buffer: a contextual stream brings a table per step
            c.features.features.clear();
            c.features.features.extend_from_slice(&candidates.features);
            c.features.n_candidates = candidates.n_candidates;
            c.first_step = self.all_steps;
            c.harm = harm::deferred(candidates);
        } else if c.first_step < self.all_steps && c.harm.is_deferred() {
            c.harm = harm::harm(&self.model, candidates);
        }
    }

    /// As the log reader checks a step's candidates.
    fn validate(&self, candidates: &CandidateTable) -> Result<()> {
        let d = self.model.hypotheses.dim();
        let n = candidates.n_candidates;
        if n == 0 || candidates.features.len() != n * d {
            return Err(self.input_error(format!(
                "{n} candidates with {} features in all: each needs the model's dimension {d}",
                candidates.features.len()
            )));
        }
        if let Some(i) = candidates.features.iter().position(|v| !v.is_finite()) {
            return Err(self.input_error(format!(
                "candidate {} has a non-finite feature {}",
                i / d,
                candidates.features[i]
            )));
        }
        Ok(())
    }

    fn validate_action(&self, candidates: &CandidateTable, action: usize) -> Result<()> {
        if action >= candidates.n_candidates {
            return Err(self.input_error(format!(
                "action {action} is out of range: there are {} candidates (0-based)",
                candidates.n_candidates
            )));
        }
        Ok(())
    }

    /// Bad input at the current step (1-based, within the stream).
    fn input_error(&self, message: impl Into<String>) -> Error {
        Error::input(format!("guardrail, step {}", self.steps + 1), None, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{HypothesisSpace, ObservationModel};

    /// `write_columns` gives, row by row, what `Estimator::value` gives.
    #[test]
    fn write_columns_agrees_with_value() {
        let model = Model {
            hypotheses: HypothesisSpace::grid(2, 3).unwrap(),
            observation: ObservationModel::Gaussian {
                sigma: 1.0,
                harm_threshold: 1.0,
            },
        };
        let alphas = Alphas::from_deltas(&[0.5, 0.05], 1.0 / 8.0).unwrap();
        let estimator = Estimator {
            kind: EstimatorKind::PlausibleSet,
            alpha: Some(0),
        };
        let mut g =
            Guardrail::new(model, alphas.clone(), 0.01, estimator, BackendChoice::Cpu).unwrap();
        let x = CandidateTable::new(vec![0., 0., 1., 1., 1., 1., 0., 1., 0.], 3);
        g.observe(&x, 1, Some(2.5)).unwrap();
        let e = g.estimates(&x).unwrap();
        let columns = Estimator::all(&alphas);
        let mut out = vec![0.0; columns.len() * 3];
        e.write_columns(&columns, &mut out);
        for (row, c) in out.chunks_exact(3).zip(&columns) {
            for (a, v) in row.iter().enumerate() {
                let want = e.value(c, a).unwrap_or(f64::NAN);
                assert_eq!(v.to_bits(), want.to_bits(), "{c:?}, candidate {a}");
            }
        }
        // the oracle has no value online
        assert!(out[out.len() - 1].is_nan());
    }
}
