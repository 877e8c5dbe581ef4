//! `gpubound bench`: time the full audit computation on a synthetic workload
//! on every available backend.

use serde_json::json;

use crate::bench::peak::{self, GpuPeak};
use crate::bench::suite::{self, BackendEntry, SuiteFile, WorkloadEntry, WorkloadResult};
use crate::bench::{self, Workload, WorkloadSpec};
use crate::cli::{exit, BenchArgs};
use crate::engine::gpu::device::{AdapterPolicy, Gpu};
use crate::engine::{cpu::CpuEngine, gpu::GpuEngine, BackendChoice, Engine};
use crate::estimators::Alphas;
use crate::{progress, Error};

pub fn run(args: BenchArgs) -> anyhow::Result<u8> {
    if let Some(files) = &args.compare {
        return compare(&files[0], &files[1], args.json);
    }
    if args.suite {
        return suite(&args);
    }
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

/// `--suite`: every workload of `bench::suite` on every backend `--backend`
/// allows (auto: the CPU and any GPU adapter, software renderers included).
fn suite(args: &BenchArgs) -> anyhow::Result<u8> {
    if args.runs == 0 {
        return Err(Error::Setting("--runs must be ≥ 1".into()).into());
    }
    let workloads = suite::workloads(args.quick);
    let mut unavailable = Vec::new();
    // (engine, peak kernels of the same adapter)
    let mut engines: Vec<(Box<dyn Engine>, Option<GpuPeak>)> = Vec::new();
    if args.backend.backend != BackendChoice::Gpu {
        engines.push((Box::new(CpuEngine::new()), None));
    }
    if args.backend.backend != BackendChoice::Cpu {
        let opened = GpuEngine::new().and_then(|g| {
            let p = GpuPeak::new(Gpu::open(AdapterPolicy::Any, false)?)?;
            Ok((g, p))
        });
        match opened {
            Ok((g, p)) => engines.push((Box::new(g), Some(p))),
            Err(e) if args.backend.backend == BackendChoice::Gpu => return Err(e.into()),
            Err(e) => unavailable.push(format!("gpu: {e}")),
        }
    }
    let software = |p: &Option<GpuPeak>| {
        p.as_ref()
            .is_some_and(|p| crate::engine::gpu::device::is_software(p.adapter()))
    };
    let bar = progress::bar(
        Some(((args.runs + 1) * workloads.len() * engines.len()) as u64),
        args.quiet || (args.json && args.output.is_none()),
        "bench suite",
    );
    let mut backends: Vec<BackendEntry> = engines
        .iter()
        .map(|(e, p)| {
            let info = e.info();
            let peak = match p {
                Some(p) => p.measure()?,
                None => peak::measure_cpu(),
            };
            Ok(BackendEntry {
                kind: info.kind.to_string(),
                device: info.device.clone(),
                api: info.api.clone(),
                driver: info.driver.clone(),
                software: software(p),
                peak,
                results: Vec::new(),
            })
        })
        .collect::<crate::Result<_>>()?;
    let mut entries = Vec::new();
    for w in &workloads {
        let workload = Workload::generate(&w.spec)?;
        let floor = workload.model.hypotheses.smallest_prior_mass();
        let alphas = Alphas::new(bench::PAPER_ALPHAS.to_vec(), floor).map_err(Error::Setting)?;
        let entry = WorkloadEntry {
            id: w.id.to_string(),
            description: workload.description.clone(),
            hypotheses: workload.model.hypotheses.len(),
            steps: w.spec.steps,
            actions: w.spec.actions,
            dim: w.spec.dim,
            model: w.spec.model.name().to_string(),
            stream_length: w.spec.stream_length,
            contextual: w.spec.contextual,
            seed: w.spec.seed,
            triples_per_run: workload.triples,
            flops_per_triple: suite::flops_per_triple(&w.spec),
            bytes_per_triple: suite::BYTES_PER_TRIPLE,
        };
        for ((engine, p), b) in engines.iter_mut().zip(&mut backends) {
            if p.is_none() {
                // A fresh CPU engine per workload, so that no workload
                // starts with another's harm tables cached (each is timed
                // from the same cold start).
                *engine = Box::new(CpuEngine::new());
            }
            let result = match w.skip_on_software {
                Some(reason) if software(p) => {
                    bar.inc(args.runs as u64 + 1);
                    WorkloadResult::skipped(w.id, reason)
                }
                _ => {
                    let t = bench::time_backend(
                        &workload,
                        engine.as_ref(),
                        &alphas,
                        args.runs,
                        None,
                        || bar.inc(1),
                    )?;
                    WorkloadResult::timed(&entry, &t, &b.peak)
                }
            };
            b.results.push(result);
        }
        entries.push(entry);
    }
    bar.finish_and_clear();
    let file = SuiteFile {
        format: suite::FORMAT.into(),
        suite_version: suite::SUITE_VERSION,
        quick: args.quick,
        gpubound_version: env!("CARGO_PKG_VERSION").into(),
        created_unix_s: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        machine: suite::Machine::this(),
        alphas: bench::PAPER_ALPHAS.to_vec(),
        workloads: entries,
        backends,
        unavailable,
    };
    let json = serde_json::to_string_pretty(&file)?;
    if let Some(path) = &args.output {
        std::fs::write(path, json + "\n").map_err(|e| Error::io(path, e))?;
    } else if args.json {
        println!("{json}");
        return Ok(exit::OK);
    }
    if args.quiet {
        return Ok(exit::OK);
    }
    let m = &file.machine;
    println!(
        "machine: {}, {} cores, {}, {}",
        m.cpu,
        m.cores,
        m.memory_bytes.map_or("memory unknown".into(), |b| format!(
            "{:.1} GiB",
            b as f64 / (1u64 << 30) as f64
        )),
        m.os
    );
    for b in &file.backends {
        println!(
            "\n{} ({}{}{}): peak {:.3e} FLOP/s, {:.3e} bytes/s",
            b.kind,
            b.device,
            if b.api.is_empty() {
                String::new()
            } else {
                format!(", {}", b.api)
            },
            if b.driver.is_empty() {
                String::new()
            } else {
                format!(", driver {}", b.driver)
            },
            b.peak.flops_per_s,
            b.peak.bytes_per_s
        );
        println!(
            "  {:<20} {:>11} {:>11} {:>11} {:>9} {:>9}",
            "workload", "median t/s", "min", "max", "of FLOP", "of bytes"
        );
        for r in &b.results {
            match &r.skipped {
                Some(why) => println!("  {:<20} skipped: {why}", r.workload),
                None => println!(
                    "  {:<20} {:>11.3e} {:>11.3e} {:>11.3e} {:>8.2}% {:>8.2}%",
                    r.workload,
                    r.median_triples_per_s.unwrap_or(f64::NAN),
                    r.min_triples_per_s.unwrap_or(f64::NAN),
                    r.max_triples_per_s.unwrap_or(f64::NAN),
                    100.0 * r.fraction_of_peak_flops.unwrap_or(f64::NAN),
                    100.0 * r.fraction_of_peak_bandwidth.unwrap_or(f64::NAN),
                ),
            }
        }
    }
    for u in &file.unavailable {
        println!("unavailable: {u}");
    }
    if let Some(path) = &args.output {
        println!("\nwritten: {}", path.display());
    }
    Ok(exit::OK)
}

/// `--compare A B`: B/A per workload and peak.
fn compare(a_path: &str, b_path: &str, json: bool) -> anyhow::Result<u8> {
    let a = SuiteFile::read(a_path)?;
    let b = SuiteFile::read(b_path)?;
    let rows = suite::compare(&a, a_path, &b, b_path)?;
    if json {
        let v: Vec<_> = rows
            .iter()
            .map(|r| json!({"what": r.what, "backends": r.backends, "a": r.a, "b": r.b, "ratio": r.ratio}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(exit::OK);
    }
    let name = |f: &SuiteFile, p: &str| {
        let devices: Vec<String> = f
            .backends
            .iter()
            .map(|b| format!("{} {}", b.kind, b.device))
            .collect();
        format!("{p}: {} ({})", f.machine.cpu, devices.join("; "))
    };
    println!("A = {}", name(&a, a_path));
    println!("B = {}", name(&b, b_path));
    println!(
        "{:<20} {:<12} {:>11} {:>11} {:>8}",
        "workload", "backends", "A", "B", "B/A"
    );
    let fmt = |x: Option<f64>| x.map_or("skipped".into(), |x| format!("{x:.3e}"));
    for r in &rows {
        println!(
            "{:<20} {:<12} {:>11} {:>11} {:>8}",
            r.what,
            r.backends,
            fmt(r.a),
            fmt(r.b),
            r.ratio.map_or("—".into(), |x| format!("{x:.3}"))
        );
    }
    Ok(exit::OK)
}
