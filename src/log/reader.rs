//! Streaming reader for action logs: yields streams and steps one at a time,
//! validated against the model, each carrying its line number, so memory does
//! not grow with the length of the log and every error names file and line.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::format::{LogLine, ModelSpec, StepLine, StreamLine};
use crate::engine::CandidateTable;
use crate::model::Model;
use crate::{Error, Result};

/// A stream (episode) as read from its `stream` line.
#[derive(Debug, Clone)]
pub struct StreamInfo {
    /// The stream's `id`, or its ordinal (1-based) when it has none.
    pub id: String,
    pub line: usize,
    /// Default candidate table of the stream's steps.
    pub table: Option<Arc<CandidateTable>>,
    /// Parameters of the true hypothesis `h*`, when the log states it.
    pub true_params: Option<Vec<f64>>,
}

/// One validated step.
#[derive(Debug, Clone)]
pub struct StepRecord {
    pub line: usize,
    /// 1-based position in its stream.
    pub step: usize,
    pub action: usize,
    pub outcome: Option<f64>,
    /// The step's candidates: its own table or the stream's.
    pub table: Arc<CandidateTable>,
    /// True when the table is the stream's shared one (not repeated per step).
    pub shared_table: bool,
}

#[derive(Debug, Clone)]
pub enum LogEvent {
    Stream(Arc<StreamInfo>),
    Step(StepRecord),
}

pub struct LogReader<R> {
    name: String,
    input: R,
    line_no: usize,
    buf: String,
    model: Model,
    stream: Option<Arc<StreamInfo>>,
    streams: usize,
    steps_in_stream: usize,
    steps: usize,
    /// A line read while looking for the model, to be handled next.
    pending: Option<LogLine>,
    bytes: u64,
    /// The hypothesis file the log's model line named (read at the start).
    hypothesis_file: Option<PathBuf>,
}

impl<R: BufRead> LogReader<R> {
    /// Opens a log. The model is the log's first line unless `model_override`
    /// is given (a `--model` file or command-line settings), which wins.
    /// `base_dir` resolves relative hypothesis files.
    pub fn new(
        name: impl Into<String>,
        input: R,
        base_dir: &Path,
        model_override: Option<Model>,
    ) -> Result<Self> {
        let mut r = LogReader {
            name: name.into(),
            input,
            line_no: 0,
            buf: String::new(),
            model: Model {
                hypotheses: crate::model::HypothesisSpace::Grid { k: 1, d: 1 },
                observation: crate::model::ObservationModel::Bernoulli,
            },
            stream: None,
            streams: 0,
            steps_in_stream: 0,
            steps: 0,
            pending: None,
            bytes: 0,
            hypothesis_file: None,
        };
        let first = r.next_line()?;
        let model = match (first, model_override) {
            (Some(LogLine::Model(spec)), over) => {
                r.hypothesis_file = spec.hypothesis_file(base_dir);
                let from_log = spec
                    .build(base_dir)
                    .map_err(|m| r.err_at(r.line_no, format!("model: {m}")))?;
                over.unwrap_or(from_log)
            }
            (other, Some(m)) => {
                r.pending = other;
                m
            }
            (None, None) => return Err(r.err_file("empty log: no model and no steps")),
            (Some(_), None) => return Err(r.err_at(
                r.line_no,
                "the log must start with a model line ({\"type\":\"model\",…}) or be given --model",
            )),
        };
        r.model = model;
        Ok(r)
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    /// For command-line overrides of model fields, before any step is read.
    pub fn model_mut(&mut self) -> &mut Model {
        &mut self.model
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The hypothesis file the log's model line named, if any.
    pub fn hypothesis_file(&self) -> Option<&Path> {
        self.hypothesis_file.as_deref()
    }

    /// Bytes consumed so far (for progress bars).
    pub fn bytes_read(&self) -> u64 {
        self.bytes
    }

    pub fn steps_read(&self) -> usize {
        self.steps
    }

    pub fn streams_read(&self) -> usize {
        self.streams
    }

    fn err_at(&self, line: usize, msg: impl Into<String>) -> Error {
        Error::input(&self.name, Some(line), msg)
    }

    fn err_file(&self, msg: impl Into<String>) -> Error {
        Error::input(&self.name, None, msg)
    }

    /// The next non-blank line, parsed.
    fn next_line(&mut self) -> Result<Option<LogLine>> {
        loop {
            self.buf.clear();
            let n = self.input.read_line(&mut self.buf).map_err(|e| {
                Error::input(
                    &self.name,
                    Some(self.line_no + 1),
                    format!("cannot read: {e}"),
                )
            })?;
            if n == 0 {
                return Ok(None);
            }
            self.bytes += n as u64;
            self.line_no += 1;
            let text = self.buf.trim();
            if text.is_empty() {
                continue;
            }
            return serde_json::from_str::<LogLine>(text)
                .map(Some)
                .map_err(|e| self.err_at(self.line_no, describe_json_error(&e)));
        }
    }

    /// The next stream or step; `None` at the end. An error at the end if the
    /// log held no step at all.
    pub fn next_event(&mut self) -> Result<Option<LogEvent>> {
        let line = match self.pending.take() {
            Some(l) => Some(l),
            None => self.next_line()?,
        };
        match line {
            None => {
                if self.steps == 0 {
                    return Err(self.err_file("empty log: it holds no steps"));
                }
                Ok(None)
            }
            Some(LogLine::Model(_)) => Err(self.err_at(
                self.line_no,
                "a model line may only be the first line of the log",
            )),
            Some(LogLine::Stream(s)) => {
                let info = self.stream_info(s)?;
                self.streams += 1;
                self.steps_in_stream = 0;
                let info = Arc::new(info);
                self.stream = Some(info.clone());
                Ok(Some(LogEvent::Stream(info)))
            }
            Some(LogLine::Step(s)) => {
                let rec = self.step_record(s)?;
                self.steps += 1;
                Ok(Some(LogEvent::Step(rec)))
            }
        }
    }

    fn table(&self, rows: &[Vec<f64>], what: &str) -> Result<CandidateTable> {
        let d = self.model.hypotheses.dim();
        if rows.is_empty() {
            return Err(self.err_at(self.line_no, format!("{what}: no candidate actions")));
        }
        let mut flat = Vec::with_capacity(rows.len() * d);
        for (a, row) in rows.iter().enumerate() {
            if row.len() != d {
                return Err(self.err_at(
                    self.line_no,
                    format!(
                        "{what}: candidate {a} has {} features, the model's hypotheses have dimension {d}",
                        row.len()
                    ),
                ));
            }
            if let Some(v) = row.iter().find(|v| !v.is_finite()) {
                return Err(self.err_at(
                    self.line_no,
                    format!("{what}: candidate {a} has a non-finite feature {v}"),
                ));
            }
            flat.extend_from_slice(row);
        }
        Ok(CandidateTable::new(flat, rows.len()))
    }

    fn stream_info(&self, s: StreamLine) -> Result<StreamInfo> {
        let table = match &s.candidates {
            Some(rows) => Some(Arc::new(self.table(rows, "stream candidates")?)),
            None => None,
        };
        let space = &self.model.hypotheses;
        let true_params = match (s.true_hypothesis, s.true_params) {
            (Some(_), Some(_)) => {
                return Err(self.err_at(
                    self.line_no,
                    "give true_hypothesis or true_params, not both",
                ))
            }
            (Some(i), None) => {
                if i >= space.len() {
                    return Err(self.err_at(
                        self.line_no,
                        format!(
                            "true_hypothesis {i} is out of range: there are {} hypotheses",
                            space.len()
                        ),
                    ));
                }
                Some(space.params(i))
            }
            (None, Some(w)) => {
                if w.len() != space.dim() {
                    return Err(self.err_at(
                        self.line_no,
                        format!(
                            "true_params has {} entries, the model's dimension is {}",
                            w.len(),
                            space.dim()
                        ),
                    ));
                }
                if let Some(v) = w.iter().find(|v| !v.is_finite()) {
                    return Err(self.err_at(
                        self.line_no,
                        format!("true_params has a non-finite entry {v}"),
                    ));
                }
                Some(w)
            }
            (None, None) => None,
        };
        Ok(StreamInfo {
            id: s
                .id
                .map(|i| i.to_string())
                .unwrap_or_else(|| (self.streams + 1).to_string()),
            line: self.line_no,
            table,
            true_params,
        })
    }

    fn step_record(&mut self, s: StepLine) -> Result<StepRecord> {
        let Some(stream) = self.stream.clone() else {
            return Err(self.err_at(
                self.line_no,
                "a step before any stream line: start each stream with {\"type\":\"stream\",…}",
            ));
        };
        let (table, shared_table) = match (&s.candidates, &stream.table) {
            (Some(rows), _) => (Arc::new(self.table(rows, "step candidates")?), false),
            (None, Some(t)) => (t.clone(), true),
            (None, None) => {
                return Err(self.err_at(
                    self.line_no,
                    "the step has no candidates and its stream gives none",
                ))
            }
        };
        if s.action >= table.n_candidates {
            return Err(self.err_at(
                self.line_no,
                format!(
                    "action {} is out of range: there are {} candidates (0-based)",
                    s.action, table.n_candidates
                ),
            ));
        }
        if let Some(y) = s.outcome {
            self.model
                .observation
                .validate_outcome(y)
                .map_err(|m| self.err_at(self.line_no, m))?;
        }
        self.steps_in_stream += 1;
        Ok(StepRecord {
            line: self.line_no,
            step: self.steps_in_stream,
            action: s.action,
            outcome: s.outcome,
            table,
            shared_table,
        })
    }
}

/// serde's messages, made to read well on one line.
fn describe_json_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof => format!("malformed JSON: {e}"),
        Category::Data => format!("invalid line: {e}"),
        Category::Io => format!("cannot read: {e}"),
    }
}

impl ModelSpec {
    /// Builds and validates the model; `base_dir` resolves a hypothesis file.
    pub fn build(&self, base_dir: &Path) -> std::result::Result<Model, String> {
        use super::format::{HypothesesSpec, ObservationSpec};
        use crate::model::{HypothesisList, HypothesisSpace, ObservationModel};
        let hypotheses = match &self.hypotheses {
            HypothesesSpec::Grid(g) => HypothesisSpace::grid(g.k, g.d)?,
            HypothesesSpec::List(l) => {
                let (rows, lp, lr) = match (&l.file, &l.params) {
                    (Some(_), Some(_)) => {
                        return Err("give a hypothesis file or inline params, not both".into())
                    }
                    (None, None) => return Err("a hypothesis list needs `file` or `params`".into()),
                    (None, Some(p)) => (p.clone(), l.log_prior.clone(), l.log_proposal.clone()),
                    (Some(f), None) => {
                        if l.log_prior.is_some() || l.log_proposal.is_some() {
                            return Err("with a hypothesis file, give log_prior/log_proposal per line of the file".into());
                        }
                        read_hypothesis_file(&base_dir.join(f)).map_err(|e| e.to_string())?
                    }
                };
                let d = rows.first().map(|r| r.len()).unwrap_or(0);
                if let Some((i, r)) = rows.iter().enumerate().find(|(_, r)| r.len() != d) {
                    return Err(format!(
                        "hypothesis {i} has {} parameters, hypothesis 0 has {d}",
                        r.len()
                    ));
                }
                let flat: Vec<f64> = rows.into_iter().flatten().collect();
                let n = flat.len().checked_div(d).unwrap_or(0);
                let params =
                    ndarray::Array2::from_shape_vec((n, d), flat).map_err(|e| e.to_string())?;
                HypothesisSpace::List(HypothesisList::new(params, lp, lr)?)
            }
        };
        let observation = match &self.observation {
            ObservationSpec::Gaussian(g) => ObservationModel::Gaussian {
                sigma: g.sigma,
                harm_threshold: g.harm_threshold,
            },
            ObservationSpec::Bernoulli(_) => ObservationModel::Bernoulli,
        };
        observation.validate()?;
        Ok(Model {
            hypotheses,
            observation,
        })
    }
}

type HypothesisColumns = (Vec<Vec<f64>>, Option<Vec<f64>>, Option<Vec<f64>>);

/// Reads a JSONL hypothesis file: `{"params":[…], "log_prior":…, "log_proposal":…}` per line.
pub fn read_hypothesis_file(path: &PathBuf) -> Result<HypothesisColumns> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut rows = Vec::new();
    let (mut lp, mut lr) = (Vec::new(), Vec::new());
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| Error::input(&name, Some(i + 1), e.to_string()))?;
        if line.trim().is_empty() {
            continue;
        }
        let h: super::format::HypothesisLine = serde_json::from_str(&line)
            .map_err(|e| Error::input(&name, Some(i + 1), describe_json_error(&e)))?;
        let n = rows.len();
        for (col, v, what) in [
            (&mut lp, h.log_prior, "log_prior"),
            (&mut lr, h.log_proposal, "log_proposal"),
        ] {
            match v {
                Some(v) if col.len() == n => col.push(v),
                None if col.is_empty() => {}
                _ => {
                    return Err(Error::input(
                        &name,
                        Some(i + 1),
                        format!("{what} must be given on every line or on none"),
                    ))
                }
            }
        }
        rows.push(h.params);
    }
    let n = rows.len();
    let col = |c: Vec<f64>| if c.is_empty() { None } else { Some(c) };
    if (!lp.is_empty() && lp.len() != n) || (!lr.is_empty() && lr.len() != n) {
        return Err(Error::input(
            &name,
            None,
            "log_prior/log_proposal must be given on every line or on none",
        ));
    }
    Ok((rows, col(lp), col(lr)))
}
