//! The posterior over hypotheses (SPEC §2), kept in log space with f64
//! accumulation, and the plausible set `I_α` cut-off (SPEC §3.3).
//!
//! Engines return per-step log-likelihoods; this module turns them into, for
//! every step, the *log relative weight* `ℓ_h = L_t(h) − max_h L_t(h)` (so the
//! MAP hypothesis has weight exactly 1 and nothing overflows) and the
//! plausible-set thresholds. Normalisation by `Z = Σ e^ℓ` happens in the
//! reductions, which sum the weights anyway.

use ndarray::{ArrayViewMut2, Axis};

/// `ln Σ e^{x_i}`, stable; −∞ for an empty or all −∞ input.
pub fn log_sum_exp(x: &[f64]) -> f64 {
    let m = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        return m;
    }
    m + x.iter().map(|v| (v - m).exp()).sum::<f64>().ln()
}

/// Turns the rows of per-step log-likelihoods of one stream segment into the
/// rows of `L_t` *before* each step (observations `s < t` only), continuing
/// from `carry` (the log prior for a fresh stream). On return `carry` holds
/// the state after the segment's last step.
///
/// Unobserved steps have all-zero rows, so they change nothing. Every
/// hypothesis accumulates in the same order whatever the batching, so results
/// are bit-identical across chunk sizes and thread counts.
pub fn accumulate(carry: &mut [f64], mut rows: ArrayViewMut2<'_, f64>) {
    for mut row in rows.axis_iter_mut(Axis(0)) {
        let row = row.as_slice_mut().expect("row-major log-likelihoods");
        for (l, c) in row.iter_mut().zip(carry.iter_mut()) {
            let ll = *l;
            *l = *c;
            *c += ll;
        }
    }
}

/// Subtracts the maximum so the row holds log relative weights; returns the
/// maximum (the log of the unnormalised MAP weight) and the MAP index (first
/// on ties).
pub fn to_log_relative(row: &mut [f64]) -> (f64, usize) {
    let (mut best, mut arg) = (f64::NEG_INFINITY, 0);
    for (h, &v) in row.iter().enumerate() {
        if v > best {
            best = v;
            arg = h;
        }
    }
    if best.is_finite() {
        row.iter_mut().for_each(|v| *v -= best);
    }
    (best, arg)
}

/// The plausible set `I_α` of one step, for one α: every hypothesis whose log
/// relative weight is at least `threshold` is in the set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlausibleCut {
    /// The log relative weight of the last group the set includes.
    pub threshold: f64,
    /// `|I_α|`.
    pub size: usize,
}

/// Computes `I_α = { h : p_h ≥ α·(p_h + Σ_{p_j > p_h} p_j) }` for each α.
///
/// Ties count as not ahead (SPEC §3.3), so tied hypotheses are all in or all
/// out, and because `p_h / (p_h + mass ahead)` never increases down the
/// order, the set is a prefix of groups: it is fully described by the weight
/// of its last group. Only hypotheses with relative weight ≥ `min α` can be
/// members (all others have at least the MAP's mass ahead of them), so only
/// those are sorted. `scratch` is reused between calls.
pub fn plausible_cuts(
    log_rel: &[f64],
    alphas: &[f64],
    scratch: &mut Vec<f64>,
    out: &mut [PlausibleCut],
) {
    debug_assert_eq!(alphas.len(), out.len());
    let alpha_min = alphas.iter().copied().fold(1.0, f64::min);
    // Slack keeps hypotheses whose exact test is decided below in linear space.
    let floor = alpha_min.ln() - 1e-9;
    scratch.clear();
    scratch.extend(log_rel.iter().copied().filter(|&l| l >= floor));
    scratch.sort_unstable_by(|a, b| b.total_cmp(a));

    for cut in out.iter_mut() {
        *cut = PlausibleCut {
            threshold: 0.0,
            size: 0,
        };
    }
    let mut open = alphas.len();
    let mut closed = vec![false; alphas.len()];
    let mut ahead = 0.0f64; // Σ of relative weights strictly ahead of the group
    let mut i = 0;
    while i < scratch.len() && open > 0 {
        let l = scratch[i];
        let mut end = i + 1;
        while end < scratch.len() && scratch[end] == l {
            end += 1;
        }
        let v = l.exp();
        for (a, (&alpha, cut)) in alphas.iter().zip(out.iter_mut()).enumerate() {
            if closed[a] {
                continue;
            }
            if v >= alpha * (v + ahead) {
                cut.threshold = l;
                cut.size = end;
            } else {
                closed[a] = true;
                open -= 1;
            }
        }
        ahead += v * (end - i) as f64;
        i = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cuts(lr: &[f64], alphas: &[f64]) -> Vec<PlausibleCut> {
        let mut out = vec![
            PlausibleCut {
                threshold: 0.0,
                size: 0
            };
            alphas.len()
        ];
        plausible_cuts(lr, alphas, &mut Vec::new(), &mut out);
        out
    }

    #[test]
    fn at_a_uniform_prior_every_alpha_includes_everything() {
        let lr = vec![0.0; 1024];
        for c in cuts(&lr, &[1.0, 0.1, 1e-5]) {
            assert_eq!(c.size, 1024);
        }
    }

    #[test]
    fn the_cut_follows_the_definition_without_ties() {
        // p ∝ 8, 4, 2, 1, 1/2 : α = 0.25 → 8 ≥ .25·8, 4 ≥ .25·12=3, 2 < .25·14=3.5
        let lr: Vec<f64> = [8.0f64, 4.0, 2.0, 1.0, 0.5]
            .iter()
            .map(|v| (v / 8.0).ln())
            .collect();
        let c = cuts(&lr, &[0.25, 1.0, 0.05]);
        assert_eq!(c[0].size, 2);
        assert_eq!(c[1].size, 1);
        // α = 0.05: 0.5 ≥ .05·15.5 = 0.775? no → 4 members
        assert_eq!(c[2].size, 4);
        assert!((c[2].threshold - (1.0f64 / 8.0).ln()).abs() < 1e-15);
    }

    #[test]
    fn ties_are_all_in_or_all_out() {
        // one leader, then three tied: 1 ≥ α(1+1)? α=0.5 yes → all three in
        let lr: Vec<f64> = [1.0f64, 1.0, 1.0, 2.0]
            .iter()
            .map(|v| (v / 2.0).ln())
            .collect();
        let c = cuts(&lr, &[0.5, 0.6]);
        assert_eq!(c[0].size, 4);
        assert_eq!(c[1].size, 1);
    }

    #[test]
    fn accumulate_shifts_observations_to_the_next_step() {
        let mut carry = vec![0.0, -1.0];
        let mut ll = ndarray::Array2::from_shape_vec((2, 2), vec![-1.0, -2.0, -3.0, -4.0]).unwrap();
        accumulate(&mut carry, ll.view_mut());
        assert_eq!(ll.row(0).to_vec(), vec![0.0, -1.0]);
        assert_eq!(ll.row(1).to_vec(), vec![-1.0, -3.0]);
        assert_eq!(carry, vec![-4.0, -7.0]);
    }
}
