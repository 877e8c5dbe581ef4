//! The action log: its JSON Lines format and a streaming, validating reader.

pub mod format;
pub mod reader;

pub use format::{LogLine, ModelSpec};
pub use reader::{LogEvent, LogReader, StepRecord, StreamInfo};

use std::io::BufRead;
use std::path::Path;

use crate::model::Model;
use crate::{Error, Result};

/// Opens `path` (`-` = standard input) as a log reader.
pub fn open(
    path: &str,
    model_override: Option<Model>,
) -> Result<LogReader<Box<dyn BufRead + Send>>> {
    if path == "-" {
        let input: Box<dyn BufRead + Send> = Box::new(std::io::BufReader::new(std::io::stdin()));
        return LogReader::new("<stdin>", input, Path::new("."), model_override);
    }
    let file = std::fs::File::open(path).map_err(|e| Error::input_file(path, e))?;
    let base = Path::new(path).parent().unwrap_or(Path::new("."));
    let input: Box<dyn BufRead + Send> = Box::new(std::io::BufReader::with_capacity(1 << 16, file));
    LogReader::new(path, input, base, model_override)
}

/// Reads a model file (`--model FILE`): the content of a model line, with or
/// without its `"type":"model"` tag.
pub fn read_model_file(path: &Path) -> Result<Model> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| Error::input_file(path, e))?;
    let mut value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::input(&name, Some(e.line()), format!("malformed JSON: {e}")))?;
    if let Some(obj) = value.as_object_mut() {
        match obj.remove("type") {
            None => {}
            Some(serde_json::Value::String(t)) if t == "model" => {}
            Some(other) => {
                return Err(Error::input(
                    &name,
                    None,
                    format!("expected a model, found type {other}"),
                ))
            }
        }
    }
    let spec: ModelSpec = serde_json::from_value(value)
        .map_err(|e| Error::input(&name, None, format!("invalid model: {e}")))?;
    let base = path.parent().unwrap_or(Path::new("."));
    spec.build(base)
        .map_err(|m| Error::input(&name, None, format!("model: {m}")))
}

/// The hypothesis file a `--model` file names, resolved like `read_model_file`
/// does; `None` when it names none or cannot be parsed (then reading it fails
/// anyway). For the check that no output replaces an input.
pub fn model_file_hypothesis_file(path: &Path) -> Option<std::path::PathBuf> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut value: serde_json::Value =
        serde_json::from_str(text.trim_start_matches('\u{feff}')).ok()?;
    value.as_object_mut()?.remove("type");
    let spec: ModelSpec = serde_json::from_value(value).ok()?;
    spec.hypothesis_file(path.parent().unwrap_or(Path::new(".")))
}
