//! Columnar logs: one row per step, read from any stream of Arrow record
//! batches (a Parquet file's, or pyarrow's and polars' through the Arrow C
//! stream interface) one batch at a time, into the same validated
//! `LogEvent`s as the JSON Lines reader. Schema in docs/parquet-log.md.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{
    DataType, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, SchemaRef, UInt16Type,
    UInt32Type, UInt64Type, UInt8Type,
};
use arrow::record_batch::{RecordBatch, RecordBatchReader};

use super::format::{ModelSpec, Rows};
use super::reader::{check_step, check_table, check_truth};
use super::{CandidateTable, Limits};
use super::{EventSource, LogEvent, LogInput, StepRecord, StreamInfo};
use crate::error::RowPlace;
use crate::model::Model;
use crate::{Error, Result};

/// The schema metadata key that holds the model (a model line's JSON).
pub const MODEL_KEY: &str = "gpubound.model";

/// The column names.
pub const STREAM: &str = "stream";
pub const STEP: &str = "step";
pub const ACTION: &str = "action";
pub const OUTCOME: &str = "outcome";
pub const CANDIDATES: &str = "candidates";
pub const TRUE_HYPOTHESIS: &str = "true_hypothesis";
pub const TRUE_PARAMS: &str = "true_params";
/// Optional: the row's 1-based row in the log as a whole, which a shard of
/// a log (the streams a cluster task audits) carries so that its report and
/// errors name the log's rows, and which shows a stream split in two.
pub const LINE: &str = "line";

/// Where each row group of a Parquet log ends (cumulative row counts), to
/// name a row's group, and for a log kept in several files, which file
/// holds it; empty for inputs without row groups.
#[derive(Debug, Clone, Default)]
pub struct RowGroups {
    ends: Vec<usize>,
    /// Per file (in order): its name and the index in `ends` of its first
    /// group; empty for a log in one file.
    files: Vec<(String, usize)>,
}

impl RowGroups {
    pub fn from_counts(counts: impl IntoIterator<Item = usize>) -> Self {
        let mut total = 0;
        RowGroups {
            ends: counts
                .into_iter()
                .map(|n| {
                    total += n;
                    total
                })
                .collect(),
            files: Vec::new(),
        }
    }

    /// The row groups of several files read as one log, in order.
    pub fn from_files(files: Vec<(String, Vec<usize>)>) -> Self {
        let mut firsts = Vec::with_capacity(files.len());
        let mut counts = Vec::new();
        for (name, groups) in files {
            firsts.push((name, counts.len()));
            counts.extend(groups);
        }
        RowGroups {
            files: firsts,
            ..Self::from_counts(counts)
        }
    }

    /// The place of the 1-based `row` of the whole input.
    pub fn place(&self, row: usize) -> RowPlace {
        let g = self.ends.partition_point(|&end| end < row);
        if self.ends.is_empty() || g == self.ends.len() {
            return RowPlace::default();
        }
        let start = if g == 0 { 0 } else { self.ends[g - 1] };
        // the file holding group g, and its groups
        let f = self.files.partition_point(|(_, first)| *first <= g);
        let (file, first, last) = match f {
            0 => (None, 0, self.ends.len()),
            f => {
                let (name, first) = &self.files[f - 1];
                let last = self.files.get(f).map_or(self.ends.len(), |(_, next)| *next);
                (Some(name.clone()), *first, last)
            }
        };
        RowPlace {
            row_group: Some((g - first + 1, last - first, row - start)),
            file,
        }
    }
}

/// Column indices in the batches' schema.
#[derive(Debug, Clone, Copy)]
struct Columns {
    stream: usize,
    step: usize,
    action: usize,
    outcome: usize,
    candidates: usize,
    true_hypothesis: Option<usize>,
    true_params: Option<usize>,
    line: Option<usize>,
}

fn is_integer(t: &DataType) -> bool {
    t.is_integer()
}

/// A list of `inner` values: list, large list or fixed-size list.
fn list_of(t: &DataType, inner: impl Fn(&DataType) -> bool) -> bool {
    match t {
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            inner(f.data_type())
        }
        _ => false,
    }
}

fn is_features(t: &DataType) -> bool {
    list_of(t, |t| *t == DataType::Float64)
}

impl Columns {
    /// Finds the columns and checks their types; any other column is an
    /// error, as an unknown field of a JSON line is (a misspelt optional
    /// column would otherwise be silently ignored).
    fn find(schema: &SchemaRef) -> std::result::Result<Columns, String> {
        let (mut stream, mut step, mut action, mut outcome, mut candidates) =
            (None, None, None, None, None);
        let (mut true_hypothesis, mut true_params, mut line) = (None, None, None);
        for (i, f) in schema.fields().iter().enumerate() {
            let t = f.data_type();
            let (slot, ok, wanted) = match f.name().as_str() {
                STREAM => (
                    &mut stream,
                    matches!(
                        t,
                        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Int64
                    ),
                    "utf8 or int64",
                ),
                STEP => (&mut step, is_integer(t), "an integer type (int64)"),
                ACTION => (&mut action, is_integer(t), "an integer type"),
                OUTCOME => (&mut outcome, *t == DataType::Float64, "float64"),
                CANDIDATES => (
                    &mut candidates,
                    list_of(t, is_features),
                    "a list of lists of float64",
                ),
                TRUE_HYPOTHESIS => (&mut true_hypothesis, is_integer(t), "an integer type"),
                TRUE_PARAMS => (&mut true_params, is_features(t), "a list of float64"),
                LINE => (&mut line, is_integer(t), "an integer type (uint64)"),
                other => {
                    return Err(format!(
                        "unknown column `{other}`: a log has the columns stream, step, action, \
                         outcome, candidates and optionally true_hypothesis or true_params, and line"
                    ))
                }
            };
            if !ok {
                return Err(format!("column `{}` is {t}, expected {wanted}", f.name()));
            }
            if slot.replace(i).is_some() {
                return Err(format!("column `{}` appears twice", f.name()));
            }
        }
        let need =
            |c: Option<usize>, name: &str| c.ok_or_else(|| format!("missing column `{name}`"));
        if true_hypothesis.is_some() && true_params.is_some() {
            return Err("give a true_hypothesis or a true_params column, not both".into());
        }
        Ok(Columns {
            stream: need(stream, STREAM)?,
            step: need(step, STEP)?,
            action: need(action, ACTION)?,
            outcome: need(outcome, OUTCOME)?,
            candidates: need(candidates, CANDIDATES)?,
            true_hypothesis,
            true_params,
            line,
        })
    }
}

/// An integer cell of any integer type; `None` when null.
fn int_at(a: &ArrayRef, i: usize) -> Option<i128> {
    if a.is_null(i) {
        return None;
    }
    macro_rules! get {
        ($($t:ty),*) => {
            $(if let Some(p) = a.as_primitive_opt::<$t>() {
                return Some(p.value(i) as i128);
            })*
        };
    }
    get!(Int64Type, Int32Type, Int16Type, Int8Type, UInt64Type, UInt32Type, UInt16Type, UInt8Type);
    None
}

/// The `i`-th item of a list, large list or fixed-size list.
fn list_item(a: &dyn Array, i: usize) -> Option<ArrayRef> {
    match a.data_type() {
        DataType::List(_) => a.as_list_opt::<i32>().map(|l| l.value(i)),
        DataType::LargeList(_) => a.as_list_opt::<i64>().map(|l| l.value(i)),
        DataType::FixedSizeList(..) => a.as_fixed_size_list_opt().map(|l| l.value(i)),
        _ => None,
    }
}

/// A list of float64 as numbers; `what` names it in errors.
fn floats(a: &dyn Array, what: &str) -> std::result::Result<Vec<f64>, String> {
    let f = a
        .as_primitive_opt::<Float64Type>()
        .ok_or_else(|| format!("{what} is not a list of float64"))?;
    if let Some(j) = (0..f.len()).find(|&j| f.is_null(j)) {
        return Err(format!("{what} has a null entry at {j} (0-based)"));
    }
    Ok(f.values().to_vec())
}

/// The candidate table of row `i`, `None` when null.
fn table_at(a: &ArrayRef, i: usize) -> std::result::Result<Option<Rows>, String> {
    if a.is_null(i) {
        return Ok(None);
    }
    let table = list_item(a.as_ref(), i).ok_or("candidates is not a list")?;
    let mut rows = Rows::default();
    for j in 0..table.len() {
        if table.is_null(j) {
            return Err(format!("candidate {j} is null"));
        }
        let x = list_item(table.as_ref(), j).ok_or("candidates is not a list of lists")?;
        let x = x
            .as_primitive_opt::<Float64Type>()
            .ok_or("candidates is not a list of lists of float64")?;
        if x.null_count() > 0 {
            return Err(format!("candidate {j} has a null feature"));
        }
        rows.values.extend_from_slice(x.values());
        if rows.n_rows == 0 {
            rows.width = x.len();
        } else if x.len() != rows.width && rows.ragged.is_none() {
            rows.ragged = Some((rows.n_rows, x.len()));
        }
        rows.n_rows += 1;
    }
    Ok(Some(rows))
}

/// The stream's key: its id as read, to see where the next stream begins.
fn stream_at(a: &ArrayRef, i: usize) -> Option<String> {
    if a.is_null(i) {
        return None;
    }
    match a.data_type() {
        DataType::Utf8 => a.as_string_opt::<i32>().map(|s| s.value(i).to_string()),
        DataType::LargeUtf8 => a.as_string_opt::<i64>().map(|s| s.value(i).to_string()),
        DataType::Utf8View => a.as_string_view_opt().map(|s| s.value(i).to_string()),
        _ => int_at(a, i).map(|n| n.to_string()),
    }
}

/// One row, read but not yet validated against the model.
struct RawRow {
    stream: String,
    step: i128,
    action: i128,
    outcome: Option<f64>,
    candidates: Option<Rows>,
    true_hypothesis: Option<i128>,
    true_params: Option<Vec<f64>>,
}

/// The row's `line` cell, when the log has that column: checked first, so
/// that any other error names the log's row.
fn line_at(b: &RecordBatch, c: &Columns, i: usize) -> Option<std::result::Result<usize, String>> {
    let k = c.line?;
    Some(match int_at(b.column(k), i) {
        None => Err("line is null".into()),
        Some(l) if l < 1 => Err(format!("line {l} is out of range: lines count from 1")),
        Some(l) => usize::try_from(l).map_err(|_| format!("line {l} is out of range")),
    })
}

fn read_row(b: &RecordBatch, c: &Columns, i: usize) -> std::result::Result<RawRow, String> {
    let col = |k: usize| b.column(k);
    let stream = stream_at(col(c.stream), i).ok_or("stream is null")?;
    let step = int_at(col(c.step), i).ok_or("step is null")?;
    let action = int_at(col(c.action), i).ok_or("action is null")?;
    let outcome = col(c.outcome);
    let outcome = if outcome.is_null(i) {
        None
    } else {
        let y = outcome
            .as_primitive_opt::<Float64Type>()
            .ok_or("outcome is not float64")?
            .value(i);
        if !y.is_finite() {
            return Err(format!("outcome must be a finite number, got {y}"));
        }
        Some(y)
    };
    let candidates = table_at(col(c.candidates), i)?;
    let true_hypothesis = c.true_hypothesis.and_then(|k| int_at(col(k), i));
    let true_params = match c.true_params {
        Some(k) if !col(k).is_null(i) => {
            let w = list_item(col(k).as_ref(), i).ok_or("true_params is not a list")?;
            Some(floats(w.as_ref(), "true_params")?)
        }
        _ => None,
    };
    Ok(RawRow {
        stream,
        step,
        action,
        outcome,
        candidates,
        true_hypothesis,
        true_params,
    })
}

/// The stream being read.
struct Current {
    info: Arc<StreamInfo>,
    step: usize,
    /// The line of its last step, which the next must directly follow.
    line: usize,
    /// Its first row's truth, which every later row repeats or leaves null.
    true_hypothesis: Option<i128>,
    true_params: Option<Vec<f64>>,
}

/// Reads a columnar log from Arrow record batches, one batch in memory at
/// a time. Rows are numbered from 1 over the whole input.
pub struct ColumnarReader<R> {
    name: String,
    batches: R,
    columns: Columns,
    schema: SchemaRef,
    limits: Limits,
    model: Model,
    spec: Option<ModelSpec>,
    hypothesis_file: Option<PathBuf>,
    groups: RowGroups,
    batch: Option<RecordBatch>,
    next_in_batch: usize,
    /// Rows read so far: the number of the last one.
    row: usize,
    /// The last row's line in the log: `row`, or its `line` cell.
    line: usize,
    current: Option<Current>,
    streams: usize,
    steps: usize,
    /// The step of a row that also began a stream, yielded after it.
    pending: Option<StepRecord>,
    /// (bytes, rows) of the whole input when known, for progress.
    size: Option<(u64, usize)>,
}

impl<R: RecordBatchReader> ColumnarReader<R> {
    /// Reads `batches`; the model is the schema's `gpubound.model` metadata
    /// unless `model_override` is given, which wins. `base_dir` resolves a
    /// hypothesis file the model names.
    pub fn new(
        name: impl Into<String>,
        batches: R,
        base_dir: &Path,
        model_override: Option<Model>,
        limits: &Limits,
    ) -> Result<Self> {
        Self::with_row_groups(
            name,
            batches,
            base_dir,
            model_override,
            limits,
            RowGroups::default(),
            None,
        )
    }

    /// `new` for an input in row groups, of `size` (bytes, rows) in all.
    pub(crate) fn with_row_groups(
        name: impl Into<String>,
        batches: R,
        base_dir: &Path,
        model_override: Option<Model>,
        limits: &Limits,
        groups: RowGroups,
        size: Option<(u64, usize)>,
    ) -> Result<Self> {
        let name = name.into();
        let schema = batches.schema();
        let columns = Columns::find(&schema).map_err(|m| Error::input(&name, None, m))?;
        let mut spec = None;
        let mut from_log = None;
        let mut hypothesis_file = None;
        if let Some(text) = schema.metadata().get(MODEL_KEY) {
            let max = limits.max_line_bytes;
            if text.len() > max {
                return Err(Error::input(
                    &name,
                    None,
                    format!("the model metadata `{MODEL_KEY}` is longer than the limit of {max} bytes (raise it with --max-line-bytes)"),
                ));
            }
            let s = super::parse_model_spec(
                &format!("{name} (metadata {MODEL_KEY})"),
                text.as_bytes(),
            )?;
            hypothesis_file = s.hypothesis_file(base_dir);
            from_log = Some(
                s.build(base_dir, limits)
                    .map_err(|m| Error::input(&name, None, format!("model: {m}")))?,
            );
            spec = Some(s);
        }
        let model = model_override.or(from_log).ok_or_else(|| {
            Error::input(
                &name,
                None,
                format!("no model: the schema's metadata has no `{MODEL_KEY}`; give --model FILE"),
            )
        })?;
        Ok(ColumnarReader {
            name,
            batches,
            columns,
            schema,
            limits: *limits,
            model,
            spec,
            hypothesis_file,
            groups,
            batch: None,
            next_in_batch: 0,
            row: 0,
            line: 0,
            current: None,
            streams: 0,
            steps: 0,
            pending: None,
            size,
        })
    }

    pub fn steps_read(&self) -> usize {
        self.steps
    }

    pub fn streams_read(&self) -> usize {
        self.streams
    }

    fn err_row(&self, row: usize, message: impl Into<String>) -> Error {
        Error::input_row(&self.name, row, self.groups.place(row), message)
    }

    /// An error at the last row read, named by its line in the log.
    fn err_here(&self, message: impl Into<String>) -> Error {
        if self.columns.line.is_some() {
            // a shard's rows: their row groups are not the log's
            Error::input_row(&self.name, self.line, RowPlace::default(), message)
        } else {
            self.err_row(self.row, message)
        }
    }

    /// The next row, read; `None` at the end.
    fn next_row(&mut self) -> Result<Option<RawRow>> {
        loop {
            if let Some(b) = &self.batch {
                if self.next_in_batch < b.num_rows() {
                    let i = self.next_in_batch;
                    self.next_in_batch += 1;
                    self.row += 1;
                    match line_at(b, &self.columns, i) {
                        None => self.line = self.row,
                        Some(Err(m)) => return Err(self.err_row(self.row, m)),
                        Some(Ok(l)) if l <= self.line => {
                            return Err(self.err_row(
                                self.row,
                                format!(
                                    "line {l} after line {}: rows are in the log's order",
                                    self.line
                                ),
                            ))
                        }
                        Some(Ok(l)) => self.line = l,
                    }
                    let row = read_row(b, &self.columns, i);
                    return row.map(Some).map_err(|m| self.err_here(m));
                }
            }
            self.batch = None;
            match self.batches.next() {
                None => return Ok(None),
                Some(Err(e)) => return Err(self.err_row(self.row + 1, format!("cannot read: {e}"))),
                Some(Ok(b)) => {
                    // An Arrow stream from elsewhere may change its schema.
                    let types = |s: &SchemaRef| {
                        s.fields()
                            .iter()
                            .map(|f| (f.name().clone(), f.data_type().clone()))
                            .collect::<Vec<_>>()
                    };
                    if types(&b.schema()) != types(&self.schema) {
                        return Err(self
                            .err_row(self.row + 1, "a batch's schema differs from the stream's"));
                    }
                    self.batch = Some(b);
                    self.next_in_batch = 0;
                }
            }
        }
    }

    fn table(&self, rows: Rows) -> Result<CandidateTable> {
        check_table(
            rows,
            "candidates",
            self.model.hypotheses.dim(),
            &self.limits,
        )
        .map_err(|m| self.err_here(m))
    }

    /// A stream's first row: its info, from the row's candidates and truth.
    fn begin_stream(&mut self, r: &mut RawRow) -> Result<()> {
        let at = |m: String| self.err_here(m);
        let true_hypothesis = match r.true_hypothesis {
            Some(i) => Some(usize::try_from(i).map_err(|_| {
                at(format!(
                    "true_hypothesis {i} is out of range: there are {} hypotheses",
                    self.model.hypotheses.len()
                ))
            })?),
            None => None,
        };
        let true_params =
            check_truth(&self.model, true_hypothesis, r.true_params.clone()).map_err(at)?;
        let table = match r.candidates.take() {
            Some(rows) => Some(Arc::new(self.table(rows)?)),
            None => None,
        };
        self.streams += 1;
        self.current = Some(Current {
            info: Arc::new(StreamInfo {
                id: std::mem::take(&mut r.stream),
                line: self.line,
                table,
                true_params,
            }),
            step: 0,
            line: self.line,
            true_hypothesis: r.true_hypothesis,
            true_params: r.true_params.take(),
        });
        Ok(())
    }

    /// The next stream or step; `None` at the end. An error at the end if
    /// the log held no step at all.
    pub fn next_event(&mut self) -> Result<Option<LogEvent>> {
        if let Some(step) = self.pending.take() {
            self.steps += 1;
            return Ok(Some(LogEvent::Step(step)));
        }
        let Some(mut r) = self.next_row()? else {
            if self.steps == 0 {
                return Err(Error::input(
                    &self.name,
                    None,
                    "empty log: it holds no steps",
                ));
            }
            return Ok(None);
        };
        let at = |s: &Self, m: String| s.err_here(m);
        // Step 1 begins a stream; any other step continues the current one.
        let begins = r.step == 1;
        if !begins {
            let message = match &self.current {
                _ if r.step < 1 => format!("step {} is out of range: steps count from 1", r.step),
                Some(c)
                    if c.info.id == r.stream
                        && r.step == c.step as i128 + 1
                        && self.line != c.line + 1 =>
                {
                    format!(
                        "step {} of stream {} at line {} does not follow its step {} at line {}: a stream's rows are contiguous in the log (is the stream split in two?)",
                        r.step, r.stream, self.line, c.step, c.line
                    )
                }
                Some(c) if c.info.id == r.stream && r.step == c.step as i128 + 1 => String::new(),
                Some(c) if c.info.id == r.stream && r.step <= c.step as i128 => format!(
                    "step {} after step {} of stream {}: steps must be 1, 2, … in order, without repeats",
                    r.step, c.step, r.stream
                ),
                Some(c) if c.info.id == r.stream => format!(
                    "step {} after step {} of stream {}: a gap (steps must be 1, 2, … in order)",
                    r.step, c.step, r.stream
                ),
                _ => format!(
                    "stream {} begins at step {}: a stream's rows are contiguous, from step 1",
                    r.stream, r.step
                ),
            };
            if !message.is_empty() {
                return Err(at(self, message));
            }
        } else {
            self.begin_stream(&mut r)?;
        }
        let Some(c) = &self.current else {
            return Err(at(self, "internal: a row outside any stream".into()));
        };
        if !begins {
            if r.true_hypothesis.is_some() && r.true_hypothesis != c.true_hypothesis {
                return Err(at(self, format!(
                    "true_hypothesis differs from its stream's first row (row {}): it is constant within a stream",
                    c.info.line
                )));
            }
            let same = |a: &[f64], b: &[f64]| {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
            };
            if let Some(w) = &r.true_params {
                if !c.true_params.as_ref().is_some_and(|first| same(first, w)) {
                    return Err(at(self, format!(
                        "true_params differs from its stream's first row (row {}): it is constant within a stream",
                        c.info.line
                    )));
                }
            }
        }
        let (table, shared_table) = match (r.candidates.take(), &c.info.table) {
            (Some(rows), _) => (Arc::new(self.table(rows)?), false),
            (None, Some(t)) if !begins => (t.clone(), true),
            (None, Some(t)) => (t.clone(), false),
            (None, None) => {
                return Err(at(
                    self,
                    "candidates is null and the stream's first row gives none".into(),
                ))
            }
        };
        let action = usize::try_from(r.action).unwrap_or(usize::MAX);
        if action == usize::MAX {
            return Err(at(
                self,
                format!(
                    "action {} is out of range: there are {} candidates (0-based)",
                    r.action, table.n_candidates
                ),
            ));
        }
        check_step(&self.model, action, r.outcome, &table).map_err(|m| at(self, m))?;
        let info = c.info.clone();
        let step = c.step + 1;
        let line = self.line;
        if let Some(c) = self.current.as_mut() {
            c.step = step;
            c.line = line;
        }
        let record = StepRecord {
            line: self.line,
            step,
            action,
            outcome: r.outcome,
            table,
            shared_table,
        };
        if begins {
            self.pending = Some(record);
            return Ok(Some(LogEvent::Stream(info)));
        }
        self.steps += 1;
        Ok(Some(LogEvent::Step(record)))
    }
}

impl<R: RecordBatchReader> EventSource for ColumnarReader<R> {
    fn model(&self) -> &Model {
        &self.model
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn next_event(&mut self) -> Result<Option<LogEvent>> {
        ColumnarReader::next_event(self)
    }
    fn progress(&self) -> (u64, usize) {
        let bytes = match self.size {
            Some((bytes, rows)) if rows > 0 => {
                (bytes as f64 * (self.row as f64 / rows as f64)) as u64
            }
            _ => 0,
        };
        (bytes, self.steps)
    }
}

impl<R: RecordBatchReader + Send> LogInput for ColumnarReader<R> {
    fn model_mut(&mut self) -> &mut Model {
        &mut self.model
    }
    fn hypothesis_file(&self) -> Option<&Path> {
        self.hypothesis_file.as_deref()
    }
    fn model_spec(&self) -> Option<&ModelSpec> {
        self.spec.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_is_placed_in_its_group() {
        let g = RowGroups::from_counts([3, 2, 4]);
        let at = |row| g.place(row).row_group;
        assert_eq!(at(1), Some((1, 3, 1)));
        assert_eq!(at(3), Some((1, 3, 3)));
        assert_eq!(at(4), Some((2, 3, 1)));
        assert_eq!(at(6), Some((3, 3, 1)));
        assert_eq!(at(9), Some((3, 3, 4)));
        assert_eq!(at(10), None);
        assert_eq!(RowGroups::default().place(1).row_group, None);
    }

    #[test]
    fn a_row_of_a_log_in_several_files_is_placed_in_its_file() {
        let g = RowGroups::from_files(vec![("a".into(), vec![3, 2]), ("b".into(), vec![4])]);
        let at = |row| {
            let p = g.place(row);
            (p.file, p.row_group)
        };
        assert_eq!(at(1), (Some("a".into()), Some((1, 2, 1))));
        assert_eq!(at(5), (Some("a".into()), Some((2, 2, 2))));
        assert_eq!(at(6), (Some("b".into()), Some((1, 1, 1))));
        assert_eq!(at(9), (Some("b".into()), Some((1, 1, 4))));
        assert_eq!(at(10), (None, None));
    }
}
