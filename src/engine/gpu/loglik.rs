//! Dispatch of `shaders/loglik.wgsl`: `ln p(y_t | x_{t,a_t}, w_h)` for every
//! (step, hypothesis) of a chunk, as double-f32 pairs the host adds in f64.
//! CPU twin: `engine::cpu::loglik` (`loglik`).

use bytemuck::{Pod, Zeroable};

use super::device::{self, Gpu};
use super::{compose, ModelUniform, COMMON, DOT};
use crate::Result;

const SOURCE: &str = include_str!("../../../shaders/loglik.wgsl");
pub const WORKGROUP: u64 = 256;
/// Hypotheses per thread of `main_walk` (`RUN` in the shader).
const RUN: u64 = 32;

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct LoglikUniform {
    pub model: ModelUniform,
    pub h0: u32,
    pub h_count: u32,
    pub params_h0: u32,
    pub n_steps: u32,
    pub inv_k: f32,
    /// 1: `w·x` from the parameters and features, not from a harm table
    pub direct: u32,
    pub _pad: [u32; 2],
}

/// One step: the row of its taken action in the harm tables' `w·x` (with
/// `direct`: the taken action's first feature, in `[hi, lo]` pairs), whether
/// there is an outcome, and the outcome as double-f32 bits.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct StepDesc {
    pub wx_row: u32,
    pub observed: u32,
    pub y_hi: u32,
    pub y_lo: u32,
}

pub struct LoglikKernel {
    pipeline: wgpu::ComputePipeline,
    /// On software renderers: `main_walk`, for `direct` on a grid (`w·x`
    /// walked along runs of hypotheses, one thread per run)
    walk: Option<wgpu::ComputePipeline>,
}

impl LoglikKernel {
    pub fn new(gpu: &Gpu) -> Result<Self> {
        let module = gpu.shader("loglik.wgsl", compose(&[COMMON, DOT, SOURCE]))?;
        let walk = if device::is_software(&gpu.adapter) {
            Some(gpu.pipeline_entry("loglik main_walk", &module, "main_walk")?)
        } else {
            None
        };
        Ok(LoglikKernel {
            pipeline: gpu.pipeline("loglik", &module)?,
            walk,
        })
    }

    /// Records one dispatch over `u.n_steps` steps × `u.h_count` hypotheses,
    /// writing `[hi, lo]` pairs to `out[t·h_count + h − h0]` (on a software
    /// renderer, `direct` on a grid: a thread per step and run of hypotheses).
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &self,
        gpu: &Gpu,
        encoder: &mut wgpu::CommandEncoder,
        u: &LoglikUniform,
        wx: &wgpu::Buffer,
        steps: &wgpu::Buffer,
        out: &wgpu::Buffer,
        params: &wgpu::Buffer,
        features: &wgpu::Buffer,
    ) -> Result<()> {
        let uniform = gpu.uniform(u);
        if let Some(walk) = self
            .walk
            .as_ref()
            .filter(|_| u.direct != 0 && u.model.grid_k > 0)
        {
            // main_walk reads neither harm tables nor parameters
            let group =
                gpu.bind_group_at(walk, &[(0, &uniform), (2, steps), (3, out), (5, features)]);
            let runs = (u.h_count as u64).div_ceil(RUN);
            return gpu.dispatch_linear(encoder, walk, &group, u.n_steps as u64 * runs, WORKGROUP);
        }
        let group = gpu.bind_group(
            &self.pipeline,
            &[&uniform, wx, steps, out, params, features],
        );
        gpu.dispatch_linear(
            encoder,
            &self.pipeline,
            &group,
            u.n_steps as u64 * u.h_count as u64,
            WORKGROUP,
        )
    }
}
