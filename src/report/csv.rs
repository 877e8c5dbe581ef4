//! CSV report: one row per (step, candidate), flat columns (schema in README.md).

use std::io::Write;

use super::{key, write_err, ReportSettings, StepWriter};
use crate::audit::StepResult;
use crate::Result;

pub struct CsvWriter<'a, W: Write> {
    out: csv::Writer<W>,
    settings: &'a ReportSettings,
    row: Vec<String>,
}

impl<'a, W: Write> CsvWriter<'a, W> {
    pub fn new(out: W, settings: &'a ReportSettings) -> Result<Self> {
        let mut out = csv::Writer::from_writer(out);
        out.write_record(header(settings)).map_err(write_err)?;
        Ok(CsvWriter {
            out,
            settings,
            row: Vec::new(),
        })
    }
}

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

impl<W: Write> StepWriter for CsvWriter<'_, W> {
    fn write_step(&mut self, s: &StepResult) -> Result<()> {
        let settings = self.settings;
        for (a, c) in s.candidates.iter().enumerate() {
            let row = &mut self.row;
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
            self.out.write_record(&*row).map_err(write_err)?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        self.out.flush().map_err(write_err)
    }
}
