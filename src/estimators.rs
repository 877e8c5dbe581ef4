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
        // never empty: `new` refuses an empty list
        assert_eq!((a.len(), a.is_empty()), (2, false));
        assert!(Alphas::new(Vec::new(), 0.5).is_err());
        // α outside (0, 1] and a floor outside (0, 1] are refused too
        for bad in [0.0, 1.5, f64::NAN] {
            assert!(Alphas::new(vec![bad], 0.5).is_err(), "α = {bad}");
            assert!(Alphas::new(vec![0.5], bad).is_err(), "floor = {bad}");
        }
    }

    /// `finish` from its definition: the closed forms, and every reduction
    /// outside its range refused rather than turned into an estimate (a NaN
    /// through `min` would read as 1, an empty maximum as 0 "safe").
    #[test]
    fn finish_computes_the_closed_forms_and_refuses_what_is_out_of_range() {
        let alphas = Alphas::new(vec![0.5, 0.01], 0.1).unwrap();
        let ok = |ws: f64, wh: f64, q: f64, ls: f64, plausible: &[f64], oracle: Option<f64>| {
            finish(&alphas, ws, wh, 7, q, ls, plausible, oracle)
        };
        // Z = 4, Σ e^ℓ q = 1: predictive ¼; max p·q = e^{ln 0.8} / 4 = 0.2
        let c = ok(4.0, 1.0, 0.8, 0.8f64.ln(), &[0.9, 0.95], Some(0.3)).unwrap();
        assert_eq!(c.posterior_predictive, 0.25);
        assert_eq!((c.cautious_theory, c.cautious_hypothesis), (0.8, 7));
        assert_eq!(c.plausible_set, vec![0.9, 0.95]);
        let max_pq = (0.8f64.ln() - 4.0f64.ln()).exp();
        assert!((max_pq - 0.2).abs() < 1e-15);
        assert_eq!(c.ville_max, vec![max_pq / 0.5, 1.0]); // 0.2/0.01 clipped to 1
        assert_eq!(c.ville_sum, vec![0.5, 1.0]); // ¼/0.5; ¼/0.01 clipped
        assert_eq!(c.oracle, Some(0.3));
        // the edges of each range are accepted: Z = 1 (the MAP alone),
        // Σ e^ℓ q at Z (1 + 1e-3) (f32 rounding on the device), q at 0 and
        // 1, a log score of 0 (p·q = 1) and up to 1e-9 above
        let c = ok(1.0, 1.0 + 1e-3, 1.0, 1e-9, &[0.0, 1.0], Some(0.0)).unwrap();
        assert_eq!(c.posterior_predictive, 1.0); // clipped
        assert_eq!(c.ville_max, vec![1.0, 1.0]);
        assert!(ok(2.0, 0.0, 0.0, f64::NEG_INFINITY, &[0.0, 0.0], Some(1.0)).is_ok());
        assert!(ok(2.0, 0.0, 0.0, f64::NEG_INFINITY, &[0.0, 0.0], None).is_ok());
        // each reduction out of its range names itself: a valid case with
        // one reduction changed
        #[derive(Clone)]
        struct Reduced {
            ws: f64,
            wh: f64,
            q: f64,
            ls: f64,
            plausible: Vec<f64>,
            oracle: Option<f64>,
        }
        let valid = Reduced {
            ws: 2.0,
            wh: 0.5,
            q: 0.5,
            ls: -1.0,
            plausible: vec![0.5, 0.5],
            oracle: None,
        };
        let with = |change: &dyn Fn(&mut Reduced)| {
            let mut r = valid.clone();
            change(&mut r);
            r
        };
        let nan = f64::NAN;
        let refused = [
            (with(&|r| r.ws = 0.999), "Σ e^ℓ = 0.999"),
            (with(&|r| r.ws = nan), "Σ e^ℓ = NaN"),
            (with(&|r| r.ws = f64::INFINITY), "Σ e^ℓ = inf"),
            (with(&|r| r.wh = -0.5), "Σ e^ℓ q = -0.5"),
            (with(&|r| r.wh = nan), "Σ e^ℓ q = NaN"),
            (with(&|r| r.wh = 2.003), "Σ e^ℓ q = 2.003"),
            (with(&|r| r.q = 1.0000001), "cautious theory 1.0000001"),
            (with(&|r| r.q = -0.0001), "cautious theory -0.0001"),
            (with(&|r| r.q = nan), "cautious theory NaN"),
            (with(&|r| r.ls = nan), "log score NaN"),
            (with(&|r| r.ls = 2e-9), "log score 0.000000002"),
            (with(&|r| r.plausible = vec![0.5]), "I_α: [0.5]"),
            (with(&|r| r.plausible = vec![0.5, 1.5]), "I_α: [0.5, 1.5]"),
            (with(&|r| r.plausible = vec![nan, 0.5]), "I_α: [NaN, 0.5]"),
            (with(&|r| r.oracle = Some(1.2)), "true hypothesis Some(1.2)"),
            (with(&|r| r.oracle = Some(nan)), "true hypothesis Some(NaN)"),
        ];
        let run = |r: &Reduced| ok(r.ws, r.wh, r.q, r.ls, &r.plausible, r.oracle);
        assert!(run(&valid).is_ok());
        for (r, says) in refused {
            let e = run(&r).unwrap_err();
            assert!(e.contains(says), "{says:?}: {e}");
        }
    }
}
