"""gpubound.spark on local-mode Spark (local[2]): the report's rows and the
summary of one machine."""

import os
import sys

import pytest

import gpubound
import gpubound.spark as gspark
from conftest import CLUSTER_KW, assert_same_rows, assert_same_summary, sampled_parts

# scripts/test installs PySpark (Java 17 is on the machine): never skipped
from pyspark.sql import SparkSession  # noqa: E402


@pytest.fixture(scope="module")
def spark():
    # Spark's Python workers run this interpreter, which has gpubound
    os.environ["PYSPARK_PYTHON"] = sys.executable
    session = (
        SparkSession.builder.master("local[2]")
        .appName("gpubound-tests")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def to_arrow(df):
    return df.toArrow()


def test_spark_audit_and_summary_are_the_single_machine_audit(spark, cluster_log):
    log = gspark.read_log(spark, cluster_log["parts"])
    assert log.rdd.getNumPartitions() >= 2
    report = gspark.audit(log, **CLUSTER_KW)
    assert_same_rows(to_arrow(report), cluster_log["report"])
    want = gpubound.audit(cluster_log["whole"], **CLUSTER_KW).summary
    assert want["streams"] >= 2000
    assert_same_summary(gspark.summary(report), want)
    # more riskiest steps than a part keeps by default
    want = gpubound.audit(cluster_log["whole"], top=25, **CLUSTER_KW).summary
    assert_same_summary(gspark.summary(report, top=25), want)


def test_read_log_numbers_rows_as_the_log(spark, cluster_log):
    log = to_arrow(gspark.read_log(spark, cluster_log["parts"]).select("stream", "step", "line"))
    import pyarrow.parquet as pq

    whole = pq.read_table(cluster_log["whole"], columns=["stream", "step"])
    log = log.sort_by("line")
    assert log.column("line").to_pylist() == list(range(1, whole.num_rows + 1))
    assert log.column("stream").to_pylist() == whole.column("stream").to_pylist()
    assert log.column("step").to_pylist() == whole.column("step").to_pylist()


def test_shared_world_and_unnumbered_rows_are_refused(spark, cluster_log):
    log = gspark.read_log(spark, cluster_log["parts"])
    with pytest.raises(ValueError, match="shared_world cannot be sharded"):
        gspark.audit(log, shared_world=True)
    with pytest.raises(ValueError, match="no `line` column"):
        gspark.audit(log.drop("line"), **CLUSTER_KW)
    bare = log.withMetadata("stream", {})
    with pytest.raises(ValueError, match="no model"):
        gspark.audit(bare)
    with pytest.raises(ValueError, match="summarise the DataFrame gpubound.spark.audit returned"):
        gspark.summary(bare)


def test_a_sampled_spark_audit_draws_what_one_machine_draws(spark, cli, sampled, tmp_path):
    """Each stream draws from its random stream numbered by its index in the
    log: Spark's groups give one machine's rows, and the summary read back
    from them its summary but for the seconds spent (null)."""
    whole, parts, sampler = sampled_parts(cli, sampled, tmp_path)
    sampler = os.path.abspath(sampler)
    kw = dict(sampler=sampler, samples=128, seed=3, redraw_ess=0.5, backend="cpu")
    want = gpubound.audit(whole, **kw)
    report = gspark.audit(gspark.read_log(spark, parts), **kw)
    assert_same_rows(to_arrow(report), want.steps)
    got, w = gspark.summary(report), dict(want.summary)
    got_sampling, want_sampling = got.pop("sampling"), w.pop("sampling")
    assert_same_summary(got, w)
    for k, v in want_sampling.items():
        if k.endswith("_seconds"):
            assert got_sampling[k] is None and v >= 0, k
        elif k == "ess_mean":
            assert got_sampling[k] == pytest.approx(v, rel=1e-12)
        else:
            assert got_sampling[k] == v, k
    assert want_sampling["prior_draws"] == 3 and want_sampling["redraws"] > 0
    with pytest.raises(ValueError, match="sampler= needs samples=N"):
        gspark.audit(gspark.read_log(spark, parts), sampler=sampler)
