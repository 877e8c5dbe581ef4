//! Each kernel on the GPU (wgpu: `shaders/NAME.wgsl`) and its CPU twin
//! (`engine::cpu::NAME`), at the paper's bandit size (H = 1024 = 2^10, A = 10)
//! and at H = 59049 = 3^10. Throughput is in elements of each kernel's own
//! work: harm `H × A`, loglik `H × T`, reduce `H × A × T` (triples).
//!
//! GPU timings include what a caller waits for: `harm` reads the table back
//! (the engine itself never does), `loglik` computes the harm table it reads
//! `w·x` from and reads the `T × H` log-likelihoods back, `reduce` uploads
//! the weights and reads the per-block results back.
//!
//! `cargo bench --bench kernels`; `WGPU_BACKEND=gl` benchmarks GL.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ndarray::Array2;

use gpubound::engine::cpu::{self, CpuEngine};
use gpubound::engine::gpu::GpuEngine;
use gpubound::engine::{Batch, BatchStep, CandidateTable, Engine, StepWeights};
use gpubound::model::{HypothesisSpace, Model, ObservationModel};
use gpubound::posterior;

const ALPHAS: [f64; 3] = [1e-4, 1e-2, 0.1];

struct Setup {
    name: &'static str,
    model: Model,
    table: CandidateTable,
    steps: usize,
}

fn setups() -> Vec<Setup> {
    let features = |k: u64, d: usize, a: usize| {
        // a fixed, varied integer table
        let f = (0..a * d)
            .map(|i| ((i as u64 * 2_654_435_761) >> 7) % k)
            .map(|v| v as f64)
            .collect();
        CandidateTable::new(f, a)
    };
    vec![
        Setup {
            name: "H=1024 A=10",
            model: Model {
                hypotheses: HypothesisSpace::grid(2, 10).unwrap(),
                observation: ObservationModel::Gaussian {
                    sigma: 1.0,
                    harm_threshold: 4.0,
                },
            },
            table: features(2, 10, 10),
            steps: 256,
        },
        Setup {
            name: "H=59049 A=10",
            model: Model {
                hypotheses: HypothesisSpace::grid(3, 10).unwrap(),
                observation: ObservationModel::Gaussian {
                    sigma: 1.0,
                    harm_threshold: 15.0,
                },
            },
            table: features(3, 10, 10),
            steps: 16,
        },
    ]
}

fn batch_of(s: &Setup) -> Batch<'_> {
    let mut b = Batch::new(&s.model);
    let t = b.push_table(s.table.clone());
    for i in 0..s.steps {
        let a = (i * 7) % s.table.n_candidates;
        let wx: f64 = s.table.candidate(a).iter().sum();
        b.push_step(BatchStep {
            table: t,
            action: a as u32,
            outcome: Some(wx * 0.8 + ((i * 37) % 11) as f64 * 0.2 - 1.0),
        });
    }
    b
}

fn weights(model: &Model, mut ll: Array2<f64>) -> StepWeights {
    let mut carry = model.hypotheses.log_prior();
    posterior::accumulate(&mut carry, ll.view_mut());
    gpubound::posterior::step_weights(ll, &ALPHAS).0
}

fn kernels(c: &mut Criterion) {
    let gpu = GpuEngine::new().unwrap_or_else(|e| {
        panic!("the GPU benchmarks need a wgpu adapter (lavapipe: mesa-vulkan-drivers): {e}")
    });
    eprintln!("GPU: {}", gpu.info());
    for s in setups() {
        let h = s.model.hypotheses.len();
        let a = s.table.n_candidates;
        let batch = batch_of(&s);
        let tables: Vec<std::sync::Arc<cpu::HarmTable>> = batch
            .tables
            .iter()
            .map(|t| std::sync::Arc::new(cpu::harm::harm(&s.model, t)))
            .collect();
        let ll = cpu::loglik::loglik(&batch, &tables);
        let w = weights(&s.model, ll);

        let mut g = c.benchmark_group(format!("harm {}", s.name));
        g.sample_size(10);
        g.throughput(Throughput::Elements((h * a) as u64));
        g.bench_function("gpu", |b| {
            b.iter(|| black_box(gpu.harm_table(&s.model, &s.table).unwrap()))
        });
        g.bench_function("cpu", |b| {
            b.iter(|| black_box(cpu::harm::harm(&s.model, &s.table)))
        });
        g.finish();

        let mut g = c.benchmark_group(format!("loglik {} T={}", s.name, s.steps));
        g.sample_size(10);
        g.throughput(Throughput::Elements((h * s.steps) as u64));
        g.bench_function("gpu", |b| {
            b.iter(|| {
                let mut p = gpu.prepare(&batch).unwrap();
                black_box(p.log_likelihoods().unwrap())
            })
        });
        g.bench_function("cpu", |b| {
            b.iter(|| black_box(cpu::loglik::loglik(&batch, &tables)))
        });
        g.finish();

        let mut g = c.benchmark_group(format!("reduce {} T={}", s.name, s.steps));
        g.sample_size(10);
        g.throughput(Throughput::Elements((h * a * s.steps) as u64));
        let mut prepared = gpu.prepare(&batch).unwrap();
        g.bench_function("gpu", |b| {
            b.iter(|| black_box(prepared.reduce(&w, ALPHAS.len()).unwrap()))
        });
        drop(prepared);
        g.bench_function("cpu", |b| {
            b.iter(|| black_box(cpu::reduce::reduce(&batch, &tables, &w, ALPHAS.len())))
        });
        g.finish();
    }
    // the whole engine on the CPU, for comparison with the pipeline above
    let _ = CpuEngine::new();
}

criterion_group!(benches, kernels);
criterion_main!(benches);
