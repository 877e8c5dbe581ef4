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
use crate::engine::{Batch, Reductions, StepWeights};

/// Per-step results, gathered into `Reductions` afterwards.
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
        .map(|t| {
            let table = &tables[batch.steps[t].table as usize];
            let log_rel = weights.log_rel.row(t);
            let weight = weights.weight.row(t);
            let thresholds = weights.plausible_threshold.row(t);
            reduce_step(
                table,
                log_rel.as_slice().expect("row-major weights"),
                weight.as_slice().expect("row-major weights"),
                thresholds.as_slice().expect("row-major thresholds"),
                n_alpha,
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

/// `Σ w` and `Σ w·ℓ` (zero weights skipped: ℓ may be −∞ there).
fn weight_sums(weight: &[f64], log_rel: &[f64]) -> (f64, f64) {
    let (mut sum, mut sum_l) = (0.0, 0.0);
    for (&w, &l) in weight.iter().zip(log_rel) {
        if w > 0.0 {
            sum += w;
            sum_l += w * l;
        }
    }
    (sum, sum_l)
}

/// The running reductions of `N` candidate lanes. The argmax index is kept
/// as f64 so every lane operation is a same-width vector select.
#[derive(Clone, Copy)]
struct Lanes<const N: usize> {
    sum: [f64; N],
    best: [f64; N],
    arg: [f64; N],
    best_q: [f64; N],
}

#[inline(always)]
fn scan<const N: usize>(weight: &[f64], q: &[f64], lanes: &mut Lanes<N>) {
    // Local copies keep the lanes in registers across the loop.
    let Lanes {
        mut sum,
        mut best,
        mut arg,
        mut best_q,
    } = *lanes;
    for (h, (&w, row)) in weight.iter().zip(q.chunks_exact(N)).enumerate() {
        if w == 0.0 {
            continue; // contributes nothing to any sum, and cannot beat a normal product
        }
        let hf = h as f64;
        let row: &[f64; N] = row.try_into().expect("N lanes");
        for l in 0..N {
            let p = w * row[l];
            sum[l] += p;
            // non-short-circuit `|`/`&`: straight-line code the compiler vectorises
            let better = (p > best[l]) | ((p == best[l]) & (row[l] > best_q[l]));
            best[l] = if better { p } else { best[l] };
            arg[l] = if better { hf } else { arg[l] };
            best_q[l] = if better { row[l] } else { best_q[l] };
        }
    }
    *lanes = Lanes {
        sum,
        best,
        arg,
        best_q,
    };
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn scan_avx512<const N: usize>(weight: &[f64], q: &[f64], lanes: &mut Lanes<N>) {
    scan::<N>(weight, q, lanes)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn scan_avx2<const N: usize>(weight: &[f64], q: &[f64], lanes: &mut Lanes<N>) {
    scan::<N>(weight, q, lanes)
}

/// The same scan compiled for the widest vectors this CPU has.
fn scan_widest<const N: usize>(weight: &[f64], q: &[f64]) -> Lanes<N> {
    let mut lanes = Lanes {
        sum: [0.0; N],
        best: [-1.0; N],
        arg: [0.0; N],
        best_q: [0.0; N],
    };
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (checked just above).
            unsafe { scan_avx512::<N>(weight, q, &mut lanes) };
            return lanes;
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            unsafe { scan_avx2::<N>(weight, q, &mut lanes) };
            return lanes;
        }
    }
    scan::<N>(weight, q, &mut lanes);
    lanes
}

/// Runs the scan for a table's padded width; returns (sum, best, arg, best_q)
/// for the first `n` lanes.
fn scan_table(weight: &[f64], table: &HarmTable) -> [Vec<f64>; 4] {
    fn take<const N: usize>(l: Lanes<N>, n: usize) -> [Vec<f64>; 4] {
        [
            l.sum[..n].to_vec(),
            l.best[..n].to_vec(),
            l.arg[..n].to_vec(),
            l.best_q[..n].to_vec(),
        ]
    }
    let n = table.n_candidates;
    match table.stride {
        4 => take(scan_widest::<4>(weight, &table.q), n),
        8 => take(scan_widest::<8>(weight, &table.q), n),
        12 => take(scan_widest::<12>(weight, &table.q), n),
        16 => take(scan_widest::<16>(weight, &table.q), n),
        _ => {
            // Wide tables: 16 lanes at a time over a strided view.
            let mut out: [Vec<f64>; 4] = Default::default();
            let mut block = vec![0.0; weight.len() * 16];
            for first in (0..table.stride).step_by(16) {
                let width = (table.stride - first).min(16);
                for (h, dst) in block.chunks_exact_mut(16).enumerate() {
                    dst[..width].copy_from_slice(&table.q[h * table.stride + first..][..width]);
                    dst[width..].fill(0.0);
                }
                let l = scan_widest::<16>(weight, &block);
                let keep = n.saturating_sub(first).min(16);
                for (o, v) in out.iter_mut().zip([l.sum, l.best, l.arg, l.best_q]) {
                    o.extend_from_slice(&v[..keep]);
                }
            }
            out
        }
    }
}

fn reduce_step(
    table: &HarmTable,
    log_rel: &[f64],
    weight: &[f64],
    thresholds: &[f64],
    n_alpha: usize,
) -> StepReduction {
    let a_count = table.n_candidates;
    let (weight_sum, weighted_log_rel) = weight_sums(weight, log_rel);
    let [sum, best, arg, mut best_q] = scan_table(weight, table);
    let mut arg: Vec<u32> = arg.iter().map(|&h| h as u32).collect();

    let mut log_score = vec![f64::NEG_INFINITY; a_count];
    for a in 0..a_count {
        if best[a] >= f64::MIN_POSITIVE {
            let h = arg[a] as usize;
            log_score[a] = log_rel[h] + best_q[a].ln();
        } else {
            let (h, s) = log_space_argmax(table, log_rel, a);
            arg[a] = h as u32;
            best_q[a] = table.q(h, a);
            log_score[a] = s;
        }
    }

    let plausible = plausible_max(table, log_rel, thresholds, n_alpha);
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

/// `max_{h ∈ I_α} q_h` for every candidate and α, as `[a·n_alpha + i]`.
///
/// The sets are nested, so each hypothesis is binned once by the smallest set
/// it belongs to (one vector max of its row), and the per-α maxima are prefix
/// maxima over those bins: O(H·A), not O(H·A·n_alpha).
fn plausible_max(
    table: &HarmTable,
    log_rel: &[f64],
    thresholds: &[f64],
    n_alpha: usize,
) -> Vec<f64> {
    let stride = table.stride;
    // α indices from the smallest set (highest threshold) to the largest
    let mut order: Vec<usize> = (0..n_alpha).collect();
    order.sort_by(|&a, &b| thresholds[b].total_cmp(&thresholds[a]));
    let sorted: Vec<f64> = order.iter().map(|&i| thresholds[i]).collect();
    let lowest = sorted.last().copied().unwrap_or(f64::INFINITY);
    let mut bins = vec![0.0f64; n_alpha * stride];
    for (h, &l) in log_rel.iter().enumerate() {
        if l < lowest {
            continue;
        }
        let j = sorted
            .iter()
            .position(|&t| l >= t)
            .expect("l ≥ lowest threshold");
        let bin = &mut bins[j * stride..(j + 1) * stride];
        for (m, &q) in bin.iter_mut().zip(&table.q[h * stride..(h + 1) * stride]) {
            *m = if q > *m { q } else { *m };
        }
    }
    for j in 1..n_alpha {
        let (done, rest) = bins.split_at_mut(j * stride);
        for (m, &prev) in rest[..stride].iter_mut().zip(&done[(j - 1) * stride..]) {
            *m = if prev > *m { prev } else { *m };
        }
    }
    let mut out = vec![0.0; table.n_candidates * n_alpha];
    for (j, &i) in order.iter().enumerate() {
        for a in 0..table.n_candidates {
            out[a * n_alpha + i] = bins[j * stride + a];
        }
    }
    out
}

/// `argmax_h ℓ_h + ln q_h` for one candidate, ties → larger `q`, then lower
/// index. When every `q` is 0 the MAP hypothesis is returned with score −∞.
fn log_space_argmax(table: &HarmTable, log_rel: &[f64], a: usize) -> (usize, f64) {
    let (mut best, mut arg, mut best_q) = (f64::NEG_INFINITY, usize::MAX, 0.0);
    for (h, &l) in log_rel.iter().enumerate() {
        let q = table.q(h, a);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The lane scan equals a plain scalar loop, for every padded width and
    /// for tables wider than 16 candidates.
    #[test]
    fn vector_scan_equals_the_scalar_definition() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for a_count in [1usize, 3, 4, 7, 10, 13, 16, 21, 40] {
            let h_count = 257;
            let stride = a_count.next_multiple_of(4);
            let mut q = vec![0.0; h_count * stride];
            for h in 0..h_count {
                for a in 0..a_count {
                    // few distinct values: many exact ties in w·q
                    q[h * stride + a] = [0.0, 0.25, 0.5, 1.0][rng.random_range(0..4)];
                }
            }
            let table = HarmTable {
                n_candidates: a_count,
                stride,
                wx: vec![0.0; h_count * a_count],
                q,
            };
            let weight: Vec<f64> = (0..h_count)
                .map(|_| [0.0, 0.5, 1.0][rng.random_range(0..3)])
                .collect();
            let [sum, best, arg, best_q] = scan_table(&weight, &table);
            for a in 0..a_count {
                let (mut s, mut b, mut g, mut bq) = (0.0, -1.0, 0usize, 0.0);
                for h in 0..h_count {
                    if weight[h] == 0.0 {
                        continue;
                    }
                    let p = weight[h] * table.q(h, a);
                    s += p;
                    if p > b || (p == b && table.q(h, a) > bq) {
                        (b, g, bq) = (p, h, table.q(h, a));
                    }
                }
                assert_eq!(
                    (sum[a], best[a], arg[a] as usize, best_q[a]),
                    (s, b, g, bq),
                    "A={a_count} a={a}"
                );
            }
        }
    }
}
