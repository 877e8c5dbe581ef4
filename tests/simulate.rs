//! `gpubound simulate` writes logs that `gpubound audit` reads, and the
//! simulator's in-loop estimators agree with the audit's.

use std::path::Path;
use std::process::Command;

use gpubound::sim::{BanditSpec, Belief, Instance, Tables, TieRule};
use serde_json::Value;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gpubound"))
}

fn simulate(dir: &Path, name: &str, extra: &[&str]) -> std::path::PathBuf {
    let out = dir.join(name);
    let st = bin()
        .args(["simulate", "--quiet", "--out"])
        .arg(&out)
        .args(extra)
        .status()
        .unwrap();
    assert!(st.success(), "simulate {extra:?} failed");
    out
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `P(N(mu, 1) > theta)`, independently of the crate.
fn tail(theta: f64, mu: f64) -> f64 {
    0.5 * statrs::function::erf::erfc((theta - mu) / std::f64::consts::SQRT_2)
}

fn audit(log: &Path, report: &Path, alpha: &str) {
    let o = bin()
        .args([
            "audit",
            "--backend",
            "cpu",
            "--quiet",
            "--alpha",
            alpha,
            "--out",
        ])
        .arg(report)
        .arg(log)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "audit failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

struct Stream {
    features: Vec<Vec<u16>>,
    truth: usize,
    steps: Vec<(usize, f64)>,
}

fn streams(log: &[Value]) -> Vec<Stream> {
    let mut v: Vec<Stream> = Vec::new();
    for l in log {
        match l["type"].as_str().unwrap() {
            "stream" => v.push(Stream {
                features: l["candidates"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| {
                        r.as_array()
                            .unwrap()
                            .iter()
                            .map(|x| x.as_u64().unwrap() as u16)
                            .collect()
                    })
                    .collect(),
                truth: l["true_hypothesis"].as_u64().unwrap() as usize,
                steps: Vec::new(),
            }),
            "step" => v.last_mut().unwrap().steps.push((
                l["action"].as_u64().unwrap() as usize,
                l["outcome"].as_f64().unwrap(),
            )),
            "model" => {}
            t => panic!("unexpected line type {t}"),
        }
    }
    v
}

#[test]
fn audit_reads_a_simulated_log_and_its_oracle_is_the_true_harm() {
    let dir = tempfile::tempdir().unwrap();
    let log = simulate(
        dir.path(),
        "sim.jsonl",
        &["--episodes", "30", "--seed", "5"],
    );
    let log_lines = lines(&log);
    assert_eq!(log_lines[0]["type"], "model");
    assert_eq!(log_lines[0]["hypotheses"]["d"], 10);
    let theta = log_lines[0]["observation"]["harm_threshold"]
        .as_f64()
        .unwrap();
    assert_eq!(theta, 4.0);
    let ss = streams(&log_lines);
    assert_eq!(ss.len(), 30);
    let report = dir.path().join("report.jsonl");
    audit(&log, &report, "0.0001");
    let rep = lines(&report);
    let n_steps: usize = ss.iter().map(|s| s.steps.len()).sum();
    assert_eq!(rep.len(), n_steps);

    let mut r = rep.iter();
    for s in &ss {
        // w* from the index: base 2, first coordinate most significant
        let w: Vec<u16> = (0..10).map(|j| ((s.truth >> (9 - j)) & 1) as u16).collect();
        for (t, &(a, y)) in s.steps.iter().enumerate() {
            let line = r.next().unwrap();
            assert_eq!(line["action"].as_u64().unwrap() as usize, a);
            assert_eq!(line["outcome"].as_f64().unwrap(), y);
            let mu: u16 = s.features[a].iter().zip(&w).map(|(x, w)| x * w).sum();
            let want = tail(theta, mu as f64);
            let got = line["taken"]["oracle"].as_f64().unwrap();
            assert!((got - want).abs() <= 1e-9 * want, "{got} vs {want}");
            // an episode only goes on while no arm exploded
            if t + 1 < s.steps.len() {
                assert!(y <= theta, "the episode continued after an explosion");
            }
        }
    }
}

#[test]
fn a_grid_too_large_to_enumerate_draws_the_truth_from_the_prior() {
    // 2^48 hypotheses: the simulator cannot keep a posterior, but draws w*
    // uniformly coordinate by coordinate.
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--dim",
        "48",
        "--agent",
        "uniform",
        "--no-explosions",
        "--episodes",
        "200",
        "--seed",
        "9",
    ];
    let log = simulate(dir.path(), "d48.jsonl", &args);
    let log_lines = lines(&log);
    assert_eq!(log_lines[0]["hypotheses"]["d"], 48);
    let ss = streams(&log_lines);
    assert_eq!(ss.len(), 200);
    let (mut ones, mut bits) = (0usize, 0usize);
    let (mut n, mut sum, mut sum2) = (0.0, 0.0, 0.0);
    for s in &ss {
        assert!(s.truth < 1 << 48);
        assert_eq!(s.features.len(), 10);
        assert_eq!(s.steps.len(), 25);
        let w: Vec<u16> = (0..48)
            .map(|j| ((s.truth >> (47 - j)) & 1) as u16)
            .collect();
        ones += w.iter().filter(|&&b| b == 1).count();
        bits += 48;
        for &(a, y) in &s.steps {
            assert_eq!(s.features[a].len(), 48);
            let mu: u16 = s.features[a].iter().zip(&w).map(|(x, w)| x * w).sum();
            let r = y - mu as f64;
            n += 1.0;
            sum += r;
            sum2 += r * r;
        }
    }
    // 9600 fair bits: sd 0.0051; 5000 N(0, 1) residuals: sd of the mean 0.014
    let p = ones as f64 / bits as f64;
    assert!((p - 0.5).abs() < 0.03, "share of ones {p}");
    let mean = sum / n;
    let var = sum2 / n - mean * mean;
    assert!(mean.abs() < 0.07 && (var - 1.0).abs() < 0.1, "{mean} {var}");
    // the same seed, the same log
    let again = simulate(dir.path(), "again.jsonl", &args);
    assert_eq!(std::fs::read(&log).unwrap(), std::fs::read(again).unwrap());
    // the Boltzmann agent needs the posterior: refused, saying what to do
    let o = bin()
        .args(["simulate", "--dim", "48", "--episodes", "1"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--agent uniform"), "{err}");
}

#[test]
fn simulator_estimators_equal_the_audits() {
    let dir = tempfile::tempdir().unwrap();
    let log = simulate(
        dir.path(),
        "sim.jsonl",
        &[
            "--episodes",
            "12",
            "--seed",
            "9",
            "--agent",
            "uniform",
            "--no-explosions",
        ],
    );
    let alphas = ["0.3", "0.01", "1e-4"];
    let report = dir.path().join("report.jsonl");
    audit(&log, &report, &alphas.join(","));
    let rep = lines(&report);
    let spec = BanditSpec::default();
    let tables = Tables::new(spec, 4.0).unwrap();
    let mut belief = Belief::new(&spec);
    let mut r = rep.iter();
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(b.abs()) + 1e-15;
    let mut checked = 0;
    for s in streams(&lines(&log)) {
        assert_eq!(s.steps.len(), 25);
        let inst = Instance {
            features: s.features.concat(),
            w_star: (0..10).map(|j| ((s.truth >> (9 - j)) & 1) as u16).collect(),
            true_hypothesis: s.truth,
        };
        belief.reset();
        for &(a, y) in &s.steps {
            let line = r.next().unwrap();
            for (c, cand) in line["candidates"].as_array().unwrap().iter().enumerate() {
                let pp = belief.predictive(&tables, &inst, c);
                assert!(close(pp, cand["posterior_predictive"].as_f64().unwrap()));
                let (ct, _) = belief.cautious(&tables, &inst, c);
                assert!(close(ct, cand["cautious_theory"].as_f64().unwrap()));
                for key in alphas {
                    let alpha: f64 = key.parse().unwrap();
                    let m = belief.plausible(alpha, TieRule::Inclusive);
                    let ours = tables.q[belief.members_max_dot(&inst, c, &m).unwrap()];
                    let theirs = cand["plausible_set"][key].as_f64().unwrap();
                    assert!(close(ours, theirs), "α {key}: {ours} vs {theirs}");
                    checked += 1;
                }
            }
            belief.update(&tables, &inst, a, y);
        }
    }
    assert_eq!(checked, 12 * 25 * 10 * 3);
}

#[test]
fn the_same_seed_gives_the_same_log() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--episodes",
        "50",
        "--seed",
        "3",
        "--guardrail",
        "non-iid",
        "--alpha",
        "0.01",
        "-C",
        "0.1",
    ];
    let a = std::fs::read(simulate(dir.path(), "a.jsonl", &args)).unwrap();
    let b = std::fs::read(simulate(dir.path(), "b.jsonl", &args)).unwrap();
    assert_eq!(a, b);
    let mut other = args;
    other[3] = "4";
    let c = std::fs::read(simulate(dir.path(), "c.jsonl", &other)).unwrap();
    assert_ne!(a, c);
}

#[test]
fn a_guardrail_in_the_loop_only_lets_safe_arms_through() {
    let dir = tempfile::tempdir().unwrap();
    let log = simulate(
        dir.path(),
        "oracle.jsonl",
        &[
            "--episodes",
            "60",
            "--seed",
            "2",
            "--guardrail",
            "oracle",
            "-C",
            "0.01",
        ],
    );
    let log_lines = lines(&log);
    let mut pulls = 0;
    for s in streams(&log_lines) {
        let w: Vec<u16> = (0..10).map(|j| ((s.truth >> (9 - j)) & 1) as u16).collect();
        for &(a, _) in &s.steps {
            let mu: u16 = s.features[a].iter().zip(&w).map(|(x, w)| x * w).sum();
            assert!(tail(4.0, mu as f64) <= 0.01);
            pulls += 1;
        }
    }
    assert!(pulls > 100, "{pulls}");
}

#[test]
fn bad_settings_are_input_errors() {
    for args in [
        vec!["--episodes", "0"],
        vec!["--guardrail", "non-iid", "--alpha", "0"],
        vec!["--guardrail", "non-iid", "--alpha", "1.5"],
        vec!["--threshold", "2"],
        vec!["--sigma", "0"],
        vec!["--steps", "0"],
        vec!["--dim", "40"],
        vec!["--explosion-threshold", "nan"],
        vec!["--beta", "inf"],
    ] {
        let o = bin().arg("simulate").args(&args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("invalid setting"), "{args:?}: {err}");
        assert!(!err.contains("panicked"));
    }
}

#[test]
fn experiment_settings_are_checked() {
    for args in [
        vec!["fig1", "--episodes", "0"],
        vec!["fig1", "--alphas", "0"],
        vec!["fig1", "--alphas", "0.1,2"],
        vec!["fig1", "--thresholds", "1.5"],
        vec!["fig1", "--beta", "nan"],
        vec!["fig2", "--episodes", "0"],
        vec!["fig1", "--episodes", "2000000"],
        vec!["fig2", "--alphas=-1"],
        vec!["coverage", "--alphas", "0"],
        vec!["coverage", "--sigma=-1"],
    ] {
        let o = bin().arg("experiment").args(&args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("invalid setting"), "{args:?}: {err}");
    }
}

#[test]
fn experiments_write_json_and_svg() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("fig1.json");
    let svg = dir.path().join("fig1.svg");
    let o = bin()
        .args([
            "experiment",
            "fig1",
            "--quiet",
            "--episodes",
            "40",
            "--alphas",
            "1e-4,0.1",
            "--json",
        ])
        .arg(&json)
        .arg("--svg")
        .arg(&svg)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let rows = v["rows"].as_array().unwrap();
    // 3 thresholds × (none, oracle, posterior, iid, 2 α)
    assert_eq!(rows.len(), 18);
    for r in rows {
        assert_eq!(r["n_episodes"], 40);
        let d = r["death_rate"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&d));
        // the oracle guardrail at C = 1e-3 lets no arm with q > 1e-3 through,
        // and P(explosion) ≤ 1e-3 per pull: no death in 40 episodes is expected
        if r["guardrail"] == "cheating" && r["threshold"] == 0.001 {
            assert_eq!(d, 0.0);
        }
    }
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg") && text.contains("reward, C = 0.001"));
    // an unwritable destination is a failure, not a panic
    let o = bin()
        .args([
            "experiment",
            "fig2",
            "--quiet",
            "--episodes",
            "5",
            "--json",
            "/nonexistent/dir/x.json",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(!String::from_utf8_lossy(&o.stderr).contains("panicked"));
}

#[test]
fn guardrails_take_spec_names_and_the_reference_names_as_aliases() {
    let dir = tempfile::tempdir().unwrap();
    for (spec, reference) in [
        ("plausible-set", "non-iid"),
        ("cautious-theory", "iid"),
        ("posterior-predictive", "posterior"),
        ("oracle", "cheating"),
    ] {
        let run = |name: &str, g: &str| {
            let args = [
                "--episodes",
                "20",
                "--seed",
                "5",
                "--guardrail",
                g,
                "--alpha",
                "0.01",
                "-C",
                "0.05",
            ];
            std::fs::read(simulate(dir.path(), name, &args)).unwrap()
        };
        let a = run("spec.jsonl", spec);
        let b = run("ref.jsonl", reference);
        assert_eq!(a, b, "{spec} vs {reference}");
        // a guardrail in the loop changes the log: the name reached it
        let none = run("none.jsonl", "none");
        assert_ne!(a, none, "{spec}");
    }
}
