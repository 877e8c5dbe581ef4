//! The paper's exploding bandit, simulated as its experiment code does
//! (`conservative-bayesian-public`, documented in `shared/reference/README.md`),
//! with an optional guardrail in the loop.
//!
//! * Hypotheses: the grid `{0..k-1}^d`, uniform prior, index
//!   `i = Σ_j w_j k^(d-1-j)` (as `model::HypothesisSpace::Grid`).
//! * Every episode redraws the arm features `x_a ∈ {0..k-1}^d` and the true
//!   weights `w* ∈ {0..k-1}^d` uniformly. A pull of arm `a` returns
//!   `y ~ N(w*·x_a, σ²)`; the arm *explodes* (harm, the episode ends) when
//!   `y > θ` (strict). The explosion reward is counted.
//! * `θ` defaults to the reference rule: the average over 100 batches of
//!   `max_a x_a·w` (fresh `w`, `X` per batch), rounded half to even.
//! * Agents: Boltzmann (softmax of `β · x_a·E[w | data]`) and uniform.
//! * Guardrail in the loop (reference `run_episode`): the agent proposes an
//!   arm; if the guardrail's estimate exceeds `C` the arm is rejected and the
//!   agent resamples among the arms not yet rejected this step. When every arm
//!   has been rejected the episode stops and counts as *survived* with the
//!   reward so far (a reference quirk, kept because Figure 1 depends on it).
//!
//! ## Fast path
//!
//! `w·x` is an integer in `0..=d(k-1)²`, so everything per hypothesis is a
//! table lookup by that integer: the harm `q(v)` is tabulated once per run,
//! the likelihood factor `exp(ll(y, v) − max_v ll(y, v))` once per step. The
//! posterior is kept as relative weights `e^{L_h − L_max}` (the MAP has weight
//! exactly 1), updated multiplicatively by that table — mathematically the same
//! as `exp(L − L_max)` of the f64 log-posterior, without one `exp` per
//! hypothesis and step. Only hypotheses with weight `≥ α` can be in `I_α`, so
//! only those are sorted. The per-arm `w·x` columns are built lazily (a pull
//! or a guardrail check needs them).

pub mod batched;
mod belief;
pub mod experiments;
pub mod log;
pub mod plot;
pub mod torch_sort;

pub use belief::{Belief, Members};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use crate::model::normal_tail;
use crate::{Error, Result};

/// Largest hypothesis space the simulator enumerates (the posterior of the
/// Boltzmann agent and of the guardrails in the loop).
pub const MAX_SIM_HYPOTHESES: usize = 1 << 22;

/// Largest grid the simulator draws from without enumerating it (the true
/// hypothesis is drawn coordinate by coordinate, its index must fit an i64).
pub const MAX_SIM_INDEX: u64 = 1 << 63;

/// The environment's shape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BanditSpec {
    pub k: u32,
    pub d: usize,
    pub n_arm: usize,
    pub sigma: f64,
    /// Episode length (steps).
    pub steps: usize,
}

impl Default for BanditSpec {
    /// The paper's defaults: d = 10, k = 2, 10 arms, σ = 1, 25 steps.
    fn default() -> Self {
        BanditSpec {
            k: 2,
            d: 10,
            n_arm: 10,
            sigma: 1.0,
            steps: 25,
        }
    }
}

impl BanditSpec {
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Setting(m));
        if self.k < 2 {
            return bad(format!("k must be at least 2, got {}", self.k));
        }
        if self.d < 1 {
            return bad("d must be at least 1".into());
        }
        // The true hypothesis is written as its grid index (a JSON integer).
        let h = (self.k as f64).powi(self.d as i32);
        if h > MAX_SIM_INDEX as f64 || self.k > u16::MAX as u32 {
            return bad(format!(
                "k^d = {}^{} = {h:.3e} hypotheses: the simulator writes the true hypothesis as its grid index, at most 2^63",
                self.k, self.d
            ));
        }
        if self.n_arm < 1 || self.n_arm > 4096 {
            return bad(format!(
                "the number of arms must be in 1..=4096, got {}",
                self.n_arm
            ));
        }
        if !(self.sigma.is_finite() && self.sigma > 0.0) {
            return bad(format!(
                "sigma must be a finite number > 0, got {}",
                self.sigma
            ));
        }
        if self.steps < 1 {
            return bad("an episode needs at least 1 step".into());
        }
        Ok(())
    }

    /// Whether the posterior over the grid can be kept in memory, as the
    /// Boltzmann agent, the posterior guardrails and the experiments need.
    pub fn enumerable(&self) -> bool {
        grid_enumerable(self.k as usize, self.d)
    }

    /// Refuses a grid too large to enumerate, naming what needs it and how
    /// to proceed (`hint`, may be empty).
    pub fn require_enumerable(&self, what: &str, hint: &str) -> Result<()> {
        require_enumerable_grid(self.k as usize, self.d, what, hint)
    }

    pub fn n_hypotheses(&self) -> usize {
        (self.k as usize).pow(self.d as u32)
    }

    /// The largest possible `w·x`.
    pub fn max_dot(&self) -> usize {
        self.d * (self.k as usize - 1).pow(2)
    }
}

/// The explosion threshold as the reference computes it
/// (`ExplodingBandit.set_explosion_threshold`): 100 batches of fresh `w` and
/// `X`, the mean over batches of `max_a x_a·w`, rounded half to even.
pub fn reference_threshold(spec: &BanditSpec, rng: &mut impl Rng) -> f64 {
    let mut total = 0.0;
    let mut w = vec![0u32; spec.d];
    for _ in 0..100 {
        for v in w.iter_mut() {
            *v = rng.random_range(0..spec.k);
        }
        let mut best = 0u32;
        for _ in 0..spec.n_arm {
            let dot: u32 = w.iter().map(|&wj| wj * rng.random_range(0..spec.k)).sum();
            best = best.max(dot);
        }
        total += best as f64;
    }
    (total / 100.0).round_ties_even()
}

/// SplitMix64: derives independent stream seeds from (seed, tags).
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A ChaCha8 generator for one purpose, one configuration and one episode.
/// Results never depend on the thread count or the order episodes run in.
pub fn rng_for(seed: u64, purpose: u64, config: u64, episode: u64) -> ChaCha8Rng {
    let s = mix(mix(mix(seed ^ 0x5EED) ^ purpose) ^ config);
    let mut r = ChaCha8Rng::seed_from_u64(s);
    r.set_stream(episode);
    r
}

pub const PURPOSE_THRESHOLD: u64 = 1;
pub const PURPOSE_INSTANCE: u64 = 2;
pub const PURPOSE_AGENT: u64 = 3;

/// One episode's world: arm features and the true weights.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    /// `n_arm × d`, row-major.
    pub features: Vec<u16>,
    pub w_star: Vec<u16>,
    /// Index of `w*` in the grid.
    pub true_hypothesis: usize,
}

impl Instance {
    /// Draws `w*` then `X` (the reference's `reset()` order), uniform in `{0..k-1}`.
    pub fn draw(spec: &BanditSpec, rng: &mut impl Rng) -> Instance {
        let w_star: Vec<u16> = (0..spec.d)
            .map(|_| rng.random_range(0..spec.k) as u16)
            .collect();
        let features: Vec<u16> = (0..spec.n_arm * spec.d)
            .map(|_| rng.random_range(0..spec.k) as u16)
            .collect();
        let true_hypothesis = w_star
            .iter()
            .fold(0usize, |i, &v| i * spec.k as usize + v as usize);
        Instance {
            features,
            w_star,
            true_hypothesis,
        }
    }

    pub fn arm(&self, spec: &BanditSpec, a: usize) -> &[u16] {
        &self.features[a * spec.d..(a + 1) * spec.d]
    }

    /// `w*·x_a`.
    pub fn mean(&self, spec: &BanditSpec, a: usize) -> usize {
        self.arm(spec, a)
            .iter()
            .zip(&self.w_star)
            .map(|(&x, &w)| x as usize * w as usize)
            .sum()
    }
}

/// How the plausible set treats hypotheses tied with the last one it admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TieRule {
    /// SPEC §3.3 (and `gpubound audit`): tied hypotheses are not ahead of each
    /// other, so a tie group is all in or all out.
    Inclusive,
    /// The reference code: a prefix of torch's unstable sort, cut by position
    /// (`sorted[j] ≥ α·cumsum[j]`). Where the cut splits a tie group, *which*
    /// members are in is an artefact of the sort; reproduced here by sorting
    /// the f32 posterior with the same algorithm (`torch_sort`).
    Reference,
}

/// The guardrail in the loop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Guardrail {
    None,
    /// `q_{h*}` (the reference's "cheating" guardrail).
    Oracle,
    /// posterior predictive `Σ p_h q_h`.
    Posterior,
    /// i.i.d. cautious theory `q_ĥ`, `ĥ = argmax p_h q_h`.
    Iid,
    /// plausible set `max_{I_α} q_h`.
    NonIid {
        alpha: f64,
        ties: TieRule,
    },
}

impl Guardrail {
    pub fn name(&self) -> &'static str {
        match self {
            Guardrail::None => "none",
            Guardrail::Oracle => "oracle",
            Guardrail::Posterior => "posterior",
            Guardrail::Iid => "iid",
            Guardrail::NonIid { .. } => "non-iid",
        }
    }

    pub fn alpha(&self) -> Option<f64> {
        match self {
            Guardrail::NonIid { alpha, .. } => Some(*alpha),
            _ => None,
        }
    }
}

/// Which guardrail family; with `--alpha` and `--ties` it makes a [`Guardrail`].
/// Named as `audit`'s estimators are (SPEC's names); the reference code's
/// names are accepted as aliases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GuardrailKind {
    None,
    /// q of the true hypothesis (alias: cheating)
    #[value(alias = "cheating")]
    Oracle,
    /// Σ p·q (alias: posterior)
    #[value(alias = "posterior")]
    PosteriorPredictive,
    /// q of argmax p·q, i.i.d. (alias: iid)
    #[value(alias = "iid")]
    CautiousTheory,
    /// max of q over I_α, non-i.i.d. (alias: non-iid)
    #[value(alias = "non-iid")]
    PlausibleSet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentKind {
    /// softmax of β times the posterior-mean reward of each arm
    Boltzmann,
    /// uniform over the arms not yet rejected
    Uniform,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AgentSpec {
    pub kind: AgentKind,
    pub beta: f64,
}

/// Checks a guardrail threshold and α.
pub fn validate_guardrail(g: &Guardrail, threshold: f64) -> Result<()> {
    if !(0.0..=1.0).contains(&threshold) {
        return Err(Error::Setting(format!(
            "the guardrail threshold C must be in [0, 1], got {threshold}"
        )));
    }
    if let Guardrail::NonIid { alpha, .. } = g {
        validate_alpha(*alpha)?;
    }
    Ok(())
}

pub fn validate_alpha(alpha: f64) -> Result<()> {
    if !(alpha > 0.0 && alpha <= 1.0) {
        return Err(Error::Setting(format!("α must be in (0, 1], got {alpha}")));
    }
    Ok(())
}

/// Tables shared by every episode of a run.
#[derive(Debug, Clone)]
pub struct Tables {
    pub spec: BanditSpec,
    pub theta: f64,
    /// `q(v) = P(N(v, σ²) > θ)` for `v = 0..=max_dot`.
    pub q: Vec<f64>,
    /// `ln q(v)`.
    pub ln_q: Vec<f64>,
}

impl Tables {
    pub fn new(spec: BanditSpec, theta: f64) -> Result<Tables> {
        spec.validate()?;
        if !theta.is_finite() {
            return Err(Error::Setting(format!(
                "the explosion threshold must be finite, got {theta}"
            )));
        }
        let q: Vec<f64> = (0..=spec.max_dot())
            .map(|v| normal_tail::upper_tail((theta - v as f64) / spec.sigma))
            .collect();
        let ln_q = q.iter().map(|v| v.ln()).collect();
        Ok(Tables {
            spec,
            theta,
            q,
            ln_q,
        })
    }
}

/// One pulled arm.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pull {
    pub action: usize,
    pub reward: f64,
}

/// What happened in one episode.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EpisodeResult {
    pub reward: f64,
    /// Arms pulled.
    pub steps: usize,
    /// An arm exploded.
    pub exploded: bool,
    /// An arm exploded before the last step: the reference's death count
    /// (`timestep < episode_length`).
    pub death: bool,
    /// Stopped because every arm was rejected.
    pub all_rejected: bool,
    /// Rejections, plus the reference's phantom `n_arm·(T − t − 1)` after an
    /// all-rejected stop.
    pub rejections: usize,
    /// Guardrail evaluations.
    pub evals: usize,
    pub pulls: Vec<Pull>,
}

/// Runs one episode on `inst`.
#[allow(clippy::too_many_arguments)]
pub fn run_episode(
    tables: &Tables,
    inst: &Instance,
    agent: &AgentSpec,
    guardrail: &Guardrail,
    threshold: f64,
    explode: bool,
    belief: &mut Belief,
    rng: &mut impl Rng,
    record: bool,
) -> EpisodeResult {
    let spec = &tables.spec;
    belief.reset();
    let mut res = EpisodeResult::default();
    let mut scratch = StepScratch::new(spec);
    for t in 0..spec.steps {
        let mut members: Option<Members> = None;
        let mut estimate = |belief: &mut Belief, a: usize| -> Option<f64> {
            Some(match guardrail {
                Guardrail::None => return None,
                Guardrail::Oracle => tables.q[inst.mean(spec, a)],
                Guardrail::Posterior => belief.predictive(tables, inst, a),
                Guardrail::Iid => belief.cautious(tables, inst, a).0,
                Guardrail::NonIid { alpha, ties } => {
                    let m = members.get_or_insert_with(|| belief.plausible(*alpha, *ties));
                    match belief.members_max_dot(inst, a, m) {
                        Some(v) => tables.q[v],
                        None => 0.0,
                    }
                }
            })
        };
        let go_on = agent_step(
            tables,
            inst,
            agent,
            threshold,
            explode,
            t,
            belief,
            rng,
            record,
            &mut res,
            &mut scratch,
            &mut estimate,
        );
        if !go_on {
            break;
        }
    }
    res
}

/// Per-episode buffers of [`agent_step`].
#[derive(Debug, Clone)]
pub struct StepScratch {
    mean: Vec<f64>,
    logits: Vec<f64>,
    rejected: Vec<bool>,
}

impl StepScratch {
    pub fn new(spec: &BanditSpec) -> Self {
        StepScratch {
            mean: vec![0.0; spec.d],
            logits: vec![0.0; spec.n_arm],
            rejected: vec![false; spec.n_arm],
        }
    }
}

/// Step `t` of the reference's `run_episode`: the agent proposes arms until
/// the guardrail (`estimate`, `None` = no guardrail) accepts one, or stops the
/// episode when all are rejected; then the pull, the explosion check and the
/// Bayes update. Returns whether the episode goes on.
#[allow(clippy::too_many_arguments)]
pub fn agent_step(
    tables: &Tables,
    inst: &Instance,
    agent: &AgentSpec,
    threshold: f64,
    explode: bool,
    t: usize,
    belief: &mut Belief,
    rng: &mut impl Rng,
    record: bool,
    res: &mut EpisodeResult,
    sc: &mut StepScratch,
    estimate: &mut dyn FnMut(&mut Belief, usize) -> Option<f64>,
) -> bool {
    let spec = &tables.spec;
    let n_arm = spec.n_arm;
    // The agent's action distribution for this step.
    if agent.kind == AgentKind::Boltzmann {
        belief.posterior_mean(&mut sc.mean);
        for (a, l) in sc.logits.iter_mut().enumerate() {
            let x = inst.arm(spec, a);
            let r: f64 = x.iter().zip(&sc.mean).map(|(&x, &m)| x as f64 * m).sum();
            *l = agent.beta * r;
        }
    }
    sc.rejected.iter_mut().for_each(|r| *r = false);
    let mut n_rejected = 0;
    let action = loop {
        let a = sample_action(agent.kind, &sc.logits, &sc.rejected, rng);
        let Some(est) = estimate(belief, a) else {
            break a;
        };
        res.evals += 1;
        if est > threshold {
            sc.rejected[a] = true;
            n_rejected += 1;
            res.rejections += 1;
            if n_rejected == n_arm {
                res.all_rejected = true;
                res.rejections += n_arm * (spec.steps - t - 1);
                return false;
            }
        } else {
            break a;
        }
    };
    let mu = inst.mean(spec, action) as f64;
    let z: f64 = rng.sample(StandardNormal);
    let y = mu + spec.sigma * z;
    res.reward += y;
    res.steps += 1;
    if record {
        res.pulls.push(Pull { action, reward: y });
    }
    if explode && y > tables.theta {
        res.exploded = true;
        res.death = t + 1 < spec.steps;
        return false;
    }
    if t + 1 < spec.steps {
        belief.update(tables, inst, action, y);
    }
    true
}

/// Samples an arm not yet rejected: softmax of `logits` (Boltzmann) or uniform.
pub(crate) fn sample_action(
    kind: AgentKind,
    logits: &[f64],
    rejected: &[bool],
    rng: &mut impl Rng,
) -> usize {
    let allowed = rejected.iter().filter(|r| !**r).count();
    debug_assert!(allowed > 0);
    match kind {
        AgentKind::Uniform => {
            let mut i = rng.random_range(0..allowed);
            for (a, &r) in rejected.iter().enumerate() {
                if !r {
                    if i == 0 {
                        return a;
                    }
                    i -= 1;
                }
            }
            unreachable!("allowed counts the unrejected arms")
        }
        AgentKind::Boltzmann => {
            let m = logits
                .iter()
                .zip(rejected)
                .filter(|(_, r)| !**r)
                .map(|(l, _)| *l)
                .fold(f64::NEG_INFINITY, f64::max);
            let mut p = [0.0f64; 64];
            let mut heap;
            let probs: &mut [f64] = if logits.len() <= 64 {
                &mut p[..logits.len()]
            } else {
                heap = vec![0.0; logits.len()];
                &mut heap
            };
            let mut total = 0.0;
            for ((p, &l), &r) in probs.iter_mut().zip(logits).zip(rejected) {
                *p = if r { 0.0 } else { (l - m).exp() };
                total += *p;
            }
            let mut u = rng.random::<f64>() * total;
            let mut last = 0;
            for (a, &p) in probs.iter().enumerate() {
                if p > 0.0 {
                    last = a;
                    if u < p {
                        return a;
                    }
                    u -= p;
                }
            }
            last
        }
    }
}

/// One episode ready to run: draws the instance and the agent's generator
/// from the run seed, so any subset of episodes reproduces exactly.
pub fn episode_rngs(seed: u64, config: u64, episode: u64) -> (ChaCha8Rng, ChaCha8Rng) {
    (
        rng_for(seed, PURPOSE_INSTANCE, 0, episode),
        rng_for(seed, PURPOSE_AGENT, config, episode),
    )
}

/// The run's explosion threshold: given, or drawn by the reference rule from
/// the seed.
pub fn threshold_for(spec: &BanditSpec, seed: u64, given: Option<f64>) -> Result<f64> {
    match given {
        Some(t) if t.is_finite() => Ok(t),
        Some(t) => Err(Error::Setting(format!(
            "the explosion threshold must be finite, got {t}"
        ))),
        None => {
            spec.validate()?;
            Ok(reference_threshold(
                spec,
                &mut rng_for(seed, PURPOSE_THRESHOLD, 0, 0),
            ))
        }
    }
}

/// Whether a grid `{0..k-1}^d`'s posterior can be kept in memory.
fn grid_enumerable(k: usize, d: usize) -> bool {
    (k as f64).powi(d as i32) <= MAX_SIM_HYPOTHESES as f64
}

/// Refuses a grid too large to enumerate, naming what needs it and how to
/// proceed (`hint`, may be empty).
fn require_enumerable_grid(k: usize, d: usize, what: &str, hint: &str) -> Result<()> {
    if grid_enumerable(k, d) {
        return Ok(());
    }
    Err(Error::Setting(format!(
        "k^d = {k}^{d} = {:.3e} hypotheses: {what} needs the posterior over every hypothesis, \
         and the simulator enumerates at most {MAX_SIM_HYPOTHESES}{hint}",
        (k as f64).powi(d as i32)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::HypothesisSpace;
    use crate::posterior::{plausible_cuts, PlausibleCut};

    fn spec() -> BanditSpec {
        BanditSpec::default()
    }

    #[test]
    fn columns_match_dot_all() {
        for (k, d) in [(2u32, 10usize), (3, 4)] {
            let spec = BanditSpec { k, d, ..spec() };
            let mut rng = rng_for(7, 0, 0, 0);
            let inst = Instance::draw(&spec, &mut rng);
            let space = HypothesisSpace::grid(k, d).unwrap();
            let mut b = Belief::new(&spec);
            let mut want = vec![0.0; space.len()];
            for a in 0..spec.n_arm {
                let x: Vec<f64> = inst.arm(&spec, a).iter().map(|&v| v as f64).collect();
                space.dot_all(&x, &mut want);
                let got = b.column(&inst, a);
                for h in 0..space.len() {
                    assert_eq!(got[h] as f64, want[h]);
                }
            }
            let w: Vec<f64> = inst.w_star.iter().map(|&v| v as f64).collect();
            assert_eq!(space.index_of(&w), Some(inst.true_hypothesis));
        }
    }

    #[test]
    fn reference_threshold_is_four_for_the_paper_bandit() {
        // P(θ = 4) ≈ 0.9987 (reference README)
        let fours = (0..50)
            .filter(|&s| threshold_for(&spec(), s, None).unwrap() == 4.0)
            .count();
        assert!(fours >= 48, "{fours}");
    }

    #[test]
    fn posterior_mean_is_the_weighted_average() {
        for (k, d) in [(3u32, 3usize), (2, 10)] {
            let spec = BanditSpec { k, d, ..spec() };
            let mut b = Belief::new(&spec);
            for (h, w) in b.w.iter_mut().enumerate() {
                *w = 1.0 / (1.0 + (h as f64 * 0.37).sin().abs() * h as f64);
            }
            let mut mean = vec![0.0; d];
            let total = b.posterior_mean(&mut mean);
            let space = HypothesisSpace::grid(k, d).unwrap();
            let mut want = vec![0.0; d];
            let mut z = 0.0;
            for h in 0..space.len() {
                let p = b.w[h];
                z += p;
                for (j, v) in space.params(h).iter().enumerate() {
                    want[j] += p * v;
                }
            }
            assert!((total - z).abs() < 1e-9 * z);
            for j in 0..d {
                assert!((mean[j] - want[j] / z).abs() < 1e-12, "k={k} j={j}");
            }
        }
    }

    #[test]
    fn inclusive_cut_equals_posterior_plausible_cuts() {
        let spec = spec();
        let tables = Tables::new(spec, 4.0).unwrap();
        let mut b = Belief::new(&spec);
        let alphas = [1.0, 0.3, 0.1, 0.01, 1e-4, 1e-5];
        for seed in 0..20u64 {
            let (mut ir, mut ar) = episode_rngs(seed, 0, 0);
            let inst = Instance::draw(&spec, &mut ir);
            b.reset();
            for _t in 0..8 {
                let a = ar.random_range(0..spec.n_arm);
                let y = inst.mean(&spec, a) as f64 + ar.sample::<f64, _>(StandardNormal);
                b.update(&tables, &inst, a, y);
                let log_rel: Vec<f64> = b.w.iter().map(|w| w.ln()).collect();
                let mut out = vec![
                    PlausibleCut {
                        threshold: 0.0,
                        size: 0
                    };
                    alphas.len()
                ];
                plausible_cuts(&log_rel, &b.w, &alphas, &mut Default::default(), &mut out);
                for (i, &alpha) in alphas.iter().enumerate() {
                    let m = b.plausible(alpha, TieRule::Inclusive);
                    assert_eq!(m.size, out[i].size, "seed {seed} α {alpha}");
                    let count = b.w.iter().filter(|&&w| w >= m.tau).count();
                    assert_eq!(count, m.size);
                }
            }
        }
    }

    #[test]
    fn reference_ties_cut_by_position() {
        // at the prior, |M_α| = min(H, ⌊1/α⌋) positions (up to rounding)
        let spec = spec();
        let mut b = Belief::new(&spec);
        for (alpha, want) in [(1.0, 1usize), (0.3, 3), (0.01, 100), (1e-4, 1024)] {
            let m = b.plausible(alpha, TieRule::Reference);
            assert_eq!(m.size, want, "α {alpha}");
            assert_eq!(m.extra.len(), if want < 1024 { want } else { 0 });
        }
        // and SPEC's rule takes the whole tie group
        assert_eq!(b.plausible(1.0, TieRule::Inclusive).size, 1024);
    }

    #[test]
    fn the_oracle_guardrail_never_lets_an_arm_above_c_through() {
        let spec = spec();
        let tables = Tables::new(spec, 4.0).unwrap();
        let mut b = Belief::new(&spec);
        let agent = AgentSpec {
            kind: AgentKind::Boltzmann,
            beta: 0.5,
        };
        for e in 0..200 {
            let (mut ir, mut ar) = episode_rngs(3, 1, e);
            let inst = Instance::draw(&spec, &mut ir);
            let r = run_episode(
                &tables,
                &inst,
                &agent,
                &Guardrail::Oracle,
                0.01,
                true,
                &mut b,
                &mut ar,
                true,
            );
            for p in &r.pulls {
                assert!(tables.q[inst.mean(&spec, p.action)] <= 0.01);
            }
            assert_eq!(r.steps, r.pulls.len());
            if !r.exploded && !r.all_rejected {
                assert_eq!(r.steps, spec.steps);
            }
        }
    }
}
