//! The estimators of P(harm) for a candidate (SPEC §3), finished on the host
//! from the engine's reductions:
//!
//! | estimator | value | guarantee |
//! |---|---|---|
//! | `posterior_predictive` | `Σ_h p_h q_h` | none (the baseline) |
//! | `cautious_theory` | `q_ĥ`, `ĥ = argmax p_h q_h` | ≥ `q_{h*}` for large t, i.i.d. data |
//! | `plausible_set` | `max_{h ∈ I_α} q_h` | ≥ `q_{h*}` at every step, w.p. ≥ 1 − α/P(h*) |
//! | `ville_max` | `max_h p_h q_h / α` (≤ 1) | same event, same 1 − δ |
//! | `ville_sum` | `Σ_h p_h q_h / α` (≤ 1) | same, weaker |
//! | `oracle` | `q_{h*}` | exact, when the log states `h*` |

use serde::Serialize;

/// The α values in force, and the prior floor that turns each into a δ.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alphas {
    pub values: Vec<f64>,
    /// `p_min ≤ P(h*)`; `δ = α / p_min`.
    pub prior_floor: f64,
}

impl Alphas {
    pub fn new(values: Vec<f64>, prior_floor: f64) -> Result<Self, String> {
        if values.is_empty() {
            return Err("at least one α is needed".into());
        }
        for &a in &values {
            if !(a > 0.0 && a <= 1.0) {
                return Err(format!("α must be in (0, 1], got {a}"));
            }
        }
        if !(prior_floor > 0.0 && prior_floor <= 1.0) {
            return Err(format!(
                "the prior floor must be in (0, 1], got {prior_floor}"
            ));
        }
        Ok(Alphas {
            values,
            prior_floor,
        })
    }

    /// `α = δ · p_min` for each δ.
    pub fn from_deltas(deltas: &[f64], prior_floor: f64) -> Result<Self, String> {
        for &d in deltas {
            if !(d > 0.0 && d <= 1.0) {
                return Err(format!("δ must be in (0, 1], got {d}"));
            }
        }
        if let Some(d) = deltas.iter().find(|&&d| d * prior_floor == 0.0) {
            return Err(format!(
                "α = δ · p_min = {d:e} · {prior_floor:e} underflows to 0: give a larger --prior-floor, or --alpha"
            ));
        }
        Alphas::new(
            deltas.iter().map(|d| d * prior_floor).collect(),
            prior_floor,
        )
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The implied `δ = α / p_min` (may exceed 1: then no guarantee).
    pub fn delta(&self, i: usize) -> f64 {
        self.values[i] / self.prior_floor
    }
}

/// Every estimator's value for one candidate at one step.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CandidateEstimates {
    pub posterior_predictive: f64,
    pub cautious_theory: f64,
    /// `ĥ`, the hypothesis the cautious theory used.
    pub cautious_hypothesis: u32,
    /// per α
    pub plausible_set: Vec<f64>,
    /// per α
    pub ville_max: Vec<f64>,
    /// per α
    pub ville_sum: Vec<f64>,
    pub oracle: Option<f64>,
}

/// The estimator families; those marked per-α come once per α.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum EstimatorKind {
    /// Σ p·q (alias: posterior, the reference code's name)
    #[value(alias = "posterior")]
    PosteriorPredictive,
    /// q of argmax p·q (alias: iid)
    #[value(alias = "iid")]
    CautiousTheory,
    /// max of q over I_α (alias: non-iid)
    #[value(alias = "non-iid")]
    PlausibleSet,
    VilleMax,
    VilleSum,
    /// q of the true hypothesis (alias: cheating)
    #[value(alias = "cheating")]
    Oracle,
}

impl EstimatorKind {
    pub const ALL: [EstimatorKind; 6] = [
        EstimatorKind::PosteriorPredictive,
        EstimatorKind::CautiousTheory,
        EstimatorKind::PlausibleSet,
        EstimatorKind::VilleMax,
        EstimatorKind::VilleSum,
        EstimatorKind::Oracle,
    ];

    pub fn name(self) -> &'static str {
        match self {
            EstimatorKind::PosteriorPredictive => "posterior_predictive",
            EstimatorKind::CautiousTheory => "cautious_theory",
            EstimatorKind::PlausibleSet => "plausible_set",
            EstimatorKind::VilleMax => "ville_max",
            EstimatorKind::VilleSum => "ville_sum",
            EstimatorKind::Oracle => "oracle",
        }
    }

    pub fn per_alpha(self) -> bool {
        matches!(
            self,
            EstimatorKind::PlausibleSet | EstimatorKind::VilleMax | EstimatorKind::VilleSum
        )
    }
}

/// One estimator column: a family, and the α index for per-α families.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Estimator {
    pub kind: EstimatorKind,
    pub alpha: Option<usize>,
}

impl Estimator {
    /// Every estimator column for these α, in report order.
    pub fn all(alphas: &Alphas) -> Vec<Estimator> {
        let mut v = Vec::new();
        for kind in EstimatorKind::ALL {
            if kind.per_alpha() {
                v.extend((0..alphas.len()).map(|i| Estimator {
                    kind,
                    alpha: Some(i),
                }));
            } else {
                v.push(Estimator { kind, alpha: None });
            }
        }
        v
    }

    pub fn value(&self, c: &CandidateEstimates) -> Option<f64> {
        Some(match (self.kind, self.alpha) {
            (EstimatorKind::PosteriorPredictive, _) => c.posterior_predictive,
            (EstimatorKind::CautiousTheory, _) => c.cautious_theory,
            (EstimatorKind::PlausibleSet, Some(i)) => c.plausible_set[i],
            (EstimatorKind::VilleMax, Some(i)) => c.ville_max[i],
            (EstimatorKind::VilleSum, Some(i)) => c.ville_sum[i],
            (EstimatorKind::Oracle, _) => return c.oracle,
            _ => return None,
        })
    }

    /// e.g. `plausible_set[alpha=0.01]`
    pub fn label(&self, alphas: &Alphas) -> String {
        match self.alpha {
            Some(i) => format!(
                "{}[alpha={}]",
                self.kind.name(),
                number_key(alphas.values[i])
            ),
            None => self.kind.name().to_string(),
        }
    }
}

/// Formats an α or a threshold for keys and column names: the shortest
/// round-trip form, in scientific notation below 1e-3 (`1e-5`, `0.01`).
pub fn number_key(v: f64) -> String {
    if v != 0.0 && v.abs() < 1e-3 {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

/// Finishes the estimators for one candidate from its reductions, checking
/// them first (SPEC §2): `Err` says which reduction is not a number in its
/// range, so that no NaN (which `min` would turn into 1) and no maximum
/// over an empty set becomes an estimate. `weight_sum` is `Z = Σ_h e^{ℓ_h}`,
/// which the MAP's weight of 1 makes at least 1.
#[allow(clippy::too_many_arguments)]
pub fn finish(
    alphas: &Alphas,
    weight_sum: f64,
    weighted_harm: f64,
    cautious_hypothesis: u32,
    cautious_harm: f64,
    cautious_log_score: f64,
    plausible_harm: &[f64],
    oracle: Option<f64>,
) -> Result<CandidateEstimates, String> {
    let mut out = CandidateEstimates::default();
    finish_into(
        &mut out,
        alphas,
        weight_sum,
        weighted_harm,
        cautious_hypothesis,
        cautious_harm,
        cautious_log_score,
        plausible_harm,
        oracle,
    )?;
    Ok(out)
}

/// `finish` into `out`, reusing its vectors (the guardrail's steps then
/// allocate nothing). On `Err`, `out` holds no meaningful values.
#[allow(clippy::too_many_arguments)]
pub fn finish_into(
    out: &mut CandidateEstimates,
    alphas: &Alphas,
    weight_sum: f64,
    weighted_harm: f64,
    cautious_hypothesis: u32,
    cautious_harm: f64,
    cautious_log_score: f64,
    plausible_harm: &[f64],
    oracle: Option<f64>,
) -> Result<(), String> {
    let probability = |v: f64| (0.0..=1.0).contains(&v);
    if !(weight_sum >= 1.0 && weight_sum.is_finite()) {
        return Err(format!("Σ e^ℓ = {weight_sum}"));
    }
    // Σ e^ℓ q ≤ Σ e^ℓ, up to the device's f32 rounding
    if !(weighted_harm >= 0.0 && weighted_harm <= weight_sum * (1.0 + 1e-3)) {
        return Err(format!(
            "Σ e^ℓ q = {weighted_harm} with Σ e^ℓ = {weight_sum}"
        ));
    }
    if !probability(cautious_harm) || cautious_log_score.is_nan() || cautious_log_score > 1e-9 {
        return Err(format!(
            "q of the cautious theory {cautious_harm}, log score {cautious_log_score}"
        ));
    }
    if plausible_harm.len() != alphas.len() || !plausible_harm.iter().all(|&q| probability(q)) {
        return Err(format!("max of q over I_α: {plausible_harm:?}"));
    }
    if oracle.is_some_and(|q| !probability(q)) {
        return Err(format!("q of the true hypothesis {oracle:?}"));
    }
    let predictive = (weighted_harm / weight_sum).min(1.0);
    // max_h p_h q_h = e^{ℓ_ĥ + ln q_ĥ} / Z, in log space so it cannot underflow early
    let max_weighted = (cautious_log_score - weight_sum.ln()).exp().min(1.0);
    out.posterior_predictive = predictive;
    out.cautious_theory = cautious_harm;
    out.cautious_hypothesis = cautious_hypothesis;
    out.plausible_set.clear();
    out.plausible_set.extend_from_slice(plausible_harm);
    out.ville_max.clear();
    out.ville_max
        .extend(alphas.values.iter().map(|a| (max_weighted / a).min(1.0)));
    out.ville_sum.clear();
    out.ville_sum
        .extend(alphas.values.iter().map(|a| (predictive / a).min(1.0)));
    out.oracle = oracle;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_outside_zero_one_are_refused_and_alpha_is_delta_times_the_floor() {
        // δ > 1 would still give an α ≤ 1 (α = δ·p_min): only the δ check catches it
        for bad in [1.5, 0.0, -0.1, f64::NAN] {
            let e = Alphas::from_deltas(&[bad], 0.01).unwrap_err();
            assert!(e.starts_with("δ must be in (0, 1]"), "δ = {bad}: {e}");
        }
        // δ · p_min underflowing to 0 is named as such, with the way out
        let e = Alphas::from_deltas(&[1e-10], 1e-320).unwrap_err();
        assert!(e.starts_with("α = δ · p_min = 1e-10"), "{e}");
        assert!(e.contains("--prior-floor"), "{e}");
        let a = Alphas::from_deltas(&[0.05, 1.0], 1.0 / 1024.0).unwrap();
        assert_eq!(a.values, vec![0.05 / 1024.0, 1.0 / 1024.0]);
        assert_eq!(a.delta(0), 0.05);
        // α outside (0, 1] and a floor outside (0, 1] are refused too
        for bad in [0.0, 1.5, f64::NAN] {
            assert!(Alphas::new(vec![bad], 0.5).is_err(), "α = {bad}");
            assert!(Alphas::new(vec![0.5], bad).is_err(), "floor = {bad}");
        }
    }
}
