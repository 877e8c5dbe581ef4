//! An amortized sampler of the posterior over a grid `{0..k-1}^d` (issue 15):
//! an autoregressive policy `q_θ(w | D)` that picks the coordinates of `w`
//! one at a time, conditioned on a summary of the data `D`, trained with
//! trajectory balance so that `q_θ(w | D) ∝ π(w)·p(D | w)`. Because it is
//! autoregressive, `log q_θ(w | D)` is exact for every `w` (a product of
//! normalised conditionals), which makes its samples usable as weighted
//! samples from a proposal (SPEC §1). docs/sampler.md has the choices.
//!
//! * [`context`]: the summary of the data a policy conditions on, and the
//!   exact local field of the log posterior that is each logit's residual.
//! * [`policy`]: the network, its forward pass (sampling, scoring, the whole
//!   grid by its prefix tree) and its hand-written backward pass.
//! * [`train`]: trajectory balance on simulated streams, Adam.
//! * [`checkpoint`]: the file that carries the model, θ, Adam and the step.
//! * [`eval`]: the exact posterior and the total-variation distance.
//! * [`audit`]: the audit on sampled hypotheses (`audit --sampler`).

pub mod audit;
pub mod checkpoint;
pub mod context;
pub mod eval;
pub mod plot;
pub mod policy;
pub mod train;

use std::path::Path;

use crate::log::format::{HypothesesKind, ObservationSpec};
use crate::model::ObservationModel;
use crate::{Error, Result};

/// The model a sampler is for: a grid with a uniform prior and an
/// observation model. Unlike `model::HypothesisSpace::Grid` it is never
/// enumerated, so any `d` is allowed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplerModel {
    pub k: u32,
    pub d: usize,
    pub observation: ObservationModel,
}

/// Largest `d` (a context's summary has `d(d+1)/2` entries per row).
pub const MAX_DIM: usize = 1024;
/// Largest `k` (the policy has one logit per value).
pub const MAX_K: u32 = 64;

impl SamplerModel {
    pub fn new(k: u32, d: usize, observation: ObservationModel) -> Result<Self> {
        if !(2..=MAX_K).contains(&k) {
            return Err(Error::Setting(format!(
                "the sampler needs a grid with 2 ≤ k ≤ {MAX_K}, got k = {k}"
            )));
        }
        if !(1..=MAX_DIM).contains(&d) {
            return Err(Error::Setting(format!(
                "the sampler needs a grid with 1 ≤ d ≤ {MAX_DIM}, got d = {d}"
            )));
        }
        observation.validate().map_err(Error::Setting)?;
        Ok(SamplerModel { k, d, observation })
    }

    /// Reads a model file (the content of a model line); it must be a grid.
    pub fn from_file(path: &Path) -> Result<Self> {
        let name = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| Error::input_file(path, e))?;
        Self::from_json(&name, &bytes)
    }

    /// The model of a model line's JSON; errors name `name`.
    pub fn from_json(name: &str, bytes: &[u8]) -> Result<Self> {
        let spec = crate::log::parse_model_spec(name, bytes)?;
        let h = &spec.hypotheses;
        let bad = |m: String| Error::input(name, None, format!("model: {m}"));
        if h.kind != HypothesesKind::Grid {
            return Err(bad(
                "the sampler draws from a grid {0..k-1}^d; this model has a hypothesis list".into(),
            ));
        }
        let (Some(k), Some(d)) = (h.k, h.d) else {
            return Err(bad("a grid needs `k` and `d`".into()));
        };
        if h.file.is_some() || h.params.is_some() || h.log_prior.is_some() {
            return Err(bad("a grid takes `k` and `d` only".into()));
        }
        let observation = match &spec.observation {
            ObservationSpec::Gaussian(g) => ObservationModel::Gaussian {
                sigma: g.sigma,
                harm_threshold: g.harm_threshold,
            },
            ObservationSpec::Bernoulli(_) => ObservationModel::Bernoulli,
        };
        Self::new(k, d, observation).map_err(|e| bad(e.to_string()))
    }

    /// The model as a model line's JSON, with its keys in a fixed order: the
    /// checkpoint's fingerprint of the model it was trained for.
    pub fn to_json(&self) -> String {
        let obs = match self.observation {
            ObservationModel::Gaussian {
                sigma,
                harm_threshold,
            } => {
                serde_json::json!({"kind": "gaussian", "sigma": sigma, "harm_threshold": harm_threshold})
            }
            ObservationModel::Bernoulli => serde_json::json!({"kind": "bernoulli"}),
        };
        serde_json::json!({
            "type": "model",
            "hypotheses": {"kind": "grid", "k": self.k, "d": self.d},
            "observation": obs,
        })
        .to_string()
    }

    /// The prior mean `(k−1)/2` of each coordinate: the reference value of
    /// the coordinates not chosen yet in a logit's residual.
    pub fn reference(&self) -> f64 {
        (self.k - 1) as f64 / 2.0
    }

    /// `ln π(w) = −d·ln k` (uniform prior).
    pub fn log_prior(&self) -> f64 {
        -(self.d as f64) * (self.k as f64).ln()
    }

    /// The number of hypotheses `k^d`, when it fits a `usize`.
    pub fn grid_size(&self) -> Option<usize> {
        (self.k as usize).checked_pow(u32::try_from(self.d).ok()?)
    }
}
