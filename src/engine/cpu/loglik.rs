//! CPU twin of `shaders/loglik.wgsl`: `ln p(y_t | x_{t,a_t}, w_h)` for every
//! hypothesis of every step that has an outcome.

use ndarray::Array2;
use rayon::prelude::*;

use super::harm::HarmTable;
use crate::engine::{Batch, CandidateTable};
use crate::model::{Model, ObservationModel};

/// `steps × H`, zero rows for steps without an outcome.
pub fn loglik(batch: &Batch<'_>, tables: &[std::sync::Arc<HarmTable>]) -> Array2<f64> {
    loglik_into(batch, tables, Vec::new())
}

/// `loglik` into a recycled buffer (its contents are overwritten).
pub fn loglik_into(
    batch: &Batch<'_>,
    tables: &[std::sync::Arc<HarmTable>],
    mut buffer: Vec<f64>,
) -> Array2<f64> {
    let h_count = batch.model.hypotheses.len();
    // every row is written below: a recycled buffer needs no zeroing
    buffer.resize(batch.steps.len() * h_count, 0.0);
    let mut out = Array2::from_shape_vec((batch.steps.len(), h_count), buffer).expect("steps × H");
    out.as_slice_mut()
        .expect("standard layout")
        .par_chunks_mut(h_count)
        .zip(batch.steps.par_iter())
        .for_each(|(row, step)| match step.outcome {
            None => row.fill(0.0),
            Some(y) => {
                let t = step.table as usize;
                loglik_row(
                    batch.model,
                    &tables[t],
                    &batch.tables[t],
                    step.action as usize,
                    y,
                    row,
                )
            }
        });
    out
}

/// `ln p(y | x_a, w_h)` for every hypothesis, into `row` (length `H`): one
/// step with an outcome. `w·x` of the taken action comes from the harm
/// table, or is computed for this action alone when the table is deferred
/// (the same bits either way: `HypothesisSpace::dot_all`). The guardrail
/// calls this for its one step.
pub(crate) fn loglik_row(
    model: &Model,
    table: &HarmTable,
    features: &CandidateTable,
    a: usize,
    y: f64,
    row: &mut [f64],
) {
    let obs = model.observation;
    if table.is_deferred() {
        model.hypotheses.dot_all(features.candidate(a), row);
    } else {
        for (o, &m) in row
            .iter_mut()
            .zip(table.wx[a..].iter().step_by(table.stride))
        {
            *o = m;
        }
    }
    match obs {
        // the same formula as `ObservationModel::log_likelihood`, with
        // its constants hoisted out of the loop
        ObservationModel::Gaussian { sigma, .. } => {
            let (inv, c) = (
                1.0 / sigma,
                -sigma.ln() - 0.5 * (2.0 * std::f64::consts::PI).ln(),
            );
            for l in row.iter_mut() {
                let r = (y - *l) * inv;
                *l = -0.5 * r * r + c;
            }
        }
        ObservationModel::Bernoulli => {
            for l in row.iter_mut() {
                *l = obs.log_likelihood(y, *l);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::cpu::harm;
    use crate::model::HypothesisSpace;

    /// `ln p(y | x_a, w_h)` from its definition (SPEC §1), for every
    /// hypothesis: the Gaussian density with σ ≠ 1 (so that a lost `ln σ`
    /// shows) and the Bernoulli model at y = 1 and y = 0, from a tabulated
    /// harm table and from a deferred one.
    #[test]
    fn loglik_row_is_the_log_density_of_the_outcome() {
        let features = CandidateTable::new(vec![0.5, -1.25, 2.0, 1.5, 0.25, -0.75], 2);
        let gaussian = ObservationModel::Gaussian {
            sigma: 0.7,
            harm_threshold: 1.0,
        };
        for (observation, ys) in [
            (gaussian, vec![0.3, -2.5]),
            (ObservationModel::Bernoulli, vec![1.0, 0.0]),
        ] {
            let model = Model {
                hypotheses: HypothesisSpace::grid(3, 3).unwrap(),
                observation,
            };
            let h_count = model.hypotheses.len();
            for table in [harm::harm(&model, &features), harm::deferred(&features)] {
                for &y in &ys {
                    for a in 0..2 {
                        let mut row = vec![f64::NAN; h_count];
                        loglik_row(&model, &table, &features, a, y, &mut row);
                        for (h, &got) in row.iter().enumerate() {
                            let w = model.hypotheses.params(h);
                            let wx: f64 = w
                                .iter()
                                .zip(features.candidate(a))
                                .map(|(w, x)| w * x)
                                .sum();
                            let want = match observation {
                                ObservationModel::Gaussian { sigma, .. } => {
                                    let r = (y - wx) / sigma;
                                    -0.5 * r * r
                                        - (sigma * (2.0 * std::f64::consts::PI).sqrt()).ln()
                                }
                                ObservationModel::Bernoulli => {
                                    let p = 1.0 / (1.0 + (-wx).exp());
                                    if y == 1.0 {
                                        p.ln()
                                    } else {
                                        (1.0 - p).ln()
                                    }
                                }
                            };
                            assert!(
                                (got - want).abs() <= 1e-12 * want.abs().max(1.0),
                                "{observation:?} y={y} a={a} h={h}: {got} vs {want}"
                            );
                        }
                    }
                }
            }
        }
    }
}
