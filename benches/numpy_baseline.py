#!/usr/bin/env python3
"""The NumPy baseline of `gpubound bench --hypotheses 1024` (issue 14).

What a user would write to audit one stream with NumPy: the same workload
shape as `gpubound bench` (the grid {0,1}^10 of H = 1024 Gaussian
hypotheses, σ = 1, one stream of T = 1000 steps, one table of A = 10 integer
candidates, 7 α), batched over steps:

  * the posterior before every step (prefix sums of the log-likelihoods);
  * the posterior predictive Σ_h p_h q_h of every candidate;
  * the i.i.d. ("cautious theory") estimate q_ĥ, ĥ = argmax_h p_h q_h;
  * the plausible sets I_α = {h : p_h ≥ α (p_h + Σ_{p_j > p_h} p_j)} for the
    7 α, by sorting each step's posterior, and max_{h ∈ I_α} q_h.

It prints triples per second (H × A × T per run over the run's seconds,
median of --runs after a warm-up), like `gpubound bench`. Run it beside
`gpubound bench --backend cpu --hypotheses 1024` in the same session and
take the ratio of the medians (docs/benchmarks.md).

`--check LOG REPORT` instead computes the same estimates for every stream of
a `gpubound simulate` log (a grid model) and compares them with the report
`gpubound audit LOG --alpha …` wrote: the baseline computes what gpubound
computes. Needs only NumPy.
"""

import argparse
import itertools
import json
import math
import statistics
import sys
import time

import numpy as np

ALPHAS = np.array([1e-5, 1e-4, 1e-3, 1e-2, 0.1, 0.3, 1.0])
_erfc = np.frompyfunc(math.erfc, 1, 1)


def grid(k, d):
    """{0..k-1}^d in gpubound's order (first coordinate most significant)."""
    return np.array(list(itertools.product(range(k), repeat=d)), dtype=np.float64)


def audit_stream(W, X, actions, y, theta, sigma, alphas=ALPHAS):
    """Every step's estimates for every candidate of one stream.

    W: H×d hypotheses, X: A×d candidates, actions/y: the T taken actions
    and outcomes. Returns (posterior predictive T×A, cautious T×A,
    plausible set T×len(alphas)×A).
    """
    H = W.shape[0]
    T = len(actions)
    wx = W @ X.T  # H×A
    q = 0.5 * _erfc((theta - wx) / (sigma * math.sqrt(2.0))).astype(np.float64)
    # log-likelihood of each step's outcome under each hypothesis: T×H
    mean = wx[:, actions].T
    ll = -0.5 * ((y[:, None] - mean) / sigma) ** 2 - math.log(sigma) - 0.5 * math.log(2 * math.pi)
    # the posterior before step t: observations s < t, from a uniform prior
    L = np.zeros((T, H))
    np.cumsum(ll[:-1], axis=0, out=L[1:])
    L -= math.log(H)
    L -= L.max(axis=1, keepdims=True)
    w = np.exp(L)
    p = w / w.sum(axis=1, keepdims=True)
    posterior_predictive = p @ q
    # i.i.d.: ĥ = argmax_h p_h q_h, in log space
    score = L[:, :, None] + np.log(q)[None, :, :]
    hhat = score.argmax(axis=1)  # T×A
    cautious = q[hhat, np.arange(q.shape[1])[None, :]]
    # plausible sets: sort each step's posterior, mass strictly ahead
    order = np.argsort(-p, axis=1, kind="stable")
    ps = np.take_along_axis(p, order, axis=1)
    ahead = np.cumsum(ps, axis=1) - ps
    # ties are not ahead: a tied group takes the mass ahead of its first
    new = np.ones_like(ps, dtype=bool)
    new[:, 1:] = ps[:, 1:] != ps[:, :-1]
    start = np.maximum.accumulate(np.where(new, np.arange(H)[None, :], 0), axis=1)
    ahead = np.take_along_axis(ahead, start, axis=1)
    # I_α is a prefix of the order: its max of q is a prefix maximum
    qmax = np.maximum.accumulate(q[order], axis=1)  # T×H×A
    members = (ps[:, None, :] >= alphas[None, :, None] * (ps + ahead)[:, None, :]).sum(axis=2)
    plausible = qmax[np.arange(T)[:, None], members - 1]  # T×len(alphas)×A
    return posterior_predictive, cautious, plausible


def workload(seed, h_k=2, d=10, a=10, t=1000):
    """The shape of `gpubound bench --hypotheses 1024` (not its random draws)."""
    rng = np.random.default_rng(seed)
    W = grid(h_k, d)
    X = rng.integers(0, h_k, size=(a, d)).astype(np.float64)
    # θ as the bench sets it: the mean best-arm reward of random draws, rounded
    best = [max(rng.integers(0, h_k, d) @ rng.integers(0, h_k, d) for _ in range(a)) for _ in range(100)]
    theta = float(round(np.mean(best)))
    truth = W[rng.integers(0, len(W))]
    actions = rng.integers(0, a, size=t)
    y = X[actions] @ truth + rng.standard_normal(t)
    return W, X, actions, y, theta


def bench(runs, seed):
    W, X, actions, y, theta = workload(seed)
    triples = W.shape[0] * X.shape[0] * len(actions)
    audit_stream(W, X, actions, y, theta, 1.0)  # warm-up
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        pp, ct, ps = audit_stream(W, X, actions, y, theta, 1.0)
        seconds.append(time.perf_counter() - started)
    rates = sorted(triples / s for s in seconds)
    checksum = float(pp.sum() + ct.sum() + ps.sum())
    print(
        f"numpy {np.__version__}: H=1024 (grid {{0,1}}^10), T=1000 steps in 1 stream, A=10, 7 alphas, "
        f"{triples:.3e} triples per run"
    )
    print(
        f"median {statistics.median(rates):.3e} triples/s (min {rates[0]:.3e}, max {rates[-1]:.3e}) "
        f"over {runs} runs, {1e3 * statistics.median(seconds):.1f} ms per run; checksum {checksum:.6g}"
    )


def check(log_path, report_path):
    """Compares the baseline with a gpubound report of the same log."""
    streams = []
    with open(log_path) as f:
        for line in f:
            r = json.loads(line)
            if r["type"] == "model":
                hyp, obs = r["hypotheses"], r["observation"]
                if hyp.get("kind") != "grid" or obs.get("kind") != "gaussian":
                    sys.exit("--check reads logs of a Gaussian model on a grid")
                W = grid(hyp["k"], hyp["d"])
                theta, sigma = obs["harm_threshold"], obs["sigma"]
            elif r["type"] == "stream":
                streams.append((np.array(r["candidates"], dtype=np.float64), [], []))
            elif r["type"] == "step":
                streams[-1][1].append(r["action"])
                streams[-1][2].append(r["outcome"])
    with open(report_path) as f:
        rows = [json.loads(line) for line in f]
    rows = [r for r in rows if "candidates" in r]
    alphas = np.array(sorted(float(a) for a in rows[0]["candidates"][0]["plausible_set"]))
    mine = []
    for X, actions, y in streams:
        pp, ct, ps = audit_stream(W, X, np.array(actions), np.array(y), theta, sigma, alphas)
        for t in range(len(actions)):
            mine.append((pp[t], ct[t], ps[t]))
    if len(mine) != len(rows):
        sys.exit(f"{len(mine)} steps in the log, {len(rows)} in the report")
    worst = {"posterior_predictive": 0.0, "cautious_theory": 0.0, "plausible_set": 0.0}
    for (pp, ct, ps), row in zip(mine, rows):
        for a, c in enumerate(row["candidates"]):
            rel = lambda x, ref: abs(x - ref) / max(abs(ref), 1e-300)
            worst["posterior_predictive"] = max(worst["posterior_predictive"], rel(pp[a], c["posterior_predictive"]))
            worst["cautious_theory"] = max(worst["cautious_theory"], rel(ct[a], c["cautious_theory"]))
            theirs = {float(k): v for k, v in c["plausible_set"].items()}
            for i, al in enumerate(alphas):
                worst["plausible_set"] = max(worst["plausible_set"], rel(ps[i, a], theirs[al]))
    print(f"{len(rows)} steps, {len(alphas)} alphas: largest relative difference from the report: {worst}")
    return max(worst.values())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="timed runs after one warm-up (default 5)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--check", nargs=2, metavar=("LOG", "REPORT"), help="compare with gpubound's report of LOG")
    args = ap.parse_args()
    if args.check:
        worst = check(*args.check)
        sys.exit(0 if worst <= 1e-9 else 1)
    bench(max(args.runs, 1), args.seed)


if __name__ == "__main__":
    main()
