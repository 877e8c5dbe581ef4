//! `gpubound audit`: read a log, run the engine, write the report and summary.

use std::time::Instant;

use anyhow::Context;

use crate::audit::{self, AuditSettings};
use crate::cli::{exit, AuditArgs};
use crate::estimators::Alphas;
use crate::log::{EventSource, LogInput};
use crate::model::{Model, ObservationModel};
use crate::report::html::{HtmlReport, RunInfo};
use crate::report::{
    self, destination, summary, Destination, ReportFormat, ReportSettings, Summary,
};
use crate::{engine, log, progress, Error};

pub fn run(args: AuditArgs) -> anyhow::Result<u8> {
    let limits = log::Limits::from(&args.limits);
    // Every destination is checked before any work, and none may be an input.
    let dest = Destination::new(args.out.as_deref())?;
    let html_dest = args
        .html
        .as_deref()
        .map(|p| Destination::new(Some(p)))
        .transpose()?;
    let model_file = match &args.model {
        Some(p) => Some(log::read_model_file(p, &limits)?),
        None => None,
    };
    let mut reader = log::open_input(&args.log, args.input_format, model_file, &limits)?;
    refuse_overlaps(&args, reader.as_ref(), &dest, html_dest.as_ref())?;
    apply_overrides(reader.model_mut(), &args)?;
    let model = reader.model().clone();

    let floor = match args.prior_floor {
        Some(f) => f,
        None => {
            let source = args
                .model
                .as_ref()
                .map_or_else(|| args.log.clone(), |p| p.display().to_string());
            default_prior_floor(&model, &source)?
        }
    };
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
        skip_unexplained: args.skip_unexplained,
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
            |r| {
                let (bytes, steps) = r.progress();
                progress::set(&bar, bytes, steps)
            },
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
            destination::print(&text)?;
        }
    }
    if args.fail_on_reject && summary.guardrail_rejected_any() {
        return Ok(exit::REJECTED);
    }
    Ok(exit::OK)
}

/// The default floor `p_min`: the smallest prior mass, which must not
/// underflow to 0 (then α = δ · p_min would be 0, and no set is plausible).
fn default_prior_floor(model: &Model, source: &str) -> Result<f64, Error> {
    let floor = model.hypotheses.smallest_prior_mass();
    if floor > 0.0 {
        return Ok(floor);
    }
    let (h, lp) = model
        .hypotheses
        .log_prior()
        .into_iter()
        .enumerate()
        .filter(|(_, l)| l.is_finite())
        .fold(
            (0, f64::INFINITY),
            |m, (h, l)| if l < m.1 { (h, l) } else { m },
        );
    Err(Error::input(
        source,
        None,
        format!(
            "the prior mass of hypothesis {h} (0-based; log prior {lp:.6e} after normalisation) \
             underflows to 0, and the prior floor p_min defaults to the smallest prior mass: give \
             --prior-floor P with the smallest P(h*) you want the bounds to cover (e.g. 1e-9), or --alpha"
        ),
    ))
}

/// No output may be the log, the `--model` file, a hypothesis file, or
/// another output.
fn refuse_overlaps(
    args: &AuditArgs,
    reader: &dyn log::LogInput,
    dest: &Destination,
    html_dest: Option<&Destination>,
) -> Result<(), Error> {
    let log = (args.log != "-").then(|| std::path::Path::new(&args.log));
    let model_hyps = args
        .model
        .as_deref()
        .and_then(|p| log::model_file_hypothesis_file(p, &log::Limits::from(&args.limits)));
    let mut inputs = vec![("the log", log)];
    inputs.extend(args.model.as_deref().map(|p| ("the model file", Some(p))));
    inputs.extend(
        reader
            .hypothesis_file()
            .map(|p| ("the hypothesis file", Some(p))),
    );
    inputs.extend(
        model_hyps
            .as_deref()
            .map(|p| ("the hypothesis file", Some(p))),
    );
    let mut outputs = vec![("--out", dest)];
    outputs.extend(html_dest.map(|d| ("--html", d)));
    destination::refuse_overlaps(&outputs, &inputs)
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
