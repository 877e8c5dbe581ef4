"""Shared fixtures: the command-line tool the Python results are compared
with (built by `cargo test --release` before pytest runs in scripts/test),
and the shipped example log."""

import json
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def cli() -> str:
    exe = os.environ.get("GPUBOUND_BIN", str(ROOT / "target" / "release" / "gpubound"))
    assert os.access(exe, os.X_OK), f"build the CLI first (cargo build --release): {exe}"
    return exe


@pytest.fixture(scope="session")
def example() -> pathlib.Path:
    return ROOT / "data" / "exploding_bandit.jsonl"


@pytest.fixture(scope="session")
def simulated(cli, tmp_path_factory) -> pathlib.Path:
    """A simulated log: 40 episodes of the paper's bandit, Boltzmann agent."""
    out = tmp_path_factory.mktemp("sim") / "sim.jsonl"
    subprocess.run(
        [cli, "simulate", "--episodes", "40", "--agent", "boltzmann", "--seed", "5",
         "-q", "-o", str(out)],
        check=True,
    )
    return out


# ---- the cluster tests' log: more than 2,000 streams in 8 Parquet files ----

CLUSTER_ARGS = ["--delta", "0.05,0.5", "-C", "0.01,0.2", "--backend", "cpu"]
CLUSTER_KW = dict(delta=[0.05, 0.5], thresholds=[0.01, 0.2], backend="cpu")


@pytest.fixture(scope="session")
def cluster_log(cli, tmp_path_factory):
    """``gpubound simulate``'s log of 2,400 streams, as one Parquet file and
    cut into 8 files at row counts that split streams across files (the
    files read in name order are the log), with the command line's report
    of the 8 files (``gpubound audit parts/``)."""
    import pyarrow.parquet as pq

    d = tmp_path_factory.mktemp("cluster")
    jsonl, whole = d / "sim.jsonl", d / "sim.parquet"
    subprocess.run(
        [cli, "simulate", "--episodes", "2400", "--agent", "boltzmann", "--seed", "11",
         "-q", "-o", str(jsonl)],
        check=True,
    )
    subprocess.run([cli, "convert", str(jsonl), "-o", str(whole), "-q"], check=True)
    t = pq.read_table(whole)
    parts = d / "parts"
    parts.mkdir()
    n = t.num_rows
    # uneven cuts, none at a stream's start on purpose
    cuts = [0] + [n * i // 8 + 3 * i for i in range(1, 8)] + [n]
    for i, (a, b) in enumerate(zip(cuts, cuts[1:])):
        pq.write_table(t.slice(a, b - a), parts / f"part-{i}.parquet")
    # the command line reads the folder as one log: the same report as the
    # one file's, `line` included
    reports = []
    for log in (parts, whole):
        report = d / f"cli-{log.name}.parquet"
        subprocess.run(
            [cli, "audit", str(log), *CLUSTER_ARGS, "--format", "parquet", "-q", "-o", str(report)],
            check=True,
        )
        reports.append(pq.read_table(report))
    assert reports[0].equals(reports[1])
    return {"whole": whole, "parts": parts, "report": reports[0], "dir": d}


@pytest.fixture(scope="session")
def sampled(cli, tmp_path_factory):
    """A 3-stream log at d = 48 (a grid of 2^48: too large to enumerate)
    and an untrained sampler for its model (``--steps 0``: the policy is its
    residual field alone, enough to draw and weigh)."""
    d = tmp_path_factory.mktemp("sampled")
    log, model, sampler = d / "log48.jsonl", d / "m48.json", d / "s48.bin"
    subprocess.run(
        [cli, "simulate", "-q", "-d", "48", "--explosion-threshold", "15", "--agent",
         "uniform", "--no-explosions", "-n", "3", "--steps", "6", "--seed", "5",
         "-o", str(log)],
        check=True,
    )
    line = json.loads(log.read_text().splitlines()[0])
    model.write_text(json.dumps({k: v for k, v in line.items() if k != "type"}))
    subprocess.run(
        [cli, "sampler", "train", "-q", "--model", str(model), "-o", str(sampler),
         "--steps", "0"],
        check=True,
    )
    return log, sampler


def sampled_parts(cli, sampled, tmp_path):
    """The sampled fixture's log (3 streams at d = 48) as Parquet, whole and
    cut into 3 files mid-stream."""
    log, sampler = sampled
    whole = tmp_path / "s.parquet"
    subprocess.run([cli, "convert", str(log), "-o", str(whole), "-q"], check=True)
    import pyarrow.parquet as pq

    t = pq.read_table(whole)
    parts = tmp_path / "parts"
    parts.mkdir()
    cuts = [0, 5, 11, t.num_rows]
    for i, (a, b) in enumerate(zip(cuts, cuts[1:])):
        pq.write_table(t.slice(a, b - a), parts / f"part-{i}.parquet")
    return whole, parts, sampler


ORDER = [("stream", "ascending"), ("step", "ascending"), ("candidate", "ascending")]


def assert_same_rows(got, want):
    """Every cell equal after sorting by stream, step and candidate (Spark's
    integers are signed: compared after casting to the report's types)."""
    assert got.column_names == want.column_names
    assert got.num_rows == want.num_rows
    got, want = got.sort_by(ORDER), want.sort_by(ORDER)
    for name in want.column_names:
        g = got.column(name)
        if g.type != want.column(name).type:
            g = g.cast(want.column(name).type)
        assert g.equals(want.column(name)), name


def assert_same_summary(got, want):
    """The summaries agree in everything but the run's own facts (where,
    how long, on which device)."""
    skip = {"log", "seconds", "backend"}
    assert set(got) == set(want)
    for k in want:
        if k not in skip:
            assert got[k] == want[k], k
