//! An observation no hypothesis can explain (SPEC §2): bad input by default,
//! treated as missing with `--skip-unexplained`, on both backends; and the
//! invariant that every estimate is a number in [0, 1] with a non-empty `I_α`.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use gpubound::audit::{self, AuditSettings, AuditTotals, StepResult};
use gpubound::engine::cpu::CpuEngine;
use gpubound::engine::gpu::GpuEngine;
use gpubound::engine::Engine;
use gpubound::estimators::Alphas;
use gpubound::Error;

const MODEL: &str = r#"{"type":"model","hypotheses":{"kind":"grid","k":2,"d":3},"observation":{"kind":"gaussian","sigma":1.0,"harm_threshold":1.0}}"#;
const STREAM: &str = r#"{"type":"stream","id":"e1","true_hypothesis":7,"candidates":[[0,0,0],[0,0,1],[1,1,0],[1,1,1]]}"#;
const POISON: &str = r#"{"type":"step","action":0,"outcome":1.7976931348623157e308}"#;
const MISSING: &str = r#"{"type":"step","action":0}"#;
const STEP: &str = r#"{"type":"step","action":3,"outcome":3.1}"#;

/// The issue's log: line 3's outcome is `f64::MAX`, which no hypothesis can
/// explain (every residual squared overflows).
fn poison_log() -> Vec<&'static str> {
    vec![MODEL, STREAM, POISON, STEP, STEP, STEP]
}

/// The same log with line 3's outcome removed.
fn missing_log() -> Vec<&'static str> {
    vec![MODEL, STREAM, MISSING, STEP, STEP, STEP]
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    /// the JSON report's lines, when it was written
    report: Option<Vec<serde_json::Value>>,
}

/// `gpubound audit LOG --out REPORT ARGS…` on a log with these lines.
fn audit_cli(lines: &[&str], args: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("poison.jsonl");
    std::fs::write(
        &log,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
    let out = dir.path().join("report.jsonl");
    let o = Command::new(env!("CARGO_BIN_EXE_gpubound"))
        .arg("audit")
        .arg(&log)
        .arg("--out")
        .arg(&out)
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    let report = Path::new(&out).exists().then(|| {
        std::fs::read_to_string(&out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    });
    Run {
        code: o.status.code().unwrap(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr,
        report,
    }
}

/// Asserts exit 2, one error line naming `poison.jsonl:LINE`, no report.
fn assert_unexplained_at(run: &Run, line: usize) {
    assert_eq!(run.code, 2, "exit code: {}", run.stderr);
    assert!(run.report.is_none(), "a report was written");
    assert!(
        run.stderr.contains(&format!("poison.jsonl:{line}:")),
        "no file:line {line} in {:?}",
        run.stderr
    );
    assert!(
        run.stderr.contains("--skip-unexplained"),
        "the error does not say how to go on: {:?}",
        run.stderr
    );
    assert_eq!(run.stderr.trim().lines().count(), 1, "{:?}", run.stderr);
}

const CPU: &[&str] = &["--backend", "cpu"];
const GPU: &[&str] = &["--backend", "gpu"];

fn with<'a>(backend: &[&'a str], rest: &[&'a str]) -> Vec<&'a str> {
    backend.iter().chain(rest).copied().collect()
}

#[test]
fn the_issue_log_is_bad_input_naming_its_line_on_the_cpu() {
    let run = audit_cli(
        &poison_log(),
        &with(CPU, &["-C", "0.2", "--fail-on-reject", "-q"]),
    );
    assert_unexplained_at(&run, 3);
}

#[test]
fn the_issue_log_is_bad_input_naming_its_line_on_the_gpu() {
    let run = audit_cli(
        &poison_log(),
        &with(GPU, &["-C", "0.2", "--fail-on-reject", "-q"]),
    );
    assert_unexplained_at(&run, 3);
}

/// With `--skip-unexplained` the report is exactly that of the log without
/// the outcome, the guardrail rejects as it does there (exit 3), and the
/// summary names the step.
fn skip_gives_the_report_without_the_outcome(backend: &[&str]) {
    let args = with(backend, &["-C", "0.2", "--fail-on-reject"]);
    let want = audit_cli(&missing_log(), &args);
    assert_eq!(want.code, 3, "{}", want.stderr);
    let mut skip = args.clone();
    skip.push("--skip-unexplained");
    let got = audit_cli(&poison_log(), &skip);
    assert_eq!(got.code, 3, "{}", got.stderr);
    assert_eq!(got.report, want.report);
    let summary = &got.stdout;
    assert!(
        summary.contains("1 outcome no hypothesis can explain"),
        "{summary}"
    );
    let listed = summary
        .lines()
        .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["e1", "1", "3"]);
    assert!(
        listed,
        "stream e1, step 1, line 3 not listed: {}",
        got.stdout
    );
    assert!(!want.stdout.contains("unexplained"), "{}", want.stdout);
}

#[test]
fn skipping_gives_the_report_without_the_outcome_on_the_cpu() {
    skip_gives_the_report_without_the_outcome(CPU);
}

#[test]
fn skipping_gives_the_report_without_the_outcome_on_the_gpu() {
    skip_gives_the_report_without_the_outcome(GPU);
}

/// The GPU holds features, σ and θ in (pairs of) f32: a value beyond that
/// range once became ∞ there, 0·∞ a NaN, and a log the CPU audits was called
/// "unexplained". Now the GPU refuses it, naming the value and the way out,
/// and the CPU audits it.
#[test]
fn values_beyond_f32_are_refused_by_the_gpu_not_called_unexplained() {
    let stream = r#"{"type":"stream","id":"e1","candidates":[[1e300,0,0],[0,0,1]]}"#;
    let step = r#"{"type":"step","action":1,"outcome":1.0}"#;
    let lines = [MODEL, stream, step];
    let cpu = audit_cli(&lines, &with(CPU, &["-q"]));
    assert_eq!(cpu.code, 0, "{}", cpu.stderr);
    assert_eq!(cpu.report.map(|r| r.len()), Some(1));
    let sigma = MODEL.replace(r#""sigma":1.0"#, r#""sigma":2e30"#);
    let theta = MODEL.replace(r#""harm_threshold":1.0"#, r#""harm_threshold":-2e30"#);
    // an outcome beyond f32 that σ = 1e30 still explains (residual/σ ≈ 1e10)
    let wide = MODEL.replace(r#""sigma":1.0"#, r#""sigma":1e30"#);
    let far = r#"{"type":"step","action":1,"outcome":1e40}"#;
    for (lines, what) in [
        (vec![MODEL, stream, step], "1e300"),
        (vec![&sigma, STREAM, STEP], "sigma = 2e30"),
        (vec![&theta, STREAM, STEP], "harm_threshold = -2e30"),
        (vec![&wide, STREAM, far], "1e40"),
    ] {
        let run = audit_cli(&lines, &with(GPU, &["-q"]));
        assert_eq!(run.code, 2, "{what}: {}", run.stderr);
        assert!(run.report.is_none(), "{what}");
        for needle in [what, "f32", "--backend cpu"] {
            assert!(
                run.stderr.contains(needle),
                "{what}: no {needle:?} in {}",
                run.stderr
            );
        }
        assert!(!run.stderr.contains("explain"), "{what}: {}", run.stderr);
        let cpu = audit_cli(&lines, &with(CPU, &["-q"]));
        assert_eq!(cpu.code, 0, "{what} on the CPU: {}", cpu.stderr);
    }
}

/// σ so small that every residual but an exact one is beyond −1e30 in log
/// space: the first outcome that no hypothesis's mean equals is unexplained.
/// (1e-16 keeps the squared residuals in f32's range, so the GPU computes
/// the same; 1e-200 overflows them in f64 too.)
#[test]
fn a_tiny_sigma_makes_every_inexact_outcome_unexplained() {
    // line 3: w·x = 0 for candidate 0 under every hypothesis: explained
    let exact = r#"{"type":"step","action":0,"outcome":0.0}"#;
    let near = r#"{"type":"step","action":3,"outcome":3.5}"#;
    for (sigma, backends) in [
        ("1e-16", [CPU, GPU].as_slice()),
        ("1e-200", [CPU].as_slice()),
    ] {
        let model = MODEL.replace("\"sigma\":1.0", &format!("\"sigma\":{sigma}"));
        let lines = [model.as_str(), STREAM, exact, near, near];
        for &backend in backends {
            let run = audit_cli(&lines, &with(backend, &["-q"]));
            assert_unexplained_at(&run, 4);
            // skipped: both 3.5 outcomes, the report of the log without them
            let skip = audit_cli(&lines, &with(backend, &["-q", "--skip-unexplained"]));
            assert_eq!(skip.code, 0, "{}", skip.stderr);
            let without = [model.as_str(), STREAM, exact, MISSING_3, MISSING_3];
            let want = audit_cli(&without, &with(backend, &["-q"]));
            assert_eq!(want.code, 0, "{}", want.stderr);
            assert_eq!(skip.report, want.report);
        }
    }
}
const MISSING_3: &str = r#"{"type":"step","action":3}"#;

/// A σ whose residuals the GPU cannot hold in f32 is refused there, with
/// the way out, rather than computed as NaN.
#[test]
fn the_gpu_refuses_a_sigma_outside_f32() {
    let model = MODEL.replace("\"sigma\":1.0", "\"sigma\":1e-200");
    let run = audit_cli(&[model.as_str(), STREAM, STEP], &with(GPU, &["-q"]));
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.report.is_none());
    assert!(run.stderr.contains("--backend cpu"), "{}", run.stderr);
}

/// A stream's last outcome is checked too, though no later step of the
/// stream uses it: the model is wrong for that stream.
#[test]
fn the_last_outcome_of_a_stream_is_checked() {
    let second = r#"{"type":"stream","id":"e2","candidates":[[0,0,0],[0,0,1],[1,1,0],[1,1,1]]}"#;
    let lines = [MODEL, STREAM, STEP, POISON, second, STEP, STEP];
    for backend in [CPU, GPU] {
        let run = audit_cli(&lines, &with(backend, &["-q"]));
        assert_unexplained_at(&run, 4);
        let skip = audit_cli(&lines, &with(backend, &["--skip-unexplained"]));
        assert_eq!(skip.code, 0, "{}", skip.stderr);
        let want = audit_cli(
            &[MODEL, STREAM, STEP, MISSING, second, STEP, STEP],
            &with(backend, &["-q"]),
        );
        assert_eq!(skip.report, want.report);
        assert!(skip.stdout.contains("1 outcome no hypothesis can explain"));
    }
}

/// Only hypotheses the posterior still holds count: with σ tiny, lines 3
/// and 4 leave w = (0,0,1) alone with a log posterior above −1e30, and the
/// outcome of line 5 only w = (1,1,1) explains.
#[test]
fn hypotheses_the_posterior_ruled_out_explain_nothing() {
    let model = MODEL.replace("\"sigma\":1.0", "\"sigma\":1e-16");
    let lines = [
        model.as_str(),
        STREAM,
        r#"{"type":"step","action":1,"outcome":1.0}"#,
        r#"{"type":"step","action":2,"outcome":0.0}"#,
        r#"{"type":"step","action":3,"outcome":3.0}"#,
    ];
    for backend in [CPU, GPU] {
        let run = audit_cli(&lines, &with(backend, &["-q"]));
        assert_unexplained_at(&run, 5);
    }
}

/// A bernoulli outcome is the harm indicator: anything but 0 or 1 is bad
/// input at its line (the reader's check), not an outcome no hypothesis
/// explains.
#[test]
fn a_bernoulli_outcome_other_than_0_or_1_is_bad_input() {
    let model = r#"{"type":"model","hypotheses":{"kind":"grid","k":2,"d":3},"observation":{"kind":"bernoulli"}}"#;
    for y in ["0.5", "2", "-1", "1e308"] {
        let step = format!(r#"{{"type":"step","action":3,"outcome":{y}}}"#);
        let run = audit_cli(&[model, STREAM, STEP_B, &step], &with(CPU, &["-q"]));
        assert_eq!(run.code, 2, "{y}: {}", run.stderr);
        assert!(run.stderr.contains("poison.jsonl:4:"), "{}", run.stderr);
        assert!(run.stderr.contains("0 or 1"), "{}", run.stderr);
    }
}
const STEP_B: &str = r#"{"type":"step","action":3,"outcome":1}"#;

/// A prior mass that underflows to 0 is named, with the way out.
#[test]
fn an_underflowing_prior_mass_is_named() {
    let model = r#"{"type":"model","hypotheses":{"kind":"list","params":[[0,0,0],[1,1,1],[0,1,0]],"log_prior":[0,-800,-1]},"observation":{"kind":"gaussian","sigma":1.0,"harm_threshold":1.0}}"#;
    let stream = r#"{"type":"stream","id":"e1","candidates":[[0,0,0],[1,1,1]]}"#;
    let run = audit_cli(&[model, stream, STEP_1], &with(CPU, &["-q"]));
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.report.is_none());
    assert!(run.stderr.contains("poison.jsonl"), "{}", run.stderr);
    assert!(run.stderr.contains("hypothesis 1"), "{}", run.stderr);
    assert!(run.stderr.contains("--prior-floor"), "{}", run.stderr);
    assert!(!run.stderr.contains("got 0"), "{}", run.stderr);
    // with a floor given, the audit runs
    let ok = audit_cli(
        &[model, stream, STEP_1],
        &with(CPU, &["-q", "--prior-floor", "1e-3"]),
    );
    assert_eq!(ok.code, 0, "{}", ok.stderr);
}

const STEP_1: &str = r#"{"type":"step","action":1,"outcome":3.1}"#;

// ---- library level: batch boundaries, and the never-NaN invariant ----

fn gpu() -> &'static GpuEngine {
    static ENGINE: OnceLock<Result<GpuEngine, String>> = OnceLock::new();
    match ENGINE.get_or_init(|| GpuEngine::new().map_err(|e| e.to_string())) {
        Ok(g) => g,
        Err(e) => panic!("the GPU tests need a wgpu adapter and found none ({e})"),
    }
}

fn settings(batch_elements: usize, skip: bool) -> AuditSettings {
    AuditSettings {
        alphas: Alphas::new(vec![0.00625, 0.1], 0.125).unwrap(),
        shared_world: false,
        batch_elements,
        skip_unexplained: skip,
    }
}

fn run_lib(
    text: &str,
    engine: &dyn Engine,
    s: &AuditSettings,
) -> gpubound::Result<(Vec<StepResult>, AuditTotals)> {
    let mut out = Vec::new();
    let totals = audit::run(
        &mut common::reader(text),
        engine,
        s,
        |r| {
            out.push(r);
            Ok(())
        },
        |_| {},
    )?;
    Ok((out, totals))
}

fn text(lines: &[&str]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// The same estimates, posteriors and outcomes, step by step.
fn assert_same(got: &[StepResult], want: &[StepResult], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g.record.line, w.record.line, "{what}");
        assert_eq!(g.record.outcome, w.record.outcome, "{what}");
        assert_eq!(g.posterior, w.posterior, "{what} line {}", g.record.line);
        assert_eq!(g.candidates, w.candidates, "{what} line {}", g.record.line);
    }
}

/// Unexplained outcomes at the end of a batch, at the start of one, and
/// several in one stream: the error names the first; skipped, the results
/// are those of the log without those outcomes, whatever the batch size.
#[test]
fn unexplained_outcomes_across_batch_boundaries() {
    let second = r#"{"type":"stream","id":"e2","candidates":[[0,0,0],[0,0,1],[1,1,0],[1,1,1]]}"#;
    let poisoned = [
        MODEL, STREAM, STEP, POISON, STEP, POISON, POISON, STEP, second, POISON, STEP, STEP, POISON,
    ];
    let missing: Vec<&str> = poisoned
        .iter()
        .map(|&l| if l == POISON { MISSING } else { l })
        .collect();
    let unexplained_lines = vec![4, 6, 7, 10, 13];
    let engines: [(&str, &dyn Engine); 2] = [("cpu", &CpuEngine::new()), ("gpu", gpu())];
    for (name, engine) in engines {
        // 8 hypotheses: batches of 1, 2, 3 and all steps
        for batch in [8, 16, 24, 1 << 20] {
            let what = format!("{name}, batch of {} steps", batch / 8);
            let err = run_lib(&text(&poisoned), engine, &settings(batch, false))
                .err()
                .unwrap_or_else(|| panic!("{what}: no error"));
            match &err {
                Error::Input { location, message } => {
                    assert_eq!(location.line, Some(4), "{what}: {err}");
                    assert_eq!(location.file, "test.jsonl");
                    assert!(message.contains("--skip-unexplained"), "{err}");
                }
                e => panic!("{what}: not bad input: {e}"),
            }
            let (got, totals) = run_lib(&text(&poisoned), engine, &settings(batch, true))
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            let (want, want_totals) =
                run_lib(&text(&missing), engine, &settings(batch, false)).unwrap();
            assert_same(&got, &want, &what);
            let lines: Vec<usize> = totals.unexplained.iter().map(|u| u.line).collect();
            assert_eq!(lines, unexplained_lines, "{what}");
            assert_eq!(totals.unexplained_count, 5, "{what}");
            assert_eq!(
                (totals.steps, totals.observed_steps),
                (want_totals.steps, want_totals.observed_steps),
                "{what}"
            );
            assert!(want_totals.unexplained.is_empty());
        }
    }
}

mod invariant {
    use super::*;
    use proptest::prelude::*;

    /// A step: its candidates, the action taken (modulo their number), the
    /// outcome.
    type Step = (Vec<Vec<i32>>, usize, Option<f64>);

    /// A model line, a log of one or two streams, and the setting.
    #[derive(Debug, Clone)]
    struct Case {
        k: u32,
        d: usize,
        bernoulli: bool,
        sigma: f64,
        streams: Vec<Vec<Step>>,
    }

    fn outcome(bernoulli: bool) -> BoxedStrategy<Option<f64>> {
        if bernoulli {
            prop_oneof![Just(None), Just(Some(0.0)), Just(Some(1.0))].boxed()
        } else {
            prop_oneof![
                3 => Just(None),
                6 => (-3.0f64..6.0).prop_map(Some),
                1 => Just(Some(f64::MAX)),
                1 => Just(Some(-f64::MAX)),
                1 => Just(Some(1e20)),
                1 => Just(Some(1e154)),
                1 => Just(Some(-1e300)),
                1 => (0i32..4).prop_map(|v| Some(v as f64)),
            ]
            .boxed()
        }
    }

    fn case() -> impl Strategy<Value = Case> {
        (
            2u32..=3,
            1usize..=4,
            any::<bool>(),
            prop_oneof![Just(1.0), Just(0.3), Just(1e-200), Just(1e-16), Just(1e6)],
        )
            .prop_flat_map(|(k, d, bernoulli, sigma)| {
                let candidate = prop::collection::vec(-2i32..=2, d);
                let step = (
                    prop::collection::vec(candidate, 1..4),
                    0usize..3,
                    outcome(bernoulli),
                );
                let stream = prop::collection::vec(step, 1..7);
                (
                    Just(k),
                    Just(d),
                    Just(bernoulli),
                    Just(sigma),
                    prop::collection::vec(stream, 1..3),
                )
            })
            .prop_map(|(k, d, bernoulli, sigma, streams)| Case {
                k,
                d,
                bernoulli,
                sigma,
                streams,
            })
    }

    fn log_of(c: &Case) -> String {
        let obs = if c.bernoulli {
            r#"{"kind":"bernoulli"}"#.to_string()
        } else {
            format!(
                r#"{{"kind":"gaussian","sigma":{:e},"harm_threshold":1.0}}"#,
                c.sigma
            )
        };
        let mut s = format!(
            "{{\"type\":\"model\",\"hypotheses\":{{\"kind\":\"grid\",\"k\":{},\"d\":{}}},\"observation\":{obs}}}\n",
            c.k, c.d
        );
        for (i, stream) in c.streams.iter().enumerate() {
            s += &format!("{{\"type\":\"stream\",\"id\":\"s{i}\"}}\n");
            for (cands, action, y) in stream {
                let action = action % cands.len();
                let y = y.map_or(String::new(), |y| format!(",\"outcome\":{y:e}"));
                s += &format!(
                    "{{\"type\":\"step\",\"candidates\":{cands:?},\"action\":{action}{y}}}\n"
                );
            }
        }
        s
    }

    /// Every estimate a number in [0, 1], `I_α` non-empty, a MAP
    /// probability in (0, 1]; or bad input.
    fn check(c: &Case, engine: &dyn Engine, skip: bool) -> Result<(), TestCaseError> {
        let h = (c.k as usize).pow(c.d as u32);
        let s = AuditSettings {
            alphas: Alphas::new(vec![0.3, 1e-3], 1.0 / h as f64).unwrap(),
            shared_world: false,
            batch_elements: 4 * h,
            skip_unexplained: skip,
        };
        match run_lib(&log_of(c), engine, &s) {
            Err(e) => {
                prop_assert!(e.is_bad_input(), "not bad input: {e}");
                // skipping, only a model the GPU cannot compute stops it
                prop_assert!(
                    !skip || matches!(e, Error::Setting(_)),
                    "skipping, yet: {e}"
                );
            }
            Ok((steps, _)) => {
                for r in &steps {
                    let p = &r.posterior;
                    prop_assert!(p.map_probability > 0.0 && p.map_probability <= 1.0);
                    prop_assert!(p.entropy.is_finite() && p.entropy >= 0.0);
                    prop_assert!(p.plausible_set_size.iter().all(|&n| n >= 1 && n <= h));
                    for e in &r.candidates {
                        let mut all = vec![e.posterior_predictive, e.cautious_theory];
                        all.extend(&e.plausible_set);
                        all.extend(&e.ville_max);
                        all.extend(&e.ville_sum);
                        for v in all {
                            prop_assert!(
                                (0.0..=1.0).contains(&v),
                                "estimate {v} at line {}",
                                r.record.line
                            );
                        }
                        prop_assert!((e.cautious_hypothesis as usize) < h);
                    }
                }
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]
        #[test]
        fn estimates_are_numbers_in_0_1_on_the_cpu(c in case(), skip in any::<bool>()) {
            check(&c, &CpuEngine::new(), skip)?;
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
        #[test]
        fn estimates_are_numbers_in_0_1_on_the_gpu(c in case(), skip in any::<bool>()) {
            check(&c, gpu(), skip)?;
        }
    }
}
