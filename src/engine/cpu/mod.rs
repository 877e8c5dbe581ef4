//! The CPU backend: the fallback where there is no GPU, and the oracle the
//! GPU kernels are tested against. One file per kernel, named like the shader.

pub mod harm;
pub mod loglik;
pub mod reduce;

use std::sync::{Arc, Mutex};

use ndarray::Array2;
use rayon::prelude::*;

use super::{
    Backend, BackendInfo, Batch, CandidateTable, Engine, PreparedBatch, ReducedBatch, Reductions,
    StepWeights, WeighedBatch,
};
use crate::model::Model;
use crate::posterior::{self, CutScratch, PlausibleCut};
use crate::Result;
pub use harm::HarmTable;

/// Harm tables kept between batches: a long bandit stream spans many
/// batches with the same candidate table. A few recent ones suffice.
const TABLE_CACHE_BYTES: usize = 256 << 20;
const TABLE_CACHE_ENTRIES: usize = 4;

pub struct CpuEngine {
    info: BackendInfo,
    /// Harm tables of recent shared candidate tables, all under one model:
    /// a batch of another model empties it first (a table's harm depends
    /// on the model as much as on the table).
    cache: Mutex<TableCache>,
}

#[derive(Default)]
struct TableCache {
    model: Option<Model>,
    /// Counts the models the cache has held: a table computed for one
    /// generation is never filed under another.
    generation: u64,
    tables: Vec<(Arc<CandidateTable>, Arc<HarmTable>)>,
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
            cache: Mutex::new(TableCache::default()),
        }
    }

    /// Makes the cache `model`'s, emptying it if it held another's; once
    /// per batch (comparing models costs up to H·d). Returns its generation.
    fn cache_for(&self, model: &Model) -> u64 {
        let mut cache = self.cache.lock().expect("cache lock");
        if cache.model.as_ref() != Some(model) {
            cache.model = Some(model.clone());
            cache.generation += 1;
            cache.tables.clear();
        }
        cache.generation
    }

    /// The tabulated harm table of a shared candidate table, from the cache
    /// when the last batches used it too (under the same model: `cache_for`
    /// gave `generation`).
    fn shared_table(
        &self,
        batch: &Batch<'_>,
        table: &Arc<CandidateTable>,
        generation: u64,
    ) -> Arc<HarmTable> {
        let hit = {
            let cache = self.cache.lock().expect("cache lock");
            if cache.generation != generation {
                None
            } else {
                cache
                    .tables
                    .iter()
                    .find(|(t, _)| Arc::ptr_eq(t, table) || **t == **table)
                    .map(|(_, h)| h.clone())
            }
        };
        if let Some(h) = hit {
            return h;
        }
        let h = Arc::new(harm::harm(batch.model, table));
        let bytes = 8 * (h.q.len() + h.wx.len());
        if bytes * 2 <= TABLE_CACHE_BYTES {
            let mut cache = self.cache.lock().expect("cache lock");
            if cache.generation != generation {
                // another model's batch came in between: the cache is its
                return h;
            }
            let cache = &mut cache.tables;
            cache.insert(0, (table.clone(), h.clone()));
            cache.truncate(TABLE_CACHE_ENTRIES);
            let mut total = 0;
            cache.retain(|(_, t)| {
                total += 8 * (t.q.len() + t.wx.len());
                total <= TABLE_CACHE_BYTES
            });
        }
        h
    }
}

impl Engine for CpuEngine {
    fn info(&self) -> &BackendInfo {
        &self.info
    }

    fn prepare<'a>(&'a self, batch: &'a Batch<'a>) -> Result<Box<dyn PreparedBatch + 'a>> {
        // q is tabulated for tables several steps share (bandits); a table of
        // a single step (contextual) gets it lazily, for live hypotheses only.
        let generation = self.cache_for(batch.model);
        let mut uses = vec![0usize; batch.tables.len()];
        for s in &batch.steps {
            uses[s.table as usize] += 1;
        }
        let tables = batch
            .tables
            .par_iter()
            .zip(uses)
            .map(|(t, n)| {
                if n > 1 {
                    self.shared_table(batch, t, generation)
                } else {
                    Arc::new(harm::deferred(t))
                }
            })
            .collect();
        Ok(Box::new(CpuBatch { batch, tables }))
    }
}

struct CpuBatch<'a> {
    batch: &'a Batch<'a>,
    tables: Vec<Arc<HarmTable>>,
}

impl PreparedBatch for CpuBatch<'_> {
    fn log_likelihoods(&mut self) -> Result<Array2<f64>> {
        Ok(loglik::loglik(self.batch, &self.tables))
    }

    fn log_likelihoods_into(&mut self, buffer: Vec<f64>) -> Result<Array2<f64>> {
        Ok(loglik::loglik_into(self.batch, &self.tables, buffer))
    }

    fn reduce(&mut self, weights: &StepWeights, n_alpha: usize) -> Result<Reductions> {
        Ok(reduce::reduce(self.batch, &self.tables, weights, n_alpha))
    }

    /// One step at a time: its row of the log posterior becomes relative
    /// weights, cuts and reductions while it is in cache. At H = 1024 the
    /// batch's separate passes over `steps × H` arrays cost more than the
    /// arithmetic. Same functions as the default, so the same bits; the
    /// weights the scan passes over are left at 0 without an exponential.
    fn weigh_and_reduce(
        &mut self,
        mut rows: Array2<f64>,
        alphas: &[f64],
        spare: Vec<f64>,
    ) -> Result<WeighedBatch> {
        let h = rows.ncols();
        let n_alpha = alphas.len();
        let none = PlausibleCut {
            threshold: 0.0,
            size: 0,
        };
        let per_step: Vec<_> = rows
            .as_slice_mut()
            .expect("row-major log posterior")
            .par_chunks_mut(h)
            .enumerate()
            .map_init(
                || (CutScratch::default(), vec![0.0; h], vec![0.0; n_alpha]),
                |(scratch, weight, thresholds), (t, row)| {
                    let step = self.batch.steps[t].table as usize;
                    let mut cuts = vec![none; n_alpha];
                    let (reduced, map) = weigh_and_reduce_row(
                        self.batch.model,
                        &self.batch.tables[step],
                        &self.tables[step],
                        row,
                        weight,
                        alphas,
                        scratch,
                        &mut cuts,
                        thresholds,
                    );
                    (reduced, cuts, map)
                },
            )
            .collect();
        let mut steps = Vec::with_capacity(per_step.len());
        let mut cuts = Vec::with_capacity(per_step.len());
        let mut maps = Vec::with_capacity(per_step.len());
        for (s, c, m) in per_step {
            steps.push(s);
            cuts.push(c);
            maps.push(m);
        }
        Ok(WeighedBatch {
            reduced: ReducedBatch {
                reductions: reduce::gather(self.batch, steps, n_alpha),
                cuts,
                maps,
            },
            posterior_seconds: 0.0,
            spare: (rows.into_raw_vec_and_offset().0, spare),
        })
    }
}

/// One step of `weigh_and_reduce`: `row` (the log posterior before the step)
/// becomes log relative weights, `weight` its weights, `cuts` and
/// `thresholds` the plausible sets; returns the reductions and the MAP. The
/// weights the scan passes over are left at 0 without an exponential. The
/// batch's steps and the guardrail's one step both go through here, so they
/// give the same bits.
#[allow(clippy::too_many_arguments)]
pub(crate) fn weigh_and_reduce_row(
    model: &crate::model::Model,
    features: &CandidateTable,
    table: &HarmTable,
    row: &mut [f64],
    weight: &mut [f64],
    alphas: &[f64],
    scratch: &mut CutScratch,
    cuts: &mut [PlausibleCut],
    thresholds: &mut [f64],
) -> (reduce::StepReduction, usize) {
    let floor = posterior::plausible_floor(alphas);
    let relative = posterior::to_relative_skipping(row, weight, |map| {
        reduce::negligible_log_weight(model, features, table, map, floor)
    });
    posterior::plausible_cuts(row, weight, alphas, scratch, cuts);
    for (th, c) in thresholds.iter_mut().zip(cuts.iter()) {
        *th = c.threshold;
    }
    let reduced = reduce::reduce_row(
        model,
        features,
        table,
        row,
        weight,
        thresholds,
        alphas.len(),
        Some(relative.sums),
    );
    (reduced, relative.map)
}
