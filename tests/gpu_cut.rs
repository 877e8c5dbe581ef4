//! The plausible set's cut on the GPU (gpubound issue 11, defect 2): the
//! hypotheses the kernels count as members of `I_α` are exactly those the
//! host's cut admits, on both kernel shapes. Like `tests/gpu.rs` these need a
//! wgpu adapter (lavapipe or llvmpipe) and run again under `WGPU_BACKEND=gl`.

mod common;

use gpubound::audit::{self, AuditSettings, StepResult};
use gpubound::engine::cpu::CpuEngine;
use gpubound::engine::gpu::KernelShape;
use gpubound::estimators::Alphas;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use common::gpu_engine;

/// The stream of the issue: the last step's plausible set (|I_α| = 159 at
/// α = 0.05/1024) ends with hypothesis 935 alone, the only member with
/// q = 0.977 for the action taken; the GPU left it out.
const EP16: &str = r#"{"hypotheses":{"d":10,"k":2,"kind":"grid"},"observation":{"harm_threshold":4.0,"kind":"gaussian","sigma":1.0},"type":"model"}
{"candidates":[[0,1,1,0,0,0,1,0,1,1],[0,1,0,1,1,0,0,1,1,1],[0,1,0,1,0,1,1,1,1,1],[1,1,1,0,0,0,0,1,1,1],[0,1,1,0,0,1,0,1,0,0],[0,0,0,1,0,1,0,1,1,1],[1,0,1,0,1,1,0,0,1,1],[0,1,0,1,1,0,1,0,0,1],[0,0,1,0,1,1,0,1,1,0],[0,1,1,0,1,0,0,0,1,1]],"id":"ep-10438","true_hypothesis":933,"type":"stream"}
{"type":"step","action":0,"outcome":1.7781723978350217}
{"type":"step","action":7,"outcome":2.8024741773349082}
{"type":"step","action":0,"outcome":1.8447965192154436}
{"type":"step","action":3,"outcome":5.138721652358385}
{"type":"step","action":2,"outcome":3.1437810253470166}
{"type":"step","action":2,"outcome":3.0369672715428857}
{"type":"step","action":2,"outcome":5.34798418991557}
{"type":"step","action":5,"outcome":1.4734632892191506}
{"type":"step","action":7,"outcome":4.357416828296692}
{"type":"step","action":5,"outcome":0.9988321534964937}
{"type":"step","action":2,"outcome":3.3690305611274014}
{"type":"step","action":5,"outcome":0.18895043315451}
{"type":"step","action":6,"outcome":3.6804100951778134}
{"type":"step","action":8,"outcome":2.9625410385778466}
{"type":"step","action":3,"outcome":6.087868760438578}
{"type":"step","action":3,"outcome":4.462427776745027}
"#;

/// The audit's α: δ = 0.05 at the uniform prior's floor 1/1024.
const EP16_ALPHA: f64 = 0.05 / 1024.0;

fn settings(alphas: &[f64], floor: f64) -> AuditSettings {
    AuditSettings {
        alphas: Alphas::new(alphas.to_vec(), floor).unwrap(),
        shared_world: false,
        batch_elements: audit::DEFAULT_BATCH_ELEMENTS,
        skip_unexplained: false,
    }
}

fn audit_on(
    engine: &dyn gpubound::engine::Engine,
    log: &str,
    s: &AuditSettings,
) -> Vec<StepResult> {
    common::audit_source(&mut common::reader(log), engine, s)
}

/// SPEC §5: estimates within 1e-5 relative where above 1e-6 (the GPU's q
/// is f32), within 1e-9 absolute below.
fn close(gpu: f64, cpu: f64) -> bool {
    let d = (gpu - cpu).abs();
    if cpu.abs() <= 1e-6 {
        return d <= 1e-9;
    }
    d <= 1e-5 * cpu.abs()
}

/// The same verdicts at C = 1e-3, 1e-2, 1e-1, except where the CPU's value
/// is within f32 rounding of C.
fn same_verdicts(gpu: f64, cpu: f64) -> bool {
    [1e-3, 1e-2, 1e-1]
        .iter()
        .all(|&c| (gpu > c) == (cpu > c) || (cpu - c).abs() <= 1e-6 * c)
}

/// Every step's `|I_α|` equal and every candidate's plausible-set bound
/// equal up to f32 rounding of q: a member left out or let in moves the
/// bound by a difference of q between hypotheses, far more. The other
/// estimators within `tests/gpu.rs`' tolerances (the cautious theory and
/// the Ville max where both picked the same ĥ: `tests/gpu.rs` judges a
/// different ĥ).
fn compare_steps(what: &str, cpu: &[StepResult], gpu: &[StepResult]) {
    assert_eq!(cpu.len(), gpu.len(), "{what}: steps");
    for (t, (c, g)) in cpu.iter().zip(gpu).enumerate() {
        let (pc, pg) = (&c.posterior, &g.posterior);
        assert_eq!(
            pc.plausible_set_size, pg.plausible_set_size,
            "{what}: step {t}: |I_α|"
        );
        assert_eq!(
            pc.map_hypothesis, pg.map_hypothesis,
            "{what}: step {t}: MAP"
        );
        common::close(
            pg.map_probability,
            pc.map_probability,
            1e-5,
            0.0,
            &format!("{what}: step {t}: MAP probability"),
        );
        common::close(
            pg.entropy,
            pc.entropy,
            1e-5,
            1e-5,
            &format!("{what}: step {t}: entropy"),
        );
        for (a, (ec, eg)) in c.candidates.iter().zip(&g.candidates).enumerate() {
            let at = format!("{what}: step {t} cand {a}");
            for (k, (vc, vg)) in ec.plausible_set.iter().zip(&eg.plausible_set).enumerate() {
                assert!(
                    close(*vg, *vc) && same_verdicts(*vg, *vc),
                    "{at}: plausible set α#{k}: cpu {vc:e} gpu {vg:e}"
                );
            }
            let mut others = vec![
                (
                    ec.posterior_predictive,
                    eg.posterior_predictive,
                    "posterior predictive",
                ),
                (ec.oracle.unwrap_or(0.0), eg.oracle.unwrap_or(0.0), "oracle"),
            ];
            others.extend(
                ec.ville_sum
                    .iter()
                    .zip(&eg.ville_sum)
                    .map(|(c, g)| (*c, *g, "ville_sum")),
            );
            if ec.cautious_hypothesis == eg.cautious_hypothesis {
                others.push((ec.cautious_theory, eg.cautious_theory, "cautious theory"));
                others.extend(
                    ec.ville_max
                        .iter()
                        .zip(&eg.ville_max)
                        .map(|(c, g)| (*c, *g, "ville_max")),
                );
            }
            for (vc, vg, label) in others {
                assert!(
                    close(vg, vc) && same_verdicts(vg, vc),
                    "{at}: {label}: cpu {vc:e} gpu {vg:e}"
                );
            }
        }
    }
}

/// Audits `log` on the CPU and on the GPU with kernels of both shapes, and
/// compares every step; returns the number of steps.
fn compare_backends(what: &str, log: &str, s: &AuditSettings) -> usize {
    let cpu = audit_on(&CpuEngine::new(), log, s);
    for shape in [KernelShape::Serial, KernelShape::Parallel] {
        let (gpu, totals) =
            common::audit_source_totals(&mut common::reader(log), gpu_engine(shape), s);
        // the path whose cuts the host takes from the device's own ℓ
        assert!(
            totals.device_posterior_batches > 0,
            "{what} ({shape:?}): the posterior stayed on the host"
        );
        compare_steps(&format!("{what} ({shape:?})"), &cpu, &gpu);
    }
    cpu.len()
}

/// `max_{h ∈ I_α} q_h` (SPEC §3.3) for a grid {0,1}^d with a uniform prior
/// and a Gaussian model, straight from the definition in f64: its own
/// log-likelihoods, log-sum-exp, and a pass over the hypotheses in order of
/// weight that accumulates the mass strictly ahead of each tie group. (Its
/// erfc is statrs', not the engine's libm: the two differ by ~1e-11.)
fn plausible_bound_by_definition(
    d: usize,
    sigma: f64,
    theta: f64,
    history: &[(&[f64], f64)],
    x: &[f64],
    alpha: f64,
) -> (f64, usize) {
    let h_count = 1usize << d;
    let w = |h: usize| (0..d).map(move |j| ((h >> (d - 1 - j)) & 1) as f64);
    let log_l: Vec<f64> = (0..h_count)
        .map(|h| {
            history
                .iter()
                .map(|(xs, y)| {
                    let wx: f64 = w(h).zip(xs.iter()).map(|(a, b)| a * b).sum();
                    let z = (y - wx) / sigma;
                    -0.5 * z * z - sigma.ln() - 0.5 * (2.0 * std::f64::consts::PI).ln()
                })
                .sum::<f64>()
        })
        .collect();
    let m = log_l.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let z: f64 = log_l.iter().map(|l| (l - m).exp()).sum();
    let p: Vec<f64> = log_l.iter().map(|l| (l - m).exp() / z).collect();
    let mut order: Vec<usize> = (0..h_count).collect();
    order.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
    let (mut bound, mut size, mut ahead, mut i) = (0.0f64, 0, 0.0, 0);
    while i < order.len() {
        let mut end = i;
        while end < order.len() && p[order[end]] == p[order[i]] {
            end += 1;
        }
        let ph = p[order[i]];
        if ph >= alpha * (ph + ahead) {
            for &h in &order[i..end] {
                let wx: f64 = w(h).zip(x.iter()).map(|(a, b)| a * b).sum();
                let q = 0.5 * statrs::function::erf::erfc((theta - wx) / (sigma * 2f64.sqrt()));
                bound = bound.max(q);
            }
            size += end - i;
        }
        ahead += ph * (end - i) as f64;
        i = end;
    }
    (bound, size)
}

#[test]
fn ep16_last_member_of_the_plausible_set_counts_on_every_kernel_shape() {
    let s = settings(&[EP16_ALPHA], 1.0 / 1024.0);
    let cpu = audit_on(&CpuEngine::new(), EP16, &s);

    // the CPU engine against the definition at the last step, for the taken
    // action (which only hypothesis 935, q = Φ(2) ≈ 0.977, lifts above 0.841)
    let lines: Vec<serde_json::Value> = EP16
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let table: Vec<Vec<f64>> = serde_json::from_value(lines[1]["candidates"].clone()).unwrap();
    let steps: Vec<(usize, f64)> = lines[2..]
        .iter()
        .map(|l| {
            (
                l["action"].as_u64().unwrap() as usize,
                l["outcome"].as_f64().unwrap(),
            )
        })
        .collect();
    let history: Vec<(&[f64], f64)> = steps[..15]
        .iter()
        .map(|&(a, y)| (table[a].as_slice(), y))
        .collect();
    let last = &cpu[15];
    let action = steps[15].0;
    for (a, x) in table.iter().enumerate() {
        let (want, size) = plausible_bound_by_definition(10, 1.0, 4.0, &history, x, EP16_ALPHA);
        assert_eq!(last.posterior.plausible_set_size, vec![size], "|I_α|");
        common::close(
            last.candidates[a].plausible_set[0],
            want,
            1e-9,
            0.0,
            &format!("cpu, last step, cand {a}: plausible set vs the definition"),
        );
    }
    assert_eq!(last.posterior.plausible_set_size, vec![159]);
    // Φ(2): hypothesis 935's w·x = 6 for the taken action, θ = 4, σ = 1
    common::close(
        last.candidates[action].plausible_set[0],
        0.5 * statrs::function::erf::erfc(-2.0 / 2f64.sqrt()),
        1e-9,
        0.0,
        "cpu, last step, taken action",
    );

    for shape in [KernelShape::Serial, KernelShape::Parallel] {
        let gpu = audit_on(gpu_engine(shape), EP16, &s);
        compare_steps(&format!("ep16 ({shape:?})"), &cpu, &gpu);
    }
}

// ------------------------------------------- randomised differential test

/// α from 0.05/1024 (the issue's) to 1: many cuts per step, each falling
/// after a different member.
const ALPHAS: [f64; 6] = [0.05 / 1024.0, 1e-3, 1e-2, 0.1, 0.3, 1.0];

/// A JSON array of arrays.
fn json_rows(rows: &[Vec<f64>]) -> String {
    let rows: Vec<String> = rows
        .iter()
        .map(|r| {
            let v: Vec<String> = r.iter().map(|x| format!("{x:?}")).collect();
            format!("[{}]", v.join(","))
        })
        .collect();
    format!("[{}]", rows.join(","))
}

/// The bandit of the issue (H = 1024 grid {0,1}^10, σ = 1, θ = 4): streams
/// of the given lengths, each with its own table of ten 0/1 candidates and a
/// true hypothesis whose outcomes the steps draw (actions uniform).
fn grid_log(seed: u64, lengths: &[usize]) -> String {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    let mut log = String::from(
        "{\"type\":\"model\",\"hypotheses\":{\"kind\":\"grid\",\"k\":2,\"d\":10},\
         \"observation\":{\"kind\":\"gaussian\",\"sigma\":1.0,\"harm_threshold\":4.0}}\n",
    );
    for (s, &n) in lengths.iter().enumerate() {
        let table: Vec<Vec<f64>> = (0..10)
            .map(|_| (0..10).map(|_| r.random_range(0..2) as f64).collect())
            .collect();
        let truth: usize = r.random_range(0..1024);
        log += &format!(
            "{{\"type\":\"stream\",\"id\":\"s{s}\",\"candidates\":{},\"true_hypothesis\":{truth}}}\n",
            json_rows(&table)
        );
        for _ in 0..n {
            let a = r.random_range(0..10usize);
            let wx: f64 = (0..10)
                .map(|j| ((truth >> (9 - j)) & 1) as f64 * table[a][j])
                .sum();
            let noise: f64 = r.sample(rand_distr::StandardNormal);
            log += &format!(
                "{{\"type\":\"step\",\"action\":{a},\"outcome\":{:?}}}\n",
                wx + noise
            );
        }
    }
    log
}

/// A list of `h` hypotheses with real parameters (d = 3) and a random
/// prior, a Gaussian model, a table of six real candidates per step: every
/// hypothesis has its own q, so whichever member a cut drops shows.
fn list_log(seed: u64, h: usize, lengths: &[usize]) -> String {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    let d = 3;
    let params: Vec<Vec<f64>> = (0..h)
        .map(|_| (0..d).map(|_| r.random_range(-2.0..2.0)).collect())
        .collect();
    let prior: Vec<f64> = (0..h).map(|_| r.random_range(-3.0..0.0)).collect();
    let mut log = format!(
        "{{\"type\":\"model\",\"hypotheses\":{{\"kind\":\"list\",\"params\":{},\"log_prior\":{prior:?}}},\
         \"observation\":{{\"kind\":\"gaussian\",\"sigma\":1.5,\"harm_threshold\":2.0}}}}\n",
        json_rows(&params),
    );
    for (s, &n) in lengths.iter().enumerate() {
        let truth = r.random_range(0..h);
        log += &format!("{{\"type\":\"stream\",\"id\":\"l{s}\",\"true_hypothesis\":{truth}}}\n");
        for _ in 0..n {
            let cands: Vec<Vec<f64>> = (0..6)
                .map(|_| (0..d).map(|_| r.random_range(-1.5..1.5)).collect())
                .collect();
            let a = r.random_range(0..6usize);
            let wx: f64 = params[truth]
                .iter()
                .zip(&cands[a])
                .map(|(w, x)| w * x)
                .sum();
            let noise: f64 = r.sample(rand_distr::StandardNormal);
            log += &format!(
                "{{\"type\":\"step\",\"action\":{a},\"outcome\":{:?},\"candidates\":{}}}\n",
                wx + 1.5 * noise,
                json_rows(&cands)
            );
        }
    }
    log
}

/// A list of `h` confident Bernoulli hypotheses (d = 3, |w| up to 8) in
/// which one, the truth, holds nearly all the prior mass: its log weight
/// stays within a few hundredths of 0, so every other ℓ = L − L_MAP carries
/// L_MAP's fine low bits, and a double-f32 ℓ often holds more bits than an
/// f64 (the regime of issue 11's ep16, here at most steps). Five real
/// candidates per step.
fn dominant_prior_log(seed: u64, h: usize, lengths: &[usize]) -> String {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    let d = 3;
    let params: Vec<Vec<f64>> = (0..h)
        .map(|_| (0..d).map(|_| r.random_range(-8.0..8.0)).collect())
        .collect();
    let mut prior: Vec<f64> = (0..h).map(|_| r.random_range(-9.0..-4.0)).collect();
    prior[0] = 0.0;
    let mut log = format!(
        "{{\"type\":\"model\",\"hypotheses\":{{\"kind\":\"list\",\"params\":{},\"log_prior\":{prior:?}}},\
         \"observation\":{{\"kind\":\"bernoulli\"}}}}\n",
        json_rows(&params),
    );
    for (s, &n) in lengths.iter().enumerate() {
        log += &format!("{{\"type\":\"stream\",\"id\":\"b{s}\",\"true_hypothesis\":0}}\n");
        for _ in 0..n {
            let cands: Vec<Vec<f64>> = (0..5)
                .map(|_| (0..d).map(|_| r.random_range(-1.0..1.0)).collect())
                .collect();
            let a = r.random_range(0..5usize);
            let wx: f64 = params[0].iter().zip(&cands[a]).map(|(w, x)| w * x).sum();
            let y = (r.random::<f64>() < 1.0 / (1.0 + (-wx).exp())) as u8;
            log += &format!(
                "{{\"type\":\"step\",\"action\":{a},\"outcome\":{y},\"candidates\":{}}}\n",
                json_rows(&cands)
            );
        }
    }
    log
}

#[test]
fn random_streams_have_the_same_plausible_sets_on_both_backends() {
    // Every family runs both kernel shapes on the device-posterior path.
    // The issue's bandit and a list with a spread prior rarely give an ℓ
    // pair that an f64 cannot hold (L_MAP far from 0: about 4e-5 of pairs
    // on the grid), so before the fix they passed; the dominant-prior lists
    // give many, and failed (seeds 21 and 23).
    let mut steps = 0;
    // short streams (wide posteriors, large sets) and long ones (sets of a
    // few hypotheses, whose last member is often the one with the largest q)
    for seed in [1, 2, 3] {
        let log = grid_log(seed, &[2, 5, 9, 16, 24, 40]);
        steps += compare_backends(
            &format!("grid, seed {seed}"),
            &log,
            &settings(&ALPHAS, 1.0 / 1024.0),
        );
    }
    for seed in [11, 12] {
        let log = list_log(seed, 400, &[4, 12, 30, 60]);
        steps += compare_backends(
            &format!("list, seed {seed}"),
            &log,
            &settings(&ALPHAS, 1e-3),
        );
    }
    for seed in 21..=26 {
        let log = dominant_prior_log(seed, 24, &[10, 20, 30]);
        steps += compare_backends(
            &format!("dominant prior, seed {seed}"),
            &log,
            &settings(&ALPHAS, 1e-4),
        );
    }
    assert_eq!(steps, 3 * 96 + 2 * 106 + 6 * 60);
}
