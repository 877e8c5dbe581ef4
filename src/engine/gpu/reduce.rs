//! Dispatch of `shaders/reduce.wgsl`. CPU twin: `engine::cpu::reduce`
//! (`reduce`).
//!
//! A thread reduces one block of hypotheses (`HARDWARE_BLOCK` on GPUs; on
//! software renderers up to `BLOCK`, fewer where the loop limit requires,
//! see `GpuBatch::reduce_block`) for one (step, candidate); the shader's `merge`
//! entry then combines the `⌈H / block⌉` block records of each (step,
//! candidate) on the device (sums in double-f32, max / argmax in the order of
//! `Best::merge`), so one small record per (step, candidate) comes back and
//! the host adds the records of hypothesis chunks in f64.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytemuck::{Pod, Zeroable};

use super::device::Gpu;
use super::{compose, KernelShape, ModelUniform, COMMON, DOT};
use crate::{Error, Result};

const SOURCE: &str = include_str!("../../../shaders/reduce.wgsl");
/// Hypotheses per thread on a software renderer (at most), and the
/// alignment of hypothesis chunks.
pub const BLOCK: usize = 4096;
/// Hypotheses per thread on a hardware GPU (a divisor of `BLOCK`).
pub const HARDWARE_BLOCK: usize = 512;
pub const WORKGROUP: u64 = 64;
/// Hypotheses per run (`RUN` in the shaders): a run whose largest weight is
/// negligible is passed over whole.
pub const RUN: usize = 32;
/// At most this many α per pipeline.
pub const MAX_ALPHA: usize = 64;
pub const NO_HYPOTHESIS: u32 = u32::MAX;

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct ReduceUniform {
    pub model: ModelUniform,
    pub h_count: u32,
    pub n_blocks: u32,
    pub block: u32,
    pub n_records: u32,
    pub h0: u32,
    pub params_h0: u32,
    /// 1/k for grid digits
    pub inv_k: f32,
    pub _pad: u32,
}

/// One candidate of a chunk: its step (in the chunk), its `(q, ln q)` row
/// (with inline harm: its first feature, in `[hi, lo]` pairs), and 1 when it
/// is its step's first candidate (which writes the step sums).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct CandDesc {
    pub step: u32,
    pub row: u32,
    pub first: u32,
    pub _pad: u32,
}

/// Words per (candidate, block) record: sum, score, q, index, `ℓ` at the
/// index (hi, lo), the sum's low part (merged records), max q per α.
pub fn stride(n_alpha: usize) -> usize {
    7 + n_alpha.max(1)
}

/// Where a record's max q per α starts.
pub const PLAUSIBLE_AT: usize = 7;

/// The main pipeline and the block merge of one shader variant.
pub struct ReducePipelines {
    pub main: wgpu::ComputePipeline,
    pub merge: wgpu::ComputePipeline,
}

/// Where `reduce.wgsl` gets q from: a harm table, or computed inline (a
/// table per step) from `w·x`, which on a grid is walked from each
/// hypothesis to the next (`GRID_WALK`). A software renderer runs both sides
/// of a branch on the model's kind, so each gets its own code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HarmSource {
    Table,
    Inline,
    InlineGridWalk,
}

/// Pipelines by number of α and harm source, built on first use; the block
/// merge in the engine's shape.
pub struct ReduceKernels {
    shape: KernelShape,
    pipelines: Mutex<HashMap<(usize, HarmSource), Arc<ReducePipelines>>>,
}

/// The merge's outputs: one record per candidate, the step sums.
pub struct MergeBuffers<'a> {
    pub cands: &'a wgpu::Buffer,
    pub cand_out: &'a wgpu::Buffer,
    pub step_out: &'a wgpu::Buffer,
    pub cand_merged: &'a wgpu::Buffer,
    pub step_merged: &'a wgpu::Buffer,
}

pub struct ReduceBuffers<'a> {
    pub q: &'a wgpu::Buffer,
    pub log_rel: &'a wgpu::Buffer,
    pub thresholds: &'a wgpu::Buffer,
    pub cands: &'a wgpu::Buffer,
    pub cand_out: &'a wgpu::Buffer,
    pub step_out: &'a wgpu::Buffer,
    pub params: &'a wgpu::Buffer,
    pub features: &'a wgpu::Buffer,
    /// per (step, run of `RUN` hypotheses): the largest `ℓ` (hi)
    pub run_max: &'a wgpu::Buffer,
}

impl ReduceKernels {
    pub fn new(shape: KernelShape) -> Self {
        ReduceKernels {
            shape,
            pipelines: Default::default(),
        }
    }

    pub fn pipeline(
        &self,
        gpu: &Gpu,
        n_alpha: usize,
        harm: HarmSource,
    ) -> Result<Arc<ReducePipelines>> {
        if n_alpha > MAX_ALPHA {
            return Err(Error::Gpu(format!(
                "{n_alpha} values of α: the GPU reduction takes at most {MAX_ALPHA}"
            )));
        }
        let na = n_alpha.max(1);
        let mut map = self
            .pipelines
            .lock()
            .map_err(|_| Error::Gpu("the pipeline cache is poisoned".into()))?;
        if let Some(p) = map.get(&(na, harm)) {
            return Ok(p.clone());
        }
        let consts = format!(
            "const N_ALPHA: u32 = {na}u;\nconst INLINE_HARM: bool = {};\n\
             const GRID_WALK: bool = {};\n",
            harm != HarmSource::Table,
            harm == HarmSource::InlineGridWalk
        );
        let module = gpu.shader("reduce.wgsl", compose(&[&consts, COMMON, DOT, SOURCE]))?;
        let p = Arc::new(ReducePipelines {
            main: gpu.pipeline("reduce", &module)?,
            merge: match self.shape {
                KernelShape::Parallel => gpu.pipeline_entry("reduce merge", &module, "merge")?,
                KernelShape::Serial => {
                    gpu.pipeline_entry("reduce merge_serial", &module, "merge_serial")?
                }
            },
        });
        map.insert((na, harm), p.clone());
        Ok(p)
    }

    /// Records the merge of each candidate's `n_blocks` block records.
    pub fn record_merge(
        &self,
        gpu: &Gpu,
        encoder: &mut wgpu::CommandEncoder,
        pipelines: &ReducePipelines,
        u: &ReduceUniform,
        b: MergeBuffers<'_>,
    ) -> Result<()> {
        let uniform = gpu.uniform(u);
        let group = gpu.bind_group_at(
            &pipelines.merge,
            &[
                (0, &uniform),
                (4, b.cands),
                (5, b.cand_out),
                (6, b.step_out),
                (10, b.cand_merged),
                (11, b.step_merged),
            ],
        );
        let threads = match self.shape {
            KernelShape::Parallel => u.n_records as u64 * WORKGROUP, // a workgroup per candidate
            KernelShape::Serial => u.n_records as u64,
        };
        gpu.dispatch_linear(encoder, &pipelines.merge, &group, threads, WORKGROUP)
    }

    /// Records one dispatch: `n_records` candidates × `n_blocks` blocks.
    pub fn record(
        &self,
        gpu: &Gpu,
        encoder: &mut wgpu::CommandEncoder,
        pipeline: &wgpu::ComputePipeline,
        u: &ReduceUniform,
        b: ReduceBuffers<'_>,
    ) -> Result<()> {
        let uniform = gpu.uniform(u);
        let group = gpu.bind_group(
            pipeline,
            &[
                &uniform,
                b.q,
                b.log_rel,
                b.thresholds,
                b.cands,
                b.cand_out,
                b.step_out,
                b.params,
                b.features,
                b.run_max,
            ],
        );
        gpu.dispatch_linear(
            encoder,
            pipeline,
            &group,
            u.n_records as u64 * u.n_blocks as u64,
            WORKGROUP,
        )
    }
}

/// The running combination of block results for one (step, candidate).
#[derive(Debug, Clone, Copy)]
pub struct Best {
    pub score: f32,
    pub q: f32,
    pub h: u32,
    /// `ℓ_h`, in f64 from the kernel's double-f32
    pub log_rel: f64,
}

impl Best {
    pub const NONE: Best = Best {
        score: f32::MIN,
        q: 0.0,
        h: NO_HYPOTHESIS,
        log_rel: 0.0,
    };

    /// The best-hypothesis part of a (candidate, block) record.
    pub fn from_record(r: &[u32]) -> Best {
        Best {
            score: f32::from_bits(r[1]),
            q: f32::from_bits(r[2]),
            h: r[3],
            log_rel: f32::from_bits(r[4]) as f64 + f32::from_bits(r[5]) as f64,
        }
    }

    /// The kernel's order: higher score, then larger q, then lower index.
    pub fn merge(&mut self, o: Best) {
        if o.h == NO_HYPOTHESIS {
            return;
        }
        let better = if self.h == NO_HYPOTHESIS {
            true
        } else if o.score != self.score {
            o.score > self.score
        } else if o.q != self.q {
            o.q > self.q
        } else {
            o.h < self.h
        };
        if better {
            *self = o;
        }
    }
}
