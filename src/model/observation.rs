//! Observation models `p(y | x, w)` and harm models `q(x, w) = P(harm | x, w)`
//! (SPEC §1). Both depend on the hypothesis only through `w·x`, which is why
//! the engines compute `w·x` once per (hypothesis, candidate) and tabulate.

use super::normal_tail;

/// ½·ln(2π)
const HALF_LN_TWO_PI: f64 = 0.918_938_533_204_672_8;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ObservationModel {
    /// `y ~ N(w·x, σ²)`; harm is the event `y > θ` (the paper's exploding bandit).
    Gaussian { sigma: f64, harm_threshold: f64 },
    /// `y ∈ {0, 1}` is the harm indicator itself, `P(y = 1) = sigmoid(w·x)`.
    Bernoulli,
}

impl ObservationModel {
    pub fn name(&self) -> &'static str {
        match self {
            ObservationModel::Gaussian { .. } => "gaussian",
            ObservationModel::Bernoulli => "bernoulli",
        }
    }

    /// Checks the parameters (σ > 0, finite θ).
    pub fn validate(&self) -> Result<(), String> {
        match *self {
            ObservationModel::Gaussian {
                sigma,
                harm_threshold,
            } => {
                if !(sigma.is_finite() && sigma > 0.0) {
                    return Err(format!(
                        "sigma must be a finite number > 0, got {}",
                        super::show_number(sigma)
                    ));
                }
                if !harm_threshold.is_finite() {
                    return Err(format!(
                        "harm_threshold must be finite, got {}",
                        super::show_number(harm_threshold)
                    ));
                }
                Ok(())
            }
            ObservationModel::Bernoulli => Ok(()),
        }
    }

    /// Checks that an observed outcome is possible under this model.
    pub fn validate_outcome(&self, y: f64) -> Result<(), String> {
        match self {
            ObservationModel::Gaussian { .. } if !y.is_finite() => {
                Err(format!("outcome must be a finite number, got {y}"))
            }
            ObservationModel::Bernoulli if y != 0.0 && y != 1.0 => Err(format!(
                "a bernoulli outcome is the harm indicator, 0 or 1, got {y}"
            )),
            _ => Ok(()),
        }
    }

    /// `q = P(harm | w·x)` in f64, accurate in the tail.
    #[inline]
    pub fn harm(&self, wx: f64) -> f64 {
        match *self {
            ObservationModel::Gaussian {
                sigma,
                harm_threshold,
            } => normal_tail::upper_tail((harm_threshold - wx) / sigma),
            ObservationModel::Bernoulli => sigmoid(wx),
        }
    }

    /// `harm` of every `w·x` in `wx`, into `out`: the same bits as one at a
    /// time, eight lanes wide where the CPU has AVX-512 (a contextual audit
    /// needs one per live hypothesis and candidate at every step).
    pub fn harm_into(&self, wx: &[f64], out: &mut [f64]) {
        assert_eq!(wx.len(), out.len(), "one q per w·x");
        match *self {
            ObservationModel::Gaussian {
                sigma,
                harm_threshold,
            } => {
                #[cfg(target_arch = "x86_64")]
                if super::simd::level() >= super::simd::SimdLevel::Avx512 {
                    // SAFETY: the CPU supports AVX-512F (`level` never exceeds it).
                    unsafe { gaussian_harm_avx512(sigma, harm_threshold, wx, out) };
                    return;
                }
                gaussian_harm_lanes::<4>(sigma, harm_threshold, wx, out)
            }
            ObservationModel::Bernoulli => {
                for (o, &v) in out.iter_mut().zip(wx) {
                    *o = sigmoid(v);
                }
            }
        }
    }

    /// `q` of parameters `w` at features `x`, with `w·x` added in order:
    /// the one-off evaluations (a MAP hypothesis, a live hypothesis of a
    /// table without tabulated `q`) agree to the bit.
    #[inline]
    pub fn harm_at(&self, w: &[f64], x: &[f64]) -> f64 {
        self.harm(w.iter().zip(x).fold(0.0, |s, (w, x)| s + w * x))
    }

    /// `ln p(y | w·x)`, including the constants (so log posteriors match the
    /// reference code's, not only up to a shift).
    #[inline]
    pub fn log_likelihood(&self, y: f64, wx: f64) -> f64 {
        match *self {
            ObservationModel::Gaussian { sigma, .. } => {
                let r = (y - wx) / sigma;
                -0.5 * r * r - sigma.ln() - HALF_LN_TWO_PI
            }
            ObservationModel::Bernoulli => {
                if y == 1.0 {
                    log_sigmoid(wx)
                } else {
                    log_sigmoid(-wx)
                }
            }
        }
    }

    /// f32 twin of `harm` in `shaders/common.wgsl`, for an f32 `w·x`.
    #[inline]
    pub fn harm_f32(&self, wx: f32) -> f32 {
        self.harm_f32_split(wx, 0.0)
    }

    /// f32 twin of `harm` in `shaders/common.wgsl`: `w·x = wx_hi + wx_lo`
    /// (double-f32). Gaussian: `θ − w·x` is formed in double-f32 (θ split
    /// into hi + lo) and rounded once, then divided by σ in f32; bernoulli:
    /// `sigmoid(wx_hi + wx_lo)` in f32. Results below the f32 normal range are 0.
    #[inline]
    pub fn harm_f32_split(&self, wx_hi: f32, wx_lo: f32) -> f32 {
        match *self {
            ObservationModel::Gaussian {
                sigma,
                harm_threshold,
            } => {
                let th = harm_threshold as f32;
                let tl = (harm_threshold - th as f64) as f32;
                // exact in f64: every term is an f32
                let d = ((th as f64 - wx_hi as f64) + (tl as f64 - wx_lo as f64)) as f32;
                normal_tail::upper_tail_f32(d / sigma as f32)
            }
            ObservationModel::Bernoulli => {
                let wx = wx_hi + wx_lo;
                let q = if wx >= 0.0 {
                    1.0 / (1.0 + (-wx).exp())
                } else {
                    let e = wx.exp();
                    e / (1.0 + e)
                };
                if q < f32::MIN_POSITIVE {
                    0.0
                } else {
                    q
                }
            }
        }
    }
}

/// `ObservationModel::harm` of the Gaussian model for a slice, `L` lanes
/// at a time (the same operations as one at a time, so the same bits).
#[inline(always)]
fn gaussian_harm_lanes<const L: usize>(sigma: f64, threshold: f64, wx: &[f64], out: &mut [f64]) {
    let mut z = [0.0; L];
    let mut chunks = wx.chunks_exact(L);
    let mut outs = out.chunks_exact_mut(L);
    for (c, o) in (&mut chunks).zip(&mut outs) {
        for (z, &v) in z.iter_mut().zip(c) {
            *z = (threshold - v) / sigma;
        }
        o.copy_from_slice(&normal_tail::upper_tail_lanes(z));
    }
    let (rest, out) = (chunks.remainder(), outs.into_remainder());
    z.fill(0.0);
    for (z, &v) in z.iter_mut().zip(rest) {
        *z = (threshold - v) / sigma;
    }
    let q = normal_tail::upper_tail_lanes(z);
    out.copy_from_slice(&q[..rest.len()]);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn gaussian_harm_avx512(sigma: f64, threshold: f64, wx: &[f64], out: &mut [f64]) {
    gaussian_harm_lanes::<8>(sigma, threshold, wx, out)
}

/// `1/(1+e^{-x})` without overflow, accurate for very negative `x`.
#[inline]
pub fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// `ln sigmoid(x) = −ln(1 + e^{−x})`, stable for both signs.
#[inline]
pub fn log_sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        -(-x).exp().ln_1p()
    } else {
        x - x.exp().ln_1p()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaussian_log_likelihood_is_the_normal_log_density() {
        let m = ObservationModel::Gaussian {
            sigma: 0.5,
            harm_threshold: 4.0,
        };
        let want = statrs::distribution::Continuous::ln_pdf(
            &statrs::distribution::Normal::new(3.0, 0.5).unwrap(),
            2.2,
        );
        assert!((m.log_likelihood(2.2, 3.0) - want).abs() < 1e-14);
    }

    #[test]
    fn gaussian_harm_is_the_upper_tail_above_the_threshold() {
        let m = ObservationModel::Gaussian {
            sigma: 1.0,
            harm_threshold: 4.0,
        };
        // μ = 3: P(N(3,1) > 4) = P(Z > 1) = 0.15865525393145707
        assert!((m.harm(3.0) - 0.158_655_253_931_457_07).abs() < 1e-15);
        assert!(((m.harm_f32(3.0) as f64) - 0.158_655_253_931_457_07).abs() < 1e-6);
    }

    #[test]
    fn bernoulli_harm_and_likelihood_agree() {
        let m = ObservationModel::Bernoulli;
        for &x in &[-800.0, -30.0, -1.5, 0.0, 2.0, 40.0] {
            let q = m.harm(x);
            if q > 1e-300 {
                assert!((m.log_likelihood(1.0, x) - q.ln()).abs() < 1e-12 * q.ln().abs().max(1.0));
            } else {
                // ln sigmoid(x) ≈ x far in the left tail, where q itself underflows
                assert!((m.log_likelihood(1.0, x) - x).abs() < 1e-12 * x.abs());
            }
            assert!(m.log_likelihood(0.0, x).is_finite());
        }
        assert!(m.harm(-800.0) == 0.0 || m.harm(-800.0) < 1e-300);
        // |x| = 750: e^{|x|} overflows f64, which each branch avoids
        assert_eq!(sigmoid(750.0), 1.0);
        assert_eq!(log_sigmoid(750.0), 0.0);
        assert_eq!(log_sigmoid(-750.0), -750.0);
        assert_eq!(m.log_likelihood(0.0, 750.0), -750.0);
        assert!((m.harm(-30.0) - (-30.0f64).exp() / (1.0 + (-30.0f64).exp())).abs() < 1e-25);
    }

    /// The parameter and outcome checks, from their definitions: σ a finite
    /// number > 0, θ finite, a Gaussian outcome finite, a Bernoulli one 0 or 1.
    #[test]
    fn parameters_and_outcomes_are_checked() {
        let g = |sigma, harm_threshold| ObservationModel::Gaussian {
            sigma,
            harm_threshold,
        };
        for bad in [0.0, -0.0, -1.0, f64::NAN, f64::INFINITY] {
            let e = g(bad, 1.0).validate().unwrap_err();
            assert!(
                e.starts_with("sigma must be a finite number > 0"),
                "{bad}: {e}"
            );
        }
        assert_eq!(g(1e-300, -3.0).validate(), Ok(()));
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let e = g(1.0, bad).validate().unwrap_err();
            assert!(e.starts_with("harm_threshold must be finite"), "{bad}: {e}");
        }
        assert_eq!(ObservationModel::Bernoulli.validate(), Ok(()));
        for y in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(g(1.0, 0.0).validate_outcome(y).is_err(), "{y}");
        }
        assert_eq!(g(1.0, 0.0).validate_outcome(-1e300), Ok(()));
        let b = ObservationModel::Bernoulli;
        for y in [0.0, 1.0, -0.0] {
            assert_eq!(b.validate_outcome(y), Ok(()), "{y}");
        }
        for y in [0.5, 2.0, -1.0, f64::NAN] {
            let e = b.validate_outcome(y).unwrap_err();
            assert!(e.contains("0 or 1"), "{y}: {e}");
        }
        assert_eq!((g(1.0, 0.0).name(), b.name()), ("gaussian", "bernoulli"));
    }

    /// `harm_into` gives `harm`'s bits for every length (whole vectors and
    /// every remainder), on both lane widths.
    #[test]
    fn harm_into_is_harm_one_at_a_time() {
        let (sigma, threshold) = (0.7, 1.5);
        let m = ObservationModel::Gaussian {
            sigma,
            harm_threshold: threshold,
        };
        for n in 0..20 {
            let wx: Vec<f64> = (0..n).map(|i| -3.0 + 0.45 * i as f64).collect();
            let want: Vec<u64> = wx.iter().map(|&v| m.harm(v).to_bits()).collect();
            let bits = |o: &[f64]| o.iter().map(|q| q.to_bits()).collect::<Vec<u64>>();
            let mut out = vec![f64::NAN; n];
            m.harm_into(&wx, &mut out);
            assert_eq!(bits(&out), want, "harm_into, n = {n}");
            out.fill(f64::NAN);
            gaussian_harm_lanes::<4>(sigma, threshold, &wx, &mut out);
            assert_eq!(bits(&out), want, "4 lanes, n = {n}");
            out.fill(f64::NAN);
            gaussian_harm_lanes::<8>(sigma, threshold, &wx, &mut out);
            assert_eq!(bits(&out), want, "8 lanes, n = {n}");
            out.fill(f64::NAN);
            ObservationModel::Bernoulli.harm_into(&wx, &mut out);
            let want: Vec<u64> = wx.iter().map(|&v| sigmoid(v).to_bits()).collect();
            assert_eq!(bits(&out), want, "bernoulli, n = {n}");
        }
    }

    /// The f32 twins (the shaders' harm) against the f64 harm: the Gaussian
    /// from a double-f32 `w·x` and a θ that f32 cannot hold, the Bernoulli on
    /// both branches of its sigmoid, results below the f32 normal range 0.
    #[test]
    fn f32_harm_follows_the_f64_harm() {
        let m = ObservationModel::Gaussian {
            sigma: 0.8,
            harm_threshold: 4.1,
        };
        for wx in [-2.0f64, 0.3, 2.9, 3.7, 4.1, 5.6] {
            let hi = wx as f32;
            let lo = (wx - hi as f64) as f32;
            let want = m.harm(wx);
            let got = m.harm_f32_split(hi, lo) as f64;
            assert!((got - want).abs() <= 2e-6 * want, "{wx}: {got} vs {want}");
        }
        // θ − w·x far in the tail: below f32's normal range, 0
        assert_eq!(m.harm_f32(-40.0), 0.0);
        // a narrow σ, where the low parts of w·x and θ decide q: w·x within
        // a few f32 ulps of θ (which f32 cannot hold either)
        let narrow = ObservationModel::Gaussian {
            sigma: 1e-7,
            harm_threshold: 4.1,
        };
        for wx in [4.1 - 2.5e-7, 4.1 - 0.6e-7, 4.1 + 1.3e-7] {
            let hi = wx as f32;
            let lo = (wx - hi as f64) as f32;
            let want = narrow.harm(wx);
            let got = narrow.harm_f32_split(hi, lo) as f64;
            assert!((got - want).abs() <= 1e-4 * want, "{wx}: {got} vs {want}");
        }
        let b = ObservationModel::Bernoulli;
        // ±100: e^{|w·x|} overflows f32, which each branch of the sigmoid avoids
        for wx in [-80.0f32, -20.0, -3.0, -0.25, 0.0, 0.25, 3.0, 20.0, 100.0] {
            let want = sigmoid(wx as f64);
            let got = b.harm_f32_split(wx, 0.0) as f64;
            assert!((got - want).abs() <= 1e-6 * want, "{wx}: {got} vs {want}");
        }
        // the split is added: hi + lo
        assert_eq!(b.harm_f32_split(1.0, 0.5), b.harm_f32(1.5));
        // e^-90 ≈ 8e-40: below f32::MIN_POSITIVE, 0
        assert_eq!(b.harm_f32(-90.0), 0.0);
    }
}
