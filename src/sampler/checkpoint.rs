//! The sampler's file: everything a run needs to resume or to be used.
//!
//! Layout: the line `gpubound-sampler 1`, a JSON header line (the model's
//! model line, the layer widths, the training settings, seed, step, counts),
//! then little-endian f64: θ, Adam's first and second moments; then the
//! loss of every step as f32. Written atomically (a temporary file renamed).

use std::io::{BufRead, Read, Write};
use std::path::Path;

use super::policy::{Policy, PolicyConfig};
use super::train::{Adam, TrainConfig, Trainer};
use super::SamplerModel;
use crate::{Error, Result};

const MAGIC: &str = "gpubound-sampler 1";

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    model: serde_json::Value,
    policy: PolicyConfig,
    train: TrainConfig,
    seed: u64,
    step: u64,
    adam_steps: u64,
    n_params: usize,
    n_losses: usize,
}

/// Writes `trainer` to `path` atomically.
pub fn save(trainer: &Trainer, path: &Path) -> Result<()> {
    let p = &trainer.policy;
    let header = Header {
        model: serde_json::from_str(&p.model.to_json()).expect("valid JSON"),
        policy: p.config,
        train: trainer.config,
        seed: trainer.seed,
        step: trainer.step,
        adam_steps: trainer.adam.t,
        n_params: p.len(),
        n_losses: trainer.losses.len(),
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let io = |e| Error::io(path, e);
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    {
        let mut out = std::io::BufWriter::new(tmp.as_file_mut());
        writeln!(out, "{MAGIC}").map_err(io)?;
        writeln!(
            out,
            "{}",
            serde_json::to_string(&header).expect("serialisable")
        )
        .map_err(io)?;
        for v in p
            .params
            .iter()
            .chain(&trainer.adam.m)
            .chain(&trainer.adam.v)
        {
            out.write_all(&v.to_le_bytes()).map_err(io)?;
        }
        for l in &trainer.losses {
            out.write_all(&l.to_le_bytes()).map_err(io)?;
        }
        out.flush().map_err(io)?;
    }
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

/// Reads a sampler file. With `expected`, a sampler trained for another
/// model is an error that shows both models.
pub fn load(path: &Path, expected: Option<&SamplerModel>) -> Result<Trainer> {
    let name = path.display().to_string();
    let bad = |m: String| Error::input(&name, None, m);
    let file = std::fs::File::open(path).map_err(|e| Error::input_file(path, e))?;
    let mut input = std::io::BufReader::new(file);
    let mut line = String::new();
    let read_line = |input: &mut std::io::BufReader<std::fs::File>, line: &mut String| {
        line.clear();
        // a header line is short: bound what a wrong file can make us read
        (&mut *input)
            .take(1 << 20)
            .read_line(line)
            .map_err(|e| Error::input_file(path, e))
    };
    read_line(&mut input, &mut line)?;
    if line.trim_end() != MAGIC {
        return Err(bad(format!(
            "not a gpubound sampler file (it should start with `{MAGIC}`)"
        )));
    }
    read_line(&mut input, &mut line)?;
    let header: Header = serde_json::from_str(&line)
        .map_err(|e| bad(format!("the sampler file's header is damaged: {e}")))?;
    let model = SamplerModel::from_json(&name, header.model.to_string().as_bytes())?;
    if let Some(want) = expected {
        if *want != model {
            return Err(bad(format!(
                "this sampler was trained for another model: {} (wanted {})",
                model.to_json(),
                want.to_json()
            )));
        }
    }
    let n = Policy::n_params(&model, &header.policy);
    if n != header.n_params {
        return Err(bad(format!(
            "the header says {} parameters, its layers have {n}",
            header.n_params
        )));
    }
    let mut floats = |count: usize| -> Result<Vec<f64>> {
        let mut bytes = vec![0u8; count * 8];
        input
            .read_exact(&mut bytes)
            .map_err(|e| bad(format!("the sampler file is truncated: {e}")))?;
        Ok(bytes
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
            .collect())
    };
    let params = floats(n)?;
    let m = floats(n)?;
    let v = floats(n)?;
    if params.iter().chain(&m).chain(&v).any(|x| !x.is_finite()) {
        return Err(bad(
            "the sampler file holds a number that is not finite".into()
        ));
    }
    let mut bytes = Vec::new();
    input
        .read_to_end(&mut bytes)
        .map_err(|e| Error::input_file(path, e))?;
    if bytes.len() != header.n_losses * 4 {
        return Err(bad(format!(
            "the sampler file should end with {} losses ({} bytes), found {} bytes",
            header.n_losses,
            header.n_losses * 4,
            bytes.len()
        )));
    }
    let losses = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
        .collect();
    let policy = Policy::new(model, header.policy, 0)?.with_params(params)?;
    let adam = Adam {
        m,
        v,
        t: header.adam_steps,
    };
    Trainer::resume(policy, adam, header.train, header.seed, header.step, losses)
}
