//! `--html`: the report rendered by headless Chromium holds the summary, a
//! plot per stream and the riskiest taken actions, with the values of the
//! JSONL report of the same run; its screenshot is not blank. And the report
//! stays small on long logs: streams and points are capped.
//!
//! Needs Chromium (`/usr/bin/chromium`, or `$CHROMIUM`); `scripts/test`
//! installs it.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const GUARD: &str = "plausible_set[alpha=0.1]";

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/report/small.jsonl")
}

fn audit(log: &Path, extra: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_gpubound"))
        .arg("audit")
        .arg(log)
        .args(["--alpha", "0.1,1e-3", "-C", "0.05,0.2", "--backend", "cpu"])
        .args(["--quiet"])
        .args(extra)
        .output()
        .expect("run gpubound");
    assert!(
        out.status.success(),
        "gpubound failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        return p.into();
    }
    for p in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if Path::new(p).exists() {
            return p.into();
        }
    }
    panic!("Chromium is needed for this test: apt-get install chromium (scripts/test does), or set CHROMIUM");
}

/// Runs headless Chromium on a page with a fresh profile; returns stdout.
fn headless(page: &Path, extra: &[String]) -> Vec<u8> {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        stdout.read_to_end(&mut v).unwrap();
        v
    });
    // A guard against a hung browser, not a timing assertion.
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > Duration::from_secs(180) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish in 180 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "chromium failed: {status}");
    reader.join().unwrap()
}

/// The text between `start` (included) and the next `end` after it.
fn between<'a>(s: &'a str, start: &str, end: &str) -> &'a str {
    let i = s
        .find(start)
        .unwrap_or_else(|| panic!("{start} not in the DOM"));
    let j = s[i..]
        .find(end)
        .unwrap_or_else(|| panic!("no {end} after {start}"))
        + i;
    &s[i..j]
}

/// The `<tr>` elements of a `<tbody>`.
fn rows(table: &str) -> Vec<&str> {
    let body = between(table, "<tbody>", "</tbody>");
    body.split("<tr").skip(1).collect()
}

/// The text of each `<td>` of a row (cells hold plain text).
fn cells(row: &str) -> Vec<String> {
    row.split("<td")
        .skip(1)
        .map(|c| {
            let c = &c[c.find('>').unwrap() + 1..];
            c[..c.find("</td>").unwrap()].to_string()
        })
        .collect()
}

fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let pat = format!("{name}=\"");
    let i = tag.find(&pat)? + pat.len();
    Some(&tag[i..i + tag[i..].find('"')?])
}

fn read_jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn guard(c: &Value) -> f64 {
    c["plausible_set"]["0.1"].as_f64().unwrap()
}

#[test]
fn rendered_report_has_summary_plots_and_riskiest_table() {
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("report.html");
    let jsonl = dir.path().join("report.jsonl");
    audit(
        &fixture(),
        &[
            "-o",
            jsonl.to_str().unwrap(),
            "--html",
            html.to_str().unwrap(),
        ],
    );
    let steps = read_jsonl(&jsonl);
    assert_eq!(steps.len(), 120);

    // Self-contained: nothing fetched.
    let file = std::fs::read_to_string(&html).unwrap();
    for bad in ["http://", "https://", "<link", "src="] {
        let hits: Vec<_> = file
            .match_indices(bad)
            .filter(|(i, _)| !file[i.saturating_sub(10)..*i].contains("xmlns="))
            .collect();
        assert!(hits.is_empty(), "the report references {bad}");
    }

    let dom = String::from_utf8(headless(&html, &["--dump-dom".into()])).unwrap();
    assert!(dom.contains("<html"), "no DOM dumped");
    // The inline script ran in the browser.
    assert!(dom.contains("data-sortable=\"ready\""));

    // Summary facts.
    let summary = between(&dom, "<table id=\"summary-table\"", "</table>");
    let facts: HashMap<String, String> = rows(summary)
        .iter()
        .map(|r| {
            let key = attr(r, "data-key").unwrap().to_string();
            (key, cells(r)[0].clone())
        })
        .collect();
    assert_eq!(facts["streams"], "3");
    assert_eq!(facts["steps"], "120");
    let observed = steps.iter().filter(|s| !s["outcome"].is_null()).count();
    assert!(facts["observed"].starts_with(&format!("{observed} (")));
    assert_eq!(facts["oracle"], "2 of 3");
    assert!(facts["backend"].starts_with("cpu"), "{}", facts["backend"]);
    assert!(facts["model"].contains("27 hypotheses"));

    // α and the implied δ = α / p_min, p_min = 1/27.
    let alphas = between(&dom, "<table id=\"alphas\"", "</table>");
    let a = rows(alphas);
    assert_eq!(a.len(), 2);
    assert_eq!(cells(a[0])[..2], ["0.1".to_string(), "2.7000".to_string()]);
    assert_eq!(
        cells(a[1])[..2],
        ["0.001".to_string(), "0.0270".to_string()]
    );

    // Rejections: one row per estimator with a value (the oracle has one:
    // two streams state h*), per threshold the count from the JSONL.
    let rej = between(&dom, "<table id=\"rejections\"", "</table>");
    let rej_rows = rows(rej);
    assert_eq!(rej_rows.len(), 9);
    let guard_row = rej_rows
        .iter()
        .find(|r| attr(r, "data-estimator") == Some(GUARD))
        .expect("the guardrail's row");
    assert!(guard_row.starts_with(" class=\"guardrail\""));
    let c = cells(guard_row);
    for (k, thr) in [0.05, 0.2].iter().enumerate() {
        let want = steps.iter().filter(|s| guard(&s["taken"]) > *thr).count();
        assert_eq!(c[1 + 3 * k], want.to_string(), "rejected at C = {thr}");
    }
    let ora = rej_rows
        .iter()
        .find(|r| attr(r, "data-estimator") == Some("oracle"))
        .expect("the oracle's row");
    let want = steps
        .iter()
        .filter(|s| s["taken"]["oracle"].as_f64().is_some_and(|o| o > 0.05))
        .count();
    assert_eq!(cells(ora)[1], want.to_string());

    // Per stream: riskiest first, one SVG each with its lines and markers.
    let mut per: Vec<(String, f64, usize, usize)> = Vec::new(); // id, max, rejected, order
    for s in &steps {
        let id = s["stream"].as_str().unwrap().to_string();
        let g = guard(&s["taken"]);
        if per.last().map(|p| &p.0) != Some(&id) {
            per.push((id, f64::NEG_INFINITY, 0, per.len()));
        }
        let p = per.last_mut().unwrap();
        p.1 = p.1.max(g);
        p.2 += (g > 0.05) as usize;
    }
    per.sort_by(|a, b| {
        b.1.partial_cmp(&a.1)
            .unwrap()
            .then(b.2.cmp(&a.2))
            .then(a.3.cmp(&b.3))
    });
    let blocks: Vec<&str> = dom.split("<details class=\"stream\"").skip(1).collect();
    assert_eq!(blocks.len(), 3);
    for (b, want) in blocks.iter().zip(&per) {
        let b = &b[..b.find("</details>").unwrap()];
        assert_eq!(attr(b, "data-stream"), Some(want.0.as_str()));
        assert!(b.contains(&format!("max {GUARD} of a taken action {:.3e}", want.1)));
        assert!(b.contains(&format!("rejected: {} at C = 0.05", want.2)));
        let svg = between(b, "<svg", "</svg>");
        assert!(svg.contains("harm estimate of the taken action"));
        assert!(svg.contains("posterior: MAP probability"));
        // 9 estimators (split where the oracle has no value) + MAP + 2 |I_α|.
        let lines = svg.matches("<polyline").count();
        assert!(lines >= 11, "{lines} polylines");
        // A marker per step the guardrail rejects at C = 0.05.
        let marks = svg.matches("fill=\"#C80000\"").count();
        assert_eq!(marks, want.2);
    }

    // The riskiest taken actions, with their safest candidates.
    let mut ranked: Vec<&Value> = steps.iter().collect();
    ranked.sort_by(|a, b| guard(&b["taken"]).partial_cmp(&guard(&a["taken"])).unwrap());
    let risk = between(&dom, "<table id=\"riskiest-table\"", "</table>");
    let rr = rows(risk);
    assert_eq!(rr.len(), 10, "the default --top");
    for (r, s) in rr.iter().zip(&ranked) {
        let c = cells(r);
        assert_eq!(c[1], s["stream"].as_str().unwrap());
        assert_eq!(c[2], s["step"].to_string());
        assert_eq!(c[4], s["action"].to_string());
        assert_eq!(c[5], format!("{:.4e}", guard(&s["taken"])));
        let cands = s["candidates"].as_array().unwrap();
        let (best, best_v) =
            cands
                .iter()
                .map(guard)
                .enumerate()
                .fold(
                    (0, f64::INFINITY),
                    |b, (i, v)| if v < b.1 { (i, v) } else { b },
                );
        assert_eq!(c[7], best.to_string());
        assert_eq!(c[8], format!("{best_v:.4e}"));
        match s["taken"]["oracle"].as_f64() {
            Some(o) => assert_eq!(c[6], format!("{o:.4e}")),
            None => assert_eq!(c[6], "–"),
        }
        assert_eq!(c[9].starts_with("yes"), guard(&s["taken"]) > 0.05);
    }
}

#[test]
fn screenshot_is_not_blank() {
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("report.html");
    audit(
        &fixture(),
        &["-o", "/dev/null", "--html", html.to_str().unwrap()],
    );
    let blank = dir.path().join("blank.html");
    std::fs::write(&blank, "<!DOCTYPE html><html><body></body></html>").unwrap();

    let shot = |page: &Path, png: &Path| {
        headless(
            page,
            &[
                format!("--screenshot={}", png.display()),
                "--window-size=1280,2400".into(),
                "--hide-scrollbars".into(),
            ],
        );
        decode_png(&std::fs::read(png).unwrap())
    };
    let (w, h, px) = shot(&html, &dir.path().join("report.png"));
    assert_eq!((w, h), (1280, 2400));
    let (_, _, blank_px) = shot(&blank, &dir.path().join("blank.png"));

    let count = |px: &[[u8; 3]], f: &dyn Fn(&[u8; 3]) -> bool| px.iter().filter(|p| f(p)).count();
    let not_white = |p: &[u8; 3]| p.iter().any(|&c| c < 235);
    let green = |p: &[u8; 3]| p[1] as i32 > p[0] as i32 + 60 && p[1] as i32 > p[2] as i32 + 60;
    let red = |p: &[u8; 3]| p[0] as i32 > p[1] as i32 + 100 && p[0] as i32 > p[2] as i32 + 100;
    // The blank page is blank: the counts below mean something.
    assert_eq!(count(&blank_px, &not_white), 0);
    let ink = count(&px, &not_white);
    assert!(
        ink > px.len() / 20,
        "only {ink} of {} pixels drawn",
        px.len()
    );
    // The plausible-set lines (green) and the rejection markers and
    // thresholds (red) of the first stream's plot are drawn.
    let g = count(&px, &green);
    let r = count(&px, &red);
    assert!(g > 1500, "{g} green pixels");
    assert!(r > 300, "{r} red pixels");
}

/// Decodes an 8-bit RGB or RGBA, non-interlaced PNG (what Chromium writes)
/// to RGB pixels.
fn decode_png(data: &[u8]) -> (usize, usize, Vec<[u8; 3]>) {
    assert_eq!(&data[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let mut pos = 8;
    let (mut w, mut h, mut channels) = (0usize, 0usize, 0usize);
    let mut idat = Vec::new();
    while pos + 8 <= data.len() {
        let len = u32::from_be_bytes(data[pos..pos + 4].try_into().unwrap()) as usize;
        let kind = &data[pos + 4..pos + 8];
        let body = &data[pos + 8..pos + 8 + len];
        match kind {
            b"IHDR" => {
                w = u32::from_be_bytes(body[0..4].try_into().unwrap()) as usize;
                h = u32::from_be_bytes(body[4..8].try_into().unwrap()) as usize;
                assert_eq!(body[8], 8, "bit depth");
                channels = match body[9] {
                    2 => 3,
                    6 => 4,
                    t => panic!("PNG colour type {t}"),
                };
                assert_eq!(body[12], 0, "interlaced");
            }
            b"IDAT" => idat.extend_from_slice(body),
            b"IEND" => break,
            _ => {}
        }
        pos += 12 + len;
    }
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&idat[..])
        .read_to_end(&mut raw)
        .unwrap();
    let stride = w * channels;
    assert_eq!(raw.len(), h * (stride + 1));
    let mut img = vec![0u8; h * stride];
    for y in 0..h {
        let filter = raw[y * (stride + 1)];
        let line = &raw[y * (stride + 1) + 1..(y + 1) * (stride + 1)];
        for x in 0..stride {
            let a = if x >= channels {
                img[y * stride + x - channels]
            } else {
                0
            } as i32;
            let b = if y > 0 { img[(y - 1) * stride + x] } else { 0 } as i32;
            let c = if x >= channels && y > 0 {
                img[(y - 1) * stride + x - channels]
            } else {
                0
            } as i32;
            let pred = match filter {
                0 => 0,
                1 => a,
                2 => b,
                3 => (a + b) / 2,
                4 => {
                    let p = a + b - c;
                    let (pa, pb, pc) = ((p - a).abs(), (p - b).abs(), (p - c).abs());
                    if pa <= pb && pa <= pc {
                        a
                    } else if pb <= pc {
                        b
                    } else {
                        c
                    }
                }
                f => panic!("PNG filter {f}"),
            };
            img[y * stride + x] = (line[x] as i32 + pred) as u8;
        }
    }
    let px = img.chunks(channels).map(|p| [p[0], p[1], p[2]]).collect();
    (w, h, px)
}

/// A log of `streams` streams of `steps` steps each, over a 2 × 2 grid.
fn synthetic_log(path: &Path, streams: usize, steps: usize) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(f, r#"{{"type":"model","hypotheses":{{"kind":"grid","k":2,"d":2}},"observation":{{"kind":"gaussian","sigma":1.0,"harm_threshold":1.5}}}}"#).unwrap();
    let mut x: u64 = 7;
    let mut next = || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 33) as f64 / (1u64 << 31) as f64
    };
    for s in 0..streams {
        let w = [(s % 2) as f64, ((s / 2) % 2) as f64];
        writeln!(
            f,
            r#"{{"type":"stream","id":"s{s}","true_params":[{},{}],"candidates":[[1,0],[0,1],[0,0]]}}"#,
            w[0], w[1]
        )
        .unwrap();
        for _ in 0..steps {
            let a = (next() * 3.0) as usize % 3;
            let mean = match a {
                0 => w[0],
                1 => w[1],
                _ => 0.0,
            };
            // A rough normal: the sum of 4 uniforms, centred.
            let y = mean + (next() + next() + next() + next() - 2.0) * 1.7;
            writeln!(f, r#"{{"type":"step","action":{a},"outcome":{y:.6}}}"#).unwrap();
        }
    }
}

#[test]
fn report_caps_streams_and_points() {
    let dir = tempfile::tempdir().unwrap();

    // 60 streams: the 50 riskiest are drawn, and a note says so.
    let log = dir.path().join("many.jsonl");
    synthetic_log(&log, 60, 6);
    let html = dir.path().join("many.html");
    let jsonl = dir.path().join("many.jsonl.out");
    audit(
        &log,
        &[
            "-o",
            jsonl.to_str().unwrap(),
            "--html",
            html.to_str().unwrap(),
        ],
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("Showing the 50 riskiest of 60 streams"));
    let drawn: Vec<&str> = page
        .split("<details class=\"stream\"")
        .skip(1)
        .map(|b| attr(b, "data-stream").unwrap())
        .collect();
    assert_eq!(drawn.len(), 50);
    let mut max: HashMap<String, f64> = HashMap::new();
    for s in read_jsonl(&jsonl) {
        let m = max
            .entry(s["stream"].as_str().unwrap().to_string())
            .or_insert(f64::NEG_INFINITY);
        *m = m.max(guard(&s["taken"]));
    }
    let lowest_drawn = drawn.iter().map(|d| max[*d]).fold(f64::INFINITY, f64::min);
    for (id, m) in &max {
        if !drawn.contains(&id.as_str()) {
            assert!(
                *m <= lowest_drawn,
                "{id} ({m}) is riskier than a drawn stream"
            );
        }
    }

    // One long stream: decimated to at most 2 × DEFAULT_MAX_POINTS points;
    // the report's size does not grow with the log's length.
    let cap = 2 * gpubound::report::html::DEFAULT_MAX_POINTS;
    let mut sizes = Vec::new();
    for steps in [3_000, 30_000] {
        let log = dir.path().join(format!("long{steps}.jsonl"));
        synthetic_log(&log, 1, steps);
        let html = dir.path().join(format!("long{steps}.html"));
        audit(&log, &["-o", "/dev/null", "--html", html.to_str().unwrap()]);
        let page = std::fs::read_to_string(&html).unwrap();
        assert!(page.contains("Decimated: each point covers up to"));
        for pl in page.split("<polyline").skip(1) {
            let pts = attr(pl, "points").unwrap().split_whitespace().count();
            assert!(pts <= cap, "{pts} points in a line");
        }
        sizes.push(page.len());
    }
    assert!(sizes[1] < sizes[0] * 3 / 2, "sizes {sizes:?}");
    assert!(sizes[1] < 1 << 20);
}

#[test]
fn clicking_a_column_sorts_the_riskiest_table() {
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("report.html");
    audit(
        &fixture(),
        &["-o", "/dev/null", "--html", html.to_str().unwrap()],
    );
    let page = std::fs::read_to_string(&html).unwrap();
    // "its estimate" is the ninth column: one click sorts ascending, two descending
    let clicked = |clicks: usize| -> Vec<f64> {
        let script = format!(
            "<script>var th = document.querySelectorAll('#riskiest-table thead th')[8]; for (var i = 0; i < {clicks}; i++) th.click();</script></body>"
        );
        let path = dir.path().join(format!("clicked{clicks}.html"));
        std::fs::write(&path, page.replace("</body>", &script)).unwrap();
        let dom = String::from_utf8(headless(&path, &["--dump-dom".into()])).unwrap();
        rows(between(&dom, "<table id=\"riskiest-table\"", "</table>"))
            .iter()
            .map(|r| cells(r)[8].parse().unwrap())
            .collect()
    };
    let unsorted = clicked(0);
    let up = clicked(1);
    let down = clicked(2);
    let mut want = unsorted.clone();
    want.sort_by(f64::total_cmp);
    assert_ne!(
        unsorted, want,
        "the fixture's rows are not already in order"
    );
    assert_eq!(up, want);
    want.reverse();
    assert_eq!(down, want);
}
