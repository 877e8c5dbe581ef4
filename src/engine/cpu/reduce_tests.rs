//! Tests of `reduce.rs`: the scan against its scalar definition on every
//! vector path, and the helpers against theirs.

use super::*;

/// The lane scan equals a plain scalar loop, for every padded width and
/// for tables wider than 16 candidates, plausible-set bins included.
#[test]
fn vector_scan_equals_the_scalar_definition() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    for a_count in [1usize, 3, 4, 7, 10, 13, 16, 21, 40] {
        let h_count = 257;
        let stride = a_count.next_multiple_of(4);
        let ln_half = -std::f64::consts::LN_2;
        let log_rel: Vec<f64> = (0..h_count)
            .map(|_| [-800.0, -3.0, -0.7, ln_half, 0.0][rng.random_range(0..5)])
            .collect();
        // weights 1 and ½ with q ½ and 1: equal products, different q
        // (the tie rule: the larger q)
        let weight: Vec<f64> = log_rel
            .iter()
            .map(|&l| if l == ln_half { 0.5 } else { l.exp() })
            .collect();
        let mut q = vec![0.0; h_count * stride];
        for h in 0..h_count {
            for a in 0..a_count {
                // few distinct values: many exact ties in w·q; on odd
                // candidates the largest product ½ is reached both as
                // 1·½ and as ½·1 (the tie rule: the larger q)
                let half = log_rel[h] == ln_half;
                q[h * stride + a] = match (a % 2, half) {
                    (1, false) => [0.0, 0.25, 0.5][rng.random_range(0..3)],
                    (1, true) => [0.5, 1.0][rng.random_range(0..2)],
                    _ => [0.0, 0.25, 0.5, 1.0][rng.random_range(0..4)],
                };
            }
        }
        let table = HarmTable {
            n_candidates: a_count,
            stride,
            wx: vec![0.0; h_count * a_count],
            q,
        };
        let thresholds = [0.0, -1.0, -5.0];
        let full = FullView {
            log_rel: &log_rel,
            index: None,
            q: &|h, a| table.q(h, a),
        };
        let got = reduce_step(&table, &log_rel, &weight, &thresholds, 3, &full, None);
        for a in 0..a_count {
            let (mut s, mut b, mut g, mut bq) = (0.0, -1.0, 0usize, 0.0);
            let mut pm = [0.0f64; 3];
            for h in 0..h_count {
                if weight[h] == 0.0 {
                    continue;
                }
                let p = weight[h] * table.q(h, a);
                s += p;
                if p > b || (p == b && table.q(h, a) > bq) {
                    (b, g, bq) = (p, h, table.q(h, a));
                }
                for (i, &t) in thresholds.iter().enumerate() {
                    if log_rel[h] >= t {
                        pm[i] = pm[i].max(table.q(h, a));
                    }
                }
            }
            assert_eq!(
                (
                    got.weighted_harm[a],
                    got.cautious_hypothesis[a] as usize,
                    got.cautious_harm[a]
                ),
                (s, g, bq),
                "A={a_count} a={a}"
            );
            // the tie at ½ goes to q = 1 wherever ½·1 is there
            if a % 2 == 1 && (0..h_count).any(|h| weight[h] == 0.5 && table.q(h, a) == 1.0) {
                assert_eq!(got.cautious_harm[a], 1.0, "A={a_count} a={a}");
            }
            assert_eq!(
                &got.plausible_harm[a * 3..a * 3 + 3],
                &pm,
                "A={a_count} a={a}"
            );
        }
    }
}

/// Every vector path of the scan gives the scalar code's bits, ties
/// and skipped products included: a CPU without AVX-512 runs the
/// AVX2 or scalar scan, which the engine never reaches on this one.
#[test]
fn every_scan_path_gives_the_scalar_bits() {
    use rand::{Rng, SeedableRng};
    fn bits<const N: usize>(l: &Lanes<N>) -> Vec<u64> {
        let mut v: Vec<u64> = [l.sum, l.best, l.arg, l.best_q]
            .iter()
            .flatten()
            .map(|x| x.to_bits())
            .collect();
        v.extend(l.bins.iter().flatten().map(|x| x.to_bits()));
        v
    }
    fn check<const N: usize>(rng: &mut rand_chacha::ChaCha8Rng) -> usize {
        let h_count = 301;
        let ln_half = -std::f64::consts::LN_2;
        let log_rel: Vec<f64> = (0..h_count)
            .map(|_| [-40.0, -3.0, -0.9, ln_half, 0.0][rng.random_range(0..5)])
            .collect();
        // weights 1 and ½ with q ½ and 1: equal products, different q
        let weight: Vec<f64> = log_rel
            .iter()
            .map(|&l| if l == ln_half { 0.5 } else { l.exp() })
            .collect();
        // on odd lanes the largest product ½ is reached both as 1·½ and
        // as ½·1 (the tie rule: the larger q)
        let q: Vec<f64> = (0..h_count * N)
            .map(|i| match (i % N % 2, weight[i / N] == 0.5) {
                (1, false) => [0.0, 0.25, 0.5][rng.random_range(0..3)],
                (1, true) => [0.5, 1.0][rng.random_range(0..2)],
                _ => [0.0, 0.25, 0.5, 1.0, 0.3][rng.random_range(0..5)],
            })
            .collect();
        // some candidates leave light hypotheses' products out
        let need: Vec<f64> = (0..N).map(|k| [0.0, 0.1, 0.45][k % 3]).collect();
        let thresholds = [0.0, -1.0, -5.0];
        let input = ScanInput {
            weight: &weight,
            log_rel: &log_rel,
            thresholds: &thresholds,
            cutoff: 1e-12,
        };
        let want = bits(&scan_at::<N>(SimdLevel::Scalar, input, &q, &need));
        let mut levels = 0;
        for level in [SimdLevel::Avx2, SimdLevel::Avx512] {
            if level <= SimdLevel::detected() {
                let got = bits(&scan_at::<N>(level, input, &q, &need));
                assert!(got == want, "N={N}: {level:?} differs from the scalar scan");
                levels += 1;
            }
        }
        levels
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    for _ in 0..20 {
        let compared = check::<4>(&mut rng)
            + check::<8>(&mut rng)
            + check::<12>(&mut rng)
            + check::<16>(&mut rng);
        eprintln!("vector paths compared with the scalar scan: {compared}");
    }
}

/// `argmax_h ℓ_h + ln q_h` in log space, from its definition: hypotheses
/// of weight 0 and products of q = 0 never win, an exact tie goes to the
/// larger q and then to the lower index, and with every q = 0 the MAP
/// is returned with score −∞.
#[test]
fn log_space_argmax_follows_its_definition() {
    let ln2 = std::f64::consts::LN_2;
    // h1: −ln2 + ln ½ = −2 ln2; h3: −2 ln2 + ln 1: the same score, q 1 > ½;
    // h2 (weight 0) would win on q alone
    let log_rel = [-3.0, -ln2, f64::NEG_INFINITY, -2.0 * ln2, 0.0];
    let q = [0.5, 0.5, 1.0, 1.0, 0.0];
    assert_eq!(log_space_argmax(&log_rel, |h| q[h]), (3, -2.0 * ln2));
    // the same score and the same q: the lower index
    let log_rel = [-5.0, -ln2, -ln2, 0.0];
    let q = [1.0, 0.5, 0.5, 0.0];
    assert_eq!(log_space_argmax(&log_rel, |h| q[h]), (1, -2.0 * ln2));
    // a strictly better score wins over a larger q
    let log_rel = [0.0, -1.0];
    let q = [0.5, 0.9];
    let (h, s) = log_space_argmax(&log_rel, |h| q[h]);
    assert_eq!((h, s), (0, 0.5f64.ln()));
    // every q = 0: the MAP (ℓ = 0), which need not be the first
    let log_rel = [-1.0, -2.0, 0.0, -0.5];
    assert_eq!(log_space_argmax(&log_rel, |_| 0.0), (2, f64::NEG_INFINITY));
}

/// The cutoff below which a hypothesis changes no reduction, from its
/// definition: `min(q_min · 1e-17 / H, ½ e^{lowest})`, and 0 when some
/// candidate's q at the MAP is 0.
#[test]
fn negligible_weight_is_its_stated_bound() {
    let lowest = (1e-3f64).ln();
    let w = negligible_weight([0.5, 0.25, 0.75].into_iter(), 100, lowest);
    assert_eq!(w, 0.25 * 1e-17 / 100.0);
    // a high plausible floor binds instead
    let w = negligible_weight([0.5].into_iter(), 1, -60.0);
    assert_eq!(w, 0.5 * (-60.0f64).exp());
    assert!(w < 0.5 * 1e-17);
    assert_eq!(negligible_weight([0.5, 0.0].into_iter(), 8, lowest), 0.0);
    // per candidate
    assert_eq!(
        candidate_cutoffs([0.5, 0.0, 1.0].into_iter(), 10, lowest),
        vec![0.5 * 1e-17 / 10.0, 0.0, 1e-17 / 10.0]
    );
}

/// Where every product `w q` underflows, `ĥ` is the argmax of `ℓ + ln q`
/// (SPEC §3.2), not of the rounded products: here the two products round
/// to the same subnormal (a tie the linear rule would give to the larger
/// `q`), while in log space the MAP's is the larger.
#[test]
fn underflowing_products_take_the_log_space_argmax() {
    let m = f64::from_bits(1); // the smallest subnormal
    let (q_map, q_light, w_light) = (6.0 * m, 5.8 * m / 1e-10, 1e-10);
    assert_eq!(w_light * q_light, q_map, "the products tie once rounded");
    let log_rel = [0.0, w_light.ln()];
    assert!(
        log_rel[1] + q_light.ln() < q_map.ln(),
        "the MAP wins in log space"
    );
    let weight = [1.0, w_light];
    let table = HarmTable {
        n_candidates: 1,
        stride: 4,
        wx: vec![0.0; 8],
        q: vec![q_map, 0.0, 0.0, 0.0, q_light, 0.0, 0.0, 0.0],
    };
    let full = FullView {
        log_rel: &log_rel,
        index: None,
        q: &|h, a| table.q(h, a),
    };
    let got = reduce_step(&table, &log_rel, &weight, &[0.0], 1, &full, None);
    assert_eq!(got.cautious_hypothesis, vec![0]);
    assert_eq!(got.cautious_harm, vec![q_map]);
    assert_eq!(got.cautious_log_score, vec![q_map.ln()]);
}
