//! `gpubound audit --sampler` (src/sampler/audit.rs) end to end: on a grid
//! small enough to enumerate, its estimates against the exact ones (the
//! enumerated audit's report, and a posterior enumerated here from the log);
//! the redraw rule; reproducibility; the errors; and a d = 48 log.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use gpubound::model::ObservationModel;
use gpubound::sampler::audit::DEFAULT_REDRAW_ESS;
use gpubound::sampler::context::Context;
use gpubound::sampler::SamplerModel;
use serde_json::Value;

const SIGMA: f64 = 1.0;
const THETA: f64 = 3.0;
const D: usize = 6;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gpubound"))
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

fn ok(args: &[&str]) -> Output {
    let out = run(args);
    assert!(
        out.status.success(),
        "gpubound {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn model_json(d: usize, theta: f64) -> String {
    format!(
        r#"{{"hypotheses":{{"kind":"grid","k":2,"d":{d}}},"observation":{{"kind":"gaussian","sigma":{SIGMA},"harm_threshold":{theta}}}}}"#
    )
}

/// A simulated log of `streams` streams of `steps` steps at dimension `d`
/// (a uniform agent, harm threshold `theta`), and an untrained sampler for
/// its model (`--steps 0`: the policy is its residual field alone).
fn setup(dir: &Path, d: usize, theta: f64, streams: usize, steps: usize) -> (PathBuf, PathBuf) {
    let log = dir.join(format!("log{d}.jsonl"));
    let model = dir.join(format!("m{d}.json"));
    let sampler = dir.join(format!("s{d}.bin"));
    std::fs::write(&model, model_json(d, theta)).unwrap();
    simulate(d, theta, streams, steps, 5, &log);
    train(&model, &sampler, &["--steps", "0"]);
    (log, sampler)
}

/// `gpubound simulate` of a uniform agent without explosions.
fn simulate(d: usize, theta: f64, streams: usize, steps: usize, seed: u64, out: &Path) {
    let (d, theta, n, t, seed) = (
        d.to_string(),
        theta.to_string(),
        streams.to_string(),
        steps.to_string(),
        seed.to_string(),
    );
    ok(&[
        "simulate",
        "-q",
        "-d",
        &d,
        "--explosion-threshold",
        &theta,
        "--agent",
        "uniform",
        "--no-explosions",
        "-n",
        &n,
        "--steps",
        &t,
        "--seed",
        &seed,
        "-o",
        s(out),
    ]);
}

/// `gpubound sampler train` for the model file `model`.
fn train(model: &Path, out: &Path, extra: &[&str]) {
    let mut args = vec!["sampler", "train", "-q", "--model", s(model), "-o", s(out)];
    args.extend_from_slice(extra);
    ok(&args);
}

fn jsonl(text: &[u8]) -> Vec<Value> {
    std::str::from_utf8(text)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The audit's JSONL report (`-o` to a file in `dir`).
fn audit(dir: &Path, log: &Path, extra: &[&str]) -> Vec<Value> {
    let out = dir.join("report.jsonl");
    let mut args = vec!["audit", s(log), "-q", "-o", s(&out)];
    args.extend_from_slice(extra);
    ok(&args);
    jsonl(&std::fs::read(&out).unwrap())
}

/// One step of the log, with the exact posterior before it, enumerated
/// here from the log (not by the audit): every `w` of the grid in index
/// order (first coordinate most significant).
struct Exact {
    /// normalised posterior
    p: Vec<f64>,
    /// `q_h(a)`, `[a][h]`
    q: Vec<Vec<f64>>,
    /// `ln p(D_t)`: logsumexp over the grid of `Context::log_reward`
    log_z: f64,
}

fn grid(d: usize) -> Vec<Vec<f64>> {
    (0..1usize << d)
        .map(|i| (0..d).map(|j| ((i >> (d - 1 - j)) & 1) as f64).collect())
        .collect()
}

fn exact_steps(log: &Path, d: usize, theta: f64) -> Vec<Exact> {
    let obs = ObservationModel::Gaussian {
        sigma: SIGMA,
        harm_threshold: theta,
    };
    let model = SamplerModel::new(2, d, obs).unwrap();
    let ws = grid(d);
    let dot = |w: &[f64], x: &[f64]| w.iter().zip(x).map(|(a, b)| a * b).sum::<f64>();
    let mut out = Vec::new();
    let mut arms: Vec<Vec<f64>> = Vec::new();
    let mut ctx = Context::new(&model);
    let text = std::fs::read_to_string(log).unwrap();
    for line in text.lines().skip(1) {
        let v: Value = serde_json::from_str(line).unwrap();
        if v["type"] == "stream" {
            arms = v["candidates"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| {
                    a.as_array()
                        .unwrap()
                        .iter()
                        .map(|x| x.as_f64().unwrap())
                        .collect()
                })
                .collect();
            ctx = Context::new(&model);
            continue;
        }
        let lr: Vec<f64> = ws.iter().map(|w| ctx.log_reward(&model, w)).collect();
        let top = lr.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = lr.iter().map(|l| (l - top).exp()).sum();
        let p = lr.iter().map(|l| (l - top).exp() / sum).collect();
        let q = arms
            .iter()
            .map(|x| ws.iter().map(|w| obs.harm(dot(w, x))).collect())
            .collect();
        out.push(Exact {
            p,
            q,
            log_z: top + sum.ln(),
        });
        let a = v["action"].as_u64().unwrap() as usize;
        if let Some(y) = v["outcome"].as_f64() {
            ctx.push(&model, &arms[a], y);
        }
    }
    out
}

/// The cautious theory's `q`, when no hypothesis of another `q` comes
/// within a factor 0.8 of the argmax's `p·q` and the argmax has at least
/// 100 effective samples of mass: then sampling cannot change it.
fn stable_cautious(e: &Exact, a: usize, ess: f64) -> Option<f64> {
    let q = &e.q[a];
    let best = (0..q.len())
        .max_by(|&i, &j| {
            (e.p[i] * q[i])
                .total_cmp(&(e.p[j] * q[j]))
                .then(q[i].total_cmp(&q[j]))
        })
        .unwrap();
    let top = e.p[best] * q[best];
    let rival = (0..q.len()).any(|h| (q[h] - q[best]).abs() > 1e-12 && e.p[h] * q[h] > 0.8 * top);
    (!rival && e.p[best] * ess >= 100.0).then_some(q[best])
}

/// The plausible set's value (SPEC §3.3), when every hypothesis within a
/// factor 2 of the cut (`p_h / (p_h + mass ahead)` against α) has a `q` no
/// larger than the value, which hypotheses safely inside attain.
fn stable_plausible(e: &Exact, a: usize, alpha: f64) -> Option<f64> {
    let q = &e.q[a];
    let ratio: Vec<f64> = (0..q.len())
        .map(|h| {
            let ahead: f64 = e.p.iter().filter(|&&pj| pj > e.p[h]).sum();
            e.p[h] / (e.p[h] + ahead)
        })
        .collect();
    let value = (0..q.len())
        .filter(|&h| ratio[h] >= alpha)
        .map(|h| q[h])
        .fold(0.0, f64::max);
    let safe = (0..q.len())
        .filter(|&h| ratio[h] >= 2.0 * alpha)
        .map(|h| q[h])
        .fold(0.0, f64::max);
    let risky = (0..q.len())
        .filter(|&h| ratio[h] < 2.0 * alpha && ratio[h] >= 0.5 * alpha)
        .map(|h| q[h])
        .fold(0.0, f64::max);
    (safe == value && risky <= value).then_some(value)
}

/// The sampled report against the enumerated report and the posterior
/// enumerated here. Returns (pairs compared, cautious stable, plausible
/// stable).
fn compare(
    sampled: &[Value],
    enumerated: &[Value],
    exact: &[Exact],
    n: f64,
) -> (usize, usize, usize) {
    assert_eq!(sampled.len(), exact.len());
    assert_eq!(enumerated.len(), exact.len());
    let (mut pairs, mut cautious, mut plausible) = (0, 0, 0);
    for ((s, en), e) in sampled.iter().zip(enumerated).zip(exact) {
        let at = format!("stream {} step {}", s["stream"], s["step"]);
        let ess = s["sampled"]["ess"].as_f64().unwrap();
        assert!((1.0..=n).contains(&ess), "{at}: ESS {ess}");
        // ln Ẑ: Var(Ẑ)/Z² ≈ (N/ESS − 1)/N for importance sampling; 5 sd
        let lz = s["sampled"]["log_normaliser"].as_f64().unwrap();
        let sd = ((n / ess - 1.0).max(0.0) / n).sqrt();
        assert!(
            (lz - e.log_z).abs() <= 5.0 * sd + 1e-9,
            "{at}: ln Ẑ = {lz}, exact {} (sd {sd})",
            e.log_z
        );
        let alpha: f64 = s["posterior"]["plausible_set_size"]
            .as_object()
            .unwrap()
            .keys()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        for (a, (cs, ce)) in s["candidates"]
            .as_array()
            .unwrap()
            .iter()
            .zip(en["candidates"].as_array().unwrap())
            .enumerate()
        {
            pairs += 1;
            // the enumeration here agrees with the enumerated audit
            let pp_exact: f64 = e.p.iter().zip(&e.q[a]).map(|(p, q)| p * q).sum();
            let pp_audit = ce["posterior_predictive"].as_f64().unwrap();
            assert!(
                (pp_exact - pp_audit).abs() < 1e-9,
                "{at} a={a}: {pp_exact} vs {pp_audit}"
            );
            // Σ p·q from weighted samples: sd ≈ sd_p(q)/√ESS; 5 sd
            let var: f64 =
                e.p.iter()
                    .zip(&e.q[a])
                    .map(|(p, q)| p * (q - pp_exact).powi(2))
                    .sum();
            let pp = cs["posterior_predictive"].as_f64().unwrap();
            assert!(
                (pp - pp_audit).abs() <= 5.0 * (var / ess).sqrt() + 1e-9,
                "{at} a={a}: posterior predictive {pp}, exact {pp_audit}, ESS {ess}"
            );
            if let Some(want) = stable_cautious(e, a, ess) {
                cautious += 1;
                let got = cs["cautious_theory"].as_f64().unwrap();
                assert!(
                    (got - want).abs() < 1e-12,
                    "{at} a={a}: cautious {got}, exact {want}"
                );
                assert_eq!(ce["cautious_theory"].as_f64().unwrap(), want);
            }
            if let Some(want) = stable_plausible(e, a, alpha) {
                plausible += 1;
                let key = alpha_key(cs);
                let got = cs["plausible_set"][&key].as_f64().unwrap();
                assert!(
                    (got - want).abs() < 1e-12,
                    "{at} a={a}: plausible {got}, exact {want}"
                );
                assert_eq!(ce["plausible_set"][&key].as_f64().unwrap(), want);
            }
        }
    }
    (pairs, cautious, plausible)
}

fn alpha_key(c: &Value) -> String {
    c["plausible_set"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone()
}

/// Both ways of keeping a set (fresh at every step, and sequential
/// importance sampling with the default redraw rule) estimate what the
/// enumerated audit computes, within Monte Carlo error.
#[test]
fn sampled_estimates_agree_with_the_enumerated_audit() {
    let dir = tempfile::tempdir().unwrap();
    let (log, sampler) = setup(dir.path(), D, THETA, 2, 25);
    let exact = exact_steps(&log, D, THETA);
    let enumerated = audit(dir.path(), &log, &["--backend", "cpu"]);
    for (n, extra) in [(1usize << 14, vec!["--redraw-ess", "1"]), (1 << 15, vec![])] {
        let ns = n.to_string();
        let mut args = vec!["--sampler", s(&sampler), "--samples", &ns, "--seed", "3"];
        args.extend(extra.iter().copied());
        let sampled = audit(dir.path(), &log, &args);
        let (pairs, cautious, plausible) = compare(&sampled, &enumerated, &exact, n as f64);
        // the exact comparisons are not vacuous
        assert_eq!(pairs, 500);
        assert!(
            cautious >= 400 && plausible >= 400,
            "{extra:?}: {cautious}, {plausible} of {pairs}"
        );
        // the MAP: the heaviest sample's grid index, the exact MAP where it is clear
        for (st, e) in sampled.iter().zip(&exact) {
            let mut sorted = e.p.clone();
            sorted.sort_by(|a, b| b.total_cmp(a));
            if sorted[0] > 2.0 * sorted[1] {
                let map =
                    e.p.iter()
                        .enumerate()
                        .max_by(|a, b| a.1.total_cmp(b.1))
                        .unwrap()
                        .0;
                assert_eq!(
                    st["posterior"]["map_hypothesis"].as_u64().unwrap() as usize,
                    map
                );
            }
        }
    }
}

/// `--redraw-ess 1` draws at every step; the default keeps a stream's set
/// while its ESS is at least `DEFAULT_REDRAW_ESS · N`; every stream's first
/// step draws, from the prior.
#[test]
fn the_redraw_rule_is_the_one_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let (log, sampler) = setup(dir.path(), D, THETA, 3, 25);
    let n = 2048.0;
    let base = ["--sampler", s(&sampler), "--samples", "2048"];
    let every = audit(
        dir.path(),
        &log,
        &[&base[..], &["--redraw-ess", "1"]].concat(),
    );
    assert_eq!(every.len(), 75);
    assert!(every.iter().all(|r| r["sampled"]["redrawn"] == true));
    let default = audit(dir.path(), &log, &base);
    let (mut kept, mut redrawn) = (0, 0);
    for r in &default {
        let t = &r["sampled"];
        let ess = t["ess"].as_f64().unwrap();
        if r["step"] == 1 {
            assert_eq!(t["redrawn"], true);
            // drawn from the prior before any data: every weight equal
            assert!((ess - n).abs() < 1e-9 * n, "{ess}");
            assert!(t["log_normaliser"].as_f64().unwrap().abs() < 1e-12);
        } else if t["redrawn"] == true {
            redrawn += 1;
        } else {
            kept += 1;
            // the ESS a step reports is the one the rule saw
            assert!(ess >= DEFAULT_REDRAW_ESS * n, "{r}");
        }
    }
    assert!(kept > 0 && redrawn > 0, "kept {kept}, redrawn {redrawn}");
}

#[test]
fn the_same_seed_gives_the_same_report_whatever_the_threads() {
    let dir = tempfile::tempdir().unwrap();
    let (log, sampler) = setup(dir.path(), D, THETA, 4, 10);
    let report = |seed: &str, threads: &str, format: &str| {
        let out = bin()
            .env("RAYON_NUM_THREADS", threads)
            .args([
                "audit",
                s(&log),
                "-q",
                "--format",
                format,
                "--sampler",
                s(&sampler),
            ])
            .args(["--samples", "512", "--seed", seed])
            .output()
            .unwrap();
        assert!(out.status.success());
        out.stdout
    };
    for format in ["jsonl", "csv"] {
        let a = report("7", "1", format);
        assert!(!a.is_empty());
        assert_eq!(a, report("7", "2", format), "{format}");
        assert_eq!(a, report("7", "3", format), "{format}");
        assert_ne!(a, report("8", "2", format), "{format}");
    }
}

fn fails(args: &[&str]) -> String {
    let out = run(args);
    assert_eq!(
        out.status.code(),
        Some(2),
        "gpubound {args:?} should fail with bad input"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn settings_that_cannot_work_are_refused_with_the_way_out() {
    let dir = tempfile::tempdir().unwrap();
    let (log, sampler) = setup(dir.path(), D, THETA, 1, 5);
    let audit_fails = |sampler: &Path, extra: &[&str]| {
        let mut args = vec!["audit", s(&log), "-q", "--sampler", s(sampler)];
        args.extend_from_slice(extra);
        fails(&args)
    };
    // a sampler for another model: both models named
    let other = dir.path().join("m5.json");
    let other_bin = dir.path().join("s5.bin");
    std::fs::write(&other, model_json(5, THETA)).unwrap();
    train(&other, &other_bin, &["--steps", "0"]);
    let e = audit_fails(&other_bin, &["--samples", "64"]);
    assert!(e.contains(r#""d":5"#) && e.contains(r#""d":6"#), "{e}");
    assert!(e.contains("trained for the model"), "{e}");
    // another harm threshold is another model too
    let e = audit_fails(&sampler, &["--samples", "64", "--harm-threshold", "2"]);
    assert!(e.contains(r#""harm_threshold":2.0"#), "{e}");
    let e = audit_fails(&sampler, &["--samples", "0"]);
    assert!(e.contains("--samples must be in 1..="), "{e}");
    // a sample set is a hypothesis list: its limits
    let e = audit_fails(&sampler, &["--samples", "100", "--max-hypotheses", "64"]);
    assert!(e.contains("--samples 100 at dimension 6"), "{e}");
    assert!(e.contains("--max-hypotheses"), "{e}");
    let e = audit_fails(&sampler, &["--samples", "8", "--redraw-ess", "1.5"]);
    assert!(e.contains("--redraw-ess must be in [0, 1]"), "{e}");
    let e = audit_fails(&sampler, &["--samples", "8", "--shared-world"]);
    assert!(e.contains("--shared-world does not apply"), "{e}");
    let e = audit_fails(&sampler, &["--samples", "8", "--backend", "gpu"]);
    assert!(e.contains("--backend gpu does not apply"), "{e}");
    let e = audit_fails(&dir.path().join("none.bin"), &["--samples", "8"]);
    assert!(e.contains("none.bin"), "{e}");
    // --samples without --sampler, and --sampler without --samples (clap)
    fails(&["audit", s(&log), "-q", "--samples", "8"]);
    fails(&["audit", s(&log), "-q", "--sampler", s(&sampler)]);

    // a d = 48 log without --sampler: too large to enumerate, and how to proceed
    let log48 = dir.path().join("log48.jsonl");
    simulate(48, 15.0, 1, 2, 1, &log48);
    let e = fails(&["audit", s(&log48), "-q"]);
    assert!(
        e.contains("2^48 = 281474976710656 hypotheses is too large"),
        "{e}"
    );
    assert!(e.contains("gpubound sampler train --model"), "{e}");
    assert!(e.contains("--sampler sampler.bin --samples"), "{e}");
    assert!(e.contains(r#""d":48"#), "{e}");
}

/// d = 48, a grid of 2.8e14 hypotheses: simulate, train a few steps, audit
/// in CSV and JSON Lines, with the summary.
#[test]
fn a_d48_log_is_audited_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let log = d.join("log48.jsonl");
    let model = d.join("m48.json");
    let sampler = d.join("s48.bin");
    simulate(48, 15.0, 2, 6, 2, &log);
    std::fs::write(&model, model_json(48, 15.0)).unwrap();
    let few = ["--steps", "3", "--contexts", "2", "--samples", "4"];
    train(&model, &sampler, &few);
    let common = [
        "--sampler",
        s(&sampler),
        "--samples",
        "256",
        "--redraw-ess",
        "0.5",
    ];
    let csv = d.join("r.csv");
    let out = ok(&[
        &["audit", s(&log), "--format", "csv", "-o", s(&csv)],
        &common[..],
    ]
    .concat());
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains("every estimate is over N = 256 hypotheses"),
        "{summary}"
    );
    assert!(summary.contains("3 training steps; seed 1"), "{summary}");
    assert!(summary.contains("not for the grid"), "{summary}");
    assert!(summary.contains("ESS per step: mean"), "{summary}");
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (ess, lz, re, map) = (
        col("sample_ess"),
        col("sample_log_normaliser"),
        col("sample_redrawn"),
        col("map_hypothesis"),
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 2 * 6 * 10);
    for r in &rows {
        let e: f64 = r[ess].parse().unwrap();
        let z: f64 = r[lz].parse().unwrap();
        assert!((1.0..=256.0).contains(&e) && z.is_finite(), "{r:?}");
        assert!(r[re] == "true" || r[re] == "false");
        // a grid index of {0,1}^48
        assert!(r[map].parse::<u64>().unwrap() < 1 << 48);
    }
    // before any data ln Ẑ = ln p(∅) = 0; after, the data's log density is negative here
    assert_eq!(rows[0][lz], "0");
    let later: f64 = rows[10][lz].parse().unwrap();
    assert!(later < 0.0, "{later}");
    let report = d.join("r.jsonl");
    ok(&[&["audit", s(&log), "-q", "-o", s(&report)], &common[..]].concat());
    let steps = jsonl(&std::fs::read(&report).unwrap());
    assert_eq!(steps.len(), 12);
    for st in &steps {
        let t = &st["sampled"];
        assert!(t["ess"].as_f64().unwrap().is_finite());
        assert!(t["log_normaliser"].as_f64().unwrap().is_finite());
        assert!(t["redrawn"].is_boolean());
        assert!(t["distinct"].as_u64().unwrap() >= 1);
    }
    // the same numbers in both reports
    assert_eq!(
        steps[1]["sampled"]["ess"].as_f64().unwrap(),
        rows[10][ess].parse::<f64>().unwrap()
    );
}

/// `convert` never enumerates a grid, so a log too large to enumerate
/// converts to Parquet and back (it once refused the d = 48 grid as "too
/// large"), and its sampled audits agree in every cell but `line` (a JSON
/// Lines log numbers its lines, a Parquet log its rows).
#[test]
fn a_d48_log_converts_to_parquet_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (log, model, sampler) = (d.join("log48.jsonl"), d.join("m48.json"), d.join("s48.bin"));
    simulate(48, 15.0, 3, 5, 4, &log);
    std::fs::write(&model, model_json(48, 15.0)).unwrap();
    train(&model, &sampler, &["--steps", "0"]);
    let (parquet, back) = (d.join("log48.parquet"), d.join("back.jsonl"));
    ok(&["convert", s(&log), "-o", s(&parquet), "-q"]);
    ok(&["convert", s(&parquet), "-o", s(&back), "-q"]);
    let audit = |log: &Path, name: &str| {
        let out = d.join(name);
        let args = ["--sampler", s(&sampler), "--samples", "64", "-q"];
        ok(&[
            &["audit", s(log), "--format", "csv", "-o", s(&out)],
            &args[..],
        ]
        .concat());
        let text = std::fs::read_to_string(&out).unwrap();
        let line = text
            .lines()
            .next()
            .unwrap()
            .split(',')
            .position(|c| c == "line");
        let line = line.expect("a line column");
        text.lines()
            .map(|l| {
                let mut cells: Vec<&str> = l.split(',').collect();
                cells.remove(line);
                cells.join(",")
            })
            .collect::<Vec<_>>()
    };
    let want = audit(&log, "a.csv");
    assert_eq!(want.len(), 1 + 3 * 5 * 10);
    assert_eq!(audit(&parquet, "b.csv"), want);
    assert_eq!(audit(&back, "c.csv"), want);
}
