//! The native module `gpubound._gpubound`. Its public face is the pure-Python
//! package `gpubound` (python/gpubound/__init__.py), which documents each
//! function and turns Arrow results into pyarrow tables.

mod arrow;
mod audit;
mod errors;
mod shard;

use std::path::{Path, PathBuf};

use gpubound::engine::gpu::device;
use gpubound::engine::{cpu::CpuEngine, select, Backend, BackendInfo, Engine};
use gpubound::log::columnar::ColumnarReader;
use gpubound::log::{read_model_file, EventSource, Limits};
use gpubound::Error;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::arrow::ArrowStream;
use crate::errors::IntoPyResult;

/// The version of gpubound (the Rust library this module is built from).
#[pyfunction]
fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// Every backend this machine offers: the CPU engine, then each wgpu
/// adapter found (in the APIs `WGPU_BACKEND` allows), software renderers
/// included and marked as such.
#[pyfunction]
fn backends(py: Python<'_>) -> PyResult<Vec<Bound<'_, PyDict>>> {
    let (cpu, gpus) = py.detach(|| {
        let cpu = CpuEngine::new().info().clone();
        let apis = device::backends();
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
            backends: apis,
            ..wgpu::InstanceDescriptor::new_without_display_handle_from_env()
        });
        let gpus: Vec<wgpu::AdapterInfo> = pollster::block_on(instance.enumerate_adapters(apis))
            .iter()
            .map(|a| a.get_info())
            // The noop adapter computes nothing; the engine never uses it.
            .filter(|i| i.backend != wgpu::Backend::Noop)
            .collect();
        (cpu, gpus)
    });
    let mut out = vec![backend_dict(py, &cpu, Some(false))?];
    for info in gpus {
        let backend = BackendInfo {
            kind: Backend::Gpu,
            device: info.name.clone(),
            api: device::api_name(info.backend).to_string(),
            driver: info.driver.clone(),
        };
        out.push(backend_dict(
            py,
            &backend,
            Some(device::is_software(&info)),
        )?);
    }
    Ok(out)
}

/// The backend an audit would run on for `choice` ("auto", "gpu" or "cpu"),
/// as the CLI's `--backend` picks it.
#[pyfunction]
#[pyo3(signature = (choice = "auto"))]
fn backend<'py>(py: Python<'py>, choice: &str) -> PyResult<Bound<'py, PyDict>> {
    let choice = audit::backend_choice(choice)?;
    let info = py
        .detach(|| select(choice).map(|e| e.info().clone()))
        .py()?;
    backend_dict(py, &info, None)
}

/// A one-line description of the model in a model file (what `--model FILE`
/// reads), after checking it as an audit would.
#[pyfunction]
fn describe_model(py: Python<'_>, path: PathBuf) -> PyResult<String> {
    py.detach(|| read_model_file(&path, &Limits::default()).map(|m| m.describe()))
        .py()
}

/// What a sampler file (`gpubound sampler train`) holds: the model it was
/// trained for (a model line's JSON) and its training steps.
#[pyfunction]
fn describe_sampler(py: Python<'_>, path: PathBuf) -> PyResult<(String, u64)> {
    py.detach(|| gpubound::api::describe_sampler(&path).map(|(m, steps)| (m.to_json(), steps)))
        .py()
}

/// The Parquet files of a log kept in a folder, in the log's order: the
/// command line's rule (`log::parquet::folder_files`), so that a cluster
/// numbers the rows as `gpubound audit DIR` does.
#[pyfunction]
fn folder_files(dir: PathBuf) -> PyResult<Vec<String>> {
    gpubound::log::parquet::folder_files(&dir).py()
}

/// Reads a columnar log (Arrow data: one row per step, the model in the
/// schema's `gpubound.model` metadata) through every check an audit makes;
/// returns (streams, steps, the model's description).
#[pyfunction]
#[pyo3(signature = (data, name = "<arrow>"))]
fn check_log(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
    name: &str,
) -> PyResult<(usize, usize, String)> {
    let batches = arrow::import(data)?;
    py.detach(|| {
        let mut log = ColumnarReader::new(name, batches, Path::new("."), None, &Limits::default())?;
        while log.next_event()?.is_some() {}
        Ok::<_, Error>((log.streams_read(), log.steps_read(), log.model().describe()))
    })
    .py()
}

/// Imports Arrow data through the PyCapsule interface and exports it again
/// (for the tests: both directions are zero-copy).
#[pyfunction]
fn _arrow_roundtrip(py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<ArrowStream> {
    let reader = arrow::import(data)?;
    let (schema, batches) = arrow::read_all(py, reader)?;
    Ok(ArrowStream::from_batches(schema, batches))
}

fn backend_dict<'py>(
    py: Python<'py>,
    info: &BackendInfo,
    software: Option<bool>,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("kind", info.kind.to_string())?;
    d.set_item("device", &info.device)?;
    d.set_item("api", &info.api)?;
    d.set_item("driver", &info.driver)?;
    if let Some(software) = software {
        d.set_item("software", software)?;
    }
    Ok(d)
}

#[pymodule]
fn _gpubound(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(version, m)?)?;
    m.add_function(wrap_pyfunction!(backends, m)?)?;
    m.add_function(wrap_pyfunction!(backend, m)?)?;
    m.add_function(wrap_pyfunction!(describe_model, m)?)?;
    m.add_function(wrap_pyfunction!(describe_sampler, m)?)?;
    m.add(
        "DEFAULT_REDRAW_ESS",
        gpubound::sampler::audit::DEFAULT_REDRAW_ESS,
    )?;
    m.add_function(wrap_pyfunction!(check_log, m)?)?;
    m.add_function(wrap_pyfunction!(folder_files, m)?)?;
    m.add_function(wrap_pyfunction!(_arrow_roundtrip, m)?)?;
    m.add_class::<ArrowStream>()?;
    m.add_function(wrap_pyfunction!(audit::audit, m)?)?;
    m.add_class::<audit::AuditResult>()?;
    m.add_class::<audit::NativeGuardrail>()?;
    m.add_function(wrap_pyfunction!(shard::report_schema, m)?)?;
    m.add_function(wrap_pyfunction!(shard::summarise_report, m)?)?;
    m.add_function(wrap_pyfunction!(shard::merge_summaries, m)?)?;
    Ok(())
}
