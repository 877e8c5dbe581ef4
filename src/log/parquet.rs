//! Parquet logs: the columnar schema (docs/parquet-log.md) in a Parquet
//! file, read row group by row group, a batch of rows at a time.

use std::fs::File;
use std::path::Path;

use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::record_batch::{RecordBatch, RecordBatchReader};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};

use super::columnar::{ColumnarReader, RowGroups};
use super::Limits;
use crate::model::Model;
use crate::{Error, Result};

/// Rows decoded at a time: a batch of a contextual log holds this many
/// candidate tables.
pub const BATCH_ROWS: usize = 1024;

/// A Parquet log being read.
pub type ParquetLogReader = ColumnarReader<Batches>;

/// The file's batches, with the file's schema: the batch reader's own
/// schema lacks the key-value metadata that holds the model.
pub struct Batches {
    reader: ParquetRecordBatchReader,
    schema: SchemaRef,
}

impl Iterator for Batches {
    type Item = std::result::Result<RecordBatch, ArrowError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.reader.next()
    }
}

impl RecordBatchReader for Batches {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

/// Opens the Parquet log at `path`. It must be a regular file: Parquet's
/// index is at its end, so standard input and pipes are refused rather than
/// read whole into memory. The model is the file's `gpubound.model`
/// metadata unless `model_override` is given, which wins.
pub fn open(
    path: &str,
    model_override: Option<Model>,
    limits: &Limits,
) -> Result<ParquetLogReader> {
    if path == "-" {
        return Err(Error::input(
            "<stdin>",
            None,
            "a Parquet log cannot be read from standard input (its index is at its end): \
             give its path, or pipe JSON Lines (--input-format jsonl)",
        ));
    }
    let file = File::open(path).map_err(|e| Error::input_file(path, e))?;
    let meta = file.metadata().map_err(|e| Error::input_file(path, e))?;
    if !meta.is_file() {
        return Err(Error::input(
            path,
            None,
            "not a regular file: a Parquet log must be one (its index is at its end, so it \
             cannot be read from a pipe)",
        ));
    }
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| Error::input(path, None, format!("not a readable Parquet file: {e}")))?;
    let counts: Vec<usize> = builder
        .metadata()
        .row_groups()
        .iter()
        .map(|g| usize::try_from(g.num_rows()).unwrap_or(0))
        .collect();
    let rows = counts.iter().sum();
    let schema = builder.schema().clone();
    let reader = builder
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(|e| Error::input(path, None, format!("not a readable Parquet file: {e}")))?;
    let base = Path::new(path).parent().unwrap_or(Path::new("."));
    ColumnarReader::with_row_groups(
        path,
        Batches { reader, schema },
        base,
        model_override,
        limits,
        RowGroups::from_counts(counts),
        Some((meta.len(), rows)),
    )
}
