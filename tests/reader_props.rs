//! The log reader on valid logs with random, structure-aware mutations: it
//! never panics, every rejection is an input error naming the log (and the
//! line, when the problem is on one), what it accepts is within the limits,
//! and its memory stays within a multiple of the line limit (counted by the
//! allocator of this test binary). Also: outcomes go from log to report
//! bit-exactly.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Cursor;
use std::path::Path;
use std::process::Command;

use gpubound::log::{Limits, LogEvent, LogReader};
use gpubound::Error;
use proptest::prelude::*;

// ---- an allocator that counts this thread's live bytes and their peak ----

struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn track(delta: isize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            track(layout.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        unsafe { System.dealloc(p, layout) };
        track(-(layout.size() as isize));
    }
    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, layout, new_size) };
        if !q.is_null() {
            track(new_size as isize - layout.size() as isize);
        }
        q
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns its result and the most bytes it held at once (on this thread).
fn peak_bytes<T>(f: impl FnOnce() -> T) -> (T, isize) {
    let start = LIVE.with(|l| l.get());
    PEAK.with(|p| p.set(start));
    let out = f();
    (out, PEAK.with(|p| p.get()) - start)
}

// ---- valid logs ----

const NAME: &str = "log.jsonl";

const LIMITS: Limits = Limits {
    max_line_bytes: 512,
    max_hypotheses: 64,
    max_parameters: 256,
    max_candidates: 8,
    sampled_grid: false,
};

fn row(values: &[i64]) -> String {
    let v: Vec<String> = values.iter().map(|v| v.to_string()).collect();
    format!("[{}]", v.join(","))
}

fn table(rows: &[Vec<i64>]) -> String {
    let r: Vec<String> = rows.iter().map(|r| row(r)).collect();
    format!("[{}]", r.join(","))
}

/// A valid log, as lines.
fn valid_log() -> impl Strategy<Value = Vec<String>> {
    (1usize..=3, 1u32..=3, any::<bool>(), any::<bool>()).prop_flat_map(|(d, k, grid, gaussian)| {
        let hypotheses = if grid {
            Just(format!(r#"{{"kind":"grid","k":{k},"d":{d}}}"#)).boxed()
        } else {
            prop::collection::vec(prop::collection::vec(-2i64..=2, d), 1..=5)
                .prop_map(|p| format!(r#"{{"kind":"list","params":{}}}"#, table(&p)))
                .boxed()
        };
        let observation = if gaussian {
            r#"{"kind":"gaussian","sigma":1.0,"harm_threshold":1.5}"#
        } else {
            r#"{"kind":"bernoulli"}"#
        };
        let candidates = prop::collection::vec(prop::collection::vec(0i64..k as i64, d), 1..=4);
        let step = (
            0usize..4,
            -30i32..30,
            any::<bool>(),
            prop::option::of(candidates.clone()),
        );
        let stream = (candidates, prop::collection::vec(step, 0..=5));
        (hypotheses, prop::collection::vec(stream, 1..=3)).prop_map(move |(h, streams)| {
            let mut lines = vec![format!(
                r#"{{"type":"model","hypotheses":{h},"observation":{observation}}}"#
            )];
            for (i, (cands, steps)) in streams.iter().enumerate() {
                lines.push(format!(
                    r#"{{"type":"stream","id":"s{i}","candidates":{}}}"#,
                    table(cands)
                ));
                for (action, y, has_outcome, own) in steps {
                    let a = action % own.as_ref().unwrap_or(cands).len();
                    let outcome = match (has_outcome, gaussian) {
                        (false, _) => String::new(),
                        (true, true) => format!(r#","outcome":{}"#, *y as f64 / 8.0),
                        (true, false) => format!(r#","outcome":{}"#, y.rem_euclid(2)),
                    };
                    let own = own
                        .as_ref()
                        .map(|c| format!(r#","candidates":{}"#, table(c)))
                        .unwrap_or_default();
                    lines.push(format!(r#"{{"type":"step","action":{a}{outcome}{own}}}"#));
                }
            }
            lines
        })
    })
}

// ---- mutations ----

/// Values that are wrong somewhere: types, range, JSON that is not JSON.
const ODD_VALUES: &[&str] = &[
    "\"NaN\"",
    "NaN",
    "1e999",
    "-1e999",
    "1e-400",
    "-1",
    "-0",
    "18446744073709551616",
    "4294967296",
    "2147483648",
    "3000000000",
    "null",
    "[]",
    "[[]]",
    "{}",
    "true",
    "\"\"",
    "1.5",
    "0",
];

#[derive(Debug, Clone)]
enum Mutation {
    /// Cut a line short.
    Truncate(usize, usize),
    /// Replace the n-th number of a line with an odd value.
    Number(usize, usize, usize),
    /// A byte order mark at the start of a line.
    Bom(usize),
    EmptyLine(usize),
    UnknownField(usize),
    Swap(usize, usize),
    Duplicate(usize),
    Delete(usize),
    /// Blanks inside a line, up to several times the line limit.
    Pad(usize, usize),
    /// One more number in one row of a table.
    Ragged(usize),
    /// A table of many rows.
    BigTable(usize, usize),
    /// A large grid, or a grid of one value in a large dimension.
    HugeGrid(u64, u64),
    /// A byte anywhere.
    Byte(usize, usize, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    use Mutation::*;
    let i = || 0usize..64;
    prop_oneof![
        (i(), i()).prop_map(|(l, a)| Truncate(l, a)),
        (i(), 0usize..16, 0..ODD_VALUES.len()).prop_map(|(l, n, v)| Number(l, n, v)),
        i().prop_map(Bom),
        i().prop_map(EmptyLine),
        i().prop_map(UnknownField),
        (i(), i()).prop_map(|(a, b)| Swap(a, b)),
        i().prop_map(Duplicate),
        i().prop_map(Delete),
        (i(), 0usize..40_000).prop_map(|(l, n)| Pad(l, n)),
        i().prop_map(Ragged),
        (i(), 0usize..10_000).prop_map(|(l, n)| BigTable(l, n)),
        (
            prop_oneof![Just(1u64), 2u64..5, Just(u32::MAX as u64 + 1)],
            prop_oneof![1u64..40, Just(1 << 31), Just(1 << 32), Just(3_000_000_000)]
        )
            .prop_map(|(k, d)| HugeGrid(k, d)),
        (i(), i(), any::<u8>()).prop_map(|(l, a, b)| Byte(l, a, b)),
    ]
}

/// Byte ranges of the numbers of a line.
fn numbers(b: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'-' || b[i].is_ascii_digit() {
            let start = i;
            i += 1;
            while i < b.len() && (b[i].is_ascii_digit() || b".eE+-".contains(&b[i])) {
                i += 1;
            }
            out.push((start, i));
        } else {
            i += 1;
        }
    }
    out
}

fn apply(lines: &mut Vec<Vec<u8>>, m: &Mutation) {
    use Mutation::*;
    if lines.is_empty() {
        return;
    }
    let n = lines.len();
    match *m {
        Truncate(l, at) => {
            let line = &mut lines[l % n];
            let at = at % (line.len() + 1);
            line.truncate(at);
        }
        Number(l, k, v) => {
            let line = &mut lines[l % n];
            let nums = numbers(line);
            if !nums.is_empty() {
                let (s, e) = nums[k % nums.len()];
                line.splice(s..e, ODD_VALUES[v].bytes());
            }
        }
        Bom(l) => {
            lines[l % n].splice(0..0, "\u{feff}".bytes());
        }
        EmptyLine(l) => lines.insert(l % (n + 1), Vec::new()),
        UnknownField(l) => {
            let line = &mut lines[l % n];
            if line.last() == Some(&b'}') {
                line.pop();
                line.extend_from_slice(br#","zz":1}"#);
            }
        }
        Swap(a, b) => lines.swap(a % n, b % n),
        Duplicate(l) => {
            let line = lines[l % n].clone();
            lines.insert(l % n, line);
        }
        Delete(l) => {
            lines.remove(l % n);
        }
        Pad(l, k) => {
            let line = &mut lines[l % n];
            let at = line.iter().position(|&c| c == b',').unwrap_or(0);
            line.splice(at..at, std::iter::repeat_n(b' ', k));
        }
        Ragged(l) => {
            let line = &mut lines[l % n];
            if let Some(at) = line.windows(2).position(|w| w == b"[[") {
                line.splice(at + 2..at + 2, b"0,".iter().copied());
            }
        }
        BigTable(l, rows) => {
            let line = &mut lines[l % n];
            if let Some(at) = line.windows(2).position(|w| w == b"[[") {
                let extra: Vec<u8> = std::iter::repeat_n(&b"[0],"[..], rows)
                    .flatten()
                    .copied()
                    .collect();
                line.splice(at + 1..at + 1, extra);
            }
        }
        HugeGrid(k, d) => {
            lines[0] = format!(
                r#"{{"type":"model","hypotheses":{{"kind":"grid","k":{k},"d":{d}}},"observation":{{"kind":"bernoulli"}}}}"#
            )
            .into_bytes();
        }
        Byte(l, at, byte) => {
            let line = &mut lines[l % n];
            let at = at % (line.len() + 1);
            line.insert(at, byte);
        }
    }
}

/// Reads the whole log; panics (a test failure) on anything the reader must not do.
fn read_all(log: &[u8], n_lines: usize) {
    let check = |e: Error| match e {
        Error::Input { location, message } => {
            assert_eq!(location.file, NAME, "{message}");
            match location.line {
                Some(l) => assert!(l >= 1 && l <= n_lines, "line {l} of {n_lines}: {message}"),
                None => assert!(message.contains("empty log"), "no line: {message}"),
            }
        }
        other => panic!("not an input error: {other}"),
    };
    let mut reader = match LogReader::with_limits(
        NAME,
        Cursor::new(log),
        Path::new("/nonexistent"),
        None,
        &LIMITS,
    ) {
        Ok(r) => r,
        Err(e) => return check(e),
    };
    let space = &reader.model().hypotheses;
    let (h, d) = (space.len(), space.dim());
    assert!(h <= LIMITS.max_hypotheses && h * d <= LIMITS.max_parameters);
    loop {
        match reader.next_event() {
            Ok(None) => return,
            Ok(Some(LogEvent::Step(s))) => {
                assert!(s.action < s.table.n_candidates);
                assert!(s.table.n_candidates <= LIMITS.max_candidates);
                assert_eq!(s.table.dim(), d);
            }
            Ok(Some(LogEvent::Stream(_))) => {}
            Err(e) => return check(e),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn the_reader_rejects_mutated_logs_with_input_errors_within_the_limits(
        log in valid_log(),
        mutations in prop::collection::vec(mutation(), 0..4),
    ) {
        let mut lines: Vec<Vec<u8>> = log.into_iter().map(String::into_bytes).collect();
        for m in &mutations {
            apply(&mut lines, m);
        }
        let n_lines = lines.len();
        let text: Vec<u8> = lines.join(&b'\n');
        let ((), peak) = peak_bytes(|| read_all(&text, n_lines));
        // A line's buffer, its parsed numbers (8 bytes for every 2 bytes or
        // more of text, more while a vector grows), a stream's table kept
        // while a step's is read, the model: all within 32 lines' worth. The
        // mutated logs are up to 80 times longer than that.
        let bound = 32 * LIMITS.max_line_bytes as isize;
        prop_assert!(peak <= bound, "peak {peak} bytes > {bound}");
    }

    #[test]
    fn valid_logs_are_read_whole(log in valid_log()) {
        let text = log.join("\n");
        let mut r = LogReader::with_limits(NAME, Cursor::new(text.as_bytes()), Path::new("."), None, &LIMITS)
            .expect("a valid model");
        let steps = log.iter().filter(|l| l.contains(r#""type":"step""#)).count();
        let mut seen = 0;
        loop {
            match r.next_event() {
                Ok(Some(LogEvent::Step(_))) => seen += 1,
                Ok(Some(LogEvent::Stream(_))) => {}
                Ok(None) => break,
                Err(e) => {
                    prop_assert_eq!(steps, 0, "{}", e);
                    break;
                }
            }
        }
        prop_assert_eq!(seen, steps);
    }
}

// ---- exact outcomes ----

/// The 100 rewards of the shared reference vectors (`guardrail_vectors.jsonl`,
/// float32 values written by Python as doubles), copied as text.
const REFERENCE_REWARDS: &str = "\
    -0.561693012714386 1.7092225551605225 -1.9371198415756226 1.7591171264648438 \
    1.0996202230453491 0.6884745955467224 1.2827706336975098 0.6336789131164551 \
    -1.7567834854125977 1.547410011291504 0.9454789161682129 2.1548843383789062 \
    1.0782814025878906 1.7109407186508179 -1.1871626377105713 1.1407344341278076 \
    -0.06463703513145447 -1.3985347747802734 -2.5388998985290527 -1.4665348529815674 \
    0.41426676511764526 0.721074640750885 0.38891899585723877 0.6450486779212952 \
    -0.5715951919555664 2.110706329345703 3.7216343879699707 0.966109037399292 \
    4.56196403503418 2.672316789627075 2.7372851371765137 4.3183794021606445 \
    2.793551206588745 0.5224810242652893 2.4604856967926025 2.075226068496704 \
    4.430487155914307 0.17520380020141602 0.2655702829360962 3.40197491645813 \
    0.7530364990234375 1.779968023300171 3.1717381477355957 -1.6578742265701294 \
    2.1464900970458984 3.1439785957336426 0.7989277839660645 2.549773931503296 \
    2.1740856170654297 2.236870288848877 6.074404239654541 6.855738162994385 \
    5.591577529907227 3.722440242767334 4.527540683746338 1.5452665090560913 \
    3.8555073738098145 6.715968132019043 6.036876201629639 3.8481392860412598 \
    6.3491692543029785 3.4085419178009033 5.268314361572266 3.5987021923065186 \
    1.6068296432495117 4.64429235458374 3.6796133518218994 5.188176155090332 \
    5.0933356285095215 4.169466972351074 6.342075824737549 6.219543933868408 \
    5.761311054229736 3.802809476852417 6.095561504364014 4.668780326843262 \
    3.0953376293182373 -0.8288663029670715 5.10401725769043 0.9932292699813843 \
    4.4313201904296875 2.0665907859802246 4.309676647186279 0.992725133895874 \
    3.8557722568511963 2.6083269119262695 -0.5183977484703064 4.7008466720581055 \
    4.781358242034912 4.550379753112793 -0.03300833702087402 3.9213149547576904 \
    3.274890899658203 5.372664451599121 3.5980284214019775 3.3823907375335693 \
    -0.2656794488430023 3.8795714378356934 2.7317423820495605 0.6256952285766602";

/// The reference code's rewards are float32 values written as doubles
/// (Python's shortest repr); they, and 2000 other float32 values written the
/// same way, must reach the report's `outcome` bit-exactly. The expected
/// values come from Rust's correctly rounded `str::parse`, not serde_json.
#[test]
fn float32_outcomes_reach_the_report_bit_exactly() {
    let mut outcomes: Vec<String> = REFERENCE_REWARDS
        .split_whitespace()
        .map(String::from)
        .collect();
    assert_eq!(outcomes.len(), 100);
    // More float32 values across magnitudes, from a fixed linear congruential sequence.
    let mut x: u32 = 12345;
    for _ in 0..2000 {
        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let y = f32::from_bits((x & 0x807f_ffff) | ((100 + (x >> 23) % 56) << 23));
        outcomes.push(format!("{}", y as f64));
    }
    let want: Vec<f64> = outcomes.iter().map(|t| t.parse().unwrap()).collect();
    for (t, y) in outcomes.iter().zip(&want) {
        assert_eq!(*y as f32 as f64, *y, "{t} is not a float32 value");
    }

    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.jsonl");
    let mut body = String::from(
        r#"{"type":"model","hypotheses":{"kind":"grid","k":2,"d":1},"observation":{"kind":"gaussian","sigma":1e6,"harm_threshold":1e30}}"#,
    );
    body.push_str("\n{\"type\":\"stream\",\"candidates\":[[0],[1]]}\n");
    for t in &outcomes {
        body.push_str(&format!(
            "{{\"type\":\"step\",\"action\":0,\"outcome\":{t}}}\n"
        ));
    }
    std::fs::write(&log, body).unwrap();
    let report = dir.path().join("report.jsonl");
    let o = Command::new(env!("CARGO_BIN_EXE_gpubound"))
        .args(["audit", "--quiet", "--backend", "cpu", "--out"])
        .arg(&report)
        .arg(&log)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report = std::fs::read_to_string(&report).unwrap();
    let got: Vec<f64> = report
        .lines()
        .map(|l| {
            let rest = &l[l.find(r#""outcome":"#).expect("an outcome") + 10..];
            rest[..rest.find([',', '}']).unwrap()].parse().unwrap()
        })
        .collect();
    assert_eq!(got.len(), want.len());
    let off: Vec<String> = want
        .iter()
        .zip(&got)
        .zip(&outcomes)
        .filter(|((w, g), _)| w.to_bits() != g.to_bits())
        .map(|((_, g), t)| format!("{t} → {g:e}"))
        .collect();
    assert!(
        off.is_empty(),
        "{} of {} outcomes changed: {off:?}",
        off.len(),
        want.len()
    );
}
