//! The amortized sampler (src/sampler): exact normalisation, the hand-written
//! backward pass against finite differences, trajectory balance at its
//! optimum, checkpoints, and training that brings q_θ closer to the posterior.

use gpubound::model::ObservationModel;
use gpubound::sampler::checkpoint;
use gpubound::sampler::context::{Context, ResidualKind};
use gpubound::sampler::eval::{exact_log_posterior, policy_tv, total_variation};
use gpubound::sampler::policy::{Pick, Policy, PolicyConfig};
use gpubound::sampler::train::{TrainConfig, Trainer};
use gpubound::sampler::SamplerModel;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn gaussian(k: u32, d: usize) -> SamplerModel {
    SamplerModel::new(
        k,
        d,
        ObservationModel::Gaussian {
            sigma: 1.0,
            harm_threshold: 5.0,
        },
    )
    .unwrap()
}

fn small() -> PolicyConfig {
    PolicyConfig {
        hidden_ctx: 8,
        embed: 5,
        hidden: 7,
        residual: ResidualKind::Relaxed,
    }
}

/// A context of `t` observations of random arms in {0..k-1}^d, outcomes
/// drawn around a random w*.
fn context(m: &SamplerModel, t: usize, seed: u64) -> Context {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let w: Vec<f64> = (0..m.d).map(|_| rng.random_range(0..m.k) as f64).collect();
    let mut c = Context::new(m);
    for _ in 0..t {
        let x: Vec<f64> = (0..m.d).map(|_| rng.random_range(0..m.k) as f64).collect();
        let z: f64 = x.iter().zip(&w).map(|(a, b)| a * b).sum();
        let y = match m.observation {
            ObservationModel::Gaussian { .. } => z + rng.random_range(-1.5..1.5),
            ObservationModel::Bernoulli => {
                (rng.random::<f64>() < 1.0 / (1.0 + (-z + 1.5).exp())) as u8 as f64
            }
        };
        c.push(m, &x, y);
    }
    c
}

fn random_policy(m: SamplerModel, seed: u64) -> Policy {
    let mut p = Policy::new(m, small(), seed).unwrap();
    p.perturb(0.5, seed + 1);
    p
}

#[test]
fn q_sums_to_one_over_the_whole_grid_and_scores_what_it_samples() {
    for m in [
        gaussian(2, 5),
        gaussian(3, 3),
        SamplerModel::new(2, 4, ObservationModel::Bernoulli).unwrap(),
    ] {
        let p = random_policy(m, 3);
        for t in [0, 4, 30] {
            let c = context(&m, t, 11 + t as u64);
            let log_q = p.log_q_grid(&c, 1 << 20).unwrap();
            assert_eq!(log_q.len(), m.grid_size().unwrap());
            let total: f64 = log_q.iter().map(|v| v.exp()).sum();
            assert!((total - 1.0).abs() < 1e-12, "{m:?} t={t}: Σq = {total}");
            // sampling reports the same ln q as the enumeration, by index
            let mut rng = ChaCha8Rng::seed_from_u64(5);
            let s = p.sample(&c, 50, &mut rng);
            for (r, path) in s.paths.chunks_exact(m.d).enumerate() {
                let i = path
                    .iter()
                    .fold(0usize, |i, &v| i * m.k as usize + v as usize);
                assert!((s.log_q[r] - log_q[i]).abs() < 1e-12);
            }
            // and q is not the posterior (at the prior: uniform), so that the
            // normalisation above is not the residual's alone
            if t == 0 {
                let exact = exact_log_posterior(&m, &c, 1 << 20).unwrap();
                assert!(total_variation(&log_q, &exact) > 0.01);
            }
        }
    }
}

#[test]
fn the_backward_pass_equals_finite_differences() {
    for m in [
        gaussian(2, 4),
        SamplerModel::new(3, 3, ObservationModel::Bernoulli).unwrap(),
    ] {
        let p = random_policy(m, 7);
        let contexts = [context(&m, 6, 1), context(&m, 0, 2)];
        let refs: Vec<&Context> = contexts.iter().collect();
        let rows_ctx = [0usize, 0, 1, 1, 0];
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let paths: Vec<u16> = (0..rows_ctx.len() * m.d)
            .map(|_| rng.random_range(0..m.k) as u16)
            .collect();
        let coef = [0.7, -1.3, 0.4, 2.0, -0.2];
        let objective = |p: &Policy| -> f64 {
            let r = p.rollout(&refs, &rows_ctx, Pick::Score(&paths), false);
            r.log_q.iter().zip(&coef).map(|(l, c)| l * c).sum()
        };
        let roll = p.rollout(&refs, &rows_ctx, Pick::Score(&paths), true);
        let mut grad = vec![0.0; p.len()];
        p.backward(&roll, &coef, &mut grad).unwrap();
        let mut checked = 0;
        let mut worst: f64 = 0.0;
        for i in (0..p.len()).step_by(3) {
            let h = 1e-5;
            let mut a = p.clone();
            a.params[i] += h;
            let mut b = p.clone();
            b.params[i] -= h;
            let fd = (objective(&a) - objective(&b)) / (2.0 * h);
            let err = (fd - grad[i]).abs() / (1e-6 + fd.abs().max(grad[i].abs()));
            worst = worst.max(err);
            checked += (grad[i] != 0.0) as usize;
        }
        assert!(worst < 1e-5, "{m:?}: worst relative error {worst}");
        assert!(checked > p.len() / 6, "{checked} nonzero of {}", p.len());
    }
}

#[test]
fn trajectory_balance_is_zero_where_the_residual_is_the_exact_posterior() {
    // d = 1: nothing comes after the only coordinate, so the residual field
    // is the exact log posterior and the untrained policy (zero correction)
    // is exact: ln q − ln R = −ln Z for every path.
    for m in [
        gaussian(2, 1),
        gaussian(4, 1),
        SamplerModel::new(3, 1, ObservationModel::Bernoulli).unwrap(),
    ] {
        let trainer = Trainer::new(
            Policy::new(m, small(), 1).unwrap(),
            TrainConfig::default(),
            1,
        )
        .unwrap();
        let contexts = [context(&m, 9, 3), context(&m, 25, 4)];
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let (loss, grad) = trainer.loss_and_gradient(&contexts, &mut rng).unwrap();
        assert!(loss < 1e-20, "{m:?}: {loss}");
        assert!(grad.iter().all(|g| g.abs() < 1e-9));
        let exact = exact_log_posterior(&m, &contexts[1], 64).unwrap();
        let q = trainer.policy.log_q_grid(&contexts[1], 64).unwrap();
        assert!(total_variation(&q, &exact) < 1e-12);
    }
    // d = 4: the residual fixes later coordinates at the prior mean, which
    // is not exact, and the loss says so
    let m = gaussian(2, 4);
    let trainer = Trainer::new(
        Policy::new(m, small(), 1).unwrap(),
        TrainConfig::default(),
        1,
    )
    .unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let (loss, _) = trainer
        .loss_and_gradient(&[context(&m, 12, 3)], &mut rng)
        .unwrap();
    assert!(loss > 1e-3, "{loss}");
}

#[test]
fn a_checkpoint_round_trips_and_refuses_another_model() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.bin");
    let m = gaussian(2, 5);
    let mut t = Trainer::new(
        Policy::new(m, small(), 4).unwrap(),
        TrainConfig::default(),
        4,
    )
    .unwrap();
    for _ in 0..3 {
        t.train_step().unwrap();
    }
    checkpoint::save(&t, &path).unwrap();
    let back = checkpoint::load(&path, Some(&m)).unwrap();
    assert_eq!(back.policy, t.policy);
    assert_eq!(back.adam, t.adam);
    assert_eq!((back.step, back.seed, back.config), (3, 4, t.config));
    assert_eq!(back.losses, t.losses);
    // resuming gives the run that never stopped
    let mut resumed = back;
    resumed.train_step().unwrap();
    t.train_step().unwrap();
    assert_eq!(resumed.policy.params, t.policy.params);

    let other = SamplerModel::new(
        2,
        5,
        ObservationModel::Gaussian {
            sigma: 0.5,
            harm_threshold: 5.0,
        },
    )
    .unwrap();
    let err = checkpoint::load(&path, Some(&other))
        .unwrap_err()
        .to_string();
    assert!(err.contains("trained for another model"), "{err}");
    assert!(
        err.contains("\"sigma\":1.0") && err.contains("\"sigma\":0.5"),
        "{err}"
    );
    // damage
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 5]).unwrap();
    assert!(checkpoint::load(&path, None).is_err());
    std::fs::write(&path, b"hello\n").unwrap();
    let err = checkpoint::load(&path, None).unwrap_err().to_string();
    assert!(err.contains("not a gpubound sampler file"), "{err}");
}

#[test]
fn bernoulli_training_is_seeded_and_its_contexts_hold_binary_outcomes() {
    let m = SamplerModel::new(2, 4, ObservationModel::Bernoulli).unwrap();
    let make = || {
        let config = TrainConfig {
            contexts: 6,
            samples: 4,
            ..TrainConfig::default()
        };
        Trainer::new(Policy::new(m, small(), 3).unwrap(), config, 3).unwrap()
    };
    let (mut a, mut b) = (make(), make());
    for _ in 0..5 {
        let la = a.train_step().unwrap();
        assert!(la.is_finite() && la >= 0.0);
        assert_eq!(la, b.train_step().unwrap());
    }
    assert_eq!(a.policy.params, b.policy.params);
    assert_ne!(a.policy.params, make().policy.params);
    // the reward of a context is the Bernoulli log-likelihood plus the prior
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let c = a.draw_context(&mut rng);
    let w = [1.0, 0.0, 1.0, 1.0];
    assert!(c.log_reward(&m, &w) <= m.log_prior());
}

/// Mean TV over a fixed set of contexts drawn like the training ones.
fn mean_tv(t: &Trainer, contexts: &[Context]) -> f64 {
    contexts
        .iter()
        .map(|c| policy_tv(&t.policy, c, 1 << 10).unwrap())
        .sum::<f64>()
        / contexts.len() as f64
}

#[test]
fn training_brings_q_closer_to_the_posterior() {
    // The prior-mean residual leaves the most to learn: 300 steps at d = 6
    // take its mean TV from 0.35 to 0.24 (seed 1).
    let m = gaussian(2, 6);
    let config = TrainConfig {
        contexts: 8,
        samples: 16,
        learning_rate: 3e-3,
        ..TrainConfig::default()
    };
    let net = |residual| PolicyConfig {
        residual,
        ..PolicyConfig::default()
    };
    let mut t = Trainer::new(
        Policy::new(m, net(ResidualKind::Reference), 1).unwrap(),
        config,
        1,
    )
    .unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let contexts: Vec<Context> = (0..60).map(|_| t.draw_context(&mut rng)).collect();
    let before = mean_tv(&t, &contexts);
    for _ in 0..300 {
        t.train_step().unwrap();
    }
    let after = mean_tv(&t, &contexts);
    // the relaxed residual, untrained, on the same contexts
    let relaxed = Trainer::new(
        Policy::new(m, net(ResidualKind::Relaxed), 1).unwrap(),
        config,
        1,
    )
    .unwrap();
    let untrained_relaxed = mean_tv(&relaxed, &contexts);
    eprintln!(
        "mean TV at d = 6: prior-mean residual untrained {before:.4}, after 300 steps {after:.4}; \
         relaxed residual untrained {untrained_relaxed:.4}"
    );
    assert!(after < 0.8 * before && after < 0.28, "{before} → {after}");
    assert!(
        untrained_relaxed < 0.5 * before,
        "{untrained_relaxed} vs {before}"
    );
}

fn bin() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_gpubound"))
}

fn run_ok(args: &[&str]) -> String {
    let o = bin().args(args).output().unwrap();
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn run_bad(args: &[&str]) -> String {
    let o = bin().args(args).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

#[test]
fn the_commands_train_resume_and_evaluate() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let model = r#"{"hypotheses":{"kind":"grid","k":2,"d":6},"observation":{"kind":"gaussian","sigma":1.0,"harm_threshold":5.0}}"#;
    std::fs::write(p("m.json"), model).unwrap();
    std::fs::write(p("other.json"), model.replace("5.0", "4.0")).unwrap();
    let sim = |out: &str, theta: &str| {
        run_ok(&[
            "simulate",
            "-q",
            "-d",
            "6",
            "--explosion-threshold",
            theta,
            "--agent",
            "uniform",
            "--no-explosions",
            "--steps",
            "8",
            "-n",
            "3",
            "--seed",
            "2",
            "-o",
            &p(out),
        ])
    };
    sim("log.jsonl", "5");
    sim("other.jsonl", "4");
    let model_file = p("m.json");
    let train = |out: &str, steps: &str, extra: &[&str]| {
        let mut a = vec![
            "sampler",
            "train",
            "-q",
            "--model",
            &model_file,
            "-o",
            out,
            "--steps",
            steps,
            "--contexts",
            "4",
            "--samples",
            "4",
            "--hidden",
            "8",
            "--hidden-ctx",
            "8",
            "--embed",
            "4",
        ];
        a.extend_from_slice(extra);
        run_ok(&a);
    };
    let (a, b) = (p("a.bin"), p("b.bin"));
    train(&a, "20", &["--loss-svg", &p("loss.svg")]);
    assert!(std::fs::read_to_string(p("loss.svg"))
        .unwrap()
        .contains("<svg"));
    train(&a, "30", &["--resume"]);
    train(&b, "30", &[]);
    let (ta, tb) = (
        checkpoint::load(a.as_ref(), None).unwrap(),
        checkpoint::load(b.as_ref(), None).unwrap(),
    );
    assert_eq!(ta.step, 30);
    assert_eq!(ta.losses.len(), 30);
    assert_eq!(
        ta.policy.params, tb.policy.params,
        "resumed ≠ uninterrupted"
    );

    let out = run_ok(&[
        "sampler",
        "eval",
        "-q",
        "--sampler",
        &a,
        "--log",
        &p("log.jsonl"),
        "--json",
        &p("tv.json"),
    ]);
    assert!(out.is_empty());
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p("tv.json")).unwrap()).unwrap();
    let steps = doc["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 24);
    assert_eq!(doc["summary"]["steps"], 24);
    assert_eq!(doc["summary"]["late_steps"], 0);
    for s in steps {
        let tv = s["tv"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&tv));
        assert_eq!(
            s["observations"].as_u64().unwrap() + 1,
            s["step"].as_u64().unwrap()
        );
    }
    let out = run_ok(&["sampler", "eval", "--sampler", &a, "--log", &p("log.jsonl")]);
    assert!(
        out.contains("all steps:") && out.contains("t ≥ 20"),
        "{out}"
    );

    // a grid beyond --max-hypotheses is refused, naming the option
    let err = run_bad(&[
        "sampler",
        "eval",
        "--sampler",
        &a,
        "--log",
        &p("log.jsonl"),
        "--max-hypotheses",
        "32",
    ]);
    assert!(err.contains("--max-hypotheses"), "{err}");
    let err = run_bad(&[
        "sampler",
        "eval",
        "--sampler",
        &a,
        "--log",
        &p("other.jsonl"),
    ]);
    assert!(err.contains("not the sampler's"), "{err}");
    let err = run_bad(&[
        "sampler",
        "train",
        "--model",
        &p("other.json"),
        "-o",
        &a,
        "--resume",
    ]);
    assert!(err.contains("trained for another model"), "{err}");
    let err = run_bad(&[
        "sampler",
        "train",
        "--model",
        &p("m.json"),
        "-o",
        &p("none.bin"),
        "--resume",
    ]);
    assert!(err.contains("nothing") || err.contains("no "), "{err}");
    std::fs::write(p("list.json"), r#"{"hypotheses":{"kind":"list","params":[[0.0],[1.0]]},"observation":{"kind":"bernoulli"}}"#).unwrap();
    let err = run_bad(&[
        "sampler",
        "train",
        "--model",
        &p("list.json"),
        "-o",
        &p("l.bin"),
    ]);
    assert!(err.contains("grid"), "{err}");
}
