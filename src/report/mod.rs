//! The audit report: verdicts, per-step writers (JSON Lines, CSV, Parquet),
//! the HTML report and the human summary, and where they are written
//! (`destination`: whole or not at all, never over an input).

pub mod csv;
pub mod destination;
pub mod html;
pub mod jsonl;
pub mod parquet;
pub mod shards;
pub mod summary;
mod unfinished;

use std::io::Write;

use crate::audit::StepResult;
use crate::estimators::{Alphas, CandidateEstimates, Estimator};
use crate::{Error, Result};

pub use destination::Destination;
pub use summary::Summary;
pub use unfinished::undo_on_signals;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Jsonl,
    Csv,
    /// Typed columns, one row per (step, candidate); needs `--out`.
    Parquet,
}

/// What the report covers: the α values, thresholds `C`, and the estimator
/// columns derived from them.
#[derive(Debug, Clone)]
pub struct ReportSettings {
    pub alphas: Alphas,
    pub thresholds: Vec<f64>,
    pub estimators: Vec<Estimator>,
    /// An audit on sampled hypotheses: every step carries its sample set's
    /// ESS, log-normaliser and whether it was redrawn (`StepResult::sampled`).
    pub sampled: bool,
}

impl ReportSettings {
    pub fn new(alphas: Alphas, thresholds: Vec<f64>) -> Self {
        let estimators = Estimator::all(&alphas);
        ReportSettings {
            alphas,
            thresholds,
            estimators,
            sampled: false,
        }
    }
}

/// A guardrail's verdict on one step's taken action, for one estimator and
/// threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    /// The estimate for the taken action exceeds `C` (strictly).
    pub rejected: bool,
    /// The candidate with the smallest estimate, and that estimate.
    pub safest_candidate: usize,
    pub safest_estimate: f64,
}

impl Verdict {
    /// `None` when the estimator has no value here (oracle without `h*`).
    pub fn of(step: &StepResult, estimator: &Estimator, threshold: f64) -> Option<Verdict> {
        Assessment::of(step, estimator).map(|a| a.verdict(threshold))
    }

    /// A candidate the guardrail would have accepted was available.
    pub fn safer_available(&self, threshold: f64) -> bool {
        self.safest_estimate <= threshold
    }
}

/// What every verdict of one estimator at one step rests on: the taken
/// action's estimate and the safest candidate. Independent of the threshold,
/// so it is found once per step and estimator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Assessment {
    pub taken: f64,
    pub safest_candidate: usize,
    pub safest_estimate: f64,
}

impl Assessment {
    /// `None` when the estimator has no value here (oracle without `h*`).
    pub fn of(step: &StepResult, estimator: &Estimator) -> Option<Assessment> {
        Self::of_candidates(&step.candidates, step.record.action, estimator)
    }

    /// The same, from a step's candidates and the index of the taken one.
    pub fn of_candidates(
        candidates: &[CandidateEstimates],
        action: usize,
        estimator: &Estimator,
    ) -> Option<Assessment> {
        let taken = estimator.value(candidates.get(action)?)?;
        let (safest_candidate, safest_estimate) = safest(candidates, estimator)?;
        Some(Assessment {
            taken,
            safest_candidate,
            safest_estimate,
        })
    }

    pub fn verdict(&self, threshold: f64) -> Verdict {
        Verdict {
            rejected: self.taken > threshold,
            safest_candidate: self.safest_candidate,
            safest_estimate: self.safest_estimate,
        }
    }
}

/// Candidates whose estimates differ from the smallest by at most this
/// fraction of it are tied for "safest": the last bits of an estimate depend
/// on the order of a sum (CPU threads, GPU workgroups), and must not decide
/// which candidate the report names.
pub const SAFEST_TIE_TOLERANCE: f64 = 1e-9;

/// The safest candidate: the lowest index among the candidates whose
/// estimate is within `SAFEST_TIE_TOLERANCE` (relative) of the smallest,
/// with its own estimate.
pub fn safest(candidates: &[CandidateEstimates], estimator: &Estimator) -> Option<(usize, f64)> {
    let mut smallest = f64::INFINITY;
    for c in candidates {
        smallest = smallest.min(estimator.value(c)?);
    }
    let within = smallest + smallest.abs() * SAFEST_TIE_TOLERANCE;
    candidates.iter().enumerate().find_map(|(a, c)| {
        let v = estimator.value(c)?;
        (v <= within).then_some((a, v))
    })
}

/// Writes one step's record in a particular format.
pub trait StepWriter {
    fn write_step(&mut self, step: &StepResult) -> Result<()>;
    /// A batch of steps in log order: the same bytes as one at a time
    /// (a writer may format them in parallel).
    fn write_steps(&mut self, steps: &[StepResult]) -> Result<()> {
        steps.iter().try_for_each(|s| self.write_step(s))
    }
    fn finish(&mut self) -> Result<()>;
}

pub(crate) fn write_err(e: impl std::fmt::Display) -> Error {
    Error::Report(e.to_string())
}

pub use crate::estimators::number_key as key;

/// Builds the writer for a format.
pub fn writer_for<'a, W: Write + Send + 'a>(
    format: ReportFormat,
    out: W,
    settings: &'a ReportSettings,
) -> Result<Box<dyn StepWriter + 'a>> {
    Ok(match format {
        ReportFormat::Jsonl => Box::new(jsonl::JsonlWriter::new(out, settings)),
        ReportFormat::Csv => Box::new(csv::CsvWriter::new(out, settings)?),
        ReportFormat::Parquet => Box::new(parquet::ParquetWriter::new(out, settings)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estimators::EstimatorKind;

    fn with_predictive(v: f64) -> CandidateEstimates {
        CandidateEstimates {
            posterior_predictive: v,
            cautious_theory: 0.5,
            cautious_hypothesis: 0,
            plausible_set: vec![],
            ville_max: vec![],
            ville_sum: vec![],
            oracle: None,
        }
    }

    const PREDICTIVE: Estimator = Estimator {
        kind: EstimatorKind::PosteriorPredictive,
        alpha: None,
    };

    #[test]
    fn safest_takes_the_lowest_index_among_estimates_tied_up_to_rounding() {
        // 0.3 computed two ways: 0.1 + 0.2 is one unit in the last place above 0.3
        let c: Vec<_> = [0.5, 0.1 + 0.2, 0.3, 0.7]
            .into_iter()
            .map(with_predictive)
            .collect();
        assert_eq!(safest(&c, &PREDICTIVE), Some((1, 0.1 + 0.2)));
        // a real difference, far above the tolerance, is not a tie
        let c: Vec<_> = [0.3 + 1e-7, 0.3].into_iter().map(with_predictive).collect();
        assert_eq!(safest(&c, &PREDICTIVE), Some((1, 0.3)));
        // zeros tie with zeros only
        let c: Vec<_> = [1e-300, 0.0, 0.0]
            .into_iter()
            .map(with_predictive)
            .collect();
        assert_eq!(safest(&c, &PREDICTIVE), Some((1, 0.0)));
    }

    #[test]
    fn no_candidate_value_means_no_safest_candidate() {
        let oracle = Estimator {
            kind: EstimatorKind::Oracle,
            alpha: None,
        };
        assert_eq!(safest(&[with_predictive(0.1)], &oracle), None);
    }
}
