//! Dispatch of `shaders/harm.wgsl`: `(q_h(a), ln q_h(a))` and `w_h·x_a` (as
//! double-f32) for every hypothesis of a chunk and every candidate of a group
//! of tables, in candidate-major rows.
//! CPU twin: `engine::cpu::harm` (`harm`).

use bytemuck::{Pod, Zeroable};

use super::device::Gpu;
use super::{compose, ModelUniform, COMMON, DOT};
use crate::Result;

const SOURCE: &str = include_str!("../../../shaders/harm.wgsl");
pub const WORKGROUP: u64 = 256;

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct HarmUniform {
    pub model: ModelUniform,
    pub h0: u32,
    pub h_count: u32,
    pub params_h0: u32,
    pub n_tables: u32,
    /// 1/k for grid digits
    pub inv_k: f32,
    pub _pad: [u32; 3],
}

/// One table of a dispatch: where its features start (in `[hi, lo]` pairs),
/// how many candidates it has, and where its `q` rows go.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct TableDesc {
    pub feature_offset: u32,
    pub n_candidates: u32,
    pub q_offset: u32,
    pub _pad: u32,
}

/// The compiled kernel (built once per engine).
pub struct HarmKernel {
    pipeline: wgpu::ComputePipeline,
}

pub struct HarmBuffers<'a> {
    pub params: &'a wgpu::Buffer,
    pub features: &'a wgpu::Buffer,
    pub tables: &'a wgpu::Buffer,
    pub q: &'a wgpu::Buffer,
    pub wx: &'a wgpu::Buffer,
}

impl HarmKernel {
    pub fn new(gpu: &Gpu) -> Result<Self> {
        let module = gpu.shader("harm.wgsl", compose(&[COMMON, DOT, SOURCE]))?;
        Ok(HarmKernel {
            pipeline: gpu.pipeline("harm", &module)?,
        })
    }

    /// Records one dispatch over `u.n_tables` tables × `u.h_count` hypotheses.
    pub fn record(
        &self,
        gpu: &Gpu,
        encoder: &mut wgpu::CommandEncoder,
        u: &HarmUniform,
        b: HarmBuffers<'_>,
    ) -> Result<()> {
        let uniform = gpu.uniform(u);
        let group = gpu.bind_group(
            &self.pipeline,
            &[&uniform, b.params, b.features, b.tables, b.q, b.wx],
        );
        gpu.dispatch_linear(
            encoder,
            &self.pipeline,
            &group,
            u.n_tables as u64 * u.h_count as u64,
            WORKGROUP,
        )
    }
}
