//! `gpubound bench`: time the full audit computation on a synthetic workload
//! on every available backend.

use serde_json::json;

use crate::bench::{self, Workload, WorkloadSpec};
use crate::cli::{exit, BenchArgs};
use crate::engine::{cpu::CpuEngine, gpu::GpuEngine, BackendChoice, Engine};
use crate::estimators::Alphas;
use crate::{progress, Error};

pub fn run(args: BenchArgs) -> anyhow::Result<u8> {
    let spec = WorkloadSpec {
        hypotheses: args.hypotheses,
        steps: args.steps,
        actions: args.actions,
        dim: args.dim,
        model: args.model,
        stream_length: args.stream_length.unwrap_or(args.steps),
        contextual: args.contextual,
        seed: args.seed,
    };
    if args.batch_elements == Some(0) {
        return Err(Error::Setting("--batch-elements must be ≥ 1".into()).into());
    }
    if args.runs == 0 {
        return Err(Error::Setting("--runs must be ≥ 1".into()).into());
    }
    let workload = Workload::generate(&spec)?;
    let floor = workload.model.hypotheses.smallest_prior_mass();
    let alphas = Alphas::new(bench::PAPER_ALPHAS.to_vec(), floor).map_err(Error::Setting)?;

    let mut engines: Vec<Box<dyn Engine>> = Vec::new();
    let mut unavailable = Vec::new();
    if args.backend.backend != BackendChoice::Gpu {
        engines.push(Box::new(CpuEngine::new()));
    }
    if args.backend.backend != BackendChoice::Cpu {
        let gpu = if args.kernel_times {
            GpuEngine::timed()
        } else {
            GpuEngine::new()
        };
        match gpu {
            Ok(g) => engines.push(Box::new(g)),
            Err(e) if args.backend.backend == BackendChoice::Gpu => return Err(e.into()),
            Err(e) => unavailable.push(e.to_string()),
        }
    }

    let bar = progress::bar(
        Some(((args.runs + 1) * engines.len()) as u64),
        args.quiet || args.json,
        "bench",
    );
    let mut timings = Vec::new();
    for engine in &engines {
        timings.push(bench::time_backend(
            &workload,
            engine.as_ref(),
            &alphas,
            args.runs,
            args.batch_elements,
            || bar.inc(1),
        )?);
    }
    bar.finish_and_clear();

    let speedup = (timings.len() == 2)
        .then(|| timings[1].median_triples_per_s / timings[0].median_triples_per_s);
    if args.json {
        let v = json!({
            "workload": { "spec": spec, "description": workload.description, "triples_per_run": workload.triples,
                          "alphas": alphas.values },
            "results": timings,
            "gpu_over_cpu_speedup": speedup,
            "unavailable": unavailable,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(exit::OK);
    }
    println!("workload: {}", workload.description);
    println!(
        "          {} alphas, {:.3e} triples per run",
        alphas.len(),
        workload.triples as f64
    );
    for t in &timings {
        let mut s = t.seconds.clone();
        s.sort_by(f64::total_cmp);
        println!(
            "{:<60} median {:.3e} triples/s (min {:.3e}, max {:.3e}) over {} runs, {:.1} ms per run",
            t.backend.to_string(),
            t.median_triples_per_s,
            t.min_triples_per_s,
            t.max_triples_per_s,
            t.runs,
            1e3 * s[s.len() / 2]
        );
        let p = &t.phase_seconds;
        println!(
            "{:<60} per run: likelihoods {:.1} ms, posterior {:.1} ms, reduce {:.1} ms, estimators {:.1} ms, setup {:.1} ms ({} pairs per batch)",
            "",
            1e3 * p.likelihoods,
            1e3 * p.posterior,
            1e3 * p.reduce,
            1e3 * p.estimators,
            1e3 * p.setup,
            t.batch_elements
        );
        match &t.kernel_seconds {
            Some(times) => {
                for k in times {
                    println!(
                        "{:<60} kernel {:<32} {:>9.3} ms per run, {} dispatches",
                        "",
                        k.kernel,
                        1e3 * k.seconds,
                        k.dispatches
                    );
                }
            }
            None if args.kernel_times && t.backend.kind == crate::engine::Backend::Gpu => {
                println!(
                    "{:<60} kernel times: this adapter has no timestamp queries",
                    ""
                );
            }
            None => {}
        }
    }
    if let Some(x) = speedup {
        println!("speed-up gpu over cpu: {x:.2}x");
    }
    for u in &unavailable {
        println!("gpu unavailable: {u}");
    }
    Ok(exit::OK)
}
