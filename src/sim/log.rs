//! Writes simulated episodes in the action-log format `gpubound audit` reads
//! (`log::format`): one `model` line, then per episode a `stream` line with
//! the arm features and the true hypothesis, and one `step` line per pull.

use std::io::Write;

use serde_json::json;

use super::{EpisodeResult, Instance, Tables};

/// The `model` line.
pub fn model_line(tables: &Tables) -> String {
    json!({
        "type": "model",
        "hypotheses": {"kind": "grid", "k": tables.spec.k, "d": tables.spec.d},
        "observation": {
            "kind": "gaussian",
            "sigma": tables.spec.sigma,
            "harm_threshold": tables.theta,
        },
    })
    .to_string()
}

/// The `stream` and `step` lines of one episode.
pub fn write_episode(
    out: &mut impl Write,
    tables: &Tables,
    id: &str,
    inst: &Instance,
    res: &EpisodeResult,
) -> std::io::Result<()> {
    let spec = &tables.spec;
    let candidates: Vec<&[u16]> = (0..spec.n_arm).map(|a| inst.arm(spec, a)).collect();
    let stream = json!({
        "type": "stream",
        "id": id,
        "true_hypothesis": inst.true_hypothesis,
        "candidates": candidates,
    });
    writeln!(out, "{stream}")?;
    for p in &res.pulls {
        // `{}` on f64 is the shortest text that reads back to the same value
        writeln!(
            out,
            "{{\"type\":\"step\",\"action\":{},\"outcome\":{}}}",
            p.action,
            json!(p.reward)
        )?;
    }
    Ok(())
}
