//! Parquet report: one row per (step, candidate), the CSV writer's columns
//! (same names, same order), typed. Rows are buffered in Arrow builders and
//! flushed as one row group once a whole step brings them to
//! [`ROW_GROUP_ROWS`], so memory stays bounded whatever the log's length. Schema in docs/report.md.

use std::io::Write;
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanBuilder, Float64Builder, StringBuilder, UInt64Builder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use super::{csv::header, write_err, ReportSettings, StepWriter};
use crate::audit::StepResult;
use crate::estimators::EstimatorKind;
use crate::Result;

/// Rows per row group (and per Arrow batch held in memory): a group is cut
/// after the first whole step that reaches this many rows.
pub const ROW_GROUP_ROWS: usize = 65_536;

/// The Arrow schema of the report: the CSV header's names with their types.
pub fn schema(settings: &ReportSettings) -> SchemaRef {
    let names = header(settings);
    let n_alpha = settings.alphas.len();
    let mut types: Vec<(DataType, bool)> = vec![
        (DataType::Utf8, false),    // stream
        (DataType::UInt64, false),  // step
        (DataType::UInt64, false),  // line
        (DataType::UInt64, false),  // candidate
        (DataType::Boolean, false), // taken
        (DataType::Float64, true),  // outcome
        (DataType::UInt64, false),  // map_hypothesis
        (DataType::Float64, false), // map_probability
        (DataType::Float64, false), // entropy
    ];
    types.extend((0..n_alpha).map(|_| (DataType::UInt64, false))); // plausible_set_size
    if settings.sampled {
        // csv::SAMPLED_COLUMNS
        types.push((DataType::Float64, false));
        types.push((DataType::Float64, false));
        types.push((DataType::Boolean, false));
        types.push((DataType::UInt64, false));
    }
    types.push((DataType::UInt64, false)); // cautious_hypothesis
    let nullable = |kind: EstimatorKind| kind == EstimatorKind::Oracle;
    for e in &settings.estimators {
        types.push((DataType::Float64, nullable(e.kind)));
    }
    for _ in &settings.thresholds {
        for e in &settings.estimators {
            types.push((DataType::Boolean, nullable(e.kind)));
        }
    }
    debug_assert_eq!(names.len(), types.len());
    Arc::new(Schema::new(
        names
            .into_iter()
            .zip(types)
            .map(|(name, (ty, null))| Field::new(name, ty, null))
            .collect::<Vec<_>>(),
    ))
}

/// The sample set's columns.
struct SampledColumns {
    ess: Float64Builder,
    log_normaliser: Float64Builder,
    redrawn: BooleanBuilder,
    distinct: UInt64Builder,
}

/// The builders of one batch, column by column.
struct Columns {
    stream: StringBuilder,
    step: UInt64Builder,
    line: UInt64Builder,
    candidate: UInt64Builder,
    taken: BooleanBuilder,
    outcome: Float64Builder,
    map_hypothesis: UInt64Builder,
    map_probability: Float64Builder,
    entropy: Float64Builder,
    plausible_set_size: Vec<UInt64Builder>,
    /// an audit on sampled hypotheses (`csv::SAMPLED_COLUMNS`)
    sampled: Option<SampledColumns>,
    cautious_hypothesis: UInt64Builder,
    /// per estimator
    estimates: Vec<Float64Builder>,
    /// `[threshold][estimator]`, flattened
    rejected: Vec<BooleanBuilder>,
    rows: usize,
}

impl Columns {
    fn new(settings: &ReportSettings) -> Self {
        let n = ROW_GROUP_ROWS;
        let n_est = settings.estimators.len();
        Columns {
            stream: StringBuilder::with_capacity(n, 16 * n),
            step: UInt64Builder::with_capacity(n),
            line: UInt64Builder::with_capacity(n),
            candidate: UInt64Builder::with_capacity(n),
            taken: BooleanBuilder::with_capacity(n),
            outcome: Float64Builder::with_capacity(n),
            map_hypothesis: UInt64Builder::with_capacity(n),
            map_probability: Float64Builder::with_capacity(n),
            entropy: Float64Builder::with_capacity(n),
            plausible_set_size: (0..settings.alphas.len())
                .map(|_| UInt64Builder::with_capacity(n))
                .collect(),
            sampled: settings.sampled.then(|| SampledColumns {
                ess: Float64Builder::with_capacity(n),
                log_normaliser: Float64Builder::with_capacity(n),
                redrawn: BooleanBuilder::with_capacity(n),
                distinct: UInt64Builder::with_capacity(n),
            }),
            cautious_hypothesis: UInt64Builder::with_capacity(n),
            estimates: (0..n_est)
                .map(|_| Float64Builder::with_capacity(n))
                .collect(),
            rejected: (0..n_est * settings.thresholds.len())
                .map(|_| BooleanBuilder::with_capacity(n))
                .collect(),
            rows: 0,
        }
    }

    /// Appends one row per candidate of the step.
    fn add_step(&mut self, settings: &ReportSettings, s: &StepResult) {
        let c = self;
        for (a, cand) in s.candidates.iter().enumerate() {
            c.stream.append_value(&s.stream.id);
            c.step.append_value(s.record.step as u64);
            c.line.append_value(s.record.line as u64);
            c.candidate.append_value(a as u64);
            c.taken.append_value(a == s.record.action);
            c.outcome.append_option(s.record.outcome);
            c.map_hypothesis
                .append_value(s.posterior.map_hypothesis as u64);
            c.map_probability.append_value(s.posterior.map_probability);
            c.entropy.append_value(s.posterior.entropy);
            for (b, &n) in c
                .plausible_set_size
                .iter_mut()
                .zip(&s.posterior.plausible_set_size)
            {
                b.append_value(n as u64);
            }
            if let Some(b) = &mut c.sampled {
                // every step of a sampled audit has its set (the columns
                // are not nullable): a step without one writes NaN
                let t = s.sampled.unwrap_or(crate::audit::SampledStep {
                    ess: f64::NAN,
                    log_normaliser: f64::NAN,
                    redrawn: false,
                    distinct: 0,
                });
                b.ess.append_value(t.ess);
                b.log_normaliser.append_value(t.log_normaliser);
                b.redrawn.append_value(t.redrawn);
                b.distinct.append_value(t.distinct as u64);
            }
            c.cautious_hypothesis
                .append_value(cand.cautious_hypothesis as u64);
            for (b, e) in c.estimates.iter_mut().zip(&settings.estimators) {
                b.append_option(e.value(cand));
            }
            let n_est = settings.estimators.len();
            for (ti, &thr) in settings.thresholds.iter().enumerate() {
                for (ei, e) in settings.estimators.iter().enumerate() {
                    c.rejected[ti * n_est + ei].append_option(e.value(cand).map(|v| v > thr));
                }
            }
            c.rows += 1;
        }
    }

    /// Takes the buffered rows as a batch, leaving the builders empty.
    fn finish(&mut self, schema: &SchemaRef) -> Result<RecordBatch> {
        let mut cols: Vec<ArrayRef> = vec![
            Arc::new(self.stream.finish()),
            Arc::new(self.step.finish()),
            Arc::new(self.line.finish()),
            Arc::new(self.candidate.finish()),
            Arc::new(self.taken.finish()),
            Arc::new(self.outcome.finish()),
            Arc::new(self.map_hypothesis.finish()),
            Arc::new(self.map_probability.finish()),
            Arc::new(self.entropy.finish()),
        ];
        for b in &mut self.plausible_set_size {
            cols.push(Arc::new(b.finish()));
        }
        if let Some(b) = &mut self.sampled {
            cols.push(Arc::new(b.ess.finish()));
            cols.push(Arc::new(b.log_normaliser.finish()));
            cols.push(Arc::new(b.redrawn.finish()));
            cols.push(Arc::new(b.distinct.finish()));
        }
        cols.push(Arc::new(self.cautious_hypothesis.finish()));
        for b in &mut self.estimates {
            cols.push(Arc::new(b.finish()));
        }
        for b in &mut self.rejected {
            cols.push(Arc::new(b.finish()));
        }
        self.rows = 0;
        RecordBatch::try_new(schema.clone(), cols).map_err(write_err)
    }
}

pub struct ParquetWriter<'a, W: Write + Send> {
    /// `None` once closed.
    out: Option<ArrowWriter<W>>,
    schema: SchemaRef,
    settings: &'a ReportSettings,
    columns: Columns,
}

impl<'a, W: Write + Send> ParquetWriter<'a, W> {
    pub fn new(out: W, settings: &'a ReportSettings) -> Result<Self> {
        let schema = schema(settings);
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_created_by(format!("gpubound {}", env!("CARGO_PKG_VERSION")))
            .build();
        let out = ArrowWriter::try_new(out, schema.clone(), Some(props)).map_err(write_err)?;
        Ok(ParquetWriter {
            out: Some(out),
            schema,
            settings,
            columns: Columns::new(settings),
        })
    }

    fn flush_rows(&mut self) -> Result<()> {
        if self.columns.rows == 0 {
            return Ok(());
        }
        let batch = self.columns.finish(&self.schema)?;
        let out = self
            .out
            .as_mut()
            .ok_or_else(|| write_err("the parquet writer is already closed"))?;
        out.write(&batch).map_err(write_err)?;
        // One row group per batch: the encoder's buffers are freed now.
        out.flush().map_err(write_err)
    }
}

impl<W: Write + Send> StepWriter for ParquetWriter<'_, W> {
    fn write_step(&mut self, s: &StepResult) -> Result<()> {
        self.columns.add_step(self.settings, s);
        if self.columns.rows >= ROW_GROUP_ROWS {
            self.flush_rows()?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        self.flush_rows()?;
        if let Some(out) = self.out.take() {
            let mut inner = out.into_inner().map_err(write_err)?;
            inner.flush().map_err(write_err)?;
        }
        Ok(())
    }
}

/// The report's rows as Arrow batches in memory, with the Parquet report's
/// schema and values (the library's `gpubound.audit(...).steps`).
pub struct BatchCollector<'a> {
    schema: SchemaRef,
    settings: &'a ReportSettings,
    columns: Columns,
    batches: Vec<RecordBatch>,
}

impl<'a> BatchCollector<'a> {
    pub fn new(settings: &'a ReportSettings) -> Self {
        BatchCollector {
            schema: schema(settings),
            settings,
            columns: Columns::new(settings),
            batches: Vec::new(),
        }
    }

    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// The batches collected so far (all of them after `finish`).
    pub fn into_batches(self) -> Vec<RecordBatch> {
        self.batches
    }
}

impl StepWriter for BatchCollector<'_> {
    fn write_step(&mut self, s: &StepResult) -> Result<()> {
        self.columns.add_step(self.settings, s);
        if self.columns.rows >= ROW_GROUP_ROWS {
            self.batches.push(self.columns.finish(&self.schema)?);
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        if self.columns.rows > 0 {
            self.batches.push(self.columns.finish(&self.schema)?);
        }
        Ok(())
    }
}
