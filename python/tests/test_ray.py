"""gpubound.ray.audit on a real local Ray cluster (2 CPUs, at least 4 tasks):
the rows and the summary of one machine, and bad input named as one machine
names it."""

import json
import os
import subprocess

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import ray  # scripts/test installs it: never skipped

import gpubound
import gpubound.ray as gray
from conftest import CLUSTER_KW, assert_same_rows, assert_same_summary, sampled_parts


@pytest.fixture(scope="module", autouse=True)
def cluster():
    # one GPU declared: the tasks that ask for it run on the machine's
    # adapter (lavapipe in CI, which must be there: no skip)
    ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    yield
    ray.shutdown()


def test_ray_audit_is_the_single_machine_audit(cluster_log, tmp_path):
    out = tmp_path / "report"
    summary = gray.audit(cluster_log["parts"], output=out, num_blocks=6, **CLUSTER_KW)
    parts = sorted(p for p in os.listdir(out) if p.endswith(".parquet"))
    assert len(parts) >= 4, parts
    got = pq.read_table(out)
    assert_same_rows(got, cluster_log["report"])
    want = gpubound.audit(cluster_log["whole"], **CLUSTER_KW).summary
    assert want["streams"] >= 2000
    assert_same_summary(summary, want)
    # the summary is kept beside the rows
    with open(out / "_gpubound_summary.json") as f:
        assert json.load(f) == summary


def test_gpu_tasks_give_the_command_lines_gpu_audit(cli, cluster_log, tmp_path):
    from conftest import CLUSTER_ARGS

    args = [a if a != "cpu" else "gpu" for a in CLUSTER_ARGS]
    want = tmp_path / "gpu.parquet"
    subprocess.run([cli, "audit", str(cluster_log["whole"]), *args, "--format", "parquet",
                    "-q", "-o", str(want)], check=True)
    kw = dict(CLUSTER_KW, backend="auto")
    summary = gray.audit(cluster_log["parts"], output=tmp_path / "r", num_gpus=0.5, **kw)
    assert summary["backend"].startswith("gpu ("), summary["backend"]
    assert_same_rows(pq.read_table(tmp_path / "r"), pq.read_table(want))


def test_a_dataset_is_hash_partitioned_by_stream(cluster_log, tmp_path):
    ds = gray.read_log(cluster_log["parts"])
    # the model comes with the files' metadata; more riskiest steps than a
    # task keeps by default
    summary = gray.audit(ds, output=tmp_path / "r", num_blocks=4, top=40, **CLUSTER_KW)
    assert_same_rows(pq.read_table(tmp_path / "r"), cluster_log["report"])
    want = gpubound.audit(cluster_log["whole"], top=40, **CLUSTER_KW).summary
    assert len(want["riskiest"]) == 40
    assert_same_summary(summary, want)


def test_a_second_run_replaces_the_first_and_other_folders_are_refused(cluster_log, tmp_path):
    out = tmp_path / "r"
    first = gray.audit(cluster_log["parts"], output=out, **CLUSTER_KW)
    names = sorted(os.listdir(out))
    second = gray.audit(cluster_log["parts"], output=out, **CLUSTER_KW)
    assert sorted(os.listdir(out)) == names
    assert second["rejections"] == first["rejections"]
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")], "no staging left behind"
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="other files"):
        gray.audit(cluster_log["parts"], output=busy, **CLUSTER_KW)
    assert os.listdir(busy) == ["notes.txt"]


def test_shared_world_is_refused():
    with pytest.raises(ValueError, match="shared_world cannot be sharded"):
        gray.audit("unused", output="unused", shared_world=True)


def test_a_log_without_a_model_says_so(cluster_log, tmp_path):
    t = pq.read_table(cluster_log["whole"]).replace_schema_metadata(None)
    pq.write_table(t, tmp_path / "bare.parquet")
    with pytest.raises(ValueError, match="no model"):
        gray.audit(tmp_path / "bare.parquet", output=tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_a_stream_split_in_two_is_bad_input_at_its_row(cluster_log, tmp_path):
    # the files out of order: the stream that straddles part-0 and part-1
    # now continues after part-2's rows
    p = cluster_log["parts"]
    order = [p / "part-0.parquet", p / "part-2.parquet", p / "part-1.parquet"]
    with pytest.raises(ValueError, match=r"row \d+: .*(contiguous|from step 1)"):
        gray.audit(order, output=tmp_path / "r", **CLUSTER_KW)
    assert not (tmp_path / "r").exists()


def test_bad_input_names_the_logs_row(cluster_log, tmp_path):
    t = pq.read_table(cluster_log["whole"])
    outcome = t.column("outcome").to_pylist()
    row = next(i for i, y in enumerate(outcome) if y is not None and i > 5000)
    outcome[row] = float("nan")
    t = t.set_column(t.schema.get_field_index("outcome"), "outcome", pa.array(outcome, pa.float64()))
    d = tmp_path / "bad"
    d.mkdir()
    pq.write_table(t.slice(0, 4000), d / "a.parquet")
    pq.write_table(t.slice(4000), d / "b.parquet")
    with pytest.raises(ValueError, match=rf"row {row + 1}: outcome must be a finite number"):
        gray.audit(d, output=tmp_path / "r", **CLUSTER_KW)
    # one machine says the same of the same row
    with pytest.raises(ValueError, match=rf"row {row + 1}: outcome must be a finite number"):
        gpubound.audit(t, **CLUSTER_KW)


def test_a_dataset_without_lines_is_refused_naming_the_column(cluster_log, tmp_path):
    t = pq.read_table(cluster_log["whole"])
    model = t.schema.metadata[b"gpubound.model"].decode()
    ds = ray.data.from_arrow(t)
    with pytest.raises(ValueError, match="no `line` column"):
        gray.audit(ds, output=tmp_path / "r", model=model, **CLUSTER_KW)
    assert not (tmp_path / "r").exists()


def test_a_sampled_audit_on_ray_draws_what_one_machine_draws(cli, sampled, tmp_path):
    """Each stream draws from its own random stream, numbered by its index in
    the log: shards of one stream each (files or a Dataset) give the single
    machine's rows, and its summary but for the sampling times."""
    whole, parts, sampler = sampled_parts(cli, sampled, tmp_path)
    kw = dict(sampler=sampler, samples=128, seed=3, backend="cpu")
    want = gpubound.audit(whole, **kw)
    assert want.summary["streams"] == 3
    for i, source in enumerate([parts, gray.read_log(parts)]):
        out = tmp_path / f"r{i}"
        summary = gray.audit(source, output=out, num_blocks=3, **kw)
        got = pq.read_table(out)
        # one stream per file shard; the hash partition puts some together
        parts_written = [p for p in os.listdir(out) if p.endswith(".parquet")]
        assert len(parts_written) == 3 if i == 0 else len(parts_written) >= 2, parts_written
        assert_same_rows(got, want.steps)
        s, w = dict(summary), dict(want.summary)
        got_sampling, want_sampling = s.pop("sampling"), w.pop("sampling")
        assert_same_summary(s, w)
        assert got_sampling["ess_mean"] == pytest.approx(want_sampling["ess_mean"], rel=1e-12)
        for k, v in want_sampling.items():
            if not k.endswith("_seconds") and k != "ess_mean":
                assert got_sampling[k] == v, k
        assert want_sampling["prior_draws"] == 3
    # the seed still decides: another seed, other draws
    other = gray.audit(parts, output=tmp_path / "r3", num_blocks=3, **dict(kw, seed=4))
    assert other["sampling"]["ess_mean"] != want.summary["sampling"]["ess_mean"]


def test_a_sampled_ray_audit_refuses_what_the_engine_refuses(cli, sampled, tmp_path):
    whole, parts, sampler = sampled_parts(cli, sampled, tmp_path)
    with pytest.raises(ValueError, match="sampler= needs samples=N"):
        gray.audit(parts, output=tmp_path / "r", sampler=sampler, backend="cpu")
    with pytest.raises(ValueError, match="give sampler= too"):
        gray.audit(parts, output=tmp_path / "r", samples=64, backend="cpu")
    with pytest.raises(FileNotFoundError, match="no such sampler file"):
        gray.audit(parts, output=tmp_path / "r", sampler=tmp_path / "none.bin", samples=64)
    # nothing was left behind
    assert not (tmp_path / "r").exists()
