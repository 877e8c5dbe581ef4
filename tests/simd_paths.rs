//! Every CPU path computes the same bits: audits run with `GPUBOUND_SIMD`
//! narrowed to AVX2 and to scalar code write the same reports, byte for
//! byte, as with the widest vectors this CPU has. On a CPU with AVX-512
//! (this project's machines) that tests the paths a CPU without it runs,
//! which the rest of the suite never reaches.

use std::path::Path;
use std::process::Command;

use gpubound::model::simd::SimdLevel;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

fn audit(log: &Path, simd: &str, out: &Path) -> String {
    let run = Command::new(env!("CARGO_BIN_EXE_gpubound"))
        .args(["audit", "--backend", "cpu", "-q", "-o"])
        .arg(out)
        .arg(log)
        .env("GPUBOUND_SIMD", simd)
        .output()
        .expect("runs");
    assert!(
        run.status.success(),
        "GPUBOUND_SIMD={simd} {}: {}",
        log.display(),
        String::from_utf8_lossy(&run.stderr)
    );
    String::from_utf8(run.stdout).expect("utf-8")
}

fn lines(values: &[serde_json::Value]) -> String {
    values.iter().map(|v| format!("{v}\n")).collect()
}

fn round(v: f64) -> f64 {
    (v * 1e3).round() / 1e3
}

/// A grid with new real-valued candidates at every step (the contextual
/// path: harm of the live hypotheses, eight lanes at a time).
fn contextual_log(rng: &mut ChaCha8Rng) -> String {
    let (k, d, a) = (3u32, 6usize, 7usize);
    let mut out = vec![json!({"type": "model",
        "hypotheses": {"kind": "grid", "k": k, "d": d},
        "observation": {"kind": "gaussian", "sigma": 1.0, "harm_threshold": 6.0}})];
    for s in 0..4 {
        let w: Vec<f64> = (0..d).map(|_| rng.random_range(0..k) as f64).collect();
        out.push(json!({"type": "stream", "id": format!("c{s}")}));
        for _ in 0..15 {
            let c: Vec<Vec<f64>> = (0..a)
                .map(|_| (0..d).map(|_| round(rng.random_range(-0.5..1.5))).collect())
                .collect();
            let act = rng.random_range(0..a);
            let mean: f64 = w.iter().zip(&c[act]).map(|(w, x)| w * x).sum();
            let y = round(mean + rng.random_range(-1.5..1.5));
            out.push(json!({"type": "step", "action": act, "outcome": y, "candidates": c}));
        }
    }
    lines(&out)
}

/// One long stream on a grid with integer candidates: the posterior
/// narrows, so most hypotheses fall below the negligible weight.
fn long_log(rng: &mut ChaCha8Rng) -> String {
    let (k, d, a) = (2u32, 9usize, 10usize);
    let c: Vec<Vec<f64>> = (0..a)
        .map(|_| (0..d).map(|_| rng.random_range(0..2) as f64).collect())
        .collect();
    let w: Vec<f64> = (0..d).map(|_| rng.random_range(0..k) as f64).collect();
    let mut out = vec![
        json!({"type": "model", "hypotheses": {"kind": "grid", "k": k, "d": d},
            "observation": {"kind": "gaussian", "sigma": 0.8, "harm_threshold": 5.0}}),
        json!({"type": "stream", "id": "long", "candidates": c}),
    ];
    for _ in 0..300 {
        let act = rng.random_range(0..a);
        let mean: f64 = w.iter().zip(&c[act]).map(|(w, x)| w * x).sum();
        out.push(json!({"type": "step", "action": act,
            "outcome": round(mean + rng.random_range(-1.0..1.0))}));
    }
    lines(&out)
}

/// A Bernoulli list with a non-uniform prior.
fn bernoulli_log(rng: &mut ChaCha8Rng) -> String {
    let (h, d, a) = (300usize, 4usize, 5usize);
    let params: Vec<Vec<f64>> = (0..h)
        .map(|_| (0..d).map(|_| round(rng.random_range(-2.0..2.0))).collect())
        .collect();
    let log_prior: Vec<f64> = (0..h).map(|_| round(rng.random_range(-3.0..0.0))).collect();
    let mut out = vec![json!({"type": "model",
        "hypotheses": {"kind": "list", "params": params, "log_prior": log_prior},
        "observation": {"kind": "bernoulli"}})];
    for s in 0..3 {
        let c: Vec<Vec<f64>> = (0..a)
            .map(|_| (0..d).map(|_| round(rng.random_range(-1.0..1.0))).collect())
            .collect();
        out.push(json!({"type": "stream", "id": s, "candidates": c}));
        for _ in 0..20 {
            out.push(json!({"type": "step", "action": rng.random_range(0..a),
                "outcome": rng.random_range(0..2)}));
        }
    }
    lines(&out)
}

#[test]
fn every_cpu_path_writes_the_same_report() {
    let detected = SimdLevel::detected();
    eprintln!("this CPU: {}", detected.name());
    let dir = tempfile::tempdir().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(17);
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/exploding_bandit.jsonl");
    let mut logs = vec![example];
    for (name, text) in [
        ("contextual.jsonl", contextual_log(&mut rng)),
        ("long.jsonl", long_log(&mut rng)),
        ("bernoulli.jsonl", bernoulli_log(&mut rng)),
    ] {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        logs.push(p);
    }
    for log in &logs {
        let widest = dir.path().join("auto.jsonl");
        let summary = audit(log, "auto", &widest);
        let want = std::fs::read(&widest).unwrap();
        assert!(want.len() > 1000, "{}: a report", log.display());
        for level in ["avx512", "avx2", "scalar"] {
            let got_path = dir.path().join(format!("{level}.jsonl"));
            let got_summary = audit(log, level, &got_path);
            let got = std::fs::read(&got_path).unwrap();
            assert!(
                got == want,
                "{}: GPUBOUND_SIMD={level} wrote another report than the widest path ({})",
                log.display(),
                detected.name()
            );
            assert_eq!(got_summary, summary, "{}: {level}", log.display());
        }
    }
}

#[test]
fn an_unknown_simd_value_is_an_error() {
    let log = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/exploding_bandit.jsonl");
    let run = Command::new(env!("CARGO_BIN_EXE_gpubound"))
        .args(["audit", "--backend", "cpu", "-q", "-o", "/dev/null"])
        .arg(&log)
        .env("GPUBOUND_SIMD", "sse4")
        .output()
        .expect("runs");
    assert!(!run.status.success());
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(
        err.contains("GPUBOUND_SIMD") && err.contains("sse4"),
        "{err}"
    );
}
