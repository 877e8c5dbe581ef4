//! The action log: its JSON Lines format and a streaming, validating reader;
//! the columnar form (Parquet, Arrow batches) with its reader and writer.

pub mod columnar;
pub mod format;
pub mod parquet;
pub mod prefetch;
pub mod reader;
pub mod writer;

pub use format::{LogLine, ModelSpec};
pub use reader::{LogEvent, LogReader, StepRecord, StreamInfo};

use std::io::{BufRead, Read};
use std::path::Path;

use crate::model::Model;
use crate::{Error, Result};

/// One candidate table: the feature vectors of the actions available at a
/// step. A bandit stream has one for all its steps; a contextual log has one
/// per step.
#[derive(Debug, Clone, PartialEq)]
pub struct CandidateTable {
    /// `A × d`, row-major.
    pub features: Vec<f64>,
    pub n_candidates: usize,
}

impl CandidateTable {
    pub fn new(features: Vec<f64>, n_candidates: usize) -> Self {
        debug_assert!(n_candidates > 0 && features.len().is_multiple_of(n_candidates));
        CandidateTable {
            features,
            n_candidates,
        }
    }

    pub fn dim(&self) -> usize {
        self.features.len() / self.n_candidates
    }

    pub fn candidate(&self, a: usize) -> &[f64] {
        let d = self.dim();
        &self.features[a * d..(a + 1) * d]
    }

    pub fn is_integer_valued(&self) -> bool {
        self.features
            .iter()
            .all(|v| v.fract() == 0.0 && v.abs() < 1e9)
    }
}

/// Bounds on every size the input controls, so that a few bytes of input
/// cannot ask for unbounded memory (README, "Limits"). Each error that
/// enforces one names the limit and the option that raises it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest line of a log or hypothesis file, and largest model file, in
    /// bytes (`--max-line-bytes`). A line is read no further than this.
    pub max_line_bytes: usize,
    /// Most hypotheses `H` (`--max-hypotheses`).
    pub max_hypotheses: usize,
    /// Most hypothesis parameters `H·d` (`--max-parameters`): bounds `d` too.
    pub max_parameters: usize,
    /// Most candidate actions in one table (`--max-candidates`).
    pub max_candidates: usize,
    /// A grid is not enumerated (`audit --sampler`): `max_hypotheses` and
    /// `max_parameters` do not bound it, only `k^d < 2^64` (a hypothesis's
    /// grid index is a 64-bit integer). Lists stay bounded.
    pub sampled_grid: bool,
}

impl Limits {
    pub const DEFAULT_MAX_LINE_BYTES: usize = 16 << 20;
    pub const DEFAULT_MAX_CANDIDATES: usize = 1 << 16;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line_bytes: Self::DEFAULT_MAX_LINE_BYTES,
            max_hypotheses: crate::model::hypotheses::MAX_HYPOTHESES,
            max_parameters: crate::model::hypotheses::MAX_PARAMETERS,
            max_candidates: Self::DEFAULT_MAX_CANDIDATES,
            sampled_grid: false,
        }
    }
}

/// Where an audit's streams and steps come from: a log (JSON Lines, Parquet,
/// Arrow batches) or a workload held in memory (`gpubound bench`).
pub trait EventSource {
    fn model(&self) -> &Model;
    /// The name errors give for this source (a log file's path).
    fn name(&self) -> &str {
        "<input>"
    }
    /// The next stream or step, validated; `None` at the end.
    fn next_event(&mut self) -> Result<Option<LogEvent>>;
    /// Bytes of input consumed and steps read so far, for progress bars.
    fn progress(&self) -> (u64, usize) {
        (0, 0)
    }
}

/// A log opened for an audit, whatever its format.
pub trait LogInput: EventSource + Send {
    /// For overrides of model fields (`--sigma`), before any step is read.
    fn model_mut(&mut self) -> &mut Model;
    /// The hypothesis file the log's model named, if any (no output may
    /// replace it).
    fn hypothesis_file(&self) -> Option<&Path> {
        None
    }
    /// The log's own model as written (not an override), for `convert`.
    fn model_spec(&self) -> Option<&ModelSpec> {
        None
    }
}

impl<S: EventSource + ?Sized> EventSource for Box<S> {
    fn model(&self) -> &Model {
        (**self).model()
    }
    fn name(&self) -> &str {
        (**self).name()
    }
    fn next_event(&mut self) -> Result<Option<LogEvent>> {
        (**self).next_event()
    }
    fn progress(&self) -> (u64, usize) {
        (**self).progress()
    }
}

impl<R: BufRead> EventSource for LogReader<R> {
    fn model(&self) -> &Model {
        LogReader::model(self)
    }
    fn name(&self) -> &str {
        LogReader::name(self)
    }
    fn next_event(&mut self) -> Result<Option<LogEvent>> {
        LogReader::next_event(self)
    }
    fn progress(&self) -> (u64, usize) {
        (self.bytes_read(), self.steps_read())
    }
}

impl<R: BufRead + Send> LogInput for LogReader<R> {
    fn model_mut(&mut self) -> &mut Model {
        LogReader::model_mut(self)
    }
    fn hypothesis_file(&self) -> Option<&Path> {
        LogReader::hypothesis_file(self)
    }
    fn model_spec(&self) -> Option<&ModelSpec> {
        LogReader::model_spec(self)
    }
}

impl<S: LogInput + ?Sized> LogInput for Box<S> {
    fn model_mut(&mut self) -> &mut Model {
        (**self).model_mut()
    }
    fn hypothesis_file(&self) -> Option<&Path> {
        (**self).hypothesis_file()
    }
    fn model_spec(&self) -> Option<&ModelSpec> {
        (**self).model_spec()
    }
}

/// The format of a log file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum InputFormat {
    /// By the name: `.parquet` and `.pq` are Parquet, anything else
    /// (standard input included) JSON Lines.
    #[default]
    Auto,
    Jsonl,
    Parquet,
}

impl InputFormat {
    /// `Auto` resolved by the name's extension.
    pub fn resolve(self, path: &str) -> InputFormat {
        match self {
            InputFormat::Auto => {
                let ext = Path::new(path)
                    .extension()
                    .and_then(|e| e.to_str())
                    .map(|e| e.to_ascii_lowercase());
                match ext.as_deref() {
                    Some("parquet" | "pq") if path != "-" => InputFormat::Parquet,
                    // a folder holds a log's Parquet files
                    _ if path != "-" && Path::new(path).is_dir() => InputFormat::Parquet,
                    _ => InputFormat::Jsonl,
                }
            }
            f => f,
        }
    }
}

/// Opens a log in any format (`-` = standard input, JSON Lines only) for an
/// audit or a conversion. The model is the log's own unless
/// `model_override` is given, which wins.
pub fn open_input(
    path: &str,
    format: InputFormat,
    model_override: Option<Model>,
    limits: &Limits,
) -> Result<Box<dyn LogInput>> {
    Ok(match format.resolve(path) {
        InputFormat::Parquet => Box::new(parquet::open(path, model_override, limits)?),
        _ => Box::new(open(path, model_override, limits)?),
    })
}

/// The UTF-8 byte order mark some editors write first; JSON has no use for it.
pub(crate) fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

/// Opens `path` (`-` = standard input) as a log reader. Any readable path
/// will do, a pipe included (`<(zcat log.gz)`): the reader's memory is
/// bounded by `limits` whatever the input's length.
pub fn open(
    path: &str,
    model_override: Option<Model>,
    limits: &Limits,
) -> Result<LogReader<Box<dyn BufRead + Send>>> {
    if path == "-" {
        let input: Box<dyn BufRead + Send> = Box::new(std::io::BufReader::new(std::io::stdin()));
        return LogReader::with_limits("<stdin>", input, Path::new("."), model_override, limits);
    }
    let file = std::fs::File::open(path).map_err(|e| Error::input_file(path, e))?;
    let base = Path::new(path).parent().unwrap_or(Path::new("."));
    let input: Box<dyn BufRead + Send> = Box::new(std::io::BufReader::with_capacity(1 << 16, file));
    LogReader::with_limits(path, input, base, model_override, limits)
}

/// Reads a model file (`--model FILE`): the content of a model line, with or
/// without its `"type":"model"` tag, at most `limits.max_line_bytes` long.
pub fn read_model_file(path: &Path, limits: &Limits) -> Result<Model> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| Error::input_file(path, e))?;
    let max = limits.max_line_bytes;
    let mut bytes = Vec::new();
    file.take(max as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::input_file(path, e))?;
    if bytes.len() > max {
        return Err(Error::input(
            &name,
            None,
            format!("a model file is longer than the limit of {max} bytes (raise it with --max-line-bytes)"),
        ));
    }
    let base = path.parent().unwrap_or(Path::new("."));
    model_from_json(&name, &bytes, base, limits)
}

/// A model from its JSON (the content of a model line, with or without its
/// `"type":"model"` tag); `name` is what errors call it, and a hypothesis
/// file it names is resolved against `base`.
pub fn model_from_json(name: &str, text: &[u8], base: &Path, limits: &Limits) -> Result<Model> {
    parse_model_spec(name, text)?
        .build(base, limits)
        .map_err(|m| Error::input(name, None, format!("model: {m}")))
}

/// The content of a model file or a model line (with or without its
/// `"type":"model"` tag), parsed but not built; errors name `name`.
pub(crate) fn parse_model_spec(name: &str, bytes: &[u8]) -> Result<ModelSpec> {
    let text = strip_bom(bytes);
    let json_error = |e: serde_json::Error| {
        let what = match e.classify() {
            serde_json::error::Category::Data => "invalid model",
            _ => "malformed JSON",
        };
        Error::input(name, Some(e.line()), format!("{what}: {e}"))
    };
    // The `type` tag is optional in a model file, but must say model.
    #[derive(serde::Deserialize)]
    struct OptionalTag {
        #[serde(rename = "type", default)]
        kind: Option<format::LineType>,
    }
    let tag: OptionalTag = serde_json::from_slice(text).map_err(json_error)?;
    if let Some(kind) = tag.kind.filter(|k| *k != format::LineType::Model) {
        return Err(Error::input(
            name,
            None,
            format!(
                "expected a model, found type {}",
                format!("{kind:?}").to_lowercase()
            ),
        ));
    }
    serde_json::from_slice(text).map_err(json_error)
}

/// The hypothesis file a `--model` file names, resolved like `read_model_file`
/// does; `None` when it names none or cannot be parsed (then reading it fails
/// anyway). For the check that no output replaces an input.
pub fn model_file_hypothesis_file(path: &Path, limits: &Limits) -> Option<std::path::PathBuf> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(limits.max_line_bytes as u64 + 1)
        .read_to_end(&mut bytes)
        .ok()?;
    let mut value: serde_json::Value = serde_json::from_slice(strip_bom(&bytes)).ok()?;
    value.as_object_mut()?.remove("type");
    let spec: ModelSpec = serde_json::from_value(value).ok()?;
    spec.hypothesis_file(path.parent().unwrap_or(Path::new(".")))
}
