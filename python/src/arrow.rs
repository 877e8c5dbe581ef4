//! Arrow in and out of Python through the Arrow PyCapsule interface
//! (`__arrow_c_stream__`, `__arrow_c_array__`): any producer — pyarrow,
//! polars, DuckDB, nanoarrow — hands its buffers to Rust without a copy, and
//! results go back the same way, without pyarrow being needed on this side.
//!
//! The structs are arrow-rs's own C-interface types (`FFI_ArrowArrayStream`
//! and friends) from the library's arrow, so what is imported here is of the
//! very types the library reads.

use std::ffi::CStr;
use std::sync::{Mutex, PoisonError};

use arrow::array::{Array, RecordBatch, RecordBatchIterator, RecordBatchReader, StructArray};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::ffi::{from_ffi, FFI_ArrowArray, FFI_ArrowSchema};
use arrow::ffi_stream::{FFI_ArrowArrayStream, RecordBatchStreamReader};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyTuple};

use crate::errors::IntoPyResult;

const STREAM_CAPSULE: &CStr = c"arrow_array_stream";
const ARRAY_CAPSULE: &CStr = c"arrow_array";
const SCHEMA_CAPSULE: &CStr = c"arrow_schema";

/// Record batches read one by one, from Python or from Rust.
pub type BatchReader = Box<dyn RecordBatchReader + Send>;

/// Takes the Arrow data of `obj`: a stream (`__arrow_c_stream__`:
/// pyarrow.Table and RecordBatchReader, polars.DataFrame, DuckDB relations)
/// or a single record batch (`__arrow_c_array__` of a struct array:
/// pyarrow.RecordBatch). The stream is moved out of its capsule, so its
/// batches are the producer's buffers, not copies; they are read when the
/// reader is iterated (release the GIL then: a producer that needs it takes
/// it back).
pub fn import(obj: &Bound<'_, PyAny>) -> PyResult<BatchReader> {
    let py = obj.py();
    if obj.hasattr(intern!(py, "__arrow_c_stream__"))? {
        let capsule = obj
            .call_method0(intern!(py, "__arrow_c_stream__"))?
            .cast_into::<PyCapsule>()?;
        let raw = capsule
            .pointer_checked(Some(STREAM_CAPSULE))?
            .cast::<FFI_ArrowArrayStream>();
        // SAFETY: the capsule's name promises an ArrowArrayStream; `from_raw`
        // moves it out and leaves a released one behind, which the
        // capsule's destructor then frees without releasing it twice.
        let stream = unsafe { FFI_ArrowArrayStream::from_raw(raw.as_ptr()) };
        let reader = RecordBatchStreamReader::try_new(stream).py()?;
        return Ok(Box::new(reader));
    }
    if obj.hasattr(intern!(py, "__arrow_c_array__"))? {
        let batch = import_batch(obj)?;
        let schema = batch.schema();
        return Ok(Box::new(RecordBatchIterator::new([Ok(batch)], schema)));
    }
    Err(PyTypeError::new_err(format!(
        "expected Arrow data (an object with __arrow_c_stream__ such as a pyarrow.Table, \
         a polars.DataFrame or a DuckDB relation), not {}",
        obj.get_type().name()?
    )))
}

/// A record batch from `__arrow_c_array__`: a struct array without nulls,
/// whose fields are the columns.
fn import_batch(obj: &Bound<'_, PyAny>) -> PyResult<RecordBatch> {
    let py = obj.py();
    let pair = obj
        .call_method0(intern!(py, "__arrow_c_array__"))?
        .cast_into::<PyTuple>()?;
    let (schema_capsule, array_capsule): (Bound<'_, PyCapsule>, Bound<'_, PyCapsule>) =
        pair.extract()?;
    let schema_ptr = schema_capsule
        .pointer_checked(Some(SCHEMA_CAPSULE))?
        .cast::<FFI_ArrowSchema>();
    let array_ptr = array_capsule
        .pointer_checked(Some(ARRAY_CAPSULE))?
        .cast::<FFI_ArrowArray>();
    // SAFETY: the names promise an ArrowSchema (borrowed: its capsule keeps
    // it alive and releases it) and an ArrowArray (moved out, as above).
    let data = unsafe {
        let array = FFI_ArrowArray::from_raw(array_ptr.as_ptr());
        from_ffi(array, schema_ptr.as_ref())
    }
    .py()?;
    if !matches!(data.data_type(), DataType::Struct(_)) {
        return Err(PyValueError::new_err(format!(
            "expected a table or a record batch, found a single array of type {}",
            data.data_type()
        )));
    }
    let columns = StructArray::from(data);
    // A null row of the struct has no meaning as a row of a table (and
    // `RecordBatch::from` would panic on it).
    if columns.null_count() > 0 {
        return Err(PyValueError::new_err(
            "a struct array with null rows is not a table",
        ));
    }
    Ok(RecordBatch::from(columns))
}

/// Arrow data going back to Python: pass it to `pyarrow.table(…)`,
/// `polars.from_arrow(…)` or any other consumer of the Arrow PyCapsule
/// interface (it has `__arrow_c_stream__` and `__arrow_c_schema__`).
#[pyclass(module = "gpubound._gpubound", frozen)]
pub struct ArrowStream {
    schema: SchemaRef,
    source: Source,
}

enum Source {
    /// Batches held in memory: exported again at each request, each time
    /// sharing the same buffers.
    Batches(Vec<RecordBatch>),
    /// A stream read once, by its first consumer.
    Reader(Mutex<Option<BatchReader>>),
}

impl ArrowStream {
    pub fn from_batches(schema: SchemaRef, batches: Vec<RecordBatch>) -> Self {
        ArrowStream {
            schema,
            source: Source::Batches(batches),
        }
    }

    pub fn from_reader(reader: BatchReader) -> Self {
        ArrowStream {
            schema: reader.schema(),
            source: Source::Reader(Mutex::new(Some(reader))),
        }
    }
}

#[pymethods]
impl ArrowStream {
    /// The Arrow PyCapsule interface: an `arrow_array_stream` capsule.
    /// `requested_schema` is a best-effort request under that interface;
    /// the data comes in its own schema, which consumers check.
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let _ = requested_schema;
        let reader: BatchReader = match &self.source {
            Source::Batches(batches) => Box::new(RecordBatchIterator::new(
                batches.clone().into_iter().map(Ok),
                self.schema.clone(),
            )),
            Source::Reader(slot) => slot
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
                .ok_or_else(|| {
                    PyValueError::new_err("this Arrow stream was already read (it is read once)")
                })?,
        };
        PyCapsule::new_with_value(py, FFI_ArrowArrayStream::new(reader), STREAM_CAPSULE)
    }

    /// The schema, as an `arrow_schema` capsule.
    fn __arrow_c_schema__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyCapsule>> {
        let schema = FFI_ArrowSchema::try_from(self.schema.as_ref()).py()?;
        PyCapsule::new_with_value(py, schema, SCHEMA_CAPSULE)
    }

    fn __repr__(&self) -> String {
        let columns: Vec<String> = self
            .schema
            .fields()
            .iter()
            .map(|f| format!("{}: {}", f.name(), f.data_type()))
            .collect();
        format!("<ArrowStream [{}]>", columns.join(", "))
    }
}

/// Reads every batch of `reader` without the GIL.
pub fn read_all(py: Python<'_>, reader: BatchReader) -> PyResult<(SchemaRef, Vec<RecordBatch>)> {
    let schema = reader.schema();
    let batches = py
        .detach(move || reader.collect::<Result<Vec<_>, _>>())
        .py()?;
    Ok((schema, batches))
}
