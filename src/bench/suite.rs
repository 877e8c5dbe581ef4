//! `gpubound bench --suite`: a fixed set of workloads timed on every backend,
//! with each device's own peak, in one JSON file that `--compare` reads
//! (documented in docs/benchmarks.md).

use serde::{Deserialize, Serialize};

use super::peak::Peak;
use super::{BackendTiming, ModelFamily, WorkloadSpec};
use crate::{Error, Result};

/// The `format` field of a suite file.
pub const FORMAT: &str = "gpubound-bench-suite";
/// Bumped whenever a workload or a field changes meaning: files of
/// different versions are not compared.
pub const SUITE_VERSION: u32 = 1;

/// One workload of the suite.
#[derive(Debug, Clone)]
pub struct SuiteWorkload {
    pub id: &'static str,
    pub spec: WorkloadSpec,
    /// Too slow for a software renderer (a GPU emulated on the CPU's
    /// cores): skipped there, with this reason in the file.
    pub skip_on_software: Option<&'static str>,
}

fn spec(h: usize, dim: usize, steps: usize, stream: usize, contextual: bool) -> WorkloadSpec {
    WorkloadSpec {
        hypotheses: h,
        steps,
        actions: 10,
        dim,
        model: ModelFamily::Gaussian,
        stream_length: stream,
        contextual,
        seed: 1,
    }
}

/// (id, H, T, stream length, contextual, reason to skip on a software renderer)
type Row = (
    &'static str,
    usize,
    usize,
    usize,
    bool,
    Option<&'static str>,
);

/// The suite: `quick` keeps every workload and its shape (stream length,
/// contextual or not) with tiny sizes (d = 5, H = 32 … 1024, T ≤ 50), for
/// tests; its figures mean nothing.
pub fn workloads(quick: bool) -> Vec<SuiteWorkload> {
    const SLOW: &str = "skipped on a software renderer: at full size (5.2e8 triples per run at ~1e8 triples/s) \
                        the warm-up and runs take about half a minute of the CPU's cores, which the cpu backend measures directly";
    let rows: [Row; 7] = [
        ("long-h1024", 1024, 1000, 1000, false, None),
        ("short-h1024", 1024, 1000, 25, false, None),
        ("contextual-h1024", 1024, 1000, 25, true, None),
        ("long-h59049", 59049, 1000, 1000, false, None),
        ("short-h59049", 59049, 1000, 25, false, None),
        ("contextual-h59049", 59049, 50, 25, true, None),
        ("short-h1048576", 1 << 20, 50, 25, false, Some(SLOW)),
    ];
    rows.iter()
        .map(|&(id, h, t, l, ctx, skip)| {
            let spec = if quick {
                // k^5 with k = 2, 3, 4 for H = 2^10, 3^10, 4^10
                let k: usize = [(1024, 2), (59049, 3), (1 << 20, 4)]
                    .iter()
                    .find(|(full, _)| *full == h)
                    .map_or(2, |&(_, k)| k);
                let t = t.min(50);
                spec(k.pow(5), 5, t, l.min(t), ctx)
            } else {
                spec(h, 10, t, l, ctx)
            };
            SuiteWorkload {
                id,
                spec,
                skip_on_software: skip,
            }
        })
        .collect()
}

/// FLOP per triple in the nominal work model: `w·x` (d FMAs) and the
/// reductions a triple feeds (Σ p·q, the cautious score, 7 plausible-set
/// maxima: 9 multiply-adds), 2 FLOP each.
pub fn flops_per_triple(spec: &WorkloadSpec) -> f64 {
    2.0 * (spec.dim as f64 + 9.0)
}

/// Bytes per triple in the nominal work model: one 8-byte weight·harm
/// product read once.
pub const BYTES_PER_TRIPLE: f64 = 8.0;

/// The machine the suite ran on.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Machine {
    pub cpu: String,
    /// logical cores the process may use
    pub cores: usize,
    pub memory_bytes: Option<u64>,
    pub os: String,
    /// the CPU paths' vector instructions (`model::simd`; empty in files
    /// written before it was recorded)
    #[serde(default)]
    pub simd: String,
}

impl Machine {
    pub fn this() -> Machine {
        let read = |p: &str| std::fs::read_to_string(p).ok();
        let cpu = read("/proc/cpuinfo")
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| std::env::consts::ARCH.to_string());
        let memory_bytes = read("/proc/meminfo").and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
                .map(|kb| kb * 1024)
        });
        let pretty = read("/etc/os-release").and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        });
        let kernel = read("/proc/sys/kernel/osrelease").map(|s| s.trim().to_string());
        let os = [
            Some(std::env::consts::OS.to_string()),
            pretty,
            kernel.map(|k| format!("kernel {k}")),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", ");
        Machine {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_bytes,
            os,
            simd: crate::model::simd::level().name().to_string(),
        }
    }
}

/// A workload as the file describes it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WorkloadEntry {
    pub id: String,
    pub description: String,
    pub hypotheses: usize,
    pub steps: usize,
    pub actions: usize,
    pub dim: usize,
    pub model: String,
    pub stream_length: usize,
    pub contextual: bool,
    pub seed: u64,
    pub triples_per_run: u64,
    pub flops_per_triple: f64,
    pub bytes_per_triple: f64,
}

/// A backend as the file describes it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BackendEntry {
    /// "cpu" or "gpu"
    pub kind: String,
    /// thread count, or the adapter's name
    pub device: String,
    pub api: String,
    pub driver: String,
    /// a software renderer (lavapipe, llvmpipe)
    pub software: bool,
    pub peak: Peak,
    pub results: Vec<WorkloadResult>,
}

/// One workload on one backend.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WorkloadResult {
    pub workload: String,
    /// why it was not run (then every figure is absent)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    #[serde(default)]
    pub runs: usize,
    #[serde(default)]
    pub seconds: Vec<f64>,
    pub min_triples_per_s: Option<f64>,
    pub median_triples_per_s: Option<f64>,
    pub max_triples_per_s: Option<f64>,
    /// the median's FLOP/s (nominal model) over the peak's
    pub fraction_of_peak_flops: Option<f64>,
    /// the median's bytes/s (nominal model) over the peak bandwidth
    pub fraction_of_peak_bandwidth: Option<f64>,
    pub checksum: Option<f64>,
}

impl WorkloadResult {
    pub fn skipped(workload: &str, reason: &str) -> Self {
        WorkloadResult {
            workload: workload.into(),
            skipped: Some(reason.into()),
            runs: 0,
            seconds: Vec::new(),
            min_triples_per_s: None,
            median_triples_per_s: None,
            max_triples_per_s: None,
            fraction_of_peak_flops: None,
            fraction_of_peak_bandwidth: None,
            checksum: None,
        }
    }

    pub fn timed(w: &WorkloadEntry, t: &BackendTiming, peak: &Peak) -> Self {
        let m = t.median_triples_per_s;
        WorkloadResult {
            workload: w.id.clone(),
            skipped: None,
            runs: t.runs,
            seconds: t.seconds.clone(),
            min_triples_per_s: Some(t.min_triples_per_s),
            median_triples_per_s: Some(m),
            max_triples_per_s: Some(t.max_triples_per_s),
            fraction_of_peak_flops: Some(m * w.flops_per_triple / peak.flops_per_s),
            fraction_of_peak_bandwidth: Some(m * w.bytes_per_triple / peak.bytes_per_s),
            checksum: Some(t.checksum),
        }
    }
}

/// A whole suite file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SuiteFile {
    pub format: String,
    pub suite_version: u32,
    pub quick: bool,
    pub gpubound_version: String,
    pub created_unix_s: u64,
    pub machine: Machine,
    pub alphas: Vec<f64>,
    pub workloads: Vec<WorkloadEntry>,
    pub backends: Vec<BackendEntry>,
    /// backends asked for that could not be opened, and why
    #[serde(default)]
    pub unavailable: Vec<String>,
}

impl SuiteFile {
    /// Reads and checks a suite file; every error names it (bad input).
    pub fn read(path: &str) -> Result<SuiteFile> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::input_file(path, e))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::input(path, Some(e.line()), format!("not JSON: {e}")))?;
        if v.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(Error::input(
                path,
                None,
                format!("not a `gpubound bench --suite` file (no \"format\": \"{FORMAT}\")"),
            ));
        }
        let f: SuiteFile = serde_json::from_value(v)
            .map_err(|e| Error::input(path, None, format!("malformed suite file: {e}")))?;
        if f.suite_version != SUITE_VERSION {
            return Err(Error::input(
                path,
                None,
                format!(
                    "suite version {} (this gpubound reads version {SUITE_VERSION})",
                    f.suite_version
                ),
            ));
        }
        for b in &f.backends {
            for r in &b.results {
                if !f.workloads.iter().any(|w| w.id == r.workload) {
                    return Err(Error::input(
                        path,
                        None,
                        format!(
                            "backend {} has a result for an unknown workload {:?}",
                            b.kind, r.workload
                        ),
                    ));
                }
                let rate = r.median_triples_per_s;
                if r.skipped.is_none() && !rate.is_some_and(|x| x.is_finite() && x > 0.0) {
                    return Err(Error::input(
                        path,
                        None,
                        format!(
                            "workload {:?} on {} has no positive median triples/s",
                            r.workload, b.kind
                        ),
                    ));
                }
            }
            if !(b.peak.flops_per_s > 0.0 && b.peak.bytes_per_s > 0.0) {
                return Err(Error::input(
                    path,
                    None,
                    format!("backend {} has no positive peak", b.kind),
                ));
            }
        }
        Ok(f)
    }
}

/// One row of `--compare`: a figure of A, of B, and B/A.
#[derive(Debug, Clone, PartialEq)]
pub struct CompareRow {
    /// a workload id, `peak FLOP/s` or `peak bytes/s`
    pub what: String,
    /// "cpu → gpu" etc.: the backends compared
    pub backends: String,
    pub a: Option<f64>,
    pub b: Option<f64>,
    /// `None` when either side was skipped
    pub ratio: Option<f64>,
}

/// The ratios of B over A. Backends are paired by kind (cpu with cpu, gpu
/// with gpu); when no kind is in both files, every backend of A with every
/// backend of B. The files must hold the same suite (version, quick or
/// not, and every workload's shape); otherwise B is the mismatched one.
pub fn compare(
    a: &SuiteFile,
    a_path: &str,
    b: &SuiteFile,
    b_path: &str,
) -> Result<Vec<CompareRow>> {
    let mismatch = |m: String| Error::input(b_path, None, format!("does not match {a_path}: {m}"));
    if a.quick != b.quick {
        return Err(mismatch(
            "one is a --quick suite and the other is not".into(),
        ));
    }
    let shape = |w: &WorkloadEntry| {
        (
            w.hypotheses,
            w.steps,
            w.actions,
            w.dim,
            w.model.clone(),
            w.stream_length,
            w.contextual,
            w.seed,
        )
    };
    let ids = |f: &SuiteFile| f.workloads.iter().map(|w| w.id.clone()).collect::<Vec<_>>();
    if ids(a) != ids(b) {
        return Err(mismatch(format!(
            "workloads {:?} against {:?}",
            ids(b),
            ids(a)
        )));
    }
    for (wa, wb) in a.workloads.iter().zip(&b.workloads) {
        if shape(wa) != shape(wb) {
            return Err(mismatch(format!("workload {} has another shape", wa.id)));
        }
    }
    let mut pairs: Vec<(&BackendEntry, &BackendEntry)> = Vec::new();
    for x in &a.backends {
        for y in &b.backends {
            if x.kind == y.kind {
                pairs.push((x, y));
            }
        }
    }
    if pairs.is_empty() {
        pairs = a
            .backends
            .iter()
            .flat_map(|x| b.backends.iter().map(move |y| (x, y)))
            .collect();
    }
    if pairs.is_empty() {
        return Err(Error::input(
            if a.backends.is_empty() {
                a_path
            } else {
                b_path
            },
            None,
            "holds no backend",
        ));
    }
    let ratio = |x: Option<f64>, y: Option<f64>| x.zip(y).map(|(x, y)| y / x);
    let mut rows = Vec::new();
    for (x, y) in pairs {
        let backends = format!("{} → {}", x.kind, y.kind);
        for w in &a.workloads {
            let rate = |e: &BackendEntry| {
                e.results
                    .iter()
                    .find(|r| r.workload == w.id)
                    .and_then(|r| r.median_triples_per_s)
            };
            let (ra, rb) = (rate(x), rate(y));
            rows.push(CompareRow {
                what: w.id.clone(),
                backends: backends.clone(),
                a: ra,
                b: rb,
                ratio: ratio(ra, rb),
            });
        }
        for (what, pa, pb) in [
            ("peak FLOP/s", x.peak.flops_per_s, y.peak.flops_per_s),
            ("peak bytes/s", x.peak.bytes_per_s, y.peak.bytes_per_s),
        ] {
            rows.push(CompareRow {
                what: what.into(),
                backends: backends.clone(),
                a: Some(pa),
                b: Some(pb),
                ratio: Some(pb / pa),
            });
        }
    }
    Ok(rows)
}
