//! The library's front door. `gpubound audit` (`commands::audit`) and the
//! Python binding (`python/`) both run an audit through [`AuditJob`]; neither
//! computes anything itself, so the two faces cannot disagree.
//!
//! ```no_run
//! use gpubound::api::{AuditJob, AuditOptions};
//! use gpubound::log::{self, InputFormat, Limits};
//! use gpubound::report::{self, ReportFormat};
//!
//! let options = AuditOptions::default();
//! let log = log::open_input("data/exploding_bandit.jsonl", InputFormat::Auto, None, &Limits::default())?;
//! let job = AuditJob::new(log, &options)?;
//! let settings = job.report_settings().clone();
//! let mut rows = report::writer_for(ReportFormat::Csv, std::io::stdout(), &settings)?;
//! let outcome = job.run(rows.as_mut(), false, &mut |_| {})?;
//! eprint!("{}", outcome.summary_text());
//! # Ok::<(), gpubound::Error>(())
//! ```

use std::time::Instant;

use arrow::array::RecordBatch;

use crate::audit::{self, AuditSettings, AuditTotals, SamplingInfo};
use crate::engine::{self, BackendChoice, Engine};
use crate::estimators::{Alphas, EstimatorKind};
use crate::log::{self, EventSource, LogInput};
use crate::model::{Model, ObservationModel};
use crate::report::html::{HtmlReport, RunInfo};
use crate::report::{self, summary, ReportSettings, StepWriter, Summary};
use crate::sampler::{self, audit::SampledSettings, policy::Policy};
use crate::{Error, Result};

/// Everything that changes an audit's numbers or its summary, with the
/// command line's defaults.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// Override the gaussian model's outcome noise σ.
    pub sigma: Option<f64>,
    /// Override the gaussian model's harm threshold θ.
    pub harm_threshold: Option<f64>,
    /// α values; when empty, `delta` gives them (α = δ · p_min).
    pub alpha: Vec<f64>,
    /// δ values; when both are empty, δ = 0.05.
    pub delta: Vec<f64>,
    /// `p_min`; by default the smallest prior mass.
    pub prior_floor: Option<f64>,
    /// Guardrail thresholds `C`.
    pub thresholds: Vec<f64>,
    pub backend: BackendChoice,
    /// The streams share one world: the posterior carries over between them.
    pub shared_world: bool,
    /// Treat an outcome no hypothesis can explain as missing.
    pub skip_unexplained: bool,
    /// The estimator that ranks the riskiest steps (first α for per-α ones).
    pub guardrail: EstimatorKind,
    /// How many of the riskiest steps the summary keeps.
    pub top: usize,
    /// Where the model came from, for the errors about it (`--model FILE`);
    /// by default the log.
    pub model_source: Option<String>,
    /// Audit on hypotheses drawn from an amortized sampler instead of
    /// enumerating the grid (`--sampler`; docs/sampler.md).
    pub sampler: Option<SamplerOptions>,
}

/// An audit on sampled hypotheses: the sampler file and how to draw.
#[derive(Debug, Clone)]
pub struct SamplerOptions {
    /// A sampler file (`gpubound sampler train`) for the log's model.
    pub path: std::path::PathBuf,
    /// Draws per set `N`.
    pub samples: usize,
    pub seed: u64,
    /// Redraw a stream's set when its ESS falls below this fraction of `N`.
    pub redraw_ess: f64,
    /// Each stream's index in the whole log when the input is a shard of
    /// it (`SampledSettings::stream_indices`); empty for a whole log.
    pub stream_indices: Vec<u64>,
}

/// A sample set is a hypothesis list: `n` draws at dimension `d` are held
/// to the limits of one (`--max-hypotheses`, `--max-parameters`).
pub fn sample_set_within(n: usize, d: usize, limits: &crate::log::Limits) -> Result<()> {
    if n > limits.max_hypotheses || n.saturating_mul(d) > limits.max_parameters {
        return Err(Error::Setting(format!(
            "--samples {n} at dimension {d}: a sample set is limited like a hypothesis list, \
             to {} hypotheses and {} parameters in all",
            limits.max_hypotheses, limits.max_parameters
        )));
    }
    Ok(())
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions {
            sigma: None,
            harm_threshold: None,
            alpha: Vec::new(),
            delta: Vec::new(),
            prior_floor: None,
            thresholds: vec![0.01],
            backend: BackendChoice::Auto,
            shared_world: false,
            skip_unexplained: false,
            guardrail: EstimatorKind::PlausibleSet,
            top: 10,
            model_source: None,
            sampler: None,
        }
    }
}

/// An audit ready to run: the log opened, the model and α resolved, the
/// engine chosen. Every setting is checked here, before any step is read.
pub struct AuditJob {
    log: Box<dyn LogInput>,
    mode: Mode,
    report_settings: ReportSettings,
    guardrail: EstimatorKind,
    top: usize,
}

/// How the job computes: enumerating the hypotheses on an engine, or on
/// hypotheses drawn from a sampler.
enum Mode {
    Enumerated {
        engine: Box<dyn Engine>,
        settings: AuditSettings,
    },
    Sampled(Box<Sampled>),
}

struct Sampled {
    policy: Policy,
    info: SamplingInfo,
    settings: SampledSettings,
}

impl AuditJob {
    pub fn new(mut log: Box<dyn LogInput>, options: &AuditOptions) -> Result<Self> {
        apply_overrides(log.model_mut(), options)?;
        let source = options
            .model_source
            .clone()
            .unwrap_or_else(|| log.name().to_string());
        let mut report_settings = report_settings(log.model(), options, &source)?;
        let alphas = report_settings.alphas.clone();
        let mode = match &options.sampler {
            Some(s) => {
                report_settings.sampled = true;
                Mode::Sampled(Box::new(sampled(log.as_ref(), options, s, alphas)?))
            }
            None => {
                let engine = engine::select(options.backend)?;
                let settings = AuditSettings {
                    alphas,
                    shared_world: options.shared_world,
                    batch_elements: engine.preferred_batch_elements(),
                    skip_unexplained: options.skip_unexplained,
                };
                Mode::Enumerated { engine, settings }
            }
        };
        Ok(AuditJob {
            log,
            mode,
            report_settings,
            guardrail: options.guardrail,
            top: options.top,
        })
    }

    /// The model the audit uses, overrides applied.
    pub fn model(&self) -> &Model {
        self.log.model()
    }

    /// The α values, thresholds and estimator columns of the report.
    pub fn report_settings(&self) -> &ReportSettings {
        &self.report_settings
    }

    /// The log, for checks on its files before the run.
    pub fn log(&self) -> &dyn LogInput {
        self.log.as_ref()
    }

    /// The engine's adapter, API and driver, in words (an audit on sampled
    /// hypotheses: the CPU and its threads).
    pub fn backend(&self) -> String {
        match &self.mode {
            Mode::Enumerated { engine, .. } => engine.info().to_string(),
            Mode::Sampled(_) => format!(
                "cpu ({} threads), sampled hypotheses",
                rayon::current_num_threads()
            ),
        }
    }

    /// Runs the audit: every step's result goes to `rows` (in log order) and
    /// to the summary, and to an HTML report when `html` is set. `progress`
    /// sees (bytes read, steps read) after each batch. `rows` is finished
    /// (flushed) before this returns.
    pub fn run(
        mut self,
        rows: &mut dyn StepWriter,
        html: bool,
        progress: &mut dyn FnMut((u64, usize)),
    ) -> Result<AuditOutcome> {
        let model = self.log.model().clone();
        let guardrail = summary::default_guardrail(self.guardrail);
        let mut summary = Summary::new(self.report_settings.clone(), guardrail, self.top);
        let mut html =
            html.then(|| HtmlReport::new(self.report_settings.clone(), guardrail, self.top));
        let started = Instant::now();
        let backend = self.backend();
        let mut sink = |steps: Vec<audit::StepResult>| {
            for step in &steps {
                summary.add(&model, step);
                if let Some(h) = html.as_mut() {
                    h.add(&model, step);
                }
            }
            rows.write_steps(&steps)
        };
        let totals = match &self.mode {
            Mode::Enumerated { engine, settings } => {
                log::prefetch::read_ahead(&mut self.log, |log| {
                    audit::run_in_batches(log, engine.as_ref(), settings, &mut sink, |log| {
                        progress(log.progress())
                    })
                })?
            }
            Mode::Sampled(s) => log::prefetch::read_ahead(&mut self.log, |log| {
                sampler::audit::run(
                    log,
                    &s.policy,
                    s.info.clone(),
                    &s.settings,
                    &mut sink,
                    |log| progress(log.progress()),
                )
            })?,
        };
        rows.finish()?;
        Ok(AuditOutcome {
            log_name: self.log.name().to_string(),
            backend,
            model,
            totals,
            summary,
            html,
            seconds: started.elapsed().as_secs_f64(),
        })
    }
}

/// What an audit found, besides its per-step rows.
pub struct AuditOutcome {
    pub log_name: String,
    pub model: Model,
    /// The engine's adapter, API and driver, in words.
    pub backend: String,
    pub totals: AuditTotals,
    pub summary: Summary,
    /// The HTML report, when the run was asked for one.
    pub html: Option<HtmlReport>,
    /// Wall time of the run.
    pub seconds: f64,
}

impl AuditOutcome {
    /// The summary a person reads (what `gpubound audit` prints).
    pub fn summary_text(&self) -> String {
        self.summary.render(
            &self.log_name,
            &self.model,
            &self.backend,
            &self.totals,
            self.seconds,
        )
    }

    /// The same summary as data (what `gpubound.audit(...).summary` is).
    pub fn summary_json(&self) -> serde_json::Value {
        self.summary.to_json(
            &self.log_name,
            &self.model,
            &self.backend,
            &self.totals,
            self.seconds,
        )
    }

    /// Writes the HTML report; an error when the run kept none.
    pub fn write_html(&self, out: impl std::io::Write) -> Result<()> {
        let html = self
            .html
            .clone()
            .ok_or_else(|| Error::Setting("this audit was run without an HTML report".into()))?;
        html.write(
            out,
            &RunInfo {
                log_name: &self.log_name,
                model: &self.model,
                backend: &self.backend,
                totals: &self.totals,
                seconds: self.seconds,
            },
        )
    }
}

/// An audit on sampled hypotheses: the settings that do not apply are
/// refused, and the sampler must be for the log's model.
fn sampled(
    log: &dyn LogInput,
    options: &AuditOptions,
    s: &SamplerOptions,
    alphas: Alphas,
) -> Result<Sampled> {
    let refuse = |what: &str, why: &str| {
        Err(Error::Setting(format!(
            "{what} does not apply to an audit on sampled hypotheses (--sampler): {why}"
        )))
    };
    if options.shared_world {
        return refuse(
            "--shared-world",
            "each stream keeps its own sample set, drawn from the sampler given that \
             stream's data",
        );
    }
    if options.backend == BackendChoice::Gpu {
        return refuse(
            "--backend gpu",
            "the sampler runs on the CPU (leave --backend out, or give cpu)",
        );
    }
    let settings = SampledSettings {
        alphas,
        samples: s.samples,
        seed: s.seed,
        redraw_ess: s.redraw_ess,
        skip_unexplained: options.skip_unexplained,
        stream_indices: s.stream_indices.clone(),
    };
    settings.check()?;
    let file = s.path.display().to_string();
    let model = log.model();
    let Some(want) = sampler::audit::sampler_model(model) else {
        return Err(Error::Setting(format!(
            "--sampler draws from a grid {{0..k-1}}^d; the model of {} is {}",
            log.name(),
            model.describe()
        )));
    };
    let trainer = sampler::checkpoint::load(&s.path, None)?;
    let have = trainer.policy.model;
    if have != want {
        return Err(Error::input(
            &file,
            None,
            format!(
                "this sampler was trained for the model {}, but {} has the model {}: train one for \
                 the log's model (gpubound sampler train --model MODEL.json -o SAMPLER, MODEL.json \
                 holding the log's model line)",
                have.to_json(),
                log.name(),
                want.to_json()
            ),
        ));
    }
    Ok(Sampled {
        info: SamplingInfo {
            sampler: file,
            training_steps: trainer.step,
            samples: s.samples,
            seed: s.seed,
            redraw_ess: s.redraw_ess,
        },
        policy: trainer.policy,
        settings,
    })
}

/// The α values: given, or δ · p_min with `p_min` given or the smallest
/// prior mass.
pub fn resolve_alphas(model: &Model, options: &AuditOptions, source: &str) -> Result<Alphas> {
    let floor = match options.prior_floor {
        Some(f) => f,
        None => default_prior_floor(model, source)?,
    };
    if !options.alpha.is_empty() {
        if !options.delta.is_empty() {
            return Err(Error::Setting("give alpha or delta, not both".into()));
        }
        Alphas::new(options.alpha.clone(), floor)
    } else {
        let deltas = if options.delta.is_empty() {
            vec![0.05]
        } else {
            options.delta.clone()
        };
        Alphas::from_deltas(&deltas, floor)
    }
    .map_err(Error::Setting)
}

/// The report's α values, thresholds and estimator columns for `model`
/// under `options`, checked; `source` names the model in errors.
pub fn report_settings(
    model: &Model,
    options: &AuditOptions,
    source: &str,
) -> Result<ReportSettings> {
    let alphas = resolve_alphas(model, options, source)?;
    for &c in &options.thresholds {
        if !(0.0..=1.0).contains(&c) {
            return Err(Error::Setting(format!(
                "a threshold C must be in [0, 1], got {c}"
            )));
        }
    }
    Ok(ReportSettings::new(alphas, options.thresholds.clone()))
}

/// The summary of a shard of an audit (whole streams) from its report rows
/// alone, as the audit that wrote them gave it: see
/// `report::shards::summarise_report`. `options` are the audit's.
/// `sampling`: the audit was on sampled hypotheses, with this sampler and
/// these settings (`describe_sampler` gives its training steps).
pub fn summarise_report(
    batches: &[RecordBatch],
    model: &Model,
    options: &AuditOptions,
    name: &str,
    sampling: Option<&SamplingInfo>,
) -> Result<serde_json::Value> {
    let mut settings = report_settings(model, options, name)?;
    settings.sampled = sampling.is_some();
    let guardrail = summary::default_guardrail(options.guardrail);
    report::shards::summarise_report(
        batches,
        model,
        &settings,
        guardrail,
        options.top,
        name,
        sampling,
    )
}

/// What a sampler file holds: the model it was trained for and its training
/// steps (the summary of an audit on its samples states both).
pub fn describe_sampler(path: &std::path::Path) -> Result<(sampler::SamplerModel, u64)> {
    let trainer = sampler::checkpoint::load(path, None)?;
    Ok((trainer.policy.model, trainer.step))
}

/// The default floor `p_min`: the smallest prior mass, which must not
/// underflow to 0 (then α = δ · p_min would be 0, and no set is plausible).
fn default_prior_floor(model: &Model, source: &str) -> Result<f64> {
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

/// `sigma` and `harm_threshold` override a gaussian model's fields.
fn apply_overrides(model: &mut Model, options: &AuditOptions) -> Result<()> {
    if options.sigma.is_none() && options.harm_threshold.is_none() {
        return Ok(());
    }
    match &mut model.observation {
        ObservationModel::Gaussian {
            sigma,
            harm_threshold,
        } => {
            if let Some(s) = options.sigma {
                *sigma = s;
            }
            if let Some(t) = options.harm_threshold {
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
