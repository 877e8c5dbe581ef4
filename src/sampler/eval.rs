//! Validation where the truth is known: the exact posterior of an enumerable
//! grid and the total-variation distance of the policy from it (exact on
//! both sides: the policy's probability of every `w` is exact).

use super::context::Context;
use super::policy::Policy;
use super::SamplerModel;
use crate::model::log_sum_exp;
use crate::{Error, Result};

/// The normalised log posterior of every `w` of the grid, in grid index
/// order (first coordinate most significant).
pub fn exact_log_posterior(
    model: &SamplerModel,
    ctx: &Context,
    max_hypotheses: usize,
) -> Result<Vec<f64>> {
    let h = match model.grid_size() {
        Some(h) if h <= max_hypotheses => h,
        _ => {
            return Err(Error::Setting(format!(
                "the grid has more than {max_hypotheses} hypotheses: too many to enumerate"
            )))
        }
    };
    let (k, d) = (model.k as usize, model.d);
    let mut w = vec![0.0; d];
    let mut out: Vec<f64> = (0..h)
        .map(|i| {
            let mut rest = i;
            for j in (0..d).rev() {
                w[j] = (rest % k) as f64;
                rest /= k;
            }
            ctx.log_reward(model, &w)
        })
        .collect();
    let z = log_sum_exp(&out);
    out.iter_mut().for_each(|v| *v -= z);
    Ok(out)
}

/// `½ Σ |q − p|` of two normalised log distributions over the same points.
pub fn total_variation(log_q: &[f64], log_p: &[f64]) -> f64 {
    0.5 * log_q
        .iter()
        .zip(log_p)
        .map(|(q, p)| (q.exp() - p.exp()).abs())
        .sum::<f64>()
}

/// The TV distance of `policy` from the exact posterior in `ctx`.
pub fn policy_tv(policy: &Policy, ctx: &Context, max_hypotheses: usize) -> Result<f64> {
    let q = policy.log_q_grid(ctx, max_hypotheses)?;
    let p = exact_log_posterior(&policy.model, ctx, max_hypotheses)?;
    Ok(total_variation(&q, &p))
}

/// Averages of per-step TV distances: overall, for steps `t ≤ 5` and for
/// `t ≥ 20` (`t` = the 1-based step; its context holds the observations of
/// the steps before it).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct TvSummary {
    pub steps: usize,
    pub mean: f64,
    pub early_steps: usize,
    pub early: f64,
    pub late_steps: usize,
    pub late: f64,
}

impl TvSummary {
    /// From `(t, tv)` pairs; a bucket with no step has NaN.
    pub fn of(per_step: &[(usize, f64)]) -> TvSummary {
        let mean = |f: &dyn Fn(usize) -> bool| {
            let v: Vec<f64> = per_step
                .iter()
                .filter(|(t, _)| f(*t))
                .map(|p| p.1)
                .collect();
            let n = v.len();
            (
                n,
                if n == 0 {
                    f64::NAN
                } else {
                    v.iter().sum::<f64>() / n as f64
                },
            )
        };
        let (steps, all) = mean(&|_| true);
        let (early_steps, early) = mean(&|t| t <= 5);
        let (late_steps, late) = mean(&|t| t >= 20);
        TvSummary {
            steps,
            mean: all,
            early_steps,
            early,
            late_steps,
            late,
        }
    }
}
