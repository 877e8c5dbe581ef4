//! Log writers: the events a reader yields, written back as a log in either
//! format (`gpubound convert`; tests build Parquet logs with them). Numbers
//! are written exactly (f64 in Parquet, shortest round-trip text in JSON),
//! so that a converted log gives the audit of the original, bit for bit.

use std::io::Write;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Builder, Int64Builder, ListBuilder, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use super::columnar::{ACTION, CANDIDATES, MODEL_KEY, OUTCOME, STEP, STREAM, TRUE_PARAMS};
use super::{CandidateTable, LogEvent, ModelSpec, StepRecord, StreamInfo};
use crate::{Error, Result};

/// Writes a log, event by event.
pub trait LogWriter {
    fn write_event(&mut self, event: &LogEvent) -> Result<()>;
    /// Completes the log; returns how many streams without steps were left
    /// out (a columnar log has a row per step, so none for such a stream).
    fn finish(self: Box<Self>) -> Result<usize>;
}

fn write_err(e: impl std::fmt::Display) -> Error {
    Error::Report(format!("writing the log: {e}"))
}

/// The model line's JSON: the spec with its `type` tag.
fn model_json(spec: &ModelSpec, tagged: bool) -> Result<String> {
    let mut v = serde_json::to_value(spec).map_err(write_err)?;
    if let (true, Some(o)) = (tagged, v.as_object_mut()) {
        o.insert("type".into(), "model".into());
    }
    serde_json::to_string(&v).map_err(write_err)
}

/// A candidate table as JSON rows.
struct TableJson<'a>(&'a CandidateTable);

impl serde::Serialize for TableJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_seq((0..self.0.n_candidates).map(|a| self.0.candidate(a)))
    }
}

/// JSON Lines: a model line, a stream line per stream (with its shared
/// table), a step line per step (with its own table when it has one).
pub struct JsonlLogWriter<W: Write> {
    out: W,
    stream: Option<Arc<StreamInfo>>,
}

impl<W: Write> JsonlLogWriter<W> {
    pub fn new(mut out: W, spec: &ModelSpec) -> Result<Self> {
        writeln!(out, "{}", model_json(spec, true)?).map_err(write_err)?;
        Ok(JsonlLogWriter { out, stream: None })
    }
}

impl<W: Write> LogWriter for JsonlLogWriter<W> {
    fn write_event(&mut self, event: &LogEvent) -> Result<()> {
        #[derive(serde::Serialize)]
        struct StreamLine<'a> {
            #[serde(rename = "type")]
            kind: &'static str,
            id: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            candidates: Option<TableJson<'a>>,
            #[serde(skip_serializing_if = "Option::is_none")]
            true_params: Option<&'a [f64]>,
        }
        #[derive(serde::Serialize)]
        struct StepLine<'a> {
            #[serde(rename = "type")]
            kind: &'static str,
            action: usize,
            #[serde(skip_serializing_if = "Option::is_none")]
            outcome: Option<f64>,
            #[serde(skip_serializing_if = "Option::is_none")]
            candidates: Option<TableJson<'a>>,
        }
        let line = match event {
            LogEvent::Stream(info) => {
                self.stream = Some(info.clone());
                serde_json::to_string(&StreamLine {
                    kind: "stream",
                    id: &info.id,
                    candidates: info.table.as_deref().map(TableJson),
                    true_params: info.true_params.as_deref(),
                })
            }
            LogEvent::Step(s) => {
                // The stream's own table (the same one, not an equal one) is not repeated.
                let shared = self
                    .stream
                    .as_ref()
                    .and_then(|i| i.table.as_ref())
                    .is_some_and(|t| Arc::ptr_eq(t, &s.table));
                serde_json::to_string(&StepLine {
                    kind: "step",
                    action: s.action,
                    outcome: s.outcome,
                    candidates: (!shared).then_some(TableJson(&s.table)),
                })
            }
        }
        .map_err(write_err)?;
        writeln!(self.out, "{line}").map_err(write_err)
    }

    fn finish(mut self: Box<Self>) -> Result<usize> {
        self.out.flush().map_err(write_err)?;
        Ok(0)
    }
}

/// Rows per row group of a written Parquet log (fewer when the candidate
/// tables are large: see [`ROW_GROUP_VALUES`]).
pub const ROW_GROUP_ROWS: usize = 65_536;
/// Candidate features per row group, which bounds a group's memory when
/// every step has its own large table.
pub const ROW_GROUP_VALUES: usize = 1 << 23;

/// The Arrow schema a written Parquet log has.
pub fn columnar_schema() -> SchemaRef {
    let item = |t: DataType| Arc::new(Field::new("item", t, true));
    let features = DataType::List(item(DataType::Float64));
    Arc::new(Schema::new(vec![
        Field::new(STREAM, DataType::Utf8, false),
        Field::new(STEP, DataType::Int64, false),
        Field::new(ACTION, DataType::Int64, false),
        Field::new(OUTCOME, DataType::Float64, true),
        Field::new(CANDIDATES, DataType::List(item(features.clone())), true),
        Field::new(TRUE_PARAMS, features, true),
    ]))
}

/// Parquet: one row per step, in row groups of bounded size; the model in
/// the file's `gpubound.model` metadata.
pub struct ParquetLogWriter<W: Write + Send> {
    out: ArrowWriter<W>,
    schema: SchemaRef,
    stream: StringBuilder,
    step: Int64Builder,
    action: Int64Builder,
    outcome: Float64Builder,
    candidates: ListBuilder<ListBuilder<Float64Builder>>,
    true_params: ListBuilder<Float64Builder>,
    rows: usize,
    values: usize,
    rows_per_group: usize,
    /// The stream being written, and the table its first row gave (rows
    /// with that very table leave it null).
    current: Option<(Arc<StreamInfo>, Option<Arc<CandidateTable>>)>,
    /// Whether the current stream has a row yet.
    has_rows: bool,
    empty_streams: usize,
}

impl<W: Write + Send> ParquetLogWriter<W> {
    pub fn new(out: W, spec: &ModelSpec) -> Result<Self> {
        Self::with_rows_per_group(out, spec, ROW_GROUP_ROWS)
    }

    /// `new` with row groups of at most `rows` rows.
    pub fn with_rows_per_group(out: W, spec: &ModelSpec, rows: usize) -> Result<Self> {
        // The model goes in the Arrow schema's metadata, which the writer
        // stores both in the file's key-value metadata and in the embedded
        // Arrow schema: pyarrow, which reads the latter, keeps it too.
        let model = model_json(spec, false)?;
        let metadata: std::collections::HashMap<String, String> =
            [(MODEL_KEY.to_string(), model.clone())].into();
        let schema = Arc::new(columnar_schema().as_ref().clone().with_metadata(metadata));
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_created_by(format!("gpubound {}", env!("CARGO_PKG_VERSION")))
            .set_key_value_metadata(Some(vec![KeyValue::new(MODEL_KEY.to_string(), model)]))
            .build();
        let out = ArrowWriter::try_new(out, schema.clone(), Some(props)).map_err(write_err)?;
        Ok(ParquetLogWriter {
            out,
            schema,
            stream: StringBuilder::new(),
            step: Int64Builder::new(),
            action: Int64Builder::new(),
            outcome: Float64Builder::new(),
            candidates: ListBuilder::new(ListBuilder::new(Float64Builder::new())),
            true_params: ListBuilder::new(Float64Builder::new()),
            rows: 0,
            values: 0,
            rows_per_group: rows.max(1),
            current: None,
            has_rows: false,
            empty_streams: 0,
        })
    }

    fn append_table(&mut self, t: &CandidateTable) {
        for a in 0..t.n_candidates {
            self.candidates
                .values()
                .values()
                .append_slice(t.candidate(a));
            self.candidates.values().append(true);
        }
        self.candidates.append(true);
        self.values += t.features.len();
    }

    fn write_step(&mut self, s: &StepRecord) -> Result<()> {
        let Some((info, first_table)) = self.current.clone() else {
            return Err(write_err("a step before any stream"));
        };
        let first = !self.has_rows;
        self.stream.append_value(&info.id);
        self.step.append_value(s.step as i64);
        self.action.append_value(s.action as i64);
        self.outcome.append_option(s.outcome);
        if first {
            self.current = Some((info.clone(), Some(s.table.clone())));
            self.append_table(&s.table);
        } else if first_table.is_some_and(|t| Arc::ptr_eq(&t, &s.table)) {
            self.candidates.append_null();
        } else {
            self.append_table(&s.table);
        }
        match (&info.true_params, first) {
            (Some(w), true) => {
                self.true_params.values().append_slice(w);
                self.true_params.append(true);
            }
            _ => self.true_params.append_null(),
        }
        self.has_rows = true;
        self.rows += 1;
        if self.rows >= self.rows_per_group || self.values >= ROW_GROUP_VALUES {
            self.flush_group()?;
        }
        Ok(())
    }

    /// Writes the buffered rows as one row group.
    fn flush_group(&mut self) -> Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.stream.finish()),
            Arc::new(self.step.finish()),
            Arc::new(self.action.finish()),
            Arc::new(self.outcome.finish()),
            Arc::new(self.candidates.finish()),
            Arc::new(self.true_params.finish()),
        ];
        let batch = RecordBatch::try_new(self.schema.clone(), columns).map_err(write_err)?;
        self.out.write(&batch).map_err(write_err)?;
        self.out.flush().map_err(write_err)?;
        self.rows = 0;
        self.values = 0;
        Ok(())
    }
}

impl<W: Write + Send> LogWriter for ParquetLogWriter<W> {
    fn write_event(&mut self, event: &LogEvent) -> Result<()> {
        match event {
            LogEvent::Stream(info) => {
                if self.current.is_some() && !self.has_rows {
                    self.empty_streams += 1;
                }
                self.current = Some((info.clone(), None));
                self.has_rows = false;
                Ok(())
            }
            LogEvent::Step(s) => self.write_step(s),
        }
    }

    fn finish(mut self: Box<Self>) -> Result<usize> {
        if self.current.is_some() && !self.has_rows {
            self.empty_streams += 1;
        }
        self.flush_group()?;
        let empty = self.empty_streams;
        // into_inner writes the footer; the buffered sink is flushed after.
        let mut inner = self.out.into_inner().map_err(write_err)?;
        inner.flush().map_err(write_err)?;
        Ok(empty)
    }
}
