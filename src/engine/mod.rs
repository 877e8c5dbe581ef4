//! The engine: evaluates harm probabilities and log-likelihoods for every
//! (hypothesis, step, candidate) triple of a batch and reduces them over
//! hypotheses. Two backends sit behind one trait: `cpu` (the fallback and the
//! test oracle) and `gpu` (wgpu compute shaders). Each GPU kernel in
//! `shaders/NAME.wgsl` has its CPU twin in `src/engine/cpu/NAME.rs`.
//!
//! The flow for one batch, shared by both backends:
//!
//! ```text
//! engine.prepare(batch)          harm tables (q per hypothesis × candidate)
//!   .log_likelihoods()           ln p(y_t | x_{t,a_t}, w_h)        steps × H
//! posterior (host, f64)          prefix sums, log relative weights, I_α cuts
//!   .reduce(weights)             Σ p·q, argmax p·q, max_{I_α} q     steps × A
//! ```

pub mod cpu;
pub mod gpu;

use ndarray::Array2;

pub use crate::log::CandidateTable;
use crate::model::Model;
pub use crate::posterior::StepWeights;
use crate::Result;

/// Default size of a batch, in (step, hypothesis) pairs: a few f64 arrays of
/// this size are alive at once (16 MiB each: below glibc's largest mmap
/// threshold, so batches reuse the heap instead of faulting in fresh pages).
pub const DEFAULT_BATCH_ELEMENTS: usize = 1 << 21;

/// Wall time spent in each phase of the pipeline, summed over batches: where
/// an audit's time goes (`gpubound bench` reports it).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct PhaseSeconds {
    /// harm tables and log-likelihoods (`prepare`, `log_likelihoods`); for
    /// a posterior kept on the device, everything up to relative weights
    pub likelihoods: f64,
    /// the host's prefix sums, relative weights and plausible-set cuts; for
    /// a posterior kept on the device, the plausible-set cuts
    pub posterior: f64,
    /// the reductions over hypotheses
    pub reduce: f64,
    /// the estimators per candidate, and the sink; the estimators of a batch
    /// run while the engine works on the next one, so the phases can add up
    /// to more than the wall time
    pub estimators: f64,
    /// preparing a batch; where the backend keeps the posterior on the
    /// device (the GPU), also the carry's trip between host and device
    pub setup: f64,
}

impl PhaseSeconds {
    /// Every phase times `f` (an average over runs, say).
    pub fn scaled(self, f: f64) -> Self {
        PhaseSeconds {
            likelihoods: self.likelihoods * f,
            posterior: self.posterior * f,
            reduce: self.reduce * f,
            estimators: self.estimators * f,
            setup: self.setup * f,
        }
    }
}

impl std::ops::AddAssign for PhaseSeconds {
    fn add_assign(&mut self, o: Self) {
        self.likelihoods += o.likelihoods;
        self.posterior += o.posterior;
        self.reduce += o.reduce;
        self.estimators += o.estimators;
        self.setup += o.setup;
    }
}

/// One logged step as the engine sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchStep {
    /// Index into `Batch::tables`.
    pub table: u32,
    /// The action taken, an index into the table's candidates.
    pub action: u32,
    /// The observed outcome; `None`: no posterior update.
    pub outcome: Option<f64>,
}

/// What crosses the engine boundary: consecutive steps (of one or more
/// streams) and the candidate tables they use.
#[derive(Debug, Clone)]
pub struct Batch<'m> {
    pub model: &'m Model,
    /// Shared with the log's steps: a batch of short streams has thousands.
    pub tables: Vec<std::sync::Arc<CandidateTable>>,
    pub steps: Vec<BatchStep>,
    /// `candidate_offsets[t]` is where step `t`'s candidates start in the
    /// flat per-candidate outputs; one more entry than `steps`.
    pub candidate_offsets: Vec<usize>,
}

impl<'m> Batch<'m> {
    pub fn new(model: &'m Model) -> Self {
        Batch {
            model,
            tables: Vec::new(),
            steps: Vec::new(),
            candidate_offsets: vec![0],
        }
    }

    pub fn push_table(&mut self, table: impl Into<std::sync::Arc<CandidateTable>>) -> u32 {
        self.tables.push(table.into());
        (self.tables.len() - 1) as u32
    }

    pub fn push_step(&mut self, step: BatchStep) {
        let a = self.tables[step.table as usize].n_candidates;
        let last = *self.candidate_offsets.last().unwrap();
        self.candidate_offsets.push(last + a);
        self.steps.push(step);
    }

    pub fn n_candidates_total(&self) -> usize {
        *self.candidate_offsets.last().unwrap()
    }

    /// `H × Σ_t A_t`: the unit of work.
    pub fn triples(&self) -> u64 {
        self.model.hypotheses.len() as u64 * self.n_candidates_total() as u64
    }
}

/// Reductions over hypotheses, per step and per (step, candidate); flat in
/// the batch's candidate order. Weights are relative (`e^ℓ`); the estimators
/// divide by `weight_sum`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reductions {
    pub n_alpha: usize,
    /// per step: `Z = Σ_h e^{ℓ_h}`
    pub weight_sum: Vec<f64>,
    /// per step: `Σ_h e^{ℓ_h}·ℓ_h` (gives the posterior entropy)
    pub weighted_log_rel: Vec<f64>,
    /// per candidate: `Σ_h e^{ℓ_h}·q_h`
    pub weighted_harm: Vec<f64>,
    /// per candidate: `ĥ = argmax_h ℓ_h + ln q_h`, ties → larger `q`
    pub cautious_hypothesis: Vec<u32>,
    /// per candidate: `q_ĥ`
    pub cautious_harm: Vec<f64>,
    /// per candidate: `ℓ_ĥ + ln q_ĥ` (−∞ when every `q` is 0)
    pub cautious_log_score: Vec<f64>,
    /// per candidate × α: `max_{h ∈ I_α} q_h`
    pub plausible_harm: Vec<f64>,
}

impl Reductions {
    pub fn with_capacity(steps: usize, candidates: usize, n_alpha: usize) -> Self {
        Reductions {
            n_alpha,
            weight_sum: Vec::with_capacity(steps),
            weighted_log_rel: Vec::with_capacity(steps),
            weighted_harm: Vec::with_capacity(candidates),
            cautious_hypothesis: Vec::with_capacity(candidates),
            cautious_harm: Vec::with_capacity(candidates),
            cautious_log_score: Vec::with_capacity(candidates),
            plausible_harm: Vec::with_capacity(candidates * n_alpha),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Cpu,
    Gpu,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Cpu => "cpu",
            Backend::Gpu => "gpu",
        })
    }
}

/// Which backend computed a result, for the report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BackendInfo {
    pub kind: Backend,
    /// e.g. "2 threads" or the adapter name
    pub device: String,
    /// e.g. "Vulkan" (GPU only)
    pub api: String,
    pub driver: String,
}

impl std::fmt::Display for BackendInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}", self.kind, self.device)?;
        if !self.api.is_empty() {
            write!(f, ", {}", self.api)?;
        }
        if !self.driver.is_empty() {
            write!(f, ", driver {}", self.driver)?;
        }
        write!(f, ")")
    }
}

pub trait Engine: Send + Sync {
    fn info(&self) -> &BackendInfo;
    /// The batch size, in (step, hypothesis) pairs, this backend works best
    /// with: large enough to hide its per-batch costs, small enough to keep
    /// the host's memory bounded.
    fn preferred_batch_elements(&self) -> usize {
        DEFAULT_BATCH_ELEMENTS
    }
    /// Builds what the batch's kernels need (harm tables, buffers).
    fn prepare<'a>(&'a self, batch: &'a Batch<'a>) -> Result<Box<dyn PreparedBatch + 'a>>;
    /// Device seconds per kernel since the last call, for a backend built
    /// to time them (`GpuEngine::timed`); `None` otherwise.
    fn take_kernel_times(&self) -> Option<Vec<KernelTime>> {
        None
    }
}

/// One kernel's share of the device's time.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct KernelTime {
    /// the pipeline's name, e.g. `posterior prefix`
    pub kernel: String,
    pub seconds: f64,
    pub dispatches: u64,
}

/// The host's side of a posterior kept on the device.
pub struct PosteriorCarry<'a> {
    pub prior: &'a [f64],
    /// `L` after the step before the batch; on return, after its last step.
    pub carry: &'a mut [f64],
    /// per step: the posterior restarts from the prior (a stream starts)
    pub restart: &'a [bool],
    /// The audit, unique in the process, and the number of batches it ran
    /// before this one: a backend may keep its own copies of `prior` and
    /// `carry` between batches and skip sending them while these say they
    /// are still the host's.
    pub audit: u64,
    pub batch: u64,
}

/// A batch's reductions, and per step the plausible-set cuts and the MAP:
/// everything the estimators need.
#[derive(Debug, Clone)]
pub struct ReducedBatch {
    pub reductions: Reductions,
    pub cuts: Vec<Vec<crate::posterior::PlausibleCut>>,
    pub maps: Vec<usize>,
}

/// What `weigh_and_reduce` returns: the batch's reductions, the seconds of
/// it spent on weights and cuts where that part ran on its own (0 where it
/// was fused with the reductions), and buffers to recycle.
pub struct WeighedBatch {
    pub reduced: ReducedBatch,
    pub posterior_seconds: f64,
    pub spare: (Vec<f64>, Vec<f64>),
}

/// What a backend that keeps the posterior on the device returns for a
/// batch.
#[derive(Debug, Clone)]
pub struct DevicePosterior {
    pub reduced: ReducedBatch,
    /// where the time went: `likelihoods` is the device's pass from
    /// log-likelihoods to relative weights (one submission), `posterior` the
    /// plausible-set candidates and the host's cuts, `reduce` the reductions
    pub phases: PhaseSeconds,
    /// per step: `max_h L_t(h)` before the step (−∞ or NaN where none is
    /// above `posterior::LOG_ZERO`), for the audit's check for outcomes no
    /// hypothesis can explain
    pub log_max: Vec<f64>,
}

pub trait PreparedBatch {
    /// `steps × H`: `ln p(y_t | x_{t,a_t}, w_h)`, a row of zeros for a step
    /// without an outcome.
    fn log_likelihoods(&mut self) -> Result<Array2<f64>>;
    /// The same, written into a recycled buffer when the backend can (the
    /// host hands back the arrays of the previous batch, so a long audit
    /// does not keep faulting in fresh pages).
    fn log_likelihoods_into(&mut self, buffer: Vec<f64>) -> Result<Array2<f64>> {
        drop(buffer);
        self.log_likelihoods()
    }
    /// The reductions over hypotheses for every (step, candidate).
    fn reduce(&mut self, weights: &StepWeights, n_alpha: usize) -> Result<Reductions>;
    /// From `rows`, the log posterior before each step (`steps × H`, from
    /// the host's prefix sums): relative weights, plausible-set cuts and the
    /// reductions. The default weighs the whole batch on the host
    /// (`posterior::step_weights`) and calls `reduce`; the CPU engine fuses
    /// the two one step at a time, so a step's row stays in cache.
    /// `spare` is a recycled `steps × H` buffer.
    fn weigh_and_reduce(
        &mut self,
        rows: Array2<f64>,
        alphas: &[f64],
        spare: Vec<f64>,
    ) -> Result<WeighedBatch> {
        let started = std::time::Instant::now();
        let (weights, cuts, maps) = crate::posterior::step_weights_into(rows, alphas, spare);
        let posterior_seconds = started.elapsed().as_secs_f64();
        let reductions = self.reduce(&weights, alphas.len())?;
        Ok(WeighedBatch {
            reduced: ReducedBatch {
                reductions,
                cuts,
                maps,
            },
            posterior_seconds,
            spare: (
                weights.log_rel.into_raw_vec_and_offset().0,
                weights.weight.into_raw_vec_and_offset().0,
            ),
        })
    }
    /// The posterior and the reductions together, for a backend that keeps
    /// the posterior where it computed the log-likelihoods (the GPU: then
    /// nothing of size steps × H crosses to the host). `None`: the host
    /// computes the posterior from `log_likelihoods` and calls `reduce`.
    fn posterior_and_reduce(
        &mut self,
        _carry: PosteriorCarry<'_>,
        _alphas: &[f64],
    ) -> Result<Option<DevicePosterior>> {
        Ok(None)
    }
}

/// Which backend the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendChoice {
    /// A hardware GPU adapter when there is one, the CPU otherwise
    /// (software renderers such as lavapipe are slower than the CPU engine).
    Auto,
    /// Any wgpu adapter, software renderers included; `WGPU_BACKEND`
    /// (vulkan, gl, metal, dx12) restricts the APIs searched.
    Gpu,
    Cpu,
}

/// Builds the engine the user asked for.
///
/// * `Cpu`: the CPU engine.
/// * `Gpu`: the best wgpu adapter found (`WGPU_BACKEND` restricts the APIs
///   searched, e.g. `WGPU_BACKEND=gl`), software renderers such as lavapipe
///   and llvmpipe included; an error naming why when there is none.
/// * `Auto`: a *hardware* GPU adapter when there is one, the CPU engine
///   otherwise. Software adapters (`DeviceType::Cpu`: lavapipe, llvmpipe) are
///   skipped because they are slower than the CPU engine on the same cores;
///   `--backend gpu` still uses them.
pub fn select(choice: BackendChoice) -> Result<Box<dyn Engine>> {
    match choice {
        BackendChoice::Cpu => Ok(Box::new(cpu::CpuEngine::new())),
        BackendChoice::Gpu => Ok(Box::new(gpu::GpuEngine::new()?)),
        BackendChoice::Auto => match gpu::GpuEngine::hardware() {
            Ok(g) => Ok(Box::new(g)),
            Err(_) => Ok(Box::new(cpu::CpuEngine::new())),
        },
    }
}
