#!/usr/bin/env python3
"""Coverage of an audit's bounds where the truth is known: for each
estimator column of a Parquet report (``gpubound audit … --format parquet``)
of a log that states each stream's true hypothesis (``gpubound simulate``),
the fraction of (step, candidate) pairs whose estimate is at least the
oracle's harm ``q_{h*}``, and the fraction of streams where every pair is
covered — the table of ``gpubound experiment coverage``, for any audit
(an audit on sampled hypotheses included: docs/sampler.md).

    target/py-venv/bin/python scripts/coverage.py report.parquet [more.parquet …]

Prints one Markdown table per report (pyarrow only)."""

import math
import sys

import pyarrow.compute as pc
import pyarrow.parquet as pq

KINDS = ("posterior_predictive", "cautious_theory", "plausible_set", "ville_max", "ville_sum")


def estimator_columns(names):
    return [n for n in names if n.split("[", 1)[0] in KINDS]


def coverage(path):
    t = pq.read_table(path)
    oracle = t.column("oracle")
    known = pc.is_valid(oracle)
    t = t.filter(known)
    if t.num_rows == 0:
        raise SystemExit(f"{path}: no row has an oracle value (the log states no true hypothesis)")
    oracle = t.column("oracle")
    streams = t.column("stream")
    n_streams = len(pc.unique(streams))
    rows = []
    for name in estimator_columns(t.column_names):
        covered = pc.greater_equal(t.column(name), oracle)
        per_pair = pc.mean(pc.cast(covered, "float64")).as_py()
        # a stream is covered when every pair of it is
        missed = pc.unique(pc.filter(streams, pc.invert(covered)))
        per_stream = 1.0 - len(missed) / n_streams
        sem = math.sqrt(per_stream * (1 - per_stream) / n_streams)
        rows.append((name, per_pair, per_stream, sem))
    return t.num_rows, n_streams, rows


def main(paths):
    if not paths:
        raise SystemExit(__doc__)
    for path in paths:
        pairs, streams, rows = coverage(path)
        print(f"{path}: {pairs} (step, candidate) pairs with a stated truth, {streams} streams\n")
        print("| estimator | per (step, candidate) | per stream (± s.e.) |")
        print("|---|---|---|")
        for name, pair, stream, sem in rows:
            print(f"| `{name}` | {pair:.4f} | {stream:.3f} ± {sem:.3f} |")
        print()


if __name__ == "__main__":
    main(sys.argv[1:])
