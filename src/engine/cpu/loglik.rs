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
