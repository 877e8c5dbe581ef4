//! The model: a hypothesis space and an observation/harm model (SPEC §1).

pub mod hypotheses;
pub mod normal_tail;
pub mod observation;

pub use hypotheses::{HypothesisList, HypothesisSpace, PriorKind};
pub use observation::ObservationModel;

#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub hypotheses: HypothesisSpace,
    pub observation: ObservationModel,
}

impl Model {
    /// A one-line description for summaries.
    pub fn describe(&self) -> String {
        let space = match &self.hypotheses {
            HypothesisSpace::Grid { k, d } => {
                format!(
                    "grid {{0..{}}}^{d} ({} hypotheses, uniform prior)",
                    k - 1,
                    self.hypotheses.len()
                )
            }
            HypothesisSpace::List(l) => format!(
                "list of {} hypotheses in R^{} ({})",
                l.params.nrows(),
                l.params.ncols(),
                match l.prior_kind {
                    PriorKind::Uniform => "uniform prior",
                    PriorKind::Given => "given prior",
                    PriorKind::ImportanceSampled =>
                        "importance-weighted samples: guarantees hold for the sampled set",
                }
            ),
        };
        let obs = match self.observation {
            ObservationModel::Gaussian {
                sigma,
                harm_threshold,
            } => format!("gaussian outcomes (σ = {sigma}), harm = outcome > {harm_threshold}"),
            ObservationModel::Bernoulli => {
                "bernoulli harm indicator, P(harm) = sigmoid(w·x)".into()
            }
        };
        format!("{space}; {obs}")
    }
}
