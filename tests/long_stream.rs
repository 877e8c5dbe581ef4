//! A long stream: the posterior does not drift, and the results do not depend
//! on how the log is cut into batches or on the number of threads.

mod common;

use gpubound::engine::cpu::CpuEngine;
use gpubound::model::ObservationModel;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};

/// A 20,000-step bandit stream over the grid {0,1,2}^3 (27 hypotheses).
fn long_log(steps: usize) -> (String, Vec<f64>) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let arms = [
        [1.0, 0.0, 2.0],
        [0.0, 1.0, 1.0],
        [2.0, 2.0, 0.0],
        [1.0, 1.0, 1.0],
    ];
    let truth = [2.0, 0.0, 1.0];
    let mut s = String::from(
        r#"{"type":"model","hypotheses":{"kind":"grid","k":3,"d":3},"observation":{"kind":"gaussian","sigma":2.5,"harm_threshold":5.0}}"#,
    );
    s += "\n";
    s += &format!(
        "{{\"type\":\"stream\",\"true_params\":[2,0,1],\"candidates\":{}}}\n",
        serde_json::to_string(&arms).unwrap()
    );
    let noise = Normal::new(0.0, 2.5).unwrap();
    let mut outcomes = Vec::new();
    for _ in 0..steps {
        let a = rng.random_range(0..4);
        let mean: f64 = arms[a].iter().zip(&truth).map(|(x, w)| x * w).sum();
        let y = mean + noise.sample(&mut rng);
        outcomes.push(y);
        s += &format!("{{\"type\":\"step\",\"action\":{a},\"outcome\":{y}}}\n");
    }
    (s, outcomes)
}

#[test]
fn batching_and_threads_do_not_change_any_result() {
    let (log, _) = long_log(20_000);
    let alphas = [1e-4, 0.01, 0.5];
    let engine = CpuEngine::new();
    let whole = common::audit_text(&log, &alphas, 1.0 / 27.0, &engine);
    // 7 steps per batch: the stream crosses ~2,900 batch boundaries
    let pieces = common::audit_text_batched(&log, &alphas, 1.0 / 27.0, &engine, 27 * 7);
    let single = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(|| common::audit_text_batched(&log, &alphas, 1.0 / 27.0, &engine, 27 * 1000));
    assert_eq!(whole.len(), 20_000);
    for ((a, b), c) in whole.iter().zip(&pieces).zip(&single) {
        assert_eq!(a.posterior, b.posterior, "step {}", a.record.step);
        assert_eq!(a.candidates, b.candidates, "step {}", a.record.step);
        assert_eq!(a.posterior, c.posterior, "step {}", a.record.step);
        assert_eq!(a.candidates, c.candidates, "step {}", a.record.step);
    }
}

#[test]
fn the_posterior_after_a_long_stream_matches_a_direct_f64_sum() {
    let steps = 20_000;
    let (log, outcomes) = long_log(steps);
    // the posterior at the last step (before its outcome), summed directly:
    // log p_h ∝ Σ_s ln N(y_s; w_h·x_{a_s}, σ²)
    let results = common::audit_text(&log, &[0.5], 1.0 / 27.0, &CpuEngine::new());
    let last = results.last().unwrap();
    let model = ObservationModel::Gaussian {
        sigma: 2.5,
        harm_threshold: 5.0,
    };
    let arms = [
        [1.0, 0.0, 2.0],
        [0.0, 1.0, 1.0],
        [2.0, 2.0, 0.0],
        [1.0, 1.0, 1.0],
    ];
    let actions: Vec<usize> = log
        .lines()
        .skip(2)
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["action"]
                .as_u64()
                .unwrap() as usize
        })
        .collect();
    let space = gpubound::model::HypothesisSpace::grid(3, 3).unwrap();
    // checkpoints: before step t+1, the posterior has seen steps 1..=t
    for t in [10usize, 60, 400, steps - 1] {
        let mut lp = vec![0.0f64; 27];
        for (h, l) in lp.iter_mut().enumerate() {
            let w = space.params(h);
            for s in 0..t {
                let mean: f64 = arms[actions[s]].iter().zip(&w).map(|(x, w)| x * w).sum();
                *l += model.log_likelihood(outcomes[s], mean);
            }
        }
        let lse = gpubound::posterior::log_sum_exp(&lp);
        let p: Vec<f64> = lp.iter().map(|l| (l - lse).exp()).collect();
        let map = (0..27)
            .max_by(|&a, &b| p[a].total_cmp(&p[b]).then(b.cmp(&a)))
            .unwrap();
        let entropy: f64 = -p
            .iter()
            .filter(|&&v| v > 0.0)
            .map(|v| v * v.ln())
            .sum::<f64>();
        let got = &results[t].posterior;
        assert_eq!(got.map_hypothesis, map, "t={t}");
        assert!(
            (got.map_probability - p[map]).abs() <= 1e-11 * p[map],
            "t={t}: {} vs {}",
            got.map_probability,
            p[map]
        );
        // entropy in nats, to absolute accuracy (it is a diagnostic near 0)
        assert!(
            (got.entropy - entropy).abs() <= 1e-12 + 1e-9 * entropy,
            "t={t}: {} vs {entropy}",
            got.entropy
        );
    }
    assert_eq!(
        space.params(last.posterior.map_hypothesis),
        vec![2.0, 0.0, 1.0],
        "20,000 steps identify h*"
    );
    // the oracle and the plausible set at α = 0.5 (the MAP alone) agree
    for c in &last.candidates {
        assert!((c.plausible_set[0] - c.oracle.unwrap()).abs() < 1e-15);
    }
}
