//! `gpubound experiment`: Figures 1 and 2 and the coverage study.

use std::fmt::Write as _;
use std::path::Path;

use crate::cli::{exit, ExperimentCommand, ExperimentCommon};
use crate::commands::simulate::{tables_for, validate_beta};
use crate::sim::experiments::{self, PAPER_ALPHAS, PAPER_THRESHOLDS};
use crate::sim::{plot, AgentSpec, TieRule};
use crate::{progress, Error};

fn alphas(c: &ExperimentCommon) -> Vec<f64> {
    if c.alphas.is_empty() {
        PAPER_ALPHAS.to_vec()
    } else {
        c.alphas.clone()
    }
}

fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<(), Error> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::Report(e.to_string()))?;
    std::fs::write(path, text + "\n").map_err(|e| Error::io(path, e))
}

fn pm(m: f64, s: f64, digits: usize) -> String {
    format!("{m:.digits$} ± {s:.digits$}")
}

pub fn run(cmd: ExperimentCommand) -> anyhow::Result<u8> {
    match cmd {
        ExperimentCommand::Fig1(a) => {
            let c = &a.common;
            let tables = tables_for(&c.bandit)?;
            validate_beta(a.beta)?;
            let s = experiments::Fig1Settings {
                tables,
                seed: c.bandit.seed,
                episodes: c.episodes,
                thresholds: if a.thresholds.is_empty() {
                    PAPER_THRESHOLDS.to_vec()
                } else {
                    a.thresholds.clone()
                },
                alphas: alphas(c),
                ties: c.ties.unwrap_or(TieRule::Inclusive),
                beta: a.beta,
            };
            let n_configs = s.thresholds.len() * (4 + s.alphas.len());
            let bar = progress::bar(
                Some((n_configs * c.episodes) as u64),
                c.bandit.quiet,
                "fig1 episodes",
            );
            let engine = match a.backend {
                Some(choice) => {
                    if s.ties == TieRule::Reference {
                        return Err(Error::Setting(
                            "--backend computes SPEC's tie-inclusive plausible set; it cannot be combined with --ties reference".into(),
                        )
                        .into());
                    }
                    Some(crate::engine::select(choice)?)
                }
                None => None,
            };
            let r = experiments::fig1_with(&s, engine.as_deref(), &|d| bar.set_position(d as u64))?;
            bar.finish_and_clear();
            if !c.bandit.quiet {
                print!("{}", fig1_table(&r));
            }
            if let Some(p) = &c.json {
                write_json(p, &r)?;
            }
            if let Some(p) = &a.svg {
                plot::fig1_svg(&r, p)?;
            }
        }
        ExperimentCommand::Fig2(a) => {
            let c = &a.common;
            let tables = tables_for(&c.bandit)?;
            let s = experiments::Fig2Settings {
                tables,
                seed: c.bandit.seed,
                episodes: c.episodes,
                alphas: alphas(c),
                ties: c.ties.unwrap_or(TieRule::Inclusive),
            };
            let bar = progress::bar(
                Some((s.alphas.len() * c.episodes) as u64),
                c.bandit.quiet,
                "fig2 episodes",
            );
            let r = experiments::fig2(&s, &|d| bar.set_position(d as u64))?;
            bar.finish_and_clear();
            if !c.bandit.quiet {
                print!("{}", fig2_table(&r));
            }
            if let Some(p) = &c.json {
                write_json(p, &r)?;
            }
            if let Some(p) = &a.svg {
                plot::fig2_svg(&r, p)?;
            }
        }
        ExperimentCommand::Coverage(a) => {
            let c = &a.common;
            let tables = tables_for(&c.bandit)?;
            validate_beta(a.beta)?;
            let s = experiments::CoverageSettings {
                tables,
                seed: c.bandit.seed,
                episodes: c.episodes,
                alphas: alphas(c),
                ties: c.ties.unwrap_or(TieRule::Inclusive),
                agent: AgentSpec {
                    kind: a.agent,
                    beta: a.beta,
                },
            };
            let bar = progress::bar(Some(c.episodes as u64), c.bandit.quiet, "coverage streams");
            let r = experiments::coverage(&s, &|d| bar.set_position(d as u64))?;
            bar.finish_and_clear();
            if !c.bandit.quiet {
                print!("{}", coverage_table(&r));
            }
            if let Some(p) = &c.json {
                write_json(p, &r)?;
            }
        }
    }
    Ok(exit::OK)
}

pub fn fig1_table(r: &experiments::Fig1Result) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Figure 1: Boltzmann agent (β = {}), {} episodes per configuration, θ = {}, ties {:?}, seed {}, guardrail by {}",
        r.beta, r.episodes_per_config, r.explosion_threshold, r.ties, r.seed, r.guardrail_evaluation
    );
    let _ = writeln!(
        s,
        "± = one SEM; death = explosion before the last step (reference counting); death(all) counts every explosion\n"
    );
    let _ = writeln!(
        s,
        "| C | guardrail | α | reward ± SEM | death rate ± SEM | death(all) | timesteps | rejections | allrej | harm evals |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|");
    for row in &r.rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {:.3} | {:.1} | {:.1} | {} | {} |",
            row.threshold,
            row.guardrail,
            row.alpha.map(|a| a.to_string()).unwrap_or_default(),
            pm(row.reward_mean, row.reward_sem, 2),
            pm(row.death_rate, row.death_sem, 3),
            row.death_all,
            row.timesteps_mean,
            row.rejections_mean,
            row.all_rejected,
            row.harm_evals
        );
    }
    let _ = writeln!(
        s,
        "\n{} episodes in {:.2} s on {} threads ({:.0} episodes/s)",
        r.rows.iter().map(|x| x.n_episodes).sum::<usize>(),
        r.wall_seconds,
        r.threads,
        r.episodes_per_second
    );
    s
}

pub fn fig2_table(r: &experiments::Fig2Result) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Figure 2 (tightness): uniform agent, {} episodes per α, θ = {}, ties {:?}, seed {}",
        r.episodes_per_alpha, r.explosion_threshold, r.ties, r.seed
    );
    let _ = writeln!(
        s,
        "overestimate = non-iid estimate ≥ true harm of the chosen arm (per-episode frequency, averaged); \
         floor = max(0, 1 − α·H), the guaranteed per-stream coverage; 50/50 = estimates for arms with true harm 0.5\n"
    );
    let _ = writeln!(
        s,
        "| α | overestimate freq ± SEM | whole-stream coverage ± SEM | floor | #50/50 | mean 50/50 estimate ± SEM (± episode-cluster SEM) | frac ≥ 0.5 | quartiles | distribution of 50/50 estimates |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
    for row in &r.rows {
        let q = row.fifty_fifty_quartiles;
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.4} | {} | {} ({:.4}) | {:.3} | {:.3}, {:.3}, {:.3} | {} |",
            row.alpha,
            pm(
                row.overestimate_frequency_mean,
                row.overestimate_frequency_sem,
                4
            ),
            pm(row.stream_coverage, row.stream_coverage_sem, 4),
            row.floor,
            row.fifty_fifty_count,
            pm(row.fifty_fifty_mean, row.fifty_fifty_sem, 4),
            row.fifty_fifty_sem_episodes,
            row.fifty_fifty_frac_ge_half,
            q[0],
            q[1],
            q[2],
            distribution(&row.fifty_fifty_distribution, row.fifty_fifty_count)
        );
    }
    let _ = writeln!(
        s,
        "\n{} episodes in {:.2} s on {} threads ({:.0} episodes/s)",
        r.rows.iter().map(|x| x.n_episodes).sum::<usize>(),
        r.wall_seconds,
        r.threads,
        r.episodes_per_second
    );
    s
}

/// `value: share` for the values that hold at least 1% of the estimates.
fn distribution(dist: &[(f64, usize)], n: usize) -> String {
    let mut parts: Vec<String> = dist
        .iter()
        .filter(|(_, c)| *c * 100 >= n.max(1))
        .map(|(v, c)| format!("{v:.3}: {:.0}%", 100.0 * *c as f64 / n as f64))
        .collect();
    let rest: usize = dist
        .iter()
        .filter(|(_, c)| *c * 100 < n.max(1))
        .map(|(_, c)| c)
        .sum();
    if rest > 0 {
        parts.push(format!("other: {:.1}%", 100.0 * rest as f64 / n as f64));
    }
    parts.join(", ")
}

pub fn coverage_table(r: &experiments::CoverageResult) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Coverage: {} streams of {} steps ({:?} agent, no explosions), θ = {}, ties {:?}, seed {}",
        r.streams, r.steps_per_stream, r.agent, r.explosion_threshold, r.ties, r.seed
    );
    let _ = writeln!(
        s,
        "covered = estimate ≥ oracle harm q(h*), for every candidate at every step; promised = 1 − δ per stream, δ = α/p_min\n"
    );
    let _ = writeln!(
        s,
        "| estimator | α | δ | per step | whole stream ± SEM | promised (stream) |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    for row in &r.rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.4} | {} | {} |",
            row.estimator,
            row.alpha.map(|a| a.to_string()).unwrap_or_default(),
            row.delta.map(|d| format!("{d:.4}")).unwrap_or_default(),
            row.per_step,
            pm(row.per_stream, row.per_stream_sem, 4),
            row.promised
                .map(|p| format!("≥ {p:.4}"))
                .unwrap_or_else(|| "none".into())
        );
    }
    let _ = writeln!(
        s,
        "\n{} streams in {:.2} s on {} threads ({:.0} streams/s)",
        r.streams, r.wall_seconds, r.threads, r.episodes_per_second
    );
    s
}
