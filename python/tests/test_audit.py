"""gpubound.audit: the Python result is the command line's, cell by cell."""

import json
import subprocess

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import gpubound

ARGS = ["--delta", "0.05,0.5", "-C", "0.01,0.2", "--backend", "cpu"]
KW = dict(delta=[0.05, 0.5], thresholds=[0.01, 0.2], backend="cpu")


def cli_report(cli, log, tmp_path, *extra):
    out = tmp_path / "r.parquet"
    subprocess.run(
        [cli, "audit", str(log), *ARGS, *extra, "--format", "parquet", "-q", "-o", str(out)],
        check=True,
    )
    return pq.read_table(out)


def cli_summary(cli, log, *extra):
    done = subprocess.run(
        [cli, "audit", str(log), *ARGS, *extra, "-o", "/dev/null"],
        check=True, capture_output=True, text=True,
    )
    return done.stdout


def without_timing(text):
    # the "read:" line states the wall time
    return [l for l in text.splitlines() if not l.strip().startswith("read:")]


@pytest.mark.parametrize("which", ["example", "simulated"])
def test_steps_are_the_cli_parquet_report_cell_by_cell(cli, which, request, tmp_path):
    log = request.getfixturevalue(which)
    want = cli_report(cli, log, tmp_path)
    got = gpubound.audit(log, **KW).steps
    assert got.schema == want.schema
    assert got.num_rows == want.num_rows > 100
    for name in want.column_names:
        assert got.column(name).to_pylist() == want.column(name).to_pylist(), name


def test_summary_states_what_the_cli_prints(cli, example):
    a = gpubound.audit(example, **KW)
    assert without_timing(a.summary_text) == without_timing(cli_summary(cli, example))
    s = a.summary
    steps = a.steps
    taken = steps.filter(steps.column("taken"))
    assert s["steps"] == taken.num_rows
    assert s["streams"] == len(set(taken.column("stream").to_pylist()))
    for c, per in s["rejections"].items():
        for label, n in per.items():
            col = taken.column(f"rejected[{label}][C={c}]").to_pylist()
            assert n["rejected"] == sum(1 for v in col if v), (label, c)
    assert [x["delta"] for x in s["alphas"]] == [0.05, 0.5]
    worst = s["riskiest"][0]
    est = taken.column(s["guardrail"]).to_pylist()
    assert worst["estimate"] == max(est)


def test_a_parquet_log_or_an_arrow_table_gives_the_same_rows(cli, example, tmp_path):
    pqlog = tmp_path / "log.parquet"
    subprocess.run([cli, "convert", str(example), "-o", str(pqlog)], check=True)
    by_path = gpubound.audit(pqlog, **KW).steps
    table = pq.read_table(pqlog)
    by_table = gpubound.audit(table, **KW).steps
    assert by_table.equals(by_path)
    import polars as pl
    # polars keeps no schema metadata: the model comes as an argument
    model = json.loads(table.schema.metadata[b"gpubound.model"])
    by_polars = gpubound.audit(pl.from_arrow(table), model=model, **KW).steps
    assert by_polars.equals(by_path)
    # and the same numbers as the JSON Lines original, but for `line` (a row)
    jsonl = gpubound.audit(example, **KW).steps
    assert by_path.drop_columns(["line"]).equals(jsonl.drop_columns(["line"]))
    assert by_path.column("line").to_pylist() == cli_report(cli, pqlog, tmp_path).column("line").to_pylist()


def test_model_argument_overrides_the_logs(cli, example, tmp_path):
    first = json.loads(example.read_text().splitlines()[0])
    first["observation"]["sigma"] = 2.0
    model = {k: v for k, v in first.items() if k != "type"}
    mfile = tmp_path / "model.json"
    mfile.write_text(json.dumps(model))
    want = cli_report(cli, example, tmp_path, "--model", str(mfile))
    for m in (model, json.dumps(model), mfile, str(mfile)):
        got = gpubound.audit(example, model=m, **KW).steps
        assert got.equals(want), type(m)


def test_bad_input_raises_value_error_naming_the_row(example, tmp_path):
    model = json.loads(example.read_text().splitlines()[0])
    meta = {b"gpubound.model": json.dumps(model).encode()}
    t = pa.table(
        {
            "stream": ["a", "a"],
            "step": [1, 2],
            "action": [0, 7],
            "outcome": [0.5, 0.1],
            "candidates": [[[0.0] * 10, [1.0] * 10], None],
        }
    ).replace_schema_metadata(meta)
    with pytest.raises(ValueError, match=r"<arrow>: row 2: action 7"):
        gpubound.audit(t, backend="cpu")
    with pytest.raises(ValueError, match="threshold C must be in"):
        gpubound.audit(example, thresholds=[2.0], backend="cpu")
    with pytest.raises(ValueError, match="backend"):
        gpubound.audit(example, backend="fast")
    with pytest.raises(FileNotFoundError):
        gpubound.audit(tmp_path / "missing.jsonl")


def test_write_html_writes_the_report_and_never_over_the_log(example, tmp_path):
    a = gpubound.audit(example, **KW)
    out = tmp_path / "r.html"
    a.write_html(out)
    text = out.read_text()
    assert text.startswith("<!DOCTYPE html>") and "ep-1" in text
    before = example.read_bytes()
    with pytest.raises(ValueError):
        a.write_html(example)
    assert example.read_bytes() == before
