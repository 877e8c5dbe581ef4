//! Training: trajectory balance (Malkin et al., 2022) with a per-context
//! log-normaliser, on contexts drawn by simulating streams from the prior.
//!
//! For a context `D` the loss of a path `w` is `(ln Z(D) + ln q_θ(w|D) −
//! ln R(w))²`, `R = π·p(D|·)` exact. Each step draws `contexts` contexts and
//! `samples` paths for each; `ln Z(D)` is the mean of `ln R − ln q_θ` over the
//! context's paths: the value that minimises the context's loss, so no
//! network has to learn the scale of `ln Z` (hundreds of nats apart from one
//! context to the next). The loss is then the variance of the log-ratio over
//! the paths (the "VarGrad" form of trajectory balance); it is zero exactly
//! when `q_θ ∝ R` on the paths drawn.
//!
//! Exploration: half the paths of a context are drawn from `q_θ`, the other
//! half pick each coordinate uniformly with probability `epsilon`; both use
//! the policy's own `ln q_θ`. A path's residual is clipped at `clip` nats
//! before it weighs the gradient (a Huber loss: same minimum, bounded steps).
//!
//! Contexts: a world (`w*` and the arm features) from `sim::Instance::draw`,
//! a uniform agent pulling arms for `t ~ U{0..=max_t}` steps (Gaussian: the
//! simulator's episode, without explosions; Bernoulli: `y ~ Bernoulli(σ(w*·x))`).
//! Every random number of a step comes from `(seed, step, chunk)`, so a
//! resumed run is the same as an uninterrupted one, whatever the threads.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::context::Context;
use super::policy::{Pick, Policy};
use super::SamplerModel;
use crate::model::observation::sigmoid;
use crate::model::ObservationModel;
use crate::sim::{self, AgentKind, AgentSpec, BanditSpec, Belief, Guardrail, Instance, Tables};
use crate::{Error, Result};

/// `sim::rng_for` purpose tag of the sampler's training.
const PURPOSE_SAMPLER: u64 = 0x5A4D;

/// Contexts per parallel chunk (fixed, so results do not depend on threads).
const CHUNK: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainConfig {
    pub contexts: usize,
    pub samples: usize,
    pub learning_rate: f64,
    pub epsilon: f64,
    pub clip: f64,
    pub max_grad_norm: f64,
    /// Observations per context: `t ~ U{0..=max_t}`.
    pub max_t: usize,
    /// Arms per simulated world.
    pub arms: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            contexts: 16,
            samples: 16,
            learning_rate: 1e-3,
            epsilon: 0.1,
            clip: 20.0,
            max_grad_norm: 10.0,
            max_t: 25,
            arms: 10,
        }
    }
}

impl TrainConfig {
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Setting(m));
        if self.contexts == 0 || self.samples < 2 {
            return bad(format!(
                "training needs at least 1 context and 2 samples per context, got {} and {}",
                self.contexts, self.samples
            ));
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return bad(format!(
                "the learning rate must be > 0, got {}",
                self.learning_rate
            ));
        }
        if !(0.0..=1.0).contains(&self.epsilon) {
            return bad(format!("ε must be in [0, 1], got {}", self.epsilon));
        }
        if !(self.clip > 0.0 && self.max_grad_norm > 0.0) {
            return bad("the clips must be > 0".into());
        }
        if self.arms == 0 || self.arms > 4096 {
            return bad(format!("arms must be in 1..=4096, got {}", self.arms));
        }
        Ok(())
    }
}

/// Adam (Kingma & Ba) with its moments, so a run resumes exactly.
#[derive(Debug, Clone, PartialEq)]
pub struct Adam {
    pub m: Vec<f64>,
    pub v: Vec<f64>,
    /// Updates made.
    pub t: u64,
}

impl Adam {
    pub fn new(n: usize) -> Adam {
        Adam {
            m: vec![0.0; n],
            v: vec![0.0; n],
            t: 0,
        }
    }

    pub fn update(&mut self, params: &mut [f64], grad: &[f64], lr: f64) {
        const B1: f64 = 0.9;
        const B2: f64 = 0.999;
        const EPS: f64 = 1e-8;
        self.t += 1;
        let c1 = 1.0 - B1.powi(self.t.min(i32::MAX as u64) as i32);
        let c2 = 1.0 - B2.powi(self.t.min(i32::MAX as u64) as i32);
        for (((p, g), m), v) in params
            .iter_mut()
            .zip(grad)
            .zip(&mut self.m)
            .zip(&mut self.v)
        {
            *m = B1 * *m + (1.0 - B1) * g;
            *v = B2 * *v + (1.0 - B2) * g * g;
            *p -= lr * (*m / c1) / ((*v / c2).sqrt() + EPS);
        }
    }
}

/// A policy being trained, with everything a checkpoint keeps.
#[derive(Debug, Clone)]
pub struct Trainer {
    pub policy: Policy,
    pub adam: Adam,
    pub config: TrainConfig,
    pub seed: u64,
    /// Steps done.
    pub step: u64,
    /// The loss of every step done.
    pub losses: Vec<f32>,
    tables: Option<Tables>,
}

impl Trainer {
    pub fn new(policy: Policy, config: TrainConfig, seed: u64) -> Result<Trainer> {
        config.validate()?;
        let n = policy.len();
        Self::resume(policy, Adam::new(n), config, seed, 0, Vec::new())
    }

    /// A trainer from a checkpoint's parts.
    pub fn resume(
        policy: Policy,
        adam: Adam,
        config: TrainConfig,
        seed: u64,
        step: u64,
        losses: Vec<f32>,
    ) -> Result<Trainer> {
        config.validate()?;
        if adam.m.len() != policy.len() || adam.v.len() != policy.len() {
            return Err(Error::Setting(
                "the optimiser state does not fit the policy".into(),
            ));
        }
        let m = policy.model;
        let tables = match m.observation {
            ObservationModel::Gaussian {
                sigma,
                harm_threshold,
            } => {
                let spec = BanditSpec {
                    k: m.k,
                    d: m.d,
                    n_arm: config.arms,
                    sigma,
                    steps: config.max_t.max(1),
                };
                Some(Tables::new(spec, harm_threshold)?)
            }
            ObservationModel::Bernoulli => None,
        };
        Ok(Trainer {
            policy,
            adam,
            config,
            seed,
            step,
            losses,
            tables,
        })
    }

    /// One context: a simulated stream's first `t` observations.
    pub fn draw_context(&self, rng: &mut ChaCha8Rng) -> Context {
        let m = &self.policy.model;
        let t = rng.random_range(0..=self.config.max_t);
        let spec = BanditSpec {
            k: m.k,
            d: m.d,
            n_arm: self.config.arms,
            sigma: 1.0,
            steps: self.config.max_t.max(1),
        };
        let inst = Instance::draw(&spec, rng);
        let mut ctx = Context::new(m);
        let x_of =
            |a: usize| -> Vec<f64> { inst.arm(&spec, a).iter().map(|&v| v as f64).collect() };
        match &self.tables {
            Some(tables) => {
                let agent = AgentSpec {
                    kind: AgentKind::Uniform,
                    beta: 0.0,
                };
                let res = sim::run_episode(
                    tables,
                    &inst,
                    &agent,
                    &Guardrail::None,
                    1.0,
                    false,
                    &mut Belief::untracked(&tables.spec),
                    rng,
                    true,
                );
                for p in res.pulls.iter().take(t) {
                    ctx.push(m, &x_of(p.action), p.reward);
                }
            }
            None => {
                for _ in 0..t {
                    let a = rng.random_range(0..spec.n_arm);
                    let x = x_of(a);
                    let z: f64 = x.iter().zip(&inst.w_star).map(|(x, &w)| x * w as f64).sum();
                    let y = (rng.random::<f64>() < sigmoid(z)) as u8 as f64;
                    ctx.push(m, &x, y);
                }
            }
        }
        ctx
    }

    /// The loss and gradient of `contexts` with `rng`'s paths: returns
    /// (Σ over contexts of the loss, gradient of that sum).
    pub fn loss_and_gradient(
        &self,
        contexts: &[Context],
        rng: &mut ChaCha8Rng,
    ) -> Result<(f64, Vec<f64>)> {
        let m = &self.policy.model;
        let n = self.config.samples;
        let refs: Vec<&Context> = contexts.iter().collect();
        let rows_ctx: Vec<usize> = (0..contexts.len()).flat_map(|c| vec![c; n]).collect();
        let epsilon: Vec<f64> = (0..rows_ctx.len())
            .map(|r| if r % 2 == 1 { self.config.epsilon } else { 0.0 })
            .collect();
        let roll = self.policy.rollout(
            &refs,
            &rows_ctx,
            Pick::Sample {
                rng,
                epsilon: &epsilon,
            },
            true,
        );
        let mut coef = vec![0.0; rows_ctx.len()];
        let mut loss = 0.0;
        let mut w = vec![0.0; m.d];
        for (c, ctx) in contexts.iter().enumerate() {
            let rows = c * n..(c + 1) * n;
            let delta: Vec<f64> = rows
                .clone()
                .map(|r| {
                    for (wv, &p) in w.iter_mut().zip(&roll.paths[r * m.d..(r + 1) * m.d]) {
                        *wv = p as f64;
                    }
                    roll.log_q[r] - ctx.log_reward(m, &w)
                })
                .collect();
            let mean = delta.iter().sum::<f64>() / n as f64;
            for (r, dl) in rows.zip(&delta) {
                let res = dl - mean;
                loss += res * res / n as f64;
                coef[r] = 2.0 * res.clamp(-self.config.clip, self.config.clip) / n as f64;
            }
        }
        let mut grad = vec![0.0; self.policy.len()];
        self.policy.backward(&roll, &coef, &mut grad)?;
        Ok((loss, grad))
    }

    /// One training step; returns its loss (mean over contexts).
    pub fn train_step(&mut self) -> Result<f64> {
        let n_ctx = self.config.contexts;
        let chunks: Vec<(usize, usize)> = (0..n_ctx)
            .step_by(CHUNK)
            .map(|s| (s, (s + CHUNK).min(n_ctx)))
            .collect();
        let step = self.step;
        let parts: Vec<Result<(f64, Vec<f64>)>> = chunks
            .par_iter()
            .enumerate()
            .map(|(i, &(a, b))| {
                let mut rng = sim::rng_for(self.seed, PURPOSE_SAMPLER, step, i as u64);
                let contexts: Vec<Context> = (a..b).map(|_| self.draw_context(&mut rng)).collect();
                self.loss_and_gradient(&contexts, &mut rng)
            })
            .collect();
        let mut grad = vec![0.0; self.policy.len()];
        let mut loss = 0.0;
        for part in parts {
            let (l, g) = part?;
            loss += l;
            grad.iter_mut().zip(&g).for_each(|(a, b)| *a += b);
        }
        let scale = 1.0 / n_ctx as f64;
        loss *= scale;
        let mut norm = 0.0;
        for g in &mut grad {
            *g *= scale;
            norm += *g * *g;
        }
        let norm = norm.sqrt();
        if !norm.is_finite() {
            return Err(Error::Internal(format!(
                "training step {step}: the gradient is not finite"
            )));
        }
        if norm > self.config.max_grad_norm {
            let s = self.config.max_grad_norm / norm;
            grad.iter_mut().for_each(|g| *g *= s);
        }
        self.adam
            .update(&mut self.policy.params, &grad, self.config.learning_rate);
        self.step += 1;
        self.losses.push(loss as f32);
        Ok(loss)
    }

    pub fn model(&self) -> &SamplerModel {
        &self.policy.model
    }
}
