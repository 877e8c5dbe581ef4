//! `gpubound audit`: read a log, run the engine, write the report and summary.

use std::time::Instant;

use anyhow::Context;

use crate::audit::{self, AuditSettings};
use crate::cli::{exit, AuditArgs};
use crate::estimators::Alphas;
use crate::model::{Model, ObservationModel};
use crate::report::html::{HtmlReport, RunInfo};
use crate::report::{self, summary, Destination, ReportFormat, ReportSettings, Summary};
use crate::{engine, log, progress, Error};

pub fn run(args: AuditArgs) -> anyhow::Result<u8> {
    let limits = log::Limits::from(&args.limits);
    let model_file = match &args.model {
        Some(p) => Some(log::read_model_file(p, &limits)?),
        None => None,
    };
    let mut reader = log::open(&args.log, model_file, &limits)?;
    apply_overrides(reader.model_mut(), &args)?;
    let model = reader.model().clone();

    let floor = args
        .prior_floor
        .unwrap_or_else(|| model.hypotheses.smallest_prior_mass());
    let alphas = if !args.alpha.is_empty() {
        Alphas::new(args.alpha.clone(), floor)
    } else {
        let deltas = if args.delta.is_empty() {
            vec![0.05]
        } else {
            args.delta.clone()
        };
        Alphas::from_deltas(&deltas, floor)
    }
    .map_err(Error::Setting)?;
    for &c in &args.thresholds {
        if !(0.0..=1.0).contains(&c) {
            return Err(Error::Setting(format!("a threshold C must be in [0, 1], got {c}")).into());
        }
    }

    if args.html.is_some() && args.html == args.out {
        return Err(Error::Setting("--html and --out name the same file".into()).into());
    }
    if args.format == ReportFormat::Parquet && args.out.is_none() {
        return Err(Error::Setting(
            "--format parquet writes a binary file: give it with --out FILE".into(),
        )
        .into());
    }

    let engine = engine::select(args.backend.backend)?;
    let settings = AuditSettings {
        alphas: alphas.clone(),
        shared_world: args.shared_world,
        batch_elements: engine.preferred_batch_elements(),
    };
    let report_settings = ReportSettings::new(alphas, args.thresholds.clone());
    let mut summary = Summary::new(
        report_settings.clone(),
        summary::default_guardrail(args.guardrail),
        args.top,
    );

    let mut html = args.html.as_ref().map(|_| {
        HtmlReport::new(
            report_settings.clone(),
            summary::default_guardrail(args.guardrail),
            args.top,
        )
    });

    let dest = Destination::new(args.out.as_deref())?;
    let html_dest = match &args.html {
        Some(path) => Some(Destination::new(Some(path))?),
        None => None,
    };
    let file_len = std::fs::metadata(&args.log).map(|m| m.len()).ok();
    let bar = progress::bar(file_len, args.quiet, "auditing");
    let started = Instant::now();
    let totals = {
        let mut writer = report::writer_for(args.format, dest.writer()?, &report_settings)?;
        let totals = audit::run(
            &mut reader,
            engine.as_ref(),
            &settings,
            |step| {
                summary.add(&model, &step);
                if let Some(h) = html.as_mut() {
                    h.add(&model, &step);
                }
                writer.write_step(&step)
            },
            |r| progress::set(&bar, r.bytes_read(), r.steps_read()),
        )?;
        writer.finish()?;
        totals
    };
    let seconds = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let backend = engine.info().to_string();
    // Render the HTML before committing anything: both reports or neither.
    if let (Some(h), Some(hd)) = (html, &html_dest) {
        h.write(
            hd.writer()?,
            &RunInfo {
                log_name: reader.name(),
                model: &model,
                backend: &backend,
                totals: &totals,
                seconds,
            },
        )
        .context("writing the HTML report")?;
    }
    dest.commit().context("writing the report")?;
    if let Some(hd) = html_dest {
        hd.commit().context("writing the HTML report")?;
    }

    if !args.quiet {
        let text = summary.render(reader.name(), &model, &backend, &totals, seconds);
        // The summary must not mix with a report on standard output.
        if args.out.is_none() {
            eprint!("{text}");
        } else {
            print!("{text}");
        }
    }
    if args.fail_on_reject && summary.guardrail_rejected_any() {
        return Ok(exit::REJECTED);
    }
    Ok(exit::OK)
}

fn apply_overrides(model: &mut Model, args: &AuditArgs) -> Result<(), Error> {
    if args.sigma.is_none() && args.harm_threshold.is_none() {
        return Ok(());
    }
    match &mut model.observation {
        ObservationModel::Gaussian {
            sigma,
            harm_threshold,
        } => {
            if let Some(s) = args.sigma {
                *sigma = s;
            }
            if let Some(t) = args.harm_threshold {
                *harm_threshold = t;
            }
        }
        ObservationModel::Bernoulli => {
            return Err(Error::Setting(
                "--sigma and --harm-threshold apply to gaussian models; this model is bernoulli"
                    .into(),
            ))
        }
    }
    model.observation.validate().map_err(Error::Setting)
}
