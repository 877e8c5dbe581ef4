//! Differential tests: the wgpu engine against the CPU engine, through the
//! public API. They need a wgpu adapter (lavapipe or llvmpipe will do) and
//! FAIL with a clear message when none is found. `WGPU_BACKEND=gl` runs them
//! on GL instead of Vulkan.
//!
//! Tolerances (SPEC §5): the same verdicts at C = 1e-3, 1e-2, 1e-1 (except
//! where the CPU value is within f32 rounding of C), estimates within 1e-5
//! relative where they exceed 1e-6; the cautious theory may pick a different
//! ĥ only when, by the CPU's own f64 values, its score is within f32
//! rounding of the best score.

mod common;

use std::io::BufRead;
use std::sync::OnceLock;

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use gpubound::audit::{self, AuditSettings, AuditTotals, StepResult};
use gpubound::engine::cpu::{self, CpuEngine};
use gpubound::engine::gpu::{GpuEngine, KernelShape};
use gpubound::engine::{Batch, BatchStep, CandidateTable, Engine, Reductions, StepWeights};
use gpubound::estimators::Alphas;
use gpubound::log::LogReader;
use gpubound::model::normal_tail::{erfc_f32, upper_tail};
use gpubound::model::{HypothesisList, HypothesisSpace, Model, ObservationModel};
use gpubound::posterior;

const THRESHOLDS: [f64; 3] = [1e-3, 1e-2, 1e-1];
const REL: f64 = 1e-5;
const FLOOR: f64 = 1e-6;

fn gpu() -> &'static GpuEngine {
    static ENGINE: OnceLock<Result<GpuEngine, String>> = OnceLock::new();
    match ENGINE.get_or_init(|| GpuEngine::new().map_err(|e| e.to_string())) {
        Ok(g) => g,
        Err(e) => panic!(
            "the GPU tests need a wgpu adapter and found none ({e}). Install a Vulkan driver \
             (mesa-vulkan-drivers provides lavapipe) or run with WGPU_BACKEND=gl for llvmpipe."
        ),
    }
}

/// A serial-shape engine that cuts a device posterior's batches into chunks
/// of about 2^13 (step, hypothesis) pairs, so that the next chunk's weights
/// are queued before each chunk's are read (a GPU's own chunks are 2^24
/// pairs; software renderers cut none).
fn gpu_pipelined() -> &'static GpuEngine {
    static ENGINE: OnceLock<Result<GpuEngine, String>> = OnceLock::new();
    let made = ENGINE.get_or_init(|| {
        GpuEngine::with_shape(KernelShape::Serial)
            .map(|g| g.with_chunk_pairs(1 << 13))
            .map_err(|e| e.to_string())
    });
    match made {
        Ok(g) => g,
        Err(e) => panic!("the GPU tests need a wgpu adapter and found none ({e})"),
    }
}

fn cpu_engine() -> CpuEngine {
    CpuEngine::new()
}

// ---------------------------------------------------------------- helpers

/// The host posterior exactly as the audit builds it: prefix sums of the
/// log-likelihoods from the prior, log relative weights, plausible cuts.
fn weights_from(model: &Model, mut ll: Array2<f64>, alphas: &[f64]) -> StepWeights {
    let mut carry = model.hypotheses.log_prior();
    posterior::accumulate(&mut carry, ll.view_mut());
    gpubound::posterior::step_weights(ll, alphas).0
}

fn close(gpu: f64, cpu: f64) -> bool {
    if cpu.abs() <= FLOOR && gpu.abs() <= FLOOR * (1.0 + 1e-3) {
        return (gpu - cpu).abs() <= FLOOR * 1e-3 + 1e-12;
    }
    (gpu - cpu).abs() <= REL * cpu.abs()
}

fn same_verdicts(gpu: f64, cpu: f64) -> bool {
    THRESHOLDS
        .iter()
        .all(|&c| (gpu > c) == (cpu > c) || (cpu - c).abs() <= 1e-6 * c)
}

/// f32 rounding of a log score `ℓ + ln q`: a few ulps of each term, plus the
/// erfc fit's relative error in q (≲ 2e-6).
fn score_tolerance(l: f64, q: f64) -> f64 {
    8.0 * f32::EPSILON as f64 * (l.abs() + q.ln().abs()) + 4e-6
}

struct Case<'a> {
    name: &'a str,
    model: &'a Model,
    batch: &'a Batch<'a>,
    alphas: &'a [f64],
}

/// Runs both engines on one batch and compares log-likelihoods and every
/// reduction. Returns the number of (step, candidate) pairs compared.
fn compare(case: &Case<'_>) -> usize {
    compare_on(gpu(), case)
}

/// `compare` with a given GPU engine (a kernel shape).
fn compare_on(gpu: &GpuEngine, case: &Case<'_>) -> usize {
    let Case {
        name,
        model,
        batch,
        alphas,
    } = *case;
    let cpu_e = cpu_engine();
    let mut c = cpu_e.prepare(batch).unwrap();
    let mut g = gpu
        .prepare(batch)
        .unwrap_or_else(|e| panic!("{name}: GPU prepare: {e}"));
    let ll_c = c.log_likelihoods().unwrap();
    let ll_g = g
        .log_likelihoods()
        .unwrap_or_else(|e| panic!("{name}: GPU loglik: {e}"));
    assert_eq!(ll_c.dim(), ll_g.dim());
    // Gaussian: double-f32 on the GPU, ~1e-13; Bernoulli: ln(1 + e^-|w·x|)
    // is f32 (the large part w·x is double-f32), ~1e-7 absolute
    let tol = match model.observation {
        ObservationModel::Gaussian { .. } => 1e-9,
        ObservationModel::Bernoulli => 5e-7,
    };
    let mut worst = 0.0f64;
    for (a, b) in ll_c.iter().zip(ll_g.iter()) {
        let err = (a - b).abs() / a.abs().max(1.0);
        worst = worst.max(err);
    }
    assert!(
        worst < tol,
        "{name}: log-likelihoods differ by {worst:e} (relative)"
    );

    let w = weights_from(model, ll_c, alphas);
    let rc = c.reduce(&w, alphas.len()).unwrap();
    let rg = g
        .reduce(&w, alphas.len())
        .unwrap_or_else(|e| panic!("{name}: GPU reduce: {e}"));
    let q_tables: Vec<cpu::HarmTable> = batch
        .tables
        .iter()
        .map(|t| cpu::harm::harm(model, t))
        .collect();
    compare_reductions(name, batch, &w, &q_tables, &rc, &rg, alphas.len())
}

#[allow(clippy::too_many_arguments)]
fn compare_reductions(
    name: &str,
    batch: &Batch<'_>,
    w: &StepWeights,
    q_tables: &[cpu::HarmTable],
    rc: &Reductions,
    rg: &Reductions,
    n_alpha: usize,
) -> usize {
    let mut pairs = 0;
    let mut other_h = 0;
    for t in 0..batch.steps.len() {
        let (zc, zg) = (rc.weight_sum[t], rg.weight_sum[t]);
        assert!(
            (zc - zg).abs() <= REL * zc,
            "{name}: step {t}: Σ e^ℓ cpu {zc} gpu {zg}"
        );
        let ent_c = zc.ln() - rc.weighted_log_rel[t] / zc;
        let ent_g = zg.ln() - rg.weighted_log_rel[t] / zg;
        assert!(
            (ent_c - ent_g).abs() <= 1e-5 * ent_c.abs().max(1.0),
            "{name}: step {t}: entropy cpu {ent_c} gpu {ent_g}"
        );
        let step = batch.steps[t];
        let table = &q_tables[step.table as usize];
        let log_rel = w.log_rel.row(t);
        for a in 0..table.n_candidates {
            let c = batch.candidate_offsets[t] + a;
            pairs += 1;
            let pc = (rc.weighted_harm[c] / zc).min(1.0);
            let pg = (rg.weighted_harm[c] / zg).min(1.0);
            assert!(
                close(pg, pc) && same_verdicts(pg, pc),
                "{name}: step {t} cand {a}: posterior predictive cpu {pc:e} gpu {pg:e}"
            );
            for i in 0..n_alpha {
                let (vc, vg) = (
                    rc.plausible_harm[c * n_alpha + i],
                    rg.plausible_harm[c * n_alpha + i],
                );
                assert!(
                    close(vg, vc) && same_verdicts(vg, vc),
                    "{name}: step {t} cand {a} α#{i}: plausible set cpu {vc:e} gpu {vg:e}"
                );
            }
            // cautious theory
            let (hc, hg) = (rc.cautious_hypothesis[c], rg.cautious_hypothesis[c]);
            let (qc, qg) = (rc.cautious_harm[c], rg.cautious_harm[c]);
            if hc == hg {
                assert!(
                    close(qg, qc),
                    "{name}: step {t} cand {a}: q at ĥ={hc}: cpu {qc:e} gpu {qg:e}"
                );
            } else {
                other_h += 1;
                // judge the GPU's choice with the CPU's own f64 values
                let q_of = |h: u32| table.q(h as usize, a);
                let mut s_best = rc.cautious_log_score[c];
                if q_of(hc) < f32::MIN_POSITIVE as f64 {
                    // the CPU's ĥ has a q below the f32 range, which the GPU
                    // reports as 0 (SPEC §5): the best the GPU can see is the
                    // best among the q it can represent
                    s_best = (0..log_rel.len())
                        .filter(|&h| q_of(h as u32) >= f32::MIN_POSITIVE as f64)
                        .map(|h| log_rel[h] + q_of(h as u32).ln())
                        .fold(f64::NEG_INFINITY, f64::max);
                    if qg == 0.0 && rg.cautious_log_score[c] == f64::NEG_INFINITY {
                        // the GPU saw only zeros (q = 0, score −∞): right
                        // when every q, or every product w·q, it could see
                        // is below the f32 range
                        assert!(
                            s_best < (f32::MIN_POSITIVE as f64).ln(),
                            "{name}: step {t} cand {a}: the GPU saw no q, the best \
                             representable one scores {s_best}"
                        );
                        continue;
                    }
                }
                let (lg, qcg) = (log_rel[hg as usize], q_of(hg));
                let s_g = lg + qcg.ln();
                assert!(
                    s_best.is_finite() && (s_best - s_g).abs() <= score_tolerance(lg, qcg),
                    "{name}: step {t} cand {a}: cautious ĥ cpu {hc} (score {s_best}) gpu {hg} \
                     (score by the CPU's values {s_g})"
                );
                assert!(
                    close(qg, qcg),
                    "{name}: step {t} cand {a}: q at the GPU's ĥ={hg}: cpu {qcg:e} gpu {qg:e}"
                );
            }
            let (sc, sg) = (rc.cautious_log_score[c], rg.cautious_log_score[c]);
            if sc == f64::NEG_INFINITY {
                assert_eq!(sg, f64::NEG_INFINITY, "{name}: step {t} cand {a}: score");
            } else {
                // ville_max numerator: max_h p_h q_h
                let (vc, vg) = ((sc - zc.ln()).exp(), (sg - zg.ln()).exp());
                let tol = if hc == hg {
                    REL
                } else {
                    score_tolerance(log_rel[hg as usize], qg) + REL
                };
                assert!(
                    (vc - vg).abs() <= tol * vc || (vc < FLOOR * 1e-3 && vg < FLOOR * 1e-3),
                    "{name}: step {t} cand {a}: max p·q cpu {vc:e} gpu {vg:e}"
                );
            }
        }
    }
    if other_h > 0 {
        eprintln!("{name}: the GPU picked another ĥ, within f32 rounding, in {other_h} of {pairs} candidates");
    }
    pairs
}

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

fn int_table(r: &mut ChaCha8Rng, a: usize, d: usize, k: i64) -> CandidateTable {
    let f = (0..a * d).map(|_| r.random_range(0..k) as f64).collect();
    CandidateTable::new(f, a)
}

fn real_table(r: &mut ChaCha8Rng, a: usize, d: usize, scale: f64) -> CandidateTable {
    let f = (0..a * d).map(|_| r.random_range(-scale..scale)).collect();
    CandidateTable::new(f, a)
}

/// Steps of one simulated stream: actions uniform, outcomes from `true_w`
/// (gaussian) or Bernoulli(sigmoid) draws; every `unobserved`-th step has none.
fn simulate(
    r: &mut ChaCha8Rng,
    batch: &mut Batch<'_>,
    tables: &[u32],
    steps: usize,
    true_w: &[f64],
    unobserved: usize,
) {
    let model = batch.model;
    for s in 0..steps {
        let table = tables[s % tables.len()];
        let tab = &batch.tables[table as usize];
        let action = r.random_range(0..tab.n_candidates);
        let wx: f64 = tab
            .candidate(action)
            .iter()
            .zip(true_w)
            .map(|(x, w)| x * w)
            .sum();
        let outcome = match model.observation {
            ObservationModel::Gaussian { sigma, .. } => {
                let n: f64 = r.sample(rand_distr::StandardNormal);
                wx + sigma * n
            }
            ObservationModel::Bernoulli => {
                let p = 1.0 / (1.0 + (-wx).exp());
                (r.random::<f64>() < p) as u8 as f64
            }
        };
        let outcome = if unobserved > 0 && s % unobserved == unobserved - 1 {
            None
        } else {
            Some(outcome)
        };
        batch.push_step(BatchStep {
            table,
            action: action as u32,
            outcome,
        });
    }
}

fn gaussian(sigma: f64, theta: f64) -> ObservationModel {
    ObservationModel::Gaussian {
        sigma,
        harm_threshold: theta,
    }
}

fn list_model(params: Array2<f64>, obs: ObservationModel, log_prior: Option<Vec<f64>>) -> Model {
    Model {
        hypotheses: HypothesisSpace::List(HypothesisList::new(params, log_prior, None).unwrap()),
        observation: obs,
    }
}

const ALPHAS: [f64; 7] = [1e-5, 1e-4, 1e-3, 1e-2, 0.1, 0.3, 1.0];

// ------------------------------------------------------------------ tests

#[test]
fn adapter_is_reported() {
    let info = gpu().info();
    assert_eq!(info.kind, gpubound::engine::Backend::Gpu);
    assert!(!info.device.is_empty() && !info.api.is_empty(), "{info}");
    if let Ok(b) = std::env::var("WGPU_BACKEND") {
        if b.to_lowercase() == "gl" {
            assert_eq!(info.api, "OpenGL", "{info}");
        }
    }
}

#[test]
fn backend_selection_follows_the_adapter_kind() {
    use gpubound::engine::{select, Backend, BackendChoice};
    let g = select(BackendChoice::Gpu).unwrap_or_else(|e| panic!("--backend gpu: {e}"));
    assert_eq!(g.info().kind, Backend::Gpu);
    assert_eq!(g.info().device, gpu().info().device);
    // auto takes hardware adapters only: a software renderer is slower than
    // the CPU engine on the same cores
    let auto = select(BackendChoice::Auto).unwrap();
    let want = if gpu().is_software() {
        Backend::Cpu
    } else {
        Backend::Gpu
    };
    assert_eq!(auto.info().kind, want, "auto chose {}", auto.info());
    assert_eq!(
        select(BackendChoice::Cpu).unwrap().info().kind,
        Backend::Cpu
    );
}

#[test]
fn wgsl_erfc_matches_its_cpu_twin_and_libm() {
    // the harm kernel on a 1-d list hypothesis w = 1 and features x = θ − z·σ…
    // gives q = P(Z > z) for every z, through `common.wgsl`'s erfc.
    let zs: Vec<f64> = (0..2400).map(|i| -8.0 + i as f64 * 0.01).collect();
    let theta = 0.0;
    let model = list_model(
        Array2::from_shape_vec((1, 1), vec![1.0]).unwrap(),
        gaussian(1.0, theta),
        None,
    );
    let table = CandidateTable::new(zs.iter().map(|z| theta - z).collect(), zs.len());
    let (wx, q) = gpu().harm_table(&model, &table).unwrap();
    let mut worst = 0.0f64;
    for (i, &z) in zs.iter().enumerate() {
        assert_eq!(wx[i] as f64, (theta - z) as f32 as f64, "w·x at z={z}");
        // the kernel sees z rounded to f32 (θ = 0, σ = 1): judge it there
        let want = upper_tail(z as f32 as f64);
        let twin = (0.5 * erfc_f32((z as f32) * std::f32::consts::FRAC_1_SQRT_2)) as f64;
        let got = q[i] as f64;
        if want >= 1e-30 {
            let rel = ((got - want) / want).abs();
            worst = worst.max(rel);
            assert!(rel < 1e-4, "z={z}: gpu {got:e} libm {want:e}");
            assert!(
                ((got - twin) / twin).abs() < 2e-5,
                "z={z}: gpu {got:e} twin {twin:e}"
            );
        } else if want < 1e-39 {
            assert_eq!(got, 0.0, "z={z}: below the f32 range");
        }
    }
    eprintln!("WGSL erfc: worst relative error {worst:e} for results ≥ 1e-30");
    // SPEC §5 asks for ≲ 1e-4; the device's exp costs a little over the twin
    assert!(worst < 2e-5, "worst relative error {worst:e}");
}

#[test]
fn double_f32_arithmetic_is_exact_on_the_device() {
    // common.wgsl's two_sum / two_prod must return the exact rounding error;
    // a compiler that reassociates floats would return 0 instead.
    let mut r = rng(5);
    let inputs: Vec<[f32; 4]> = (0..4096)
        .map(|i| {
            let a = r.random_range(-1e3f32..1e3) * if i % 3 == 0 { 1e-6 } else { 1.0 };
            let b = r.random_range(-1.0f32..1.0);
            [a, b, r.random_range(-1e4f32..1e4), 0.0]
        })
        .collect();
    let f = "fn probe(v: vec4<f32>) -> vec4<f32> {\n\
             let s = two_sum(v.x, v.y);\n\
             let p = two_prod(v.x, v.z);\n\
             return vec4<f32>(s.x, s.y, p.x, p.y);\n\
             }";
    let out = gpu().probe(f, &inputs).expect("probe kernel");
    let mut nonzero = 0;
    for (i, o) in inputs.iter().zip(&out) {
        let (a, b, c) = (i[0] as f64, i[1] as f64, i[2] as f64);
        assert_eq!(
            o[0] as f64 + o[1] as f64,
            a + b,
            "two_sum({a}, {b}) = {o:?}"
        );
        assert_eq!(o[0], (a + b) as f32, "two_sum({a}, {b}) rounds");
        assert_eq!(
            o[2] as f64 + o[3] as f64,
            a * c,
            "two_prod({a}, {c}) = {o:?}"
        );
        nonzero += (o[1] != 0.0) as usize + (o[3] != 0.0) as usize;
    }
    assert!(nonzero > 1000, "error terms are almost all zero: {nonzero}");
}

#[test]
fn grid_digits_are_exact_on_the_device() {
    // dot.wgsl's next_digit divides without integer division (an f32
    // quotient and its correction): exact for every index below 2^26 and
    // k <= 2^13, the range grids use it in
    let dot = include_str!("../shaders/dot.wgsl");
    let f = format!(
        "struct ProbeU {{ model: ModelParams, inv_k: f32, params_h0: u32 }}\n\
         var<private> u: ProbeU;\n\
         var<private> params: array<vec2<f32>, 1>;\n\
         var<private> features: array<vec2<f32>, 1>;\n\
         {dot}\n\
         fn probe(v: vec4<f32>) -> vec4<f32> {{\n\
             u.inv_k = v.z;\n\
             u.model.grid_k = u32(round(1.0 / v.z));\n\
             let qr = next_digit(u32(v.x) * 8192u + u32(v.y));\n\
             return vec4<f32>(f32(qr.x >> 13u), f32(qr.x & 8191u), f32(qr.y), 0.0);\n\
         }}"
    );
    let mut r = rng(6);
    let mut inputs = Vec::new();
    let mut want = Vec::new();
    for k in [2u32, 3, 5, 7, 10, 40, 100, 999, 4095, 8191, 8192] {
        let limit = 1u32 << 26;
        let mut rests: Vec<u32> = vec![0, 1, k - 1, k, (1 << 22) - 1, 1 << 22, 1 << 24, limit - 1];
        for _ in 0..1500 {
            rests.push(r.random_range(0..limit));
            let m = r.random_range(1..limit / k);
            rests.extend([m * k - 1, m * k, m * k + 1]);
        }
        for rest in rests.into_iter().filter(|&v| v < limit) {
            inputs.push([
                (rest >> 13) as f32,
                (rest & 8191) as f32,
                1.0 / k as f32,
                0.0,
            ]);
            want.push((rest, k));
        }
    }
    let out = gpu().probe(&f, &inputs).expect("probe kernel");
    for (o, &(rest, k)) in out.iter().zip(&want) {
        let q = o[0] as u32 * 8192 + o[1] as u32;
        assert_eq!(
            (q, o[2] as u32),
            (rest / k, rest % k),
            "next_digit({rest}) with k = {k}"
        );
    }
}

#[test]
fn harm_kernel_matches_the_cpu_twin() {
    let mut r = rng(7);
    for (model, table) in [
        (
            Model {
                hypotheses: HypothesisSpace::grid(3, 6).unwrap(),
                observation: gaussian(1.0, 9.0),
            },
            int_table(&mut r, 10, 6, 3),
        ),
        (
            list_model(
                Array2::from_shape_fn((3000, 5), |_| r.random_range(-2.0..2.0)),
                gaussian(0.37, 1.3),
                None,
            ),
            real_table(&mut r, 6, 5, 1.5),
        ),
        (
            Model {
                hypotheses: HypothesisSpace::grid(2, 8).unwrap(),
                observation: ObservationModel::Bernoulli,
            },
            real_table(&mut r, 4, 8, 6.0),
        ),
    ] {
        let cpu_t = cpu::harm::harm(&model, &table);
        let (wx, q) = gpu().harm_table(&model, &table).unwrap();
        let n = table.n_candidates;
        for i in 0..q.len() {
            let (wc, qc) = (
                cpu_t.wx[(i / n) * cpu_t.stride + i % n],
                cpu_t.q(i / n, i % n),
            );
            assert!(
                (wx[i] as f64 - wc).abs() <= 1e-6 * wc.abs().max(1.0),
                "w·x[{i}]: cpu {wc} gpu {}",
                wx[i]
            );
            assert!(
                close(q[i] as f64, qc),
                "{}: q[{i}] cpu {qc:e} gpu {:e}",
                model.describe(),
                q[i]
            );
        }
    }
}

#[test]
fn gaussian_grid_bandit_with_ties() {
    // the paper's bandit: 2^10 grid, integer features; many exact ties
    let model = Model {
        hypotheses: HypothesisSpace::grid(2, 10).unwrap(),
        observation: gaussian(1.0, 4.0),
    };
    let mut r = rng(11);
    let mut batch = Batch::new(&model);
    let t = batch.push_table(int_table(&mut r, 10, 10, 2));
    let true_w: Vec<f64> = (0..10).map(|_| r.random_range(0..2) as f64).collect();
    simulate(&mut r, &mut batch, &[t], 80, &true_w, 7);
    compare(&Case {
        name: "grid 2^10",
        model: &model,
        batch: &batch,
        alphas: &ALPHAS,
    });
}

#[test]
fn prior_only_steps_are_all_ties() {
    let model = Model {
        hypotheses: HypothesisSpace::grid(3, 6).unwrap(),
        observation: gaussian(1.0, 10.0),
    };
    let mut r = rng(12);
    let mut batch = Batch::new(&model);
    let t = batch.push_table(int_table(&mut r, 10, 6, 3));
    for a in 0..5 {
        batch.push_step(BatchStep {
            table: t,
            action: a,
            outcome: None,
        });
    }
    compare(&Case {
        name: "prior",
        model: &model,
        batch: &batch,
        alphas: &ALPHAS,
    });
}

#[test]
fn bernoulli_grid_and_list() {
    let mut r = rng(13);
    let model = Model {
        hypotheses: HypothesisSpace::grid(3, 6).unwrap(),
        observation: ObservationModel::Bernoulli,
    };
    let mut batch = Batch::new(&model);
    let tables: Vec<u32> = (0..4)
        .map(|_| {
            let mut t = int_table(&mut r, 5, 6, 3);
            t.features.iter_mut().for_each(|v| *v -= 1.0);
            batch.push_table(t)
        })
        .collect();
    simulate(
        &mut r,
        &mut batch,
        &tables,
        60,
        &[1.0, -1.0, 0.0, 2.0, -2.0, 1.0],
        0,
    );
    compare(&Case {
        name: "bernoulli grid",
        model: &model,
        batch: &batch,
        alphas: &ALPHAS,
    });

    let params = Array2::from_shape_fn((4000, 3), |_| r.random_range(-3.0..3.0));
    let model = list_model(params, ObservationModel::Bernoulli, None);
    let mut batch = Batch::new(&model);
    let tables: Vec<u32> = (0..30)
        .map(|_| batch.push_table(real_table(&mut r, 6, 3, 1.0)))
        .collect();
    simulate(&mut r, &mut batch, &tables, 30, &[0.5, -1.5, 2.0], 5);
    compare(&Case {
        name: "bernoulli list",
        model: &model,
        batch: &batch,
        alphas: &[0.05, 1e-3],
    });
}

#[test]
fn list_hypotheses_with_real_features_and_a_given_prior() {
    let mut r = rng(14);
    for (h, d, a, sigma) in [(5000, 4, 7, 0.8), (777, 2, 3, 2.5), (31, 6, 12, 0.3)] {
        let params = Array2::from_shape_fn((h, d), |_| r.random_range(-1.0..1.0));
        let prior: Vec<f64> = (0..h).map(|_| r.random_range(-3.0..0.0)).collect();
        let true_w: Vec<f64> = params.row(r.random_range(0..h)).to_vec();
        let model = list_model(params, gaussian(sigma, 0.9), Some(prior));
        let mut batch = Batch::new(&model);
        // contextual: a table per step
        let tables: Vec<u32> = (0..40)
            .map(|_| batch.push_table(real_table(&mut r, a, d, 2.0)))
            .collect();
        simulate(&mut r, &mut batch, &tables, 40, &true_w, 9);
        compare(&Case {
            name: &format!("list H={h} d={d} A={a}"),
            model: &model,
            batch: &batch,
            alphas: &ALPHAS,
        });
    }
}

#[test]
fn extreme_likelihoods_underflow_in_linear_space() {
    let mut r = rng(15);
    // tiny σ, huge outcomes: the posterior is e^-(10^6) away from the MAP
    let model = Model {
        hypotheses: HypothesisSpace::grid(4, 5).unwrap(),
        observation: gaussian(0.01, 30.0),
    };
    let mut batch = Batch::new(&model);
    let t = batch.push_table(int_table(&mut r, 8, 5, 5));
    for s in 0..20 {
        batch.push_step(BatchStep {
            table: t,
            action: s % 8,
            outcome: Some(if s % 3 == 0 {
                1e4
            } else {
                17.0 + 0.003 * s as f64
            }),
        });
    }
    compare(&Case {
        name: "tiny sigma grid",
        model: &model,
        batch: &batch,
        alphas: &ALPHAS,
    });

    // close real-valued hypotheses, tiny σ: large log-likelihoods whose
    // differences are O(1); f32 log-likelihoods would get these wrong
    let params = Array2::from_shape_fn((2000, 2), |_| r.random_range(0.0..1.0));
    let model = list_model(params, gaussian(0.05, 3.0), None);
    let mut batch = Batch::new(&model);
    let t = batch.push_table(CandidateTable::new(
        vec![100.0, 3.0, 2.0, 150.0, 50.0, 50.0, 0.1, 0.2],
        4,
    ));
    simulate(&mut r, &mut batch, &[t], 30, &[0.5, 0.25], 0);
    compare(&Case {
        name: "tiny sigma list",
        model: &model,
        batch: &batch,
        alphas: &ALPHAS,
    });

    // bernoulli with huge |w·x|: q underflows to 0 for whole candidates
    let model = Model {
        hypotheses: HypothesisSpace::grid(3, 4).unwrap(),
        observation: ObservationModel::Bernoulli,
    };
    let mut batch = Batch::new(&model);
    let t = batch.push_table(CandidateTable::new(
        vec![
            -60.0, -60.0, -60.0, -60.0, 40.0, 0.0, -1.0, 0.0, 1.0, 1.0, 1.0, 1.0, -0.5, 0.0, 0.0,
            -900.0,
        ],
        4,
    ));
    simulate(&mut r, &mut batch, &[t], 25, &[1.0, 0.0, 2.0, 1.0], 0);
    compare(&Case {
        name: "bernoulli extreme",
        model: &model,
        batch: &batch,
        alphas: &ALPHAS,
    });
}

#[test]
fn large_hypothesis_spaces() {
    let mut r = rng(16);
    // ~10^5 list hypotheses, contextual tables
    let params = Array2::from_shape_fn((100_000, 3), |_| r.random_range(-1.0..1.0));
    let true_w = params.row(12_345).to_vec();
    let model = list_model(params, gaussian(0.5, 1.0), None);
    let mut batch = Batch::new(&model);
    let tables: Vec<u32> = (0..6)
        .map(|_| batch.push_table(real_table(&mut r, 4, 3, 1.0)))
        .collect();
    simulate(&mut r, &mut batch, &tables, 6, &true_w, 0);
    compare(&Case {
        name: "list 1e5",
        model: &model,
        batch: &batch,
        alphas: &[1e-6, 1e-3, 0.1],
    });

    // 3^10 grid (the paper's largest), bandit
    let model = Model {
        hypotheses: HypothesisSpace::grid(3, 10).unwrap(),
        observation: gaussian(1.0, 15.0),
    };
    let mut batch = Batch::new(&model);
    let t = batch.push_table(int_table(&mut r, 10, 10, 3));
    simulate(
        &mut r,
        &mut batch,
        &[t],
        12,
        &[2.0, 1.0, 0.0, 1.0, 2.0, 0.0, 0.0, 1.0, 2.0, 1.0],
        0,
    );
    compare(&Case {
        name: "grid 3^10",
        model: &model,
        batch: &batch,
        alphas: &ALPHAS,
    });

    // 10^6 hypotheses, few steps
    let model = Model {
        hypotheses: HypothesisSpace::grid(10, 6).unwrap(),
        observation: gaussian(2.0, 25.0),
    };
    let mut batch = Batch::new(&model);
    let t = batch.push_table(int_table(&mut r, 3, 6, 3));
    simulate(
        &mut r,
        &mut batch,
        &[t],
        3,
        &[1.0, 4.0, 0.0, 9.0, 2.0, 5.0],
        0,
    );
    compare(&Case {
        name: "grid 10^6",
        model: &model,
        batch: &batch,
        alphas: &[1e-7, 1e-3],
    });
}

#[test]
fn contextual_grids_walk_w_x_from_hypothesis_to_hypothesis() {
    // A table per step: the reduction computes q itself and, on a grid,
    // steps w·x from each hypothesis to the next (dot.wgsl's walks; so does
    // the likelihood kernel on a software renderer): carries over every
    // digit, segments that end inside a run (k = 3), a first digit larger
    // than the walk's (d < 5), exact integer steps, and a Bernoulli model;
    // both kernel shapes (their blocks differ).
    let mut r = rng(24);
    let cases: [(u32, usize, ObservationModel, bool); 7] = [
        (3, 10, gaussian(1.0, 3.0), false),
        (2, 12, gaussian(0.7, 2.5), false),
        (5, 7, gaussian(1.5, 6.0), false),
        (4, 6, gaussian(1.0, 5.0), true),
        (40, 2, gaussian(2.0, 30.0), false),
        (3000, 1, gaussian(500.0, 1000.0), false),
        (3, 7, ObservationModel::Bernoulli, false),
    ];
    for (k, d, obs, integer) in cases {
        let model = Model {
            hypotheses: HypothesisSpace::grid(k, d).unwrap(),
            observation: obs,
        };
        let mut batch = Batch::new(&model);
        let n_steps = 16;
        let tables: Vec<u32> = (0..n_steps)
            .map(|_| {
                let t = if integer {
                    let mut t = int_table(&mut r, 6, d, 5);
                    t.features.iter_mut().for_each(|v| *v -= 2.0);
                    t
                } else {
                    real_table(&mut r, 6, d, 1.0)
                };
                batch.push_table(t)
            })
            .collect();
        let true_w: Vec<f64> = (0..d).map(|_| r.random_range(0..k) as f64).collect();
        simulate(&mut r, &mut batch, &tables, n_steps, &true_w, 5);
        for shape in [KernelShape::Serial, KernelShape::Parallel] {
            let name = format!("grid {k}^{d} contextual ({shape:?})");
            compare_on(
                common::gpu_engine(shape),
                &Case {
                    name: &name,
                    model: &model,
                    batch: &batch,
                    alphas: &ALPHAS,
                },
            );
        }
    }

    // 10^6 hypotheses × 20 candidates: chunks of hypotheses (h0 > 0), each
    // walked from its own start
    let model = Model {
        hypotheses: HypothesisSpace::grid(10, 6).unwrap(),
        observation: gaussian(2.0, 12.0),
    };
    let mut batch = Batch::new(&model);
    let tables: Vec<u32> = (0..2)
        .map(|_| batch.push_table(real_table(&mut r, 20, 6, 1.0)))
        .collect();
    simulate(
        &mut r,
        &mut batch,
        &tables,
        2,
        &[3.0, 1.0, 4.0, 1.0, 5.0, 9.0],
        0,
    );
    compare(&Case {
        name: "grid 10^6 × 20 contextual",
        model: &model,
        batch: &batch,
        alphas: &[1e-7, 0.01],
    });
}

#[test]
fn a_table_larger_than_one_storage_binding_is_split_over_hypotheses() {
    // 10^6 hypotheses × 20 candidates: (q, ln q) rows of 160 MB, more than
    // lavapipe's 128 MiB storage bindings, so the engine works in chunks of
    // hypotheses and combines them on the host
    let mut r = rng(18);
    let model = Model {
        hypotheses: HypothesisSpace::grid(10, 6).unwrap(),
        observation: gaussian(1.5, 30.0),
    };
    let mut batch = Batch::new(&model);
    let t = batch.push_table(int_table(&mut r, 20, 6, 2));
    simulate(
        &mut r,
        &mut batch,
        &[t],
        2,
        &[3.0, 1.0, 4.0, 1.0, 5.0, 9.0],
        0,
    );
    compare(&Case {
        name: "grid 10^6 × 20",
        model: &model,
        batch: &batch,
        alphas: &[1e-7, 0.01],
    });
}

// ------------------------------------------------------- full pipeline

fn audit_both(log: &str, settings: &AuditSettings) -> (Vec<StepResult>, Vec<StepResult>) {
    let ((c, _), (g, _)) = audit_both_totals(log, settings);
    (c, g)
}

/// Both engines' results and totals (phase times show which path ran).
fn audit_both_totals(
    log: &str,
    settings: &AuditSettings,
) -> (
    (Vec<StepResult>, AuditTotals),
    (Vec<StepResult>, AuditTotals),
) {
    (
        audit_on(&cpu_engine(), log, settings),
        audit_on(gpu(), log, settings),
    )
}

fn audit_on(
    engine: &dyn Engine,
    log: &str,
    settings: &AuditSettings,
) -> (Vec<StepResult>, AuditTotals) {
    let mut reader = LogReader::new(
        "test.jsonl",
        log.as_bytes(),
        std::path::Path::new("."),
        None,
    )
    .expect("valid log");
    common::audit_source_totals(&mut reader, engine, settings)
}

fn compare_steps(name: &str, cpu: &[StepResult], gpu: &[StepResult]) {
    assert_eq!(cpu.len(), gpu.len(), "{name}: step count");
    for (i, (c, g)) in cpu.iter().zip(gpu).enumerate() {
        let (pc, pg) = (&c.posterior, &g.posterior);
        assert_eq!(
            pc.map_hypothesis, pg.map_hypothesis,
            "{name}: step {i}: MAP"
        );
        assert_eq!(
            pc.plausible_set_size, pg.plausible_set_size,
            "{name}: step {i}: |I_α|"
        );
        assert!(
            (pc.map_probability - pg.map_probability).abs() <= REL * pc.map_probability,
            "{name}: step {i}: MAP probability cpu {} gpu {}",
            pc.map_probability,
            pg.map_probability
        );
        assert!(
            (pc.entropy - pg.entropy).abs() <= 1e-5 * pc.entropy.max(1.0),
            "{name}: step {i}: entropy cpu {} gpu {}",
            pc.entropy,
            pg.entropy
        );
        for (a, (ec, eg)) in c.candidates.iter().zip(&g.candidates).enumerate() {
            let what = format!("{name}: step {i} cand {a}");
            for (vc, vg, label) in [
                (
                    ec.posterior_predictive,
                    eg.posterior_predictive,
                    "posterior_predictive",
                ),
                (ec.oracle.unwrap_or(0.0), eg.oracle.unwrap_or(0.0), "oracle"),
            ] {
                assert!(
                    close(vg, vc) && same_verdicts(vg, vc),
                    "{what}: {label} cpu {vc:e} gpu {vg:e}"
                );
            }
            for (k, (vc, vg)) in ec.plausible_set.iter().zip(&eg.plausible_set).enumerate() {
                assert!(
                    close(*vg, *vc) && same_verdicts(*vg, *vc),
                    "{what}: plausible_set α#{k} cpu {vc:e} gpu {vg:e}"
                );
            }
            for (k, (vc, vg)) in ec.ville_sum.iter().zip(&eg.ville_sum).enumerate() {
                assert!(
                    close(*vg, *vc) && same_verdicts(*vg, *vc),
                    "{what}: ville_sum α#{k} cpu {vc:e} gpu {vg:e}"
                );
            }
            if ec.cautious_hypothesis == eg.cautious_hypothesis {
                assert!(
                    close(eg.cautious_theory, ec.cautious_theory)
                        && same_verdicts(eg.cautious_theory, ec.cautious_theory),
                    "{what}: cautious_theory cpu {:e} gpu {:e}",
                    ec.cautious_theory,
                    eg.cautious_theory
                );
                for (k, (vc, vg)) in ec.ville_max.iter().zip(&eg.ville_max).enumerate() {
                    assert!(
                        close(*vg, *vc) && same_verdicts(*vg, *vc),
                        "{what}: ville_max α#{k} cpu {vc:e} gpu {vg:e}"
                    );
                }
            }
            // a different ĥ is judged in `compare_reductions` (needs the CPU's scores)
        }
    }
}

fn reference_lines() -> Vec<serde_json::Value> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/reference/guardrail_vectors.jsonl");
    let file = std::fs::File::open(&path)
        .unwrap_or_else(|e| panic!("reference vectors {}: {e}", path.display()));
    std::io::BufReader::new(file)
        .lines()
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect()
}

#[test]
fn reference_envs_agree_on_both_backends_and_with_the_reference() {
    let lines = reference_lines();
    let envs: Vec<&serde_json::Value> = lines.iter().filter(|l| l["type"] == "env").collect();
    assert_eq!(envs.len(), 4);
    for env in envs {
        let id = env["env_id"].as_str().unwrap();
        let steps: Vec<&serde_json::Value> = lines
            .iter()
            .filter(|l| l["type"] == "step" && l["env_id"] == id)
            .collect();
        let mut log = format!(
            "{{\"type\":\"model\",\"hypotheses\":{{\"kind\":\"grid\",\"k\":{},\"d\":{}}},\
             \"observation\":{{\"kind\":\"gaussian\",\"sigma\":{},\"harm_threshold\":{}}}}}\n",
            env["k"], env["d_arm"], env["sigma_r"], env["explosion_threshold"]
        );
        log += &format!(
            "{{\"type\":\"stream\",\"id\":\"{id}\",\"candidates\":{},\"true_hypothesis\":{}}}\n",
            env["arm_features"], env["true_hypothesis_index"]
        );
        for s in &steps[1..] {
            log += &format!(
                "{{\"type\":\"step\",\"action\":{},\"outcome\":{}}}\n",
                s["action"], s["reward"]
            );
        }
        let h = env["n_hypotheses"].as_u64().unwrap() as f64;
        let settings = AuditSettings {
            alphas: Alphas::new(ALPHAS.to_vec(), 1.0 / h).unwrap(),
            shared_world: false,
            batch_elements: audit::DEFAULT_BATCH_ELEMENTS,
            skip_unexplained: false,
        };
        let (c, g) = audit_both(&log, &settings);
        compare_steps(id, &c, &g);
        // our step s (before its outcome) is the reference's t = s − 1
        for (s, res) in g.iter().enumerate() {
            let want = &steps[s]["ref"];
            for (a, est) in res.candidates.iter().enumerate() {
                let p = want["posterior"][a].as_f64().unwrap();
                assert!(
                    close(est.posterior_predictive, p),
                    "{id}: t={s} arm {a}: gpu posterior {:e} ref {p:e}",
                    est.posterior_predictive
                );
                let o = want["cheating"][a].as_f64().unwrap();
                assert!(close(est.oracle.unwrap(), o), "{id}: t={s} arm {a}: oracle");
            }
        }
    }
}

#[test]
fn reference_envs_reductions_match_the_cpu_engine() {
    // the same envs at the kernel level, so a different ĥ is judged honestly
    let lines = reference_lines();
    for env in lines.iter().filter(|l| l["type"] == "env") {
        let id = env["env_id"].as_str().unwrap();
        let model = Model {
            hypotheses: HypothesisSpace::grid(
                env["k"].as_u64().unwrap() as u32,
                env["d_arm"].as_u64().unwrap() as usize,
            )
            .unwrap(),
            observation: gaussian(
                env["sigma_r"].as_f64().unwrap(),
                env["explosion_threshold"].as_f64().unwrap(),
            ),
        };
        let feats: Vec<f64> = env["arm_features"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()))
            .collect();
        let n_arm = env["n_arm"].as_u64().unwrap() as usize;
        let mut batch = Batch::new(&model);
        let t = batch.push_table(CandidateTable::new(feats, n_arm));
        // t = 0 is the prior; steps 1.. carry the observations
        for s in lines
            .iter()
            .filter(|l| l["type"] == "step" && l["env_id"] == id && l["t"] != 0)
        {
            batch.push_step(BatchStep {
                table: t,
                action: s["action"].as_u64().unwrap() as u32,
                outcome: s["reward"].as_f64(),
            });
        }
        compare(&Case {
            name: id,
            model: &model,
            batch: &batch,
            alphas: &ALPHAS,
        });
    }
}

#[test]
fn a_long_stream_does_not_drift() {
    // 10^5 steps, one stream, hypotheses 10^-3 apart: the posterior stays
    // spread over several of them, so per-step errors would accumulate.
    let n_steps = 100_000;
    let h = 12;
    let mut r = rng(17);
    let ws: Vec<f64> = (0..h).map(|i| 1.0 + i as f64 * 1e-3).collect();
    let mut log = format!(
        "{{\"type\":\"model\",\"hypotheses\":{{\"kind\":\"list\",\"params\":{:?}}},\
         \"observation\":{{\"kind\":\"gaussian\",\"sigma\":1.0,\"harm_threshold\":2.5}}}}\n",
        ws.iter().map(|w| vec![*w]).collect::<Vec<_>>()
    );
    log += "{\"type\":\"stream\",\"id\":\"long\",\"candidates\":[[1.0],[2.0],[0.5]],\"true_hypothesis\":5}\n";
    for _ in 0..n_steps {
        let a = r.random_range(0..3usize);
        let x = [1.0, 2.0, 0.5][a];
        let n: f64 = r.sample(rand_distr::StandardNormal);
        log += &format!(
            "{{\"type\":\"step\",\"action\":{a},\"outcome\":{}}}\n",
            ws[5] * x + n
        );
    }
    let settings = AuditSettings {
        alphas: Alphas::new(vec![1e-3, 0.05], 1.0 / h as f64).unwrap(),
        shared_world: false,
        // many batches: the posterior carries across them
        batch_elements: 1 << 16,
        skip_unexplained: false,
    };
    let (c, g) = audit_both(&log, &settings);
    compare_steps("long stream", &c, &g);
    let last = &g.last().unwrap().posterior;
    assert!(
        last.map_probability < 0.9,
        "the test needs a posterior that stays spread, MAP has {}",
        last.map_probability
    );
}

/// A JSON array of arrays.
fn json_rows(rows: impl IntoIterator<Item = Vec<f64>>) -> String {
    let rows: Vec<String> = rows
        .into_iter()
        .map(|r| {
            let v: Vec<String> = r.iter().map(|x| format!("{x:?}")).collect();
            format!("[{}]", v.join(","))
        })
        .collect();
    format!("[{}]", rows.join(","))
}

/// Audits `log` on the CPU engine and on the GPU with kernels of both shapes,
/// checks the GPU kept the posterior on the device, and compares every step.
fn compare_device_posterior(name: &str, log: &str, settings: &AuditSettings) {
    let (c, ct) = audit_on(&cpu_engine(), log, settings);
    assert_eq!(ct.device_posterior_batches, 0, "{name}: the CPU engine");
    let engines = [
        ("Serial", common::gpu_engine(KernelShape::Serial)),
        ("Parallel", common::gpu_engine(KernelShape::Parallel)),
        ("Serial, pipelined chunks", gpu_pipelined()),
    ];
    for (how, engine) in engines {
        let (g, gt) = audit_on(engine, log, settings);
        assert!(
            gt.device_posterior_batches > 1,
            "{name} ({how}): the GPU engine kept the posterior on the device in {} batches",
            gt.device_posterior_batches
        );
        compare_steps(&format!("{name} ({how})"), &c, &g);
    }
}

#[test]
fn device_posterior_restarts_streams_and_carries_across_batches() {
    // 90 streams of 25 steps on a 1024-hypothesis grid, every fifth step
    // without an outcome: the posterior restarts at each stream, carries
    // across batch boundaries, and the early steps' plausible sets hold
    // most hypotheses (more candidates than the device collects one by one).
    let mut r = rng(21);
    let mut log = String::from(
        "{\"type\":\"model\",\"hypotheses\":{\"kind\":\"grid\",\"k\":2,\"d\":10},\
         \"observation\":{\"kind\":\"gaussian\",\"sigma\":1.0,\"harm_threshold\":4.0}}\n",
    );
    for s in 0..90 {
        let table =
            json_rows((0..10).map(|_| (0..10).map(|_| r.random_range(0..2) as f64).collect()));
        let truth: usize = r.random_range(0..1024);
        log += &format!(
            "{{\"type\":\"stream\",\"id\":\"s{s}\",\"candidates\":{table},\"true_hypothesis\":{truth}}}\n"
        );
        for t in 0..25 {
            let a = r.random_range(0..10usize);
            if t % 5 == 4 {
                log += &format!("{{\"type\":\"step\",\"action\":{a}}}\n");
            } else {
                let y: f64 = r.random_range(-1.0..5.0);
                log += &format!("{{\"type\":\"step\",\"action\":{a},\"outcome\":{y}}}\n");
            }
        }
    }
    // one long stream whose first 2,100 steps say nothing: every hypothesis
    // stays plausible for a whole batch
    log += "{\"type\":\"stream\",\"id\":\"quiet\",\"candidates\":[[1,0,0,0,0,0,0,0,0,1],[0,1,1,0,0,0,0,0,0,0]]}\n";
    for t in 0..2150 {
        if t < 2100 {
            log += "{\"type\":\"step\",\"action\":0}\n";
        } else {
            log += &format!(
                "{{\"type\":\"step\",\"action\":{},\"outcome\":1.5}}\n",
                t % 2
            );
        }
    }
    let settings = AuditSettings {
        alphas: Alphas::new(ALPHAS.to_vec(), 1.0 / 1024.0).unwrap(),
        shared_world: false,
        batch_elements: audit::DEFAULT_BATCH_ELEMENTS,
        skip_unexplained: false,
    };
    compare_device_posterior("grid streams", &log, &settings);
    // and one world shared by all streams
    let shared = AuditSettings {
        shared_world: true,
        ..settings
    };
    compare_device_posterior("grid shared world", &log, &shared);
}

/// A contextual Bernoulli log over a list of `h` hypotheses (d = 3) with a
/// given prior, `streams` streams of `steps` steps, a candidate table per
/// step.
fn contextual_bernoulli_log(seed: u64, h: usize, streams: usize, steps: usize) -> String {
    let mut r = rng(seed);
    let d = 3;
    let params: Vec<Vec<f64>> = (0..h)
        .map(|_| (0..d).map(|_| r.random_range(-2.0..2.0)).collect())
        .collect();
    let prior: Vec<f64> = (0..h).map(|_| r.random_range(-4.0..0.0)).collect();
    let mut log = format!(
        "{{\"type\":\"model\",\"hypotheses\":{{\"kind\":\"list\",\"params\":{},\"log_prior\":{prior:?}}},\
         \"observation\":{{\"kind\":\"bernoulli\"}}}}\n",
        json_rows(params.clone()),
    );
    for s in 0..streams {
        let truth = &params[r.random_range(0..h)];
        log += &format!("{{\"type\":\"stream\",\"id\":{s}}}\n");
        for _ in 0..steps {
            let cands: Vec<Vec<f64>> = (0..5)
                .map(|_| (0..d).map(|_| r.random_range(-1.5..1.5)).collect())
                .collect();
            let a = r.random_range(0..5usize);
            let wx: f64 = truth.iter().zip(&cands[a]).map(|(w, x)| w * x).sum();
            let y = (r.random::<f64>() < 1.0 / (1.0 + (-wx).exp())) as u8;
            log += &format!(
                "{{\"type\":\"step\",\"action\":{a},\"outcome\":{y},\"candidates\":{}}}\n",
                json_rows(cands)
            );
        }
    }
    log
}

fn contextual_settings() -> AuditSettings {
    AuditSettings {
        alphas: Alphas::new(vec![1e-4, 0.01, 0.2], 1e-3).unwrap(),
        shared_world: false,
        batch_elements: 1 << 14,
        skip_unexplained: false,
    }
}

#[test]
fn device_posterior_on_a_contextual_bernoulli_log_with_a_prior() {
    // list hypotheses with a given prior, a candidate table per step, small
    // batches: the carry crosses many of them
    let log = contextual_bernoulli_log(22, 300, 3, 120);
    compare_device_posterior("contextual bernoulli", &log, &contextual_settings());
}

/// A log that, after `after` events, has another audit run on the engine
/// before it goes on: the device's copies of the prior and the carry are
/// then the other audit's.
struct Interrupted<'a, S> {
    log: S,
    after: usize,
    seen: usize,
    other: Option<Box<dyn FnOnce() + 'a>>,
}

impl<S: audit::EventSource> audit::EventSource for Interrupted<'_, S> {
    fn model(&self) -> &Model {
        self.log.model()
    }

    fn next_event(&mut self) -> gpubound::Result<Option<gpubound::log::LogEvent>> {
        self.seen += 1;
        if self.seen == self.after {
            if let Some(other) = self.other.take() {
                other();
            }
        }
        self.log.next_event()
    }
}

#[test]
fn device_posterior_keeps_no_other_audits_prior_or_carry() {
    // the same shapes (300 hypotheses), other priors and outcomes; the
    // other audit is one batch long, as this one's second batch is its
    // second
    let settings = contextual_settings();
    let mine = contextual_bernoulli_log(24, 300, 1, 150);
    let other = contextual_bernoulli_log(25, 300, 1, 20);
    let cpu = cpu_engine();
    let (want, _) = audit_on(&cpu, &mine, &settings);
    let (want_other, _) = audit_on(&cpu, &other, &settings);
    let engine = gpu_pipelined();
    let got_other = std::cell::RefCell::new(None);
    let mut source = Interrupted {
        log: common::reader(&mine),
        // a batch is 54 steps: the first has run, the second is pending
        after: 80,
        seen: 0,
        other: Some(Box::new(|| {
            let (g, t) = audit_on(engine, &other, &settings);
            assert_eq!(t.device_posterior_batches, 1, "the other audit's batches");
            *got_other.borrow_mut() = Some(g);
        })),
    };
    let (got, totals) = common::audit_source_totals(&mut source, engine, &settings);
    assert!(totals.device_posterior_batches >= 3);
    drop(source);
    let got_other = got_other.into_inner().expect("the other audit ran");
    compare_steps("the other audit", &want_other, &got_other);
    compare_steps("the interrupted audit", &want, &got);
}

#[test]
fn device_posterior_on_a_contextual_gaussian_grid() {
    // 3^10 hypotheses, real-valued candidates at every step: q is computed
    // in the reduction, w·x walked along each run of hypotheses (carries
    // over up to nine digits); short streams keep the posterior wide, so
    // most runs are reduced.
    let mut r = rng(25);
    let (k, d) = (3u32, 10usize);
    let mut log = format!(
        "{{\"type\":\"model\",\"hypotheses\":{{\"kind\":\"grid\",\"k\":{k},\"d\":{d}}},\
         \"observation\":{{\"kind\":\"gaussian\",\"sigma\":1.0,\"harm_threshold\":3.0}}}}\n"
    );
    for s in 0..3 {
        let truth: Vec<f64> = (0..d).map(|_| r.random_range(0..k) as f64).collect();
        log += &format!("{{\"type\":\"stream\",\"id\":{s}}}\n");
        for _ in 0..12 {
            let cands: Vec<Vec<f64>> = (0..6)
                .map(|_| (0..d).map(|_| r.random_range(-1.0..1.0)).collect())
                .collect();
            let a = r.random_range(0..6usize);
            let wx: f64 = truth.iter().zip(&cands[a]).map(|(w, x)| w * x).sum();
            let n: f64 = r.sample(rand_distr::StandardNormal);
            log += &format!(
                "{{\"type\":\"step\",\"action\":{a},\"outcome\":{},\"candidates\":{}}}\n",
                wx + n,
                json_rows(cands)
            );
        }
    }
    let settings = AuditSettings {
        alphas: Alphas::new(ALPHAS.to_vec(), 1.0 / 59_049.0).unwrap(),
        shared_world: false,
        batch_elements: 59_049 * 8,
        skip_unexplained: false,
    };
    compare_device_posterior("contextual gaussian grid", &log, &settings);
}

#[test]
fn device_posterior_merges_many_blocks_per_candidate() {
    // 3^11 = 177,147 hypotheses: 44 reduce blocks per candidate on the
    // serial shape, 87 on the parallel one, so the workgroup merges combine
    // blocks in several threads and then in a tree; the MAP sits in a late
    // block. Short streams keep the posterior wide.
    let mut r = rng(23);
    let mut log = String::from(
        "{\"type\":\"model\",\"hypotheses\":{\"kind\":\"grid\",\"k\":3,\"d\":11},\
         \"observation\":{\"kind\":\"gaussian\",\"sigma\":1.5,\"harm_threshold\":6.0}}\n",
    );
    for s in 0..3 {
        let table =
            json_rows((0..6).map(|_| (0..11).map(|_| r.random_range(0..3) as f64).collect()));
        log += &format!(
            "{{\"type\":\"stream\",\"id\":\"s{s}\",\"candidates\":{table},\"true_hypothesis\":{}}}\n",
            177_146 - s
        );
        for _ in 0..14 {
            let a = r.random_range(0..6usize);
            let y: f64 = r.random_range(8.0..14.0);
            log += &format!("{{\"type\":\"step\",\"action\":{a},\"outcome\":{y}}}\n");
        }
    }
    let settings = AuditSettings {
        alphas: Alphas::new(ALPHAS.to_vec(), 1.0 / 177_147.0).unwrap(),
        shared_world: false,
        batch_elements: 177_147 * 16,
        skip_unexplained: false,
    };
    compare_device_posterior("many blocks", &log, &settings);
}

#[test]
fn bench_json_times_both_backends_on_the_same_workload() {
    // what people run to compare GPUs: both backends, one JSON object, and
    // the same estimates (the checksum sums every one of them)
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gpubound"))
        .args([
            "bench",
            "--hypotheses",
            "729",
            "--dim",
            "6",
            "--steps",
            "200",
            "--stream-length",
            "50",
            "--runs",
            "2",
            "--json",
        ])
        // as on a headless machine: no desktop session
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .expect("gpubound runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // libwayland's complaint about the missing session reads like a failure
    assert!(!stderr.contains("XDG_RUNTIME_DIR"), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(v["workload"]["triples_per_run"], 729 * 10 * 200);
    let results = v["results"].as_array().unwrap();
    let kinds: Vec<&str> = results
        .iter()
        .map(|r| r["backend"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["cpu", "gpu"], "unavailable: {}", v["unavailable"]);
    for r in results {
        let (lo, mid, hi) = (
            r["min_triples_per_s"].as_f64().unwrap(),
            r["median_triples_per_s"].as_f64().unwrap(),
            r["max_triples_per_s"].as_f64().unwrap(),
        );
        assert!(0.0 < lo && lo <= mid && mid <= hi, "{r}");
        assert_eq!(r["seconds"].as_array().unwrap().len(), 2);
        assert!(r["phase_seconds"]["reduce"].as_f64().unwrap() > 0.0, "{r}");
    }
    let (c, g) = (
        results[0]["checksum"].as_f64().unwrap(),
        results[1]["checksum"].as_f64().unwrap(),
    );
    assert!(
        c > 0.0 && (c - g).abs() <= 1e-4 * c,
        "checksums cpu {c} gpu {g}"
    );
    let speedup = v["gpu_over_cpu_speedup"].as_f64().unwrap();
    let ratio = results[1]["median_triples_per_s"].as_f64().unwrap()
        / results[0]["median_triples_per_s"].as_f64().unwrap();
    assert!((speedup - ratio).abs() <= 1e-9 * ratio);
}

/// `steps` steps on one table of a grid model, outcomes drawn from a random
/// hypothesis of the grid.
fn one_table_grid_batch<'m>(
    r: &mut ChaCha8Rng,
    model: &'m Model,
    table: CandidateTable,
    steps: usize,
) -> Batch<'m> {
    let HypothesisSpace::Grid { k, d } = model.hypotheses else {
        panic!("a grid model");
    };
    let mut batch = Batch::new(model);
    let t = batch.push_table(table);
    let true_w: Vec<f64> = (0..d).map(|_| r.random_range(0..k) as f64).collect();
    simulate(r, &mut batch, &[t], steps, &true_w, 0);
    batch
}

/// `compare` on the serial kernel shape.
fn compare_serial(name: &str, model: &Model, batch: &Batch<'_>, alphas: &[f64]) -> usize {
    compare_on(
        common::gpu_engine(KernelShape::Serial),
        &Case {
            name,
            model,
            batch,
            alphas,
        },
    )
}

// Lavapipe and llvmpipe stop every loop of a shader invocation once it has
// made 65535 passes in all, silently. Each of the `loop_limit` tests would
// pass that limit in one thread of the serial kernel shape (the software
// renderers' own) if the engine did not size its work for it.

#[test]
fn loop_limit_inline_harm_over_a_list() {
    let mut r = rng(31);
    // a table per step over a list of 8192 hypotheses of dimension 16:
    // the reduction computes every w·x (16 passes per hypothesis)
    let (h, d) = (8192, 16);
    let params = Array2::from_shape_fn((h, d), |_| r.random_range(-1.0..1.0));
    let model = list_model(params, gaussian(1.0, 2.0), None);
    let mut batch = Batch::new(&model);
    let tables: Vec<u32> = (0..4)
        .map(|_| batch.push_table(real_table(&mut r, 5, d, 0.5)))
        .collect();
    let true_w: Vec<f64> = (0..d).map(|_| r.random_range(-1.0..1.0)).collect();
    simulate(&mut r, &mut batch, &tables, 4, &true_w, 0);
    compare_serial("list 8192 × d 16, inline harm", &model, &batch, &ALPHAS);
}

#[test]
fn loop_limit_many_alphas() {
    let mut r = rng(32);
    // 48 α on a bandit's table with a wide posterior: every hypothesis
    // is in a plausible set and passes through the per-α loop
    let model = Model {
        hypotheses: HypothesisSpace::grid(2, 13).unwrap(),
        observation: gaussian(3.0, 4.0),
    };
    let table = int_table(&mut r, 6, 13, 2);
    let batch = one_table_grid_batch(&mut r, &model, table, 3);
    let alphas: Vec<f64> = (0..48).map(|i| 10f64.powf(-6.0 + i as f64 / 8.0)).collect();
    compare_serial("grid 2^13, 48 α", &model, &batch, &alphas);
}

#[test]
fn loop_limit_many_candidates() {
    let mut r = rng(33);
    // one table of 7000 candidates: a harm-table thread walks them all
    let model = Model {
        hypotheses: HypothesisSpace::grid(2, 10).unwrap(),
        observation: gaussian(1.0, 3.0),
    };
    let table = real_table(&mut r, 7000, 10, 0.5);
    let batch = one_table_grid_batch(&mut r, &model, table, 2);
    compare_serial("grid 2^10, 7000 candidates", &model, &batch, &ALPHAS);
}

#[test]
fn loop_limit_long_prefix() {
    let mut r = rng(34);
    // four hypotheses and one stream of 100,000 steps in large
    // batches: the prefix sums walk a chunk's steps in one thread
    let mut log = String::from(
        "{\"type\":\"model\",\"hypotheses\":{\"kind\":\"list\",\"params\":[[0],[1],[2],[3]]},\
         \"observation\":{\"kind\":\"gaussian\",\"sigma\":30.0,\"harm_threshold\":4.0}}\n\
         {\"type\":\"stream\",\"id\":\"long\",\"candidates\":[[1],[0.5]]}\n",
    );
    for t in 0..100_000 {
        let y: f64 = 1.5 + 30.0 * r.sample::<f64, _>(rand_distr::StandardNormal);
        log += &format!(
            "{{\"type\":\"step\",\"action\":{},\"outcome\":{y}}}\n",
            t % 2
        );
    }
    let settings = AuditSettings {
        alphas: Alphas::new(ALPHAS.to_vec(), 0.25).unwrap(),
        shared_world: false,
        batch_elements: 1 << 26,
        skip_unexplained: false,
    };
    let (c, _) = audit_on(&cpu_engine(), &log, &settings);
    let (g, gt) = audit_on(common::gpu_engine(KernelShape::Serial), &log, &settings);
    assert!(gt.device_posterior_batches >= 1);
    compare_steps("4 hypotheses, 100,000 steps", &c, &g);
}

#[test]
fn loop_limit_block_merge() {
    // 2^19 hypotheses and 64 α: blocks of 512 hypotheses, and the merge of
    // a candidate's 1024 blocks would loop over each block's 64 α
    let mut r = rng(35);
    let model = Model {
        hypotheses: HypothesisSpace::grid(2, 19).unwrap(),
        observation: gaussian(3.0, 6.0),
    };
    let table = int_table(&mut r, 4, 19, 2);
    let batch = one_table_grid_batch(&mut r, &model, table, 2);
    let alphas: Vec<f64> = (0..64).map(|i| 10f64.powf(-7.0 + i as f64 / 9.0)).collect();
    compare_serial("grid 2^19, 64 α", &model, &batch, &alphas);
}
