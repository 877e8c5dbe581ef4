//! CPU twin of `shaders/loglik.wgsl`: `ln p(y_t | x_{t,a_t}, w_h)` for every
//! hypothesis of every step that has an outcome.

use ndarray::Array2;
use rayon::prelude::*;

use super::harm::HarmTable;
use crate::engine::Batch;

/// `steps × H`, zero rows for steps without an outcome.
pub fn loglik(batch: &Batch<'_>, tables: &[HarmTable]) -> Array2<f64> {
    let h_count = batch.model.hypotheses.len();
    let obs = batch.model.observation;
    let mut out = Array2::<f64>::zeros((batch.steps.len(), h_count));
    out.as_slice_mut()
        .expect("standard layout")
        .par_chunks_mut(h_count)
        .zip(batch.steps.par_iter())
        .for_each(|(row, step)| {
            let Some(y) = step.outcome else { return };
            let table = &tables[step.table as usize];
            let a = step.action as usize;
            let stride = table.n_candidates;
            for (h, l) in row.iter_mut().enumerate() {
                *l = obs.log_likelihood(y, table.wx[h * stride + a]);
            }
        });
    out
}
