"""What an audit gives up to a cluster: ``gpubound.ray.audit`` on a local Ray
cluster with 1 and with 2 worker processes against the single-process
command line, on the same simulated log (Parquet, 8 files), every run
writing its report as Parquet.

    python python/benches/cluster.py [--episodes 20000] [--repeats 3] [--cli target/release/gpubound]

Prints, for each: wall seconds (median of the repeats, after one warm-up
run that starts Ray's workers), streams/s and triples/s; the same work in
one process on one core without Ray; then Ray's speed-up from 1 to 2
workers, its overhead against the command line, and Ray's own time (the
2-worker wall time less half the one-core work).
The command line uses every core (its engine's threads); each Ray worker
runs the engine on one.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]


def make_log(cli: str, episodes: int, d: pathlib.Path) -> pathlib.Path:
    import pyarrow.parquet as pq

    jsonl, whole = d / "sim.jsonl", d / "sim.parquet"
    subprocess.run([cli, "simulate", "--episodes", str(episodes), "--agent", "boltzmann",
                    "--seed", "3", "-q", "-o", str(jsonl)], check=True)
    subprocess.run([cli, "convert", str(jsonl), "-o", str(whole), "-q"], check=True)
    t = pq.read_table(whole)
    parts = d / "parts"
    parts.mkdir()
    n = t.num_rows
    for i in range(8):
        a, b = n * i // 8, n * (i + 1) // 8
        pq.write_table(t.slice(a, b - a), parts / f"part-{i}.parquet")
    return whole


def time_cli(cli: str, whole: pathlib.Path, out: pathlib.Path) -> float:
    started = time.perf_counter()
    subprocess.run([cli, "audit", str(whole), "--backend", "cpu", "-q", "--format", "parquet",
                    "-o", str(out)], check=True)
    return time.perf_counter() - started


def time_ray(workers: int, parts: pathlib.Path, out: pathlib.Path, repeats: int) -> tuple:
    """Runs in a fresh process per worker count, so that Ray's cluster has
    exactly that many CPUs."""
    code = f"""
import json, time, ray, gpubound.ray as gr
ray.init(num_cpus={workers}, include_dashboard=False, log_to_driver=False, configure_logging=False)
times = []
for i in range({repeats} + 1):
    t = time.perf_counter()
    s = gr.audit({str(parts)!r}, output={str(out)!r}, backend="cpu")
    times.append(time.perf_counter() - t)
print(json.dumps({{"times": times, "streams": s["streams"], "triples": s["triples"]}}))
"""
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    r = json.loads(done.stdout.strip().splitlines()[-1])
    return r["times"][0], r["times"][1:], r["streams"], r["triples"]


def time_one_task(parts: pathlib.Path, out: pathlib.Path, repeats: int) -> float:
    """What every Ray task does, for the whole log in one process on one
    core (no Ray): read the rows, audit them, write the Parquet part."""
    code = f"""
import os, time, statistics
os.environ["RAYON_NUM_THREADS"] = "1"
import gpubound._sharded as sh
plan, model = sh.plan_files(sh.log_files({str(parts)!r}), None)
settings = sh.options(None, None, None, (0.01,), "cpu")
total = sum(rows for _, _, rows in plan)
times = []
for i in range({repeats}):
    t = time.perf_counter()
    sh.audit_rows(sh.read_range(plan, 0, total), model, settings, "bench", {str(out)!r})
    times.append(time.perf_counter() - t)
print(statistics.median(times))
"""
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=20000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cli", default=str(ROOT / "target" / "release" / "gpubound"))
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = pathlib.Path(tmp)
        whole = make_log(a.cli, a.episodes, d)
        parts = d / "parts"
        time_cli(a.cli, whole, d / "warm.parquet")
        cli = [time_cli(a.cli, whole, d / "cli.parquet") for _ in range(a.repeats)]
        rows = {}
        for w in (1, 2):
            first, times, streams, triples = time_ray(w, parts, d / f"ray{w}", a.repeats)
            rows[w] = (first, statistics.median(times), streams, triples)
            shutil.rmtree(d / f"ray{w}")
        work = time_one_task(parts, d / "one.parquet", a.repeats)
        c = statistics.median(cli)
        streams, triples = rows[2][2], rows[2][3]
        print(f"log: {a.episodes} episodes, {streams} streams, {triples:.3e} triples, 8 Parquet files")
        print(f"{'run':<28} {'wall s':>8} {'streams/s':>11} {'triples/s':>11}")
        print(f"{'gpubound audit (CLI)':<28} {c:8.2f} {streams / c:11.0f} {triples / c:11.3e}")
        for w in (1, 2):
            t = rows[w][1]
            print(f"{f'ray, {w} worker(s)':<28} {t:8.2f} {streams / t:11.0f} {triples / t:11.3e}"
                  f"   (first run, starting workers: {rows[w][0]:.2f} s)")
        print(f"{'one task on one core, no Ray':<28} {work:8.2f}   (read, audit, write: the work Ray splits)")
        print(f"speed-up 1 -> 2 workers: {rows[1][1] / rows[2][1]:.2f}x; "
              f"ray (2 workers) against the CLI: {100 * (rows[2][1] / c - 1):+.1f} % wall time; "
              f"Ray's own time with 2 workers: {rows[2][1] - work / 2:.2f} s")


if __name__ == "__main__":
    main()
