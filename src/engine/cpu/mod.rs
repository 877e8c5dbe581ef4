//! The CPU backend: the fallback where there is no GPU, and the oracle the
//! GPU kernels are tested against. One file per kernel, named like the shader.

pub mod harm;
pub mod loglik;
pub mod reduce;

use ndarray::Array2;
use rayon::prelude::*;

use super::{Backend, BackendInfo, Batch, Engine, PreparedBatch, Reductions, StepWeights};
use crate::Result;
pub use harm::HarmTable;

pub struct CpuEngine {
    info: BackendInfo,
}

impl Default for CpuEngine {
    fn default() -> Self {
        Self::new()
    }
}

impl CpuEngine {
    pub fn new() -> Self {
        CpuEngine {
            info: BackendInfo {
                kind: Backend::Cpu,
                device: format!("{} threads", rayon::current_num_threads()),
                api: String::new(),
                driver: String::new(),
            },
        }
    }
}

impl Engine for CpuEngine {
    fn info(&self) -> &BackendInfo {
        &self.info
    }

    fn prepare<'a>(&'a self, batch: &'a Batch<'a>) -> Result<Box<dyn PreparedBatch + 'a>> {
        // q is tabulated for tables several steps share (bandits); a table of
        // a single step (contextual) gets it lazily, for live hypotheses only.
        let mut uses = vec![0usize; batch.tables.len()];
        for s in &batch.steps {
            uses[s.table as usize] += 1;
        }
        let tables = batch
            .tables
            .par_iter()
            .zip(uses)
            .map(|(t, n)| harm::harm(batch.model, t, n > 1))
            .collect();
        Ok(Box::new(CpuBatch { batch, tables }))
    }
}

struct CpuBatch<'a> {
    batch: &'a Batch<'a>,
    tables: Vec<HarmTable>,
}

impl PreparedBatch for CpuBatch<'_> {
    fn log_likelihoods(&mut self) -> Result<Array2<f64>> {
        Ok(loglik::loglik(self.batch, &self.tables))
    }

    fn reduce(&mut self, weights: &StepWeights, n_alpha: usize) -> Result<Reductions> {
        Ok(reduce::reduce(self.batch, &self.tables, weights, n_alpha))
    }
}
