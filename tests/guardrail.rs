//! The online guardrail (`gpubound::guardrail`) replays logs to the audit's
//! bits: every estimator of every candidate, the posterior summary and the
//! verdict, at every step, on simulated bandit and contextual logs (Gaussian
//! and Bernoulli, grid and list hypotheses, non-uniform priors, missing
//! outcomes); and it refuses bad input as the log reader does.

mod common;

use std::fmt::Write as _;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use gpubound::audit::StepResult;
use gpubound::engine::cpu::CpuEngine;
use gpubound::engine::{BackendChoice, CandidateTable};
use gpubound::estimators::{Alphas, Estimator, EstimatorKind};
use gpubound::guardrail::Guardrail;
use gpubound::log::LogEvent;
use gpubound::report;
use gpubound::Error;

const DELTAS: [f64; 4] = [0.5, 0.1, 0.01, 0.001];

fn alphas_for(text: &str) -> Alphas {
    let floor = common::reader(text)
        .model()
        .hypotheses
        .smallest_prior_mass();
    Alphas::from_deltas(&DELTAS, floor).unwrap()
}

fn plausible(i: usize) -> Estimator {
    Estimator {
        kind: EstimatorKind::PlausibleSet,
        alpha: Some(i),
    }
}

/// Replays `text` through a guardrail and asserts, at every step, the
/// audit's numbers to the bit and the audit's verdict at `threshold` for
/// every estimator. Returns the number of steps compared.
fn replay_equals_audit(text: &str, threshold: f64) -> usize {
    let alphas = alphas_for(text);
    let audit: Vec<StepResult> =
        common::audit_text(text, &alphas.values, alphas.prior_floor, &CpuEngine::new());
    let mut reader = common::reader(text);
    let model = reader.model().clone();
    let estimators: Vec<Estimator> = Estimator::all(&alphas)
        .into_iter()
        .filter(|e| e.kind != EstimatorKind::Oracle)
        .collect();
    let mut guards: Vec<Guardrail> = estimators
        .iter()
        .map(|&e| {
            Guardrail::new(
                model.clone(),
                alphas.clone(),
                threshold,
                e,
                BackendChoice::Cpu,
            )
            .unwrap()
        })
        .collect();
    let mut audited = audit.iter();
    let mut steps = 0;
    while let Some(event) = reader.next_event().unwrap() {
        let record = match event {
            LogEvent::Stream(_) => {
                guards.iter_mut().for_each(Guardrail::reset);
                continue;
            }
            LogEvent::Step(r) => r,
        };
        let want = audited.next().expect("the audit has this step");
        let at = format!("line {}", record.line);
        assert_eq!(guards[0].steps(), record.step - 1, "{at}");
        let got = guards[0].estimates(&record.table).unwrap().clone();
        assert_eq!(got.posterior, want.posterior, "{at}");
        assert_eq!(got.candidates.len(), want.candidates.len(), "{at}");
        for (a, (g, w)) in got.candidates.iter().zip(&want.candidates).enumerate() {
            let mut w = w.clone();
            w.oracle = None; // unknown online
            assert_eq!(*g, w, "{at}, candidate {a}");
        }
        // the labelled columns are the report's (csv header) columns
        for (label, column) in got.columns(&alphas) {
            let e = estimators
                .iter()
                .find(|e| e.label(&alphas) == label)
                .unwrap();
            let want: Vec<f64> = want
                .candidates
                .iter()
                .map(|c| e.value(c).unwrap())
                .collect();
            assert_eq!(column, want, "{at}, {label}");
        }
        for (g, e) in guards.iter_mut().zip(&estimators) {
            let v = g.check(&record.table, record.action).unwrap();
            let r = report::Verdict::of(want, e, threshold).unwrap();
            assert_eq!(v.allowed, !r.rejected, "{at}, {}", e.label(&alphas));
            assert_eq!(
                (v.safest_candidate, v.safest_estimate),
                (r.safest_candidate, r.safest_estimate),
                "{at}, {}",
                e.label(&alphas)
            );
            assert_eq!(
                v.estimate,
                e.value(want.taken()).unwrap(),
                "{at}, {}",
                e.label(&alphas)
            );
            g.observe(&record.table, record.action, record.outcome)
                .unwrap();
        }
        steps += 1;
    }
    assert!(audited.next().is_none());
    steps
}

/// A log of `gpubound simulate` (Gaussian exploding bandit on a grid).
fn simulated(args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sim.jsonl");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gpubound"))
        .arg("simulate")
        .args(args)
        .args(["-q", "-o"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn simulated_bandit_replays_to_the_audit_bits() {
    let text = simulated(&["-n", "12", "--steps", "40", "--seed", "5"]);
    let steps = text.matches(r#""type":"step""#).count();
    assert!(steps > 40, "{steps} steps");
    assert_eq!(replay_equals_audit(&text, 0.01), steps);
}

#[test]
fn a_long_narrow_stream_replays_to_the_audit_bits() {
    // 400 steps without explosions: a posterior narrow enough that most
    // hypotheses are skipped as negligible
    let text = simulated(&[
        "-n",
        "1",
        "--steps",
        "400",
        "--seed",
        "9",
        "--no-explosions",
    ]);
    assert_eq!(replay_equals_audit(&text, 0.05), 400);
}

/// The kinds of log `generated` writes.
#[derive(Clone, Copy)]
struct Shape {
    bernoulli: bool,
    /// list hypotheses with a random log prior (else a grid)
    list: bool,
    /// real-valued candidates at every step (else a bandit: integer
    /// candidates stated once per stream)
    contextual: bool,
}

fn numbers(v: &[f64]) -> String {
    let parts: Vec<String> = v.iter().map(|x| serde_json::json!(x).to_string()).collect();
    format!("[{}]", parts.join(","))
}

/// A log drawn from its own model: per stream a true hypothesis, outcomes
/// drawn from it, one in eight missing.
fn generated(shape: Shape, seed: u64) -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (d, a_count) = (4usize, 5usize);
    let mut text = String::new();
    let params: Vec<Vec<f64>> = if shape.list {
        (0..60)
            .map(|_| (0..d).map(|_| rng.random_range(-1.5..1.5)).collect())
            .collect()
    } else {
        // the grid {0,1,2}^4, first coordinate most significant
        (0..81)
            .map(|i: usize| {
                (0..d)
                    .map(|j| ((i / 3usize.pow((d - 1 - j) as u32)) % 3) as f64)
                    .collect()
            })
            .collect()
    };
    let hypotheses = if shape.list {
        let rows: Vec<String> = params.iter().map(|p| numbers(p)).collect();
        let prior: Vec<f64> = params.iter().map(|_| rng.random_range(-6.0..0.0)).collect();
        format!(
            r#"{{"kind":"list","params":[{}],"log_prior":{}}}"#,
            rows.join(","),
            numbers(&prior)
        )
    } else {
        format!(r#"{{"kind":"grid","k":3,"d":{d}}}"#)
    };
    let observation = if shape.bernoulli {
        r#"{"kind":"bernoulli"}"#.to_string()
    } else {
        r#"{"kind":"gaussian","sigma":0.8,"harm_threshold":3.0}"#.to_string()
    };
    writeln!(
        text,
        r#"{{"type":"model","hypotheses":{hypotheses},"observation":{observation}}}"#
    )
    .unwrap();
    let table = |rng: &mut ChaCha8Rng| -> Vec<Vec<f64>> {
        (0..a_count)
            .map(|_| {
                (0..d)
                    .map(|_| {
                        if shape.contextual {
                            rng.random_range(-1.0..1.0)
                        } else {
                            rng.random_range(0..2) as f64
                        }
                    })
                    .collect()
            })
            .collect()
    };
    let rows = |t: &[Vec<f64>]| -> String {
        let r: Vec<String> = t.iter().map(|x| numbers(x)).collect();
        format!("[{}]", r.join(","))
    };
    for s in 0..4 {
        let truth = rng.random_range(0..params.len());
        let shared = table(&mut rng);
        writeln!(
            text,
            r#"{{"type":"stream","id":"s{s}","true_hypothesis":{truth},"candidates":{}}}"#,
            rows(&shared)
        )
        .unwrap();
        for _ in 0..30 {
            let own = shape.contextual.then(|| table(&mut rng));
            let t = own.as_ref().unwrap_or(&shared);
            let action = rng.random_range(0..a_count);
            let wx: f64 = params[truth]
                .iter()
                .zip(&t[action])
                .map(|(w, x)| w * x)
                .sum();
            let outcome = if rng.random_range(0..8) == 0 {
                "null".to_string()
            } else if shape.bernoulli {
                let p = 1.0 / (1.0 + (-wx).exp());
                ((rng.random::<f64>() < p) as u8).to_string()
            } else {
                let noise: f64 =
                    rand_distr::Distribution::sample(&rand_distr::StandardNormal, &mut rng);
                serde_json::json!(wx + 0.8 * noise).to_string()
            };
            let own = own
                .map(|t| format!(r#","candidates":{}"#, rows(&t)))
                .unwrap_or_default();
            writeln!(
                text,
                r#"{{"type":"step","action":{action},"outcome":{outcome}{own}}}"#
            )
            .unwrap();
        }
    }
    text
}

#[test]
fn every_kind_of_log_replays_to_the_audit_bits() {
    for bernoulli in [false, true] {
        for list in [false, true] {
            for contextual in [false, true] {
                let shape = Shape {
                    bernoulli,
                    list,
                    contextual,
                };
                let text = generated(
                    shape,
                    17 + bernoulli as u64 * 4 + list as u64 * 2 + contextual as u64,
                );
                assert!(text.contains("null"), "the log has missing outcomes");
                assert_eq!(replay_equals_audit(&text, 0.2), 120);
            }
        }
    }
}

fn bandit() -> (Guardrail, CandidateTable, Vec<(usize, Option<f64>)>) {
    let text = generated(
        Shape {
            bernoulli: false,
            list: false,
            contextual: false,
        },
        3,
    );
    let mut reader = common::reader(&text);
    let model = reader.model().clone();
    let (mut table, mut steps) = (None, Vec::new());
    while let Some(event) = reader.next_event().unwrap() {
        match event {
            LogEvent::Stream(_) if table.is_some() => break,
            LogEvent::Stream(_) => {}
            LogEvent::Step(r) => {
                table.get_or_insert_with(|| (*r.table).clone());
                steps.push((r.action, r.outcome));
            }
        }
    }
    let g = Guardrail::new(
        model,
        alphas_for(&text),
        0.5,
        plausible(1),
        BackendChoice::Auto,
    )
    .unwrap();
    (g, table.unwrap(), steps)
}

#[test]
fn an_estimate_equal_to_the_threshold_is_allowed_and_one_ulp_above_is_not() {
    let (mut g, table, steps) = bandit();
    for &(a, y) in &steps[..10] {
        g.observe(&table, a, y).unwrap();
    }
    let est = g.estimator();
    let estimates = g.estimates(&table).unwrap().clone();
    // the riskiest candidate, whose estimate is well inside (0, 1)
    let (action, value) = (0..table.n_candidates)
        .map(|a| (a, estimates.value(&est, a).unwrap()))
        .fold((0, -1.0), |m, v| if v.1 > m.1 { v } else { m });
    assert!(value > 0.0 && value < 1.0, "{value}");
    for (threshold, allowed) in [
        (value, true),
        (f64::from_bits(value.to_bits() - 1), false),
        (f64::from_bits(value.to_bits() + 1), true),
    ] {
        let mut at_c = Guardrail::new(
            g.model().clone(),
            g.alphas().clone(),
            threshold,
            est,
            BackendChoice::Cpu,
        )
        .unwrap();
        // the same posterior: replay the same steps
        for &(a, y) in &steps[..10] {
            at_c.observe(&table, a, y).unwrap();
        }
        let v = at_c.check(&table, action).unwrap();
        assert_eq!(v.allowed, allowed, "C = {threshold:e}, estimate {value:e}");
        assert_eq!(v.estimate, value);
    }
}

#[test]
fn reset_returns_to_the_prior() {
    let (mut g, table, steps) = bandit();
    let fresh = g.clone().estimates(&table).unwrap().clone();
    // at the grid's uniform prior every hypothesis has probability 1/81
    assert_eq!(fresh.posterior.map_probability, 1.0 / 81.0);
    assert_eq!(fresh.posterior.entropy, (81.0f64).ln());
    let mut first = Vec::new();
    for &(a, y) in &steps {
        first.push(g.estimates(&table).unwrap().clone());
        g.observe(&table, a, y).unwrap();
    }
    assert_eq!(g.steps(), steps.len());
    assert_ne!(*g.estimates(&table).unwrap(), fresh);
    g.reset();
    assert_eq!(g.steps(), 0);
    assert_eq!(*g.estimates(&table).unwrap(), fresh);
    // and the same stream again gives the same numbers
    for (&(a, y), want) in steps.iter().zip(&first) {
        assert_eq!(g.estimates(&table).unwrap(), want);
        g.observe(&table, a, y).unwrap();
    }
}

fn input_error(e: Error, step: usize, words: &str) {
    match e {
        Error::Input { location, message } => {
            assert_eq!(location.to_string(), format!("guardrail, step {step}"));
            assert!(message.contains(words), "{message}");
        }
        e => panic!("not an input error: {e}"),
    }
}

#[test]
fn bad_input_is_an_input_error_naming_the_step_and_changes_nothing() {
    let (mut g, table, steps) = bandit();
    for &(a, y) in &steps[..3] {
        g.observe(&table, a, y).unwrap();
    }
    let before = g.estimates(&table).unwrap().clone();
    let d = g.model().hypotheses.dim();
    let narrow = CandidateTable::new(vec![0.0; 3 * (d - 1)], 3);
    input_error(g.estimates(&narrow).unwrap_err(), 4, "dimension");
    let mut nan = table.clone();
    nan.features[d + 1] = f64::NAN;
    input_error(
        g.check(&nan, 0).unwrap_err(),
        4,
        "candidate 1 has a non-finite feature",
    );
    input_error(
        g.check(&table, 5).unwrap_err(),
        4,
        "action 5 is out of range",
    );
    input_error(
        g.observe(&table, 5, Some(1.0)).unwrap_err(),
        4,
        "action 5 is out of range",
    );
    input_error(
        g.observe(&table, 0, Some(f64::INFINITY)).unwrap_err(),
        4,
        "finite",
    );
    // an outcome no hypothesis can explain: every residual overflows
    input_error(
        g.observe(&table, 0, Some(1e300)).unwrap_err(),
        4,
        "no hypothesis with positive posterior can explain",
    );
    assert_eq!(g.steps(), 3);
    assert_eq!(*g.estimates(&table).unwrap(), before);
    // a bernoulli outcome is 0 or 1
    let mut b = g.model().clone();
    b.observation = gpubound::model::ObservationModel::Bernoulli;
    let mut gb =
        Guardrail::new(b, g.alphas().clone(), 0.5, plausible(0), BackendChoice::Cpu).unwrap();
    input_error(gb.observe(&table, 0, Some(0.5)).unwrap_err(), 1, "0 or 1");
}

#[test]
fn settings_the_guardrail_cannot_use_are_refused() {
    let (g, _, _) = bandit();
    let new = |c: f64, e: Estimator| {
        Guardrail::new(
            g.model().clone(),
            g.alphas().clone(),
            c,
            e,
            BackendChoice::Cpu,
        )
    };
    let refused = |r: gpubound::Result<Guardrail>, words: &str| match r {
        Err(Error::Setting(m)) => assert!(m.contains(words), "{m}"),
        Err(e) => panic!("not a setting error: {e}"),
        Ok(_) => panic!("accepted; wanted {words}"),
    };
    refused(new(1.5, plausible(0)), "threshold C must be in [0, 1]");
    refused(new(f64::NAN, plausible(0)), "threshold C must be in [0, 1]");
    let oracle = Estimator {
        kind: EstimatorKind::Oracle,
        alpha: None,
    };
    refused(new(0.1, oracle), "oracle");
    refused(new(0.1, plausible(DELTAS.len())), "α index");
    let no_alpha = Estimator {
        kind: EstimatorKind::VilleMax,
        alpha: None,
    };
    refused(new(0.1, no_alpha), "α index");
    assert!(new(0.0, plausible(0)).is_ok());
}
