//! Streaming reader for action logs: yields streams and steps one at a time,
//! validated against the model, each carrying its line number, so memory does
//! not grow with the length of the log and every error names file and line.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::format::{LogLine, ModelSpec, Rows, StepLine, StreamLine};
use super::CandidateTable;
use super::{strip_bom, Limits};
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
    buf: Vec<u8>,
    limits: Limits,
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
    /// The log's model line as written (`gpubound convert` carries it over).
    spec: Option<ModelSpec>,
}

impl<R: BufRead> LogReader<R> {
    /// Opens a log. The model is the log's first line unless `model_override`
    /// is given (a `--model` file or command-line settings), which wins.
    /// `base_dir` resolves relative hypothesis files. Default limits.
    pub fn new(
        name: impl Into<String>,
        input: R,
        base_dir: &Path,
        model_override: Option<Model>,
    ) -> Result<Self> {
        Self::with_limits(name, input, base_dir, model_override, &Limits::default())
    }

    /// `new` with these bounds on the sizes the input controls.
    pub fn with_limits(
        name: impl Into<String>,
        input: R,
        base_dir: &Path,
        model_override: Option<Model>,
        limits: &Limits,
    ) -> Result<Self> {
        let mut r = LogReader {
            name: name.into(),
            input,
            line_no: 0,
            buf: Vec::new(),
            limits: *limits,
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
            spec: None,
        };
        let first = r.next_line()?;
        let model = match (first, model_override) {
            (Some(LogLine::Model(spec)), over) => {
                r.hypothesis_file = spec.hypothesis_file(base_dir);
                let from_log = spec
                    .build(base_dir, limits)
                    .map_err(|m| r.err_at(r.line_no, format!("model: {m}")))?;
                r.spec = Some(spec);
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

    /// The log's model line as written, if it has one.
    pub fn model_spec(&self) -> Option<&ModelSpec> {
        self.spec.as_ref()
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
            let line = self.line_no + 1;
            let n = match read_line_within(
                &mut self.input,
                &mut self.buf,
                self.limits.max_line_bytes,
            ) {
                Ok(None) => return Ok(None),
                Ok(Some(n)) => n,
                Err(e) => return Err(line_error(&self.name, line, e, &self.limits)),
            };
            self.bytes += n as u64;
            self.line_no = line;
            let mut text = self.buf.trim_ascii();
            if line == 1 {
                text = strip_bom(text);
            }
            if text.is_empty() {
                continue;
            }
            return LogLine::parse(text)
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

    fn table(&self, rows: Rows, what: &str) -> Result<CandidateTable> {
        check_table(rows, what, self.model.hypotheses.dim(), &self.limits)
            .map_err(|m| self.err_at(self.line_no, m))
    }

    fn stream_info(&self, s: StreamLine) -> Result<StreamInfo> {
        let table = match s.candidates {
            Some(rows) => Some(Arc::new(self.table(rows, "stream candidates")?)),
            None => None,
        };
        let true_params = check_truth(&self.model, s.true_hypothesis, s.true_params)
            .map_err(|m| self.err_at(self.line_no, m))?;
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
        let (table, shared_table) = match (s.candidates, &stream.table) {
            (Some(rows), _) => (Arc::new(self.table(rows, "step candidates")?), false),
            (None, Some(t)) => (t.clone(), true),
            (None, None) => {
                return Err(self.err_at(
                    self.line_no,
                    "the step has no candidates and its stream gives none",
                ))
            }
        };
        check_step(&self.model, s.action, s.outcome, &table)
            .map_err(|m| self.err_at(self.line_no, m))?;
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

/// A candidate table checked against the model's dimension `d` and the
/// limits (every log format validates its tables here).
pub(crate) fn check_table(
    rows: Rows,
    what: &str,
    d: usize,
    limits: &Limits,
) -> std::result::Result<CandidateTable, String> {
    let max = limits.max_candidates;
    if rows.n_rows == 0 {
        return Err(format!("{what}: no candidate actions"));
    }
    if rows.n_rows > max {
        return Err(format!(
            "{what}: {} candidates, more than the limit of {max} (raise it with --max-candidates)",
            rows.n_rows
        ));
    }
    let (a, width) = match rows.ragged {
        _ if rows.width != d => (0, rows.width),
        Some(first_other) => first_other,
        None => (0, d),
    };
    if width != d {
        return Err(format!(
            "{what}: candidate {a} has {width} features, the model's hypotheses have dimension {d}"
        ));
    }
    // serde_json refuses NaN and infinities, Parquet does not; the engines assume finite features.
    if let Some(i) = rows.values.iter().position(|v| !v.is_finite()) {
        return Err(format!(
            "{what}: candidate {} has a non-finite feature {}",
            i / d,
            rows.values[i]
        ));
    }
    Ok(CandidateTable::new(rows.values, rows.n_rows))
}

/// The true hypothesis's parameters, from an index or a vector, checked.
pub(crate) fn check_truth(
    model: &Model,
    true_hypothesis: Option<usize>,
    true_params: Option<Vec<f64>>,
) -> std::result::Result<Option<Vec<f64>>, String> {
    let space = &model.hypotheses;
    match (true_hypothesis, true_params) {
        (Some(_), Some(_)) => Err("give true_hypothesis or true_params, not both".into()),
        (Some(i), None) => {
            if i >= space.len() {
                return Err(format!(
                    "true_hypothesis {i} is out of range: there are {} hypotheses",
                    space.len()
                ));
            }
            Ok(Some(space.params(i)))
        }
        (None, Some(w)) => {
            if w.len() != space.dim() {
                return Err(format!(
                    "true_params has {} entries, the model's dimension is {}",
                    w.len(),
                    space.dim()
                ));
            }
            if let Some(v) = w.iter().find(|v| !v.is_finite()) {
                return Err(format!("true_params has a non-finite entry {v}"));
            }
            Ok(Some(w))
        }
        (None, None) => Ok(None),
    }
}

/// A step's action against its table, and its outcome against the model.
pub(crate) fn check_step(
    model: &Model,
    action: usize,
    outcome: Option<f64>,
    table: &CandidateTable,
) -> std::result::Result<(), String> {
    if action >= table.n_candidates {
        return Err(format!(
            "action {action} is out of range: there are {} candidates (0-based)",
            table.n_candidates
        ));
    }
    match outcome {
        Some(y) => model.observation.validate_outcome(y),
        None => Ok(()),
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

/// How a bounded line read failed.
#[derive(Debug)]
pub(crate) enum LineError {
    /// The line is longer than the limit; it was read no further.
    TooLong,
    Io(std::io::Error),
}

/// Reads one line (its end, `\n` or `\r\n`, not kept) into `buf`, holding
/// no more than `max + 1` bytes of it: a line without end, such as
/// `/dev/zero`'s, stops at the limit. `Ok(None)` at the end of the input,
/// else the bytes consumed.
pub(crate) fn read_line_within(
    input: &mut impl BufRead,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::result::Result<Option<usize>, LineError> {
    buf.clear();
    // One byte more than the limit, for a `\r` before the `\n`.
    let room = max.saturating_add(1);
    let mut consumed = 0;
    loop {
        let available = match input.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(LineError::Io(e)),
        };
        if available.is_empty() {
            if consumed == 0 {
                return Ok(None);
            }
            break;
        }
        let end = available.iter().position(|&b| b == b'\n');
        let chunk = &available[..end.unwrap_or(available.len())];
        if chunk.len() > room - buf.len() {
            return Err(LineError::TooLong);
        }
        buf.extend_from_slice(chunk);
        let used = end.map_or(chunk.len(), |i| i + 1);
        input.consume(used);
        consumed += used;
        if end.is_some() {
            break;
        }
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    if buf.len() > max {
        return Err(LineError::TooLong);
    }
    Ok(Some(consumed))
}

/// The input error for a failed line read of `file`.
pub(crate) fn line_error(file: &str, line: usize, e: LineError, limits: &Limits) -> Error {
    let message = match e {
        LineError::TooLong => format!(
            "the line is longer than the limit of {} bytes (raise it with --max-line-bytes)",
            limits.max_line_bytes
        ),
        LineError::Io(e) => format!("cannot read: {e}"),
    };
    Error::input(file, Some(line), message)
}

impl ModelSpec {
    /// Builds and validates the model within `limits`; `base_dir` resolves a
    /// hypothesis file.
    pub fn build(&self, base_dir: &Path, limits: &Limits) -> std::result::Result<Model, String> {
        use super::format::{HypothesesKind, ObservationSpec};
        use crate::model::{HypothesisList, HypothesisSpace, ObservationModel};
        let h = &self.hypotheses;
        let hypotheses = match h.kind {
            HypothesesKind::Grid => {
                if h.file.is_some()
                    || h.params.is_some()
                    || h.log_prior.is_some()
                    || h.log_proposal.is_some()
                {
                    return Err("a grid takes `k` and `d` only".into());
                }
                let (Some(k), Some(d)) = (h.k, h.d) else {
                    return Err(format!(
                        "missing field `{}` of the grid",
                        if h.k.is_none() { "k" } else { "d" }
                    ));
                };
                if limits.sampled_grid {
                    // never enumerated: only its indices must fit
                    HypothesisSpace::grid_within(k, d, usize::MAX, usize::MAX).map_err(|_| {
                        format!(
                            "a grid of {k}^{d} hypotheses is too large: even an audit on sampled \
                             hypotheses needs k^d·d < 2^64 (a hypothesis's grid index is a 64-bit integer)"
                        )
                    })?
                } else {
                    HypothesisSpace::grid_within(
                        k,
                        d,
                        limits.max_hypotheses,
                        limits.max_parameters,
                    )?
                }
            }
            HypothesesKind::List => {
                if h.k.is_some() || h.d.is_some() {
                    return Err(
                        "a hypothesis list takes `file` or `params`, not `k` and `d`".into(),
                    );
                }
                let (rows, lp, lr) = match (&h.file, &h.params) {
                    (Some(_), Some(_)) => {
                        return Err("give a hypothesis file or inline params, not both".into())
                    }
                    (None, None) => return Err("a hypothesis list needs `file` or `params`".into()),
                    (None, Some(p)) => {
                        if let Some((i, len)) = p.ragged {
                            return Err(format!(
                                "hypothesis {i} has {len} parameters, hypothesis 0 has {}",
                                p.width
                            ));
                        }
                        check_list_size(p.n_rows, p.values.len(), limits)?;
                        (p.clone(), h.log_prior.clone(), h.log_proposal.clone())
                    }
                    (Some(f), None) => {
                        if h.log_prior.is_some() || h.log_proposal.is_some() {
                            return Err("with a hypothesis file, give log_prior/log_proposal per line of the file".into());
                        }
                        read_hypothesis_file(&base_dir.join(f), limits)
                            .map_err(|e| e.to_string())?
                    }
                };
                let params =
                    ndarray::Array2::from_shape_vec((rows.n_rows, rows.width), rows.values)
                        .map_err(|e| e.to_string())?;
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

/// Refuses a list of `n` hypotheses with `parameters` numbers in all beyond the limits.
fn check_list_size(
    n: usize,
    parameters: usize,
    limits: &Limits,
) -> std::result::Result<(), String> {
    if n > limits.max_hypotheses {
        return Err(format!(
            "{n} hypotheses, more than the limit of {} (raise it with --max-hypotheses)",
            limits.max_hypotheses
        ));
    }
    if parameters > limits.max_parameters {
        return Err(format!(
            "{parameters} hypothesis parameters, more than the limit of {} (raise it with --max-parameters)",
            limits.max_parameters
        ));
    }
    Ok(())
}

type HypothesisColumns = (Rows, Option<Vec<f64>>, Option<Vec<f64>>);

/// Reads a JSONL hypothesis file: `{"params":[…], "log_prior":…, "log_proposal":…}`
/// per line. It must be a regular file (a device or a pipe could be endless),
/// and is read line by line within `limits`, so memory stays within the
/// hypotheses it may hold.
pub fn read_hypothesis_file(path: &PathBuf, limits: &Limits) -> Result<HypothesisColumns> {
    let name = path.display().to_string();
    let not_regular = || {
        Error::input(
            &name,
            None,
            "not a regular file: a hypothesis file must be one (a device or a pipe may never end)",
        )
    };
    // Before opening: opening a FIFO would wait for a writer.
    if !std::fs::metadata(path)
        .map_err(|e| Error::io(path, e))?
        .is_file()
    {
        return Err(not_regular());
    }
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    if !file.metadata().map_err(|e| Error::io(path, e))?.is_file() {
        return Err(not_regular());
    }
    let mut input = std::io::BufReader::with_capacity(1 << 16, file);
    let mut buf = Vec::new();
    let mut rows = Rows::default();
    let (mut lp, mut lr) = (Vec::new(), Vec::new());
    let mut line_no = 0;
    loop {
        line_no += 1;
        match read_line_within(&mut input, &mut buf, limits.max_line_bytes) {
            Ok(None) => break,
            Ok(Some(_)) => {}
            Err(e) => return Err(line_error(&name, line_no, e, limits)),
        }
        let mut text = buf.trim_ascii();
        if line_no == 1 {
            text = strip_bom(text);
        }
        if text.is_empty() {
            continue;
        }
        let at_line = |m: String| Error::input(&name, Some(line_no), m);
        let h: super::format::HypothesisLine =
            serde_json::from_slice(text).map_err(|e| at_line(describe_json_error(&e)))?;
        let n = rows.n_rows;
        if n == 0 {
            rows.width = h.params.len();
        } else if h.params.len() != rows.width {
            return Err(at_line(format!(
                "hypothesis {n} has {} parameters, hypothesis 0 has {}",
                h.params.len(),
                rows.width
            )));
        }
        check_list_size(n + 1, rows.values.len() + h.params.len(), limits).map_err(at_line)?;
        for (col, v, what) in [
            (&mut lp, h.log_prior, "log_prior"),
            (&mut lr, h.log_proposal, "log_proposal"),
        ] {
            match v {
                Some(v) if col.len() == n => col.push(v),
                None if col.is_empty() => {}
                _ => {
                    return Err(at_line(format!(
                        "{what} must be given on every line or on none"
                    )))
                }
            }
        }
        rows.values.extend_from_slice(&h.params);
        rows.n_rows += 1;
    }
    let n = rows.n_rows;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufReader, Cursor, Read};

    #[test]
    fn a_line_without_end_is_read_no_further_than_the_limit() {
        let max = 1000;
        let mut endless = BufReader::with_capacity(64, std::io::repeat(b'x'));
        let mut buf = Vec::new();
        let got = read_line_within(&mut endless, &mut buf, max);
        assert!(matches!(got, Err(LineError::TooLong)), "{got:?}");
        assert!(buf.capacity() <= 2 * (max + 1), "{}", buf.capacity());
    }

    #[test]
    fn the_limit_counts_a_line_without_its_end() {
        let mut buf = Vec::new();
        let text = b"abcd\r\nabcde\nabc";
        let mut input = Cursor::new(&text[..]);
        assert_eq!(read_line_within(&mut input, &mut buf, 4).unwrap(), Some(6));
        assert_eq!(buf, b"abcd");
        assert!(matches!(
            read_line_within(&mut input, &mut buf, 4),
            Err(LineError::TooLong)
        ));
        let mut input = Cursor::new(&text[6..]);
        assert_eq!(read_line_within(&mut input, &mut buf, 5).unwrap(), Some(6));
        assert_eq!(buf, b"abcde");
        assert_eq!(read_line_within(&mut input, &mut buf, 5).unwrap(), Some(3));
        assert_eq!(buf, b"abc");
        assert_eq!(read_line_within(&mut input, &mut buf, 5).unwrap(), None);
    }

    #[test]
    fn an_endless_line_in_a_log_is_an_error_at_its_line() {
        let head = concat!(
            r#"{"type":"model","hypotheses":{"kind":"grid","k":2,"d":1},"observation":{"kind":"bernoulli"}}"#,
            "\n",
            r#"{"type":"stream","candidates":[[0],[1]]}"#,
            "\n"
        );
        let input = BufReader::new(Cursor::new(head).chain(std::io::repeat(b' ')));
        let limits = Limits {
            max_line_bytes: 1 << 12,
            ..Limits::default()
        };
        let mut r = LogReader::with_limits("t.jsonl", input, Path::new("."), None, &limits)
            .expect("the model line is short");
        assert!(matches!(r.next_event(), Ok(Some(LogEvent::Stream(_)))));
        let e = r.next_event().unwrap_err().to_string();
        assert_eq!(
            e,
            "t.jsonl:3: the line is longer than the limit of 4096 bytes (raise it with --max-line-bytes)"
        );
    }
}
