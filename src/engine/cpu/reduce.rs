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
//!
//! Speed: one pass over hypotheses with one SIMD lane per candidate (rows are
//! padded to whole vectors), so each lane accumulates in hypothesis order
//! exactly as a scalar loop would: results are identical whatever the vector
//! width. Hypotheses whose weight underflowed to 0 are skipped.

use rayon::prelude::*;

use super::harm::HarmTable;
use crate::engine::{Batch, CandidateTable, Reductions, StepWeights};
use crate::model::simd::SimdLevel;
use crate::model::Model;
use crate::posterior;

/// Per-step results, gathered into `Reductions` afterwards.
pub(crate) struct StepReduction {
    pub(crate) weight_sum: f64,
    pub(crate) weighted_log_rel: f64,
    pub(crate) weighted_harm: Vec<f64>,
    pub(crate) cautious_hypothesis: Vec<u32>,
    pub(crate) cautious_harm: Vec<f64>,
    pub(crate) cautious_log_score: Vec<f64>,
    /// candidate-major: `[a · n_alpha + i]`
    pub(crate) plausible_harm: Vec<f64>,
}

pub fn reduce(
    batch: &Batch<'_>,
    tables: &[std::sync::Arc<HarmTable>],
    weights: &StepWeights,
    n_alpha: usize,
) -> Reductions {
    let per_step: Vec<StepReduction> = (0..batch.steps.len())
        .into_par_iter()
        .map(|t| {
            let row = |a| row_of(a, t);
            reduce_at(
                batch,
                tables,
                t,
                row(&weights.log_rel),
                row(&weights.weight),
                row(&weights.plausible_threshold),
                n_alpha,
                None,
            )
        })
        .collect();
    gather(batch, per_step, n_alpha)
}

fn row_of(a: &ndarray::Array2<f64>, t: usize) -> &[f64] {
    a.row(t).to_slice().expect("row-major weights")
}

/// The reductions of step `t`, from its log relative weights, weights and
/// plausible-set thresholds. `sums`: the row's `Σ w` and `Σ w·ℓ`
/// (`posterior::weight_sums`) where the caller has them already.
#[allow(clippy::too_many_arguments)]
pub(super) fn reduce_at(
    batch: &Batch<'_>,
    tables: &[std::sync::Arc<HarmTable>],
    t: usize,
    log_rel: &[f64],
    weight: &[f64],
    thresholds: &[f64],
    n_alpha: usize,
    sums: Option<(f64, f64)>,
) -> StepReduction {
    let table = batch.steps[t].table as usize;
    reduce_row(
        batch.model,
        &batch.tables[table],
        &tables[table],
        log_rel,
        weight,
        thresholds,
        n_alpha,
        sums,
    )
}

/// `reduce_at` for one step outside a batch: its candidates' features and
/// their harm table (tabulated, or deferred: `q` is then computed for the
/// hypotheses that matter only).
#[allow(clippy::too_many_arguments)]
pub(crate) fn reduce_row(
    model: &Model,
    features: &CandidateTable,
    table: &HarmTable,
    log_rel: &[f64],
    weight: &[f64],
    thresholds: &[f64],
    n_alpha: usize,
    sums: Option<(f64, f64)>,
) -> StepReduction {
    if !table.is_deferred() {
        let full = FullView {
            log_rel,
            index: None,
            q: &|h, a| table.q(h, a),
        };
        reduce_step(table, log_rel, weight, thresholds, n_alpha, &full, sums)
    } else {
        let sums = sums.unwrap_or_else(|| posterior::weight_sums(weight, log_rel));
        reduce_live(model, features, log_rel, weight, thresholds, n_alpha, sums)
    }
}

/// The per-step results, in the batch's flat layout.
pub(super) fn gather(
    batch: &Batch<'_>,
    per_step: Vec<StepReduction>,
    n_alpha: usize,
) -> Reductions {
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

/// What one step's scan reads.
#[derive(Clone, Copy)]
struct ScanInput<'a> {
    weight: &'a [f64],
    log_rel: &'a [f64],
    /// Plausible-set thresholds, highest (smallest set) first.
    thresholds: &'a [f64],
    /// Hypotheses lighter than this are skipped (see `negligible_weight`).
    cutoff: f64,
}

/// Per candidate lane, the weight below which a hypothesis's product is
/// left out (`q` read as 0; `candidate_cutoffs`); 0 on padding lanes.
type Needs<const N: usize> = [f64; N];

/// The running reductions of `N` candidate lanes. The argmax index is kept
/// as f64 so every lane operation is a same-width vector select. `bins[j]`
/// holds the max `q` over hypotheses whose smallest plausible set is the
/// `j`-th (the sets are nested, so prefix maxima over bins give every α).
struct Lanes<const N: usize> {
    sum: [f64; N],
    best: [f64; N],
    arg: [f64; N],
    best_q: [f64; N],
    bins: Vec<[f64; N]>,
}

#[inline(always)]
fn scan<const N: usize>(input: ScanInput<'_>, q: &[f64], need: &Needs<N>, lanes: &mut Lanes<N>) {
    // Local copies keep the lanes in registers across the loop.
    let (mut sum, mut best, mut arg, mut best_q) = (lanes.sum, lanes.best, lanes.arg, lanes.best_q);
    let need = *need;
    let lowest = input.thresholds.last().copied().unwrap_or(f64::INFINITY);
    let rows = q.chunks_exact(N);
    for (h, ((&w, &l), row)) in input.weight.iter().zip(input.log_rel).zip(rows).enumerate() {
        if w == 0.0 || w < input.cutoff {
            continue; // see `negligible_weight`
        }
        let hf = h as f64;
        let row: &[f64; N] = row.try_into().expect("N lanes");
        for k in 0..N {
            // a product too small to matter is left out, as the lazy path
            // (`reduce_live`) leaves out its erfc: the same bits either way
            let qk = if w >= need[k] { row[k] } else { 0.0 };
            let p = w * qk;
            sum[k] += p;
            // non-short-circuit `|`/`&`: straight-line code the compiler vectorises
            let better = (p > best[k]) | ((p == best[k]) & (qk > best_q[k]));
            best[k] = if better { p } else { best[k] };
            arg[k] = if better { hf } else { arg[k] };
            best_q[k] = if better { qk } else { best_q[k] };
        }
        if l >= lowest {
            let j = input.thresholds.iter().filter(|&&t| t > l).count();
            let bin = &mut lanes.bins[j];
            for k in 0..N {
                bin[k] = if row[k] > bin[k] { row[k] } else { bin[k] };
            }
        }
    }
    (lanes.sum, lanes.best, lanes.arg, lanes.best_q) = (sum, best, arg, best_q);
}

/// `scan` in explicit AVX-512 vectors: `V` registers of 8 lanes per running
/// reduction (`V·8 ≥ N`, the last one masked to 4 lanes when `N` is an odd
/// multiple of 4). Left to the compiler, lanes beyond a register's width went
/// to the stack and were read back after masked stores every hypothesis
/// (store-forwarding stalls: most of a step's time). The same comparisons
/// and operations lane by lane as `scan`, so the same bits.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn scan_avx512<const N: usize, const V: usize>(
    input: ScanInput<'_>,
    q: &[f64],
    need: &Needs<N>,
    lanes: &mut Lanes<N>,
) {
    use std::arch::x86_64::*;
    assert!(N.is_multiple_of(4) && V * 8 >= N && (V - 1) * 8 < N);
    // lanes of vector v that exist
    let mask = |v: usize| -> __mmask8 {
        if v + 1 == V && N % 8 == 4 {
            0x0F
        } else {
            0xFF
        }
    };
    let zero = _mm512_setzero_pd();
    let (mut sum, mut best, mut arg, mut best_q, mut needv) =
        ([zero; V], [zero; V], [zero; V], [zero; V], [zero; V]);
    for v in 0..V {
        let m = mask(v);
        // SAFETY: masked loads read only lanes `8v..N` of the N-lane arrays.
        sum[v] = _mm512_maskz_loadu_pd(m, lanes.sum.as_ptr().add(8 * v));
        best[v] = _mm512_maskz_loadu_pd(m, lanes.best.as_ptr().add(8 * v));
        arg[v] = _mm512_maskz_loadu_pd(m, lanes.arg.as_ptr().add(8 * v));
        best_q[v] = _mm512_maskz_loadu_pd(m, lanes.best_q.as_ptr().add(8 * v));
        needv[v] = _mm512_maskz_loadu_pd(m, need.as_ptr().add(8 * v));
    }
    let lowest = input.thresholds.last().copied().unwrap_or(f64::INFINITY);
    let rows = q.chunks_exact(N);
    for (h, ((&w, &l), row)) in input.weight.iter().zip(input.log_rel).zip(rows).enumerate() {
        if w == 0.0 || w < input.cutoff {
            continue; // see `negligible_weight`
        }
        let (wv, hv) = (_mm512_set1_pd(w), _mm512_set1_pd(h as f64));
        for v in 0..V {
            // SAFETY: as above, within the row's N lanes.
            let qv = _mm512_maskz_loadu_pd(mask(v), row.as_ptr().add(8 * v));
            // `w >= need` (false for NaN, as in `scan`)
            let keep = _mm512_cmp_pd_mask::<_CMP_GE_OQ>(wv, needv[v]);
            let qk = _mm512_maskz_mov_pd(keep, qv);
            let p = _mm512_mul_pd(wv, qk);
            sum[v] = _mm512_add_pd(sum[v], p);
            let better = _mm512_cmp_pd_mask::<_CMP_GT_OQ>(p, best[v])
                | (_mm512_cmp_pd_mask::<_CMP_EQ_OQ>(p, best[v])
                    & _mm512_cmp_pd_mask::<_CMP_GT_OQ>(qk, best_q[v]));
            best[v] = _mm512_mask_mov_pd(best[v], better, p);
            arg[v] = _mm512_mask_mov_pd(arg[v], better, hv);
            best_q[v] = _mm512_mask_mov_pd(best_q[v], better, qk);
        }
        if l >= lowest {
            let j = input.thresholds.iter().filter(|&&t| t > l).count();
            let bin = &mut lanes.bins[j];
            for k in 0..N {
                bin[k] = if row[k] > bin[k] { row[k] } else { bin[k] };
            }
        }
    }
    for v in 0..V {
        let m = mask(v);
        // SAFETY: masked stores write only lanes `8v..N`.
        _mm512_mask_storeu_pd(lanes.sum.as_mut_ptr().add(8 * v), m, sum[v]);
        _mm512_mask_storeu_pd(lanes.best.as_mut_ptr().add(8 * v), m, best[v]);
        _mm512_mask_storeu_pd(lanes.arg.as_mut_ptr().add(8 * v), m, arg[v]);
        _mm512_mask_storeu_pd(lanes.best_q.as_mut_ptr().add(8 * v), m, best_q[v]);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn scan_avx2<const N: usize>(
    input: ScanInput<'_>,
    q: &[f64],
    need: &Needs<N>,
    lanes: &mut Lanes<N>,
) {
    scan::<N>(input, q, need, lanes)
}

/// The same scan compiled for the widest vectors this CPU has (or
/// `GPUBOUND_SIMD` allows: `model::simd`).
fn scan_widest<const N: usize>(input: ScanInput<'_>, q: &[f64], need: &[f64]) -> Lanes<N> {
    scan_at::<N>(crate::model::simd::level(), input, q, need)
}

/// The scan compiled for `level`'s vectors: every level gives the same bits.
fn scan_at<const N: usize>(
    level: SimdLevel,
    input: ScanInput<'_>,
    q: &[f64],
    need: &[f64],
) -> Lanes<N> {
    assert!(level <= SimdLevel::detected(), "{level:?} on this CPU");
    let mut lane_need = [0.0; N];
    let width = need.len().min(N);
    lane_need[..width].copy_from_slice(&need[..width]);
    let mut lanes = Lanes {
        sum: [0.0; N],
        best: [-1.0; N],
        arg: [0.0; N],
        best_q: [0.0; N],
        bins: vec![[0.0; N]; input.thresholds.len()],
    };
    #[cfg(target_arch = "x86_64")]
    {
        if level >= SimdLevel::Avx512 {
            // SAFETY: the CPU supports AVX-512F (asserted above).
            unsafe {
                if N <= 8 {
                    scan_avx512::<N, 1>(input, q, &lane_need, &mut lanes)
                } else {
                    scan_avx512::<N, 2>(input, q, &lane_need, &mut lanes)
                }
            };
            return lanes;
        }
        if level >= SimdLevel::Avx2 {
            // SAFETY: the CPU supports AVX2 (asserted above).
            unsafe { scan_avx2::<N>(input, q, &lane_need, &mut lanes) };
            return lanes;
        }
    }
    scan::<N>(input, q, &lane_need, &mut lanes);
    lanes
}

/// A step's scan results for the table's real candidates: sums, best
/// products, argmax, `q` at the argmax, and per candidate the plausible-set
/// bins (`bins[a · n_bins + j]`, one allocation for every candidate).
#[derive(Default)]
struct Scanned {
    sum: Vec<f64>,
    best: Vec<f64>,
    arg: Vec<f64>,
    best_q: Vec<f64>,
    bins: Vec<f64>,
}

impl Scanned {
    fn extend<const N: usize>(&mut self, l: Lanes<N>, keep: usize) {
        self.sum.extend_from_slice(&l.sum[..keep]);
        self.best.extend_from_slice(&l.best[..keep]);
        self.arg.extend_from_slice(&l.arg[..keep]);
        self.best_q.extend_from_slice(&l.best_q[..keep]);
        for k in 0..keep {
            self.bins.extend(l.bins.iter().map(|b| b[k]));
        }
    }
}

/// Runs the scan for a table's padded width.
/// `need`: per candidate (`candidate_cutoffs`).
fn scan_table(input: ScanInput<'_>, table: &HarmTable, need: &[f64]) -> Scanned {
    let n = table.n_candidates;
    let mut out = Scanned::default();
    match table.stride {
        4 => out.extend(scan_widest::<4>(input, &table.q, need), n),
        8 => out.extend(scan_widest::<8>(input, &table.q, need), n),
        12 => out.extend(scan_widest::<12>(input, &table.q, need), n),
        16 => out.extend(scan_widest::<16>(input, &table.q, need), n),
        _ => {
            // Wide tables: 16 lanes at a time over a copied block.
            let mut block = vec![0.0; input.weight.len() * 16];
            for first in (0..table.stride).step_by(16) {
                let width = (table.stride - first).min(16);
                for (h, dst) in block.chunks_exact_mut(16).enumerate() {
                    dst[..width].copy_from_slice(&table.q[h * table.stride + first..][..width]);
                    dst[width..].fill(0.0);
                }
                out.extend(
                    scan_widest::<16>(input, &block, need.get(first..).unwrap_or(&[])),
                    n.saturating_sub(first).min(16),
                );
            }
        }
    }
    out
}

/// A relative weight below which a hypothesis changes no reduction, given
/// `q` of the MAP hypothesis (weight 1) for every candidate:
///
/// * every sum `Σ w q ≥ q_MAP(a)`, and all such hypotheses together add less
///   than `H · cutoff ≤ 1e-17 · q_MAP(a)`: below the sum's rounding;
/// * their products `w q < cutoff ≤ q_MAP(a)` cannot be the argmax;
/// * plausible-set members weigh at least `e^{lowest threshold}`.
///
/// When some `q_MAP` is 0 the cutoff is 0: only zero weights are skipped.
pub(crate) fn negligible_weight(
    q_map: impl Iterator<Item = f64>,
    h_count: usize,
    lowest: f64,
) -> f64 {
    let q_min = q_map.fold(1.0f64, f64::min);
    (q_min * 1e-17 / h_count as f64).min(0.5 * lowest.exp())
}

/// Per candidate, the weight below which its own product `w q` changes no
/// reduction: `negligible_weight` for that candidate alone. A hypothesis
/// lighter than that (and so in no plausible set) has its product left out
/// by the scan, and its erfc is not computed by `reduce_live`: both harm
/// paths leave out exactly the same products.
fn candidate_cutoffs(q_map: impl Iterator<Item = f64>, h_count: usize, lowest: f64) -> Vec<f64> {
    q_map
        .map(|q| negligible_weight(std::iter::once(q), h_count, lowest))
        .collect()
}

/// The log relative weight below which a step's scan passes over every
/// hypothesis, known before its plausible sets are: `negligible_weight` at
/// the plausible floor (no set's threshold is lower), less a margin so that
/// no `e^ℓ` below it rounds up to the cutoff. `q` of the MAP hypothesis
/// comes from the harm table, or for a table without tabulated `q` is
/// computed as `reduce_live` computes it (a few `erfc` against an
/// exponential per hypothesis).
pub(crate) fn negligible_log_weight(
    model: &Model,
    features: &CandidateTable,
    table: &HarmTable,
    map: usize,
    floor: f64,
) -> f64 {
    let h_count = model.hypotheses.len();
    let cutoff = if table.is_deferred() {
        let w = model.hypotheses.params(map);
        let observation = model.observation;
        let q_map =
            (0..features.n_candidates).map(|a| observation.harm_at(&w, features.candidate(a)));
        negligible_weight(q_map, h_count, floor)
    } else {
        negligible_weight(
            (0..table.n_candidates).map(|a| table.q(map, a)),
            h_count,
            floor,
        )
    };
    cutoff.ln() - 1e-6
}

/// The whole step, for the rare log-space fallback and to map a compacted
/// scan's indices back to hypotheses.
struct FullView<'a> {
    log_rel: &'a [f64],
    /// Hypothesis of each scanned row, when the scan ran on live ones only.
    index: Option<&'a [u32]>,
    /// `q(h, a)` for any hypothesis.
    q: &'a dyn Fn(usize, usize) -> f64,
}

/// For a table without tabulated `q`: evaluates `q` only for hypotheses with
/// a weight or in a plausible set, and scans those.
fn reduce_live(
    model: &Model,
    features: &CandidateTable,
    log_rel: &[f64],
    weight: &[f64],
    thresholds: &[f64],
    n_alpha: usize,
    sums: (f64, f64),
) -> StepReduction {
    let (a_count, d) = (features.n_candidates, features.dim());
    let stride = a_count.next_multiple_of(4);
    let obs = model.observation;
    // q of every candidate under hypothesis h, from its parameters
    let q_row = |h: usize, w: &mut [f64], out: &mut [f64]| {
        model.hypotheses.params_into(h, w);
        for (a, o) in out.iter_mut().enumerate().take(a_count) {
            *o = obs.harm_at(w, features.candidate(a));
        }
    };
    let mut w = vec![0.0; d];
    let lowest = thresholds.iter().copied().fold(f64::INFINITY, f64::min);
    let map = log_rel.iter().position(|&l| l == 0.0).unwrap_or(0);
    let mut q_map = vec![0.0; a_count];
    q_row(map, &mut w, &mut q_map);
    let cutoff = negligible_weight(q_map.iter().copied(), weight.len(), lowest);
    let live: Vec<u32> = (0..weight.len())
        .filter(|&h| (weight[h] > 0.0 && weight[h] >= cutoff) || log_rel[h] >= lowest)
        .map(|h| h as u32)
        .collect();
    LIVE_SCRATCH.with_borrow_mut(|scratch| {
        // a live hypothesis lighter than a candidate's cutoff (and in no
        // plausible set) keeps its q: the scan leaves its product out
        // (`candidate_cutoffs` of the same MAP, in `reduce_step`)
        let q = live_harm(model, features, &live, scratch);
        let compact = HarmTable {
            n_candidates: a_count,
            stride,
            wx: Vec::new(),
            q,
        };
        let live_log_rel: Vec<f64> = live.iter().map(|&h| log_rel[h as usize]).collect();
        let live_weight: Vec<f64> = live.iter().map(|&h| weight[h as usize]).collect();
        let q_any = |h: usize, a: usize| {
            let mut w = vec![0.0; d];
            let mut out = vec![0.0; a_count];
            q_row(h, &mut w, &mut out);
            out[a]
        };
        let full = FullView {
            log_rel,
            index: Some(&live),
            q: &q_any,
        };
        let reduced = reduce_step(
            &compact,
            &live_log_rel,
            &live_weight,
            thresholds,
            n_alpha,
            &full,
            Some(sums),
        );
        scratch.table = compact.q; // kept for the thread's next step
        reduced
    })
}

/// Buffers of `reduce_live`, kept per thread: fresh ones at every step of
/// a contextual audit cost more in page faults than the step's arithmetic.
#[derive(Default)]
struct LiveScratch {
    column: Vec<f64>,
    wx: Vec<f64>,
    q: Vec<f64>,
    /// the compacted harm table (`live × stride`)
    table: Vec<f64>,
}

thread_local! {
    static LIVE_SCRATCH: std::cell::RefCell<LiveScratch> = Default::default();
}

/// `q` of every live hypothesis and candidate, `live × stride` (padding
/// lanes 0): `w·x` gathered first, then every `q` at once with the
/// vectorised `harm_into`, the same bits as `harm_at` one at a time.
fn live_harm(
    model: &Model,
    features: &CandidateTable,
    live: &[u32],
    s: &mut LiveScratch,
) -> Vec<f64> {
    let (a_count, n) = (features.n_candidates, live.len());
    let stride = a_count.next_multiple_of(4);
    let h_count = model.hypotheses.len();
    let mut q = std::mem::take(&mut s.table);
    q.clear();
    q.resize(n * stride, 0.0);
    let grid = matches!(model.hypotheses, crate::model::HypothesisSpace::Grid { .. });
    if grid && n * 4 >= h_count {
        // a wide posterior on a grid: every hypothesis's row of w·x at once
        // (O(H·A), not O(H·A·d)), the live rows gathered
        s.column.resize(h_count * stride, 0.0);
        model
            .hypotheses
            .dot_all_rows(&features.features, a_count, stride, &mut s.column);
        s.wx.clear();
        for &h in live {
            s.wx.extend_from_slice(&s.column[h as usize * stride..][..a_count]);
        }
    } else {
        let mut w = vec![0.0; features.dim()];
        s.wx.clear();
        for &h in live {
            model.hypotheses.params_into(h as usize, &mut w);
            s.wx.extend((0..a_count).map(|a| {
                w.iter()
                    .zip(features.candidate(a))
                    .fold(0.0, |s, (w, x)| s + w * x)
            }));
        }
    }
    // q of the real candidates only (no erfc on padding), then padded
    s.q.resize(s.wx.len(), 0.0);
    super::harm::harm_of(model, features, &s.wx, &mut s.q);
    for (row, q) in q.chunks_exact_mut(stride).zip(s.q.chunks_exact(a_count)) {
        row[..a_count].copy_from_slice(q);
    }
    q
}

/// `sums`: `Σ w` and `Σ w·ℓ` over the step's full row where the caller has
/// them (a compacted scan must be given them: summed over the live rows only,
/// in another order, they would differ in the last bits).
fn reduce_step(
    table: &HarmTable,
    log_rel: &[f64],
    weight: &[f64],
    thresholds: &[f64],
    n_alpha: usize,
    full: &FullView<'_>,
    sums: Option<(f64, f64)>,
) -> StepReduction {
    let a_count = table.n_candidates;
    let (weight_sum, weighted_log_rel) =
        sums.unwrap_or_else(|| posterior::weight_sums(weight, log_rel));
    // α indices from the smallest set (highest threshold) to the largest
    let mut order: Vec<usize> = (0..n_alpha).collect();
    order.sort_by(|&a, &b| thresholds[b].total_cmp(&thresholds[a]));
    let sorted: Vec<f64> = order.iter().map(|&i| thresholds[i]).collect();
    let lowest = sorted.last().copied().unwrap_or(0.0);
    // The MAP (ℓ = 0) of the rows scanned; a compacted scan always keeps it.
    let need = match log_rel.iter().position(|&l| l == 0.0) {
        Some(map) => candidate_cutoffs(
            (0..a_count).map(|a| table.q(map, a)),
            full.log_rel.len(),
            lowest,
        ),
        None => vec![0.0; a_count],
    };
    // = `negligible_weight` of every candidate's q at the MAP
    let cutoff = need.iter().copied().fold(f64::INFINITY, f64::min);
    let cutoff = if cutoff.is_finite() { cutoff } else { 0.0 };
    let scanned = scan_table(
        ScanInput {
            weight,
            log_rel,
            thresholds: &sorted,
            cutoff,
        },
        table,
        &need,
    );
    let mut arg: Vec<u32> = scanned
        .arg
        .iter()
        .map(|&i| full.index.map_or(i as u32, |ix| ix[i as usize]))
        .collect();
    let mut best_q = scanned.best_q;

    let mut log_score = vec![f64::NEG_INFINITY; a_count];
    for a in 0..a_count {
        if scanned.best[a] >= f64::MIN_POSITIVE {
            let h = arg[a] as usize;
            log_score[a] = full.log_rel[h] + best_q[a].ln();
        } else {
            let (h, s) = log_space_argmax(full.log_rel, |h| (full.q)(h, a));
            arg[a] = h as u32;
            best_q[a] = (full.q)(h, a);
            log_score[a] = s;
        }
    }

    // max over I_α: prefix maxima over the nested bins
    let mut plausible = vec![0.0f64; a_count * n_alpha];
    for (a, bins) in scanned.bins.chunks_exact(sorted.len().max(1)).enumerate() {
        let mut m = 0.0f64;
        for (j, &i) in order.iter().enumerate() {
            m = m.max(bins[j]);
            plausible[a * n_alpha + i] = m;
        }
    }

    StepReduction {
        weight_sum,
        weighted_log_rel,
        weighted_harm: scanned.sum,
        cautious_hypothesis: arg,
        cautious_harm: best_q,
        cautious_log_score: log_score,
        plausible_harm: plausible,
    }
}

/// `argmax_h ℓ_h + ln q_h` for one candidate, ties → larger `q`, then lower
/// index. When every `q` is 0 the MAP hypothesis is returned with score −∞.
fn log_space_argmax(log_rel: &[f64], q_of: impl Fn(usize) -> f64) -> (usize, f64) {
    let (mut best, mut arg, mut best_q) = (f64::NEG_INFINITY, usize::MAX, 0.0);
    for (h, &l) in log_rel.iter().enumerate() {
        if l == f64::NEG_INFINITY {
            continue;
        }
        let q = q_of(h);
        if q == 0.0 {
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

#[cfg(test)]
#[path = "reduce_tests.rs"]
mod tests;
