"""scripts/coverage.py: the coverage table of a report, on a hand-made one."""

import importlib.util
import pathlib

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def load_script():
    spec = importlib.util.spec_from_file_location("coverage", ROOT / "scripts" / "coverage.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_coverage_counts_pairs_and_whole_streams(tmp_path):
    coverage = load_script().coverage
    # stream a: 3 pairs, stream b: 2 pairs, and one row without a truth
    t = pa.table({
        "stream": ["a", "a", "a", "b", "b", "c"],
        "oracle": [0.5, 0.2, 0.1, 0.3, 0.3, None],
        "posterior_predictive": [0.5, 0.1, 0.2, 0.4, 0.1, 0.0],   # equal counts as covered
        "plausible_set[alpha=0.05]": [0.6, 0.3, 0.2, 0.3, 0.9, 0.0],
        "not_an_estimator": [0.0] * 6,
    })
    pq.write_table(t, tmp_path / "r.parquet")
    pairs, streams, rows = coverage(tmp_path / "r.parquet")
    assert (pairs, streams) == (5, 2)
    got = {name: (pair, stream) for name, pair, stream, _ in rows}
    assert got == {
        "posterior_predictive": (pytest.approx(3 / 5), 0.0),
        "plausible_set[alpha=0.05]": (1.0, 1.0),
    }


def test_a_report_without_a_truth_is_refused(tmp_path):
    coverage = load_script().coverage
    t = pa.table({"stream": ["a"], "oracle": pa.array([None], pa.float64()),
                  "cautious_theory": [0.1]})
    pq.write_table(t, tmp_path / "r.parquet")
    with pytest.raises(SystemExit, match="no row has an oracle value"):
        coverage(tmp_path / "r.parquet")
