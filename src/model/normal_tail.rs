//! The Gaussian harm probability `P(N(μ, σ²) > θ) = ½·erfc((θ − μ)/(σ√2))`,
//! accurate deep into the tail (SPEC §5: guardrail thresholds such as 1e-3 are
//! compared with tiny probabilities, so `1 − cdf` is not good enough).
//!
//! `upper_tail` is the f64 reference used by the CPU engine. `erfc_f32` is the
//! CPU twin of `erfc` in `shaders/common.wgsl`: the same formula in the same
//! precision, so GPU results can be checked against it bit for bit in spirit.

/// `P(Z > z)` for a standard normal `Z`, in f64 (libm's erfc, < 1 ulp).
#[inline]
pub fn upper_tail(z: f64) -> f64 {
    0.5 * libm::erfc(z * std::f64::consts::FRAC_1_SQRT_2)
}

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
        // and it is not only good on average: it is much better than needed
        assert!(worst < 1e-5, "worst relative error {worst}");
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
