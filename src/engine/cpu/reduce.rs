//! CPU twin of `shaders/reduce.wgsl`: for every step, the reductions over
//! hypotheses that the estimators need, per candidate:
//!
//! * `Σ_h w_h q_h` with relative weights `w_h = e^{ℓ_h}` (posterior predictive),
//! * `ĥ = argmax_h ℓ_h + ln q_h`, ties → larger `q` (cautious theory, Ville),
//! * `max_{h ∈ I_α} q_h` for each α (plausible set).
//!
//! The argmax is taken on the product `w_h q_h` while it is a normal f64, and
//! redone in log space for the rare candidates where every product underflows,
//! so underflow cannot change `ĥ` (SPEC §3.2).

use rayon::prelude::*;

use super::harm::HarmTable;
use crate::engine::{Batch, Reductions, StepWeights};

/// Per-step scratch and results, gathered into `Reductions` afterwards.
struct StepReduction {
    weight_sum: f64,
    weighted_log_rel: f64,
    weighted_harm: Vec<f64>,
    cautious_hypothesis: Vec<u32>,
    cautious_harm: Vec<f64>,
    cautious_log_score: Vec<f64>,
    plausible_harm: Vec<f64>,
}

pub fn reduce(
    batch: &Batch<'_>,
    tables: &[HarmTable],
    weights: &StepWeights,
    n_alpha: usize,
) -> Reductions {
    let per_step: Vec<StepReduction> = (0..batch.steps.len())
        .into_par_iter()
        .map_init(Vec::new, |weight, t| {
            let table = &tables[batch.steps[t].table as usize];
            let log_rel = weights.log_rel.row(t);
            let log_rel = log_rel.as_slice().expect("row-major weights");
            let thresholds = weights.plausible_threshold.row(t);
            reduce_step(
                table,
                log_rel,
                thresholds.as_slice().unwrap(),
                n_alpha,
                weight,
            )
        })
        .collect();

    let mut out = Reductions::with_capacity(batch.steps.len(), batch.n_candidates_total(), n_alpha);
    for s in per_step {
        out.weight_sum.push(s.weight_sum);
        out.weighted_log_rel.push(s.weighted_log_rel);
        out.weighted_harm.extend(s.weighted_harm);
        out.cautious_hypothesis.extend(s.cautious_hypothesis);
        out.cautious_harm.extend(s.cautious_harm);
        out.cautious_log_score.extend(s.cautious_log_score);
        out.plausible_harm.extend(s.plausible_harm);
    }
    out
}

fn reduce_step(
    table: &HarmTable,
    log_rel: &[f64],
    thresholds: &[f64],
    n_alpha: usize,
    weight: &mut Vec<f64>,
) -> StepReduction {
    let a_count = table.n_candidates;
    weight.clear();
    weight.extend(log_rel.iter().map(|&l| l.exp()));

    let mut weight_sum = 0.0;
    let mut weighted_log_rel = 0.0;
    let mut sum = vec![0.0; a_count];
    let mut best = vec![-1.0f64; a_count];
    let mut arg = vec![0u32; a_count];
    let mut best_q = vec![0.0f64; a_count];
    for (h, &w) in weight.iter().enumerate() {
        if w == 0.0 {
            continue; // contributes nothing to any sum, and cannot beat a normal product
        }
        weight_sum += w;
        weighted_log_rel += w * log_rel[h];
        let q = table.q_row(h);
        for a in 0..a_count {
            let p = w * q[a];
            sum[a] += p;
            if p > best[a] || (p == best[a] && q[a] > best_q[a]) {
                best[a] = p;
                arg[a] = h as u32;
                best_q[a] = q[a];
            }
        }
    }

    let mut log_score = vec![f64::NEG_INFINITY; a_count];
    for a in 0..a_count {
        if best[a] >= f64::MIN_POSITIVE {
            let h = arg[a] as usize;
            log_score[a] = log_rel[h] + best_q[a].ln();
        } else {
            let (h, s) = log_space_argmax(table, log_rel, a);
            arg[a] = h as u32;
            best_q[a] = table.q[h * a_count + a];
            log_score[a] = s;
        }
    }

    // Plausible sets: only hypotheses at or above the lowest threshold matter.
    let mut plausible = vec![0.0f64; a_count * n_alpha];
    let lowest = thresholds.iter().copied().fold(f64::INFINITY, f64::min);
    for (h, &l) in log_rel.iter().enumerate() {
        if l < lowest {
            continue;
        }
        let q = table.q_row(h);
        for (i, &thr) in thresholds.iter().enumerate() {
            if l >= thr {
                for a in 0..a_count {
                    let m = &mut plausible[a * n_alpha + i];
                    *m = m.max(q[a]);
                }
            }
        }
    }

    StepReduction {
        weight_sum,
        weighted_log_rel,
        weighted_harm: sum,
        cautious_hypothesis: arg,
        cautious_harm: best_q,
        cautious_log_score: log_score,
        plausible_harm: plausible,
    }
}

/// `argmax_h ℓ_h + ln q_h` for one candidate, ties → larger `q`, then lower
/// index. When every `q` is 0 the MAP hypothesis is returned with score −∞.
fn log_space_argmax(table: &HarmTable, log_rel: &[f64], a: usize) -> (usize, f64) {
    let stride = table.n_candidates;
    let (mut best, mut arg, mut best_q) = (f64::NEG_INFINITY, usize::MAX, 0.0);
    for (h, &l) in log_rel.iter().enumerate() {
        let q = table.q[h * stride + a];
        if q == 0.0 || l == f64::NEG_INFINITY {
            continue;
        }
        let s = l + q.ln();
        if s > best || (s == best && q > best_q) {
            best = s;
            arg = h;
            best_q = q;
        }
    }
    if arg == usize::MAX {
        let map = log_rel.iter().position(|&l| l == 0.0).unwrap_or(0);
        return (map, f64::NEG_INFINITY);
    }
    (arg, best)
}
