//! The report's numbers against an independent f64 audit written here from
//! SPEC §2–3 alone (its own log parser, posterior, erfc from statrs, the
//! plausible set by its definition): every estimator, every candidate, every
//! verdict, on the shipped example and on logs built to hit the edges the
//! README promises (the strict `>` at an estimate equal to C, a safer
//! candidate `≤ C`, the default α, Bernoulli outcomes of 0, exact ties of the
//! cautious theory). Nothing here calls the crate's maths.

mod common;

use common::floats;
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use statrs::function::erf::erfc;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gpubound"))
}

#[derive(Clone, Copy)]
enum Obs {
    Gaussian { sigma: f64, theta: f64 },
    Bernoulli,
}

impl Obs {
    fn harm(self, wx: f64) -> f64 {
        match self {
            Obs::Gaussian { sigma, theta } => 0.5 * erfc((theta - wx) / (sigma * 2f64.sqrt())),
            Obs::Bernoulli => 1.0 / (1.0 + (-wx).exp()),
        }
    }

    fn log_lik(self, y: f64, wx: f64) -> f64 {
        match self {
            Obs::Gaussian { sigma, .. } => {
                let r = (y - wx) / sigma;
                -0.5 * r * r - sigma.ln() - 0.5 * (2.0 * std::f64::consts::PI).ln()
            }
            Obs::Bernoulli => {
                let p = 1.0 / (1.0 + (-wx).exp());
                if y == 1.0 {
                    p.ln()
                } else {
                    (1.0 - p).ln()
                }
            }
        }
    }
}

/// What SPEC says about one candidate at one step.
struct Expected {
    predictive: f64,
    /// max_h ln p_h + ln q_h, and the largest q among the (rounding-)tied maximisers
    cautious_score: f64,
    cautious_q: f64,
    /// per α: [the value over the surely included, over the possibly included]
    plausible: Vec<[f64; 2]>,
    max_pq: f64,
    oracle: Option<f64>,
}

struct Step {
    posterior: Vec<f64>,
    /// per α: [sure, possible] sizes of I_α
    sizes: Vec<[usize; 2]>,
    candidates: Vec<Expected>,
    /// ln p_h + ln q_h and q_h per candidate, to judge the reported ĥ
    scores: Vec<Vec<(f64, f64)>>,
}

fn table(v: &Value) -> Vec<Vec<f64>> {
    v.as_array().unwrap().iter().map(floats).collect()
}

/// The whole audit of `log`, by SPEC, in f64.
fn independent_audit(log: &str, alphas: &[f64], shared_world: bool) -> Vec<Step> {
    let lines: Vec<Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let m = &lines[0];
    let obs = match m["observation"]["kind"].as_str().unwrap() {
        "gaussian" => Obs::Gaussian {
            sigma: m["observation"]["sigma"].as_f64().unwrap(),
            theta: m["observation"]["harm_threshold"].as_f64().unwrap(),
        },
        _ => Obs::Bernoulli,
    };
    let (hyps, log_prior): (Vec<Vec<f64>>, Vec<f64>) =
        match m["hypotheses"]["kind"].as_str().unwrap() {
            "grid" => {
                let k = m["hypotheses"]["k"].as_u64().unwrap() as usize;
                let d = m["hypotheses"]["d"].as_u64().unwrap() as u32;
                let h = k.pow(d);
                let hyps = (0..h)
                    .map(|i| {
                        (0..d)
                            .map(|j| ((i / k.pow(d - 1 - j)) % k) as f64)
                            .collect()
                    })
                    .collect();
                (hyps, vec![-(h as f64).ln(); h])
            }
            _ => {
                let hyps = table(&m["hypotheses"]["params"]);
                let lp = match m["hypotheses"].get("log_prior") {
                    Some(v) => floats(v),
                    None => vec![0.0; hyps.len()],
                };
                (hyps, lp)
            }
        };
    let dot = |w: &[f64], x: &[f64]| w.iter().zip(x).map(|(a, b)| a * b).sum::<f64>();
    let mut out = Vec::new();
    let mut l = log_prior.clone();
    let mut stream_table: Vec<Vec<f64>> = Vec::new();
    let mut truth: Option<Vec<f64>> = None;
    let mut first_stream = true;
    for line in &lines[1..] {
        match line["type"].as_str().unwrap() {
            "stream" => {
                if !shared_world || first_stream {
                    l = log_prior.clone();
                }
                first_stream = false;
                stream_table = line.get("candidates").map(table).unwrap_or_default();
                truth = match (line.get("true_hypothesis"), line.get("true_params")) {
                    (Some(i), _) => Some(hyps[i.as_u64().unwrap() as usize].clone()),
                    (_, Some(p)) => Some(floats(p)),
                    _ => None,
                };
            }
            "step" => {
                let cands = line
                    .get("candidates")
                    .map(table)
                    .unwrap_or_else(|| stream_table.clone());
                let max = l.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = l.iter().map(|v| (v - max).exp()).sum();
                let p: Vec<f64> = l.iter().map(|v| (v - max).exp() / z).collect();
                // c_h = p_h + Σ_{p_j > p_h} p_j, by sorting
                let mut order: Vec<usize> = (0..p.len()).collect();
                order.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
                let mut c = vec![0.0; p.len()];
                let (mut above, mut i) = (0.0, 0);
                while i < order.len() {
                    let mut j = i;
                    while j < order.len() && p[order[j]] == p[order[i]] {
                        j += 1;
                    }
                    for &h in &order[i..j] {
                        c[h] = p[h] + above;
                    }
                    above += order[i..j].iter().map(|&h| p[h]).sum::<f64>();
                    i = j;
                }
                // membership: sure, or within rounding of the boundary
                let member: Vec<Vec<(bool, bool)>> = alphas
                    .iter()
                    .map(|&a| {
                        (0..p.len())
                            .map(|h| {
                                let margin = p[h] - a * c[h];
                                (margin > 1e-9 * p[h], margin >= -1e-9 * p[h])
                            })
                            .collect()
                    })
                    .collect();
                let sizes = member
                    .iter()
                    .map(|m| {
                        [
                            m.iter().filter(|x| x.0).count(),
                            m.iter().filter(|x| x.1).count(),
                        ]
                    })
                    .collect();
                let mut candidates = Vec::new();
                let mut scores = Vec::new();
                for x in &cands {
                    let q: Vec<f64> = hyps.iter().map(|w| obs.harm(dot(w, x))).collect();
                    let s: Vec<(f64, f64)> = (0..p.len())
                        .map(|h| (p[h].ln() + q[h].ln(), q[h]))
                        .collect();
                    let best = s.iter().map(|v| v.0).fold(f64::NEG_INFINITY, f64::max);
                    let cautious_q = s
                        .iter()
                        .filter(|v| v.0 >= best - 1e-12 * best.abs().max(1.0))
                        .map(|v| v.1)
                        .fold(0.0, f64::max);
                    let plausible = member
                        .iter()
                        .map(|m| {
                            let sure = (0..p.len()).filter(|&h| m[h].0).map(|h| q[h]);
                            let maybe = (0..p.len()).filter(|&h| m[h].1).map(|h| q[h]);
                            [sure.fold(0.0, f64::max), maybe.fold(0.0, f64::max)]
                        })
                        .collect();
                    candidates.push(Expected {
                        predictive: (0..p.len()).map(|h| p[h] * q[h]).sum(),
                        cautious_score: best,
                        cautious_q,
                        plausible,
                        max_pq: (0..p.len()).map(|h| p[h] * q[h]).fold(0.0, f64::max),
                        oracle: truth.as_ref().map(|w| obs.harm(dot(w, x))),
                    });
                    scores.push(s);
                }
                out.push(Step {
                    posterior: p,
                    sizes,
                    candidates,
                    scores,
                });
                if let Some(y) = line.get("outcome").and_then(|v| v.as_f64()) {
                    let a = line["action"].as_u64().unwrap() as usize;
                    for (h, w) in hyps.iter().enumerate() {
                        l[h] += obs.log_lik(y, dot(w, &cands[a]));
                    }
                }
            }
            t => panic!("unexpected line type {t}"),
        }
    }
    out
}

fn close(got: f64, want: f64, what: &str) {
    let tol = 1e-9 * want.abs() + 1e-15;
    assert!(
        (got - want).abs() <= tol,
        "{what}: got {got:e}, want {want:e}"
    );
}

fn run_audit(dir: &Path, log: &str, args: &[&str]) -> (Vec<Value>, String) {
    let path = dir.join("log.jsonl");
    std::fs::write(&path, log).unwrap();
    let out = dir.join("report.jsonl");
    let o = bin()
        .arg("audit")
        .arg(&path)
        .arg("-o")
        .arg(&out)
        .args(["--backend", "cpu"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success() || o.status.code() == Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let recs = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (recs, String::from_utf8(o.stdout).unwrap())
}

/// The key the report uses for an α or a threshold.
fn key(v: f64) -> String {
    if v != 0.0 && v.abs() < 1e-3 {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

/// Every value of every record against the independent audit.
fn check_report(recs: &[Value], want: &[Step], alphas: &[f64], thresholds: &[f64]) {
    assert_eq!(recs.len(), want.len(), "one record per step");
    let mut checked = 0usize;
    for (r, w) in recs.iter().zip(want) {
        let at = format!("stream {} step {}", r["stream"], r["step"]);
        // posterior
        let map = w
            .posterior
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        let first_map = w.posterior.iter().position(|&v| v == map).unwrap();
        let post = &r["posterior"];
        let map_h = post["map_hypothesis"].as_u64().unwrap() as usize;
        assert!(
            map_h == first_map || (w.posterior[map_h] - map).abs() <= 1e-12 * map,
            "{at}: MAP {map_h}, want {first_map}"
        );
        close(
            post["map_probability"].as_f64().unwrap(),
            map,
            &format!("{at} map_probability"),
        );
        let entropy: f64 = w
            .posterior
            .iter()
            .filter(|&&v| v > 0.0)
            .map(|&v| -v * v.ln())
            .sum();
        let got = post["entropy"].as_f64().unwrap();
        assert!(
            (got - entropy).abs() <= 1e-9,
            "{at}: entropy {got} vs {entropy}"
        );
        for (i, &a) in alphas.iter().enumerate() {
            let size = post["plausible_set_size"][key(a)].as_u64().unwrap() as usize;
            let [lo, hi] = w.sizes[i];
            assert!(
                lo <= size && size <= hi,
                "{at}: |I_α| {size} not in [{lo}, {hi}]"
            );
        }
        let cands = r["candidates"].as_array().unwrap();
        assert_eq!(cands.len(), w.candidates.len(), "{at}");
        assert_eq!(r["taken"], cands[r["action"].as_u64().unwrap() as usize]);
        for (a, (c, e)) in cands.iter().zip(&w.candidates).enumerate() {
            let at = format!("{at} candidate {a}");
            close(
                c["posterior_predictive"].as_f64().unwrap(),
                e.predictive,
                &format!("{at} posterior_predictive"),
            );
            // ĥ must maximise ln p + ln q and, among those tied, have the largest q
            let h = c["cautious_hypothesis"].as_u64().unwrap() as usize;
            let (score, q) = w.scores[a][h];
            assert!(
                score >= e.cautious_score - 1e-12 * e.cautious_score.abs().max(1.0),
                "{at}: ĥ = {h} scores {score}, the best {}",
                e.cautious_score
            );
            close(q, e.cautious_q, &format!("{at} q of ĥ"));
            close(
                c["cautious_theory"].as_f64().unwrap(),
                q,
                &format!("{at} cautious_theory"),
            );
            for (i, &alpha) in alphas.iter().enumerate() {
                let k = key(alpha);
                let got = c["plausible_set"][&k].as_f64().unwrap();
                let [lo, hi] = e.plausible[i];
                assert!(
                    got >= lo * (1.0 - 1e-9) && got <= hi * (1.0 + 1e-9),
                    "{at}: plausible_set[{k}] {got} not in [{lo}, {hi}]"
                );
                close(
                    c["ville_max"][&k].as_f64().unwrap(),
                    (e.max_pq / alpha).min(1.0),
                    &format!("{at} ville_max[{k}]"),
                );
                close(
                    c["ville_sum"][&k].as_f64().unwrap(),
                    (e.predictive / alpha).min(1.0),
                    &format!("{at} ville_sum[{k}]"),
                );
            }
            match e.oracle {
                Some(o) => close(c["oracle"].as_f64().unwrap(), o, &format!("{at} oracle")),
                None => assert!(c.get("oracle").is_none_or(|v| v.is_null()), "{at}"),
            }
            checked += 1;
        }
        // verdicts, from the report's own estimates: the strict `>` and the
        // safest candidate's rule (lowest index within 1e-9 of the smallest)
        let verdicts = r["verdicts"].as_object().unwrap();
        assert_eq!(verdicts.len(), thresholds.len(), "{at}");
        for &cth in thresholds {
            let per = verdicts[&key(cth)].as_object().unwrap();
            for (label, v) in per {
                let value = |c: &Value| -> f64 {
                    match label.split_once("[alpha=") {
                        Some((name, alpha)) => {
                            c[name][alpha.trim_end_matches(']')].as_f64().unwrap()
                        }
                        None => c[label.as_str()].as_f64().unwrap(),
                    }
                };
                let taken = value(&r["taken"]);
                assert_eq!(v["rejected"], taken > cth, "{at} {label} C={cth}");
                let values: Vec<f64> = cands.iter().map(value).collect();
                let min = values.iter().copied().fold(f64::INFINITY, f64::min);
                let safest = values
                    .iter()
                    .position(|&x| x <= min + min.abs() * 1e-9)
                    .unwrap();
                assert_eq!(v["safest_candidate"], safest, "{at} {label} C={cth}");
                assert_eq!(v["safest_estimate"].as_f64().unwrap(), values[safest]);
            }
        }
    }
    assert!(checked > 0);
}

#[test]
fn the_shipped_example_matches_an_independent_audit() {
    let dir = tempfile::tempdir().unwrap();
    let log = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/exploding_bandit.jsonl"
    ))
    .unwrap();
    let alphas = [1e-4, 0.01, 0.3];
    let thresholds = [0.001, 0.01, 0.1];
    let (recs, summary) = run_audit(
        dir.path(),
        &log,
        &["--alpha", "1e-4,0.01,0.3", "-C", "0.001,0.01,0.1"],
    );
    check_report(
        &recs,
        &independent_audit(&log, &alphas, false),
        &alphas,
        &thresholds,
    );
    // data/README.md: 40 streams, 324 steps, 34 explosions
    assert!(
        summary.contains("40 streams, 324 steps (324 with an outcome, 34 harmful)"),
        "{summary}"
    );
}

#[test]
fn the_default_alpha_is_delta_005_times_the_smallest_prior_mass() {
    let dir = tempfile::tempdir().unwrap();
    // uniform grid: p_min = 1/8, α = 0.05/8
    let grid = concat!(
        r#"{"type":"model","hypotheses":{"kind":"grid","k":2,"d":3},"observation":{"kind":"gaussian","sigma":1.0,"harm_threshold":1.0}}"#,
        "\n",
        r#"{"type":"stream","candidates":[[0,0,0],[0,0,1],[1,1,0],[0,1,0]]}"#,
        "\n",
        r#"{"type":"step","action":3,"outcome":-0.56}"#,
        "\n",
        r#"{"type":"step","action":1,"outcome":1.9}"#,
        "\n"
    );
    let (recs, summary) = run_audit(dir.path(), grid, &[]);
    // a stream without an id is named by its ordinal
    assert_eq!(recs[0]["stream"], "1");
    let alpha = 0.05 / 8.0;
    check_report(
        &recs,
        &independent_audit(grid, &[alpha], false),
        &[alpha],
        &[0.01],
    );
    assert!(
        summary.contains("implied delta = alpha / p_min = 0.0500"),
        "{summary}"
    );
    // a non-uniform list prior: p_min = 0.2, α = 0.01
    let list = concat!(
        r#"{"type":"model","hypotheses":{"kind":"list","params":[[0,1],[1,0],[1,1]],"log_prior":[-0.6931471805599453,-1.2039728043259361,-1.6094379124341003]},"observation":{"kind":"gaussian","sigma":0.5,"harm_threshold":0.8}}"#,
        "\n",
        r#"{"type":"stream","candidates":[[1,0],[0,1],[1,1]]}"#,
        "\n",
        r#"{"type":"step","action":2,"outcome":1.1}"#,
        "\n",
        r#"{"type":"step","action":0,"outcome":0.2}"#,
        "\n"
    );
    let (recs, summary) = run_audit(dir.path(), list, &[]);
    let alpha = 0.05 * 0.2;
    assert!(recs[0]["posterior"]["plausible_set_size"]
        .get(key(alpha))
        .is_some());
    check_report(
        &recs,
        &independent_audit(list, &[alpha], false),
        &[alpha],
        &[0.01],
    );
    assert!(
        summary.contains("implied delta = alpha / p_min = 0.0500 (p_min = 2.0000e-1)"),
        "{summary}"
    );
}

#[test]
fn bernoulli_outcomes_of_zero_and_one_update_the_posterior() {
    let dir = tempfile::tempdir().unwrap();
    let log = concat!(
        r#"{"type":"model","hypotheses":{"kind":"grid","k":3,"d":2},"observation":{"kind":"bernoulli"}}"#,
        "\n",
        r#"{"type":"stream","id":7,"true_params":[1,-1],"candidates":[[1,0],[0,1],[-1,1],[0.5,-2]]}"#,
        "\n",
        r#"{"type":"step","action":0,"outcome":0}"#,
        "\n",
        r#"{"type":"step","action":1,"outcome":1}"#,
        "\n",
        r#"{"type":"step","action":3,"outcome":0}"#,
        "\n",
        r#"{"type":"step","action":2,"outcome":null}"#,
        "\n",
        r#"{"type":"step","action":0}"#,
        "\n",
    );
    let alphas = [0.05, 0.5];
    let (recs, _) = run_audit(dir.path(), log, &["--alpha", "0.05,0.5", "-C", "0.2,0.6"]);
    check_report(
        &recs,
        &independent_audit(log, &alphas, false),
        &alphas,
        &[0.2, 0.6],
    );
    // a numeric stream id is reported as its text; "outcome": null and an
    // absent one are reported as null
    assert_eq!(recs[0]["stream"], "7");
    assert!(recs[3]["outcome"].is_null() && recs[4]["outcome"].is_null());
    // the step after y = 0 has moved away from the prior
    assert!(recs[1]["posterior"]["map_probability"].as_f64().unwrap() > 1.0 / 9.0);
}

#[test]
fn an_estimate_equal_to_c_is_not_rejected_and_a_candidate_equal_to_c_is_safer() {
    // At the prior, arm [0,1,0] has max w·x = 1 = θ: its plausible-set bound
    // is exactly ½·erfc(0) = 0.5; arm [1,1,0] has 0.841 > 0.5.
    let dir = tempfile::tempdir().unwrap();
    let log = concat!(
        r#"{"type":"model","hypotheses":{"kind":"grid","k":2,"d":3},"observation":{"kind":"gaussian","sigma":1.0,"harm_threshold":1.0}}"#,
        "\n",
        r#"{"type":"stream","id":"s","candidates":[[1,1,0],[0,1,0]]}"#,
        "\n",
        r#"{"type":"step","action":1}"#,
        "\n",
        r#"{"type":"step","action":0}"#,
        "\n",
    );
    let (recs, summary) = run_audit(
        dir.path(),
        log,
        &[
            "--alpha",
            "0.5",
            "-C",
            "0.5",
            "--guardrail",
            "plausible-set",
        ],
    );
    let v = |r: &Value| r["verdicts"]["0.5"]["plausible_set[alpha=0.5]"].clone();
    assert_eq!(recs[0]["taken"]["plausible_set"]["0.5"], 0.5);
    assert_eq!(
        v(&recs[0])["rejected"],
        false,
        "0.5 does not exceed C = 0.5"
    );
    assert_eq!(v(&recs[1])["rejected"], true);
    assert_eq!(v(&recs[1])["safest_candidate"], 1);
    assert_eq!(v(&recs[1])["safest_estimate"], 0.5);
    // one rejection, and for it a candidate ≤ C (equal to C) was available
    let row = summary
        .lines()
        .find(|l| l.trim_start().starts_with("plausible_set[alpha=0.5]"))
        .unwrap();
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols[1], "1", "{row}");
    assert_eq!(cols.last().unwrap(), &"1", "{row}");
    check_report(
        &recs,
        &independent_audit(log, &[0.5], false),
        &[0.5],
        &[0.5],
    );
}

#[test]
fn an_exact_tie_of_p_times_q_goes_to_the_larger_q() {
    // p = (1/4, 1/2, 1/4) and q = (1, 1/2, ·) at candidate 0: p·q ties at 1/4
    // exactly in log space (ln ¼ − ln ½ = ln ½ in floating point, and
    // sigmoid(40) = 1); the cautious theory must take q = 1, not ½.
    let dir = tempfile::tempdir().unwrap();
    let log = concat!(
        r#"{"type":"model","hypotheses":{"kind":"list","params":[[40],[0],[-40]],"log_prior":[-1.3862943611198906,-0.6931471805599453,-1.3862943611198906]},"observation":{"kind":"bernoulli"}}"#,
        "\n",
        r#"{"type":"stream","candidates":[[1],[-1]]}"#,
        "\n",
        r#"{"type":"step","action":0}"#,
        "\n",
    );
    let (recs, _) = run_audit(dir.path(), log, &["--alpha", "0.5"]);
    let c0 = &recs[0]["candidates"][0];
    assert_eq!(c0["cautious_hypothesis"], 0);
    assert_eq!(c0["cautious_theory"], 1.0);
    // candidate 1: q = (≈0, ½, 1): p·q = (≈0, ¼, ¼), the larger q is hypothesis 2
    let c1 = &recs[0]["candidates"][1];
    assert_eq!(c1["cautious_hypothesis"], 2);
    assert_eq!(c1["cautious_theory"], 1.0);
    check_report(
        &recs,
        &independent_audit(log, &[0.5], false),
        &[0.5],
        &[0.01],
    );
}

#[test]
fn a_shared_world_is_one_stream_written_in_two() {
    let dir = tempfile::tempdir().unwrap();
    let model = r#"{"type":"model","hypotheses":{"kind":"grid","k":2,"d":3},"observation":{"kind":"gaussian","sigma":1.0,"harm_threshold":1.0}}"#;
    let steps = [
        (3, -0.56, "[[0,0,0],[0,0,1],[1,1,0],[0,1,0]]"),
        (1, 1.9, "[[0,0,0],[0,0,1],[1,1,0],[0,1,0]]"),
        (0, 1.2, "[[1,0,0],[1,1,1]]"),
        (1, 3.4, "[[1,0,0],[1,1,1]]"),
    ];
    let step = |(a, y, c): (i32, f64, &str)| {
        format!("{{\"type\":\"step\",\"action\":{a},\"outcome\":{y},\"candidates\":{c}}}\n")
    };
    let mut one = format!("{model}\n{{\"type\":\"stream\",\"id\":\"w\"}}\n");
    let mut two = format!("{model}\n{{\"type\":\"stream\",\"id\":\"w\"}}\n");
    for (i, &s) in steps.iter().enumerate() {
        one += &step(s);
        if i == 2 {
            two += "{\"type\":\"stream\",\"id\":\"w2\"}\n";
        }
        two += &step(s);
    }
    let (a, _) = run_audit(dir.path(), &one, &["--alpha", "0.1"]);
    let (b, _) = run_audit(dir.path(), &two, &["--shared-world", "--alpha", "0.1"]);
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        // bit-equal estimates and posterior summaries; only the place differs
        for k in [
            "action",
            "outcome",
            "posterior",
            "taken",
            "candidates",
            "verdicts",
        ] {
            assert_eq!(x[k], y[k], "{k}");
        }
    }
    check_report(&b, &independent_audit(&two, &[0.1], true), &[0.1], &[0.01]);
    // without --shared-world the second stream starts again from the prior
    let (c, _) = run_audit(dir.path(), &two, &["--alpha", "0.1"]);
    assert_ne!(c[2]["posterior"], b[2]["posterior"]);
    check_report(&c, &independent_audit(&two, &[0.1], false), &[0.1], &[0.01]);
}

#[test]
fn a_model_file_wins_over_the_logs_model_and_sigma_overrides_it() {
    let dir = tempfile::tempdir().unwrap();
    let in_log = r#"{"type":"model","hypotheses":{"kind":"grid","k":2,"d":3},"observation":{"kind":"gaussian","sigma":1.0,"harm_threshold":1.0}}"#;
    let body = concat!(
        r#"{"type":"stream","id":"a","true_hypothesis":1,"candidates":[[0,0,0],[0,0,1],[1,1,0],[0,1,0]]}"#,
        "\n",
        r#"{"type":"step","action":3,"outcome":-0.56}"#,
        "\n",
        r#"{"type":"step","action":1,"outcome":1.9}"#,
        "\n",
        r#"{"type":"step","action":2,"outcome":0.1}"#,
        "\n",
    );
    let file_model = r#"{"hypotheses":{"kind":"grid","k":3,"d":3},"observation":{"kind":"gaussian","sigma":0.5,"harm_threshold":2.0}}"#;
    let model_path = dir.path().join("model.json");
    std::fs::write(&model_path, file_model).unwrap();
    let model_arg = model_path.to_str().unwrap();
    let log = format!("{in_log}\n{body}");
    let as_line = |m: &str| format!("{{\"type\":\"model\",{}\n{body}", &m[1..]);

    let (recs, _) = run_audit(dir.path(), &log, &["--alpha", "0.1", "--model", model_arg]);
    let want = as_line(file_model);
    check_report(
        &recs,
        &independent_audit(&want, &[0.1], false),
        &[0.1],
        &[0.01],
    );

    let (recs, _) = run_audit(
        dir.path(),
        &log,
        &[
            "--alpha",
            "0.1",
            "--model",
            model_arg,
            "--sigma",
            "2",
            "--harm-threshold",
            "0.5",
        ],
    );
    let want = as_line(&file_model.replace("0.5,", "2.0,").replace("2.0}", "0.5}"));
    assert!(
        want.contains(r#""sigma":2.0,"harm_threshold":0.5}"#),
        "{want}"
    );
    check_report(
        &recs,
        &independent_audit(&want, &[0.1], false),
        &[0.1],
        &[0.01],
    );

    // --sigma means nothing to a Bernoulli model: a setting error, exit 2
    let bern = log.replace(
        r#"{"kind":"gaussian","sigma":1.0,"harm_threshold":1.0}"#,
        r#"{"kind":"bernoulli"}"#,
    );
    let path = dir.path().join("bern.jsonl");
    std::fs::write(
        &path,
        bern.replace("-0.56", "0")
            .replace("1.9", "1")
            .replace("0.1}", "1}"),
    )
    .unwrap();
    let o = bin()
        .arg("audit")
        .arg(&path)
        .args(["--sigma", "2", "-o"])
        .arg(dir.path().join("never.jsonl"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("bernoulli"));
    assert!(!dir.path().join("never.jsonl").exists());
}

#[test]
fn the_csv_header_is_in_the_readmes_column_order() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.jsonl");
    std::fs::write(
        &log,
        concat!(
            r#"{"type":"model","hypotheses":{"kind":"grid","k":2,"d":2},"observation":{"kind":"gaussian","sigma":1.0,"harm_threshold":1.0}}"#,
            "\n",
            r#"{"type":"stream","true_hypothesis":1,"candidates":[[0,1],[1,1]]}"#,
            "\n",
            r#"{"type":"step","action":1,"outcome":0.3}"#,
            "\n",
        ),
    )
    .unwrap();
    let out = dir.path().join("r.csv");
    let o = bin()
        .arg("audit")
        .arg(&log)
        .args([
            "--format", "csv", "--alpha", "0.1,0.5", "-C", "0.01,0.2", "-q", "-o",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success());
    let text = std::fs::read_to_string(&out).unwrap();
    let header = text.lines().next().unwrap();
    let mut want: Vec<String> = [
        "stream",
        "step",
        "line",
        "candidate",
        "taken",
        "outcome",
        "map_hypothesis",
        "map_probability",
        "entropy",
        "plausible_set_size[alpha=0.1]",
        "plausible_set_size[alpha=0.5]",
        "cautious_hypothesis",
    ]
    .map(String::from)
    .to_vec();
    let estimators = [
        "posterior_predictive",
        "cautious_theory",
        "plausible_set[alpha=0.1]",
        "plausible_set[alpha=0.5]",
        "ville_max[alpha=0.1]",
        "ville_max[alpha=0.5]",
        "ville_sum[alpha=0.1]",
        "ville_sum[alpha=0.5]",
        "oracle",
    ];
    want.extend(estimators.map(String::from));
    for c in ["0.01", "0.2"] {
        want.extend(estimators.map(|e| format!("rejected[{e}][C={c}]")));
    }
    assert_eq!(header.split(',').collect::<Vec<_>>(), want);
    assert_eq!(text.lines().count(), 1 + 2, "one row per candidate");
}
