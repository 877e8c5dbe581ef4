//! The Gaussian harm probability `P(N(μ, σ²) > θ) = ½·erfc((θ − μ)/(σ√2))`,
//! accurate deep into the tail (SPEC §5: guardrail thresholds such as 1e-3 are
//! compared with tiny probabilities, so `1 − cdf` is not good enough).
//!
//! `upper_tail` is the f64 function the CPU engine uses, on lanes so that a
//! table of them vectorises (a contextual audit evaluates one per hypothesis
//! and candidate). `erfc_f32` is the CPU twin of `erfc` in
//! `shaders/common.wgsl`: the same formula in the same precision, so GPU
//! results can be checked against it bit for bit in spirit.

use super::exp::exp_lanes;

/// `P(Z > z)` for a standard normal `Z`, in f64, within a few ulp of the
/// exact value down to the subnormal range (`upper_tail_lanes` on one lane:
/// the same bits as a table of them).
#[inline]
pub fn upper_tail(z: f64) -> f64 {
    upper_tail_lanes([z])[0]
}

/// `P(Z > z)` for `L` lanes at once, as straight-line arithmetic the
/// compiler vectorises (no branch, no lookup, only correctly rounded
/// operations: the same bits whatever the width).
///
/// With `x = |z|/√2`: `erfc(x) = e^{−x²} · g(t) / (1 + √π·x)`, where
/// `g = erfcx(x)·(1 + √π·x)` stays near 1 on all of `[0, ∞)` and is summed
/// as a Chebyshev series in `t = (x − 3)/(x + 3)` (`scripts/fit_erfc.py`;
/// truncated below 1e-18). `e^{−x²}` takes `x² = z²/2` as the exact pair
/// `s + e` (an FMA), so the tail keeps its relative accuracy where `x²` is
/// in the hundreds. For `z < 0`, `erfc(−x) = 2 − erfc(x)`.
#[inline(always)]
pub fn upper_tail_lanes<const L: usize>(z: [f64; L]) -> [f64; L] {
    let mut out = [0.0; L];
    for i in 0..L {
        // past |z| = 38.6 the tail is below the subnormal range: the clamp
        // keeps ∞ out of t without changing a result
        let za = z[i].abs().min(57.0);
        let x = za * std::f64::consts::FRAC_1_SQRT_2;
        // x² = z²/2 as the exact pair s + e, from z itself: the rounding of
        // x would cost 2x² ulp in the tail
        let zz = za * za;
        let (s, e) = (0.5 * zz, 0.5 * za.mul_add(za, -zz));
        // one division for both quotients (a vector division costs as much
        // as the whole series): t = (x − K)/(x + K) and 1/(1 + √π·x)
        let (v, u) = (x + ERFCX_SCALE, SQRT_PI.mul_add(x, 1.0));
        let r = 1.0 / (v * u);
        let t = (x - ERFCX_SCALE) * u * r;
        let t2 = t + t;
        let (mut b1, mut b2) = (0.0f64, 0.0f64);
        for &c in ERFCX_CHEBYSHEV[1..].iter().rev() {
            let b0 = t2.mul_add(b1, c - b2);
            b2 = b1;
            b1 = b0;
        }
        let g = t.mul_add(b1, ERFCX_CHEBYSHEV[0] - b2);
        let gauss = exp_lanes([-s])[0];
        let gauss = gauss.mul_add(-e, gauss);
        let tail = gauss * g * (v * r);
        let erfc = if z[i] >= 0.0 { tail } else { 2.0 - tail };
        // NaN in, NaN out (the clamp above would hide it)
        out[i] = if z[i].is_nan() { z[i] } else { 0.5 * erfc };
    }
    out
}

/// `K` of `t = (x − K)/(x + K)` in `upper_tail_lanes`.
const ERFCX_SCALE: f64 = 3.0;
const SQRT_PI: f64 = 1.772_453_850_905_516;

/// `g(t) = Σ c_k T_k(t)`, from `scripts/fit_erfc.py` (40-digit mpmath).
#[allow(clippy::excessive_precision)]
const ERFCX_CHEBYSHEV: [f64; 27] = [
    1.0811171617207899922,
    -4.686969163605134315e-2,
    -6.4857363693664320855e-2,
    4.3071743776818424404e-2,
    -1.572063597533307148e-2,
    3.7826275071170723717e-3,
    -5.4998143920940148761e-4,
    1.7027241788493142398e-5,
    1.096803693971128321e-5,
    -1.7706833451002085673e-6,
    -1.5004553631331412286e-7,
    6.6064237155563147999e-8,
    1.3992880505772144705e-9,
    -2.3575464725179040051e-9,
    -4.0778916509089123186e-12,
    9.0578838293606209136e-11,
    9.5608741419030890444e-13,
    -3.7505839892027070923e-12,
    -1.6834914399162489491e-13,
    1.5977466251235227441e-13,
    1.6733579968962596807e-14,
    -6.4678491841954613566e-15,
    -1.3097260946642813594e-15,
    2.1183814359046077222e-16,
    8.7290871020155377318e-17,
    -2.1422136890683630223e-18,
    -4.9341107075379833768e-18,
];

/// Complementary error function in f32: the Chebyshev fit of Numerical
/// Recipes (`erfcc`, fractional error < 1.2e-7 in exact arithmetic), evaluated
/// as `t·exp(poly − x²)` so the tail keeps its relative accuracy down to the
/// bottom of the f32 range (about 1e-37); below that it returns 0.
///
/// Keep in step with `erfc` in `shaders/common.wgsl`.
// the coefficients as published, digit for digit as common.wgsl has them
#[allow(clippy::excessive_precision)]
#[inline]
pub fn erfc_f32(x: f32) -> f32 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -1.265_512_2
        + t * (1.000_023_7
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    // exp(-z² + poly) = exp(-zh²) · exp(-(z-zh)(z+zh) + poly): splitting z at a
    // coarse zh keeps z² exact enough that the tail does not lose digits. zh
    // has 8 fractional bits, so for z < 16 (every result above the f32 range)
    // it has at most 12 significant bits and zh² is exact in f32.
    let zh = (z * 256.0).floor() / 256.0;
    let ans = t * (-zh * zh).exp() * (-(z - zh) * (z + zh) + poly).exp();
    if x >= 0.0 {
        ans
    } else {
        2.0 - ans
    }
}

/// `P(Z > z)` in f32, the CPU twin of `upper_tail` in `shaders/common.wgsl`.
#[inline]
pub fn upper_tail_f32(z: f32) -> f32 {
    let q = 0.5 * erfc_f32(z * std::f32::consts::FRAC_1_SQRT_2);
    // Below the f32 normal range the GPU may flush to zero; clamp here too so
    // that both backends report such probabilities as exactly 0.
    if q < f32::MIN_POSITIVE {
        0.0
    } else {
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f64_tail_matches_statrs_and_known_values() {
        // P(Z > 0) = 1/2, P(Z > 1.959963984540054) = 0.025
        assert_eq!(upper_tail(0.0), 0.5);
        assert!((upper_tail(1.959_963_984_540_054) - 0.025).abs() < 1e-15);
        // high-precision values (mpmath, 30 digits)
        for (z, want) in [
            (-1.97, 0.975_580_814_719_777_5),
            (5.0, 2.866_515_718_791_939e-7),
        ] {
            assert!(((upper_tail(z) - want) / want).abs() < 1e-14, "z={z}");
        }
        // Deep tail: P(Z > 10) = 7.619853024160527e-24 (Mills ratio tables)
        let q = upper_tail(10.0);
        assert!(((q - 7.619_853_024_160_527e-24) / q).abs() < 1e-12, "{q}");
        // mpmath at 40 digits: ncdf(-z), as printed
        #[allow(clippy::excessive_precision)]
        let deep = [
            (0.3, 0.382_088_577_811_047_36),
            (3.0, 1.349_898_031_630_094_5e-3),
            (12.5, 3.732_564_298_877_713_4e-36),
            (30.0, 4.906_713_927_148_187e-198),
            (37.5, 4.605_353_009_581_955e-308),
        ];
        for (z, want) in deep {
            let got = upper_tail(z);
            assert!(
                ((got - want) / want).abs() < 4e-15,
                "z={z} got={got} want={want}"
            );
        }
        for i in 0..200 {
            let z = -8.0 + 0.09 * i as f64;
            let want = 0.5 * statrs::function::erf::erfc(z / std::f64::consts::SQRT_2);
            let got = upper_tail(z);
            // statrs' erfc is itself good to ~1e-12 only: a cross-check
            assert!(
                ((got - want) / want).abs() < 1e-9,
                "z={z} got={got} want={want}"
            );
        }
    }

    /// Within 1e-15 relative of libm's erfc (itself < 1 ulp) from z = −40
    /// to where the tail leaves the normal range, at the edge of the
    /// subnormals, and exactly 0 beyond; lanes give the one-lane bits.
    #[test]
    fn f64_tail_is_within_a_few_ulp_of_libm_everywhere() {
        let mut worst: f64 = 0.0;
        let mut z = -40.0f64;
        while z < 38.5 {
            for z in [z, z + 1e-3 * std::f64::consts::PI] {
                let x = z * std::f64::consts::FRAC_1_SQRT_2;
                let want = 0.5 * libm::erfc(x);
                let got = upper_tail(z);
                if want >= f64::MIN_POSITIVE {
                    // libm is given x rounded: 2x² ulp of the tail's error
                    // are its argument's, not its own
                    let slack = 2.0 * x * x * f64::EPSILON;
                    worst = worst.max(((got - want) / want).abs() - slack);
                } else {
                    assert!((got - want).abs() <= 1e-318, "z={z} got={got} want={want}");
                }
            }
            z += 0.000_731;
        }
        assert!(worst < 1e-15, "worst relative error {worst}");
        assert_eq!(upper_tail(40.0), 0.0);
        assert_eq!(upper_tail(1e300), 0.0);
        assert_eq!(upper_tail(-1e300), 1.0);
        assert_eq!(upper_tail(f64::INFINITY), 0.0);
        assert!(upper_tail(f64::NAN).is_nan());
        let zs = [-3.5, -0.1, 0.0, 0.7, 2.5, 9.0, 30.0, 38.0];
        let lanes = upper_tail_lanes(zs);
        for (z, q) in zs.iter().zip(lanes) {
            assert_eq!(q.to_bits(), upper_tail(*z).to_bits(), "z={z}");
        }
    }

    #[test]
    fn f32_erfc_relative_error_below_1e4_down_to_1e30() {
        let mut worst: f64 = 0.0;
        let mut x = -4.0f64;
        while x < 9.0 {
            let want = libm::erfc(x);
            if want >= 1e-30 {
                let got = erfc_f32(x as f32) as f64;
                // compare with erfc at the f32-rounded argument: that is what the
                // f32 path was asked for
                let want = libm::erfc((x as f32) as f64);
                worst = worst.max(((got - want) / want).abs());
            }
            x += 0.001;
        }
        assert!(worst < 1e-4, "worst relative error {worst}");
        // and it is much better than needed: the fit's own 1.2e-7 plus f32
        // rounding (measured 3.7e-7). Splitting z² at zh is what keeps it
        // there: a zh that is not a multiple of 1/256 is mathematically the
        // same formula but loses the tail's digits (7e-6).
        assert!(worst < 1e-6, "worst relative error {worst}");
    }

    #[test]
    fn f32_tail_clamps_below_the_f32_range() {
        assert_eq!(upper_tail_f32(14.0), 0.0);
        assert!(upper_tail_f32(-40.0) == 1.0);
        let z = 11.0f32; // P ≈ 1.9e-28
        let want = upper_tail(z as f64);
        assert!(((upper_tail_f32(z) as f64 - want) / want).abs() < 1e-4);
    }
}
