//! CPU twin of `shaders/harm.wgsl`: `w_h·x_a` and `q_h(a)` for every
//! hypothesis and candidate of a table.
//!
//! `q` depends on the hypothesis only through `w·x`. When hypotheses and
//! features are integers (the paper's grid bandit), `w·x` takes a handful of
//! integer values per candidate, so `q` is evaluated once per distinct value
//! and looked up, instead of one erfc per triple.

use crate::engine::CandidateTable;
use crate::model::{HypothesisSpace, Model};

/// Largest integer range of `w·x` that is tabulated.
const MAX_TABULATED_RANGE: f64 = (1 << 16) as f64;

/// `w·x` and `q` for one candidate table, hypothesis-major so the reduction
/// reads one contiguous row per hypothesis: `wx[h·stride + a]` and
/// `q[h·stride + a]`, rows padded by zeros to `stride` (a multiple of 4) so
/// the reduction runs on whole SIMD vectors.
#[derive(Debug, Clone)]
pub struct HarmTable {
    pub n_candidates: usize,
    pub stride: usize,
    pub wx: Vec<f64>,
    pub q: Vec<f64>,
}

impl HarmTable {
    /// `q` for every candidate of hypothesis `h` (without the padding).
    #[inline]
    pub fn q_row(&self, h: usize) -> &[f64] {
        &self.q[h * self.stride..h * self.stride + self.n_candidates]
    }

    /// False for a table whose `w·x` and `q` are left to the kernels (a
    /// table used by a single step: `loglik` computes `w·x` for the taken
    /// action only, `reduce` computes `q` for the hypotheses that matter).
    pub fn is_deferred(&self) -> bool {
        self.wx.is_empty()
    }

    #[inline]
    pub fn q(&self, h: usize, a: usize) -> f64 {
        self.q[h * self.stride + a]
    }
}

/// `w·x` and `q` for every hypothesis and candidate.
pub fn harm(model: &Model, table: &CandidateTable) -> HarmTable {
    let space = &model.hypotheses;
    let h_count = space.len();
    let a_count = table.n_candidates;
    let stride = a_count.next_multiple_of(4);
    // every hypothesis's row of w·x at once (padding lanes 0)
    let mut rows = vec![0.0; h_count * stride];
    space.dot_all_rows(&table.features, a_count, stride, &mut rows);
    let mut q = vec![0.0; h_count * stride];
    harm_of(model, table, &rows, &mut q);
    for row in q.chunks_exact_mut(stride) {
        row[a_count..].fill(0.0);
    }
    HarmTable {
        n_candidates: a_count,
        stride,
        wx: rows,
        q,
    }
}

/// `q` of every `w·x` in `wx` (of `features`' candidates). Where hypotheses
/// and features are integers `w·x` takes few values: `q` is evaluated once
/// per value in their range and looked up (`lo + i` is exactly the integer
/// `w·x`, so the same bits as evaluating each); otherwise the vectorised
/// `harm_into`.
pub(crate) fn harm_of(model: &Model, features: &CandidateTable, wx: &[f64], q: &mut [f64]) {
    if model.hypotheses.is_integer_valued() && features.is_integer_valued() {
        let (lo, hi) = integer_range(model, features, wx);
        if hi - lo <= MAX_TABULATED_RANGE {
            let lookup: Vec<f64> = (0..=(hi - lo) as usize)
                .map(|i| model.observation.harm(lo + i as f64))
                .collect();
            // v − lo is an integer in 0..=range (< 2^17): as i32 and clamped,
            // the loop vectorises (a gather) with no bounds check
            let last = (lookup.len() - 1) as i32;
            for (o, &v) in q.iter_mut().zip(wx) {
                *o = lookup[((v - lo) as i32).clamp(0, last) as usize];
            }
            return;
        }
    }
    model.observation.harm_into(wx, q);
}

/// Bounds on the integer `w·x` in `wx`, 0 included (padding). A grid's are
/// known from the features alone (each coordinate at 0 or k − 1, whichever
/// lowers or raises the sum; exact, as sums of integers): a scan of a
/// table costs as much as its lookups.
fn integer_range(model: &Model, features: &CandidateTable, wx: &[f64]) -> (f64, f64) {
    if let HypothesisSpace::Grid { k, .. } = model.hypotheses {
        let top = (k - 1) as f64;
        let (mut lo, mut hi) = (0.0f64, 0.0f64);
        for a in 0..features.n_candidates {
            let (l, h) = features.candidate(a).iter().fold((0.0, 0.0), |(l, h), &x| {
                (l + (top * x).min(0.0), h + (top * x).max(0.0))
            });
            (lo, hi) = (lo.min(l), hi.max(h));
        }
        return (lo, hi);
    }
    let lo = wx.iter().fold(0.0f64, |m, &v| m.min(v));
    let hi = wx.iter().fold(0.0f64, |m, &v| m.max(v));
    (lo, hi)
}

/// A table of a single step: nothing computed ahead (see `is_deferred`).
pub fn deferred(table: &CandidateTable) -> HarmTable {
    HarmTable {
        n_candidates: table.n_candidates,
        stride: table.n_candidates.next_multiple_of(4),
        wx: Vec::new(),
        q: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{HypothesisSpace, ObservationModel};

    #[test]
    fn tabulated_and_direct_harm_agree() {
        let model = Model {
            hypotheses: HypothesisSpace::grid(3, 4).unwrap(),
            observation: ObservationModel::Gaussian {
                sigma: 0.7,
                harm_threshold: 5.0,
            },
        };
        let ints = CandidateTable::new(vec![1.0, 0.0, 2.0, 1.0, 0.0, 1.0, 1.0, 1.0], 2);
        let t = harm(&model, &ints);
        for h in 0..model.hypotheses.len() {
            let w = model.hypotheses.params(h);
            for a in 0..2 {
                let wx: f64 = w.iter().zip(ints.candidate(a)).map(|(a, b)| a * b).sum();
                assert_eq!(t.wx[h * t.stride + a], wx);
                assert_eq!(t.q(h, a), model.observation.harm(wx));
            }
        }
    }
}
