"""gpubound.audit(sampler=...): the audit on sampled hypotheses, as the
command line's ``--sampler FILE --samples N`` runs it, cell by cell."""

import json
import subprocess

import pyarrow.parquet as pq
import pytest

import gpubound


def cli_rows(cli, log, sampler, tmp_path, *extra):
    out = tmp_path / "r.parquet"
    subprocess.run(
        [cli, "audit", str(log), "--sampler", str(sampler), *extra, "--format", "parquet",
         "-q", "-o", str(out)],
        check=True,
    )
    return pq.read_table(out)


def test_sampled_audit_is_the_command_lines_cell_by_cell(cli, sampled, tmp_path):
    log, sampler = sampled
    want = cli_rows(cli, log, sampler, tmp_path, "--samples", "256", "--seed", "7")
    a = gpubound.audit(log, sampler=sampler, samples=256, seed=7)
    got = a.steps
    assert got.schema == want.schema
    # every candidate (the simulated bandit's 10 arms) of every step
    assert got.num_rows == want.num_rows == 3 * 6 * 10
    for name in want.column_names:
        assert got.column(name).to_pylist() == want.column(name).to_pylist(), name
    ess = got.column("sample_ess").to_pylist()
    assert all(0 < e <= 256 for e in ess)
    s = a.summary
    assert s["sampling"]["samples"] == 256 and s["sampling"]["seed"] == 7
    assert "sampled" in a.summary_text
    # redraw_ess is --redraw-ess: 1 redraws at every step
    want = cli_rows(cli, log, sampler, tmp_path, "--samples", "64", "--seed", "7",
                    "--redraw-ess", "1")
    got = gpubound.audit(log, sampler=sampler, samples=64, seed=7, redraw_ess=1.0).steps
    assert got.column("sample_redrawn").to_pylist() == want.column("sample_redrawn").to_pylist()
    assert all(got.column("sample_redrawn").to_pylist())


def test_the_seed_decides_the_draws(sampled):
    log, sampler = sampled
    a = gpubound.audit(log, sampler=sampler, samples=128, seed=1).steps
    b = gpubound.audit(log, sampler=sampler, samples=128, seed=1).steps
    c = gpubound.audit(log, sampler=sampler, samples=128, seed=2).steps
    assert a.equals(b)
    assert a.column("sample_log_normaliser").to_pylist() != c.column(
        "sample_log_normaliser").to_pylist()


def test_a_grid_too_large_to_enumerate_needs_a_sampler(sampled):
    log, _ = sampled
    with pytest.raises(ValueError, match="too large"):
        gpubound.audit(log)


def test_sampler_arguments_go_together_and_are_checked(sampled):
    log, sampler = sampled
    with pytest.raises(ValueError, match="give sampler= too"):
        gpubound.audit(log, samples=64)
    with pytest.raises(ValueError, match="give sampler= too"):
        gpubound.audit(log, redraw_ess=0.5)
    with pytest.raises(ValueError, match="needs samples=N"):
        gpubound.audit(log, sampler=sampler)
    with pytest.raises(ValueError, match="must be in 1..="):
        gpubound.audit(log, sampler=sampler, samples=0)
    with pytest.raises(ValueError, match=r"must be in \[0, 1\]"):
        gpubound.audit(log, sampler=sampler, samples=8, redraw_ess=1.5)
    with pytest.raises(ValueError, match="does not apply"):
        gpubound.audit(log, sampler=sampler, samples=8, backend="gpu")
    with pytest.raises(ValueError, match="limited like a hypothesis list"):
        gpubound.audit(log, sampler=sampler, samples=1 << 23)
    with pytest.raises(OSError):
        gpubound.audit(log, sampler=str(sampler) + ".missing", samples=8)


def test_a_report_file_never_replaces_the_sampler(sampled, tmp_path):
    """The native audit's ``report_path`` (the rows streamed to a Parquet
    file, as the cluster paths use it) is an output: never the sampler."""
    from gpubound import _gpubound

    log, sampler = sampled
    before = sampler.read_bytes()
    with pytest.raises(ValueError, match="is the sampler"):
        _gpubound.audit(str(log), sampler=str(sampler), samples=8, report_path=str(sampler))
    assert sampler.read_bytes() == before
    # a report beside it is written
    out = tmp_path / "r.parquet"
    _gpubound.audit(str(log), sampler=str(sampler), samples=8, report_path=str(out))
    assert pq.read_table(out).num_rows == 3 * 6 * 10


def test_the_html_report_never_replaces_the_sampler(sampled):
    log, sampler = sampled
    before = sampler.read_bytes()
    a = gpubound.audit(log, sampler=sampler, samples=8)
    with pytest.raises(ValueError, match="is the sampler"):
        a.write_html(sampler)
    with pytest.raises(ValueError, match="is the log"):
        a.write_html(log)
    assert sampler.read_bytes() == before


def test_a_model_given_apart_is_read_as_the_sampler_reads_it(sampled, tmp_path):
    """``model=`` (a dict, JSON or a file) of a grid too large to enumerate is
    read as the log's own model is when a sampler stands in: it was once
    refused as "too large" (the cluster audits pass the model this way)."""
    log, sampler = sampled
    line = json.loads(open(log).readline())
    model = {k: v for k, v in line.items() if k != "type"}
    want = gpubound.audit(log, sampler=sampler, samples=64, seed=2).steps
    for given in (model, json.dumps(model)):
        got = gpubound.audit(log, model=given, sampler=sampler, samples=64, seed=2).steps
        assert got.equals(want)
    # without a sampler the grid is still too large, with the way out
    with pytest.raises(ValueError, match="too large"):
        gpubound.audit(log, model=model)
