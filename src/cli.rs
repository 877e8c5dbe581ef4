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
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// The action log (JSON Lines); `-` reads standard input.
    pub log: String,

    /// Model file (JSON, the content of a model line); overrides the log's model line.
    #[arg(long, value_name = "FILE")]
    pub model: Option<PathBuf>,

    /// Override the gaussian model's outcome noise σ.
    #[arg(long)]
    pub sigma: Option<f64>,

    /// Override the gaussian model's harm threshold θ (harm = outcome > θ).
    #[arg(long, value_name = "THETA")]
    pub harm_threshold: Option<f64>,

    /// α for the plausible set and Ville bounds; repeat or comma-separate for several.
    #[arg(long, value_delimiter = ',', conflicts_with = "delta")]
    pub alpha: Vec<f64>,

    /// Confidence δ: α = δ · p_min (default 0.05 when no --alpha is given).
    #[arg(long, value_delimiter = ',')]
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

    #[command(flatten)]
    pub backend: BackendArgs,

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
}

#[derive(Debug, Args, Clone)]
pub struct BackendArgs {
    /// Where to compute: a GPU adapter when there is one (auto), or force one.
    #[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
    pub backend: BackendChoice,
}
