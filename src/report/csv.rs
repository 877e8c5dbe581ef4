//! CSV report: one row per (step, candidate), flat columns (schema in README.md).

use std::io::Write;

use super::{key, write_err, ReportSettings, StepWriter};
use crate::audit::StepResult;
use crate::Result;

/// Rows are formatted by `csv` writers over buffers (a batch's parts in
/// parallel) and their bytes written to `out` in log order.
pub struct CsvWriter<'a, W: Write> {
    out: W,
    settings: &'a ReportSettings,
}

impl<'a, W: Write> CsvWriter<'a, W> {
    pub fn new(mut out: W, settings: &'a ReportSettings) -> Result<Self> {
        let mut head = csv::Writer::from_writer(Vec::new());
        head.write_record(header(settings)).map_err(write_err)?;
        out.write_all(&head.into_inner().map_err(write_err)?)
            .map_err(write_err)?;
        Ok(CsvWriter { out, settings })
    }
}

/// The rows of `steps`, formatted as the header's writer formats.
fn format_steps(settings: &ReportSettings, steps: &[StepResult]) -> Result<Vec<u8>> {
    let mut part = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::with_capacity(steps.len() * 4096));
    let mut row = Vec::new();
    for s in steps {
        write_rows(settings, s, &mut row, &mut part)?;
    }
    part.into_inner().map_err(write_err)
}

/// An audit on sampled hypotheses: the step's sample set (`SampledStep`),
/// after the plausible-set sizes.
pub const SAMPLED_COLUMNS: [&str; 4] = [
    "sample_ess",
    "sample_log_normaliser",
    "sample_redrawn",
    "sample_distinct",
];

/// The column names, in order.
pub fn header(settings: &ReportSettings) -> Vec<String> {
    let mut h: Vec<String> = [
        "stream",
        "step",
        "line",
        "candidate",
        "taken",
        "outcome",
        "map_hypothesis",
        "map_probability",
        "entropy",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for a in &settings.alphas.values {
        h.push(format!("plausible_set_size[alpha={}]", key(*a)));
    }
    if settings.sampled {
        h.extend(SAMPLED_COLUMNS.iter().map(|c| c.to_string()));
    }
    h.push("cautious_hypothesis".into());
    for e in &settings.estimators {
        h.push(e.label(&settings.alphas));
    }
    for &c in &settings.thresholds {
        for e in &settings.estimators {
            h.push(format!(
                "rejected[{}][C={}]",
                e.label(&settings.alphas),
                key(c)
            ));
        }
    }
    h
}

/// One step's rows, a row per candidate.
fn write_rows<W: Write>(
    settings: &ReportSettings,
    s: &StepResult,
    row: &mut Vec<String>,
    out: &mut csv::Writer<W>,
) -> Result<()> {
    for (a, c) in s.candidates.iter().enumerate() {
        row.clear();
        row.push(s.stream.id.clone());
        row.push(s.record.step.to_string());
        row.push(s.record.line.to_string());
        row.push(a.to_string());
        row.push((a == s.record.action).to_string());
        row.push(s.record.outcome.map(|y| y.to_string()).unwrap_or_default());
        row.push(s.posterior.map_hypothesis.to_string());
        row.push(s.posterior.map_probability.to_string());
        row.push(s.posterior.entropy.to_string());
        row.extend(s.posterior.plausible_set_size.iter().map(|n| n.to_string()));
        if settings.sampled {
            match &s.sampled {
                Some(t) => {
                    row.push(t.ess.to_string());
                    row.push(t.log_normaliser.to_string());
                    row.push(t.redrawn.to_string());
                    row.push(t.distinct.to_string());
                }
                None => row.extend((0..SAMPLED_COLUMNS.len()).map(|_| String::new())),
            }
        }
        row.push(c.cautious_hypothesis.to_string());
        for e in &settings.estimators {
            row.push(e.value(c).map(|v| v.to_string()).unwrap_or_default());
        }
        for &thr in &settings.thresholds {
            for e in &settings.estimators {
                row.push(
                    e.value(c)
                        .map(|v| (v > thr).to_string())
                        .unwrap_or_default(),
                );
            }
        }
        out.write_record(&*row).map_err(write_err)?;
    }
    Ok(())
}

/// Steps formatted per task when a batch is formatted in parallel.
const STEPS_PER_TASK: usize = 64;

impl<W: Write> StepWriter for CsvWriter<'_, W> {
    fn write_step(&mut self, s: &StepResult) -> Result<()> {
        let rows = format_steps(self.settings, std::slice::from_ref(s))?;
        self.out.write_all(&rows).map_err(write_err)
    }

    /// Parts of the batch formatted on the pool, written in log order.
    fn write_steps(&mut self, steps: &[StepResult]) -> Result<()> {
        use rayon::prelude::*;
        let settings = self.settings;
        let parts = steps
            .par_chunks(STEPS_PER_TASK)
            .map(|chunk| format_steps(settings, chunk))
            .collect::<Result<Vec<_>>>()?;
        for part in parts {
            self.out.write_all(&part).map_err(write_err)?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        self.out.flush().map_err(write_err)
    }
}
