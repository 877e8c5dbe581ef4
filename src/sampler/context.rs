//! What a policy conditions on: the data of a stream so far, summarised.
//!
//! * Gaussian model: the log posterior is `−½ wᵀΛw + bᵀw + c` with
//!   `Λ = Σ x xᵀ/σ²`, `b = Σ x y/σ²`, so `(Λ, b)` and the count `t` are
//!   sufficient; the network sees `(Λ/t, b/t, ln(1+t))`.
//! * Bernoulli model: no finite summary is sufficient. The network sees the
//!   same shape, from the second-order expansion of each observation's
//!   log-likelihood at the reference point `r` (the prior mean): with
//!   `z₀ = r·x`, `s = sigmoid(z₀)`, `Λ = Σ s(1−s) x xᵀ`, `b = Σ (y − s + s(1−s) z₀) x`
//!   (one Newton/IRLS step's statistics; for the Gaussian the same formula
//!   gives the exact `Λ, b`). The residual field (below) is still exact: it
//!   is computed from the observations themselves, which the context keeps.
//!
//! The *residual field* of coordinate `j` is the log posterior as a function
//! of `w_j` alone, with the coordinates chosen so far fixed and the later
//! ones at the reference `r = (k−1)/2` (the prior mean): exactly the
//! conditional log-odds when the later coordinates are known to be `r`.

use super::SamplerModel;
use crate::model::observation::{log_sigmoid, sigmoid};
use crate::model::ObservationModel;

/// The data of one stream before some step.
#[derive(Debug, Clone, PartialEq)]
pub struct Context {
    pub d: usize,
    /// Observations so far.
    pub t: usize,
    /// `d × d`, row-major: the summary's `Λ` (see the module docs).
    pub lambda: Vec<f64>,
    pub b: Vec<f64>,
    /// Gaussian: `Σ ln p(y|w·x)` minus its `w`-dependent part, so that
    /// `log_reward` is the exact `ln π(w) + Σ ln p(y | w·x)`.
    constant: f64,
    /// Bernoulli: the observations (`t × d` features, and outcomes).
    xs: Vec<f64>,
    ys: Vec<f64>,
}

impl Context {
    /// No data: the prior.
    pub fn new(model: &SamplerModel) -> Context {
        let d = model.d;
        Context {
            d,
            t: 0,
            lambda: vec![0.0; d * d],
            b: vec![0.0; d],
            constant: 0.0,
            xs: Vec::new(),
            ys: Vec::new(),
        }
    }

    /// Adds one observation `y` of features `x` (length `d`).
    pub fn push(&mut self, model: &SamplerModel, x: &[f64], y: f64) {
        let d = self.d;
        debug_assert_eq!(x.len(), d);
        let (weight, target) = match model.observation {
            ObservationModel::Gaussian { sigma, .. } => {
                let s2 = sigma * sigma;
                self.constant += -0.5 * y * y / s2 - sigma.ln() - 0.918_938_533_204_672_8;
                (1.0 / s2, y / s2)
            }
            ObservationModel::Bernoulli => {
                self.xs.extend_from_slice(x);
                self.ys.push(y);
                let z0: f64 = x.iter().map(|v| v * model.reference()).sum();
                let s = sigmoid(z0);
                let c = s * (1.0 - s);
                (c, y - s + c * z0)
            }
        };
        for i in 0..d {
            if x[i] == 0.0 {
                continue;
            }
            self.b[i] += x[i] * target;
            let row = &mut self.lambda[i * d..(i + 1) * d];
            for (l, &xj) in row.iter_mut().zip(x) {
                *l += weight * x[i] * xj;
            }
        }
        self.t += 1;
    }

    /// The network's input: the upper triangle of `Λ/t` row by row, `b/t`,
    /// and `ln(1+t)/4` (zeros at the prior).
    pub fn summary(&self) -> Vec<f64> {
        let d = self.d;
        let scale = if self.t == 0 {
            0.0
        } else {
            1.0 / self.t as f64
        };
        let mut out = Vec::with_capacity(summary_len(d));
        for i in 0..d {
            for j in i..d {
                out.push(self.lambda[i * d + j] * scale);
            }
        }
        out.extend(self.b.iter().map(|v| v * scale));
        out.push(self.log_count());
        out
    }

    /// `ln(1+t)/4`: about 1 at the end of a 25-step stream.
    pub fn log_count(&self) -> f64 {
        (1.0 + self.t as f64).ln() / 4.0
    }

    /// `ln π(w) + Σ_s ln p(y_s | w·x_s)`, exact: the trajectory-balance reward.
    pub fn log_reward(&self, model: &SamplerModel, w: &[f64]) -> f64 {
        let d = self.d;
        let ll = match model.observation {
            ObservationModel::Gaussian { .. } => {
                let mut quad = 0.0;
                let mut lin = 0.0;
                for i in 0..d {
                    if w[i] == 0.0 {
                        continue;
                    }
                    let row = &self.lambda[i * d..(i + 1) * d];
                    quad += w[i] * row.iter().zip(w).map(|(l, v)| l * v).sum::<f64>();
                    lin += self.b[i] * w[i];
                }
                lin - 0.5 * quad + self.constant
            }
            ObservationModel::Bernoulli => self
                .xs
                .chunks_exact(d)
                .zip(&self.ys)
                .map(|(x, &y)| bernoulli_ll(y, x.iter().zip(w).map(|(a, b)| a * b).sum()))
                .sum(),
        };
        model.log_prior() + ll
    }

    /// What the residual field of this context needs, computed once.
    pub fn residual(&self, model: &SamplerModel, kind: ResidualKind) -> Residual {
        let d = self.d;
        let r = model.reference();
        let gaussian = matches!(model.observation, ObservationModel::Gaussian { .. });
        let relaxed = gaussian && kind == ResidualKind::Relaxed;
        let mut quad = vec![0.0; d];
        let mut shift = vec![0.0; d];
        let mut u = if relaxed {
            vec![0.0; d * d]
        } else {
            Vec::new()
        };
        let mut features = Vec::with_capacity(d);
        // the prior variance of one coordinate, uniform on {0..k−1}
        let var = ((model.k as f64).powi(2) - 1.0) / 12.0;
        for j in 0..d {
            let row = &self.lambda[j * d..(j + 1) * d];
            let later = &row[j + 1..];
            if relaxed && !later.is_empty() {
                // u_j = (Λ_FF + I/s²)⁻¹ Λ_Fj, F = the later coordinates
                let n = later.len();
                let mut m = vec![0.0; n * n];
                for a in 0..n {
                    for b in 0..n {
                        m[a * n + b] = self.lambda[(j + 1 + a) * d + j + 1 + b];
                    }
                    m[a * n + a] += 1.0 / var;
                }
                let uj = cholesky_solve(&mut m, n, later);
                quad[j] = row[j] - later.iter().zip(&uj).map(|(a, b)| a * b).sum::<f64>();
                shift[j] = uj
                    .iter()
                    .enumerate()
                    .map(|(a, v)| v * (self.b[j + 1 + a] + r / var))
                    .sum();
                u[j * d + j + 1..(j + 1) * d].copy_from_slice(&uj);
            } else {
                quad[j] = row[j];
                shift[j] = r * later.iter().sum::<f64>();
            }
            let coupling: f64 = later.iter().map(|v| v * v).sum();
            features.push([quad[j].asinh(), coupling.sqrt().asinh()]);
        }
        Residual {
            kind: if relaxed {
                ResidualKind::Relaxed
            } else {
                ResidualKind::Reference
            },
            quad,
            shift,
            u,
            features,
        }
    }

    /// Length of a path's state row: the chosen values (the reference for
    /// those to come), then the running sums the field needs.
    pub fn state_len(&self, model: &SamplerModel) -> usize {
        self.d
            + match model.observation {
                ObservationModel::Gaussian { .. } => self.d,
                ObservationModel::Bernoulli => self.t,
            }
    }

    /// The state of an empty path: `w̃ = r` everywhere, and `p = 0`
    /// (Gaussian: `p = Σ_{i chosen} Λ_{·i} w_i`) or `z_s = x_s·w̃` (Bernoulli).
    pub fn start_state(&self, model: &SamplerModel, out: &mut [f64]) {
        let d = self.d;
        let r = model.reference();
        let (w, aux) = out.split_at_mut(d);
        w.iter_mut().for_each(|v| *v = r);
        match model.observation {
            ObservationModel::Gaussian { .. } => aux.iter_mut().for_each(|a| *a = 0.0),
            ObservationModel::Bernoulli => {
                for (a, x) in aux.iter_mut().zip(self.xs.chunks_exact(d)) {
                    *a = r * x.iter().sum::<f64>();
                }
            }
        }
    }

    /// The residual field of coordinate `j` in state `st`: `out[v]` is the
    /// log posterior with `w_j = v` minus that with `w_j = 0`, the
    /// coordinates chosen so far fixed and the later ones at the reference
    /// or integrated out (`res.kind`).
    pub fn field(
        &self,
        model: &SamplerModel,
        res: &Residual,
        st: &[f64],
        j: usize,
        out: &mut [f64],
    ) {
        let d = self.d;
        let (w, aux) = st.split_at(d);
        match model.observation {
            ObservationModel::Gaussian { .. } => {
                // the linear coefficient of w_j
                let mut h = self.b[j] - aux[j] - res.shift[j];
                if res.kind == ResidualKind::Relaxed {
                    h += res.u[j * d + j + 1..(j + 1) * d]
                        .iter()
                        .zip(&aux[j + 1..])
                        .map(|(a, b)| a * b)
                        .sum::<f64>();
                }
                for (v, o) in out.iter_mut().enumerate() {
                    let v = v as f64;
                    *o = v * h - 0.5 * res.quad[j] * v * v;
                }
            }
            ObservationModel::Bernoulli => {
                out.iter_mut().for_each(|o| *o = 0.0);
                for ((x, &y), &z) in self.xs.chunks_exact(d).zip(&self.ys).zip(aux) {
                    if x[j] == 0.0 {
                        continue;
                    }
                    let rest = z - w[j] * x[j];
                    let base = bernoulli_ll(y, rest);
                    for (v, o) in out.iter_mut().enumerate().skip(1) {
                        *o += bernoulli_ll(y, rest + v as f64 * x[j]) - base;
                    }
                }
            }
        }
    }

    /// Fixes `w_j = v` in state `st`.
    pub fn choose(&self, model: &SamplerModel, st: &mut [f64], j: usize, v: f64) {
        let d = self.d;
        let (w, aux) = st.split_at_mut(d);
        let delta = v - w[j];
        w[j] = v;
        match model.observation {
            ObservationModel::Gaussian { .. } => {
                // Λ is symmetric: column j is row j
                if v != 0.0 {
                    for (a, l) in aux.iter_mut().zip(&self.lambda[j * d..(j + 1) * d]) {
                        *a += l * v;
                    }
                }
            }
            ObservationModel::Bernoulli => {
                if delta != 0.0 {
                    for (a, x) in aux.iter_mut().zip(self.xs.chunks_exact(d)) {
                        *a += x[j] * delta;
                    }
                }
            }
        }
    }
}

/// How the residual field treats the coordinates not chosen yet.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum ResidualKind {
    /// Fixed at the prior mean `(k−1)/2`.
    Reference,
    /// Gaussian model: integrated out under a Gaussian relaxation of their
    /// prior (mean `(k−1)/2`, variance `(k²−1)/12`); the Bernoulli model
    /// uses `reference`.
    #[default]
    Relaxed,
}

/// A context's precomputed residual: per coordinate `j`, the field is
/// `v·h_j − ½·quad_j·v²` with `h_j = b_j − p_j − shift_j (+ u_j·p_F)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Residual {
    pub kind: ResidualKind,
    quad: Vec<f64>,
    shift: Vec<f64>,
    /// Relaxed: row `j` holds `u_j` in its columns `j+1..d`.
    u: Vec<f64>,
    features: Vec<[f64; 2]>,
}

impl Residual {
    /// The network's inputs about coordinate `j`: `asinh` of the field's
    /// curvature and of the coupling `√(Σ_{i>j} Λ_ij²)` to later coordinates.
    pub fn features(&self, j: usize) -> [f64; 2] {
        self.features[j]
    }
}

/// Solves `M x = rhs` for a symmetric positive definite `n × n` `m`
/// (overwritten by its Cholesky factor).
fn cholesky_solve(m: &mut [f64], n: usize, rhs: &[f64]) -> Vec<f64> {
    for i in 0..n {
        for j in 0..=i {
            let mut s = m[i * n + j];
            for k in 0..j {
                s -= m[i * n + k] * m[j * n + k];
            }
            if i == j {
                // ≥ 1/s² > 0 in exact arithmetic; guard rounding anyway
                m[i * n + i] = s.max(1e-300).sqrt();
            } else {
                m[i * n + j] = s / m[j * n + j];
            }
        }
    }
    let mut x = rhs.to_vec();
    for i in 0..n {
        for k in 0..i {
            x[i] -= m[i * n + k] * x[k];
        }
        x[i] /= m[i * n + i];
    }
    for i in (0..n).rev() {
        for k in i + 1..n {
            x[i] -= m[k * n + i] * x[k];
        }
        x[i] /= m[i * n + i];
    }
    x
}

/// The network's input length for dimension `d`.
pub fn summary_len(d: usize) -> usize {
    d * (d + 1) / 2 + d + 1
}

fn bernoulli_ll(y: f64, z: f64) -> f64 {
    if y == 1.0 {
        log_sigmoid(z)
    } else {
        log_sigmoid(-z)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gaussian(d: usize) -> SamplerModel {
        SamplerModel::new(
            2,
            d,
            ObservationModel::Gaussian {
                sigma: 0.7,
                harm_threshold: 5.0,
            },
        )
        .unwrap()
    }

    #[test]
    fn the_gaussian_reward_is_the_sum_of_log_likelihoods() {
        let m = gaussian(3);
        let mut c = Context::new(&m);
        let obs = [([1.0, 0.0, 1.0], 1.3), ([0.0, 1.0, 1.0], -0.4)];
        for (x, y) in &obs {
            c.push(&m, x, *y);
        }
        let w = [1.0, 0.0, 1.0];
        let want: f64 = m.log_prior()
            + obs
                .iter()
                .map(|(x, y)| {
                    m.observation
                        .log_likelihood(*y, x.iter().zip(&w).map(|(a, b)| a * b).sum())
                })
                .sum::<f64>();
        assert!((c.log_reward(&m, &w) - want).abs() < 1e-12);
    }

    #[test]
    fn the_relaxed_field_integrates_the_later_coordinates_out() {
        // d = 2, coordinate 0: compare with a quadrature over w_1 of
        // exp(log posterior) times the relaxed prior N(0.5, 1/4)
        let m = gaussian(2);
        let mut c = Context::new(&m);
        for (x, y) in [([1.0, 1.0], 1.2), ([1.0, 0.0], 0.1), ([1.0, 1.0], 0.7)] {
            c.push(&m, &x, y);
        }
        let res = c.residual(&m, ResidualKind::Relaxed);
        let mut st = vec![0.0; c.state_len(&m)];
        c.start_state(&m, &mut st);
        let mut f = [0.0; 2];
        c.field(&m, &res, &st, 0, &mut f);
        let log_integral = |v: f64| {
            let h = 1e-3;
            let mut total = 0.0;
            for i in 0..=14_000 {
                let w1 = -6.0 + i as f64 * h;
                let prior = -2.0 * (w1 - 0.5) * (w1 - 0.5);
                total += (c.log_reward(&m, &[v, w1]) + prior).exp() * h;
            }
            total.ln()
        };
        let want = log_integral(1.0) - log_integral(0.0);
        assert!((f[1] - want).abs() < 1e-6, "{} vs {want}", f[1]);
        // and the last coordinate has nothing after it: the exact field
        let exact = c.residual(&m, ResidualKind::Reference);
        let (mut a, mut b) = ([0.0; 2], [0.0; 2]);
        c.choose(&m, &mut st, 0, 1.0);
        c.field(&m, &res, &st, 1, &mut a);
        c.field(&m, &exact, &st, 1, &mut b);
        assert_eq!(a, b);
    }

    #[test]
    fn the_field_is_a_difference_of_rewards() {
        for m in [
            gaussian(4),
            SamplerModel::new(3, 4, ObservationModel::Bernoulli).unwrap(),
        ] {
            let mut c = Context::new(&m);
            c.push(&m, &[1.0, 2.0, 0.0, 1.0], 1.0);
            c.push(&m, &[0.0, 1.0, 1.0, 2.0], 0.0);
            let res = c.residual(&m, ResidualKind::Reference);
            let mut st = vec![0.0; c.state_len(&m)];
            c.start_state(&m, &mut st);
            c.choose(&m, &mut st, 0, 1.0);
            let mut f = vec![0.0; m.k as usize];
            c.field(&m, &res, &st, 1, &mut f);
            let mut w = st[..4].to_vec();
            for (v, got) in f.iter().enumerate() {
                w[1] = v as f64;
                let a = c.log_reward(&m, &w);
                w[1] = 0.0;
                let want = a - c.log_reward(&m, &w);
                assert!((got - want).abs() < 1e-12, "{:?} v={v}", m.observation);
            }
        }
    }
}
