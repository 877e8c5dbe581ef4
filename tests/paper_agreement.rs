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
