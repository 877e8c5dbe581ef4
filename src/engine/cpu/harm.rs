//! CPU twin of `shaders/harm.wgsl`: `w_h·x_a` and `q_h(a)` for every
//! hypothesis and candidate of a table.
//!
//! `q` depends on the hypothesis only through `w·x`. When hypotheses and
//! features are integers (the paper's grid bandit), `w·x` takes a handful of
//! integer values per candidate, so `q` is evaluated once per distinct value
//! and looked up, instead of one erfc per triple.

use crate::engine::CandidateTable;
use crate::model::Model;

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
    let integer = space.is_integer_valued() && table.is_integer_valued();
    harm_of(model, integer, &rows, &mut q);
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

/// `q` of every `w·x` in `wx`. Where hypotheses and features are integers
/// `w·x` takes few values: `q` is evaluated once per value in their range
/// and looked up (`lo + i` is exactly the integer `w·x`, so the same bits as
/// evaluating each); otherwise the vectorised `harm_into`.
pub(crate) fn harm_of(model: &Model, integer: bool, wx: &[f64], q: &mut [f64]) {
    if integer {
        // integers are finite: plain comparisons, which vectorise
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for &v in wx {
            lo = if v < lo { v } else { lo };
            hi = if v > hi { v } else { hi };
        }
        if hi - lo <= MAX_TABULATED_RANGE {
            let lookup: Vec<f64> = (0..=(hi - lo) as usize)
                .map(|i| model.observation.harm(lo + i as f64))
                .collect();
            for (o, &v) in q.iter_mut().zip(wx) {
                *o = lookup[(v - lo) as usize];
            }
            return;
        }
    }
    model.observation.harm_into(wx, q);
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
