//! Dispatch of `shaders/posterior.wgsl`: the posterior of each step on the
//! device. CPU twins in `crate::posterior`: `prefix` ↔ `accumulate`,
//! `step_max` and `relative` ↔ `to_relative`, and `relative` hands
//! `plausible_cuts` the only hypotheses it looks at.

use bytemuck::{Pod, Zeroable};
use rayon::prelude::*;

use std::collections::HashMap;
use std::time::Instant;

use super::device::{join_log, split, split_log, Gpu, Readback};
use super::reduce::RUN;
use super::{compose, BlockSums, KernelShape, LogWeights, State, StepChunk, COMMON};

use crate::engine::{DevicePosterior, PhaseSeconds, PosteriorCarry, ReducedBatch};
use crate::posterior::{exp_all, plausible_cuts, plausible_floor, CutScratch, PlausibleCut};
use crate::{Error, Result};

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

/// The pool buffers of a chunk's posterior. Two chunks are in flight at a
/// time (one's weights on the device while the host cuts the other's
/// plausible sets and its reduce is queued), each in its own set.
struct Slot {
    post: &'static str,
    lane_max: &'static str,
    step_best: &'static str,
    found: &'static str,
    candidates: &'static str,
    run_max: &'static str,
}

const SLOTS: [Slot; 2] = [
    Slot {
        post: "post 0",
        lane_max: "lane_max 0",
        step_best: "step_best 0",
        found: "found 0",
        candidates: "candidates 0",
        run_max: "run_max 0",
    },
    Slot {
        post: "post 1",
        lane_max: "lane_max 1",
        step_best: "step_best 1",
        found: "found 1",
        candidates: "candidates 1",
        run_max: "run_max 1",
    },
];

/// A chunk whose posterior weights are being computed on the device.
struct Weighing<'g> {
    slot: &'static Slot,
    /// its harm tables' row offsets
    offsets: HashMap<u32, u32>,
    /// room for plausible-set candidates
    capacity: usize,
    /// candidates read with the maxima
    guess: usize,
    /// per step the maximum, the number of candidates, and the guessed ones
    read: Readback<'g>,
}

/// One step's plausible-set cuts (per α), each cut's threshold as the
/// kernels compare it (`member_floors`), its MAP hypothesis and `max L`.
struct StepCut {
    cuts: Vec<PlausibleCut>,
    floors: Vec<[f32; 2]>,
    map: usize,
    log_max: f64,
}

impl<'a> super::GpuBatch<'a> {
    /// The device-posterior path of `PreparedBatch::posterior_and_reduce`:
    /// per step chunk, log-likelihoods → `prefix` → `step_max` and
    /// `merge_max` → `relative` (the host computes the plausible-set cuts
    /// from the candidates it collects) → `reduce` and its merge. What
    /// crosses to the host is per step or per (step, candidate), plus the
    /// candidates of the plausible sets, and the carry at the end of the
    /// batch: two round trips per chunk. On a GPU the batch is cut into
    /// several chunks and the next chunk's weights are queued before this
    /// one's are read, so the device works while the host cuts.
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
        let mut log_max = vec![f64::NEG_INFINITY; n_steps];
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
        // the device keeps the audit's prior, and the carry from its last
        // batch, unless another audit has used the engine since
        if state.prior_of != Some(pc.audit) {
            let prior: Vec<[f32; 2]> = pc.prior.par_iter().map(|&v| split_log(v)).collect();
            state.pool.upload(gpu, "prior", &prior);
            state.prior_of = Some(pc.audit);
        }
        if state.carry_before != Some((pc.audit, pc.batch)) {
            let carry: Vec<[f32; 2]> = pc.carry.par_iter().map(|&v| split_log(v)).collect();
            state.pool.upload(gpu, "carry", &carry);
        }
        // until this batch has run through
        state.carry_before = None;
        let carry_bytes = (h * 8) as u64;
        let chunks = self.pipeline_chunks(self.step_chunks(h, self.record_bytes(h, n_alpha)));
        let mut ahead = Some(self.submit_weights(&mut state, &chunks[0], 0, pc.restart, cut)?);
        // the chunk whose reductions are on their way back
        let mut reducing: Option<(usize, Readback<'a>)> = None;
        for (i, chunk) in chunks.iter().enumerate() {
            let (t0, t1) = (chunk.t0, chunk.t1);
            let ts = t1 - t0;
            let w = ahead
                .take()
                .expect("a chunk's weights are queued before its turn");
            let next = chunks.get(i + 1);
            // the next chunk's weights, unless its harm tables would
            // overwrite rows this chunk's reduce has yet to read
            if let Some(next) = next.filter(|c| self.tables_ready(&state, 0, h, c)) {
                ahead =
                    Some(self.submit_weights(&mut state, next, (i + 1) % 2, pc.restart, cut)?);
            }
            let Weighing {
                slot,
                offsets,
                capacity,
                guess,
                read,
            } = w;
            let raw = read.read()?;
            // log-likelihoods, prefix sums, maxima, relative weights
            phases.likelihoods += lap();
            let step_cuts =
                self.chunk_cuts(&mut state, slot, raw, capacity, guess, chunk, alphas, cut)?;
            let mut thresholds = ndarray::Array2::zeros((ts, n_alpha));
            let mut floors = Vec::with_capacity(ts * n_alpha);
            for (i, c) in step_cuts.into_iter().enumerate() {
                for (k, cut) in c.cuts.iter().enumerate() {
                    thresholds[[i, k]] = cut.threshold;
                }
                floors.extend_from_slice(&c.floors);
                maps[t0 + i] = c.map;
                log_max[t0 + i] = c.log_max;
                cuts[t0 + i] = c.cuts;
            }
            let thr = self.threshold_rows(t0, &thresholds, &floors, &maps[t0..t1]);
            state.pool.upload(gpu, "thresholds", &thr);
            phases.posterior += lap();
            // the previous chunk's reductions, queued before this chunk's
            // weights were waited for, are back by now
            if let Some((j, read)) = reducing.take() {
                self.add_reductions(read, &chunks[j], &mut acc, |_| ())?;
            }
            // the carry after the batch comes back with the last reductions
            let last = t1 == n_steps;
            let log_rel = LogWeights {
                weights: slot.post,
                run_max: slot.run_max,
            };
            let read = self.submit_reduce(
                &mut state,
                log_rel,
                0,
                h,
                chunk,
                &offsets,
                n_alpha,
                last.then_some(("carry", carry_bytes)),
            )?;
            reducing = Some((i, read));
            if let Some(next) = next.filter(|_| ahead.is_none()) {
                ahead =
                    Some(self.submit_weights(&mut state, next, (i + 1) % 2, pc.restart, cut)?);
            }
            phases.reduce += lap();
        }

        let (j, read) = reducing.expect("a batch has a chunk");
        let mut carried = false;
        self.add_reductions(read, &chunks[j], &mut acc, |raw| {
            let raw: &[[f32; 2]] = bytemuck::cast_slice(&raw[..carry_bytes as usize]);
            pc.carry
                .par_iter_mut()
                .zip(raw.par_iter())
                .for_each(|(c, &v)| *c = join_log(v));
            carried = true;
        })?;
        if !carried {
            return Err(Error::Gpu(
                "the carry did not come back with the last chunk".into(),
            ));
        }
        state.carry_before = Some((pc.audit, pc.batch + 1));
        phases.reduce += lap();
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
            log_max,
        })
    }

    /// Splits step chunks into parts of about the engine's `chunk_pairs`
    /// (step, hypothesis) pairs.
    fn pipeline_chunks(&self, chunks: Vec<StepChunk>) -> Vec<StepChunk> {
        let per = (self.engine.chunk_pairs / self.h).max(1);
        let mut out = Vec::with_capacity(chunks.len());
        for c in chunks {
            let ts = c.t1 - c.t0;
            let size = ts.div_ceil(ts.div_ceil(per));
            for t0 in (c.t0..c.t1).step_by(size) {
                out.push(StepChunk {
                    t0,
                    t1: (t0 + size).min(c.t1),
                    tables: c.tables.clone(),
                });
            }
        }
        out
    }

    /// A chunk's plausible-set cuts and MAP per step, from what its weights'
    /// readback brought (`raw`: the maxima, the number of candidates and
    /// the first `guess` of them), fetching the rest of the candidates, or
    /// where there are more than `capacity`, the whole rows.
    #[allow(clippy::too_many_arguments)]
    fn chunk_cuts(
        &self,
        state: &mut State,
        slot: &Slot,
        mut raw: Vec<Vec<u8>>,
        capacity: usize,
        guess: usize,
        chunk: &StepChunk,
        alphas: &[f64],
        cut: f32,
    ) -> Result<Vec<StepCut>> {
        let gpu = &self.engine.gpu;
        let h = self.h;
        let ts = chunk.t1 - chunk.t0;
        let raw_guessed = if guess > 0 {
            raw.pop().expect("the guessed candidates")
        } else {
            Vec::new()
        };
        let raw_found = raw.pop().expect("two buffers read");
        let raw_best = raw.pop().expect("two buffers read");
        let best: &[[u32; 4]] = bytemuck::cast_slice(&raw_best[..ts * 16]);
        let found =
            u32::from_le_bytes([raw_found[0], raw_found[1], raw_found[2], raw_found[3]]) as usize;
        let p = &state.pool;
        // per step, the cuts from the hypotheses that can be in a set, in
        // hypothesis order (the order the host path adds them in)
        let cuts: Vec<(Vec<PlausibleCut>, Vec<[f32; 2]>)> = if found <= capacity {
            let bytes = (found * 16) as u64;
            let raw = if found <= guess {
                raw_guessed
            } else {
                gpu.submit_and_read(
                    gpu.encoder(),
                    p.buffer(slot.candidates).unwrap(),
                    bytes,
                    "the plausible sets",
                )?
            };
            let entries: &[[u32; 4]] = bytemuck::cast_slice(&raw[..bytes as usize]);
            let parts = by_step(entries, ts);
            (0..ts)
                .into_par_iter()
                .map_init(StepCuts::default, |s, t| {
                    let mut c = std::mem::take(&mut s.step);
                    c.clear();
                    c.extend(parts.iter().flat_map(|p| p[t].iter().copied()));
                    in_hypothesis_order(&mut c, &mut s.dense, h);
                    let cuts = s.cuts(c.iter().map(|e| e.1), alphas);
                    s.step = c;
                    cuts
                })
                .collect()
        } else {
            // too many to collect one by one: the whole rows, used where
            // they were mapped (half a gigabyte per 2^26 pairs)
            let post_bytes = (ts * h * 8) as u64;
            gpu.submit_and_view(
                gpu.encoder(),
                &[(p.buffer(slot.post).unwrap(), post_bytes)],
                "the plausible sets",
                |views| {
                    let rows: &[[f32; 2]] = bytemuck::cast_slice(views[0]);
                    rows.par_chunks(h)
                        .map_init(StepCuts::default, |s, row| {
                            s.cuts(row.iter().filter(|l| l[0] >= cut).copied(), alphas)
                        })
                        .collect()
                },
            )?
        };
        // a small read ahead only: a large one costs more than a trip
        state.candidate_guess = if found > SPECULATIVE_CANDIDATES {
            0
        } else {
            found
                .saturating_mul(2)
                .clamp(1 << 12, SPECULATIVE_CANDIDATES)
        };
        Ok(cuts
            .into_iter()
            .zip(best)
            .map(|((cuts, floors), b)| StepCut {
                cuts,
                floors,
                map: b[2] as usize,
                // −∞ at or below LOG_ZERO, NaN stays NaN
                log_max: join_log([f32::from_bits(b[0]), f32::from_bits(b[1])]),
            })
            .collect())
    }

    /// Queues a chunk's log-likelihoods, prefix sums (from the device's
    /// carry), maxima and relative weights into the buffers of slot
    /// `slot`, with the readback of the maxima, the number of plausible-set
    /// candidates and the first of them.
    fn submit_weights(
        &self,
        state: &mut State,
        chunk: &StepChunk,
        slot: usize,
        restart: &[bool],
        cut: f32,
    ) -> Result<Weighing<'a>> {
        let engine = self.engine;
        let gpu = &engine.gpu;
        let h = self.h;
        let slot = &SLOTS[slot];
        let (t0, t1) = (chunk.t0, chunk.t1);
        let ts = t1 - t0;
        let offsets = self.tables_for(state, 0, h, chunk)?;
        let params_h0 = self.upload_inputs(state, 0, h)?;
        let restart: Vec<u32> = restart[t0..t1].iter().map(|&r| r as u32).collect();
        state.pool.upload(gpu, "restart", &restart);
        let lanes = lanes(h);
        state.pool.get(gpu, slot.post, (ts * h * 8) as u64);
        state.pool.get(gpu, slot.lane_max, (ts * lanes * 16) as u64);
        let all = ts * h;
        let capacity = all
            .min(gpu.max_binding() as usize / 16)
            .min((all / 4).max(1 << 16));
        state.pool.get(gpu, slot.candidates, (capacity * 16) as u64);
        state.pool.upload(gpu, slot.found, &[0u32; 4]);
        state.pool.get(gpu, slot.step_best, (ts * 16) as u64);
        state
            .pool
            .get(gpu, slot.run_max, (ts * h.div_ceil(RUN) * 4) as u64);
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
        self.record_loglik(state, &mut enc, 0, h, chunk, &offsets, params_h0, slot.post)?;
        let p = &state.pool;
        let post = p.buffer(slot.post).unwrap();
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
            p.buffer(slot.lane_max).unwrap(),
            p.buffer(slot.step_best).unwrap(),
        )?;
        // ℓ = L − max, and the hypotheses that may be in a plausible set
        engine.posterior.record_relative(
            gpu,
            &mut enc,
            &u,
            RelativeBuffers {
                post,
                step_best: p.buffer(slot.step_best).unwrap(),
                found: p.buffer(slot.found).unwrap(),
                candidates: p.buffer(slot.candidates).unwrap(),
                run_max: p.buffer(slot.run_max).unwrap(),
            },
        )?;
        // the first candidates come back with the maxima, before their
        // number is known: usually all of them, without a second trip
        // (none after a chunk with many: a large read costs more than a trip)
        let guess = state.candidate_guess.min(capacity);
        let mut reads = vec![
            (p.buffer(slot.step_best).unwrap(), (ts * 16) as u64),
            (p.buffer(slot.found).unwrap(), 4),
        ];
        if guess > 0 {
            reads.push((p.buffer(slot.candidates).unwrap(), (guess * 16) as u64));
        }
        let read = gpu.submit_reading(enc, &reads, "the posterior")?;
        Ok(Weighing {
            slot,
            offsets,
            capacity,
            guess,
            read,
        })
    }
}

/// A plausible-set candidate: its hypothesis and `ℓ` as the device's (hi, lo).
type Candidate = (u32, [f32; 2]);

/// The plausible-set candidates `(step, hypothesis, ℓ as hi, lo)` of a
/// chunk of `ts` steps as `Candidate`s per step, in parts: a step's
/// candidates are its lists of all parts, in no particular order. The
/// device appends them in any order, and a wide posterior brings millions,
/// so they are grouped in parallel.
fn by_step(entries: &[[u32; 4]], ts: usize) -> Vec<Vec<Vec<Candidate>>> {
    let part = entries
        .len()
        .div_ceil(4 * rayon::current_num_threads())
        .max(1 << 14);
    entries
        .par_chunks(part)
        .map(|entries| {
            let mut per_step = vec![Vec::new(); ts];
            for e in entries {
                let l = [f32::from_bits(e[2]), f32::from_bits(e[3])];
                per_step[e[0] as usize].push((e[1], l));
            }
            per_step
        })
        .collect()
}

/// Puts one step's plausible-set candidates `(hypothesis, ℓ)` in hypothesis
/// order, the order the host path hands `plausible_cuts` (so both add the
/// same masses in the same order). Many candidates are scattered into a
/// dense row of `h` and gathered back, which costs less than sorting them.
fn in_hypothesis_order(c: &mut Vec<Candidate>, dense: &mut Vec<[f32; 2]>, h: usize) {
    if c.len() * 16 <= h {
        c.sort_unstable_by_key(|e| e.0);
        return;
    }
    // ℓ ≥ the cut is finite: NaN marks the hypotheses that are not candidates
    dense.clear();
    dense.resize(h, [f32::NAN, 0.0]);
    for &(i, l) in c.iter() {
        dense[i as usize] = l;
    }
    c.clear();
    c.extend(
        (0u32..)
            .zip(dense.iter())
            .filter(|(_, l)| !l[0].is_nan())
            .map(|(i, &l)| (i, l)),
    );
}

/// One thread's buffers for the host's plausible-set cuts.
#[derive(Default)]
struct StepCuts {
    /// a step's candidates `(hypothesis, ℓ as the device's hi, lo)`
    step: Vec<Candidate>,
    scratch: CutScratch,
    pairs: Vec<[f32; 2]>,
    log_rel: Vec<f64>,
    weight: Vec<f64>,
    dense: Vec<[f32; 2]>,
}

impl StepCuts {
    /// `plausible_cuts` of a step's candidates (their `ℓ` as the device
    /// computed it, in hypothesis order), and each cut's `member_floors`.
    fn cuts(
        &mut self,
        pairs: impl Iterator<Item = [f32; 2]>,
        alphas: &[f64],
    ) -> (Vec<PlausibleCut>, Vec<[f32; 2]>) {
        self.pairs.clear();
        self.pairs.extend(pairs);
        self.log_rel.clear();
        self.log_rel
            .extend(self.pairs.iter().map(|l| l[0] as f64 + l[1] as f64));
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
        let floors = member_floors(&self.pairs, &self.log_rel, &out);
        (out, floors)
    }
}

/// Each cut's threshold as `reduce.wgsl` compares it with the device's own
/// `ℓ` pairs: the least member's pair. The host cuts on `ℓ` joined into f64,
/// and a double-f32 can hold more bits than an f64 (hi's 24, then lo's 24
/// from wherever lo's leading bit is), so joining may round: splitting the
/// f64 threshold again need not give back the last member's own pair, and
/// can land above it, leaving that member out of the kernel's set (issue
/// 11). Joining rounds monotonically, so the members are exactly the pairs
/// at or above the least member's, in the pairs' order (hi, then lo: the
/// values' order, the device's pairs being normalised). A cut without
/// members (none here: `I_α` holds the MAP) keeps its split threshold.
fn member_floors(pairs: &[[f32; 2]], log_rel: &[f64], cuts: &[PlausibleCut]) -> Vec<[f32; 2]> {
    let below = |a: &[f32; 2], b: &[f32; 2]| a[0] < b[0] || (a[0] == b[0] && a[1] < b[1]);
    // One pass, one comparison of pairs per candidate: a candidate with
    // j = #{cuts whose threshold exceeds ℓ} belongs to exactly the cuts
    // with at least j thresholds above their own, so keep the least pair
    // per j and take prefix minima (a wide posterior brings every hypothesis).
    let mut least: Vec<Option<[f32; 2]>> = vec![None; cuts.len() + 1];
    for (p, &l) in pairs.iter().zip(log_rel) {
        let j = cuts.iter().filter(|c| c.threshold > l).count();
        if least[j].is_none_or(|m| below(p, &m)) {
            least[j] = Some(*p);
        }
    }
    for j in 1..least.len() {
        if let (Some(a), Some(b)) = (least[j - 1], least[j]) {
            if below(&a, &b) {
                least[j] = Some(a);
            }
        } else if least[j].is_none() {
            least[j] = least[j - 1];
        }
    }
    cuts.iter()
        .map(|cut| {
            let above = cuts.iter().filter(|c| c.threshold > cut.threshold).count();
            match least[above] {
                Some(p) if cut.size > 0 => p,
                _ => split(cut.threshold),
            }
        })
        .collect()
}
