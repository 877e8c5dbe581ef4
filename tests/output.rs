//! Where reports go: never over an input, whole or not at all, streamed to
//! pipes and devices, through symlinks with the replaced file's mode, and
//! cleaned up when the run is interrupted. The built binary, as a user runs it.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const MODEL: &str = r#"{"type":"model","hypotheses":{"kind":"grid","k":2,"d":3},"observation":{"kind":"gaussian","sigma":1.0,"harm_threshold":1.0}}"#;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gpubound"))
}

/// The engine does not matter here; the CPU one starts at once.
fn audit() -> Command {
    let mut c = bin();
    c.args(["audit", "--backend", "cpu"]);
    c
}

/// One stream of 8 steps: 8 report records.
fn small_log_text() -> String {
    let mut s = format!("{MODEL}\n");
    s += r#"{"type":"stream","id":"a","candidates":[[0,0,0],[0,0,1],[1,1,0],[0,1,0]]}"#;
    s += "\n";
    for (a, y) in [
        (3, -0.5),
        (1, 1.9),
        (2, 0.1),
        (1, 0.7),
        (0, 0.2),
        (1, 1.1),
        (2, 1.5),
        (3, 0.0),
    ] {
        s += &format!("{{\"type\":\"step\",\"action\":{a},\"outcome\":{y}}}\n");
    }
    s
}

fn small_log(dir: &Path) -> PathBuf {
    let p = dir.join("log.jsonl");
    std::fs::write(&p, small_log_text()).unwrap();
    p
}

/// A simulated log long enough that its audit is still running when a test
/// interrupts it (a few MiB of report per thousand episodes).
fn big_log(dir: &Path, episodes: u32) -> PathBuf {
    let p = dir.join("big.jsonl");
    let o = bin()
        .args(["simulate", "-q", "--episodes", &episodes.to_string(), "-o"])
        .arg(&p)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    p
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The report records, checked to be the 8 steps of `small_log_text`.
fn assert_small_report(text: &str) {
    let recs: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(recs.len(), 8, "one record per step");
    assert_eq!(recs[0]["stream"], "a");
    assert_eq!(recs[7]["step"], 8);
    // at the prior, the MAP of 8 uniform hypotheses has probability 1/8
    assert_eq!(recs[0]["posterior"]["map_probability"], 0.125);
}

fn temp_files_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".gpubound") || n.starts_with(".tmp"))
        .collect()
}

/// Waits until `ready` holds while the child runs; panics if it exits first.
fn wait_until(child: &mut Child, what: &str, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the run ended ({status}) before {what}");
        }
        if start.elapsed() > Duration::from_secs(120) {
            child.kill().unwrap();
            panic!("never saw {what}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits for the child, killing it (and failing) if it hangs.
fn wait_bounded(child: &mut Child, what: &str) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("{what}: still running after 60 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn signal(child: &Child, sig: libc::c_int) {
    // SAFETY: kill(2) on the pid of a child this test spawned and has not reaped
    let r = unsafe { libc::kill(child.id() as libc::pid_t, sig) };
    assert_eq!(r, 0);
}

// ---- 3: an output is never an input, nor another output ----

#[test]
fn out_naming_the_log_is_refused_and_the_log_kept() {
    let dir = tempfile::tempdir().unwrap();
    let log = small_log(dir.path());
    // the same file by another name: identity, not string comparison
    let other_name = dir.path().join(".").join("log.jsonl");
    let o = audit()
        .arg(&log)
        .arg("-o")
        .arg(&other_name)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("log.jsonl"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&log).unwrap(), small_log_text());
    assert!(temp_files_in(dir.path()).is_empty());
    // the log as standard input (`gpubound audit - < log.jsonl -o log.jsonl`)
    let o = audit()
        .arg("-")
        .arg("-o")
        .arg(&log)
        .stdin(std::fs::File::open(&log).unwrap())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("standard input"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&log).unwrap(), small_log_text());
}

#[test]
fn out_and_html_naming_one_file_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = small_log(dir.path());
    // not yet existing, named two ways
    let o = audit()
        .arg(&log)
        .current_dir(dir.path())
        .args(["-o", "r.jsonl", "--html", "./r.jsonl"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(!dir.path().join("r.jsonl").exists());
    // existing, through a hard link
    std::fs::write(dir.path().join("r.jsonl"), "old").unwrap();
    std::fs::hard_link(dir.path().join("r.jsonl"), dir.path().join("r.html")).unwrap();
    let o = audit()
        .arg(&log)
        .current_dir(dir.path())
        .args(["-o", "r.jsonl", "--html", "r.html"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("r.jsonl")).unwrap(),
        "old"
    );
}

#[test]
fn out_naming_the_hypothesis_file_or_the_model_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let hyps: String = (0..8)
        .map(|i| format!("{{\"params\":[{},{},{}]}}\n", i >> 2, (i >> 1) & 1, i & 1))
        .collect();
    std::fs::write(dir.path().join("h.jsonl"), &hyps).unwrap();
    let model = r#"{"hypotheses":{"kind":"list","file":"h.jsonl"},"observation":{"kind":"gaussian","sigma":1.0,"harm_threshold":1.0}}"#;
    let text =
        small_log_text().replacen(MODEL, &format!("{{\"type\":\"model\",{}", &model[1..]), 1);
    let log = dir.path().join("log.jsonl");
    std::fs::write(&log, &text).unwrap();
    // the list log is valid: it audits
    let o = audit().arg(&log).arg("-q").output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_small_report(&String::from_utf8(o.stdout).unwrap());

    let o = audit()
        .arg(&log)
        .arg("-o")
        .arg(dir.path().join("h.jsonl"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("h.jsonl"), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("h.jsonl")).unwrap(),
        hyps
    );

    let model_file = dir.path().join("model.json");
    std::fs::write(&model_file, MODEL).unwrap();
    let o = audit()
        .arg(&log)
        .arg("--model")
        .arg(&model_file)
        .arg("--html")
        .arg(&model_file)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&model_file).unwrap(), MODEL);
}

#[test]
fn standard_output_appending_to_the_log_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = small_log(dir.path());
    let append = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    let o = audit().arg(&log).stdout(append).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&log).unwrap(), small_log_text());
}

// ---- 7: a replaced report keeps its link and its mode ----

#[test]
fn a_symlinked_report_keeps_the_link_and_its_target_gets_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let log = small_log(dir.path());
    let reports = dir.path().join("reports");
    std::fs::create_dir(&reports).unwrap();
    std::fs::write(reports.join("real.jsonl"), "old").unwrap();
    let link = dir.path().join("latest.jsonl");
    std::os::unix::fs::symlink("reports/real.jsonl", &link).unwrap();
    let o = audit()
        .arg(&log)
        .arg("-q")
        .arg("-o")
        .arg(&link)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        Path::new("reports/real.jsonl")
    );
    assert_small_report(&std::fs::read_to_string(reports.join("real.jsonl")).unwrap());
    assert!(temp_files_in(dir.path()).is_empty() && temp_files_in(&reports).is_empty());

    // a dangling link: the report is created at its target
    std::fs::remove_file(reports.join("real.jsonl")).unwrap();
    let o = audit()
        .arg(&log)
        .arg("-q")
        .arg("-o")
        .arg(&link)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_small_report(&std::fs::read_to_string(reports.join("real.jsonl")).unwrap());
}

#[test]
fn a_replaced_report_keeps_its_mode() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let log = small_log(dir.path());
    let out = dir.path().join("r.jsonl");
    std::fs::write(&out, "old").unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o600)).unwrap();
    let o = audit()
        .arg(&log)
        .arg("-q")
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_small_report(&std::fs::read_to_string(&out).unwrap());
    assert_eq!(
        std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

// ---- 5: interrupted runs leave no temporary file, and the old report ----

fn interrupted_run_leaves_the_old_report(sig: libc::c_int, code: i32) {
    let dir = tempfile::tempdir().unwrap();
    let log = big_log(dir.path(), 20_000);
    let out = dir.path().join("r.jsonl");
    std::fs::write(&out, "previous report\n").unwrap();
    let mut child = audit()
        .arg(&log)
        .arg("-q")
        .arg("-o")
        .arg(&out)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // mid-run: the new report has started to reach its temporary file
    wait_until(&mut child, "the report being written", || {
        std::fs::read_dir(dir.path()).unwrap().any(|e| {
            let e = e.unwrap();
            e.file_name()
                .to_string_lossy()
                .starts_with(".gpubound-report-")
                && e.metadata().is_ok_and(|m| m.len() > 0)
        })
    });
    signal(&child, sig);
    let status = wait_bounded(&mut child, "after the signal");
    assert_eq!(status.code(), Some(code), "{status}");
    assert_eq!(temp_files_in(dir.path()), Vec::<String>::new());
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "previous report\n");
}

#[test]
fn sigterm_mid_run_removes_the_temporary_file_and_exits_143() {
    interrupted_run_leaves_the_old_report(libc::SIGTERM, 143);
}

#[test]
fn sigint_mid_run_removes_the_temporary_file_and_exits_130() {
    interrupted_run_leaves_the_old_report(libc::SIGINT, 130);
}

#[test]
fn sigterm_while_reporting_into_a_redirected_file_leaves_what_was_there() {
    let dir = tempfile::tempdir().unwrap();
    let log = big_log(dir.path(), 20_000);
    // `gpubound audit big.jsonl >> out.jsonl`
    let out = dir.path().join("out.jsonl");
    std::fs::write(&out, "earlier line\n").unwrap();
    let append = std::fs::OpenOptions::new().append(true).open(&out).unwrap();
    let mut child = audit()
        .arg(&log)
        .arg("-q")
        .stdout(append)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until(&mut child, "report lines in the file", || {
        std::fs::metadata(&out).unwrap().len() > 100_000
    });
    signal(&child, libc::SIGTERM);
    let status = wait_bounded(&mut child, "after the signal");
    assert_eq!(status.code(), Some(143), "{status}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "earlier line\n");
}

#[test]
fn a_failed_run_into_a_redirected_file_leaves_what_was_there() {
    let dir = tempfile::tempdir().unwrap();
    let log = big_log(dir.path(), 2_000);
    // a bad last line: megabytes of report are out before it is read
    let mut text = std::fs::read_to_string(&log).unwrap();
    let bad_line = text.lines().count() + 1;
    text += "{\"type\":\"step\",\"action\":999,\"outcome\":0.5}\n";
    std::fs::write(&log, text).unwrap();
    let piped = audit().arg(&log).arg("-q").output().unwrap();
    assert_eq!(piped.status.code(), Some(2), "{}", stderr(&piped));
    assert!(
        piped.stdout.len() > 1_000_000,
        "streamed before the failure"
    );

    let out = dir.path().join("out.jsonl");
    std::fs::write(&out, "earlier line\n").unwrap();
    let append = std::fs::OpenOptions::new().append(true).open(&out).unwrap();
    let o = audit().arg(&log).arg("-q").stdout(append).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(":{bad_line}")),
        "names the bad line: {}",
        stderr(&o)
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "earlier line\n");
}

// ---- 6: devices and pipes are streamed to, not spooled ----

#[test]
fn devices_and_pipes_need_no_temporary_space() {
    let dir = tempfile::tempdir().unwrap();
    let log = small_log(dir.path());
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    for tmpdir in [tmp.clone(), dir.path().join("no-such-folder")] {
        let o = audit()
            .env("TMPDIR", &tmpdir)
            .arg(&log)
            .args(["-q", "-o", "/dev/null"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let o = audit()
            .env("TMPDIR", &tmpdir)
            .arg(&log)
            .arg("-q")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        assert_small_report(&String::from_utf8(o.stdout).unwrap());
    }
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
}

#[test]
fn a_closed_pipe_ends_the_run_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let log = big_log(dir.path(), 2_000);
    // `gpubound audit big.jsonl | head -c 10`
    let mut child = audit()
        .arg(&log)
        .arg("-q")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut head = [0u8; 10];
    child.stdout.take().unwrap().read_exact(&mut head).unwrap();
    assert_eq!(&head[..10], b"{\"stream\":");
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stderr(&o), "");

    // the summary, after a report to a file, to a pipe already closed
    let out = dir.path().join("r.jsonl");
    let small = small_log(dir.path());
    let mut child = audit()
        .arg(&small)
        .arg("-o")
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stderr(&o), "");
    assert_small_report(&std::fs::read_to_string(&out).unwrap());
}

// ---- 8: destinations are checked before the work ----

#[test]
fn an_unusable_destination_fails_before_any_step_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("folder");
    std::fs::create_dir(&folder).unwrap();
    let missing_parent = dir.path().join("no-such-folder").join("r.jsonl");
    for (flag, path) in [
        ("-o", &folder),
        ("-o", &missing_parent),
        ("--html", &folder),
        ("--html", &missing_parent),
    ] {
        // the log's model line arrives, its steps never do: only a check made
        // before reading them can end the run
        let mut child = audit()
            .args(["-", "-q", flag])
            .arg(path)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        // the run may end before it reads even the model line: a closed pipe
        // here is that early end, not a failure
        let sent = writeln!(input, "{MODEL}").and_then(|()| input.flush());
        if let Err(e) = sent {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
        }
        let status = wait_bounded(&mut child, &format!("{flag} {}", path.display()));
        drop(input);
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert_eq!(status.code(), Some(2), "{flag} {}: {err}", path.display());
        let named = if path == &folder {
            "folder"
        } else {
            "no-such-folder"
        };
        assert!(err.contains(named), "{err}");
    }
    assert_eq!(std::fs::read_dir(&folder).unwrap().count(), 0);
}

// ---- 9: a missing input is bad input, its cause said once ----

#[test]
fn a_missing_log_or_model_file_is_bad_input_named_once() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.jsonl");
    let o = audit().arg(&missing).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("missing.jsonl"), "{err}");
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");

    let log = small_log(dir.path());
    let o = audit()
        .arg(&log)
        .arg("--model")
        .arg(dir.path().join("missing-model.json"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("missing-model.json"), "{err}");
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
}
