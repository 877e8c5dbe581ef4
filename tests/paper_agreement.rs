//! Agreement with the paper's own code (`../shared/reference/`).

use std::io::BufRead;

use serde_json::Value;

const REF: &str = "../shared/reference";

fn read_jsonl(path: &str) -> Vec<Value> {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let r: Box<dyn BufRead> = if path.ends_with(".gz") {
        Box::new(std::io::BufReader::new(flate2::read::GzDecoder::new(f)))
    } else {
        Box::new(std::io::BufReader::new(f))
    };
    r.lines()
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect()
}

fn f32s(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// The reference's non-iid estimates (float32, torch's unstable sort) are
/// reproduced exactly from its own float32 log posteriors by the torch-sort
/// emulation, including the cases where its cut splits a tie group.
#[test]
fn torch_sort_emulation_reproduces_the_official_non_iid_sets() {
    let post = read_jsonl(&format!("{REF}/log_posteriors.jsonl.gz"));
    let vecs = read_jsonl(&format!("{REF}/guardrail_vectors.jsonl"));
    let (mut checked, mut split, mut wrong) = (0, 0, Vec::new());
    let mut harm: Vec<Vec<f32>> = Vec::new();
    for line in &post {
        let env = line["env_id"].as_str().unwrap();
        if line["type"] == "p_harm" {
            harm = line["f32"].as_array().unwrap().iter().map(f32s).collect();
            continue;
        }
        let t = line["t"].as_u64().unwrap();
        let p: Vec<f32> = f32s(&line["f32"]).iter().map(|l| l.exp()).collect();
        let step = vecs
            .iter()
            .find(|v| v["type"] == "step" && v["env_id"] == env && v["t"].as_u64() == Some(t))
            .unwrap();
        for (key, want) in step["f32"]["non_iid"].as_object().unwrap() {
            let alpha: f64 = key.parse().unwrap();
            let m = gpubound::sim::torch_sort::m_alpha(&p, alpha);
            let tie = &step["f32"]["non_iid_tie"][key];
            split += !tie.is_null() as usize;
            for (a, w) in want.as_array().unwrap().iter().enumerate() {
                let got = m
                    .iter()
                    .map(|&h| harm[a][h as usize])
                    .fold(0.0f32, f32::max);
                let w = w.as_f64().unwrap() as f32;
                checked += 1;
                if got != w {
                    wrong.push(format!(
                        "{env} t={t} α={key} arm {a}: {got} vs {w} (tie split: {})",
                        !tie.is_null()
                    ));
                }
            }
        }
    }
    eprintln!(
        "{checked} estimates, {split} tie-split (step, α) pairs, {} differ",
        wrong.len()
    );
    assert!(checked > 6000 && split > 100);
    assert!(wrong.is_empty(), "{:#?}", &wrong[..wrong.len().min(20)]);
}

/// The simulator's own reference-tie path (f64 posterior, cast to f32 and
/// sorted as torch does) gives the official float32 non-iid estimates from
/// the official float64 log posteriors. They can differ only where f32 and
/// f64 disagree at an exact-equality boundary (README: |M_α| differs in 16
/// of 2499 (step, α) pairs), so at most 1% of estimates may differ.
#[test]
fn simulator_reference_ties_match_the_official_estimates() {
    use gpubound::sim::{BanditSpec, Belief, Instance, Tables, TieRule};
    let post = read_jsonl(&format!("{REF}/log_posteriors.jsonl.gz"));
    let vecs = read_jsonl(&format!("{REF}/guardrail_vectors.jsonl"));
    let (mut checked, mut differ) = (0usize, Vec::new());
    for env in vecs.iter().filter(|v| v["type"] == "env") {
        let id = env["env_id"].as_str().unwrap();
        let spec = BanditSpec {
            k: env["k"].as_u64().unwrap() as u32,
            d: env["d_arm"].as_u64().unwrap() as usize,
            n_arm: env["n_arm"].as_u64().unwrap() as usize,
            sigma: env["sigma_r"].as_f64().unwrap(),
            steps: env["steps"].as_u64().unwrap() as usize,
        };
        let tables = Tables::new(spec, env["explosion_threshold"].as_f64().unwrap()).unwrap();
        let u16s = |v: &Value| -> Vec<u16> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u16)
                .collect()
        };
        let inst = Instance {
            features: env["arm_features"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(u16s)
                .collect(),
            w_star: u16s(&env["reward_weights"]),
            true_hypothesis: env["true_hypothesis_index"].as_u64().unwrap() as usize,
        };
        let mut b = Belief::new(&spec);
        for line in post
            .iter()
            .filter(|l| l["env_id"] == id && l["type"] == "log_posterior")
        {
            let t = line["t"].as_u64().unwrap();
            let lp: Vec<f64> = line["f64"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect();
            b.set_log_weights(&lp);
            let step = vecs
                .iter()
                .find(|v| v["type"] == "step" && v["env_id"] == id && v["t"].as_u64() == Some(t))
                .unwrap();
            for (key, want) in step["f32"]["non_iid"].as_object().unwrap() {
                let alpha: f64 = key.parse().unwrap();
                let m = b.plausible(alpha, TieRule::Reference);
                for (a, w) in want.as_array().unwrap().iter().enumerate() {
                    let got = tables.q[b.members_max_dot(&inst, a, &m).unwrap()];
                    let w = w.as_f64().unwrap();
                    checked += 1;
                    // the official values carry float32 1 − cdf quantisation
                    if (got - w).abs() > 2e-3 * got.max(w) + 1e-7 {
                        differ.push(format!("{id} t={t} α={key} arm {a}: {got} vs {w}"));
                    }
                }
            }
        }
    }
    eprintln!(
        "{checked} estimates, {} differ: {:#?}",
        differ.len(),
        &differ[..differ.len().min(10)]
    );
    assert!(checked > 6000);
    assert!(
        differ.len() * 100 <= checked,
        "{} of {checked} differ",
        differ.len()
    );
}

fn load(name: &str) -> Value {
    let path = format!("{REF}/{name}");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
        .unwrap()
}

/// SEM of a proportion, never below the one of (x+1)/(n+2): a rate seen as 0
/// in n episodes still has an uncertainty of about 1/n.
fn prop_se(p: f64, sem: f64, n: f64) -> f64 {
    let x = (p * n).round();
    let pt = (x + 1.0) / (n + 2.0);
    sem.max((pt * (1.0 - pt) / n).sqrt())
}

/// Figure 1 at 2,000 episodes per configuration (all 39 configurations,
/// reference tie rule, seed 1) against the reference's 1,000-episode run.
/// Tolerance: |Δ| ≤ 4·sqrt(se_ours² + se_ref²) for the mean reward and the
/// death rate (official counting), with proportion SEs floored as in
/// `prop_se`. The run is seeded, so the test is deterministic.
#[test]
fn figure_1_agrees_with_the_reference() {
    use gpubound::sim::experiments::{fig1, Fig1Settings, PAPER_ALPHAS, PAPER_THRESHOLDS};
    use gpubound::sim::{BanditSpec, Tables, TieRule};
    let reference = load("fig1.json");
    let n = 2000;
    let s = Fig1Settings {
        tables: Tables::new(BanditSpec::default(), 4.0).unwrap(),
        seed: 1,
        episodes: n,
        thresholds: PAPER_THRESHOLDS.to_vec(),
        alphas: PAPER_ALPHAS.to_vec(),
        ties: TieRule::Reference,
        beta: 0.5,
    };
    let ours = fig1(&s, &|_| {}).unwrap();
    let rows = reference["rows"].as_array().unwrap();
    assert_eq!(ours.rows.len(), 39);
    let mut report = Vec::new();
    let mut bad = Vec::new();
    for r in rows {
        let g = r["guardrail"].as_str().unwrap();
        let c = r["threshold"].as_f64().unwrap();
        let alpha = r["alpha"].as_f64();
        let o = ours
            .rows
            .iter()
            .find(|o| o.guardrail == g && o.threshold == c && o.alpha == alpha)
            .unwrap_or_else(|| panic!("no row for {g} {c} {alpha:?}"));
        let nr = r["n_episodes_logged"].as_f64().unwrap();
        let checks = [
            (
                "reward",
                o.reward_mean,
                o.reward_sem,
                r["reward_mean"].as_f64().unwrap(),
                r["reward_sem"].as_f64().unwrap(),
            ),
            (
                "death",
                o.death_rate,
                prop_se(o.death_rate, o.death_sem, n as f64),
                r["death_rate"].as_f64().unwrap(),
                prop_se(
                    r["death_rate"].as_f64().unwrap(),
                    r["death_sem"].as_f64().unwrap(),
                    nr,
                ),
            ),
        ];
        for (what, m, se, rm, rse) in checks {
            let tol = 4.0 * (se * se + rse * rse).sqrt();
            let line = format!(
                "C={c} {g} α={alpha:?} {what}: ours {m:.4} ± {se:.4}, ref {rm:.4} ± {rse:.4}, |Δ| = {:.4} (tol {tol:.4})",
                (m - rm).abs()
            );
            if (m - rm).abs() > tol {
                bad.push(line.clone());
            }
            report.push(line);
        }
    }
    eprintln!("{}", report.join("\n"));
    assert!(bad.is_empty(), "{bad:#?}");
}

/// Figure 2 at 2,000 episodes per α (reference tie rule, seed 1) against the
/// reference's 1,000-episode run (α = 0.3 from its rerun, whose actor drew
/// θ = 4 like ours). Overestimate frequency: |Δ| ≤ 4·sqrt(se² + se_ref²).
/// Mean 50/50 estimate: both SEMs printed by the reference treat correlated
/// estimates of one episode as independent, so both are inflated by our
/// design effect (episode-cluster SEM / naive SEM) before the same test.
#[test]
fn figure_2_agrees_with_the_reference() {
    use gpubound::sim::experiments::{fig2, Fig2Settings, PAPER_ALPHAS};
    use gpubound::sim::{BanditSpec, Tables, TieRule};
    let reference = load("fig2.json");
    let rerun = load("fig2_alpha0.3_rerun.json");
    let s = Fig2Settings {
        tables: Tables::new(BanditSpec::default(), 4.0).unwrap(),
        seed: 1,
        episodes: 2000,
        alphas: PAPER_ALPHAS.to_vec(),
        ties: TieRule::Reference,
    };
    let ours = fig2(&s, &|_| {}).unwrap();
    let mut bad = Vec::new();
    for o in &ours.rows {
        let r = if o.alpha == 0.3 {
            &rerun["rows"][0]
        } else {
            reference["rows"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["alpha"].as_f64() == Some(o.alpha))
                .unwrap()
        };
        let n = 2000.0;
        let nr = r["n_episodes_logged"].as_f64().unwrap();
        let fr = r["overestimate_frequency_mean"].as_f64().unwrap();
        let se = prop_se(
            o.overestimate_frequency_mean,
            o.overestimate_frequency_sem,
            n * 25.0,
        );
        let rse = prop_se(
            fr,
            r["overestimate_frequency_sem"].as_f64().unwrap(),
            nr * 25.0,
        );
        let tol = 4.0 * (se * se + rse * rse).sqrt();
        eprintln!(
            "α={}: overestimate ours {:.4} ± {se:.4}, ref {fr:.4} ± {rse:.4} (tol {tol:.4})",
            o.alpha, o.overestimate_frequency_mean
        );
        if (o.overestimate_frequency_mean - fr).abs() > tol {
            bad.push(format!(
                "α={} overestimate {} vs {fr}",
                o.alpha, o.overestimate_frequency_mean
            ));
        }
        let deff = o.fifty_fifty_sem_episodes / o.fifty_fifty_sem;
        let mr = r["fifty_fifty_harm_estimate_mean"].as_f64().unwrap();
        let se = o.fifty_fifty_sem_episodes;
        let rse = r["fifty_fifty_harm_estimate_sem"].as_f64().unwrap() * deff;
        let tol = 4.0 * (se * se + rse * rse).sqrt();
        eprintln!(
            "α={}: 50/50 mean ours {:.4} ± {se:.4}, ref {mr:.4} ± {rse:.4} (design effect {deff:.1}, tol {tol:.4})",
            o.alpha, o.fifty_fifty_mean
        );
        if (o.fifty_fifty_mean - mr).abs() > tol {
            bad.push(format!(
                "α={} 50/50 mean {} vs {mr}",
                o.alpha, o.fifty_fifty_mean
            ));
        }
    }
    assert!(bad.is_empty(), "{bad:#?}");
}
