//! The action-log format: JSON Lines, one object per line, tagged by `type`.
//! Documented for users in README.md ("Log format"); unknown fields are
//! errors, so a typo never silently changes an audit.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LogLine {
    Model(ModelSpec),
    Stream(StreamLine),
    Step(StepLine),
}

/// The model: hypothesis space and observation/harm model. Also the content of
/// a `--model FILE`.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub hypotheses: HypothesesSpec,
    pub observation: ObservationSpec,
}

impl ModelSpec {
    /// The hypothesis file this model reads, resolved against `base_dir`
    /// (the log's or model file's folder), if it names one.
    pub fn hypothesis_file(&self, base_dir: &std::path::Path) -> Option<std::path::PathBuf> {
        match &self.hypotheses {
            HypothesesSpec::List(ListSpec { file: Some(f), .. }) => Some(base_dir.join(f)),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HypothesesSpec {
    /// `{0..k-1}^d`, uniform prior.
    Grid(GridSpec),
    /// An explicit list, inline (`params`) or in a JSONL `file` (relative to
    /// the log's directory).
    List(ListSpec),
}

#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GridSpec {
    pub k: u32,
    pub d: usize,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct ListSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Vec<Vec<f64>>>,
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
    #[serde(default)]
    pub id: Option<StreamId>,
    /// The candidate table (`A × d`) for every step that gives none.
    #[serde(default)]
    pub candidates: Option<Vec<Vec<f64>>>,
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
    pub action: usize,
    #[serde(default)]
    pub outcome: Option<f64>,
    #[serde(default)]
    pub candidates: Option<Vec<Vec<f64>>>,
}
