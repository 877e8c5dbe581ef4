//! `gpubound sampler train` and `gpubound sampler eval`.

use std::time::Instant;

use anyhow::Context as _;
use rayon::prelude::*;

use crate::cli::{exit, SamplerCommand, SamplerEvalArgs, SamplerTrainArgs};
use crate::log::{EventSource, LogEvent};
use crate::model::HypothesisSpace;
use crate::sampler::context::Context;
use crate::sampler::eval::{policy_tv, TvSummary};
use crate::sampler::policy::{Policy, PolicyConfig};
use crate::sampler::train::{TrainConfig, Trainer};
use crate::sampler::{checkpoint, plot, SamplerModel};
use crate::{progress, Error};

pub fn run(cmd: SamplerCommand) -> anyhow::Result<u8> {
    match cmd {
        SamplerCommand::Train(a) => train(a),
        SamplerCommand::Eval(a) => eval(a),
    }
}

fn train(a: SamplerTrainArgs) -> anyhow::Result<u8> {
    let model = SamplerModel::from_file(&a.model)?;
    if a.checkpoint_every == 0 {
        return Err(Error::Setting("--checkpoint-every must be at least 1".into()).into());
    }
    if let Some(s) = a.max_seconds {
        if s.is_nan() || s <= 0.0 {
            return Err(Error::Setting(format!("--max-seconds must be > 0, got {s}")).into());
        }
    }
    let mut trainer = if a.resume {
        if !a.out.exists() {
            return Err(Error::Setting(format!(
                "--resume: there is no {} to resume",
                a.out.display()
            ))
            .into());
        }
        checkpoint::load(&a.out, Some(&model))?
    } else {
        let config = PolicyConfig {
            hidden_ctx: a.hidden_ctx,
            embed: a.embed,
            hidden: a.hidden,
            residual: a.residual,
        };
        let train = TrainConfig {
            contexts: a.contexts,
            samples: a.samples,
            learning_rate: a.learning_rate,
            epsilon: a.epsilon,
            max_t: a.max_observations,
            arms: a.arms,
            ..TrainConfig::default()
        };
        Trainer::new(Policy::new(model, config, a.seed)?, train, a.seed)?
    };
    let start_step = trainer.step;
    let todo = a.steps.saturating_sub(start_step);
    let bar = progress::bar(Some(todo), a.quiet, "training");
    let started = Instant::now();
    let mut recent = Vec::new();
    while trainer.step < a.steps {
        if a.max_seconds
            .is_some_and(|s| started.elapsed().as_secs_f64() >= s)
        {
            break;
        }
        let loss = trainer.train_step()?;
        recent.push(loss);
        if recent.len() > 100 {
            recent.remove(0);
        }
        bar.inc(1);
        if !bar.is_hidden() && trainer.step % 10 == 0 {
            let mean = recent.iter().sum::<f64>() / recent.len() as f64;
            bar.set_message(format!("loss {mean:.3}"));
        }
        if trainer.step % a.checkpoint_every == 0 {
            checkpoint::save(&trainer, &a.out)?;
        }
    }
    bar.finish_and_clear();
    checkpoint::save(&trainer, &a.out).context("writing the sampler")?;
    if let Some(svg) = &a.loss_svg {
        plot::loss_curve(svg, &trainer.losses, 100)?;
    }
    let secs = started.elapsed().as_secs_f64();
    let done = trainer.step - start_step;
    if !a.quiet {
        let tail = &trainer.losses[trainer.losses.len().saturating_sub(100)..];
        let mean = if tail.is_empty() {
            f64::NAN
        } else {
            tail.iter().map(|&l| l as f64).sum::<f64>() / tail.len() as f64
        };
        eprintln!(
            "trained {done} steps in {secs:.1} s ({:.1} ms/step), {} in all; {} parameters; \
             mean loss of the last {} steps {mean:.4}; wrote {}",
            1e3 * secs / done.max(1) as f64,
            trainer.step,
            trainer.policy.len(),
            tail.len(),
            a.out.display()
        );
    }
    Ok(exit::OK)
}

/// One step of the log: its 1-based place in its stream and the data before it.
struct Step {
    stream: usize,
    t: usize,
    ctx: Context,
}

fn eval(a: SamplerEvalArgs) -> anyhow::Result<u8> {
    let trainer = checkpoint::load(&a.sampler, None)?;
    let policy = &trainer.policy;
    let model = policy.model;
    // the log's grid is enumerated, within --max-hypotheses
    let limits = crate::log::Limits {
        max_hypotheses: a.max_hypotheses,
        max_parameters: a.max_hypotheses.saturating_mul(model.d),
        ..crate::log::Limits::default()
    };
    let mut input = crate::log::open_input(&a.log, crate::log::InputFormat::Auto, None, &limits)?;
    let log_model = input.model().clone();
    let same = matches!(log_model.hypotheses, HypothesisSpace::Grid { k, d } if k == model.k && d == model.d)
        && log_model.observation == model.observation;
    if !same {
        return Err(Error::Setting(format!(
            "the log's model ({}) is not the sampler's ({})",
            log_model.describe(),
            model.to_json()
        ))
        .into());
    }
    // The contexts first (cheap), then the distances in parallel.
    let mut steps: Vec<Step> = Vec::new();
    let mut ctx = Context::new(&model);
    let mut stream = 0usize;
    while let Some(ev) = input.next_event()? {
        match ev {
            LogEvent::Stream(_) => {
                if a.streams.is_some_and(|n| stream >= n) {
                    break;
                }
                stream += 1;
                ctx = Context::new(&model);
            }
            LogEvent::Step(s) => {
                steps.push(Step {
                    stream,
                    t: s.step,
                    ctx: ctx.clone(),
                });
                if let Some(y) = s.outcome {
                    ctx.push(&model, s.table.candidate(s.action), y);
                }
            }
        }
    }
    let bar = progress::bar(Some(steps.len() as u64), a.quiet, "evaluating");
    let started = Instant::now();
    let tv: Vec<f64> = steps
        .par_iter()
        .map(|s| {
            let r = policy_tv(policy, &s.ctx, a.max_hypotheses);
            bar.inc(1);
            r
        })
        .collect::<Result<_, _>>()?;
    bar.finish_and_clear();
    let per_step: Vec<(usize, f64)> = steps.iter().zip(&tv).map(|(s, &v)| (s.t, v)).collect();
    let sum = TvSummary::of(&per_step);
    if let Some(path) = &a.json {
        let rows: Vec<_> = steps
            .iter()
            .zip(&tv)
            .map(|(s, v)| serde_json::json!({"stream": s.stream, "step": s.t, "observations": s.ctx.t, "tv": v}))
            .collect();
        let doc = serde_json::json!({
            "sampler": a.sampler.display().to_string(),
            "training_steps": trainer.step,
            "log": a.log,
            "summary": sum,
            "steps": rows,
        });
        std::fs::write(
            path,
            serde_json::to_string_pretty(&doc).expect("serialisable"),
        )
        .map_err(|e| Error::io(path, e))?;
    }
    if !a.quiet {
        println!(
            "total-variation distance to the exact posterior, {} steps of {} streams ({} training steps; {:.1} s):",
            sum.steps,
            stream,
            trainer.step,
            started.elapsed().as_secs_f64()
        );
        println!("  all steps: {:.4}", sum.mean);
        println!("  t ≤ 5:     {:.4} ({} steps)", sum.early, sum.early_steps);
        println!("  t ≥ 20:    {:.4} ({} steps)", sum.late, sum.late_steps);
    }
    Ok(exit::OK)
}
