//! Dispatch of `shaders/posterior.wgsl`: the posterior of each step on the
//! device. CPU twins in `crate::posterior`: `prefix` ↔ `accumulate`,
//! `step_max` and `relative` ↔ `to_relative`, and `relative` hands
//! `plausible_cuts` the only hypotheses it looks at.

use bytemuck::{Pod, Zeroable};
use rayon::prelude::*;

use super::device::{join_log, split_log, Gpu};
use super::reduce::RUN;
use super::{compose, BlockSums, KernelShape, COMMON};
use std::time::Instant;

use crate::audit::PhaseSeconds;
use crate::engine::{DevicePosterior, PosteriorCarry, ReducedBatch};
use crate::posterior::{exp_all, plausible_cuts, plausible_floor, CutScratch, PlausibleCut};
use crate::Result;

const SOURCE: &str = include_str!("../../../shaders/posterior.wgsl");
pub const WORKGROUP: u64 = 256;
/// At most this many plausible-set candidates (16 bytes each) are read
/// before their number is known.
const SPECULATIVE_CANDIDATES: usize = 1 << 18;
/// Threads per step in `step_max`: enough to keep a GPU busy when a batch
/// has few steps of many hypotheses, few where there are few hypotheses
/// (`merge_max` merges them).
pub fn lanes(h: usize) -> usize {
    (h / 256).clamp(64, 4096)
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct PosteriorUniform {
    pub h_count: u32,
    pub n_steps: u32,
    /// `relative` keeps the hypotheses whose `ℓ` (hi part) is at least this
    pub cut: f32,
    /// and at most this many of them
    pub capacity: u32,
    /// 0 (the `opaque` zero of `common.wgsl`)
    pub zero: u32,
    /// threads per step in `step_max` (`lanes`)
    pub lanes: u32,
    pub _pad: [u32; 2],
}

/// The entry points' pipelines, `merge_max` and `relative` in the engine's
/// shape.
pub struct PosteriorKernels {
    shape: KernelShape,
    prefix: wgpu::ComputePipeline,
    step_max: wgpu::ComputePipeline,
    merge_max: wgpu::ComputePipeline,
    relative: wgpu::ComputePipeline,
}

pub struct PrefixBuffers<'a> {
    pub post: &'a wgpu::Buffer,
    pub carry: &'a wgpu::Buffer,
    pub prior: &'a wgpu::Buffer,
    pub restart: &'a wgpu::Buffer,
}

pub struct RelativeBuffers<'a> {
    pub post: &'a wgpu::Buffer,
    pub step_best: &'a wgpu::Buffer,
    pub found: &'a wgpu::Buffer,
    pub candidates: &'a wgpu::Buffer,
    pub run_max: &'a wgpu::Buffer,
}

impl PosteriorKernels {
    pub fn new(gpu: &Gpu, shape: KernelShape) -> Result<Self> {
        let module = gpu.shader("posterior.wgsl", compose(&[COMMON, SOURCE]))?;
        let shaped = |name: &str| match shape {
            KernelShape::Parallel => name.to_string(),
            KernelShape::Serial => format!("{name}_serial"),
        };
        let entry = |name: &str| {
            let e = shaped(name);
            gpu.pipeline_entry(&format!("posterior {e}"), &module, &e)
        };
        Ok(PosteriorKernels {
            shape,
            prefix: gpu.pipeline_entry("posterior prefix", &module, "prefix")?,
            step_max: gpu.pipeline_entry("posterior step_max", &module, "step_max")?,
            merge_max: entry("merge_max")?,
            relative: entry("relative")?,
        })
    }

    /// `L` before each step of the chunk into `post` (which holds the
    /// log-likelihoods), continuing from `carry`, which ends at the state
    /// after the last step.
    pub fn record_prefix(
        &self,
        gpu: &Gpu,
        encoder: &mut wgpu::CommandEncoder,
        u: &PosteriorUniform,
        b: PrefixBuffers<'_>,
    ) -> Result<()> {
        let uniform = gpu.uniform(u);
        let group = gpu.bind_group_at(
            &self.prefix,
            &[
                (0, &uniform),
                (1, b.post),
                (2, b.carry),
                (3, b.prior),
                (4, b.restart),
            ],
        );
        gpu.dispatch_linear(encoder, &self.prefix, &group, u.h_count as u64, WORKGROUP)
    }

    /// Per step: the largest `L` and the first hypothesis holding it, into
    /// `step_best`, by way of per-lane maxima in `lane_max`.
    pub fn record_step_max(
        &self,
        gpu: &Gpu,
        encoder: &mut wgpu::CommandEncoder,
        u: &PosteriorUniform,
        post: &wgpu::Buffer,
        lane_max: &wgpu::Buffer,
        step_best: &wgpu::Buffer,
    ) -> Result<()> {
        let uniform = gpu.uniform(u);
        let group = gpu.bind_group_at(&self.step_max, &[(0, &uniform), (1, post), (5, lane_max)]);
        gpu.dispatch_linear(
            encoder,
            &self.step_max,
            &group,
            u.n_steps as u64 * u.lanes as u64,
            WORKGROUP,
        )?;
        let group = gpu.bind_group_at(
            &self.merge_max,
            &[(0, &uniform), (5, lane_max), (6, step_best)],
        );
        let threads = match self.shape {
            KernelShape::Parallel => u.n_steps as u64 * WORKGROUP, // a workgroup per step
            KernelShape::Serial => u.n_steps as u64,
        };
        gpu.dispatch_linear(encoder, &self.merge_max, &group, threads, WORKGROUP)
    }

    /// `ℓ = L − max` in place, each run's largest `ℓ`, and the plausible-set
    /// candidates.
    pub fn record_relative(
        &self,
        gpu: &Gpu,
        encoder: &mut wgpu::CommandEncoder,
        u: &PosteriorUniform,
        b: RelativeBuffers<'_>,
    ) -> Result<()> {
        let uniform = gpu.uniform(u);
        let group = gpu.bind_group_at(
            &self.relative,
            &[
                (0, &uniform),
                (1, b.post),
                (6, b.step_best),
                (7, b.found),
                (8, b.candidates),
                (9, b.run_max),
            ],
        );
        let runs = u.n_steps as u64 * (u.h_count as u64).div_ceil(RUN as u64);
        let threads = match self.shape {
            // a thread per hypothesis, steps padded to whole runs
            KernelShape::Parallel => runs * RUN as u64,
            KernelShape::Serial => runs,
        };
        gpu.dispatch_linear(encoder, &self.relative, &group, threads, WORKGROUP)
    }
}

impl super::GpuBatch<'_> {
    /// The device-posterior path of `PreparedBatch::posterior_and_reduce`:
    /// per step chunk, log-likelihoods → `prefix` → `step_max` and
    /// `merge_max` → `relative` (the host computes the plausible-set cuts
    /// from the candidates it collects) → `reduce` and its merge. What
    /// crosses to the host is per step or per (step, candidate), plus the
    /// candidates of the plausible sets, and the carry at the end of the
    /// batch: two round trips per chunk.
    pub(super) fn device_posterior(
        &mut self,
        pc: PosteriorCarry<'_>,
        alphas: &[f64],
    ) -> Result<DevicePosterior> {
        let batch = self.batch;
        let engine = self.engine;
        let gpu = &engine.gpu;
        let h = self.h;
        let n_steps = batch.steps.len();
        let n_alpha = alphas.len();
        let mut acc = BlockSums::new(batch, n_alpha);
        let none = PlausibleCut {
            threshold: 0.0,
            size: 0,
        };
        let mut cuts = vec![vec![none; n_alpha]; n_steps];
        let mut maps = vec![0usize; n_steps];
        // a little below `plausible_cuts`' own floor, in f32: a superset of
        // the hypotheses it looks at
        let floor = plausible_floor(alphas);
        let cut = (floor - 1e-5 * floor.abs() - 1e-6) as f32;

        let mut phases = PhaseSeconds::default();
        let mut clock = Instant::now();
        let mut lap = || {
            let s = clock.elapsed().as_secs_f64();
            clock = Instant::now();
            s
        };
        let mut state = engine.lock()?;
        let prior: Vec<[f32; 2]> = pc.prior.par_iter().map(|&v| split_log(v)).collect();
        let carry: Vec<[f32; 2]> = pc.carry.par_iter().map(|&v| split_log(v)).collect();
        state.pool.upload(gpu, "prior", &prior);
        state.pool.upload(gpu, "carry", &carry);
        let carry_bytes = (h * 8) as u64;
        let mut carry_raw = None;
        for chunk in self.step_chunks(h, self.record_bytes(h, n_alpha)) {
            let (t0, t1) = (chunk.t0, chunk.t1);
            let ts = t1 - t0;
            let offsets = self.tables_for(&mut state, 0, h, &chunk)?;
            let params_h0 = self.upload_inputs(&mut state, 0, h)?;
            let restart: Vec<u32> = pc.restart[t0..t1].iter().map(|&r| r as u32).collect();
            state.pool.upload(gpu, "restart", &restart);
            let post_bytes = (ts * h * 8) as u64;
            let lanes = lanes(h);
            let lane_bytes = (ts * lanes * 16) as u64;
            state.pool.get(gpu, "post", post_bytes);
            state.pool.get(gpu, "lane_max", lane_bytes);
            let all = ts * h;
            let capacity = all
                .min(gpu.max_binding() as usize / 16)
                .min((all / 4).max(1 << 16));
            state.pool.get(gpu, "candidates", (capacity * 16) as u64);
            state.pool.upload(gpu, "found", &[0u32; 4]);
            state.pool.get(gpu, "step_best", (ts * 16) as u64);
            state
                .pool
                .get(gpu, "run_max", (ts * h.div_ceil(RUN) * 4) as u64);
            let u = PosteriorUniform {
                h_count: h as u32,
                n_steps: ts as u32,
                cut,
                capacity: capacity as u32,
                zero: 0,
                lanes: lanes as u32,
                _pad: [0; 2],
            };

            // L before each step, and each lane's maximum
            let mut enc = gpu.encoder();
            self.record_loglik(
                &mut state, &mut enc, 0, h, &chunk, &offsets, params_h0, "post",
            )?;
            let p = &state.pool;
            let post = p.buffer("post").unwrap();
            engine.posterior.record_prefix(
                gpu,
                &mut enc,
                &u,
                PrefixBuffers {
                    post,
                    carry: p.buffer("carry").unwrap(),
                    prior: p.buffer("prior").unwrap(),
                    restart: p.buffer("restart").unwrap(),
                },
            )?;
            engine.posterior.record_step_max(
                gpu,
                &mut enc,
                &u,
                post,
                p.buffer("lane_max").unwrap(),
                p.buffer("step_best").unwrap(),
            )?;

            // ℓ = L − max, and the hypotheses that may be in a plausible set
            engine.posterior.record_relative(
                gpu,
                &mut enc,
                &u,
                RelativeBuffers {
                    post,
                    step_best: p.buffer("step_best").unwrap(),
                    found: p.buffer("found").unwrap(),
                    candidates: p.buffer("candidates").unwrap(),
                    run_max: p.buffer("run_max").unwrap(),
                },
            )?;
            // the first candidates come back with the maxima, before their
            // number is known: usually all of them, without a second trip
            // (none after a batch with many: a large read costs more than a trip)
            let guess = state.candidate_guess.min(capacity);
            let mut reads = vec![
                (p.buffer("step_best").unwrap(), (ts * 16) as u64),
                (p.buffer("found").unwrap(), 4),
            ];
            if guess > 0 {
                reads.push((p.buffer("candidates").unwrap(), (guess * 16) as u64));
            }
            let mut raw = gpu.submit_and_read_many(enc, &reads, "the posterior")?;
            // one submit: log-likelihoods, prefix sums, maxima, relative weights
            phases.likelihoods += lap();
            let raw_guessed = if guess > 0 {
                raw.pop().expect("the guessed candidates")
            } else {
                Vec::new()
            };
            let raw_found = raw.pop().expect("two buffers read");
            let raw_best = raw.pop().expect("two buffers read");
            let best: &[[u32; 4]] = bytemuck::cast_slice(&raw_best[..ts * 16]);
            for (map, b) in maps[t0..t1].iter_mut().zip(best) {
                *map = b[2] as usize;
            }
            let raw = raw_found;
            let found = u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]) as usize;
            let df = |v: [f32; 2]| v[0] as f64 + v[1] as f64;
            // a small read ahead only: a large one costs more than a trip
            let next_guess = if found > SPECULATIVE_CANDIDATES {
                0
            } else {
                found
                    .saturating_mul(2)
                    .clamp(1 << 12, SPECULATIVE_CANDIDATES)
            };
            // per step, the cuts from the hypotheses that can be in a set,
            // in hypothesis order (the order the host path adds them in)
            let step_cuts: Vec<Vec<PlausibleCut>> = if found <= capacity {
                let bytes = (found * 16) as u64;
                let raw = if found <= guess {
                    raw_guessed
                } else {
                    gpu.submit_and_read(
                        gpu.encoder(),
                        p.buffer("candidates").unwrap(),
                        bytes,
                        "the plausible sets",
                    )?
                };
                let entries: &[[u32; 4]] = bytemuck::cast_slice(&raw[..bytes as usize]);
                let mut per_step: Vec<Vec<(u32, f64)>> = vec![Vec::new(); ts];
                for e in entries {
                    let l = df([f32::from_bits(e[2]), f32::from_bits(e[3])]);
                    per_step[e[0] as usize].push((e[1], l));
                }
                per_step
                    .into_par_iter()
                    .map_init(StepCuts::default, |s, mut c| {
                        in_hypothesis_order(&mut c, &mut s.dense, h);
                        s.cuts(c.iter().map(|e| e.1), alphas)
                    })
                    .collect()
            } else {
                // too many to collect one by one: the whole rows, used where
                // they were mapped (half a gigabyte per batch at H = 59049)
                gpu.submit_and_view(
                    gpu.encoder(),
                    &[(post, post_bytes)],
                    "the plausible sets",
                    |views| {
                        let rows: &[[f32; 2]] = bytemuck::cast_slice(views[0]);
                        rows.par_chunks(h)
                            .map_init(StepCuts::default, |s, row| {
                                let ls = row.iter().filter(|l| l[0] >= cut).map(|l| df(*l));
                                s.cuts(ls, alphas)
                            })
                            .collect()
                    },
                )?
            };
            let mut thresholds = ndarray::Array2::zeros((ts, n_alpha));
            for (i, c) in step_cuts.into_iter().enumerate() {
                for (k, cut) in c.iter().enumerate() {
                    thresholds[[i, k]] = cut.threshold;
                }
                cuts[t0 + i] = c;
            }
            let thr = self.threshold_rows(t0, &thresholds, &maps[t0..t1]);
            state.candidate_guess = next_guess;
            state.pool.upload(gpu, "thresholds", &thr);
            phases.posterior += lap();
            // the carry after the batch comes back with the last reductions
            let last = chunk.t1 == n_steps;
            carry_raw = self.reduce_chunk(
                &mut state,
                "post",
                0,
                h,
                &chunk,
                &offsets,
                &mut acc,
                last.then_some(("carry", carry_bytes)),
            )?;
            phases.reduce += lap();
        }

        let raw = carry_raw.expect("the last chunk read the carry");
        let carried: &[[f32; 2]] = bytemuck::cast_slice(&raw[..carry_bytes as usize]);
        pc.carry
            .par_iter_mut()
            .zip(carried.par_iter())
            .for_each(|(c, &v)| *c = join_log(v));
        drop(state);
        let reductions = acc.finish(batch, &maps);
        phases.posterior += lap();
        Ok(DevicePosterior {
            reduced: ReducedBatch {
                reductions,
                cuts,
                maps,
            },
            phases,
        })
    }
}

/// Puts one step's plausible-set candidates `(hypothesis, ℓ)` in hypothesis
/// order, the order the host path hands `plausible_cuts` (so both add the
/// same masses in the same order). Many candidates are scattered into a
/// dense row of `h` and gathered back, which costs less than sorting them.
fn in_hypothesis_order(c: &mut Vec<(u32, f64)>, dense: &mut Vec<f64>, h: usize) {
    if c.len() * 16 <= h {
        c.sort_unstable_by_key(|e| e.0);
        return;
    }
    // ℓ ≥ the cut is finite: NaN marks the hypotheses that are not candidates
    dense.clear();
    dense.resize(h, f64::NAN);
    for &(i, l) in c.iter() {
        dense[i as usize] = l;
    }
    c.clear();
    c.extend(
        (0u32..)
            .zip(dense.iter())
            .filter(|(_, l)| !l.is_nan())
            .map(|(i, &l)| (i, l)),
    );
}

/// One thread's buffers for the host's plausible-set cuts.
#[derive(Default)]
struct StepCuts {
    scratch: CutScratch,
    log_rel: Vec<f64>,
    weight: Vec<f64>,
    dense: Vec<f64>,
}

impl StepCuts {
    /// `plausible_cuts` of a step's candidates (their `ℓ`, in hypothesis
    /// order).
    fn cuts(&mut self, log_rel: impl Iterator<Item = f64>, alphas: &[f64]) -> Vec<PlausibleCut> {
        self.log_rel.clear();
        self.log_rel.extend(log_rel);
        exp_all(&self.log_rel, &mut self.weight);
        let mut out = vec![
            PlausibleCut {
                threshold: 0.0,
                size: 0
            };
            alphas.len()
        ];
        plausible_cuts(
            &self.log_rel,
            &self.weight,
            alphas,
            &mut self.scratch,
            &mut out,
        );
        out
    }
}
