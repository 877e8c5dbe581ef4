"""Per-call time of gpubound.Guardrail from Python at the paper's size:
H = 1024 (grid {0,1}^10), A = 10 candidates, d = 10, 7 α; medians over
repeated timings, for a wide posterior (20 observed steps) and a narrow one
(500). The Rust-side figures are `cargo bench --bench guardrail`.

`estimates` returns a mapping whose rows are made when read:
`estimates+column` also reads the row an agent's loop reads (the chosen
estimator's), `estimates+dict` makes every row (`.to_dict()`), as the dict
this call returned before did.

    target/py-venv/bin/python python/benches/guardrail.py
"""

import json
import statistics
import sys
import time
import timeit

import numpy as np

import gpubound

MODEL = {
    "hypotheses": {"kind": "grid", "k": 2, "d": 10},
    "observation": {"kind": "gaussian", "sigma": 1.0, "harm_threshold": 4.0},
}
DELTAS = [0.5, 0.2, 0.1, 0.05, 0.02, 0.01, 0.001]


def guardrail_after(steps, rng, x, w):
    g = gpubound.Guardrail(MODEL, delta=DELTAS, backend="cpu")
    for _ in range(steps):
        a = int(rng.integers(len(x)))
        # w·x without BLAS (the same value: 0/1 entries), so that no OpenBLAS
        # thread wakes to spin beside the timings
        g.observe(x, a, float((x[a] * w).sum() + rng.normal()))
    return g


def median_us(fn, number=200, repeat=15):
    times = timeit.repeat(fn, number=number, repeat=repeat)
    return 1e6 * statistics.median(times) / number


def main():
    rng = np.random.default_rng(7)
    x = rng.integers(0, 2, size=(10, 10)).astype(np.float64)
    w = rng.integers(0, 2, size=10).astype(np.float64)
    y = float((x[3] * w).sum())
    out = {}
    # the first timing of a fresh process came out twice as long now and
    # then on a loaded 2-core machine; half a second of calls first steadies it
    warm = gpubound.Guardrail(MODEL, delta=DELTAS, backend="cpu")
    end = time.perf_counter() + 0.5
    while time.perf_counter() < end:
        warm.estimates(x)
    for label, steps in (("wide", 20), ("narrow", 500)):
        g = guardrail_after(steps, rng, x, w)
        out[f"estimates/{label}"] = median_us(lambda: g.estimates(x))
        column = g.estimator
        out[f"estimates+column/{label}"] = median_us(lambda: g.estimates(x)[column])
        out[f"estimates+dict/{label}"] = median_us(lambda: g.estimates(x).to_dict())
        out[f"check/{label}"] = median_us(lambda: g.check(x, 3))

        def observe_again():
            g.observe(x, 3, y)

        # observe moves the posterior; time it on a copy of the state by
        # observing the same outcome over and over (the cost does not depend
        # on the posterior)
        out[f"observe/{label}"] = median_us(observe_again)
    json.dump({k: round(v, 2) for k, v in out.items()}, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
