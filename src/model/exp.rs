//! `e^x` on lanes of f64, for the weights of a posterior and the Gaussian
//! tail: the same operations in every lane, so a value's bits do not depend
//! on the vector width or on where it sits in a row.

/// `e^x` for `L` lanes with `x ≤ 0` (−∞ included), within 2 ulp of libm,
/// written as straight-line arithmetic that the compiler vectorises: at
/// H = 1024 a quarter of the CPU audit was the `wide` crate's exp, which
/// this runs in about half the time.
///
/// `x = k ln 2 + r` with `|r| ≤ ln 2 / 2`, `e^r` by its Taylor series to
/// degree 13 (truncation below 1e-17), and `2^k` applied in two halves so
/// results down to the subnormal range need no special case.
#[inline(always)]
pub(crate) fn exp_lanes<const L: usize>(x: [f64; L]) -> [f64; L] {
    const SHIFTER: f64 = EXP_SHIFTER;
    let mut out = [0.0; L];
    for i in 0..L {
        // below −800 every result is 0; the clamp keeps −∞ out of the integer part
        let x = x[i].max(-800.0);
        let t = x.mul_add(std::f64::consts::LOG2_E, SHIFTER);
        let k = t - SHIFTER;
        let r = (-k).mul_add(LN2_HI, x);
        let r = (-k).mul_add(LN2_LO, r);
        let mut p: f64 = 1.0 / 6_227_020_800.0; // 1/13!
        for c in TAYLOR {
            p = p.mul_add(r, c);
        }
        // k as an integer: the low bits of t
        let ki = (t.to_bits() as i64).wrapping_sub(SHIFTER.to_bits() as i64);
        let k1 = ki >> 1;
        let k2 = ki - k1;
        let s1 = f64::from_bits(((k1 + 1023) as u64) << 52);
        let s2 = f64::from_bits(((k2 + 1023) as u64) << 52);
        out[i] = p * s1 * s2;
    }
    out
}

/// 1.5 · 2^52: adding it rounds to an integer.
const EXP_SHIFTER: f64 = 6755399441055744.0;
/// ln 2 split so that k · LN2_HI is exact for |k| < 2^11.
const LN2_HI: f64 = 0.693_147_180_559_890_3;
const LN2_LO: f64 = 5.497_923_018_708_371e-14;

/// `1/12!, 1/11!, …, 1/1!, 1/0!`: Horner coefficients after `1/13!`.
const TAYLOR: [f64; 13] = [
    1.0 / 479_001_600.0,
    1.0 / 39_916_800.0,
    1.0 / 3_628_800.0,
    1.0 / 362_880.0,
    1.0 / 40_320.0,
    1.0 / 5_040.0,
    1.0 / 720.0,
    1.0 / 120.0,
    1.0 / 24.0,
    1.0 / 6.0,
    0.5,
    1.0,
    1.0,
];

/// `exp_lanes` on eight lanes: the same operations, so the same bits.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(crate) fn exp_avx512(x: std::arch::x86_64::__m512d) -> std::arch::x86_64::__m512d {
    use std::arch::x86_64::*;
    let set = _mm512_set1_pd;
    // `f64::max`: NaN gives the other operand, as `max_pd` does for its first
    let x = _mm512_max_pd(x, set(-800.0));
    let t = _mm512_fmadd_pd(x, set(std::f64::consts::LOG2_E), set(EXP_SHIFTER));
    let k = _mm512_sub_pd(t, set(EXP_SHIFTER));
    let r = _mm512_fnmadd_pd(k, set(LN2_HI), x);
    let r = _mm512_fnmadd_pd(k, set(LN2_LO), r);
    let mut p = set(1.0 / 6_227_020_800.0);
    for c in TAYLOR {
        p = _mm512_fmadd_pd(p, r, set(c));
    }
    let ki = _mm512_sub_epi64(
        _mm512_castpd_si512(t),
        _mm512_set1_epi64(EXP_SHIFTER.to_bits() as i64),
    );
    let k1 = _mm512_srai_epi64::<1>(ki);
    let k2 = _mm512_sub_epi64(ki, k1);
    let bias = _mm512_set1_epi64(1023);
    let s1 = _mm512_castsi512_pd(_mm512_slli_epi64::<52>(_mm512_add_epi64(k1, bias)));
    let s2 = _mm512_castsi512_pd(_mm512_slli_epi64::<52>(_mm512_add_epi64(k2, bias)));
    _mm512_mul_pd(_mm512_mul_pd(p, s1), s2)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lane exp is within 2 ulp of libm's over the range weights live
    /// in, exactly 1 at 0, and 0 where libm's is 0 or at −∞.
    #[test]
    fn lane_exp_matches_libm() {
        let ulps = |a: f64, b: f64| (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs();
        let mut x = 0.0f64;
        while x > -760.0 {
            let xs = [x, x * 0.999_999_7, x - 0.123_456_789, x * 0.5];
            let got = exp_lanes(xs);
            for (g, v) in got.iter().zip(xs) {
                let want = v.exp();
                assert!(
                    ulps(*g, want) <= 1 || (want < 1e-300 && (g - want).abs() < 1e-320),
                    "exp({v}) = {g}, libm {want}"
                );
            }
            x -= 0.013_7;
        }
        assert_eq!(
            exp_lanes([0.0, f64::NEG_INFINITY, -746.0, -1e308]),
            [1.0, 0.0, 0.0, 0.0]
        );
    }
}
