//! Parquet logs: the columnar schema (docs/parquet-log.md) in a Parquet
//! file, read row group by row group, a batch of rows at a time.

use std::fs::File;
use std::path::Path;

use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::record_batch::{RecordBatch, RecordBatchReader};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};

use super::columnar::{ColumnarReader, RowGroups, MODEL_KEY};
use super::Limits;
use crate::model::Model;
use crate::{Error, Result};

/// Rows decoded at a time: a batch of a contextual log holds this many
/// candidate tables.
pub const BATCH_ROWS: usize = 1024;

/// A Parquet log being read.
pub type ParquetLogReader = ColumnarReader<Batches>;

/// The log's batches, with its first file's schema: the batch reader's own
/// schema lacks the key-value metadata that holds the model. A log kept in
/// several files is read file after file, each opened when the one before
/// it ends.
pub struct Batches {
    reader: ParquetRecordBatchReader,
    schema: SchemaRef,
    /// The files still to read, and the first file's name (for errors).
    rest: std::vec::IntoIter<String>,
    first: String,
}

impl Batches {
    /// Opens the next file, which must have the first file's columns and
    /// model; `None` at the end.
    fn next_file(&mut self) -> Option<std::result::Result<(), ArrowError>> {
        let path = self.rest.next()?;
        let opened = open_file(&path).and_then(|(builder, _, _)| {
            if fields(builder.schema()) != fields(&self.schema)
                || builder.schema().metadata().get(MODEL_KEY) != self.schema.metadata().get(MODEL_KEY)
            {
                return Err(Error::input(
                    &path,
                    None,
                    format!(
                        "its columns or its model differ from {}'s: the files of one log share them",
                        self.first
                    ),
                ));
            }
            builder
                .with_batch_size(BATCH_ROWS)
                .build()
                .map_err(|e| Error::input(&path, None, format!("not a readable Parquet file: {e}")))
        });
        Some(match opened {
            Ok(reader) => {
                self.reader = reader;
                Ok(())
            }
            Err(e) => Err(ArrowError::ExternalError(Box::new(e))),
        })
    }
}

fn fields(schema: &SchemaRef) -> Vec<(String, arrow::datatypes::DataType)> {
    schema
        .fields()
        .iter()
        .map(|f| (f.name().clone(), f.data_type().clone()))
        .collect()
}

impl Iterator for Batches {
    type Item = std::result::Result<RecordBatch, ArrowError>;
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(b) = self.reader.next() {
                return Some(b);
            }
            match self.next_file()? {
                Ok(()) => continue,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

impl RecordBatchReader for Batches {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

/// A Parquet file, opened: its reader's builder, its row groups' row
/// counts and its size in bytes.
fn open_file(path: &str) -> Result<(ParquetRecordBatchReaderBuilder<File>, Vec<usize>, u64)> {
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
    Ok((builder, counts, meta.len()))
}

/// The Parquet files of a log kept in a folder: its `*.parquet` and `*.pq`
/// files, by name (hidden files and names starting with `_` left out, as
/// data tools write their markers so).
pub fn folder_files(dir: &Path) -> Result<Vec<String>> {
    let name = dir.display().to_string();
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| Error::input_file(dir, e))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let ext = p
                .extension()
                .and_then(|e| e.to_str())
                .map(|e| e.to_ascii_lowercase());
            !n.starts_with(['.', '_'])
                && matches!(ext.as_deref(), Some("parquet" | "pq"))
                && p.is_file()
        })
        .map(|p| p.display().to_string())
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(Error::input(&name, None, "a folder without .parquet files"));
    }
    Ok(files)
}

/// Opens the Parquet log at `path`: a file, or a folder whose Parquet files
/// (by name) are read as one log, rows numbered across them. It must be a
/// regular file or a folder: Parquet's index is at its end, so standard
/// input and pipes are refused rather than read whole into memory. The
/// model is the (first) file's `gpubound.model` metadata unless
/// `model_override` is given, which wins.
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
    let folder = Path::new(path).is_dir();
    let files = if folder {
        folder_files(Path::new(path))?
    } else {
        vec![path.to_string()]
    };
    // every file's row groups and size up front: errors name a row's file
    // and group, and progress knows the whole
    let mut groups = Vec::with_capacity(files.len());
    let mut bytes = 0;
    let mut first = None;
    for f in &files {
        let (builder, counts, len) = open_file(f)?;
        bytes += len;
        groups.push((f.clone(), counts));
        first.get_or_insert(builder);
    }
    let builder = first.expect("at least one file");
    let rows = groups.iter().flat_map(|(_, c)| c).sum();
    let schema = builder.schema().clone();
    let reader = builder
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(|e| Error::input(&files[0], None, format!("not a readable Parquet file: {e}")))?;
    let base = if folder {
        Path::new(path)
    } else {
        Path::new(path).parent().unwrap_or(Path::new("."))
    };
    let row_groups = if folder {
        RowGroups::from_files(groups)
    } else {
        RowGroups::from_counts(groups.pop().map(|(_, c)| c).unwrap_or_default())
    };
    let mut rest = files.clone().into_iter();
    rest.next();
    ColumnarReader::with_row_groups(
        path,
        Batches {
            reader,
            schema,
            rest,
            first: files[0].clone(),
        },
        base,
        model_override,
        limits,
        row_groups,
        Some((bytes, rows)),
    )
}
