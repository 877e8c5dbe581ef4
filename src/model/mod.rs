//! The model: a hypothesis space and an observation/harm model (SPEC §1).

pub(crate) mod exp;
pub mod hypotheses;
pub mod normal_tail;
pub mod observation;
pub mod simd;

pub use hypotheses::{HypothesisList, HypothesisSpace, PriorKind};
pub use observation::ObservationModel;

/// `ln Σ e^{x_i}`, stable; −∞ for an empty or all −∞ input. The prior's
/// normaliser needs it first; the posterior uses it throughout.
pub fn log_sum_exp(x: &[f64]) -> f64 {
    let m = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        return m;
    }
    m + x.iter().map(|v| (v - m).exp()).sum::<f64>().ln()
}

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
            } => format!(
                "gaussian outcomes (σ = {}), harm = outcome > {}",
                show_number(sigma),
                show_number(harm_threshold)
            ),
            ObservationModel::Bernoulli => {
                "bernoulli harm indicator, P(harm) = sigmoid(w·x)".into()
            }
        };
        format!("{space}; {obs}")
    }
}

/// A number for people: the shortest form that reads back as the same f64,
/// in scientific notation when it is tiny or huge (`{}` alone writes 1e-300
/// with 300 digits).
pub fn show_number(x: f64) -> String {
    if x != 0.0 && x.is_finite() && !(1e-4..1e16).contains(&x.abs()) {
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gaussian(sigma: f64, harm_threshold: f64) -> Model {
        Model {
            hypotheses: HypothesisSpace::grid(2, 2).unwrap(),
            observation: ObservationModel::Gaussian {
                sigma,
                harm_threshold,
            },
        }
    }

    #[test]
    fn tiny_and_huge_parameters_print_in_scientific_notation() {
        let text = gaussian(1e-300, -2.5e300).describe();
        assert!(
            text.contains("(σ = 1e-300), harm = outcome > -2.5e300"),
            "{text}"
        );
        let text = gaussian(0.5, 4.0).describe();
        assert!(text.contains("(σ = 0.5), harm = outcome > 4"), "{text}");
        let text = gaussian(1.0 / 3.0, 1e15).describe();
        assert!(
            text.contains("σ = 0.3333333333333333)") && text.contains("> 1000000000000000"),
            "{text}"
        );
        let bad = ObservationModel::Gaussian {
            sigma: -1e-300,
            harm_threshold: 0.0,
        };
        assert_eq!(
            bad.validate().unwrap_err(),
            "sigma must be a finite number > 0, got -1e-300"
        );
    }

    #[test]
    fn shown_numbers_read_back_exactly() {
        for x in [
            1e-300,
            5e-324,
            1.7976931348623157e308,
            0.1,
            -3.0,
            1e-4,
            9.999e15,
            1e16,
        ] {
            assert_eq!(show_number(x).parse::<f64>().unwrap(), x, "{x}");
        }
    }
}
