//! The action-log format: JSON Lines, one object per line, tagged by `type`.
//! Documented for users in README.md ("Log format"); unknown fields are
//! errors, so a typo never silently changes an audit.

use serde::Deserialize;

/// One line of a log, by its `type`.
#[derive(Debug, Clone)]
pub enum LogLine {
    Model(ModelSpec),
    Stream(StreamLine),
    Step(StepLine),
}

/// The `type` tag of a line (or a model file), read first on its own.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LineType {
    Model,
    Stream,
    Step,
}

/// Only the tag: every other field is skipped without being stored.
#[derive(Deserialize)]
pub(crate) struct Tag {
    #[serde(rename = "type")]
    pub kind: LineType,
}

/// Accepts (and drops) the `type` tag in a line's own struct, which denies
/// unknown fields.
type TypeTag = Option<serde::de::IgnoredAny>;

impl LogLine {
    /// Parses one line: its tag first, then the line straight into its struct.
    /// (serde's internally tagged enums buffer a whole line as generic
    /// values, several times its size; two passes keep a line's memory close
    /// to the numbers it holds.)
    pub fn parse(line: &[u8]) -> serde_json::Result<LogLine> {
        // serde would also read the fields of a struct from an array, in order.
        if line.first() == Some(&b'[') {
            return Err(serde::de::Error::custom(
                "a line is a JSON object {…}, not an array",
            ));
        }
        Ok(match serde_json::from_slice::<Tag>(line)?.kind {
            LineType::Model => LogLine::Model(serde_json::from_slice(line)?),
            LineType::Stream => LogLine::Stream(serde_json::from_slice(line)?),
            LineType::Step => LogLine::Step(serde_json::from_slice(line)?),
        })
    }
}

/// The model: hypothesis space and observation/harm model. Also the content of
/// a `--model FILE`.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    #[serde(rename = "type", default, skip_serializing)]
    pub tag: TypeTag,
    pub hypotheses: HypothesesSpec,
    pub observation: ObservationSpec,
}

impl ModelSpec {
    /// The hypothesis file this model reads, resolved against `base_dir`
    /// (the log's or model file's folder), if it names one.
    pub fn hypothesis_file(&self, base_dir: &std::path::Path) -> Option<std::path::PathBuf> {
        match (&self.hypotheses.kind, &self.hypotheses.file) {
            (HypothesesKind::List, Some(f)) => Some(base_dir.join(f)),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum HypothesesKind {
    /// `{0..k-1}^d`, uniform prior: `k` and `d`.
    Grid,
    /// An explicit list, inline (`params`, optional `log_prior` and
    /// `log_proposal`) or in a JSONL `file` (relative to the log's directory).
    List,
}

/// The hypothesis space. One struct rather than an enum tagged by `kind`, so
/// that inline parameters are read straight into a flat table; `build`
/// checks that only the fields of `kind` are given.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HypothesesSpec {
    pub kind: HypothesesKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub d: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Rows>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_prior: Option<Vec<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_proposal: Option<Vec<f64>>,
}

/// One line of a hypothesis file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HypothesisLine {
    pub params: Vec<f64>,
    #[serde(default)]
    pub log_prior: Option<f64>,
    #[serde(default)]
    pub log_proposal: Option<f64>,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ObservationSpec {
    Gaussian(GaussianSpec),
    Bernoulli(BernoulliSpec),
}

#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GaussianSpec {
    pub sigma: f64,
    pub harm_threshold: f64,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BernoulliSpec {}

/// Starts a stream (episode): one unknown world.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamLine {
    #[serde(rename = "type", default)]
    pub tag: TypeTag,
    #[serde(default)]
    pub id: Option<StreamId>,
    /// The candidate table (`A × d`) for every step that gives none.
    #[serde(default)]
    pub candidates: Option<Rows>,
    /// The true hypothesis, when known (simulations): an index …
    #[serde(default)]
    pub true_hypothesis: Option<usize>,
    /// … or its parameter vector.
    #[serde(default)]
    pub true_params: Option<Vec<f64>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum StreamId {
    Text(String),
    Number(i64),
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StreamId::Text(s) => f.write_str(s),
            StreamId::Number(n) => write!(f, "{n}"),
        }
    }
}

/// One step: the action taken, its outcome, and optionally this step's own
/// candidate table (contextual logs).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepLine {
    #[serde(rename = "type", default)]
    pub tag: TypeTag,
    pub action: usize,
    #[serde(default)]
    pub outcome: Option<f64>,
    #[serde(default)]
    pub candidates: Option<Rows>,
}

/// A JSON array of number arrays (a candidate table), read straight into one
/// row-major vector: a row costs its numbers and nothing more, so a line of
/// `n` bytes never takes much more than `4n` bytes however it is shaped.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rows {
    pub values: Vec<f64>,
    pub n_rows: usize,
    /// Length of the first row (0 when there is none).
    pub width: usize,
    /// The first row whose length differs from the first's: (index, length).
    pub ragged: Option<(usize, usize)>,
}

impl serde::Serialize for Rows {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        if self.ragged.is_some() {
            return Err(serde::ser::Error::custom("a ragged table has no JSON form"));
        }
        let mut seq = serializer.serialize_seq(Some(self.n_rows))?;
        for i in 0..self.n_rows {
            seq.serialize_element(&self.values[i * self.width..(i + 1) * self.width])?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for Rows {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::{SeqAccess, Visitor};

        struct RowsVisitor;
        /// One row, appended to the table's values.
        struct Row<'a>(&'a mut Vec<f64>);

        impl<'de> serde::de::DeserializeSeed<'de> for Row<'_> {
            type Value = usize;
            fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
                d.deserialize_seq(self)
            }
        }
        impl<'de> Visitor<'de> for Row<'_> {
            type Value = usize;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array of numbers")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
                let mut n = 0;
                while let Some(v) = seq.next_element::<f64>()? {
                    self.0.push(v);
                    n += 1;
                }
                Ok(n)
            }
        }
        impl<'de> Visitor<'de> for RowsVisitor {
            type Value = Rows;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array of arrays of numbers")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Rows, A::Error> {
                let mut rows = Rows::default();
                while let Some(len) = seq.next_element_seed(Row(&mut rows.values))? {
                    if rows.n_rows == 0 {
                        rows.width = len;
                    } else if len != rows.width && rows.ragged.is_none() {
                        rows.ragged = Some((rows.n_rows, len));
                    }
                    rows.n_rows += 1;
                }
                Ok(rows)
            }
        }
        deserializer.deserialize_seq(RowsVisitor)
    }
}
