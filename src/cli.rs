//! Command-line definitions (clap). Each subcommand's work lives in
//! `commands/`; `main.rs` only parses and maps errors to exit codes.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::engine::BackendChoice;
use crate::estimators::EstimatorKind;
use crate::report::ReportFormat;

/// Exit codes, documented in README.md.
pub mod exit {
    pub const OK: u8 = 0;
    /// Anything that is not the user's input: I/O, GPU failure.
    pub const FAILURE: u8 = 1;
    /// Bad input: the log, the model, or a command-line setting.
    pub const BAD_INPUT: u8 = 2;
    /// `--fail-on-reject`: the guardrail would have rejected a taken action.
    pub const REJECTED: u8 = 3;
}

#[derive(Debug, Parser)]
#[command(
    name = "gpubound",
    version,
    about = "Audit agent action logs with Bayesian harm bounds (Bengio et al., UAI 2025)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compute every harm estimator for every logged step and candidate, and
    /// say which taken actions a guardrail would have rejected.
    Audit(AuditArgs),
    /// Time the full audit computation on a synthetic workload, on each available backend.
    Bench(BenchArgs),
    /// Simulate the paper's exploding bandit and write an action log that
    /// `audit` reads (with the true hypothesis of every stream).
    Simulate(SimulateArgs),
    /// Convert a log between JSON Lines and Parquet, losslessly (the same audit, bit for bit).
    Convert(ConvertArgs),
    /// Run the paper's experiments (Figures 1 and 2) and a coverage study.
    #[command(subcommand)]
    Experiment(ExperimentCommand),
    /// Train and check an amortized sampler of the posterior over a grid
    /// (for grids too large to enumerate; docs/sampler.md).
    #[command(subcommand)]
    Sampler(SamplerCommand),
}

#[derive(Debug, Subcommand)]
pub enum SamplerCommand {
    /// Train a sampler by trajectory balance on streams simulated from the
    /// model's prior; writes (and resumes from) a checkpoint.
    Train(SamplerTrainArgs),
    /// Compare a sampler with the exact posterior at every step of a log
    /// (total-variation distance; the grid must be enumerable).
    Eval(SamplerEvalArgs),
}

#[derive(Debug, Args)]
pub struct SamplerTrainArgs {
    /// The model (JSON, the content of a model line): a grid {0..k-1}^d.
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,

    /// The sampler file to write (atomically; also every --checkpoint-every steps).
    #[arg(long, short, value_name = "FILE")]
    pub out: PathBuf,

    /// Train until this many steps in all (a resumed run counts the steps done).
    #[arg(long, default_value_t = 2000)]
    pub steps: u64,

    /// Stop (and save) after this many seconds of training, whatever --steps says.
    #[arg(long, value_name = "SECONDS")]
    pub max_seconds: Option<f64>,

    /// Seed of the initial θ and of every simulated stream and path.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Continue the run saved in --out (its settings and seed win).
    #[arg(long)]
    pub resume: bool,

    /// Save every this many steps.
    #[arg(long, value_name = "N", default_value_t = 500)]
    pub checkpoint_every: u64,

    /// Contexts (simulated streams) per step.
    #[arg(long, default_value_t = 16)]
    pub contexts: usize,

    /// Paths per context and step.
    #[arg(long, default_value_t = 16)]
    pub samples: usize,

    /// Adam's learning rate.
    #[arg(long, default_value_t = 1e-3)]
    pub learning_rate: f64,

    /// Exploration: half the paths pick each coordinate uniformly with this probability.
    #[arg(long, default_value_t = 0.1)]
    pub epsilon: f64,

    /// Width of the step network's two hidden layers.
    #[arg(long, default_value_t = 64)]
    pub hidden: usize,

    /// Width of the context encoder's hidden layer.
    #[arg(long, default_value_t = 64)]
    pub hidden_ctx: usize,

    /// Width of the context embedding.
    #[arg(long, default_value_t = 32)]
    pub embed: usize,

    /// The residual of each logit: the log posterior's field with the later
    /// coordinates integrated out under a Gaussian relaxation of their
    /// prior (relaxed; Gaussian model only) or fixed at the prior mean.
    #[arg(long, value_enum, default_value_t = crate::sampler::context::ResidualKind::Relaxed)]
    pub residual: crate::sampler::context::ResidualKind,

    /// Arms per simulated world.
    #[arg(long, default_value_t = 10)]
    pub arms: usize,

    /// Observations per context are drawn from 0..=this.
    #[arg(long, default_value_t = 25)]
    pub max_observations: usize,

    /// Draw the loss curve (SVG) here at the end.
    #[arg(long, value_name = "FILE")]
    pub loss_svg: Option<PathBuf>,

    /// Print nothing but errors (no progress, no summary).
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct SamplerEvalArgs {
    /// The sampler file (`sampler train`).
    #[arg(long, value_name = "FILE")]
    pub sampler: PathBuf,

    /// The log (JSON Lines or Parquet) whose steps are the contexts; its
    /// model must be the sampler's.
    #[arg(long, value_name = "LOG")]
    pub log: String,

    /// Only the first N streams of the log.
    #[arg(long, value_name = "N")]
    pub streams: Option<usize>,

    /// Largest grid to enumerate.
    #[arg(long, value_name = "N", default_value_t = 1 << 20)]
    pub max_hypotheses: usize,

    /// Also write the per-step distances and their averages as JSON here.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Print nothing but errors.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// The action log (JSON Lines or Parquet); `-` reads standard input (JSON Lines).
    pub log: String,

    /// The log's format [default: by its name: .parquet or .pq is Parquet, else JSON Lines].
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = crate::log::InputFormat::Auto, hide_default_value = true)]
    pub input_format: crate::log::InputFormat,

    /// Model file (JSON, the content of a model line); overrides the log's model line.
    #[arg(long, value_name = "FILE")]
    pub model: Option<PathBuf>,

    /// Override the gaussian model's outcome noise σ.
    #[arg(long, allow_negative_numbers = true)]
    pub sigma: Option<f64>,

    /// Override the gaussian model's harm threshold θ (harm = outcome > θ).
    #[arg(long, value_name = "THETA", allow_negative_numbers = true)]
    pub harm_threshold: Option<f64>,

    /// α for the plausible set and Ville bounds; repeat or comma-separate for several.
    #[arg(
        long,
        value_delimiter = ',',
        conflicts_with = "delta",
        allow_negative_numbers = true
    )]
    pub alpha: Vec<f64>,

    /// Confidence δ: α = δ · p_min (default 0.05 when no --alpha is given).
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    pub delta: Vec<f64>,

    /// The floor p_min ≤ P(h*) [default: the smallest prior mass].
    #[arg(long, value_name = "P_MIN")]
    pub prior_floor: Option<f64>,

    /// Guardrail threshold C: reject when the estimate exceeds C; several allowed.
    #[arg(
        long = "threshold",
        short = 'C',
        value_delimiter = ',',
        default_value = "0.01"
    )]
    pub thresholds: Vec<f64>,

    /// Per-step report format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Jsonl)]
    pub format: ReportFormat,

    /// Write the per-step report here (atomically) instead of standard output
    /// (required for parquet).
    #[arg(long, short, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Also write a self-contained HTML report (summary, plots per stream, the
    /// riskiest taken actions) here, atomically.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,

    /// The streams share one world: do not restart the posterior at each stream.
    #[arg(long)]
    pub shared_world: bool,

    /// Treat an outcome that no hypothesis with positive posterior can
    /// explain (log-likelihood −∞ or not a number under each, e.g. a
    /// placeholder such as 1.8e308) as missing, and list those steps in the
    /// summary, instead of stopping with bad input.
    #[arg(long)]
    pub skip_unexplained: bool,

    #[command(flatten)]
    pub backend: BackendArgs,

    #[command(flatten)]
    pub limits: LimitArgs,

    /// The estimator of the guardrail that ranks the riskiest steps and decides --fail-on-reject (per-α estimators use the first α).
    #[arg(long, value_enum, default_value_t = EstimatorKind::PlausibleSet)]
    pub guardrail: EstimatorKind,

    /// Exit with code 3 when the guardrail would have rejected a taken action (at any threshold).
    #[arg(long)]
    pub fail_on_reject: bool,

    /// How many of the riskiest steps the summary lists.
    #[arg(long, default_value_t = 10)]
    pub top: usize,

    /// Print nothing but errors (no summary, no progress).
    #[arg(long, short)]
    pub quiet: bool,

    /// Audit on hypotheses drawn from this amortized sampler (`gpubound
    /// sampler train`, for the log's model) instead of enumerating the grid:
    /// for grids too large to enumerate (docs/sampler.md).
    #[arg(long, value_name = "FILE", requires = "samples")]
    pub sampler: Option<PathBuf>,

    /// With --sampler: draws per sample set N.
    #[arg(long, value_name = "N", requires = "sampler")]
    pub samples: Option<usize>,

    /// With --sampler: seed of the draws; the same seed gives the same report
    /// [default: 1].
    #[arg(long, requires = "sampler")]
    pub seed: Option<u64>,

    /// With --sampler: redraw a stream's sample set when its effective sample
    /// size falls below F·N (1: at every step; 0: once per stream)
    /// [default: 0.05].
    #[arg(long, value_name = "F", requires = "sampler")]
    pub redraw_ess: Option<f64>,
}

#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// The log to convert; `-` reads standard input (JSON Lines).
    pub input: String,

    /// Write the converted log here (atomically; never over the input).
    #[arg(long, short, value_name = "FILE")]
    pub out: PathBuf,

    /// The input's format [default: by its name: .parquet or .pq is Parquet, else JSON Lines].
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = crate::log::InputFormat::Auto, hide_default_value = true)]
    pub input_format: crate::log::InputFormat,

    /// The output's format [default: by its name: .parquet or .pq is Parquet, else JSON Lines].
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = crate::log::InputFormat::Auto, hide_default_value = true)]
    pub output_format: crate::log::InputFormat,

    #[command(flatten)]
    pub limits: LimitArgs,

    /// Print nothing but errors.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Bounds on the sizes the input controls (README, "Limits").
#[derive(Debug, Args, Clone)]
pub struct LimitArgs {
    /// Longest line of the log or a hypothesis file, and largest model file, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = crate::log::Limits::DEFAULT_MAX_LINE_BYTES)]
    pub max_line_bytes: usize,
    /// Most hypotheses H.
    #[arg(long, value_name = "N", default_value_t = crate::model::hypotheses::MAX_HYPOTHESES)]
    pub max_hypotheses: usize,
    /// Most hypothesis parameters in all, H·d.
    #[arg(long, value_name = "N", default_value_t = crate::model::hypotheses::MAX_PARAMETERS)]
    pub max_parameters: usize,
    /// Most candidate actions in one table.
    #[arg(long, value_name = "N", default_value_t = crate::log::Limits::DEFAULT_MAX_CANDIDATES)]
    pub max_candidates: usize,
}

impl From<&LimitArgs> for crate::log::Limits {
    fn from(a: &LimitArgs) -> Self {
        crate::log::Limits {
            max_line_bytes: a.max_line_bytes,
            max_hypotheses: a.max_hypotheses,
            max_parameters: a.max_parameters,
            max_candidates: a.max_candidates,
            sampled_grid: false,
        }
    }
}

#[derive(Debug, Args, Clone)]
pub struct BackendArgs {
    /// Where to compute: a GPU adapter when there is one (auto), or force one.
    #[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
    pub backend: BackendChoice,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Number of hypotheses H (a grid {0..k-1}^dim when H = k^dim, else a list).
    #[arg(long, default_value_t = 1024)]
    pub hypotheses: usize,
    /// Logged steps T.
    #[arg(long, default_value_t = 1000)]
    pub steps: usize,
    /// Candidate actions per step A.
    #[arg(long, default_value_t = 10)]
    pub actions: usize,
    /// Parameter / feature dimension d.
    #[arg(long, default_value_t = 10)]
    pub dim: usize,
    #[arg(long, value_enum, default_value_t = crate::bench::ModelFamily::Gaussian)]
    pub model: crate::bench::ModelFamily,
    /// Steps per stream [default: all steps in one stream].
    #[arg(long)]
    pub stream_length: Option<usize>,
    /// Real-valued candidates that change at every step (harm needs erfc per triple).
    #[arg(long)]
    pub contextual: bool,
    /// Run the fixed suite of workloads (docs/benchmarks.md) on every
    /// backend, with each device's peak FLOP/s and bandwidth.
    #[arg(long, conflicts_with_all = ["hypotheses", "steps", "actions", "dim", "model",
        "stream_length", "contextual", "seed", "batch_elements", "kernel_times", "compare"])]
    pub suite: bool,
    /// The suite at tiny sizes (checks that it runs; its figures mean nothing).
    #[arg(long, requires = "suite")]
    pub quick: bool,
    /// Write the suite's JSON file here.
    #[arg(long, short, value_name = "FILE", requires = "suite")]
    pub output: Option<std::path::PathBuf>,
    /// Compare two suite files: a table of B/A per workload and of the peaks.
    #[arg(long, num_args = 2, value_names = ["A.json", "B.json"],
        conflicts_with_all = ["hypotheses", "steps", "actions", "dim", "model",
        "stream_length", "contextual", "seed", "batch_elements", "kernel_times", "runs"])]
    pub compare: Option<Vec<String>>,
    /// Timed runs per backend, after one warm-up run.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// (step, hypothesis) pairs per batch [default: each backend's own].
    #[arg(long, value_name = "N")]
    pub batch_elements: Option<usize>,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also time every GPU kernel with timestamp queries (where the adapter
    /// has them), and say where the device's time goes. Each submission
    /// then waits for its times, so the overall figure is a little lower.
    #[arg(long)]
    pub kernel_times: bool,
    #[command(flatten)]
    pub backend: BackendArgs,
    #[arg(long, short)]
    pub quiet: bool,
}
/// The bandit's shape (shared by `simulate` and `experiment`).
#[derive(Debug, Args, Clone)]
pub struct BanditArgs {
    /// Dimension d of arm features and weights.
    #[arg(long = "dim", short = 'd', default_value_t = 10)]
    pub dim: usize,

    /// Features and weights are drawn from {0..k-1}.
    #[arg(long, short = 'k', default_value_t = 2)]
    pub k: u32,

    /// Number of arms.
    #[arg(long, default_value_t = 10)]
    pub arms: usize,

    /// Reward noise σ.
    #[arg(long, default_value_t = 1.0)]
    pub sigma: f64,

    /// Steps per episode.
    #[arg(long, default_value_t = 25)]
    pub steps: usize,

    /// Explosion threshold θ (harm = reward > θ) [default: drawn by the
    /// reference rule from the seed: mean of 100 batch maxima, rounded].
    #[arg(long, value_name = "THETA")]
    pub explosion_threshold: Option<f64>,

    /// Seed of the run (ChaCha8); the same seed gives the same output.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Print nothing but errors (no summary, no progress).
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    #[command(flatten)]
    pub bandit: BanditArgs,

    /// Number of episodes (streams).
    #[arg(long, short = 'n', default_value_t = 100)]
    pub episodes: usize,

    /// The agent's policy.
    #[arg(long, value_enum, default_value_t = crate::sim::AgentKind::Boltzmann)]
    pub agent: crate::sim::AgentKind,

    /// Inverse temperature β of the Boltzmann agent.
    #[arg(long, default_value_t = 0.5)]
    pub beta: f64,

    /// Guardrail in the loop: rejected arms are resampled.
    #[arg(long, value_enum, default_value_t = crate::sim::GuardrailKind::None)]
    pub guardrail: crate::sim::GuardrailKind,

    /// Guardrail threshold C: reject when the estimate exceeds C.
    #[arg(long = "threshold", short = 'C', default_value_t = 0.01)]
    pub threshold: f64,

    /// α of the non-iid (plausible set) guardrail.
    #[arg(long, default_value_t = 1e-4)]
    pub alpha: f64,

    /// Tie handling of the non-iid guardrail: SPEC's tie-inclusive set, or
    /// the reference code's positional cut.
    #[arg(long, value_enum, default_value_t = crate::sim::TieRule::Inclusive)]
    pub ties: crate::sim::TieRule,

    /// Arms never explode (the episode always runs all steps).
    #[arg(long)]
    pub no_explosions: bool,

    /// Write the log here instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ExperimentCommand {
    /// Figure 1: reward and deaths of a Boltzmann agent under each guardrail.
    Fig1(Fig1Args),
    /// Figure 2: tightness of the non-iid bound for a uniform agent.
    Fig2(Fig2Args),
    /// How often each estimator upper-bounds the true harm, per step and per stream.
    Coverage(CoverageArgs),
}

/// Options every experiment shares.
#[derive(Debug, Args, Clone)]
pub struct ExperimentCommon {
    #[command(flatten)]
    pub bandit: BanditArgs,

    /// Episodes per configuration (the paper: 10000).
    #[arg(long, short = 'n', default_value_t = 1000)]
    pub episodes: usize,

    /// α values (comma-separated) [default: the paper's 1e-5,3e-5,1e-4,3e-4,1e-2,3e-2,0.1,0.3,1].
    #[arg(long, value_delimiter = ',')]
    pub alphas: Vec<f64>,

    /// Tie handling of the plausible set.
    #[arg(long, value_enum)]
    pub ties: Option<crate::sim::TieRule>,

    /// Write the results as JSON here.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct Fig1Args {
    #[command(flatten)]
    pub common: ExperimentCommon,

    /// Guardrail thresholds C (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "0.001,0.01,0.1")]
    pub thresholds: Vec<f64>,

    /// Inverse temperature β of the Boltzmann agent.
    #[arg(long, default_value_t = 0.5)]
    pub beta: f64,

    /// Draw the figure (SVG) here.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,

    /// Evaluate the guardrail through the audit engine (batched across the
    /// episodes of a configuration) instead of the built-in kernel; same
    /// results, SPEC ties only. (`--engine` is an alias.)
    #[arg(long = "backend", alias = "engine", value_enum, value_name = "BACKEND")]
    pub backend: Option<crate::engine::BackendChoice>,
}

#[derive(Debug, Args)]
pub struct Fig2Args {
    #[command(flatten)]
    pub common: ExperimentCommon,

    /// Draw the figure (SVG) here.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CoverageArgs {
    #[command(flatten)]
    pub common: ExperimentCommon,

    /// The agent that generates the streams.
    #[arg(long, value_enum, default_value_t = crate::sim::AgentKind::Uniform)]
    pub agent: crate::sim::AgentKind,

    /// Inverse temperature β of the Boltzmann agent.
    #[arg(long, default_value_t = 0.5)]
    pub beta: f64,
}
