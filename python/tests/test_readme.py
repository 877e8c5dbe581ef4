"""The README's Python example runs as written."""

import os
import re
import subprocess

from conftest import ROOT


def test_the_readme_python_example_runs(cli, tmp_path, monkeypatch):
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Python", 1)[1].split("\n## ", 1)[0]
    code = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(code) == 1
    (tmp_path / "data").symlink_to(ROOT / "data")
    subprocess.run(
        [cli, "convert", str(ROOT / "data/exploding_bandit.jsonl"), "-o", str(tmp_path / "logs.parquet")],
        check=True, capture_output=True,
    )
    monkeypatch.chdir(tmp_path)
    scope = {}
    exec(compile(code[0], "README.md", "exec"), scope)
    assert scope["v"]["allowed"] is False
    assert scope["a"].summary["steps"] > 0
    assert os.path.getsize(tmp_path / "report.html") > 1000


def test_the_readme_cluster_examples_run(cluster_log, tmp_path, monkeypatch):
    import sys

    import ray
    from pyspark.sql import SparkSession

    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Auditing on a cluster", 1)[1].split("\n## ", 1)[0]
    ray_code, spark_code = re.findall(r"```python\n(.*?)```", section, re.S)
    (tmp_path / "logs").symlink_to(cluster_log["parts"])
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYSPARK_PYTHON", sys.executable)
    scope = {}
    try:
        exec(compile(ray_code, "README.md", "exec"), scope)
    finally:
        ray.shutdown()
    assert scope["summary"]["streams"] == 2400
    assert (tmp_path / "report" / "_gpubound_summary.json").exists()
    scope = {}
    try:
        exec(compile(spark_code, "README.md", "exec"), scope)
    finally:
        SparkSession.builder.getOrCreate().stop()
    assert any(p.name.endswith(".parquet") for p in (tmp_path / "spark-report").iterdir())
