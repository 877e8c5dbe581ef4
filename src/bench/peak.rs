//! A device's own peak, the yardstick of `gpubound bench --suite`: f32
//! multiply-add throughput (FLOP/s, an FMA counting 2) and memory bandwidth
//! (bytes read + written per second), as vkpeak and STREAM measure them.
//!
//! On a GPU: `shaders/peak_fma.wgsl` and `shaders/peak_copy.wgsl`, with CPU
//! twins here (`fma_twin`, `scale_twin`) that the tests compare them with.
//! On the CPU: a loop of independent vector FMA chains on every thread, and
//! a parallel scaled copy of buffers far larger than the caches. Each figure
//! is the best of a few timed rounds, each sized to last at least
//! `MIN_SECONDS`, after a warm-up (a peak is a maximum, not a typical value).

use std::hint::black_box;
use std::time::Instant;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::engine::gpu::device::Gpu;
use crate::{Error, Result};

const FMA_SHADER: &str = include_str!("../../shaders/peak_fma.wgsl");
const COPY_SHADER: &str = include_str!("../../shaders/peak_copy.wgsl");

/// FLOP per round of one thread of `peak_fma.wgsl`: 8 vec4 FMAs.
pub const FMA_FLOP_PER_ROUND: u64 = 8 * 4 * 2;
/// The multiplier of the FMA chains (see `peak_fma.wgsl`).
pub const FMA_A: f32 = 0.5;
/// The factor of the scaled copy.
pub const SCALE: f32 = 3.0;
const WORKGROUP: u64 = 256;
/// Rounds shorter than this are repeated with more work (timer resolution,
/// submission overhead).
const MIN_SECONDS: f64 = 0.1;
const TIMED_ROUNDS: usize = 3;

/// What a device reached, and how it was measured.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Peak {
    /// f32 FLOP per second (an FMA is 2 FLOP).
    pub flops_per_s: f64,
    /// bytes read plus bytes written per second.
    pub bytes_per_s: f64,
    /// how each figure was measured
    pub method: String,
}

// ------------------------------------------------------------ CPU twins

/// What thread `i` of `peak_fma.wgsl` writes after `iters` rounds with
/// multiplier `a`: the same operations in the same order.
pub fn fma_twin(i: u32, iters: u32, a: f32) -> f32 {
    let b = (i % 64) as f32 * 0.25 + 1.0;
    let mut x = [[0.0f32; 4]; 8];
    for (j, v) in x.iter_mut().enumerate() {
        for (l, lane) in v.iter_mut().enumerate() {
            *lane = b + l as f32 + 4.0 * j as f32;
        }
    }
    for _ in 0..iters {
        for v in &mut x {
            for lane in v.iter_mut() {
                *lane = lane.mul_add(a, b);
            }
        }
    }
    let add = |p: [f32; 4], q: [f32; 4]| [p[0] + q[0], p[1] + q[1], p[2] + q[2], p[3] + q[3]];
    let s = add(
        add(add(x[0], x[1]), add(x[2], x[3])),
        add(add(x[4], x[5]), add(x[6], x[7])),
    );
    (s[0] + s[1]) + (s[2] + s[3])
}

/// What `peak_copy.wgsl` writes: `s·src[i]`.
pub fn scale_twin(src: &[f32], s: f32) -> Vec<f32> {
    src.iter().map(|v| s * v).collect()
}

// ------------------------------------------------------------ GPU kernels

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct FmaParams {
    iters: u32,
    threads: u32,
    a: f32,
    row: u32,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct CopyParams {
    n: u32,
    row: u32,
    s: f32,
    pad: u32,
}

/// The two peak kernels, built on an open device.
pub struct GpuPeak {
    gpu: Gpu,
    fma: wgpu::ComputePipeline,
    copy: wgpu::ComputePipeline,
}

fn storage(gpu: &Gpu, label: &str, size: u64) -> wgpu::Buffer {
    gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size,
        usage: wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_SRC
            | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

impl GpuPeak {
    /// Builds the kernels on `gpu` (open it with the policy the engine used,
    /// so that both measure the same adapter).
    pub fn new(gpu: Gpu) -> Result<Self> {
        let fma = gpu.shader("peak_fma", FMA_SHADER.to_string())?;
        let fma = gpu.pipeline("peak_fma", &fma)?;
        let copy = gpu.shader("peak_copy", COPY_SHADER.to_string())?;
        let copy = gpu.pipeline("peak_copy", &copy)?;
        Ok(GpuPeak { gpu, fma, copy })
    }

    pub fn adapter(&self) -> &wgpu::AdapterInfo {
        &self.gpu.adapter
    }

    /// Workgroups `(x, y)` for `threads` threads, and threads per row.
    fn grid(&self, threads: u64) -> Result<((u32, u32), u32)> {
        let groups = threads.div_ceil(WORKGROUP).max(1);
        let max = self.gpu.limits.max_compute_workgroups_per_dimension.max(1) as u64;
        let x = groups.min(max);
        let y = groups.div_ceil(x);
        if y > max || x * WORKGROUP > u32::MAX as u64 {
            return Err(Error::Gpu(format!(
                "{threads} threads do not fit one dispatch"
            )));
        }
        Ok(((x as u32, y as u32), (x * WORKGROUP) as u32))
    }

    /// Runs `peak_fma.wgsl` `dispatches` times on `threads` threads and
    /// returns what the threads wrote and the wall seconds it took.
    pub fn run_fma(
        &self,
        threads: u32,
        iters: u32,
        dispatches: u32,
        a: f32,
    ) -> Result<(Vec<f32>, f64)> {
        let (groups, row) = self.grid(threads as u64)?;
        let params = self.gpu.uniform(&FmaParams {
            iters,
            threads,
            a,
            row,
        });
        let size = 4 * threads.max(1) as u64;
        let out = storage(&self.gpu, "peak_fma out", size);
        let bind = self.gpu.bind_group(&self.fma, &[&params, &out]);
        let mut enc = self.gpu.encoder();
        for _ in 0..dispatches.max(1) {
            self.gpu.dispatch(&mut enc, &self.fma, &bind, groups);
        }
        let started = Instant::now();
        let bytes = self.gpu.submit_and_read(enc, &out, size, "peak_fma")?;
        let seconds = started.elapsed().as_secs_f64();
        self.gpu.check("peak_fma")?;
        let mut v: Vec<f32> = bytemuck::pod_collect_to_vec(&bytes);
        v.truncate(threads as usize);
        Ok((v, seconds))
    }

    /// Uploads `src`, runs `peak_copy.wgsl` `dispatches` times, returns
    /// `dst` (read back when `read`) and the wall seconds of the dispatches.
    pub fn run_copy(
        &self,
        src: &[f32],
        s: f32,
        dispatches: u32,
        read: bool,
    ) -> Result<(Vec<f32>, f64)> {
        let n = src.len().div_ceil(4) as u64;
        let size = 16 * n.max(1);
        if size > self.gpu.max_binding() {
            return Err(Error::Gpu(format!(
                "{size} bytes exceed the largest binding"
            )));
        }
        let (groups, row) = self.grid(n)?;
        let params = self.gpu.uniform(&CopyParams {
            n: n as u32,
            row,
            s,
            pad: 0,
        });
        let a = storage(&self.gpu, "peak_copy src", size);
        let b = storage(&self.gpu, "peak_copy dst", size);
        let mut padded = src.to_vec();
        padded.resize(4 * n.max(1) as usize, 0.0);
        self.gpu
            .queue
            .write_buffer(&a, 0, bytemuck::cast_slice(&padded));
        // the upload is not part of the timing
        self.gpu
            .submit_and_read(self.gpu.encoder(), &a, 4, "peak_copy upload")?;
        let bind = self.gpu.bind_group(&self.copy, &[&params, &a, &b]);
        let mut enc = self.gpu.encoder();
        for _ in 0..dispatches.max(1) {
            self.gpu.dispatch(&mut enc, &self.copy, &bind, groups);
        }
        let started = Instant::now();
        let bytes = self
            .gpu
            .submit_and_read(enc, &b, if read { size } else { 4 }, "peak_copy")?;
        let seconds = started.elapsed().as_secs_f64();
        self.gpu.check("peak_copy")?;
        let mut v: Vec<f32> = bytemuck::pod_collect_to_vec(&bytes);
        v.truncate(if read { src.len() } else { 0 });
        Ok((v, seconds))
    }

    /// The adapter's peak FLOP/s and bandwidth.
    pub fn measure(&self) -> Result<Peak> {
        // FMA: 1024 rounds per thread; more threads, then more dispatches,
        // until a submission lasts MIN_SECONDS.
        let iters = 1024u32;
        let (mut threads, mut dispatches) = (1u32 << 12, 1u32);
        let flops = |t: u32, d: u32| t as f64 * d as f64 * iters as f64 * FMA_FLOP_PER_ROUND as f64;
        self.run_fma(threads, iters, 1, FMA_A)?;
        loop {
            let (_, s) = self.run_fma(threads, iters, dispatches, FMA_A)?;
            if s >= MIN_SECONDS || dispatches >= 1 << 16 {
                break;
            }
            if threads < 1 << 22 {
                threads *= 2;
            } else {
                dispatches *= 2;
            }
        }
        let mut best_flops: f64 = 0.0;
        for _ in 0..TIMED_ROUNDS {
            let (_, s) = self.run_fma(threads, iters, dispatches, FMA_A)?;
            best_flops = best_flops.max(flops(threads, dispatches) / s);
        }
        // Bandwidth: the largest binding up to 256 MiB, dispatched until a
        // submission lasts MIN_SECONDS.
        let size = self.gpu.max_binding().min(256 << 20) / 16 * 16;
        let src = vec![1.0f32; (size / 4) as usize];
        let mut dispatches = 1u32;
        loop {
            let (_, s) = self.run_copy(&src, SCALE, dispatches, false)?;
            if s >= MIN_SECONDS || dispatches >= 1 << 12 {
                break;
            }
            dispatches *= 2;
        }
        let mut best_bytes: f64 = 0.0;
        for _ in 0..TIMED_ROUNDS {
            let (_, s) = self.run_copy(&src, SCALE, dispatches, false)?;
            best_bytes = best_bytes.max(2.0 * size as f64 * dispatches as f64 / s);
        }
        Ok(Peak {
            flops_per_s: best_flops,
            bytes_per_s: best_bytes,
            method: format!(
                "shaders/peak_fma.wgsl: {threads} threads × {iters} rounds of 8 vec4 FMAs × {dispatches} dispatches; \
                 shaders/peak_copy.wgsl: dst = s·src over {} MiB, read + written; best of {TIMED_ROUNDS} submissions, wall clock",
                size >> 20
            ),
        })
    }
}

// ------------------------------------------------------------ CPU

/// Lanes of the CPU's FMA loop: 8 AVX registers of 8 f32, enough
/// independent chains to keep two FMA units busy through their latency.
const CPU_LANES: usize = 64;

fn cpu_fma_chunk(rounds: u64, a: f32, b: f32) -> f32 {
    let mut x = [0.0f32; CPU_LANES];
    for (l, v) in x.iter_mut().enumerate() {
        *v = b + l as f32;
    }
    for _ in 0..rounds {
        for v in &mut x {
            *v = v.mul_add(a, b);
        }
    }
    x.iter().sum()
}

fn cpu_fma_seconds(threads: usize, rounds: u64) -> f64 {
    let started = Instant::now();
    let s: f32 = (0..threads)
        .into_par_iter()
        .map(|t| cpu_fma_chunk(rounds, black_box(FMA_A), black_box(1.0 + t as f32)))
        .sum();
    black_box(s);
    started.elapsed().as_secs_f64()
}

fn cpu_copy_seconds(src: &[f32], dst: &mut [f32]) -> f64 {
    let started = Instant::now();
    dst.par_chunks_mut(1 << 16)
        .zip(src.par_chunks(1 << 16))
        .for_each(|(d, s)| {
            for (d, s) in d.iter_mut().zip(s) {
                *d = SCALE * s;
            }
        });
    black_box(&dst[0]);
    started.elapsed().as_secs_f64()
}

/// The CPU's peak on the engine's thread pool.
pub fn measure_cpu() -> Peak {
    let threads = rayon::current_num_threads();
    let mut rounds = 1u64 << 14;
    while cpu_fma_seconds(threads, rounds) < MIN_SECONDS && rounds < 1 << 34 {
        rounds *= 2;
    }
    let flops = (threads * CPU_LANES) as f64 * 2.0 * rounds as f64;
    let best_flops = (0..TIMED_ROUNDS)
        .map(|_| flops / cpu_fma_seconds(threads, rounds))
        .fold(0.0, f64::max);
    // 2 × 128 MiB: far beyond any CPU's last-level cache.
    let n = (128usize << 20) / 4;
    let src = vec![1.0f32; n];
    let mut dst = vec![0.0f32; n];
    cpu_copy_seconds(&src, &mut dst);
    let best_bytes = (0..TIMED_ROUNDS + 2)
        .map(|_| 2.0 * 4.0 * n as f64 / cpu_copy_seconds(&src, &mut dst))
        .fold(0.0, f64::max);
    Peak {
        flops_per_s: best_flops,
        bytes_per_s: best_bytes,
        method: format!(
            "{threads} threads × {CPU_LANES} f32 FMA chains × {rounds} rounds; \
             dst = s·src over 128 MiB on {threads} threads, read + written; best of {TIMED_ROUNDS} (copy: {}) rounds, wall clock",
            TIMED_ROUNDS + 2
        ),
    }
}
