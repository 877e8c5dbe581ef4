//! Dispatch of `shaders/reduce.wgsl` and the host's f64 combination of its
//! per-block results. CPU twin: `engine::cpu::reduce` (`reduce`).
//!
//! A workgroup reduces one block of `WG·K` hypotheses of one step, for every
//! candidate of the step; the host adds the `⌈H / (WG·K)⌉` block results of
//! each (step, candidate) in f64 (sums), and takes their max / argmax, so only
//! `steps × A × ⌈H/block⌉` small records come back.

use std::collections::HashMap;
use std::sync::Mutex;

use bytemuck::{Pod, Zeroable};

use super::device::Gpu;
use super::{compose, COMMON};
use crate::{Error, Result};

const SOURCE: &str = include_str!("../../../shaders/reduce.wgsl");
/// Threads per workgroup.
pub const WG: u32 = 64;
/// At most this many α per pipeline (one bit each in a `u32` mask).
pub const MAX_ALPHA: usize = 32;
pub const NO_HYPOTHESIS: u32 = u32::MAX;

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct ReduceUniform {
    pub h_count: u32,
    pub n_blocks: u32,
    pub max_candidates: u32,
    pub h0: u32,
}

/// One step: its table's `q` offset, its candidates, its first output candidate.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct StepDesc {
    pub q_offset: u32,
    pub n_candidates: u32,
    pub first_output: u32,
    pub _pad: u32,
}

/// Hypotheses per thread for a space of `h` hypotheses: a block (`WG·K`)
/// covers small spaces in one workgroup and large ones in few.
pub fn per_thread(h: usize) -> u32 {
    let k = h.div_ceil(WG as usize).next_power_of_two();
    k.clamp(1, 32) as u32
}

/// Words per (candidate, block) record: sum, score, q, index, max q per α.
pub fn stride(n_alpha: usize) -> usize {
    4 + n_alpha.max(1)
}

/// Pipelines by (number of α, hypotheses per thread), built on first use.
#[derive(Default)]
pub struct ReduceKernels {
    pipelines: Mutex<HashMap<(usize, u32), std::sync::Arc<wgpu::ComputePipeline>>>,
}

pub struct ReduceBuffers<'a> {
    pub q: &'a wgpu::Buffer,
    pub log_rel: &'a wgpu::Buffer,
    pub thresholds: &'a wgpu::Buffer,
    pub steps: &'a wgpu::Buffer,
    pub cand_out: &'a wgpu::Buffer,
    pub step_out: &'a wgpu::Buffer,
}

impl ReduceKernels {
    pub fn pipeline(
        &self,
        gpu: &Gpu,
        n_alpha: usize,
        k: u32,
    ) -> Result<std::sync::Arc<wgpu::ComputePipeline>> {
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
        if let Some(p) = map.get(&(na, k)) {
            return Ok(p.clone());
        }
        let consts =
            format!("const WG: u32 = {WG}u;\nconst K: u32 = {k}u;\nconst N_ALPHA: u32 = {na}u;\n");
        let module = gpu.shader("reduce.wgsl", compose(&[&consts, COMMON, SOURCE]))?;
        let p = std::sync::Arc::new(gpu.pipeline("reduce", &module)?);
        map.insert((na, k), p.clone());
        Ok(p)
    }

    /// Records one dispatch: `n_blocks` blocks × `n_steps` steps.
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &self,
        gpu: &Gpu,
        encoder: &mut wgpu::CommandEncoder,
        pipeline: &wgpu::ComputePipeline,
        u: &ReduceUniform,
        n_steps: u32,
        b: ReduceBuffers<'_>,
    ) {
        let uniform = gpu.uniform(u);
        let group = gpu.bind_group(
            pipeline,
            &[
                &uniform,
                b.q,
                b.log_rel,
                b.thresholds,
                b.steps,
                b.cand_out,
                b.step_out,
            ],
        );
        gpu.dispatch(encoder, pipeline, &group, (u.n_blocks, n_steps));
    }
}

/// The running f64 combination of block results for one (step, candidate).
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
