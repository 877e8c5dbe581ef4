//! `gpubound audit` end to end, as a user runs it.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

const MODEL: &str = r#"{"type":"model","hypotheses":{"kind":"grid","k":2,"d":3},"observation":{"kind":"gaussian","sigma":1.0,"harm_threshold":1.0}}"#;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gpubound"))
}

/// A two-stream bandit log with known h*: stream 1 has w* = [0,0,1].
fn bandit_log() -> String {
    let mut s = format!("{MODEL}\n");
    s += r#"{"type":"stream","id":"a","true_hypothesis":1,"candidates":[[0,0,0],[0,0,1],[1,1,0],[0,1,0]]}"#;
    s += "\n";
    for (a, y) in [(3, -0.56), (1, 1.9), (2, 0.1), (1, 0.7), (0, 0.2)] {
        s += &format!("{{\"type\":\"step\",\"action\":{a},\"outcome\":{y}}}\n");
    }
    s += r#"{"type":"stream","id":"b","true_params":[1,1,1],"candidates":[[1,0,0],[1,1,1]]}"#;
    s += "\n";
    for (a, y) in [(0, 1.2), (1, 3.4), (1, 2.8)] {
        s += &format!("{{\"type\":\"step\",\"action\":{a},\"outcome\":{y}}}\n");
    }
    s
}

fn write_log(dir: &std::path::Path, text: &str) -> std::path::PathBuf {
    let p = dir.join("log.jsonl");
    std::fs::write(&p, text).unwrap();
    p
}

fn records(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn jsonl_report_has_every_estimator_for_every_candidate() {
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(dir.path(), &bandit_log());
    let o = bin()
        .args(["audit"])
        .arg(&log)
        .args(["--alpha", "0.01,0.5", "-C", "0.1,0.5"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let recs = records(&String::from_utf8(o.stdout).unwrap());
    assert_eq!(recs.len(), 8);
    let first = &recs[0];
    assert_eq!(first["stream"], "a");
    assert_eq!(first["step"], 1);
    assert_eq!(first["line"], 3);
    assert_eq!(first["candidates"].as_array().unwrap().len(), 4);
    // at the prior every hypothesis is plausible: the bound is the largest q
    // over the grid. Arm [1,1,0]: max w·x = 2, q = P(N(2,1) > 1) = 0.8413…
    let c2 = &first["candidates"][2];
    assert!(
        (c2["plausible_set"]["0.01"].as_f64().unwrap() - 0.841_344_746_068_542_9).abs() < 1e-12
    );
    // oracle for w* = [0,0,1], arm [0,0,1]: P(N(1,1) > 1) = 0.5
    assert_eq!(first["candidates"][1]["oracle"], 0.5);
    assert_eq!(first["taken"], first["candidates"][3]);
    // the plausible set at the prior is the whole space, by the tie rule
    assert_eq!(first["posterior"]["plausible_set_size"]["0.5"], 8);
    assert!((first["posterior"]["map_probability"].as_f64().unwrap() - 0.125).abs() < 1e-15);
    // verdicts: per threshold, per estimator
    let v = &first["verdicts"]["0.1"]["plausible_set[alpha=0.01]"];
    assert_eq!(v["rejected"], true); // taken arm [0,1,0]: max q = P(N(1,1)>1) = 0.5 > 0.1
    assert_eq!(v["safest_candidate"], 0);
    // stream b restarts from the prior: its first step again has 8 plausible hypotheses
    let b1 = recs.iter().find(|r| r["stream"] == "b").unwrap();
    assert_eq!(b1["step"], 1);
    assert_eq!(b1["posterior"]["plausible_set_size"]["0.01"], 8);
    // the summary goes to stderr when the report goes to stdout
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(err.contains("2 streams, 8 steps"), "{err}");
}

#[test]
fn shared_world_carries_the_posterior_across_streams() {
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(dir.path(), &bandit_log());
    let o = bin()
        .args(["audit", "--shared-world", "-q"])
        .arg(&log)
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(o.stderr.is_empty(), "--quiet prints nothing");
    let recs = records(&String::from_utf8(o.stdout).unwrap());
    let b1 = recs.iter().find(|r| r["stream"] == "b").unwrap();
    assert!(b1["posterior"]["map_probability"].as_f64().unwrap() > 0.125);
}

#[test]
fn csv_report_has_one_row_per_candidate() {
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(dir.path(), &bandit_log());
    let out = dir.path().join("r.csv");
    let o = bin()
        .args(["audit", "--format", "csv", "--alpha", "0.1"])
        .arg(&log)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success());
    // with --out, the summary goes to stdout
    assert!(String::from_utf8(o.stdout)
        .unwrap()
        .contains("Taken actions a guardrail"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "a report is an ordinary readable file");
    }
    let mut rd = csv::Reader::from_path(&out).unwrap();
    let header = rd.headers().unwrap().clone();
    let rows: Vec<csv::StringRecord> = rd.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 5 * 4 + 3 * 2);
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name}"))
    };
    let taken: Vec<&csv::StringRecord> =
        rows.iter().filter(|r| &r[col("taken")] == "true").collect();
    assert_eq!(taken.len(), 8);
    assert_eq!(&rows[1][col("oracle")], "0.5");
    assert!(header
        .iter()
        .any(|h| h == "rejected[plausible_set[alpha=0.1]][C=0.01]"));
}

#[test]
fn reads_standard_input_and_fail_on_reject_exits_3() {
    let mut child = bin()
        .args(["audit", "-", "--fail-on-reject", "-q", "-C", "0.2"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(bandit_log().as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        records(&String::from_utf8(o.stdout).unwrap()).len(),
        8,
        "the report is still written"
    );
    // with a lenient threshold nothing is rejected: exit 0
    let mut child = bin()
        .args(["audit", "-", "--fail-on-reject", "-q", "-C", "1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(bandit_log().as_bytes())
        .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn model_file_and_overrides_replace_the_logs_model() {
    let dir = tempfile::tempdir().unwrap();
    let body: String = bandit_log()
        .lines()
        .skip(1)
        .map(|l| format!("{l}\n"))
        .collect();
    let log = write_log(dir.path(), &body);
    let model = dir.path().join("model.json");
    std::fs::write(&model, MODEL.replace(r#""type":"model","#, "")).unwrap();
    let run = |extra: &[&str]| {
        let o = bin()
            .args(["audit", "-q", "--alpha", "0.5"])
            .arg(&log)
            .arg("--model")
            .arg(&model)
            .args(extra)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        records(&String::from_utf8(o.stdout).unwrap())
    };
    let base = run(&[]);
    let raised = run(&["--harm-threshold", "3"]);
    let q = |r: &Vec<Value>| {
        r[0]["candidates"][2]["plausible_set"]["0.5"]
            .as_f64()
            .unwrap()
    };
    assert!((q(&base) - 0.841_344_746_068_542_9).abs() < 1e-12);
    // θ = 3: P(N(2,1) > 3) = 0.1586…
    assert!((q(&raised) - 0.158_655_253_931_457_05).abs() < 1e-12);
}

#[test]
fn contextual_steps_and_listed_hypotheses_with_importance_weights() {
    let dir = tempfile::tempdir().unwrap();
    // three hypotheses in R^2, sampled from a proposal r: prior weight ∝ π/r
    std::fs::write(
        dir.path().join("hyps.jsonl"),
        "{\"params\":[0.5,-1.0],\"log_prior\":0,\"log_proposal\":-0.5}\n{\"params\":[2.0,0.25],\"log_prior\":0,\"log_proposal\":-1.5}\n{\"params\":[-1.0,1.5],\"log_prior\":0,\"log_proposal\":-1.0}\n",
    )
    .unwrap();
    let model = r#"{"type":"model","hypotheses":{"kind":"list","file":"hyps.jsonl"},"observation":{"kind":"bernoulli"}}"#;
    let mut text = format!("{model}\n{{\"type\":\"stream\",\"true_hypothesis\":1}}\n");
    text +=
        "{\"type\":\"step\",\"action\":0,\"outcome\":1,\"candidates\":[[0.3,0.1],[-2.0,0.7]]}\n";
    text += "{\"type\":\"step\",\"action\":1,\"outcome\":0,\"candidates\":[[1.5,-0.2],[0.0,0.0],[3.0,1.0]]}\n";
    text += "{\"type\":\"step\",\"action\":0,\"candidates\":[[0.1,0.2]]}\n";
    let log = write_log(dir.path(), &text);
    let o = bin()
        .args(["audit", "-q", "--alpha", "1"])
        .arg(&log)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let recs = records(&String::from_utf8(o.stdout).unwrap());
    assert_eq!(recs[1]["candidates"].as_array().unwrap().len(), 3);
    // the prior: weights ∝ e^{0.5}, e^{1.5}, e^{1.0}: MAP = hypothesis 1
    let z: f64 = [0.5f64, 1.5, 1.0].iter().map(|v| v.exp()).sum();
    let p: Vec<f64> = [0.5f64, 1.5, 1.0].iter().map(|v| v.exp() / z).collect();
    assert_eq!(recs[0]["posterior"]["map_hypothesis"], 1);
    assert!((recs[0]["posterior"]["map_probability"].as_f64().unwrap() - p[1]).abs() < 1e-14);
    // predictive at step 1, candidate 0 (x = [0.3, 0.1]): Σ p_h sigmoid(w_h·x)
    let w = [[0.5, -1.0], [2.0, 0.25], [-1.0, 1.5]];
    let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
    let want: f64 = (0..3)
        .map(|h| p[h] * sig(w[h][0] * 0.3 + w[h][1] * 0.1))
        .sum();
    let got = recs[0]["candidates"][0]["posterior_predictive"]
        .as_f64()
        .unwrap();
    assert!((got - want).abs() < 1e-14, "{got} vs {want}");
    // α = 1: the plausible set is the MAP alone
    let map_q = sig(2.0 * 0.3 + 0.25 * 0.1);
    assert!(
        (recs[0]["candidates"][0]["plausible_set"]["1"]
            .as_f64()
            .unwrap()
            - map_q)
            .abs()
            < 1e-15
    );
    // step 2's posterior has seen y=1 at x=[0.3,0.1]: P(h) ∝ p_h·sigmoid(w_h·x)
    let post: Vec<f64> = (0..3)
        .map(|h| p[h] * sig(w[h][0] * 0.3 + w[h][1] * 0.1))
        .collect();
    let pz: f64 = post.iter().sum();
    let want2: f64 = (0..3)
        .map(|h| post[h] / pz * sig(w[h][0] * 1.5 + w[h][1] * -0.2))
        .sum();
    let got2 = recs[1]["candidates"][0]["posterior_predictive"]
        .as_f64()
        .unwrap();
    assert!((got2 - want2).abs() < 1e-14, "{got2} vs {want2}");
}

#[test]
fn delta_and_prior_floor_set_alpha_and_the_summary_states_delta() {
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(dir.path(), &bandit_log());
    let out = dir.path().join("r.jsonl");
    let o = bin()
        .args(["audit", "--delta", "0.1", "--prior-floor", "0.125"])
        .arg(&log)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success());
    let summary = String::from_utf8(o.stdout).unwrap();
    assert!(
        summary.contains("alpha = 1.25e-2: implied delta = alpha / p_min = 0.1000"),
        "{summary}"
    );
    let recs = records(&std::fs::read_to_string(&out).unwrap());
    assert!(recs[0]["taken"]["plausible_set"]["0.0125"].is_number());
}

/// `-o /dev/null` (or any device or pipe) receives the report; the device
/// is written to, never replaced by a renamed file.
#[cfg(unix)]
#[test]
fn a_device_as_output_is_written_to_not_replaced() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(dir.path(), &bandit_log());
    let o = bin()
        .args(["audit", "-q", "-o", "/dev/null"])
        .arg(&log)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let meta = std::fs::metadata("/dev/null").unwrap();
    assert!(
        meta.file_type().is_char_device(),
        "/dev/null is still a device"
    );
}
