//! The wgpu backend. Each kernel in `shaders/NAME.wgsl` has a dispatch module
//! here named like it and a CPU twin:
//!
//! | shader | dispatch | CPU twin | computes |
//! |---|---|---|---|
//! | `harm.wgsl` | `harm.rs` | `cpu/harm.rs` | `(q, ln q)`, `w·x` per hypothesis × candidate of a table |
//! | `loglik.wgsl` | `loglik.rs` | `cpu/loglik.rs` | `ln p(y_t│x_{t,a_t}, w_h)` per (step, hypothesis) |
//! | `posterior.wgsl` | `posterior.rs` | `crate::posterior` | prefix sums `L`, per-step max and MAP, `ℓ = L − max`, plausible-set candidates |
//! | `reduce.wgsl` | `reduce.rs` | `cpu/reduce.rs` | Σ e^ℓ q, argmax ℓ + ln q, max over I_α of q; Σ e^ℓ, Σ e^ℓ ℓ |
//!
//! `common.wgsl` (erfc, harm, double-f32 helpers; twins in `model::normal_tail`
//! and `model::observation`) is prepended to every kernel, `dot.wgsl`
//! (`w·x`, twin `HypothesisSpace::dot_all`) to harm, loglik and reduce.
//! Pipelines are built once per engine; device buffers are grow-only and
//! reused from batch to batch; a list of hypotheses is uploaded once while it
//! stays the same, and harm tables stay on the device across batches.
//!
//! Flow of a batch (`posterior_and_reduce`, see `posterior.rs`): per chunk of
//! steps, log-likelihoods → prefix sums from the carry → per-step maximum →
//! relative weights, in one submission; the host collects the hypotheses
//! that can be in a plausible set and computes the cuts exactly as for the
//! CPU engine; then `reduce.wgsl` and a merge of its block records. What
//! comes back is one record per (step, candidate), the candidates, and the
//! carry at the end of the batch (kept by the host in f64). Where harm is
//! tabulated (tables that serve several steps) `q` and `w·x` come from harm
//! tables; with a table per step (a contextual log) loglik computes `w·x` of
//! the taken action and reduce `q` of the hypotheses that matter only. When
//! the hypotheses do not fit one chunk, the host computes the posterior
//! (`log_likelihoods`, then `reduce`): then `T × H` log-likelihoods come back.
//! Nothing of size `H × T × A` ever leaves the device.
//!
//! Precision: `q` is f32 (the erfc fit keeps ≲ 2e-5 relative error on the
//! device down to 1e-30, results below the f32 normal range are 0). `w·x`,
//! `θ − w·x`, the Gaussian log-likelihood, the prefix sums and `ℓ` are
//! double-f32 (~48 bits), so posteriors agree with the f64 CPU engine to
//! ~1e-10 absolute in `ℓ` (Bernoulli log-likelihoods: ~1e-7 absolute per
//! step). Sums over hypotheses are f32 in runs of 32 terms added with Kahan
//! compensation within a block, and double-f32 across blocks. Shader
//! compilers reassociate floats, so the compensated arithmetic goes through
//! `opaque` (see `common.wgsl`).
//!
//! Work is chunked to the adapter's limits: hypotheses in chunks whose
//! tables and per-step rows fit one storage binding (128 MiB on lavapipe),
//! steps in chunks that fit the same, dispatches folded into two dimensions.

pub mod device;
pub mod harm;
pub mod loglik;
pub mod posterior;
pub mod reduce;

use std::collections::HashMap;
use std::sync::Mutex;

use bytemuck::{Pod, Zeroable};
use ndarray::Array2;
use rayon::prelude::*;

use super::{
    Backend, BackendInfo, Batch, CandidateTable, DevicePosterior, Engine, KernelTime,
    PosteriorCarry, PreparedBatch, Reductions, StepWeights,
};
use crate::model::{HypothesisSpace, Model, ObservationModel};
use crate::{Error, Result};
use device::{split, AdapterPolicy, BufferPool, Gpu, Readback};

pub(crate) const COMMON: &str = include_str!("../../../shaders/common.wgsl");
pub(crate) const DOT: &str = include_str!("../../../shaders/dot.wgsl");

/// Joins shader sources in order (common code first).
pub(crate) fn compose(parts: &[&str]) -> String {
    parts.join("\n")
}

/// `ModelParams` in `common.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct ModelUniform {
    pub kind: u32,
    pub dim: u32,
    pub grid_k: u32,
    pub exact: u32,
    pub theta_hi: f32,
    pub theta_lo: f32,
    pub sigma: f32,
    /// 0: the `opaque` zero of `common.wgsl`
    pub zero: u32,
    pub inv_sigma_hi: f32,
    pub inv_sigma_lo: f32,
    pub ll_const_hi: f32,
    pub ll_const_lo: f32,
}

impl ModelUniform {
    fn new(model: &Model, exact: bool) -> Self {
        let (kind, theta, sigma) = match model.observation {
            ObservationModel::Gaussian {
                sigma,
                harm_threshold,
            } => (0, harm_threshold, sigma),
            ObservationModel::Bernoulli => (1, 0.0, 1.0),
        };
        let grid_k = match model.hypotheses {
            HypothesisSpace::Grid { k, .. } => k,
            HypothesisSpace::List(_) => 0,
        };
        let [theta_hi, theta_lo] = split(theta);
        let [inv_sigma_hi, inv_sigma_lo] = split(1.0 / sigma);
        let c = -sigma.ln() - 0.5 * (2.0 * std::f64::consts::PI).ln();
        let [ll_const_hi, ll_const_lo] = split(c);
        ModelUniform {
            kind,
            dim: model.hypotheses.dim() as u32,
            grid_k,
            exact: exact as u32,
            theta_hi,
            theta_lo,
            sigma: sigma as f32,
            zero: 0,
            inv_sigma_hi,
            inv_sigma_lo,
            ll_const_hi,
            ll_const_lo,
        }
    }
}

/// Whether every `w·x` of the batch (and every partial sum) is an integer
/// below 2^24 in magnitude, so that plain f32 arithmetic computes it exactly.
fn exact_in_f32(model: &Model, tables: &[std::sync::Arc<CandidateTable>]) -> bool {
    let space = &model.hypotheses;
    if !space.is_integer_valued() || !tables.iter().all(|t| t.is_integer_valued()) {
        return false;
    }
    wx_bound(space, tables) < (1u64 << 24) as f64
}

/// The largest `Σ_j |w_j|·|x_j|` over the batch's candidates and the largest
/// `|w_j|` of any hypothesis: a bound on every `w·x` and on each of its
/// partial sums.
fn wx_bound(space: &HypothesisSpace, tables: &[std::sync::Arc<CandidateTable>]) -> f64 {
    let mut wmax = vec![0.0f64; space.dim()];
    match space {
        HypothesisSpace::Grid { k, .. } => wmax.iter_mut().for_each(|w| *w = (*k - 1) as f64),
        HypothesisSpace::List(l) => {
            for row in l.params.rows() {
                for (m, v) in wmax.iter_mut().zip(row) {
                    *m = m.max(v.abs());
                }
            }
        }
    }
    let mut bound = 0.0f64;
    for t in tables {
        for a in 0..t.n_candidates {
            let b: f64 = t
                .candidate(a)
                .iter()
                .zip(&wmax)
                .map(|(x, w)| x.abs() * w)
                .sum();
            bound = bound.max(b);
        }
    }
    bound
}

/// A cheap fingerprint of a hypothesis list, to keep its upload between batches.
fn list_fingerprint(model: &Model) -> u64 {
    let HypothesisSpace::List(l) = &model.hypotheses else {
        return 0;
    };
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ l.params.len() as u64;
    for v in l.params.iter() {
        h = (h ^ v.to_bits()).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Loop passes one shader invocation may make on a software renderer.
/// Lavapipe and llvmpipe end every loop of an invocation once it has made
/// 65535 passes in all (gallivm's loop limiter), silently: their kernels
/// (the `Serial` shape) size each thread's work to stay below this, which
/// leaves room for the loops that do not grow with it.
pub const SOFTWARE_LOOP_PASSES: usize = 49152;

/// Pairs per device-posterior chunk on a GPU: large enough that a round
/// trip costs little beside its kernels, small enough that a 2^26-pair
/// batch makes two chunks to overlap. (Measured on an H200 at H = 59049:
/// 2^25 gained 5% over one chunk per batch; 2^24, 2^23 and 2^22 lost, each
/// chunk costing about 0.25 ms of host work besides its kernels.)
const PIPELINED_CHUNK_PAIRS: usize = 1 << 25;

/// The wgpu engine. See the module documentation.
pub struct GpuEngine {
    gpu: Gpu,
    info: BackendInfo,
    harm: harm::HarmKernel,
    loglik: loglik::LoglikKernel,
    posterior: posterior::PosteriorKernels,
    reduce: reduce::ReduceKernels,
    /// hypotheses per reduce thread: long runs suit software renderers (one
    /// thread is one CPU lane), short ones give a GPU enough threads
    reduce_block: usize,
    shape: KernelShape,
    /// batches prepared so far (`GpuBatch::id`)
    batches: std::sync::atomic::AtomicU64,
    /// (step, hypothesis) pairs per step chunk of a device posterior: a
    /// batch in several chunks keeps the device busy with one chunk's
    /// weights while the host cuts the plausible sets of the one before
    chunk_pairs: usize,
    state: Mutex<State>,
}

/// How the kernels divide their work. A software renderer (lavapipe,
/// llvmpipe) runs a workgroup's threads as loops on one CPU core, where
/// barriers and workgroup memory cost more than they save: there each thread
/// walks a long run on its own (`Serial`). A GPU needs many threads per step
/// and merges with workgroup trees (`Parallel`). Both compute the same
/// results; the adapter's kind picks one, and the tests run both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelShape {
    Serial,
    Parallel,
}

#[derive(Default)]
struct State {
    pool: BufferPool,
    /// (fingerprint, first, end) of the hypotheses in the `params` buffer
    params: Option<(u64, usize, usize)>,
    /// the tables whose `q` rows are in the `q` buffer, kept across batches
    /// (a bandit stream's table serves all its batches)
    resident: Option<Resident>,
    /// plausible-set candidates the device posterior reads with its first
    /// results, before it knows how many there are (twice the last count)
    candidate_guess: usize,
    /// the batch (`GpuBatch::id`) whose features are in the `features`
    /// buffer: uploaded once, not once per chunk
    features_of: Option<u64>,
    /// the audit whose prior is in the `prior` buffer
    prior_of: Option<u64>,
    /// (audit, batch): the `carry` buffer holds that audit's carry before
    /// that batch, so the batch need not send it
    carry_before: Option<(u64, u64)>,
}

/// Harm-table rows on the device: for which model and hypotheses, and where
/// each table's rows start.
struct Resident {
    model: ModelKey,
    h0: usize,
    n: usize,
    /// table contents → offset of its rows in `q`
    offsets: HashMap<TableKey, u32>,
}

/// What a harm table depends on besides its candidates.
#[derive(Clone, Copy, PartialEq)]
struct ModelKey {
    uniform: ModelUniform,
    list: u64,
    h: usize,
}

impl PartialEq for ModelUniform {
    fn eq(&self, o: &Self) -> bool {
        bytemuck::bytes_of(self) == bytemuck::bytes_of(o)
    }
}

/// A candidate table by content.
#[derive(Clone, PartialEq, Eq, Hash)]
struct TableKey(Vec<u64>);

impl TableKey {
    fn of(t: &CandidateTable) -> Self {
        let mut k = Vec::with_capacity(t.features.len() + 1);
        k.push(t.n_candidates as u64);
        k.extend(t.features.iter().map(|v| v.to_bits()));
        TableKey(k)
    }
}

impl GpuEngine {
    /// Opens any adapter, software renderers included (`--backend gpu`).
    pub fn new() -> Result<Self> {
        Self::with_policy(AdapterPolicy::Any)
    }

    /// Opens a hardware GPU only (what `--backend auto` uses). On Linux,
    /// where no GPU device node exists there is no hardware adapter to find,
    /// and the probe is skipped: it costs time, and the Vulkan loader's
    /// window-system layers print warnings on headless machines.
    pub fn hardware() -> Result<Self> {
        if !device::hardware_may_exist() {
            return Err(Error::Gpu(
                "no GPU device node (/dev/dri/renderD*, /dev/nvidia*, /dev/dxg)".into(),
            ));
        }
        Self::with_policy(AdapterPolicy::HardwareOnly)
    }

    /// Any adapter, timing every kernel where the adapter has timestamp
    /// queries (`gpubound bench --kernel-times`; each submission then
    /// waits for its times).
    pub fn timed() -> Result<Self> {
        Self::open(AdapterPolicy::Any, true, None)
    }

    pub fn with_policy(policy: AdapterPolicy) -> Result<Self> {
        Self::open(policy, false, None)
    }

    /// Any adapter, with the kernels shaped as asked rather than as its kind
    /// suggests (the tests run the `Parallel` kernels on lavapipe too).
    pub fn with_shape(shape: KernelShape) -> Result<Self> {
        Self::open(AdapterPolicy::Any, false, Some(shape))
    }

    fn open(policy: AdapterPolicy, kernel_times: bool, shape: Option<KernelShape>) -> Result<Self> {
        let gpu = Gpu::open(policy, kernel_times)?;
        let a = &gpu.adapter;
        let info = BackendInfo {
            kind: Backend::Gpu,
            device: a.name.clone(),
            api: device::api_name(a.backend).to_string(),
            driver: [a.driver.as_str(), a.driver_info.as_str()]
                .iter()
                .filter(|s| !s.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(" "),
        };
        let harm = harm::HarmKernel::new(&gpu)?;
        let loglik = loglik::LoglikKernel::new(&gpu)?;
        let shape = shape.unwrap_or(if device::is_software(&gpu.adapter) {
            KernelShape::Serial
        } else {
            KernelShape::Parallel
        });
        let posterior = posterior::PosteriorKernels::new(&gpu, shape)?;
        let reduce_block = match shape {
            KernelShape::Serial => reduce::BLOCK,
            KernelShape::Parallel => reduce::HARDWARE_BLOCK,
        };
        Ok(GpuEngine {
            gpu,
            info,
            harm,
            loglik,
            posterior,
            reduce: reduce::ReduceKernels::new(shape),
            reduce_block,
            shape,
            batches: Default::default(),
            chunk_pairs: match shape {
                // the "device" shares the host's cores: nothing to overlap
                KernelShape::Serial => usize::MAX,
                KernelShape::Parallel => PIPELINED_CHUNK_PAIRS,
            },
            state: Mutex::new(State::default()),
        })
    }

    /// The same engine with device-posterior step chunks of about `pairs`
    /// (step, hypothesis) pairs (the tests use small ones to run the
    /// pipeline on software renderers).
    pub fn with_chunk_pairs(mut self, pairs: usize) -> Self {
        self.chunk_pairs = pairs.max(1);
        self
    }

    /// True when the adapter is a software renderer (lavapipe, llvmpipe).
    pub fn is_software(&self) -> bool {
        device::is_software(&self.gpu.adapter)
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, State>> {
        self.state
            .lock()
            .map_err(|_| Error::Gpu("the engine's state is poisoned".into()))
    }

    /// The harm table of one candidate table, computed by `harm.wgsl`:
    /// `(w·x, q)` hypothesis-major (`[h·A + a]`, the CPU twin's layout), in f32.
    pub fn harm_table(
        &self,
        model: &Model,
        table: &CandidateTable,
    ) -> Result<(Vec<f32>, Vec<f32>)> {
        let mut batch = Batch::new(model);
        let t = batch.push_table(table.clone());
        batch.push_step(super::BatchStep {
            table: t,
            action: 0,
            outcome: None,
        });
        let prepared = GpuBatch::new(self, &batch)?;
        let h = model.hypotheses.len();
        let a = table.n_candidates;
        let (mut wx, mut q) = (vec![0f32; h * a], vec![0f32; h * a]);
        let hc = prepared.h_chunk;
        let mut state = self.lock()?;
        for h0 in (0..h).step_by(hc) {
            let n = hc.min(h - h0);
            let offsets = prepared.compute_tables(&mut state, h0, n, &[t])?;
            let off = offsets[&t] as u64 * 8;
            let bytes = (n * a * 8) as u64;
            let read = |name: &'static str| -> Result<Vec<[f32; 2]>> {
                let src = state
                    .pool
                    .buffer(name)
                    .expect("allocated by compute_tables");
                let mut enc = self.gpu.encoder();
                let tmp = self.gpu.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("harm copy"),
                    size: bytes,
                    usage: wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                enc.copy_buffer_to_buffer(src, off, &tmp, 0, bytes);
                let b = self
                    .gpu
                    .submit_and_read(enc, &tmp, bytes, "reading a harm table")?;
                Ok(bytemuck::cast_slice::<u8, [f32; 2]>(&b[..bytes as usize]).to_vec())
            };
            let qv = read("q")?;
            let wv = read("wx")?;
            for c in 0..a {
                for hl in 0..n {
                    q[(h0 + hl) * a + c] = qv[c * n + hl][0];
                    wx[(h0 + hl) * a + c] = wv[c * n + hl][0] + wv[c * n + hl][1];
                }
            }
        }
        Ok((wx, q))
    }
}

impl GpuEngine {
    /// Runs `fn probe(v: vec4<f32>) -> vec4<f32>` (WGSL, composed after
    /// `common.wgsl`) on every input: a window onto the shared shader code
    /// for tests of its numerics (erfc, double-f32 arithmetic). The inputs'
    /// `w` must be 0: it feeds `opaque_bits`.
    #[doc(hidden)]
    pub fn probe(&self, probe_fn: &str, inputs: &[[f32; 4]]) -> Result<Vec<[f32; 4]>> {
        const MAIN: &str = "@group(0) @binding(0) var<storage, read> probe_in: array<vec4<f32>>;\n\
            @group(0) @binding(1) var<storage, read_write> probe_out: array<vec4<f32>>;\n\
            @compute @workgroup_size(64)\n\
            fn main(@builtin(global_invocation_id) gid: vec3<u32>) {\n\
                if (gid.x < arrayLength(&probe_in)) { let v = probe_in[gid.x]; opaque_bits = bitcast<u32>(v.w); probe_out[gid.x] = probe(v); }\n\
            }\n";
        let gpu = &self.gpu;
        let module = gpu.shader("probe", compose(&[COMMON, probe_fn, MAIN]))?;
        let pipeline = gpu.pipeline("probe", &module)?;
        let mut pool = BufferPool::default();
        pool.upload(gpu, "probe in", inputs);
        let bytes = (inputs.len() * 16) as u64;
        pool.get(gpu, "probe out", bytes);
        let group = gpu.bind_group(
            &pipeline,
            &[
                pool.buffer("probe in").unwrap(),
                pool.buffer("probe out").unwrap(),
            ],
        );
        let mut enc = gpu.encoder();
        gpu.dispatch_linear(&mut enc, &pipeline, &group, inputs.len() as u64, 64)?;
        let out = gpu.submit_and_read(enc, pool.buffer("probe out").unwrap(), bytes, "probe")?;
        Ok(bytemuck::cast_slice(&out[..bytes as usize]).to_vec())
    }
}

impl Engine for GpuEngine {
    fn info(&self) -> &BackendInfo {
        &self.info
    }

    fn take_kernel_times(&self) -> Option<Vec<KernelTime>> {
        self.gpu.take_kernel_times()
    }

    /// A hardware GPU needs big batches to hide each batch's round trips
    /// (64 Mi pairs: 512 MiB of posterior on the device; three host arrays of
    /// that size where the host computes the posterior); a software renderer
    /// runs on the host's cores and gains nothing from them.
    fn preferred_batch_elements(&self) -> usize {
        if self.is_software() {
            crate::engine::DEFAULT_BATCH_ELEMENTS
        } else {
            1 << 26
        }
    }

    fn prepare<'a>(&'a self, batch: &'a Batch<'a>) -> Result<Box<dyn PreparedBatch + 'a>> {
        check_range(batch)?;
        Ok(Box::new(GpuBatch::new(self, batch)?))
    }
}

/// Beyond this magnitude the device's f32 (pairs) refuse a value.
const F32_RANGE: f64 = 1e30;

/// The device holds σ, 1/σ, θ, the features and `w·x` in f32 (pairs):
/// outside f32's range they become ∞, `0·∞` a NaN, and its residuals and
/// harm would not be numbers (SPEC §2: none may reach an estimate). Such a
/// batch is refused, with the way out, rather than computed. An outcome
/// beyond the range is refused only where the CPU could explain it: one
/// that no hypothesis explains on either engine is the reader's business
/// (`--skip-unexplained`).
fn check_range(batch: &Batch<'_>) -> Result<()> {
    let model = batch.model;
    let refuse = |what: String| {
        Err(Error::Setting(format!(
            "{what}: the GPU computes in f32 and needs 1e-30 <= sigma <= 1e30, \
             |harm_threshold| <= 1e30, |w·x| <= 1e30 and |outcome| <= 1e30; use --backend cpu"
        )))
    };
    let bound = wx_bound(&model.hypotheses, &batch.tables);
    if bound.is_nan() || bound > F32_RANGE {
        return refuse(format!(
            "a candidate's features (with the hypotheses' parameters) give |w·x| up to {bound:e}"
        ));
    }
    if let ObservationModel::Gaussian {
        sigma,
        harm_threshold,
    } = model.observation
    {
        if !(1.0 / F32_RANGE..=F32_RANGE).contains(&sigma) || harm_threshold.abs() > F32_RANGE {
            return refuse(format!(
                "sigma = {sigma:e}, harm_threshold = {harm_threshold:e}"
            ));
        }
        // residuals past 1e16 σ are below −1e30 in log space on both engines
        let explainable = |y: f64| (y.abs() - bound) / sigma <= 1e16;
        let far = batch
            .steps
            .iter()
            .filter_map(|s| s.outcome)
            .find(|&y| y.abs() > F32_RANGE && explainable(y));
        if let Some(y) = far {
            return refuse(format!("an outcome of {y:e}"));
        }
    }
    Ok(())
}

/// A batch on the device: its tables' features (double-f32), the model's
/// constants; list hypotheses are uploaded once per engine and kept while
/// the list is the same. Harm tables are computed on first use and kept
/// while they fit, across batches too (a bandit's one table serves every
/// step of its stream).
struct GpuBatch<'a> {
    engine: &'a GpuEngine,
    batch: &'a Batch<'a>,
    model: ModelUniform,
    inv_k: f32,
    /// per table: first feature, in `[hi, lo]` pairs
    feature_offset: Vec<u32>,
    features: Vec<[f32; 2]>,
    /// this batch among all of the engine's (`State::features_of`)
    id: u64,
    h: usize,
    /// hypotheses per chunk
    h_chunk: usize,
}

/// Consecutive steps whose tables, log-weight rows and outputs fit the
/// device's storage bindings together.
struct StepChunk {
    t0: usize,
    t1: usize,
    tables: Vec<u32>,
}

impl<'a> GpuBatch<'a> {
    fn new(engine: &'a GpuEngine, batch: &'a Batch<'a>) -> Result<Self> {
        let model = batch.model;
        let h = model.hypotheses.len();
        let d = model.hypotheses.dim();
        if h > u32::MAX as usize / 4 {
            return Err(Error::Gpu(format!(
                "{h} hypotheses are too many for the GPU backend"
            )));
        }
        let mut features = Vec::new();
        let mut feature_offset = Vec::with_capacity(batch.tables.len());
        for t in &batch.tables {
            feature_offset.push(features.len() as u32);
            features.extend(t.features.iter().map(|&v| split(v)));
        }
        let exact = exact_in_f32(model, &batch.tables);
        let max_a = batch
            .tables
            .iter()
            .map(|t| t.n_candidates)
            .max()
            .unwrap_or(1);
        let budget = engine.gpu.max_binding() as usize;
        // bytes per hypothesis of the largest single binding of a chunk:
        // one table's (q, ln q) or w·x rows, a step's log weights, the params
        let per_h = (max_a * 8).max(match model.hypotheses {
            HypothesisSpace::List(_) => d * 8,
            HypothesisSpace::Grid { .. } => 8,
        });
        let mut h_chunk = h;
        if h * per_h > budget {
            h_chunk = (budget / per_h) / reduce::BLOCK * reduce::BLOCK;
            if h_chunk == 0 {
                return Err(Error::Gpu(format!(
                    "a table of {max_a} candidates (dimension {d}) does not fit the device's \
                     {budget}-byte storage bindings"
                )));
            }
        }
        let inv_k = match model.hypotheses {
            HypothesisSpace::Grid { k, .. } => 1.0 / k as f32,
            HypothesisSpace::List(_) => 0.0,
        };
        Ok(GpuBatch {
            engine,
            batch,
            model: ModelUniform::new(model, exact),
            inv_k,
            feature_offset,
            features,
            id: engine
                .batches
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            h,
            h_chunk,
        })
    }

    /// Makes sure `features` and `params` (hypotheses `h0..h0+n`) are on the
    /// device; returns the first hypothesis of the `params` buffer.
    fn upload_inputs(&self, state: &mut State, h0: usize, n: usize) -> Result<u32> {
        let gpu = &self.engine.gpu;
        if state.features_of != Some(self.id) {
            state.pool.upload(gpu, "features", &self.features);
            state.features_of = Some(self.id);
        }
        let HypothesisSpace::List(l) = &self.batch.model.hypotheses else {
            state.pool.get(gpu, "params", 16);
            return Ok(0);
        };
        let fp = list_fingerprint(self.batch.model);
        if let Some((f, a, b)) = state.params {
            if f == fp && a <= h0 && h0 + n <= b {
                return Ok(a as u32);
            }
        }
        let d = l.params.ncols();
        let budget = gpu.max_binding() as usize;
        // all of the list when it fits, else this chunk
        let (a, b) = if self.h * d * 8 <= budget {
            (0, self.h)
        } else {
            (h0, h0 + n)
        };
        let flat = l
            .params
            .as_slice()
            .ok_or_else(|| Error::Gpu("hypothesis parameters are not contiguous".into()))?;
        let data: Vec<[f32; 2]> = flat[a * d..b * d].iter().map(|&v| split(v)).collect();
        state.pool.upload(gpu, "params", &data);
        state.params = Some((fp, a, b));
        Ok(a as u32)
    }

    /// Makes sure the `(q, ln q)` and `w·x` rows of `tables` for hypotheses
    /// `h0..h0+n` are in the `q` and `wx` buffers; returns each table's row
    /// offset (in pairs). Runs `harm.wgsl` unless they are there already.
    fn compute_tables(
        &self,
        state: &mut State,
        h0: usize,
        n: usize,
        tables: &[u32],
    ) -> Result<HashMap<u32, u32>> {
        let gpu = &self.engine.gpu;
        let model = self.model_key();
        let keys: Vec<TableKey> = tables
            .iter()
            .map(|&t| TableKey::of(&self.batch.tables[t as usize]))
            .collect();
        if let Some(offsets) = self.resident_offsets(state, &model, h0, n, tables, &keys) {
            return Ok(offsets);
        }
        let params_h0 = self.upload_inputs(state, h0, n)?;
        let d = self.batch.model.hypotheses.dim();
        let mut offsets = HashMap::new();
        let mut by_content = HashMap::new();
        let mut descs = Vec::with_capacity(tables.len());
        let mut total = 0usize;
        for (&t, key) in tables.iter().zip(keys) {
            if offsets.contains_key(&t) {
                continue;
            }
            if let Some(&o) = by_content.get(&key) {
                offsets.insert(t, o);
                continue;
            }
            let a = self.batch.tables[t as usize].n_candidates;
            offsets.insert(t, total as u32);
            by_content.insert(key, total as u32);
            // a thread walks its part's candidates (see `harm_part`)
            let part = self.harm_part();
            for a0 in (0..a).step_by(part) {
                descs.push(harm::TableDesc {
                    feature_offset: self.feature_offset[t as usize] + (a0 * d) as u32,
                    n_candidates: part.min(a - a0) as u32,
                    q_offset: (total + a0 * n) as u32,
                    _pad: 0,
                });
            }
            total += a * n;
        }
        state.pool.get(gpu, "q", total as u64 * 8);
        state.pool.get(gpu, "wx", total as u64 * 8);
        // one dispatch per group of tables that fits the dispatch grid
        let per_dispatch = ((gpu.limits.max_compute_workgroups_per_dimension as usize).pow(2)
            * harm::WORKGROUP as usize
            / n)
            .clamp(1, 1 << 20);
        for chunk in descs.chunks(per_dispatch) {
            state.pool.upload(gpu, "tables", chunk);
            let u = harm::HarmUniform {
                model: self.model,
                h0: h0 as u32,
                h_count: n as u32,
                params_h0,
                n_tables: chunk.len() as u32,
                inv_k: self.inv_k,
                _pad: [0; 3],
            };
            let p = &state.pool;
            let mut enc = gpu.encoder();
            self.engine.harm.record(
                gpu,
                &mut enc,
                &u,
                harm::HarmBuffers {
                    params: p.buffer("params").unwrap(),
                    features: p.buffer("features").unwrap(),
                    tables: p.buffer("tables").unwrap(),
                    q: p.buffer("q").unwrap(),
                    wx: p.buffer("wx").unwrap(),
                },
            )?;
            gpu.submit(enc, "computing harm tables")?;
        }
        gpu.check("computing harm tables")?;
        state.resident = Some(Resident {
            model,
            h0,
            n,
            offsets: by_content,
        });
        Ok(offsets)
    }

    /// Each table's row offset where all of `tables` are on the device for
    /// hypotheses `h0..h0+n`.
    fn resident_offsets(
        &self,
        state: &State,
        model: &ModelKey,
        h0: usize,
        n: usize,
        tables: &[u32],
        keys: &[TableKey],
    ) -> Option<HashMap<u32, u32>> {
        let r = state.resident.as_ref()?;
        if r.model != *model || r.h0 != h0 || r.n != n {
            return None;
        }
        tables
            .iter()
            .zip(keys)
            .map(|(&t, k)| r.offsets.get(k).map(|&o| (t, o)))
            .collect()
    }

    fn model_key(&self) -> ModelKey {
        ModelKey {
            uniform: self.model,
            list: list_fingerprint(self.batch.model),
            h: self.h,
        }
    }

    /// True when `tables_for(state, h0, n, chunk)` computes nothing: it
    /// neither runs `harm.wgsl` nor overwrites rows a queued reduce reads.
    fn tables_ready(&self, state: &State, h0: usize, n: usize, chunk: &StepChunk) -> bool {
        if self.untabulated() {
            return true;
        }
        let keys: Vec<TableKey> = chunk
            .tables
            .iter()
            .map(|&t| TableKey::of(&self.batch.tables[t as usize]))
            .collect();
        self.resident_offsets(state, &self.model_key(), h0, n, &chunk.tables, &keys)
            .is_some()
    }

    /// Splits the batch's steps into chunks for a hypothesis chunk of `n`:
    /// their tables' rows (where tabulated), their log-weight rows, and
    /// `out_per_candidate` bytes per candidate each fit one storage binding.
    fn step_chunks(&self, n: usize, out_per_candidate: usize) -> Vec<StepChunk> {
        let batch = self.batch;
        let row_bytes = if self.untabulated() { 0 } else { n * 8 };
        let budget = self.engine.gpu.max_binding() as usize;
        let mut chunks = Vec::new();
        let mut t0 = 0;
        while t0 < batch.steps.len() {
            let mut t1 = t0;
            let mut tables: Vec<u32> = Vec::new();
            let (mut rows, mut outs) = (0usize, 0usize);
            let mut seen = std::collections::HashSet::new();
            while t1 < batch.steps.len() {
                let s = batch.steps[t1];
                let a = batch.tables[s.table as usize].n_candidates;
                let more = if seen.contains(&s.table) {
                    0
                } else {
                    a * row_bytes
                };
                let fits = rows + more <= budget
                    && (t1 - t0 + 1) * n * 8 <= budget
                    && outs + a * out_per_candidate <= budget;
                if t1 > t0 && !fits {
                    break;
                }
                if seen.insert(s.table) {
                    tables.push(s.table);
                    rows += more;
                }
                outs += a * out_per_candidate;
                t1 += 1;
            }
            chunks.push(StepChunk { t0, t1, tables });
            t0 = t1;
        }
        chunks
    }
    /// Records `loglik.wgsl` for the steps of `chunk` and hypotheses
    /// `h0..h0+n` into the buffer `out` (`[t·n + h − h0]`, double-f32).
    #[allow(clippy::too_many_arguments)]
    fn record_loglik(
        &self,
        state: &mut State,
        enc: &mut wgpu::CommandEncoder,
        h0: usize,
        n: usize,
        chunk: &StepChunk,
        offsets: &HashMap<u32, u32>,
        params_h0: u32,
        out: &'static str,
    ) -> Result<()> {
        let batch = self.batch;
        let gpu = &self.engine.gpu;
        let direct = self.untabulated();
        let d = batch.model.hypotheses.dim() as u32;
        let steps = &batch.steps[chunk.t0..chunk.t1];
        let descs: Vec<loglik::StepDesc> = steps
            .iter()
            .map(|s| {
                let [y_hi, y_lo] = split(s.outcome.unwrap_or(0.0));
                loglik::StepDesc {
                    wx_row: if direct {
                        self.feature_offset[s.table as usize] + s.action * d
                    } else {
                        offsets[&s.table] + s.action * n as u32
                    },
                    observed: s.outcome.is_some() as u32,
                    y_hi: y_hi.to_bits(),
                    y_lo: y_lo.to_bits(),
                }
            })
            .collect();
        if direct {
            state.pool.get(gpu, "wx", 16);
        }
        state.pool.upload(gpu, "loglik steps", &descs);
        let u = loglik::LoglikUniform {
            model: self.model,
            h0: h0 as u32,
            h_count: n as u32,
            params_h0,
            n_steps: steps.len() as u32,
            inv_k: self.inv_k,
            direct: direct as u32,
            _pad: [0; 2],
        };
        let p = &state.pool;
        self.engine.loglik.record(
            gpu,
            enc,
            &u,
            p.buffer("wx").unwrap(),
            p.buffer("loglik steps").unwrap(),
            p.buffer(out).unwrap(),
            p.buffer("params").unwrap(),
            p.buffer("features").unwrap(),
        )
    }

    /// Where tables serve several steps each (bandit streams), loglik and
    /// reduce read `w·x` and `q` from harm tables, computed once per batch;
    /// where most steps bring their own table (a contextual log) nothing is
    /// tabulated: loglik computes `w·x` of the taken action only, and reduce
    /// `q` of the hypotheses that matter only.
    fn untabulated(&self) -> bool {
        self.batch.tables.len() * 2 > self.batch.steps.len()
    }
}

impl PreparedBatch for GpuBatch<'_> {
    fn log_likelihoods(&mut self) -> Result<Array2<f64>> {
        let batch = self.batch;
        let n_steps = batch.steps.len();
        let h = self.h;
        let mut out = Array2::<f64>::zeros((n_steps, h));
        if batch.steps.iter().all(|s| s.outcome.is_none()) {
            return Ok(out);
        }
        let engine = self.engine;
        let gpu = &engine.gpu;
        let direct = self.untabulated();
        let mut state = engine.lock()?;
        for h0 in (0..h).step_by(self.h_chunk) {
            let n = self.h_chunk.min(h - h0);
            let chunks = if direct {
                let per = (gpu.max_binding() as usize / (n * 8)).max(1);
                (0..n_steps)
                    .step_by(per)
                    .map(|t0| StepChunk {
                        t0,
                        t1: (t0 + per).min(n_steps),
                        tables: Vec::new(),
                    })
                    .collect()
            } else {
                self.step_chunks(n, 0)
            };
            for chunk in chunks {
                let (t0, t1) = (chunk.t0, chunk.t1);
                let steps = &batch.steps[t0..t1];
                if steps.iter().all(|s| s.outcome.is_none()) {
                    continue;
                }
                let (offsets, params_h0) = if direct {
                    (HashMap::new(), self.upload_inputs(&mut state, h0, n)?)
                } else {
                    let o = self.compute_tables(&mut state, h0, n, &chunk.tables)?;
                    (o, self.upload_inputs(&mut state, h0, n)?)
                };
                let bytes = ((t1 - t0) * n * 8) as u64;
                state.pool.get(gpu, "loglik out", bytes);
                let mut enc = gpu.encoder();
                self.record_loglik(
                    &mut state,
                    &mut enc,
                    h0,
                    n,
                    &chunk,
                    &offsets,
                    params_h0,
                    "loglik out",
                )?;
                let out_buf = state.pool.buffer("loglik out").unwrap();
                let raw = gpu.submit_and_read(enc, out_buf, bytes, "log-likelihoods")?;
                let vals: &[[f32; 2]] = bytemuck::cast_slice(&raw[..bytes as usize]);
                let rows = out
                    .as_slice_mut()
                    .expect("a fresh array is in standard layout");
                rows[t0 * h..t1 * h]
                    .par_chunks_mut(h)
                    .zip(vals.par_chunks(n))
                    .for_each(|(row, src)| {
                        for (o, v) in row[h0..h0 + n].iter_mut().zip(src) {
                            *o = v[0] as f64 + v[1] as f64;
                        }
                    });
            }
        }
        Ok(out)
    }

    fn reduce(&mut self, weights: &StepWeights, n_alpha: usize) -> Result<Reductions> {
        let batch = self.batch;
        let n_steps = batch.steps.len();
        let h = self.h;
        if weights.log_rel.dim() != (n_steps, h)
            || weights.plausible_threshold.dim() != (n_steps, n_alpha)
        {
            return Err(Error::Gpu(format!(
                "reduce: weights of shape {:?}/{:?} for {n_steps} steps × {h} hypotheses × {n_alpha} α",
                weights.log_rel.dim(),
                weights.plausible_threshold.dim()
            )));
        }
        let gpu = &self.engine.gpu;
        // where every q is 0: the MAP hypothesis (as the CPU twin)
        let maps: Vec<usize> = weights
            .log_rel
            .rows()
            .into_iter()
            .map(|row| row.iter().position(|&l| l == 0.0).unwrap_or(0))
            .collect();
        // ℓ and the thresholds are both split from the same f64s here: a
        // member's pair is at or above its threshold's
        let floors: Vec<[f32; 2]> = weights
            .plausible_threshold
            .iter()
            .map(|&v| split(v))
            .collect();
        let thr = self.threshold_rows(0, &weights.plausible_threshold, &floors, &maps);
        let na1 = n_alpha.max(1) + 1;
        let mut acc = BlockSums::new(batch, n_alpha);
        let mut state = self.engine.lock()?;
        let h_chunk = self.reduce_h_chunk(n_alpha)?;
        for h0 in (0..h).step_by(h_chunk) {
            let n = h_chunk.min(h - h0);
            for chunk in self.step_chunks(n, self.record_bytes(n, n_alpha)) {
                let (t0, t1) = (chunk.t0, chunk.t1);
                let offsets = self.tables_for(&mut state, h0, n, &chunk)?;
                let n_runs = n.div_ceil(reduce::RUN);
                let mut lrel = vec![[0f32; 2]; (t1 - t0) * n];
                let mut run_max = vec![0f32; (t1 - t0) * n_runs];
                lrel.par_chunks_mut(n)
                    .zip(run_max.par_chunks_mut(n_runs))
                    .enumerate()
                    .for_each(|(i, (out, tops))| {
                        let row = weights.log_rel.row(t0 + i);
                        for (o, &v) in out.iter_mut().zip(row.iter().skip(h0)) {
                            *o = device::split_log(v);
                        }
                        for (top, run) in tops.iter_mut().zip(out.chunks(reduce::RUN)) {
                            *top = run.iter().fold(device::NEG_HUGE, |m, l| m.max(l[0]));
                        }
                    });
                state.pool.upload(gpu, "log_rel", &lrel);
                state.pool.upload(gpu, "run_max", &run_max);
                state
                    .pool
                    .upload(gpu, "thresholds", &thr[t0 * na1..t1 * na1]);
                let log_rel = LogWeights {
                    weights: "log_rel",
                    run_max: "run_max",
                };
                let read = self
                    .submit_reduce(&mut state, log_rel, h0, n, &chunk, &offsets, n_alpha, None)?;
                self.add_reductions(read, &chunk, &mut acc, |_| ())?;
            }
        }
        drop(state);
        Ok(acc.finish(batch, &maps))
    }

    fn posterior_and_reduce(
        &mut self,
        carry: PosteriorCarry<'_>,
        alphas: &[f64],
    ) -> Result<Option<DevicePosterior>> {
        // the posterior of a step needs all its hypotheses in one chunk
        if self.reduce_h_chunk(alphas.len())? < self.h {
            return Ok(None);
        }
        self.device_posterior(carry, alphas).map(Some)
    }
}

/// The host's f64 combination of the reduce kernel's per-block records.
struct BlockSums {
    n_alpha: usize,
    weight_sum: Vec<f64>,
    weighted_log_rel: Vec<f64>,
    weighted_harm: Vec<f64>,
    best: Vec<reduce::Best>,
    plausible: Vec<f64>,
}

impl BlockSums {
    fn new(batch: &Batch<'_>, n_alpha: usize) -> Self {
        let (n_steps, n_cand) = (batch.steps.len(), batch.n_candidates_total());
        BlockSums {
            n_alpha,
            weight_sum: vec![0.0; n_steps],
            weighted_log_rel: vec![0.0; n_steps],
            weighted_harm: vec![0.0; n_cand],
            best: vec![reduce::Best::NONE; n_cand],
            plausible: vec![0.0; n_cand * n_alpha],
        }
    }

    /// The reductions; `maps[t]` stands in as ĥ where every q of a candidate is 0.
    fn finish(self, batch: &Batch<'_>, maps: &[usize]) -> Reductions {
        let n_steps = batch.steps.len();
        let mut out = Reductions::with_capacity(n_steps, batch.n_candidates_total(), self.n_alpha);
        out.weight_sum = self.weight_sum;
        out.weighted_log_rel = self.weighted_log_rel;
        out.weighted_harm = self.weighted_harm;
        out.plausible_harm = self.plausible;
        for (t, &map) in maps.iter().enumerate().take(n_steps) {
            for b in &self.best[batch.candidate_offsets[t]..batch.candidate_offsets[t + 1]] {
                if b.h == reduce::NO_HYPOTHESIS {
                    out.cautious_hypothesis.push(map as u32);
                    out.cautious_harm.push(0.0);
                    out.cautious_log_score.push(f64::NEG_INFINITY);
                } else {
                    // the score again in f64, from the kernel's double-f32 ℓ
                    let q = b.q as f64;
                    out.cautious_hypothesis.push(b.h);
                    out.cautious_harm.push(q);
                    out.cautious_log_score.push(b.log_rel + q.ln());
                }
            }
        }
        out
    }
}

impl<'a> GpuBatch<'a> {
    /// The harm-table rows of a step chunk's tables (computed unless they are
    /// on the device already); none where harm is not tabulated.
    fn tables_for(
        &self,
        state: &mut State,
        h0: usize,
        n: usize,
        chunk: &StepChunk,
    ) -> Result<HashMap<u32, u32>> {
        if self.untabulated() {
            return Ok(HashMap::new());
        }
        self.compute_tables(state, h0, n, &chunk.tables)
    }

    /// Per step, what `reduce.wgsl` reads from `thresholds`: each α's
    /// plausible-set threshold as (hi, lo) (`floors`: the pair the kernel
    /// compares the hypotheses' own ℓ pairs with, steps × α), padding that
    /// admits no one, and the log weight below which a hypothesis changes
    /// no result (the CPU twin's `negligible_weight`, from q of the MAP
    /// hypothesis `maps[t]`, and the f64 `thresholds`), rounded down to f32.
    /// `thresholds`, `floors` and `maps` are those of the steps from `t0` on.
    fn threshold_rows(
        &self,
        t0: usize,
        thresholds: &Array2<f64>,
        floors: &[[f32; 2]],
        maps: &[usize],
    ) -> Vec<[f32; 2]> {
        let batch = self.batch;
        let model = batch.model;
        let (n_alpha, na) = (thresholds.ncols(), thresholds.ncols().max(1));
        debug_assert_eq!(floors.len(), maps.len() * n_alpha);
        let mut thr = vec![[0f32; 2]; maps.len() * (na + 1)];
        thr.par_chunks_mut(na + 1)
            .zip(
                thresholds
                    .as_slice()
                    .expect("thresholds in standard layout")
                    .par_chunks(na),
            )
            .zip(floors.par_chunks(na))
            .zip(maps.par_iter().zip(batch.steps[t0..].par_iter()))
            .for_each_init(Vec::new, |w, (((row, th), floor), (&map, step))| {
                for (i, o) in row[..na].iter_mut().enumerate() {
                    *o = if i < n_alpha {
                        floor[i]
                    } else {
                        [f32::MAX, 0.0]
                    };
                }
                let table = &batch.tables[step.table as usize];
                w.clear();
                w.extend(model.hypotheses.params(map));
                let q_map = (0..table.n_candidates)
                    .map(|a| model.observation.harm_at(w, table.candidate(a)));
                let lowest = th.iter().copied().fold(f64::INFINITY, f64::min);
                let cutoff = super::cpu::reduce::negligible_weight(q_map, self.h, lowest);
                let skip = if cutoff > 0.0 {
                    (cutoff.ln() * (1.0 + 1e-6)) as f32
                } else {
                    f32::MIN
                };
                row[na] = [skip, 0.0];
            });
        thr
    }

    /// Bytes of reduce records per candidate for a chunk of `n` hypotheses.
    fn record_bytes(&self, n: usize, n_alpha: usize) -> usize {
        n.div_ceil(n.min(self.reduce_block(n_alpha))) * reduce::stride(n_alpha) * 4
    }

    /// Candidates per thread of `harm.wgsl` (which loops over a table's
    /// candidates and, for each, over `d` features): all of a table's on a
    /// GPU, as many as stay within `SOFTWARE_LOOP_PASSES` on a software
    /// renderer.
    fn harm_part(&self) -> usize {
        match self.engine.shape {
            KernelShape::Parallel => usize::MAX,
            KernelShape::Serial => {
                (SOFTWARE_LOOP_PASSES / (self.batch.model.hypotheses.dim() + 2)).max(1)
            }
        }
    }

    /// Hypotheses per thread of `reduce.wgsl`: the engine's block, or on a
    /// software renderer the largest power of two, at most that, whose loop
    /// passes stay within `SOFTWARE_LOOP_PASSES`.
    fn reduce_block(&self, n_alpha: usize) -> usize {
        let mut block = self.engine.reduce_block;
        if self.engine.shape == KernelShape::Serial {
            let per_h = self.reduce_passes_per_hypothesis(n_alpha);
            while block > reduce::RUN && block * per_h > SOFTWARE_LOOP_PASSES {
                block /= 2;
            }
        }
        block
    }

    /// A bound on `reduce.wgsl`'s loop passes per hypothesis: the run's
    /// loop, the per-α loop, and with inline harm over a list the `d`
    /// passes of its `w·x` (a grid walks `w·x` in a few passes per run).
    fn reduce_passes_per_hypothesis(&self, n_alpha: usize) -> usize {
        let dot = match (self.untabulated(), &self.batch.model.hypotheses) {
            (false, _) => 0,
            (true, HypothesisSpace::List(l)) => l.params.ncols(),
            (true, HypothesisSpace::Grid { .. }) => 2,
        };
        3 + n_alpha.max(1) + dot
    }

    /// Hypotheses per chunk of a reduction: the batch's chunk, or on a
    /// software renderer fewer where the block merge (one thread walks a
    /// candidate's blocks, and for each its α) would pass
    /// `SOFTWARE_LOOP_PASSES`; the host adds the records of chunks.
    fn reduce_h_chunk(&self, n_alpha: usize) -> Result<usize> {
        if self.engine.shape == KernelShape::Parallel {
            return Ok(self.h_chunk);
        }
        let block = self.reduce_block(n_alpha);
        if block * self.reduce_passes_per_hypothesis(n_alpha) > SOFTWARE_LOOP_PASSES {
            return Err(Error::Gpu(format!(
                "hypotheses of dimension {} are more than a software renderer's kernels can \
                 loop over; use --backend cpu",
                self.batch.model.hypotheses.dim()
            )));
        }
        let blocks = SOFTWARE_LOOP_PASSES / (3 + n_alpha.max(1));
        // chunks are whole `BLOCK`s; at least 733 blocks of at least `RUN`
        let chunk = blocks * block / reduce::BLOCK * reduce::BLOCK;
        Ok(self.h_chunk.min(chunk.max(reduce::BLOCK)))
    }

    /// Records and submits `reduce.wgsl` and its merge on one step chunk of
    /// hypotheses `h0..h0+n`, whose log weights are in `log_rel` and
    /// thresholds in the `thresholds` buffer; the merged records, and the bytes of
    /// `also_read` (a buffer of the pool) after them, come back without
    /// waiting for them: `add_reductions` takes them.
    #[allow(clippy::too_many_arguments)]
    fn submit_reduce(
        &self,
        state: &mut State,
        log_rel: LogWeights,
        h0: usize,
        n: usize,
        chunk: &StepChunk,
        offsets: &HashMap<u32, u32>,
        n_alpha: usize,
        also_read: Option<(&'static str, u64)>,
    ) -> Result<Readback<'a>> {
        let batch = self.batch;
        let engine = self.engine;
        let gpu = &engine.gpu;
        if n_alpha == 0 {
            return Err(Error::Gpu("reduce: at least one α is needed".into()));
        }
        let inline = self.untabulated();
        let harm = match (inline, &batch.model.hypotheses) {
            (false, _) => reduce::HarmSource::Table,
            (true, HypothesisSpace::List(_)) => reduce::HarmSource::Inline,
            (true, HypothesisSpace::Grid { .. }) => reduce::HarmSource::InlineGridWalk,
        };
        let pipelines = engine.reduce.pipeline(gpu, n_alpha, harm)?;
        let stride = reduce::stride(n_alpha);
        let d = batch.model.hypotheses.dim() as u32;
        let block = n.min(self.reduce_block(n_alpha));
        let n_blocks = n.div_ceil(block);
        let (t0, t1) = (chunk.t0, chunk.t1);
        let mut cands = Vec::new();
        for t in t0..t1 {
            let s = batch.steps[t];
            let a_count = batch.tables[s.table as usize].n_candidates as u32;
            for a in 0..a_count {
                cands.push(reduce::CandDesc {
                    step: (t - t0) as u32,
                    row: if inline {
                        self.feature_offset[s.table as usize] + a * d
                    } else {
                        offsets[&s.table] + a * n as u32
                    },
                    first: (a == 0) as u32,
                    _pad: 0,
                });
            }
        }
        state.pool.upload(gpu, "cands", &cands);
        let params_h0 = self.upload_inputs(state, h0, n)?;
        if inline {
            state.pool.get(gpu, "q", 16);
        }
        // block records, merged on the device into one per candidate / step
        state.pool.get(
            gpu,
            "cand_out",
            (cands.len() * n_blocks * stride * 4) as u64,
        );
        state
            .pool
            .get(gpu, "step_out", ((t1 - t0) * n_blocks * 8) as u64);
        let u = reduce::ReduceUniform {
            model: self.model,
            h_count: n as u32,
            n_blocks: n_blocks as u32,
            block: block as u32,
            n_records: cands.len() as u32,
            h0: h0 as u32,
            params_h0,
            inv_k: self.inv_k,
            _pad: 0,
        };
        state
            .pool
            .get(gpu, "cand_merged", (cands.len() * stride * 4) as u64);
        state.pool.get(gpu, "step_merged", ((t1 - t0) * 16) as u64);
        let p = &state.pool;
        let mut enc = gpu.encoder();
        engine.reduce.record(
            gpu,
            &mut enc,
            &pipelines.main,
            &u,
            reduce::ReduceBuffers {
                q: p.buffer("q").unwrap(),
                log_rel: p.buffer(log_rel.weights).unwrap(),
                thresholds: p.buffer("thresholds").unwrap(),
                cands: p.buffer("cands").unwrap(),
                cand_out: p.buffer("cand_out").unwrap(),
                step_out: p.buffer("step_out").unwrap(),
                params: p.buffer("params").unwrap(),
                features: p.buffer("features").unwrap(),
                run_max: p.buffer(log_rel.run_max).unwrap(),
            },
        )?;
        engine.reduce.record_merge(
            gpu,
            &mut enc,
            &pipelines,
            &u,
            reduce::MergeBuffers {
                cands: p.buffer("cands").unwrap(),
                cand_out: p.buffer("cand_out").unwrap(),
                step_out: p.buffer("step_out").unwrap(),
                cand_merged: p.buffer("cand_merged").unwrap(),
                step_merged: p.buffer("step_merged").unwrap(),
            },
        )?;
        let cand_bytes = (cands.len() * stride * 4) as u64;
        let step_bytes = ((t1 - t0) * 16) as u64;
        // another buffer the caller needs rides along (one round trip less)
        let mut reads = vec![
            (p.buffer("step_merged").unwrap(), step_bytes),
            (p.buffer("cand_merged").unwrap(), cand_bytes),
        ];
        if let Some((name, bytes)) = also_read {
            reads.push((p.buffer(name).expect("a buffer of the pool"), bytes));
        }
        gpu.submit_reading(enc, &reads, "reducing over hypotheses")
    }

    /// Adds the merged records of `submit_reduce` on `chunk` into `acc`,
    /// and hands `also` the extra buffer's bytes, if one was read.
    fn add_reductions(
        &self,
        read: Readback<'_>,
        chunk: &StepChunk,
        acc: &mut BlockSums,
        also: impl FnOnce(&[u8]),
    ) -> Result<()> {
        let batch = self.batch;
        let n_alpha = acc.n_alpha;
        let stride = reduce::stride(n_alpha);
        let (t0, t1) = (chunk.t0, chunk.t1);
        // candidates of a step are consecutive, in candidate order
        let first = batch.candidate_offsets[t0];
        let last = batch.candidate_offsets[t1];
        let cand_bytes = (last - first) * stride * 4;
        let step_bytes = (t1 - t0) * 16;
        read.view(|raw| {
            let sv: &[[f32; 4]] = bytemuck::cast_slice(&raw[0][..step_bytes]);
            let cv: &[u32] = bytemuck::cast_slice(&raw[1][..cand_bytes]);
            for (t, v) in (t0..t1).zip(sv) {
                acc.weight_sum[t] += v[0] as f64 + v[1] as f64;
                acc.weighted_log_rel[t] += v[2] as f64 + v[3] as f64;
            }
            acc.weighted_harm[first..last]
                .par_iter_mut()
                .zip(acc.best[first..last].par_iter_mut())
                .zip(acc.plausible[first * n_alpha..last * n_alpha].par_chunks_mut(n_alpha))
                .zip(cv.par_chunks(stride))
                .for_each(|(((sum, best), plausible), r)| {
                    *sum += f32::from_bits(r[0]) as f64 + f32::from_bits(r[6]) as f64;
                    best.merge(reduce::Best::from_record(r));
                    for (m, &bits) in plausible.iter_mut().zip(&r[reduce::PLAUSIBLE_AT..]) {
                        *m = m.max(f32::from_bits(bits) as f64);
                    }
                });
            if let Some(extra) = raw.get(2) {
                also(extra);
            }
        })
    }
}

/// The pool buffers `reduce.wgsl` reads a chunk's log weights from: `ℓ`
/// per (step, hypothesis) and the largest `ℓ` per run of hypotheses.
#[derive(Clone, Copy)]
struct LogWeights {
    weights: &'static str,
    run_max: &'static str,
}
