//! `gpubound bench --suite` and `--compare`: the suite file holds every
//! workload and field on the CPU and on a GPU adapter (lavapipe will do; the
//! GPU tests FAIL without one, as tests/gpu.rs does), `--compare` gives the
//! ratios of the files' own figures, bad files are errors naming them (exit
//! code 2), and the peak kernels equal their CPU twins. No time is asserted.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::OnceLock;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

use gpubound::bench::peak::{fma_twin, scale_twin, GpuPeak, FMA_A, SCALE};
use gpubound::engine::gpu::device::{AdapterPolicy, Gpu};

fn gpubound(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gpubound"))
        .args(args)
        .output()
        .expect("run gpubound")
}

const IDS: [&str; 7] = [
    "long-h1024",
    "short-h1024",
    "contextual-h1024",
    "long-h59049",
    "short-h59049",
    "contextual-h59049",
    "short-h1048576",
];

/// The quick suite on `backend`, run once per test binary.
fn quick_suite(backend: &'static str) -> &'static Value {
    static CPU: OnceLock<Value> = OnceLock::new();
    static GPU: OnceLock<Value> = OnceLock::new();
    let cell = if backend == "cpu" { &CPU } else { &GPU };
    cell.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("suite.json");
        let out = gpubound(&[
            "bench",
            "--suite",
            "--quick",
            "--runs",
            "2",
            "--backend",
            backend,
            "-q",
            "-o",
            path.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "bench --suite --backend {backend} failed (the GPU tests need a wgpu adapter: \
             install mesa-vulkan-drivers for lavapipe): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    })
}

fn num(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number in {v}"))
}

/// Every field of a suite file, and every figure derived from the others.
fn check_file(f: &Value, kind: &str) {
    assert_eq!(f["format"], "gpubound-bench-suite");
    assert_eq!(f["suite_version"], 1);
    assert_eq!(f["quick"], true);
    assert_eq!(f["gpubound_version"], env!("CARGO_PKG_VERSION"));
    let m = &f["machine"];
    assert!(!m["cpu"].as_str().unwrap().is_empty());
    assert_eq!(
        m["cores"].as_u64().unwrap() as usize,
        std::thread::available_parallelism().unwrap().get()
    );
    assert!(m["memory_bytes"].as_u64().unwrap() > 1 << 20);
    assert!(m["os"].as_str().unwrap().starts_with(std::env::consts::OS));
    assert_eq!(f["alphas"], json!([1e-5, 1e-4, 1e-3, 1e-2, 0.1, 0.3, 1.0]));
    let workloads = f["workloads"].as_array().unwrap();
    let ids: Vec<&str> = workloads
        .iter()
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, IDS);
    // the quick sizes: d = 5, H = k^5, A = 10, T = 50
    for (w, h) in workloads.iter().zip([32, 32, 32, 243, 243, 243, 1024]) {
        assert_eq!(w["hypotheses"], h, "{w}");
        assert_eq!(w["dim"], 5);
        assert_eq!(w["actions"], 10);
        assert_eq!(w["steps"], 50);
        assert_eq!(w["triples_per_run"], h * 10 * 50);
        assert_eq!(num(w, "flops_per_triple"), 2.0 * (5.0 + 9.0));
        assert_eq!(num(w, "bytes_per_triple"), 8.0);
        let contextual = w["id"].as_str().unwrap().starts_with("contextual");
        assert_eq!(w["contextual"], contextual);
        let long = w["id"].as_str().unwrap().starts_with("long");
        assert_eq!(w["stream_length"], if long { 50 } else { 25 });
    }
    let backends = f["backends"].as_array().unwrap();
    assert_eq!(backends.len(), 1, "{backends:?}");
    let b = &backends[0];
    assert_eq!(b["kind"], kind);
    assert!(!b["device"].as_str().unwrap().is_empty());
    let peak = &b["peak"];
    let (pf, pb) = (num(peak, "flops_per_s"), num(peak, "bytes_per_s"));
    assert!(pf > 0.0 && pb > 0.0 && peak["method"].is_string());
    let results = b["results"].as_array().unwrap();
    assert_eq!(results.len(), IDS.len());
    for (r, w) in results.iter().zip(workloads) {
        assert_eq!(r["workload"], w["id"]);
        if let Some(why) = r.get("skipped") {
            assert!(
                b["software"].as_bool().unwrap(),
                "only software renderers skip"
            );
            assert_eq!(r["workload"], "short-h1048576");
            assert!(why.as_str().unwrap().contains("software renderer"));
            assert!(r["median_triples_per_s"].is_null() && r["checksum"].is_null());
            continue;
        }
        assert_eq!(r["runs"], 2);
        let seconds: Vec<f64> = r["seconds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_f64().unwrap())
            .collect();
        assert_eq!(seconds.len(), 2);
        let triples = num(w, "triples_per_run");
        let mut rates: Vec<f64> = seconds.iter().map(|s| triples / s).collect();
        rates.sort_by(f64::total_cmp);
        assert_eq!(num(r, "min_triples_per_s"), rates[0]);
        assert_eq!(num(r, "max_triples_per_s"), rates[1]);
        // the upper median of two runs, as `bench` takes it
        let median = num(r, "median_triples_per_s");
        assert_eq!(median, rates[1]);
        let close = |x: f64, y: f64| (x - y).abs() <= 1e-12 * y.abs();
        assert!(close(
            num(r, "fraction_of_peak_flops"),
            median * num(w, "flops_per_triple") / pf
        ));
        assert!(close(
            num(r, "fraction_of_peak_bandwidth"),
            median * num(w, "bytes_per_triple") / pb
        ));
        assert!(num(r, "checksum").is_finite());
    }
}

#[test]
fn cpu_suite_has_every_workload_and_field() {
    let f = quick_suite("cpu");
    check_file(f, "cpu");
    assert_eq!(f["backends"][0]["software"], false);
    assert!(f["backends"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r.get("skipped").is_none()));
}

#[test]
fn gpu_suite_has_every_workload_and_field() {
    let f = quick_suite("gpu");
    check_file(f, "gpu");
    let b = &f["backends"][0];
    assert!(!b["api"].as_str().unwrap().is_empty());
    // a software renderer skips the largest workload, saying why
    let skipped = b["results"][6].get("skipped").is_some();
    assert_eq!(skipped, b["software"].as_bool().unwrap());
}

/// The quick CPU file with every median and peak replaced.
fn with_figures(medians: &[f64; 7], flops: f64, bytes: f64) -> Value {
    let mut f = quick_suite("cpu").clone();
    let b = &mut f["backends"][0];
    b["peak"]["flops_per_s"] = json!(flops);
    b["peak"]["bytes_per_s"] = json!(bytes);
    for (r, m) in b["results"].as_array_mut().unwrap().iter_mut().zip(medians) {
        r["median_triples_per_s"] = json!(m);
    }
    f
}

fn write(dir: &Path, name: &str, v: &Value) -> String {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_string(v).unwrap()).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn compare_gives_the_ratios_of_b_over_a() {
    let dir = tempfile::tempdir().unwrap();
    let a = [1e8, 2e8, 4e7, 1e9, 5e8, 1e7, 3e8];
    let b = [3e8, 1e8, 4e7, 2.5e9, 5e9, 2e6, 6e8];
    let pa = write(dir.path(), "a.json", &with_figures(&a, 1e11, 1e10));
    let pb = write(dir.path(), "b.json", &with_figures(&b, 4e12, 5e11));
    let rows = compare_json(&pa, &pb);
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 9);
    let expect = [3.0, 0.5, 1.0, 2.5, 10.0, 0.2, 2.0, 40.0, 50.0];
    for (i, (row, ratio)) in rows.iter().zip(expect).enumerate() {
        let what = if i < 7 {
            IDS[i]
        } else if i == 7 {
            "peak FLOP/s"
        } else {
            "peak bytes/s"
        };
        assert_eq!(row["what"], what);
        assert_eq!(row["backends"], "cpu → cpu");
        assert!((num(row, "ratio") - ratio).abs() <= 1e-12 * ratio, "{row}");
    }
    // the table says the same
    let out = gpubound(&["bench", "--compare", &pa, &pb]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("short-h59049"))
        .unwrap();
    assert!(
        line.contains("5.000e8") && line.contains("5.000e9") && line.ends_with("10.000"),
        "{line}"
    );
}

/// `bench --compare A B --json`, which must succeed: its rows.
fn compare_json(a: &str, b: &str) -> Value {
    let out = gpubound(&["bench", "--compare", a, b, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn compare_of_a_skipped_workload_has_no_ratio() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = with_figures(&[1e8; 7], 1e11, 1e10);
    b["backends"][0]["results"][6] = json!({"workload": "short-h1048576", "skipped": "why",
        "min_triples_per_s": null, "median_triples_per_s": null, "max_triples_per_s": null,
        "fraction_of_peak_flops": null, "fraction_of_peak_bandwidth": null, "checksum": null});
    let pa = write(dir.path(), "a.json", &with_figures(&[1e8; 7], 1e11, 1e10));
    let pb = write(dir.path(), "b.json", &b);
    let rows = compare_json(&pa, &pb);
    assert_eq!(rows[6]["what"], "short-h1048576");
    assert!(rows[6]["ratio"].is_null() && rows[6]["b"].is_null());
    assert_eq!(num(&rows[5], "ratio"), 1.0);
}

/// `--compare` of `bad` (as A or as B) fails with exit code 2 and names it.
fn rejects(bad_name: &str, bad: &str, says: &str) {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good.json", quick_suite("cpu"));
    let bad_path = dir.path().join(bad_name);
    std::fs::write(&bad_path, bad).unwrap();
    let bad_path = bad_path.to_str().unwrap();
    for args in [[&good, bad_path], [bad_path, &good]] {
        let out = gpubound(&["bench", "--compare", args[0], args[1]]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(bad_path) && err.contains(says), "{err}");
    }
}

#[test]
fn a_malformed_file_is_an_error_naming_it() {
    rejects(
        "cut.json",
        "{\"format\": \"gpubound-bench-suite\",",
        "not JSON",
    );
    rejects(
        "other.json",
        "{\"results\": []}",
        "not a `gpubound bench --suite` file",
    );
    let mut f = quick_suite("cpu").clone();
    f["backends"][0]["peak"] = json!("fast");
    rejects("peak.json", &f.to_string(), "malformed suite file");
    let mut f = quick_suite("cpu").clone();
    f["suite_version"] = json!(99);
    rejects("version.json", &f.to_string(), "suite version 99");
    let mut f = quick_suite("cpu").clone();
    f["backends"][0]["results"][0]["median_triples_per_s"] = json!(-1.0);
    rejects("negative.json", &f.to_string(), "no positive median");
    // a missing file
    let out = gpubound(&[
        "bench",
        "--compare",
        "/nonexistent/a.json",
        "/nonexistent/b.json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/a.json"));
}

#[test]
fn a_mismatched_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.json", quick_suite("cpu"));
    let mut f = quick_suite("cpu").clone();
    f["workloads"][3]["hypotheses"] = json!(1000);
    let b = write(dir.path(), "b.json", &f);
    let mut f = quick_suite("cpu").clone();
    f["quick"] = json!(false);
    let c = write(dir.path(), "c.json", &f);
    for (other, says) in [(&b, "long-h59049 has another shape"), (&c, "--quick")] {
        let out = gpubound(&["bench", "--compare", &a, other]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains(other.as_str()) && err.contains("does not match") && err.contains(says),
            "{err}"
        );
    }
}

#[test]
fn suite_and_single_workload_options_conflict() {
    let out = gpubound(&["bench", "--suite", "--hypotheses", "99"]);
    assert_eq!(out.status.code(), Some(2));
    let out = gpubound(&["bench", "--quick"]);
    assert_eq!(out.status.code(), Some(2));
}

// ------------------------------------------------------------ peak kernels

#[test]
fn fma_twin_has_the_closed_form_values() {
    for i in [0u32, 1, 63, 64, 1000] {
        let b = (i % 64) as f32 * 0.25 + 1.0;
        // no rounds: the 32 lanes start at b + 0, …, b + 31
        assert_eq!(fma_twin(i, 0, 0.5), 32.0 * b + 496.0);
        // x ← x/2 + b converges to 2b: exactly, after enough rounds
        assert_eq!(fma_twin(i, 64, 0.5), 64.0 * b);
        // one round: x/2 + b
        assert_eq!(fma_twin(i, 1, 0.5), (32.0 * b + 496.0) / 2.0 + 32.0 * b);
    }
}

fn peak_kernels() -> GpuPeak {
    let gpu = Gpu::open(AdapterPolicy::Any, false).unwrap_or_else(|e| {
        panic!("the GPU tests need a wgpu adapter and found none ({e}): install mesa-vulkan-drivers (lavapipe)")
    });
    GpuPeak::new(gpu).unwrap()
}

#[test]
fn peak_kernels_equal_their_cpu_twins() {
    let p = peak_kernels();
    for (threads, iters) in [(1u32, 0u32), (300, 1), (1000, 7), (70_000, 40)] {
        let (got, _) = p.run_fma(threads, iters, 2, FMA_A).unwrap();
        assert_eq!(got.len(), threads as usize);
        for (i, g) in got.iter().enumerate() {
            let want = fma_twin(i as u32, iters, FMA_A);
            assert_eq!(g.to_bits(), want.to_bits(), "thread {i}, {iters} rounds");
        }
    }
    let mut rng = ChaCha8Rng::seed_from_u64(14);
    // lengths that are not multiples of 4 (the kernel works on vec4s)
    for n in [1usize, 4099, 300_001] {
        let src: Vec<f32> = (0..n).map(|_| rng.random_range(-1e3f32..1e3)).collect();
        let (got, _) = p.run_copy(&src, SCALE, 3, true).unwrap();
        let want = scale_twin(&src, SCALE);
        assert_eq!(got.len(), n);
        assert!(got
            .iter()
            .zip(&want)
            .all(|(g, w)| g.to_bits() == w.to_bits()));
        assert_eq!(want[0], 3.0 * src[0]);
    }
}
