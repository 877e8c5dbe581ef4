//! The posterior over hypotheses (SPEC §2), kept in log space with f64
//! accumulation, and the plausible set `I_α` cut-off (SPEC §3.3).
//!
//! Engines return per-step log-likelihoods; this module turns them into, for
//! every step, the *log relative weight* `ℓ_h = L_t(h) − max_h L_t(h)` (so the
//! MAP hypothesis has weight exactly 1 and nothing overflows) and the
//! plausible-set thresholds. Normalisation by `Z = Σ e^ℓ` happens in the
//! reductions, which sum the weights anyway.

use ndarray::{Array2, ArrayViewMut2, Axis};
use rayon::prelude::*;

#[cfg(target_arch = "x86_64")]
use crate::model::exp::exp_avx512;
use crate::model::exp::exp_lanes;
pub use crate::model::log_sum_exp;

/// The host's posterior for every step of a batch .
#[derive(Debug, Clone)]
pub struct StepWeights {
    /// `steps × H`: `ℓ_h = L_t(h) − max L_t`, the MAP has 0.
    pub log_rel: Array2<f64>,
    /// `steps × H`: the relative weights `e^{ℓ_h}` in f64 (0 where they
    /// underflow), computed once by the host; backends working in another
    /// precision exponentiate `log_rel` themselves.
    pub weight: Array2<f64>,
    /// `steps × n_alpha`: `h ∈ I_α` iff `ℓ_h ≥ threshold`.
    pub plausible_threshold: Array2<f64>,
}

/// Below this a log posterior `L` stands for −∞ (the shaders' `LOG_ZERO`:
/// the device holds `L` in double-f32). A posterior whose largest `L` is
/// below it, or not a number, after an outcome means that no hypothesis
/// could explain the outcome (SPEC §2); both backends test it alike.
pub const LOG_ZERO: f64 = -1e30;

/// `max L` of a posterior says it holds no hypothesis (see `LOG_ZERO`).
pub fn is_void(max_log: f64) -> bool {
    max_log.is_nan() || max_log <= LOG_ZERO
}

/// The largest entry; NaN entries are left out, −∞ when all are.
pub fn max_log(x: &[f64]) -> f64 {
    // eight independent lanes the compiler vectorises; `v > m` is false for
    // NaN, so NaN is passed over as `f64::max` would
    let mut m = [f64::NEG_INFINITY; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        for k in 0..8 {
            m[k] = if c[k] > m[k] { c[k] } else { m[k] };
        }
    }
    chunks
        .remainder()
        .iter()
        .chain(&m)
        .fold(f64::NEG_INFINITY, |a, &v| if v > a { v } else { a })
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

/// Below this `e^ℓ` is 0 in f64.
const UNDERFLOW: f64 = -746.0;

/// Weights below `e^SUM_FLOOR` are left out of `Σ w` and `Σ w·ℓ`: the MAP
/// alone weighs 1, and even 10^9 hypotheses below it add less than 1e-17,
/// under half an ulp of the sum. The fixed bound lets a pass skip their
/// exponentials and still add exactly what the other passes add.
pub const SUM_FLOOR: f64 = -60.0;

/// A row of log relative weights, summarised by `to_relative`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Relative {
    /// The row's maximum before the shift: the log of the MAP's weight.
    pub max: f64,
    /// The MAP hypothesis (first on ties).
    pub map: usize,
    /// `Σ w` and `Σ w·ℓ`, exactly as `weight_sums` adds them.
    pub sums: (f64, f64),
}

/// Subtracts the maximum so the row holds log relative weights `ℓ`, and
/// writes `weight = e^ℓ`; sums the weights on the way.
///
/// Three vectorisable passes: the maximum (eight independent lanes), the
/// first index holding it, and the subtraction fused with a vector exp.
pub fn to_relative(row: &mut [f64], weight: &mut [f64]) -> Relative {
    to_relative_skipping(row, weight, |_| f64::NEG_INFINITY)
}

/// `to_relative`, writing a weight of 0 without its exponential for every
/// hypothesis whose `ℓ` is below both `SUM_FLOOR` and `negligible(map)`: the
/// caller's bound, given the MAP, under which a weight changes no reduction
/// (`engine::cpu::reduce::negligible_weight`). The sums are the same as
/// `to_relative`'s. On a long stream most of a row is there: at H = 1024
/// seven hypotheses in ten.
pub fn to_relative_skipping(
    row: &mut [f64],
    weight: &mut [f64],
    negligible: impl FnOnce(usize) -> f64,
) -> Relative {
    let mut lanes = [f64::NEG_INFINITY; 8];
    let mut chunks = row.chunks_exact(8);
    for c in &mut chunks {
        for (m, &v) in lanes.iter_mut().zip(c) {
            *m = if v > *m { v } else { *m };
        }
    }
    let best = chunks
        .remainder()
        .iter()
        .chain(&lanes)
        .fold(f64::NEG_INFINITY, |m, &v| if v > m { v } else { m });
    let arg = row.iter().position(|&v| v == best).unwrap_or(0);
    let shift = if best.is_finite() { best } else { 0.0 };
    // e^ℓ is 0 in f64 below about −745 in any case
    let below = negligible(arg).clamp(UNDERFLOW, SUM_FLOOR);
    let mut sums = WeightSums::default();
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if crate::model::simd::level() >= crate::model::simd::SimdLevel::Avx512 {
        // SAFETY: the CPU supports AVX-512F (`level` never exceeds it).
        done = unsafe { weigh_avx512(row, weight, shift, below, &mut sums) };
    }
    let mut rows = row[done..].chunks_exact_mut(4);
    let mut out = weight[done..].chunks_exact_mut(4);
    for (c, o) in (&mut rows).zip(&mut out) {
        let l = [c[0] - shift, c[1] - shift, c[2] - shift, c[3] - shift];
        c.copy_from_slice(&l);
        // once a posterior has concentrated most lanes are below: no exp
        if l.iter().all(|&v| v < below) {
            o.fill(0.0);
        } else {
            let mut w = exp_lanes(l);
            for (w, &l) in w.iter_mut().zip(&l) {
                *w = if l < below { 0.0 } else { *w };
            }
            o.copy_from_slice(&w);
            sums.add4(&w, &l);
        }
    }
    let (rest, out) = (rows.into_remainder(), out.into_remainder());
    let mut l = [f64::NEG_INFINITY; 4];
    for (v, c) in l.iter_mut().zip(rest.iter_mut()) {
        *c -= shift;
        *v = *c;
    }
    for ((o, w), &c) in out.iter_mut().zip(exp_lanes(l)).zip(rest.iter()) {
        *o = if c < below { 0.0 } else { w };
        sums.add1(*o, c);
    }
    Relative {
        max: best,
        map: arg,
        sums: sums.total(),
    }
}

/// The main loop of `to_relative_skipping` on whole chunks of eight, in
/// AVX-512 registers (the compiler left `exp_lanes` two lanes wide and
/// scalar): the same operations lane by lane, and the same sums in the same
/// order (two chunks of four after another), so the same bits. Returns how
/// many entries it did.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn weigh_avx512(
    row: &mut [f64],
    weight: &mut [f64],
    shift: f64,
    below: f64,
    sums: &mut WeightSums,
) -> usize {
    use std::arch::x86_64::*;
    let n = row.len().min(weight.len()) / 8 * 8;
    let (shift, below) = (_mm512_set1_pd(shift), _mm512_set1_pd(below));
    let floor = _mm512_set1_pd(SUM_FLOOR);
    let zero = _mm512_setzero_pd();
    let (mut sum, mut sum_l) = (
        _mm256_loadu_pd(sums.sum.as_ptr()),
        _mm256_loadu_pd(sums.sum_l.as_ptr()),
    );
    for i in (0..n).step_by(8) {
        // SAFETY: i + 8 ≤ n ≤ both lengths.
        let l = _mm512_sub_pd(_mm512_loadu_pd(row.as_ptr().add(i)), shift);
        _mm512_storeu_pd(row.as_mut_ptr().add(i), l);
        let skip = _mm512_cmp_pd_mask::<_CMP_LT_OQ>(l, below);
        if skip == 0xFF {
            _mm512_storeu_pd(weight.as_mut_ptr().add(i), zero);
            continue;
        }
        let w = _mm512_mask_mov_pd(exp_avx512(l), skip, zero);
        _mm512_storeu_pd(weight.as_mut_ptr().add(i), w);
        // `WeightSums::add4`, on each half
        let kept = _mm512_cmp_pd_mask::<_CMP_GE_OQ>(l, floor);
        let w = _mm512_maskz_mov_pd(kept, w);
        let wl = _mm512_mul_pd(w, _mm512_max_pd(l, floor));
        sum = _mm256_add_pd(sum, _mm512_castpd512_pd256(w));
        sum_l = _mm256_add_pd(sum_l, _mm512_castpd512_pd256(wl));
        sum = _mm256_add_pd(sum, _mm512_extractf64x4_pd::<1>(w));
        sum_l = _mm256_add_pd(sum_l, _mm512_extractf64x4_pd::<1>(wl));
    }
    _mm256_storeu_pd(sums.sum.as_mut_ptr(), sum);
    _mm256_storeu_pd(sums.sum_l.as_mut_ptr(), sum_l);
    n
}

/// `e^ℓ` of every entry, with the same lane exp as `to_relative` (so a
/// weight does not depend on where its hypothesis sits in a row).
pub fn exp_all(log_rel: &[f64], weight: &mut Vec<f64>) {
    weight.clear();
    let mut chunks = log_rel.chunks_exact(4);
    for c in &mut chunks {
        weight.extend_from_slice(&exp_lanes([c[0], c[1], c[2], c[3]]));
    }
    let rest = chunks.remainder();
    let mut l = [f64::NEG_INFINITY; 4];
    l[..rest.len()].copy_from_slice(rest);
    weight.extend_from_slice(&exp_lanes(l)[..rest.len()]);
}

/// `Σ w` and `Σ w·ℓ` over a row's hypotheses with `ℓ ≥ SUM_FLOOR`.
pub fn weight_sums(weight: &[f64], log_rel: &[f64]) -> (f64, f64) {
    let mut sums = WeightSums::default();
    let mut w4 = weight.chunks_exact(4);
    let mut l4 = log_rel.chunks_exact(4);
    for (w, l) in (&mut w4).zip(&mut l4) {
        sums.add4(w, l);
    }
    for (&w, &l) in w4.remainder().iter().zip(l4.remainder()) {
        sums.add1(w, l);
    }
    sums.total()
}

/// Four interleaved partial sums of `w` and `w·ℓ` over the hypotheses with
/// `ℓ ≥ SUM_FLOOR`: a fixed order (results do not depend on batching or
/// threads) in which the adds do not wait on each other. Adding a chunk of
/// four zero weights changes nothing, so a pass may skip such chunks.
#[derive(Default)]
struct WeightSums {
    sum: [f64; 4],
    sum_l: [f64; 4],
}

impl WeightSums {
    /// Branch-free: a weight left out adds +0, which changes no sum, and
    /// the clamp keeps `0·(−∞)` from making a NaN.
    #[inline(always)]
    fn add4(&mut self, w: &[f64], l: &[f64]) {
        for k in 0..4 {
            let w = if l[k] >= SUM_FLOOR { w[k] } else { 0.0 };
            self.sum[k] += w;
            self.sum_l[k] += w * l[k].max(SUM_FLOOR);
        }
    }

    #[inline(always)]
    fn add1(&mut self, w: f64, l: f64) {
        let w = if l >= SUM_FLOOR { w } else { 0.0 };
        self.sum[0] += w;
        self.sum_l[0] += w * l.max(SUM_FLOOR);
    }

    fn total(&self) -> (f64, f64) {
        let (s, l) = (&self.sum, &self.sum_l);
        ((s[0] + s[1]) + (s[2] + s[3]), (l[0] + l[1]) + (l[2] + l[3]))
    }
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
/// members (all others have at least the MAP's mass ahead of them).
///
/// Instead of sorting those candidates, they are binned by log weight; a bin
/// whose lowest member passes even with the most mass ahead it could have is
/// wholly in, a bin whose highest member fails with the least mass ahead is
/// wholly out, and only the bin where a cut falls is sorted. `scratch` is
/// reused between calls.
/// `weight` holds `e^{ℓ}` for each entry of `log_rel`.
pub fn plausible_cuts(
    log_rel: &[f64],
    weight: &[f64],
    alphas: &[f64],
    scratch: &mut CutScratch,
    out: &mut [PlausibleCut],
) {
    debug_assert_eq!(alphas.len(), out.len());
    let floor = plausible_floor(alphas);
    for cut in out.iter_mut() {
        *cut = PlausibleCut {
            threshold: 0.0,
            size: 0,
        };
    }
    let bins = CutScratch::BINS;
    let per_width = bins as f64 / -floor;
    let s = scratch;
    s.count.clear();
    s.count.resize(bins + 1, 0);
    s.mass.clear();
    s.mass.resize(bins, 0.0);
    // bin of each hypothesis (0 = below the floor, else bin + 1), kept for the fill
    s.bin.clear();
    s.bin.extend(log_rel.iter().zip(weight).map(|(&l, &w)| {
        if l >= floor {
            let b = (((l - floor) * per_width) as usize).min(bins - 1);
            s.count[b + 1] += 1;
            s.mass[b] += w;
            b as u8 + 1
        } else {
            0
        }
    }));
    // Counting sort into bins, highest bin first.
    let mut offset = vec![0usize; bins];
    let mut acc = 0;
    for b in (0..bins).rev() {
        offset[b] = acc;
        acc += s.count[b + 1];
    }
    s.sorted.clear();
    s.sorted.resize(acc, 0.0);
    let mut fill = offset.clone();
    for (&l, &b) in log_rel.iter().zip(&s.bin) {
        if b > 0 {
            let b = b as usize - 1;
            s.sorted[fill[b]] = l;
            fill[b] += 1;
        }
    }

    let mut open: Vec<bool> = vec![true; alphas.len()];
    let mut ahead = 0.0f64;
    for b in (0..bins).rev() {
        let n = s.count[b + 1];
        if n == 0 {
            continue;
        }
        if !open.iter().any(|&o| o) {
            break;
        }
        let slice = &mut s.sorted[offset[b]..offset[b] + n];
        let (lo, hi) = slice
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &l| {
                (lo.min(l), hi.max(l))
            });
        let (v_lo, v_hi, mass) = (lo.exp(), hi.exp(), s.mass[b]);
        let mut undecided = false;
        for (a, &alpha) in alphas.iter().enumerate() {
            if !open[a] {
                continue;
            }
            if v_hi < alpha * (v_hi + ahead) {
                open[a] = false; // even the bin's best fails
            } else if v_lo >= alpha * (v_lo + ahead + (mass - v_lo).max(0.0)) {
                out[a] = PlausibleCut {
                    threshold: lo,
                    size: offset[b] + n,
                };
            } else {
                undecided = true;
            }
        }
        if undecided {
            if lo != hi {
                slice.sort_unstable_by(|x, y| y.total_cmp(x));
            }
            let mut run = ahead;
            let mut i = 0;
            while i < n {
                let l = slice[i];
                let mut end = i + 1;
                while end < n && slice[end] == l {
                    end += 1;
                }
                let v = l.exp();
                for (a, &alpha) in alphas.iter().enumerate() {
                    // only the α still open whose verdict for this bin was not
                    // already "all in" (those have out[a].size past this bin)
                    if !open[a] || out[a].size == offset[b] + n {
                        continue;
                    }
                    if v >= alpha * (v + run) {
                        out[a] = PlausibleCut {
                            threshold: l,
                            size: offset[b] + end,
                        };
                    } else {
                        open[a] = false;
                    }
                }
                run += v * (end - i) as f64;
                i = end;
            }
        }
        ahead += mass;
    }
}

/// The lowest log relative weight `plausible_cuts` looks at: `ln min α`
/// (no hypothesis below it can be in any `I_α`), with a little slack that
/// keeps hypotheses whose exact test is decided in linear space.
pub fn plausible_floor(alphas: &[f64]) -> f64 {
    alphas.iter().copied().fold(1.0, f64::min).ln() - 1e-9
}

/// Reusable buffers for `plausible_cuts`.
#[derive(Debug, Default, Clone)]
pub struct CutScratch {
    count: Vec<usize>,
    mass: Vec<f64>,
    sorted: Vec<f64>,
    bin: Vec<u8>,
}

impl CutScratch {
    const BINS: usize = 64;
}

/// Log relative weights, relative weights, plausible-set cuts and MAP index
/// for every step.
pub fn step_weights(
    rows: Array2<f64>,
    alphas: &[f64],
) -> (StepWeights, Vec<Vec<PlausibleCut>>, Vec<usize>) {
    step_weights_into(rows, alphas, Vec::new())
}

/// `step_weights`, with the weights written into a recycled buffer.
pub fn step_weights_into(
    mut rows: Array2<f64>,
    alphas: &[f64],
    mut buffer: Vec<f64>,
) -> (StepWeights, Vec<Vec<PlausibleCut>>, Vec<usize>) {
    let n_alpha = alphas.len();
    let h = rows.ncols();
    // to_relative writes every weight: a recycled buffer needs no zeroing
    buffer.resize(rows.len(), 0.0);
    let mut weight = Array2::from_shape_vec(rows.raw_dim(), buffer).expect("steps × H");
    let per_step: Vec<(Vec<PlausibleCut>, usize)> = rows
        .as_slice_mut()
        .expect("row-major")
        .par_chunks_mut(h)
        .zip(weight.as_slice_mut().expect("row-major").par_chunks_mut(h))
        .map_init(CutScratch::default, |scratch, (row, w)| {
            let map = to_relative(row, w).map;
            let mut cuts = vec![
                PlausibleCut {
                    threshold: 0.0,
                    size: 0
                };
                n_alpha
            ];
            plausible_cuts(row, w, alphas, scratch, &mut cuts);
            (cuts, map)
        })
        .collect();
    let mut thresholds = Array2::zeros((rows.nrows(), n_alpha));
    for (t, (cuts, _)) in per_step.iter().enumerate() {
        for (i, c) in cuts.iter().enumerate() {
            thresholds[[t, i]] = c.threshold;
        }
    }
    let (cuts, maps) = per_step.into_iter().unzip();
    (
        StepWeights {
            log_rel: rows,
            weight,
            plausible_threshold: thresholds,
        },
        cuts,
        maps,
    )
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
        let w: Vec<f64> = lr.iter().map(|l| l.exp()).collect();
        plausible_cuts(lr, &w, alphas, &mut CutScratch::default(), &mut out);
        out
    }

    #[test]
    fn max_log_passes_over_nan_in_every_lane_and_the_remainder() {
        for n in [0usize, 1, 7, 8, 9, 23, 64] {
            let mut x: Vec<f64> = (0..n).map(|i| -((i * 37 % 11) as f64)).collect();
            let want = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            assert_eq!(max_log(&x), want, "n = {n}");
            for v in x.iter_mut().step_by(2) {
                *v = f64::NAN;
            }
            let want = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            assert_eq!(max_log(&x), want, "n = {n} with NaN");
        }
        assert_eq!(max_log(&[f64::NAN; 13]), f64::NEG_INFINITY);
        assert_eq!(max_log(&[f64::NEG_INFINITY, 3.0, f64::NAN]), 3.0);
    }

    /// `to_relative`'s weights (eight-lane AVX-512 where the CPU has it) are
    /// `exp_lanes`' to the bit, down through the subnormal range, at −∞ and
    /// NaN, for whole chunks of eight and the rest.
    #[test]
    fn to_relative_weights_are_the_lane_exp_bit_for_bit() {
        let mut row: Vec<f64> = (0..6000).map(|i| -0.1237 * i as f64).collect();
        row.extend([
            f64::NEG_INFINITY,
            f64::NAN,
            -745.1,
            -744.9,
            -708.4,
            0.0,
            -1e-300,
        ]);
        let want: Vec<u64> = row
            .iter()
            .map(|&l| exp_lanes([l, 0.0, 0.0, 0.0])[0].to_bits())
            .collect();
        let mut w = vec![0.0; row.len()];
        let r = to_relative(&mut row, &mut w);
        assert_eq!(r.max, 0.0);
        let got: Vec<u64> = w.iter().map(|w| w.to_bits()).collect();
        assert_eq!(got, want);
    }

    /// The sums `to_relative` returns are `weight_sums`' to the bit, with
    /// underflowing chunks, −∞ and a remainder.
    #[test]
    fn to_relative_sums_equal_weight_sums() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        for n in [1usize, 3, 4, 9, 64, 1027] {
            let mut row: Vec<f64> = (0..n)
                .map(|_| match rng.random_range(0..4) {
                    0 => f64::NEG_INFINITY,
                    1 => -2000.0 * rng.random::<f64>(),
                    _ => -30.0 * rng.random::<f64>(),
                })
                .collect();
            row[n / 2] = 3.5;
            let mut w = vec![0.0; n];
            let r = to_relative(&mut row, &mut w);
            assert_eq!(r.max, 3.5);
            assert_eq!(r.map, n / 2);
            assert_eq!(r.sums, weight_sums(&w, &row), "n = {n}");
            assert!(r.sums.0 >= 1.0 && r.sums.1.is_finite());
            // skipping the exponentials below a bound: the same sums, the
            // same weights above it, zeros below
            let mut again = row.clone();
            again.iter_mut().for_each(|v| *v += 3.5); // undo the shift
            let mut w2 = vec![1.0; n];
            // below SUM_FLOOR: a bound above it skips nothing more
            let bound = [-70.0, -300.0, -20.0][n % 3];
            let s = to_relative_skipping(&mut again, &mut w2, |map| {
                assert_eq!(map, n / 2);
                bound
            });
            assert_eq!(s.sums, r.sums, "n = {n}");
            for ((&l, &a), &b) in row.iter().zip(&w).zip(&w2) {
                let zero = l < bound.min(SUM_FLOOR);
                assert_eq!(b, if zero { 0.0 } else { a }, "ℓ = {l}");
            }
        }
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
        // one leader (2), then three tied (1 each): 1 ≥ α(1+2) for α = 0.3,
        // so all three are in; for α = 0.4 all three are out
        let lr: Vec<f64> = [1.0f64, 1.0, 1.0, 2.0]
            .iter()
            .map(|v| (v / 2.0).ln())
            .collect();
        let c = cuts(&lr, &[0.3, 0.4]);
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

    /// The binned cut equals a plain sort-and-walk of the definition, on
    /// random weights with many ties and on wide ranges.
    #[test]
    fn binned_cuts_match_the_definition() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let alphas = [1e-5, 1e-4, 1e-3, 1e-2, 0.1, 0.3, 1.0];
        for case in 0..300 {
            let n = rng.random_range(1..2000);
            let levels = rng.random_range(1..50);
            let spread = [0.5, 5.0, 20.0][case % 3];
            let vals: Vec<f64> = (0..levels).map(|_| -rng.random::<f64>() * spread).collect();
            let mut lr: Vec<f64> = (0..n).map(|_| vals[rng.random_range(0..levels)]).collect();
            let m = lr.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            lr.iter_mut().for_each(|v| *v -= m);
            let got = cuts(&lr, &alphas);
            // definition, directly
            for (a, &alpha) in alphas.iter().enumerate() {
                let p: Vec<f64> = lr.iter().map(|l| l.exp()).collect();
                let members: Vec<usize> = (0..n)
                    .filter(|&h| {
                        let ahead: f64 = p.iter().filter(|&&q| q > p[h]).sum();
                        p[h] >= alpha * (p[h] + ahead)
                    })
                    .collect();
                // rounding may differ only at exact-equality boundaries, which
                // random levels do not produce
                assert_eq!(got[a].size, members.len(), "case {case} alpha {alpha}");
                let min_member = members.iter().map(|&h| lr[h]).fold(f64::INFINITY, f64::min);
                assert_eq!(got[a].threshold, min_member, "case {case} alpha {alpha}");
            }
        }
    }
}
