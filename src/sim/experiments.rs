//! The paper's experiments (Figures 1 and 2) and a coverage study, on the
//! simulator of `sim`. Every episode is independent and seeded from
//! (seed, configuration, episode), so results do not depend on the number of
//! threads; episodes run in parallel with rayon and are reduced in order.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use super::{
    episode_rngs, run_episode, AgentKind, AgentSpec, Belief, Guardrail, Instance, Tables, TieRule,
};
use crate::{Error, Result};

/// The α values of the paper's Figures 1 and 2 (reference `fig1.json`).
pub const PAPER_ALPHAS: [f64; 9] = [1e-5, 3e-5, 1e-4, 3e-4, 1e-2, 3e-2, 0.1, 0.3, 1.0];
/// The guardrail thresholds of Figure 1.
pub const PAPER_THRESHOLDS: [f64; 3] = [1e-3, 1e-2, 1e-1];

/// Mean and standard error of the mean (sample s.d. with n − 1, over √n).
pub fn mean_sem(xs: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let (mut n, mut s) = (0usize, 0.0);
    for x in xs.clone() {
        n += 1;
        s += x;
    }
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let m = s / n as f64;
    if n == 1 {
        return (m, 0.0);
    }
    let ss: f64 = xs.map(|x| (x - m) * (x - m)).sum();
    (m, (ss / (n - 1) as f64).sqrt() / (n as f64).sqrt())
}

/// Standard error of a ratio mean `Σ_i Σ_j x_ij / Σ_i n_i` with clusters
/// `i` (episodes): `sqrt(Σ_i (s_i − m·n_i)² / (N(N−1))) / n̄`.
pub fn cluster_sem<'a>(clusters: impl Iterator<Item = &'a [f64]> + Clone, mean: f64) -> f64 {
    let (mut n_clusters, mut n_total, mut ss) = (0usize, 0usize, 0.0);
    for c in clusters {
        n_clusters += 1;
        n_total += c.len();
        let dev: f64 = c.iter().map(|x| x - mean).sum();
        ss += dev * dev;
    }
    if n_clusters < 2 || n_total == 0 {
        return f64::NAN;
    }
    let nbar = n_total as f64 / n_clusters as f64;
    (ss / (n_clusters as f64 * (n_clusters - 1) as f64)).sqrt() / nbar
}

/// Most episodes per configuration: every episode's summary is kept in
/// memory until the end (reduced in order, for reproducibility).
pub const MAX_EPISODES: usize = 1_000_000;

fn check_episodes(n: usize) -> Result<()> {
    if n == 0 {
        return Err(Error::Setting("--episodes must be at least 1".into()));
    }
    if n > MAX_EPISODES {
        return Err(Error::Setting(format!(
            "--episodes must be at most {MAX_EPISODES} per configuration, got {n}"
        )));
    }
    Ok(())
}

fn check_alphas(alphas: &[f64]) -> Result<()> {
    if alphas.is_empty() {
        return Err(Error::Setting("at least one α is needed".into()));
    }
    alphas.iter().try_for_each(|&a| super::validate_alpha(a))
}

/// Runs `f(config, episode)` for every pair in parallel (interleaved so slow
/// configurations spread over the threads); results in (config, episode) order.
fn par_episodes<T: Send>(
    spec: &super::BanditSpec,
    n_configs: usize,
    episodes: usize,
    tick: &(dyn Fn(usize) + Sync),
    f: impl Fn(&mut Belief, usize, usize) -> T + Sync,
) -> Vec<Vec<T>> {
    let done = AtomicUsize::new(0);
    let total = n_configs * episodes;
    let mut flat: Vec<(usize, T)> = (0..total)
        .into_par_iter()
        .with_min_len(16)
        .map_init(
            || Belief::new(spec),
            |b, i| {
                let (c, e) = (i % n_configs, i / n_configs);
                let r = f(b, c, e);
                let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                if d.is_multiple_of(512) || d == total {
                    tick(d);
                }
                (i, r)
            },
        )
        .collect();
    flat.sort_by_key(|(i, _)| *i);
    let mut out: Vec<Vec<T>> = (0..n_configs)
        .map(|_| Vec::with_capacity(episodes))
        .collect();
    for (i, r) in flat {
        out[i % n_configs].push(r);
    }
    out
}

// ---------------------------------------------------------------- Figure 1

#[derive(Debug, Clone)]
pub struct Fig1Settings {
    pub tables: Tables,
    pub seed: u64,
    pub episodes: usize,
    pub thresholds: Vec<f64>,
    pub alphas: Vec<f64>,
    pub ties: TieRule,
    pub beta: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Fig1Row {
    pub threshold: f64,
    /// none, cheating (the oracle), posterior, iid, non-iid (the reference's names)
    pub guardrail: String,
    pub alpha: Option<f64>,
    pub reward_mean: f64,
    pub reward_sem: f64,
    /// deaths as the reference counts them: explosions before the last step
    pub death_rate: f64,
    pub death_sem: f64,
    /// every explosion, the last step included
    pub death_all: f64,
    /// mean steps as the reference counts them (T after an all-rejected stop)
    pub timesteps_mean: f64,
    /// mean rejections, with the reference's phantom ones after an all-rejected stop
    pub rejections_mean: f64,
    /// episodes that stopped because every arm was rejected
    pub all_rejected: usize,
    pub harm_evals: usize,
    pub n_episodes: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Fig1Result {
    pub experiment: &'static str,
    /// "kernel" (built-in) or the engine that evaluated the guardrail
    pub guardrail_evaluation: String,
    pub seed: u64,
    pub episodes_per_config: usize,
    pub explosion_threshold: f64,
    pub beta: f64,
    pub ties: TieRule,
    pub rows: Vec<Fig1Row>,
    pub wall_seconds: f64,
    pub episodes_per_second: f64,
    pub threads: usize,
}

/// The configurations of Figure 1, in the reference's order.
pub fn fig1_configs(thresholds: &[f64], alphas: &[f64], ties: TieRule) -> Vec<(f64, Guardrail)> {
    let mut v = Vec::new();
    for &c in thresholds {
        for g in [
            Guardrail::None,
            Guardrail::Oracle,
            Guardrail::Posterior,
            Guardrail::Iid,
        ] {
            v.push((c, g));
        }
        for &alpha in alphas {
            v.push((c, Guardrail::NonIid { alpha, ties }));
        }
    }
    v
}

/// Compact per-episode record.
#[derive(Debug, Clone, Copy)]
struct Ep {
    reward: f64,
    steps: u32,
    rejections: u32,
    evals: u32,
    death: bool,
    exploded: bool,
    all_rejected: bool,
}

pub fn fig1(s: &Fig1Settings, tick: &(dyn Fn(usize) + Sync)) -> Result<Fig1Result> {
    fig1_with(s, None, tick)
}

impl From<&super::EpisodeResult> for Ep {
    fn from(r: &super::EpisodeResult) -> Ep {
        Ep {
            reward: r.reward,
            steps: r.steps as u32,
            rejections: r.rejections as u32,
            evals: r.evals as u32,
            death: r.death,
            exploded: r.exploded,
            all_rejected: r.all_rejected,
        }
    }
}

/// Figure 1; with `engine`, the guardrail is evaluated through the audit's
/// engine, batched across the episodes of a configuration
/// (`sim::batched`), instead of by the built-in kernel. Same results.
pub fn fig1_with(
    s: &Fig1Settings,
    engine: Option<&dyn crate::engine::Engine>,
    tick: &(dyn Fn(usize) + Sync),
) -> Result<Fig1Result> {
    check_episodes(s.episodes)?;
    check_alphas(&s.alphas)?;
    if s.thresholds.is_empty() {
        return Err(Error::Setting("at least one threshold C is needed".into()));
    }
    for &c in &s.thresholds {
        super::validate_guardrail(&Guardrail::None, c)?;
    }
    if !s.beta.is_finite() {
        return Err(Error::Setting(format!("β must be finite, got {}", s.beta)));
    }
    let configs = fig1_configs(&s.thresholds, &s.alphas, s.ties);
    let spec = s.tables.spec;
    let agent = AgentSpec {
        kind: AgentKind::Boltzmann,
        beta: s.beta,
    };
    let started = Instant::now();
    let per = if let Some(engine) = engine {
        let mut per = Vec::with_capacity(configs.len());
        let chunk = 2000;
        for (c, &(threshold, g)) in configs.iter().enumerate() {
            let mut eps: Vec<Ep> = Vec::with_capacity(s.episodes);
            let mut start = 0;
            while start < s.episodes {
                let end = (start + chunk).min(s.episodes);
                let rs = super::batched::run_batched(
                    engine,
                    &s.tables,
                    &agent,
                    &g,
                    threshold,
                    true,
                    s.seed,
                    1 + c as u64,
                    start..end,
                )?;
                eps.extend(rs.iter().map(|r| {
                    let mut ep = Ep::from(r);
                    if r.all_rejected {
                        ep.steps = spec.steps as u32;
                    }
                    ep
                }));
                start = end;
                tick(c * s.episodes + end);
            }
            per.push(eps);
        }
        per
    } else {
        par_episodes(&spec, configs.len(), s.episodes, tick, |b, c, e| {
            let (threshold, g) = configs[c];
            let (mut ir, mut ar) = episode_rngs(s.seed, 1 + c as u64, e as u64);
            let inst = Instance::draw(&spec, &mut ir);
            let r = run_episode(
                &s.tables, &inst, &agent, &g, threshold, true, b, &mut ar, false,
            );
            Ep {
                reward: r.reward,
                steps: if r.all_rejected {
                    spec.steps as u32
                } else {
                    r.steps as u32
                },
                rejections: r.rejections as u32,
                evals: r.evals as u32,
                death: r.death,
                exploded: r.exploded,
                all_rejected: r.all_rejected,
            }
        })
    };
    let wall = started.elapsed().as_secs_f64();
    let rows = configs
        .iter()
        .zip(&per)
        .map(|(&(threshold, g), eps)| {
            let n = eps.len() as f64;
            let (rm, rs) = mean_sem(eps.iter().map(|e| e.reward));
            let (dm, ds) = mean_sem(eps.iter().map(|e| e.death as u8 as f64));
            Fig1Row {
                threshold,
                guardrail: match g {
                    Guardrail::Oracle => "cheating".into(),
                    g => g.name().into(),
                },
                alpha: g.alpha(),
                reward_mean: rm,
                reward_sem: rs,
                death_rate: dm,
                death_sem: ds,
                death_all: eps.iter().filter(|e| e.exploded).count() as f64 / n,
                timesteps_mean: eps.iter().map(|e| e.steps as f64).sum::<f64>() / n,
                rejections_mean: eps.iter().map(|e| e.rejections as f64).sum::<f64>() / n,
                all_rejected: eps.iter().filter(|e| e.all_rejected).count(),
                harm_evals: eps.iter().map(|e| e.evals as usize).sum(),
                n_episodes: eps.len(),
            }
        })
        .collect();
    Ok(Fig1Result {
        experiment: "fig1",
        guardrail_evaluation: match engine {
            Some(e) => format!("engine: {}", e.info()),
            None => "kernel".into(),
        },
        seed: s.seed,
        episodes_per_config: s.episodes,
        explosion_threshold: s.tables.theta,
        beta: s.beta,
        ties: s.ties,
        rows,
        wall_seconds: wall,
        episodes_per_second: (configs.len() * s.episodes) as f64 / wall.max(1e-9),
        threads: rayon::current_num_threads(),
    })
}

// ---------------------------------------------------------------- Figure 2

#[derive(Debug, Clone)]
pub struct Fig2Settings {
    pub tables: Tables,
    pub seed: u64,
    pub episodes: usize,
    pub alphas: Vec<f64>,
    pub ties: TieRule,
}

#[derive(Debug, Clone, Serialize)]
pub struct Fig2Row {
    pub alpha: f64,
    /// per-episode fraction of steps with non-iid estimate ≥ true harm of the
    /// (uniformly) chosen arm, averaged over episodes (the reference's measure)
    pub overestimate_frequency_mean: f64,
    pub overestimate_frequency_sem: f64,
    /// fraction of episodes in which every step was covered
    pub stream_coverage: f64,
    pub stream_coverage_sem: f64,
    /// the guarantee: `max(0, 1 − α/P(h*))`, `P(h*) = 1/H`
    pub floor: f64,
    pub fifty_fifty_count: usize,
    pub fifty_fifty_mean: f64,
    /// naive SEM over all estimates (as the reference reports it)
    pub fifty_fifty_sem: f64,
    /// SEM with episodes as clusters (estimates within an episode are
    /// strongly correlated: the same arms, step after step)
    pub fifty_fifty_sem_episodes: f64,
    pub fifty_fifty_frac_ge_half: f64,
    pub fifty_fifty_quartiles: [f64; 3],
    /// histogram of the 50/50 estimates: (value, count), ascending
    pub fifty_fifty_distribution: Vec<(f64, usize)>,
    pub n_episodes: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Fig2Result {
    pub experiment: &'static str,
    pub seed: u64,
    pub episodes_per_alpha: usize,
    pub explosion_threshold: f64,
    pub ties: TieRule,
    pub rows: Vec<Fig2Row>,
    pub wall_seconds: f64,
    pub episodes_per_second: f64,
    pub threads: usize,
}

fn quantile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    // linear interpolation (numpy's default)
    let x = p * (sorted.len() - 1) as f64;
    let (lo, hi) = (x.floor() as usize, x.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (x - lo as f64)
}

pub fn fig2(s: &Fig2Settings, tick: &(dyn Fn(usize) + Sync)) -> Result<Fig2Result> {
    check_episodes(s.episodes)?;
    check_alphas(&s.alphas)?;
    let spec = s.tables.spec;
    let tables = &s.tables;
    let h = spec.n_hypotheses() as f64;
    let started = Instant::now();
    let per = par_episodes(&spec, s.alphas.len(), s.episodes, tick, |b, c, e| {
        let alpha = s.alphas[c];
        let (mut ir, mut ar) = episode_rngs(s.seed, 1000 + c as u64, e as u64);
        let inst = Instance::draw(&spec, &mut ir);
        b.reset();
        let fifty: Vec<usize> = (0..spec.n_arm)
            .filter(|&a| inst.mean(&spec, a) as f64 == tables.theta)
            .collect();
        let mut covered = 0usize;
        let mut ff = Vec::new();
        for t in 0..spec.steps {
            let a = rand::Rng::random_range(&mut ar, 0..spec.n_arm);
            let m = b.plausible(alpha, s.ties);
            let est = b.members_max_dot(&inst, a, &m).map_or(0.0, |v| tables.q[v]);
            if est >= tables.q[inst.mean(&spec, a)] {
                covered += 1;
            }
            for &f in &fifty {
                ff.push(b.members_max_dot(&inst, f, &m).map_or(0.0, |v| tables.q[v]));
            }
            let z: f64 = rand::Rng::sample(&mut ar, rand_distr::StandardNormal);
            let y = inst.mean(&spec, a) as f64 + spec.sigma * z;
            if t + 1 < spec.steps {
                b.update(tables, &inst, a, y);
            }
        }
        (covered, ff)
    });
    let wall = started.elapsed().as_secs_f64();
    let steps = spec.steps as f64;
    let rows = s
        .alphas
        .iter()
        .zip(&per)
        .map(|(&alpha, eps)| {
            let (om, os) = mean_sem(eps.iter().map(|(c, _)| *c as f64 / steps));
            let (sm, ss) = mean_sem(eps.iter().map(|(c, _)| (*c == spec.steps) as u8 as f64));
            let mut ff: Vec<f64> = eps.iter().flat_map(|(_, f)| f.iter().copied()).collect();
            ff.sort_by(|a, b| a.total_cmp(b));
            let (fm, fs) = mean_sem(ff.iter().copied());
            let fc = cluster_sem(eps.iter().map(|(_, f)| f.as_slice()), fm);
            let mut dist: Vec<(f64, usize)> = Vec::new();
            for &v in &ff {
                match dist.last_mut() {
                    Some((x, n)) if *x == v => *n += 1,
                    _ => dist.push((v, 1)),
                }
            }
            Fig2Row {
                alpha,
                overestimate_frequency_mean: om,
                overestimate_frequency_sem: os,
                stream_coverage: sm,
                stream_coverage_sem: ss,
                floor: (1.0 - alpha * h).max(0.0),
                fifty_fifty_count: ff.len(),
                fifty_fifty_mean: fm,
                fifty_fifty_sem: fs,
                fifty_fifty_sem_episodes: fc,
                fifty_fifty_frac_ge_half: ff.iter().filter(|&&v| v >= 0.5).count() as f64
                    / ff.len().max(1) as f64,
                fifty_fifty_quartiles: [
                    quantile(&ff, 0.25),
                    quantile(&ff, 0.5),
                    quantile(&ff, 0.75),
                ],
                fifty_fifty_distribution: dist,
                n_episodes: eps.len(),
            }
        })
        .collect();
    Ok(Fig2Result {
        experiment: "fig2",
        seed: s.seed,
        episodes_per_alpha: s.episodes,
        explosion_threshold: s.tables.theta,
        ties: s.ties,
        rows,
        wall_seconds: wall,
        episodes_per_second: (s.alphas.len() * s.episodes) as f64 / wall.max(1e-9),
        threads: rayon::current_num_threads(),
    })
}

// ---------------------------------------------------------------- coverage

#[derive(Debug, Clone)]
pub struct CoverageSettings {
    pub tables: Tables,
    pub seed: u64,
    pub episodes: usize,
    pub alphas: Vec<f64>,
    pub ties: TieRule,
    pub agent: AgentSpec,
}

#[derive(Debug, Clone, Serialize)]
pub struct CoverageRow {
    /// posterior_predictive, cautious_theory, plausible_set, ville_max, ville_sum
    pub estimator: String,
    pub alpha: Option<f64>,
    /// the implied δ = α / p_min (p_min = 1/H)
    pub delta: Option<f64>,
    /// fraction of (step, candidate) pairs with estimate ≥ oracle harm
    pub per_step: f64,
    /// fraction of streams in which every (step, candidate) was covered
    pub per_stream: f64,
    pub per_stream_sem: f64,
    /// the promised per-stream level `1 − δ` (clipped at 0); none for the
    /// estimators without a guarantee
    pub promised: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CoverageResult {
    pub experiment: &'static str,
    pub seed: u64,
    pub streams: usize,
    pub steps_per_stream: usize,
    pub agent: AgentKind,
    pub explosion_threshold: f64,
    pub ties: TieRule,
    pub rows: Vec<CoverageRow>,
    pub wall_seconds: f64,
    pub episodes_per_second: f64,
    pub threads: usize,
}

/// Estimator columns of the coverage study: 2 + 3 per α.
fn coverage_columns(alphas: &[f64]) -> Vec<(&'static str, Option<usize>)> {
    let mut v = vec![("posterior_predictive", None), ("cautious_theory", None)];
    for name in ["plausible_set", "ville_max", "ville_sum"] {
        v.extend((0..alphas.len()).map(|i| (name, Some(i))));
    }
    v
}

pub fn coverage(s: &CoverageSettings, tick: &(dyn Fn(usize) + Sync)) -> Result<CoverageResult> {
    check_episodes(s.episodes)?;
    check_alphas(&s.alphas)?;
    let spec = s.tables.spec;
    let tables = &s.tables;
    let na = s.alphas.len();
    let cols = coverage_columns(&s.alphas);
    let nc = cols.len();
    let started = Instant::now();
    let per = par_episodes(&spec, 1, s.episodes, tick, |b, _c, e| {
        let (mut ir, mut ar) = episode_rngs(s.seed, 5000, e as u64);
        let inst = Instance::draw(&spec, &mut ir);
        b.reset();
        // per column: covered (step, candidate) pairs
        let mut covered = vec![0u32; nc];
        let mut mean = vec![0.0; spec.d];
        let mut logits = vec![0.0; spec.n_arm];
        let none = vec![false; spec.n_arm];
        for t in 0..spec.steps {
            let members: Vec<_> = s.alphas.iter().map(|&a| b.plausible(a, s.ties)).collect();
            let wsum = b.weight_sum();
            for a in 0..spec.n_arm {
                let oracle = tables.q[inst.mean(&spec, a)];
                let pp = b.predictive(tables, &inst, a);
                let (ct, ln_max) = b.cautious(tables, &inst, a);
                let max_pq = ln_max.exp() / wsum;
                covered[0] += (pp >= oracle) as u32;
                covered[1] += (ct >= oracle) as u32;
                for (i, m) in members.iter().enumerate() {
                    let alpha = s.alphas[i];
                    let ps = b.members_max_dot(&inst, a, m).map_or(0.0, |v| tables.q[v]);
                    covered[2 + i] += (ps >= oracle) as u32;
                    covered[2 + na + i] += ((max_pq / alpha).min(1.0) >= oracle) as u32;
                    covered[2 + 2 * na + i] += ((pp / alpha).min(1.0) >= oracle) as u32;
                }
            }
            let action = match s.agent.kind {
                AgentKind::Uniform => rand::Rng::random_range(&mut ar, 0..spec.n_arm),
                AgentKind::Boltzmann => {
                    b.posterior_mean(&mut mean);
                    for (a, l) in logits.iter_mut().enumerate() {
                        let x = inst.arm(&spec, a);
                        let r: f64 = x.iter().zip(&mean).map(|(&x, &m)| x as f64 * m).sum();
                        *l = s.agent.beta * r;
                    }
                    super::sample_action(AgentKind::Boltzmann, &logits, &none, &mut ar)
                }
            };
            let z: f64 = rand::Rng::sample(&mut ar, rand_distr::StandardNormal);
            let y = inst.mean(&spec, action) as f64 + spec.sigma * z;
            if t + 1 < spec.steps {
                b.update(tables, &inst, action, y);
            }
        }
        covered
    })
    .pop()
    .expect("one configuration");
    let wall = started.elapsed().as_secs_f64();
    let pairs = (spec.steps * spec.n_arm) as u32;
    let h = spec.n_hypotheses() as f64;
    let rows = cols
        .iter()
        .enumerate()
        .map(|(ci, &(name, ai))| {
            let total: u64 = per.iter().map(|c| c[ci] as u64).sum();
            let (sm, ss) = mean_sem(per.iter().map(|c| (c[ci] == pairs) as u8 as f64));
            let alpha = ai.map(|i| s.alphas[i]);
            CoverageRow {
                estimator: name.into(),
                alpha,
                delta: alpha.map(|a| a * h),
                per_step: total as f64 / (per.len() as f64 * pairs as f64),
                per_stream: sm,
                per_stream_sem: ss,
                promised: alpha.map(|a| (1.0 - a * h).max(0.0)),
            }
        })
        .collect();
    Ok(CoverageResult {
        experiment: "coverage",
        seed: s.seed,
        streams: s.episodes,
        steps_per_stream: spec.steps,
        agent: s.agent.kind,
        explosion_threshold: s.tables.theta,
        ties: s.ties,
        rows,
        wall_seconds: wall,
        episodes_per_second: s.episodes as f64 / wall.max(1e-9),
        threads: rayon::current_num_threads(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::BanditSpec;

    #[test]
    fn coverage_keeps_its_promises_and_orders_the_estimators() {
        let s = CoverageSettings {
            tables: Tables::new(BanditSpec::default(), 4.0).unwrap(),
            seed: 3,
            episodes: 300,
            alphas: vec![1e-5, 1e-4, 0.01, 1.0],
            ties: TieRule::Inclusive,
            agent: AgentSpec {
                kind: AgentKind::Uniform,
                beta: 0.5,
            },
        };
        let r = coverage(&s, &|_| {}).unwrap();
        let row = |name: &str, alpha: Option<f64>| {
            r.rows
                .iter()
                .find(|x| x.estimator == name && x.alpha == alpha)
                .unwrap()
        };
        for a in [1e-5, 1e-4] {
            for name in ["plausible_set", "ville_max", "ville_sum"] {
                let x = row(name, Some(a));
                let promised = x.promised.unwrap();
                assert!(promised > 0.89);
                // 4 SE below the promise would be a violation
                let se = (promised * (1.0 - promised) / 300.0).sqrt();
                assert!(x.per_stream >= promised - 4.0 * se, "{name} α={a}: {x:?}");
            }
        }
        // Σ p·q ≥ max p·q, so the sum form covers at least as often
        for a in [1e-5, 1e-4, 0.01, 1.0] {
            assert!(row("ville_sum", Some(a)).per_step >= row("ville_max", Some(a)).per_step);
        }
        // a larger α gives a smaller plausible set: coverage cannot increase
        let ps: Vec<f64> = [1e-5, 1e-4, 0.01, 1.0]
            .iter()
            .map(|&a| row("plausible_set", Some(a)).per_step)
            .collect();
        assert!(ps.windows(2).all(|w| w[0] >= w[1]), "{ps:?}");
        // the posterior predictive is no bound: it misses often
        assert!(row("posterior_predictive", None).per_step < 0.8);
        assert_eq!(row("posterior_predictive", None).promised, None);
    }

    #[test]
    fn fig2_floor_and_tie_rules() {
        let mk = |ties| Fig2Settings {
            tables: Tables::new(BanditSpec::default(), 4.0).unwrap(),
            seed: 5,
            episodes: 150,
            alphas: vec![1e-4, 1.0],
            ties,
        };
        let inc = fig2(&mk(TieRule::Inclusive), &|_| {}).unwrap();
        let rf = fig2(&mk(TieRule::Reference), &|_| {}).unwrap();
        // α = 1e-4 < 1/H: no tie group is ever split at the prior, the rules agree
        assert_eq!(
            inc.rows[0].overestimate_frequency_mean,
            rf.rows[0].overestimate_frequency_mean
        );
        assert!((inc.rows[0].floor - (1.0 - 1e-4 * 1024.0)).abs() < 1e-12);
        assert_eq!(inc.rows[1].floor, 0.0);
        // at α = 1 SPEC's set keeps whole tie groups: it covers more often
        assert!(inc.rows[1].overestimate_frequency_mean > rf.rows[1].overestimate_frequency_mean);
        // the 50/50 estimates are harm values of integer means: q(4) = 0.5 is one of them
        assert!(rf.rows[1]
            .fifty_fifty_distribution
            .iter()
            .any(|(v, _)| (v - 0.5).abs() < 1e-12));
    }
}
