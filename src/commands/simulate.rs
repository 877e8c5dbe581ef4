//! `gpubound simulate`: exploding-bandit episodes as an action log.

use std::io::Write;
use std::time::Instant;

use anyhow::Context;
use rayon::prelude::*;

use crate::cli::{exit, BanditArgs, SimulateArgs};
use crate::report::Destination;
use crate::sim::{self, AgentKind, AgentSpec, Belief, Guardrail, GuardrailKind, Instance, Tables};
use crate::{progress, Error};

/// Episodes simulated per parallel batch (bounds memory for long runs).
const CHUNK: usize = 4096;

/// The bandit spec and the tables for a run whose grid is enumerable (the
/// experiments keep the posterior of every hypothesis).
pub fn tables_for(b: &BanditArgs) -> Result<Tables, Error> {
    let tables = any_tables_for(b)?;
    tables.spec.require_enumerable("an experiment", "")?;
    Ok(tables)
}

/// The bandit spec and the tables for a run on a grid of any size.
pub fn any_tables_for(b: &BanditArgs) -> Result<Tables, Error> {
    let spec = sim::BanditSpec {
        k: b.k,
        d: b.dim,
        n_arm: b.arms,
        sigma: b.sigma,
        steps: b.steps,
    };
    spec.validate()?;
    let theta = sim::threshold_for(&spec, b.seed, b.explosion_threshold)?;
    Tables::new(spec, theta)
}

pub fn guardrail_for(kind: GuardrailKind, alpha: f64, ties: sim::TieRule) -> Guardrail {
    match kind {
        GuardrailKind::None => Guardrail::None,
        GuardrailKind::Oracle => Guardrail::Oracle,
        GuardrailKind::PosteriorPredictive => Guardrail::Posterior,
        GuardrailKind::CautiousTheory => Guardrail::Iid,
        GuardrailKind::PlausibleSet => Guardrail::NonIid { alpha, ties },
    }
}

pub fn validate_beta(beta: f64) -> Result<(), Error> {
    if !beta.is_finite() {
        return Err(Error::Setting(format!("β must be finite, got {beta}")));
    }
    Ok(())
}

pub fn run(args: SimulateArgs) -> anyhow::Result<u8> {
    let tables = any_tables_for(&args.bandit)?;
    if args.episodes == 0 {
        return Err(Error::Setting("--episodes must be at least 1".into()).into());
    }
    validate_beta(args.beta)?;
    let guardrail = guardrail_for(args.guardrail, args.alpha, args.ties);
    sim::validate_guardrail(&guardrail, args.threshold)?;
    let agent = AgentSpec {
        kind: args.agent,
        beta: args.beta,
    };
    let seed = args.bandit.seed;
    let spec = tables.spec;
    // A grid too large to enumerate: the true hypothesis is drawn coordinate
    // by coordinate anyway (`Instance::draw`); only an agent and a guardrail
    // that need no posterior can run.
    let track = agent.kind == AgentKind::Boltzmann
        || !matches!(guardrail, Guardrail::None | Guardrail::Oracle);
    if track {
        spec.require_enumerable(
            "the Boltzmann agent or a posterior guardrail",
            "; use --agent uniform with --guardrail none or oracle",
        )?;
    }

    let dest = Destination::new(args.out.as_deref())?;
    let bar = progress::bar(Some(args.episodes as u64), args.bandit.quiet, "simulating");
    let started = Instant::now();
    let (mut reward, mut deaths, mut exploded, mut all_rej, mut steps) = (0.0, 0usize, 0, 0, 0);
    {
        let mut out = dest.writer()?;
        let io = |e| Error::io("<log>", e);
        writeln!(out, "{}", sim::log::model_line(&tables)).map_err(io)?;
        let mut start = 0;
        while start < args.episodes {
            let end = (start + CHUNK).min(args.episodes);
            let results: Vec<(Instance, sim::EpisodeResult)> = (start..end)
                .into_par_iter()
                .map_init(
                    || {
                        if track {
                            Belief::new(&spec)
                        } else {
                            Belief::untracked(&spec)
                        }
                    },
                    |belief, e| {
                        let (mut irng, mut arng) = sim::episode_rngs(seed, 0, e as u64);
                        let inst = Instance::draw(&spec, &mut irng);
                        let res = sim::run_episode(
                            &tables,
                            &inst,
                            &agent,
                            &guardrail,
                            args.threshold,
                            !args.no_explosions,
                            belief,
                            &mut arng,
                            true,
                        );
                        (inst, res)
                    },
                )
                .collect();
            for (i, (inst, res)) in results.iter().enumerate() {
                sim::log::write_episode(
                    &mut out,
                    &tables,
                    &format!("ep-{}", start + i + 1),
                    inst,
                    res,
                )
                .map_err(io)?;
                reward += res.reward;
                deaths += res.death as usize;
                exploded += res.exploded as usize;
                all_rej += res.all_rejected as usize;
                steps += res.steps;
            }
            bar.set_position(end as u64);
            start = end;
        }
        out.flush().map_err(io)?;
    }
    bar.finish_and_clear();
    dest.commit().context("writing the log")?;
    let secs = started.elapsed().as_secs_f64();
    if !args.bandit.quiet {
        let n = args.episodes as f64;
        eprintln!(
            "simulated {} episodes ({} steps) in {:.2} s ({:.0} episodes/s): θ = {}, {} agent, guardrail {}{}; \
             mean reward {:.3}, deaths {:.3} (explosions {:.3}), all-rejected stops {}",
            args.episodes,
            steps,
            secs,
            n / secs.max(1e-9),
            tables.theta,
            match agent.kind {
                AgentKind::Boltzmann => "Boltzmann",
                AgentKind::Uniform => "uniform",
            },
            guardrail.name(),
            match guardrail {
                Guardrail::None => String::new(),
                Guardrail::NonIid { alpha, ties } =>
                    format!(" (C = {}, α = {alpha}, ties {ties:?})", args.threshold),
                _ => format!(" (C = {})", args.threshold),
            },
            reward / n,
            deaths as f64 / n,
            exploded as f64 / n,
            all_rej,
        );
    }
    Ok(exit::OK)
}
