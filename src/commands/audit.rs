//! `gpubound audit`: the command line's face of `api::AuditJob`: check the
//! destinations, open the log, run the job, write the reports and summary.

use anyhow::Context;

use crate::api::{AuditJob, AuditOptions, SamplerOptions};
use crate::cli::{exit, AuditArgs};
use crate::log::{self, LogInput};
use crate::model::{HypothesisSpace, Model};
use crate::report::{self, destination, Destination, ReportFormat};
use crate::{progress, Error};

pub fn run(args: AuditArgs) -> anyhow::Result<u8> {
    let enumerated = log::Limits::from(&args.limits);
    // Read a grid of any size, so that one too large to enumerate is named
    // with the way to audit it (`refuse_enumerating`).
    let limits = log::Limits {
        sampled_grid: true,
        ..enumerated
    };
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
    let reader = log::open_input(&args.log, args.input_format, model_file, &limits)?;
    match args.samples {
        None => refuse_enumerating(&args, reader.model(), &enumerated)?,
        // a sample set is a hypothesis list: the same limits
        Some(n) => {
            let d = reader.model().hypotheses.dim();
            crate::api::sample_set_within(n, d, &enumerated).map_err(|e| match e {
                Error::Setting(m) => Error::Setting(format!(
                    "{m} (raise them with --max-hypotheses and --max-parameters)"
                )),
                e => e,
            })?
        }
    }
    refuse_overlaps(&args, reader.as_ref(), &dest, html_dest.as_ref())?;
    if args.format == ReportFormat::Parquet && args.out.is_none() {
        return Err(Error::Setting(
            "--format parquet writes a binary file: give it with --out FILE".into(),
        )
        .into());
    }
    let job = AuditJob::new(reader, &options(&args))?;

    let file_len = log_size(&args.log);
    let bar = progress::bar(file_len, args.quiet, "auditing");
    let settings = job.report_settings().clone();
    let outcome = {
        let mut writer = report::writer_for(args.format, dest.writer()?, &settings)?;
        job.run(writer.as_mut(), html_dest.is_some(), &mut |(
            bytes,
            steps,
        )| {
            progress::set(&bar, bytes, steps)
        })?
    };
    bar.finish_and_clear();
    // Render the HTML before committing anything: both reports or neither.
    if let Some(hd) = &html_dest {
        outcome
            .write_html(hd.writer()?)
            .context("writing the HTML report")?;
    }
    dest.commit().context("writing the report")?;
    if let Some(hd) = html_dest {
        hd.commit().context("writing the HTML report")?;
    }

    if !args.quiet {
        let text = outcome.summary_text();
        // The summary must not mix with a report on standard output.
        if args.out.is_none() {
            eprint!("{text}");
        } else {
            destination::print(&text)?;
        }
    }
    if args.fail_on_reject && outcome.summary.guardrail_rejected_any() {
        return Ok(exit::REJECTED);
    }
    Ok(exit::OK)
}

/// The settings of the command line that the library's audit takes.
fn options(args: &AuditArgs) -> AuditOptions {
    AuditOptions {
        sigma: args.sigma,
        harm_threshold: args.harm_threshold,
        alpha: args.alpha.clone(),
        delta: args.delta.clone(),
        prior_floor: args.prior_floor,
        thresholds: args.thresholds.clone(),
        backend: args.backend.backend,
        shared_world: args.shared_world,
        skip_unexplained: args.skip_unexplained,
        guardrail: args.guardrail,
        top: args.top,
        model_source: args.model.as_ref().map(|p| p.display().to_string()),
        sampler: args.sampler.as_ref().map(|path| SamplerOptions {
            path: path.clone(),
            samples: args.samples.unwrap_or(0),
            seed: args.seed.unwrap_or(1),
            redraw_ess: args
                .redraw_ess
                .unwrap_or(crate::sampler::audit::DEFAULT_REDRAW_ESS),
            stream_indices: Vec::new(),
        }),
    }
}

/// A grid beyond the limits of enumeration (`--max-hypotheses`,
/// `--max-parameters`) is refused, with how to audit it on sampled
/// hypotheses instead.
fn refuse_enumerating(args: &AuditArgs, model: &Model, limits: &log::Limits) -> Result<(), Error> {
    let HypothesisSpace::Grid { k, d } = model.hypotheses else {
        return Ok(());
    };
    let Err(why) = HypothesisSpace::grid_within(k, d, limits.max_hypotheses, limits.max_parameters)
    else {
        return Ok(());
    };
    let source = match &args.model {
        Some(p) => p.display().to_string(),
        None => args.log.clone(),
    };
    // the model is a JSON Lines log's first line, or a model file's content
    let line_no = match args.model {
        Some(_) => Some(1),
        None => (log::InputFormat::Auto.resolve(&args.log) == log::InputFormat::Jsonl).then_some(1),
    };
    let how = match crate::sampler::audit::sampler_model(model) {
        Some(m) => format!(
            "To audit it on hypotheses drawn from an amortized sampler instead: write the model \
             to a file (MODEL.json: {}), train a sampler for it with `gpubound sampler train \
             --model MODEL.json -o sampler.bin` (docs/sampler.md), then run `gpubound audit {} \
             --sampler sampler.bin --samples 4096`",
            m.to_json(),
            args.log
        ),
        None => format!(
            "No amortized sampler can stand in for it either: a sampler needs a grid with \
             2 ≤ k ≤ {} and 1 ≤ d ≤ {}",
            crate::sampler::MAX_K,
            crate::sampler::MAX_DIM
        ),
    };
    Err(Error::input(
        source,
        line_no,
        format!("model: {why}. {how}"),
    ))
}

/// The log's size in bytes for the progress bar: a file's, or the sum of
/// a folder's log files.
fn log_size(path: &str) -> Option<u64> {
    let p = std::path::Path::new(path);
    if p.is_dir() {
        let files = log::parquet::folder_files(p).ok()?;
        return files
            .iter()
            .map(|f| std::fs::metadata(f).map(|m| m.len()).ok())
            .sum();
    }
    std::fs::metadata(p).map(|m| m.len()).ok()
}

/// No output may be the log, the `--model` file, a hypothesis file, or
/// another output.
fn refuse_overlaps(
    args: &AuditArgs,
    reader: &dyn LogInput,
    dest: &Destination,
    html_dest: Option<&Destination>,
) -> Result<(), Error> {
    let log = (args.log != "-").then(|| std::path::Path::new(&args.log));
    let model_hyps = args
        .model
        .as_deref()
        .and_then(|p| log::model_file_hypothesis_file(p, &log::Limits::from(&args.limits)));
    // a log kept in a folder: each of its files is an input
    let log_files: Vec<std::path::PathBuf> = match log {
        Some(dir) if dir.is_dir() => log::parquet::folder_files(dir)?
            .into_iter()
            .map(Into::into)
            .collect(),
        _ => Vec::new(),
    };
    let mut inputs = vec![("the log", log)];
    inputs.extend(
        log_files
            .iter()
            .map(|p| ("a file of the log", Some(p.as_path()))),
    );
    inputs.extend(args.model.as_deref().map(|p| ("the model file", Some(p))));
    inputs.extend(args.sampler.as_deref().map(|p| ("the sampler", Some(p))));
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
