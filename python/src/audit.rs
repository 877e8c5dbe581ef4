//! `gpubound.audit` and `gpubound.Guardrail`: the library's `api::AuditJob`
//! and `guardrail::Guardrail`, as `gpubound audit` runs them; this file only
//! converts arguments and results.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ::arrow::array::RecordBatch;
use ::arrow::datatypes::SchemaRef;
use gpubound::api::{resolve_alphas, AuditJob, AuditOptions, AuditOutcome, SamplerOptions};
use gpubound::engine::{BackendChoice, CandidateTable};
use gpubound::estimators::{Estimator, EstimatorKind};
use gpubound::guardrail::Guardrail as Online;
use gpubound::log::columnar::ColumnarReader;
use gpubound::log::{self, InputFormat, Limits, LogInput};
use gpubound::model::Model;
use gpubound::report::parquet::BatchCollector;
use gpubound::report::{Destination, ReportFormat};
use gpubound::Error;
use numpy::{PyArray2, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::arrow::{self, ArrowStream};
use crate::errors::{to_py, IntoPyResult};

fn setting(message: String) -> PyErr {
    to_py(Error::Setting(message))
}

pub fn backend_choice(choice: &str) -> PyResult<BackendChoice> {
    match choice {
        "auto" => Ok(BackendChoice::Auto),
        "gpu" => Ok(BackendChoice::Gpu),
        "cpu" => Ok(BackendChoice::Cpu),
        other => Err(setting(format!(
            "backend must be \"auto\", \"gpu\" or \"cpu\", not {other:?}"
        ))),
    }
}

/// A model given as JSON text (a model line's content) or a file's path;
/// returns it with the name its errors use.
pub fn load_model(
    json: Option<String>,
    path: Option<PathBuf>,
    limits: &Limits,
) -> gpubound::Result<Option<(Model, String)>> {
    Ok(match (json, path) {
        (Some(text), _) => Some((
            log::model_from_json("model", text.as_bytes(), Path::new("."), limits)?,
            "model".to_string(),
        )),
        (None, Some(p)) => Some((log::read_model_file(&p, limits)?, p.display().to_string())),
        (None, None) => None,
    })
}

fn input_format(f: Option<&str>) -> PyResult<InputFormat> {
    match f {
        None => Ok(InputFormat::Auto),
        Some("jsonl") => Ok(InputFormat::Jsonl),
        Some("parquet") => Ok(InputFormat::Parquet),
        Some(other) => Err(setting(format!(
            "input_format must be \"jsonl\" or \"parquet\", not {other:?}"
        ))),
    }
}

/// The files an audit read, by what they are.
struct Inputs(Vec<(&'static str, PathBuf)>);

impl Inputs {
    /// Refuses an output that is one of them.
    fn refuse_overlap(&self, output: &str, dest: &Destination) -> gpubound::Result<()> {
        // only the files given: a `None` input would name standard input
        let inputs: Vec<(&str, Option<&Path>)> = self
            .0
            .iter()
            .map(|(what, p)| (*what, Some(p.as_path())))
            .collect();
        gpubound::report::destination::refuse_overlaps(&[(output, dest)], &inputs)
    }
}

/// What an audit found: its per-step rows (Arrow), its summary, its HTML.
#[pyclass(module = "gpubound._gpubound", frozen)]
pub struct AuditResult {
    outcome: AuditOutcome,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    /// The files the audit read (the log, the sampler), which no output
    /// (`report_path`, `write_html`) may replace.
    inputs: Inputs,
    /// Where the rows went instead of memory (`report_path`).
    written_to: Option<PathBuf>,
}

#[pymethods]
impl AuditResult {
    /// The per-step rows as an Arrow stream (the Parquet report's columns).
    fn steps(&self) -> PyResult<ArrowStream> {
        if let Some(p) = &self.written_to {
            return Err(setting(format!(
                "the rows were written to {} (report_path), not kept",
                p.display()
            )));
        }
        Ok(ArrowStream::from_batches(
            self.schema.clone(),
            self.batches.clone(),
        ))
    }

    /// The summary as JSON text (`Audit.summary` parses it).
    fn summary_json(&self) -> String {
        self.outcome.summary_json().to_string()
    }

    /// The summary the command line prints.
    fn summary_text(&self) -> String {
        self.outcome.summary_text()
    }

    /// Writes the HTML report to `path`, whole or not at all.
    fn write_html(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        py.detach(|| {
            let dest = Destination::new(Some(&path))?;
            self.inputs.refuse_overlap("write_html", &dest)?;
            self.outcome.write_html(dest.writer()?)?;
            dest.commit()
        })
        .py()
    }
}

/// The batch audit: see `gpubound.audit`.
#[pyfunction]
#[pyo3(signature = (log, *, model_json=None, model_path=None, alpha=Vec::new(), delta=Vec::new(),
    prior_floor=None, thresholds=vec![0.01], backend="auto", shared_world=false,
    skip_unexplained=false, input_format=None, html=true, name="<arrow>", report_path=None,
    top=10, sampler=None, samples=None, seed=1, redraw_ess=None, stream_indices=None))]
#[allow(clippy::too_many_arguments)]
pub fn audit(
    py: Python<'_>,
    log: &Bound<'_, PyAny>,
    model_json: Option<String>,
    model_path: Option<PathBuf>,
    alpha: Vec<f64>,
    delta: Vec<f64>,
    prior_floor: Option<f64>,
    thresholds: Vec<f64>,
    backend: &str,
    shared_world: bool,
    skip_unexplained: bool,
    input_format: Option<&str>,
    html: bool,
    name: &str,
    report_path: Option<PathBuf>,
    top: usize,
    sampler: Option<PathBuf>,
    samples: Option<usize>,
    seed: u64,
    redraw_ess: Option<f64>,
    stream_indices: Option<Vec<u64>>,
) -> PyResult<AuditResult> {
    let backend = backend_choice(backend)?;
    let sampler = sampler_options(sampler, samples, seed, redraw_ess, stream_indices)?;
    let format = self::input_format(input_format)?;
    // a path, or Arrow data
    let (path, arrow_data) = match log.extract::<PathBuf>() {
        Ok(p) => (Some(p), None),
        Err(_) => (None, Some(arrow::import(log)?)),
    };
    py.detach(move || {
        // a grid too large to enumerate is read when a sampler stands in
        let limits = Limits {
            sampled_grid: sampler.is_some(),
            ..Limits::default()
        };
        // read as the log's own model is (a grid too large to enumerate
        // when a sampler stands in)
        let model = load_model(model_json, model_path, &limits)?;
        let model_source = model.as_ref().map(|(_, name)| name.clone());
        let model = model.map(|(m, _)| m);
        let input: Box<dyn LogInput> = match (&path, arrow_data) {
            (Some(p), _) => log::open_input(&p.to_string_lossy(), format, model, &limits)?,
            (None, Some(batches)) => Box::new(ColumnarReader::new(
                name,
                batches,
                Path::new("."),
                model,
                &limits,
            )?),
            (None, None) => unreachable!("a log is a path or Arrow data"),
        };
        let inputs = Inputs(
            [
                ("the log", path),
                ("the sampler", sampler.as_ref().map(|s| s.path.clone())),
            ]
            .into_iter()
            .filter_map(|(what, p)| p.map(|p| (what, p)))
            .collect(),
        );
        if let Some(s) = &sampler {
            gpubound::api::sample_set_within(s.samples, input.model().hypotheses.dim(), &limits)?;
        }
        let options = AuditOptions {
            alpha,
            delta,
            prior_floor,
            thresholds,
            backend,
            shared_world,
            skip_unexplained,
            model_source,
            top,
            sampler,
            ..AuditOptions::default()
        };
        let job = AuditJob::new(input, &options)?;
        let settings = job.report_settings().clone();
        if let Some(out) = &report_path {
            // the rows go to a Parquet file as they come, whole or not at
            // all, as `gpubound audit --format parquet -o` writes them
            let dest = Destination::new(Some(out))?;
            inputs.refuse_overlap("report_path", &dest)?;
            let mut rows =
                gpubound::report::writer_for(ReportFormat::Parquet, dest.writer()?, &settings)?;
            let outcome = job.run(rows.as_mut(), html, &mut |_| {})?;
            drop(rows);
            dest.commit()?;
            return Ok(AuditResult {
                outcome,
                schema: gpubound::report::parquet::schema(&settings),
                batches: Vec::new(),
                inputs,
                written_to: report_path,
            });
        }
        let mut rows = BatchCollector::new(&settings);
        let outcome = job.run(&mut rows, html, &mut |_| {})?;
        let schema = rows.schema();
        Ok::<_, Error>(AuditResult {
            outcome,
            schema,
            batches: rows.into_batches(),
            inputs,
            written_to: None,
        })
    })
    .py()
}

/// `audit`'s `sampler=`, `samples=`, `seed=` and `redraw_ess=`: the command
/// line's `--sampler`, `--samples`, `--seed` and `--redraw-ess`, which go
/// together as they do there; `stream_indices=` (the cluster audits' shards:
/// each stream's index in the whole log, which numbers its random stream).
fn sampler_options(
    sampler: Option<PathBuf>,
    samples: Option<usize>,
    seed: u64,
    redraw_ess: Option<f64>,
    stream_indices: Option<Vec<u64>>,
) -> PyResult<Option<SamplerOptions>> {
    if sampler.is_none() && stream_indices.is_some() {
        return Err(setting(
            "stream_indices= applies to an audit on sampled hypotheses: give sampler= too".into(),
        ));
    }
    match (sampler, samples) {
        (Some(path), Some(samples)) => Ok(Some(SamplerOptions {
            path,
            samples,
            seed,
            redraw_ess: redraw_ess.unwrap_or(gpubound::sampler::audit::DEFAULT_REDRAW_ESS),
            stream_indices: stream_indices.unwrap_or_default(),
        })),
        (Some(_), None) => Err(setting(
            "sampler= needs samples=N, the hypotheses drawn per step".into(),
        )),
        (None, Some(_)) => Err(setting(
            "samples= applies to an audit on sampled hypotheses: give sampler= too".into(),
        )),
        (None, None) if redraw_ess.is_some() => Err(setting(
            "redraw_ess= applies to an audit on sampled hypotheses: give sampler= too".into(),
        )),
        (None, None) => Ok(None),
    }
}

/// One stream's guardrail, online: see `gpubound.Guardrail`.
#[pyclass(module = "gpubound._gpubound", frozen)]
pub struct NativeGuardrail {
    inner: Mutex<Online>,
    d: usize,
    /// The estimator columns `estimates` returns, in the report's order
    /// (the oracle left out), and their names: computed once, so that a
    /// step formats nothing.
    columns: Vec<Estimator>,
    names: Py<PyTuple>,
}

impl NativeGuardrail {
    /// The guardrail; a panic while it was held left it as it was.
    fn lock(&self) -> std::sync::MutexGuard<'_, Online> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `candidates` as an (A, d) table, copied. A C-contiguous, aligned
    /// float64 array (what an agent's loop passes) is read in place, without
    /// numpy's borrow registry (a shared-borrow entry per call, a large share
    /// of a call's overhead); anything else goes through
    /// `numpy.require(candidates, float64, "CA")` first.
    fn table(&self, candidates: &Bound<'_, PyAny>) -> PyResult<CandidateTable> {
        let converted;
        let array = match candidates.cast::<PyArray2<f64>>() {
            Ok(array) if array.is_c_contiguous() && array.is_aligned() => array,
            _ => {
                let py = candidates.py();
                let numpy = py.import("numpy")?;
                converted = numpy.getattr("require")?.call1((
                    candidates,
                    numpy.getattr("float64")?,
                    "CA",
                ))?;
                converted
                    .cast::<PyArray2<f64>>()
                    .map_err(|_| self.shape_error(&converted))?
            }
        };
        let (a, d) = (array.shape()[0], array.shape()[1]);
        if a == 0 || d != self.d {
            return Err(self.shape_error(array.as_any()));
        }
        // SAFETY: the array is C-contiguous and aligned (checked above) and
        // copied at once, with the GIL held: no Python code runs meanwhile,
        // and nothing in this extension keeps a writable view of a caller's
        // array.
        let values = unsafe { array.as_slice() }
            .map_err(|e| to_py(Error::Internal(format!("candidates: {e}"))))?
            .to_vec();
        Ok(CandidateTable::new(values, a))
    }

    fn shape_error(&self, candidates: &Bound<'_, PyAny>) -> PyErr {
        let shape = candidates
            .getattr("shape")
            .map(|s| s.to_string())
            .unwrap_or_else(|_| "no shape".into());
        to_py(Error::input(
            "guardrail",
            None,
            format!(
                "candidates must be an (A, d) array with A ≥ 1 and d = {} (the model's), got {shape}",
                self.d
            ),
        ))
    }
}

#[pymethods]
impl NativeGuardrail {
    #[new]
    #[pyo3(signature = (*, model_json=None, model_path=None, alpha=Vec::new(), delta=Vec::new(),
        prior_floor=None, threshold=0.01, estimator="plausible_set", backend="auto"))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        model_json: Option<String>,
        model_path: Option<PathBuf>,
        alpha: Vec<f64>,
        delta: Vec<f64>,
        prior_floor: Option<f64>,
        threshold: f64,
        estimator: &str,
        backend: &str,
    ) -> PyResult<Self> {
        let backend = backend_choice(backend)?;
        let (model, source) = load_model(model_json, model_path, &Limits::default())
            .py()?
            .ok_or_else(|| setting("a guardrail needs a model".into()))?;
        let options = AuditOptions {
            alpha,
            delta,
            prior_floor,
            ..AuditOptions::default()
        };
        let alphas = resolve_alphas(&model, &options, &source).py()?;
        let chosen = Estimator::all(&alphas)
            .into_iter()
            .find(|e| {
                e.label(&alphas) == estimator
                    || (e.kind.name() == estimator && e.alpha.unwrap_or(0) == 0)
            })
            .filter(|e| e.kind != EstimatorKind::Oracle)
            .ok_or_else(|| {
                setting(format!(
                    "unknown estimator {estimator:?}: one of posterior_predictive, cautious_theory, \
                     plausible_set, ville_max, ville_sum (first α), or a column such as {:?}",
                    Estimator::all(&alphas)[2].label(&alphas)
                ))
            })?;
        let d = model.hypotheses.dim();
        let columns: Vec<Estimator> = Estimator::all(&alphas)
            .into_iter()
            .filter(|e| e.kind != EstimatorKind::Oracle)
            .collect();
        let names = PyTuple::new(py, columns.iter().map(|e| e.label(&alphas)))?.unbind();
        let inner = Online::new(model, alphas, threshold, chosen, backend).py()?;
        Ok(NativeGuardrail {
            inner: Mutex::new(inner),
            d,
            columns,
            names,
        })
    }

    /// Every estimator for every candidate: an array of shape
    /// (columns, A), one row per name of `column_names`, in one allocation
    /// (the Python face wraps it in a mapping of row views).
    fn estimates<'py>(
        &self,
        py: Python<'py>,
        candidates: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let table = self.table(candidates)?;
        let a = table.n_candidates;
        let array = PyArray2::<f64>::zeros(py, [self.columns.len(), a], false);
        // SAFETY: the array was made just above and no Python code has seen
        // it yet: this slice is the only access to its data until it returns.
        let values = unsafe { array.as_slice_mut() }
            .map_err(|e| to_py(Error::Internal(format!("a new array: {e}"))))?;
        py.detach(|| {
            let mut g = self.lock();
            g.estimates(&table)?.write_columns(&self.columns, values);
            Ok::<_, Error>(())
        })
        .py()?;
        Ok(array)
    }

    /// The names of `estimates`' rows: the Parquet report's column names.
    #[getter]
    fn column_names<'py>(&self, py: Python<'py>) -> Bound<'py, PyTuple> {
        self.names.bind(py).clone()
    }

    /// (allowed, estimate, safest candidate, its estimate) for `action`.
    fn check(
        &self,
        py: Python<'_>,
        candidates: &Bound<'_, PyAny>,
        action: usize,
    ) -> PyResult<(bool, f64, usize, f64)> {
        let table = self.table(candidates)?;
        let v = py.detach(|| self.lock().check(&table, action)).py()?;
        Ok((v.allowed, v.estimate, v.safest_candidate, v.safest_estimate))
    }

    /// The posterior update with the taken action's outcome (None: none).
    #[pyo3(signature = (candidates, action, outcome=None))]
    fn observe(
        &self,
        py: Python<'_>,
        candidates: &Bound<'_, PyAny>,
        action: usize,
        outcome: Option<f64>,
    ) -> PyResult<()> {
        let table = self.table(candidates)?;
        py.detach(|| self.lock().observe(&table, action, outcome))
            .py()
    }

    /// A new stream: back to the prior.
    fn reset(&self) {
        self.lock().reset();
    }

    /// Steps observed in this stream.
    #[getter]
    fn steps(&self) -> usize {
        self.lock().steps()
    }

    /// The estimator's column name and the threshold C.
    #[getter]
    fn estimator(&self) -> String {
        let g = self.lock();
        g.estimator().label(g.alphas())
    }

    #[getter]
    fn threshold(&self) -> f64 {
        self.lock().threshold()
    }
}
