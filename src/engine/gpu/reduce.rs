//! Dispatch of `shaders/reduce.wgsl` and the host's f64 combination of its
//! per-block results. CPU twin: `engine::cpu::reduce` (`reduce`).
//!
//! A thread reduces one block of at most `BLOCK` hypotheses for one (step,
//! candidate); the host adds the `⌈H / BLOCK⌉` block results of each (step,
//! candidate) in f64 (sums) and takes their max / argmax, so only
//! `steps × A × ⌈H/BLOCK⌉` small records come back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytemuck::{Pod, Zeroable};

use super::device::Gpu;
use super::{compose, COMMON};
use crate::{Error, Result};

const SOURCE: &str = include_str!("../../../shaders/reduce.wgsl");
/// Hypotheses per thread.
pub const BLOCK: usize = 4096;
pub const WORKGROUP: u64 = 64;
/// At most this many α per pipeline.
pub const MAX_ALPHA: usize = 64;
pub const NO_HYPOTHESIS: u32 = u32::MAX;

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct ReduceUniform {
    pub h_count: u32,
    pub n_blocks: u32,
    pub block: u32,
    pub n_records: u32,
    pub h0: u32,
    /// 0 (the `opaque` zero of `common.wgsl`)
    pub zero: u32,
    pub _pad: [u32; 2],
}

/// One candidate of a chunk: its step (in the chunk), its `(q, ln q)` row,
/// and 1 when it is its step's first candidate (which writes the step sums).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct CandDesc {
    pub step: u32,
    pub row: u32,
    pub first: u32,
    pub _pad: u32,
}

/// Words per (candidate, block) record: sum, score, q, index, max q per α.
pub fn stride(n_alpha: usize) -> usize {
    4 + n_alpha.max(1)
}

/// Pipelines by number of α, built on first use.
#[derive(Default)]
pub struct ReduceKernels {
    pipelines: Mutex<HashMap<usize, Arc<wgpu::ComputePipeline>>>,
}

pub struct ReduceBuffers<'a> {
    pub q: &'a wgpu::Buffer,
    pub log_rel: &'a wgpu::Buffer,
    pub thresholds: &'a wgpu::Buffer,
    pub cands: &'a wgpu::Buffer,
    pub cand_out: &'a wgpu::Buffer,
    pub step_out: &'a wgpu::Buffer,
}

impl ReduceKernels {
    pub fn pipeline(&self, gpu: &Gpu, n_alpha: usize) -> Result<Arc<wgpu::ComputePipeline>> {
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
        if let Some(p) = map.get(&na) {
            return Ok(p.clone());
        }
        let consts = format!("const N_ALPHA: u32 = {na}u;\n");
        let module = gpu.shader("reduce.wgsl", compose(&[&consts, COMMON, SOURCE]))?;
        let p = Arc::new(gpu.pipeline("reduce", &module)?);
        map.insert(na, p.clone());
        Ok(p)
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
}

impl Best {
    pub const NONE: Best = Best {
        score: f32::MIN,
        q: 0.0,
        h: NO_HYPOTHESIS,
    };

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
