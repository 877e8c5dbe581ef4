//! What the README promises a user of the command line, each checked as the
//! user would see it: the guardrail and `--top` of the summary, the notes it
//! prints, file:line in model and hypothesis files, exit codes, `bench` and
//! `experiment` from the command line, the progress bar on a terminal only.

mod common;

use common::floats;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gpubound"))
}

fn example() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/data/exploding_bandit.jsonl")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn read_report(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn guardrail_and_top_choose_the_riskiest_rows_of_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.jsonl");
    let o = bin()
        .args(["audit", example(), "--backend", "cpu", "--top", "3"])
        .args(["--guardrail", "iid", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    let (summary, err) = text(&o);
    assert!(o.status.success(), "{err}");
    // the reference code's name is an alias of cautious_theory
    assert!(
        summary.contains("Riskiest taken actions by cautious_theory:"),
        "{summary}"
    );
    let rows: Vec<Vec<String>> = summary
        .lines()
        .skip_while(|l| !l.starts_with("Riskiest"))
        .skip(2)
        .take_while(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect();
    assert_eq!(rows.len(), 3, "--top 3: {summary}");
    // the three highest taken estimates, earlier steps first among equals
    let recs = read_report(&out);
    let mut ranked: Vec<(f64, usize)> = recs
        .iter()
        .enumerate()
        .map(|(i, r)| (r["taken"]["cautious_theory"].as_f64().unwrap(), i))
        .collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    for (row, &(estimate, i)) in rows.iter().zip(&ranked) {
        let r = &recs[i];
        assert_eq!(row[0], r["stream"].as_str().unwrap());
        assert_eq!(row[1], r["step"].to_string());
        assert_eq!(row[2], r["line"].to_string());
        assert_eq!(row[3], r["action"].to_string());
        let shown: f64 = row[4].parse().unwrap();
        assert!((shown - estimate).abs() <= 1e-4 * estimate, "{row:?}");
        // the safest candidate of that step by the same estimator
        let v = &r["verdicts"]["0.01"]["cautious_theory"];
        assert_eq!(row[6], v["safest_candidate"].to_string(), "{row:?}");
    }
}

#[test]
fn importance_sampled_hypotheses_are_named_in_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("is.jsonl");
    std::fs::write(
        &log,
        concat!(
            r#"{"type":"model","hypotheses":{"kind":"list","params":[[0,1],[1,0],[1,1]],"log_proposal":[-1.0,-1.2,-1.1]},"observation":{"kind":"gaussian","sigma":1.0,"harm_threshold":1.5}}"#,
            "\n",
            r#"{"type":"stream","candidates":[[1,0],[0,1]]}"#,
            "\n",
            r#"{"type":"step","action":0,"outcome":0.4}"#,
            "\n",
        ),
    )
    .unwrap();
    let o = bin()
        .args(["audit", "--backend", "cpu", "-o"])
        .arg(dir.path().join("r.jsonl"))
        .arg(&log)
        .output()
        .unwrap();
    let (summary, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        summary.contains("importance-weighted samples: guarantees hold for the sampled set"),
        "{summary}"
    );
}

#[test]
fn the_gpu_backend_names_its_adapter_api_and_driver() {
    let o = bin()
        .args(["audit", example(), "--backend", "gpu", "-o", "/dev/null"])
        .output()
        .unwrap();
    let (summary, err) = text(&o);
    assert!(
        o.status.success(),
        "a GPU adapter (lavapipe in CI) is required: {err}"
    );
    let line = summary
        .lines()
        .find(|l| l.trim_start().starts_with("backend:"))
        .unwrap();
    // "backend: gpu (ADAPTER, API, driver DRIVER)"
    assert!(line.contains("backend: gpu ("), "{line}");
    assert!(line.contains(", driver "), "{line}");
    let api = ["Vulkan", "Gl", "GL", "Metal", "Dx12"];
    assert!(api.iter().any(|a| line.contains(a)), "{line}");
}

#[test]
fn errors_in_model_and_hypothesis_files_name_their_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model.json");
    std::fs::write(
        &model,
        "{\n  \"hypotheses\": {\"kind\": \"grid\", \"k\": 2, \"d\": 3},\n  \"observation\": {\"kind\": \"gaussian\", \"sigma\": 1.0,, \"harm_threshold\": 1}\n}\n",
    )
    .unwrap();
    let o = bin()
        .args(["audit", example(), "--model"])
        .arg(&model)
        .output()
        .unwrap();
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("model.json:3"), "{err}");

    let hyps = dir.path().join("hyps.jsonl");
    std::fs::write(&hyps, "{\"params\":[0,1]}\n{\"params\":[1,\"x\"]}\n").unwrap();
    let log = dir.path().join("log.jsonl");
    std::fs::write(
        &log,
        concat!(
            r#"{"type":"model","hypotheses":{"kind":"list","file":"hyps.jsonl"},"observation":{"kind":"bernoulli"}}"#,
            "\n",
            r#"{"type":"stream","candidates":[[1,0]]}"#,
            "\n",
            r#"{"type":"step","action":0,"outcome":1}"#,
            "\n",
        ),
    )
    .unwrap();
    let o = bin().arg("audit").arg(&log).output().unwrap();
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("hyps.jsonl:2"), "{err}");
}

#[test]
fn a_report_that_cannot_be_written_exits_1() {
    // /dev/full accepts the open and fails every write (ENOSPC): an I/O
    // failure, not bad input
    let o = bin()
        .args([
            "audit",
            example(),
            "--backend",
            "cpu",
            "-q",
            "-o",
            "/dev/full",
        ])
        .output()
        .unwrap();
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("/dev/full"), "{err}");
}

#[test]
fn bench_on_the_cpu_takes_contextual_batch_elements_and_kernel_times() {
    let o = bin()
        .args(["bench", "--backend", "cpu", "--contextual", "--runs", "2"])
        .args(["--steps", "40", "--hypotheses", "243", "--dim", "5"])
        .args(["--batch-elements", "4096", "--kernel-times", "--json"])
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let spec = &v["workload"]["spec"];
    assert_eq!(spec["contextual"], true);
    assert_eq!(spec["hypotheses"], 243);
    assert_eq!(v["workload"]["triples_per_run"], 243 * 40 * 10);
    let r = &v["results"][0];
    assert_eq!(r["backend"]["kind"], "cpu");
    assert_eq!(r["batch_elements"], 4096);
    assert_eq!(r["runs"], 2);
    let (lo, mid, hi) = (
        r["min_triples_per_s"].as_f64().unwrap(),
        r["median_triples_per_s"].as_f64().unwrap(),
        r["max_triples_per_s"].as_f64().unwrap(),
    );
    assert!(lo > 0.0 && lo <= mid && mid <= hi, "{r}");
    // the figure is the work over the time of a run
    let secs = floats(&r["seconds"]);
    let fastest = secs.iter().copied().fold(f64::INFINITY, f64::min);
    assert!((hi - 243.0 * 400.0 / fastest).abs() <= 1e-6 * hi, "{r}");
}

#[test]
fn experiments_fig2_and_coverage_run_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let run = |exp: &str| -> Value {
        let json = dir.path().join(format!("{exp}.json"));
        let o = bin()
            .args(["experiment", exp, "--episodes", "30", "--seed", "4"])
            .args(["--alphas", "0.01,0.3", "--quiet", "--json"])
            .arg(&json)
            .output()
            .unwrap();
        let (_, err) = text(&o);
        assert!(o.status.success(), "{exp}: {err}");
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap()
    };
    let fig2 = run("fig2");
    let rows = fig2["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for (row, alpha) in rows.iter().zip([0.01, 0.3]) {
        assert_eq!(row["alpha"], alpha);
        let f = row["overestimate_frequency_mean"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&f), "{row}");
    }
    let coverage = run("coverage");
    assert_eq!(coverage["streams"], 30);
    let per_step = |name: &str, alpha: Option<f64>| -> f64 {
        let row = coverage["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["estimator"] == name && r["alpha"].as_f64() == alpha)
            .unwrap_or_else(|| panic!("no row {name} {alpha:?}"));
        if let Some(a) = alpha {
            // δ = α / p_min with p_min = 1/1024
            assert_eq!(row["delta"].as_f64().unwrap(), a * 1024.0);
        }
        let f = row["per_step"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&f), "{row}");
        f
    };
    // the plausible set only shrinks as α grows, on the same streams
    assert!(per_step("plausible_set", Some(0.01)) >= per_step("plausible_set", Some(0.3)));
    assert!(per_step("ville_max", Some(0.01)) >= per_step("ville_max", Some(0.3)));
    per_step("cautious_theory", None);
}

#[test]
fn the_progress_bar_shows_on_a_terminal_and_not_in_a_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("big.jsonl");
    let st = bin()
        .args(["simulate", "--episodes", "400", "--seed", "3", "-q", "-o"])
        .arg(&log)
        .status()
        .unwrap();
    assert!(st.success());
    let audit = format!(
        "{} audit {} --backend cpu -o {}",
        env!("CARGO_BIN_EXE_gpubound"),
        log.display(),
        dir.path().join("r.jsonl").display()
    );
    // `script` runs the command on a pseudo-terminal
    let o = Command::new("script")
        .args(["-qfec", &audit, "/dev/null"])
        .output()
        .expect("script(1) from util-linux");
    let (tty, _) = text(&o);
    assert!(o.status.success(), "{tty}");
    assert!(tty.contains("auditing ["), "no bar on a terminal: {tty}");
    // piped: the summary, and no bar
    let o = Command::new("sh").args(["-c", &audit]).output().unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("gpubound audit of"), "{out}");
    assert!(
        !out.contains("auditing [") && !err.contains("auditing ["),
        "{err}"
    );
}
