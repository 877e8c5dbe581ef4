//! Dispatch of `shaders/loglik.wgsl`: `ln p(y_t | x_{t,a_t}, w_h)` for every
//! (step, hypothesis) of a chunk, as double-f32 pairs the host adds in f64.
//! CPU twin: `engine::cpu::loglik` (`loglik`).

use bytemuck::{Pod, Zeroable};

use super::device::Gpu;
use super::{compose, ModelUniform, COMMON, DOT};
use crate::Result;

const SOURCE: &str = include_str!("../../../shaders/loglik.wgsl");
pub const WORKGROUP: u64 = 256;

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct LoglikUniform {
    pub model: ModelUniform,
    pub h0: u32,
    pub h_count: u32,
    pub params_h0: u32,
    pub n_steps: u32,
    pub inv_k: f32,
    /// Unused: `dot.wgsl` decodes every grid index exactly without it
    pub float_digits: u32,
    /// 1: `w·x` from the parameters and features, not from a harm table
    pub direct: u32,
    pub _pad: u32,
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
}

impl LoglikKernel {
    pub fn new(gpu: &Gpu) -> Result<Self> {
        let module = gpu.shader("loglik.wgsl", compose(&[COMMON, DOT, SOURCE]))?;
        Ok(LoglikKernel {
            pipeline: gpu.pipeline("loglik", &module)?,
        })
    }

    /// Records one dispatch over `u.n_steps` steps × `u.h_count` hypotheses,
    /// writing `[hi, lo]` pairs to `out[t·h_count + h − h0]`.
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
