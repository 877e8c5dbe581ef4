"""Audits on a Ray cluster, sharded by stream, with the single machine's result.

>>> import ray, gpubound.ray
>>> summary = gpubound.ray.audit("logs/", output="report/")   # doctest: +SKIP

Streams are independent worlds, so a log shards by stream with no loss: the
rows are hash-partitioned by ``stream`` (a stream is never split across
tasks), each task audits its streams whole with the engine and writes its
report rows as one Parquet part of ``output``, and the tasks' summaries are
merged. The report's rows (after sorting by stream, step and candidate) and
the summary are those of ``gpubound audit`` on one machine.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Sequence, Union

from . import _sharded

if TYPE_CHECKING:
    import pyarrow
    import ray.data

__all__ = ["audit", "read_log"]


def read_log(source: Union[_sharded.PathLike, Sequence[_sharded.PathLike]]) -> "ray.data.Dataset":
    """A log kept as Parquet files (paths, or a folder whose ``*.parquet``
    files are read in name order) as a Ray ``Dataset``, one task per file,
    each row with its ``line``: its 1-based row in the log as a whole, which
    the report and the summary name. The files' model stays in the schema's
    metadata, where :func:`audit` finds it."""
    files = _sharded.log_files(source)
    # a model is not needed to read them (`audit` checks it)
    plan, _ = _sharded.plan_files(files, model="{}")
    return _read_plan(plan)


def _read_plan(plan: List[Any]) -> "ray.data.Dataset":
    import ray.data

    items = [{"path": p, "offset": o} for p, o, _ in plan]

    def read(batch: "pyarrow.Table") -> Iterator["pyarrow.Table"]:
        for path, offset in zip(batch["path"].to_pylist(), batch["offset"].to_pylist()):
            yield from _sharded.read_rows(path, offset)

    return ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
        read, batch_size=1, batch_format="pyarrow"
    )


def audit(
    source: Any,
    *,
    output: _sharded.PathLike,
    model: Any = None,
    alpha: Any = None,
    delta: Any = None,
    prior_floor: Optional[float] = None,
    thresholds: Any = (0.01,),
    backend: str = "auto",
    num_gpus: float = 0,
    num_blocks: Optional[int] = None,
    top: int = 10,
    shared_world: bool = False,
    sampler: Optional[_sharded.PathLike] = None,
    samples: Optional[int] = None,
    seed: int = 1,
    redraw_ess: Optional[float] = None,
) -> Dict[str, Any]:
    """Audits a log on Ray and returns the summary (the dict of
    :attr:`gpubound.Audit.summary`, merged over the tasks).

    ``source``: Parquet path(s) or a folder of them in the columnar log
    schema (docs/parquet-log.md), read in name order, or a
    ``ray.data.Dataset`` with those columns plus ``line`` (each row's 1-based
    row in the log; :func:`read_log` adds it). ``output``: a folder that
    receives the report rows as Parquet parts with the columns of
    ``gpubound audit --format parquet`` and the summary as
    ``_gpubound_summary.json``; written whole or not at all, and replaced
    when an earlier run wrote it. The model is ``model`` or the files'
    ``gpubound.model`` metadata. ``alpha``, ``delta``, ``prior_floor``,
    ``thresholds`` and ``backend`` are :func:`gpubound.audit`'s;
    ``num_gpus > 0`` runs the tasks on GPUs (``backend="gpu"`` unless
    given). ``num_blocks``: how many shards (default: twice the cluster's
    CPUs, at least 4).

    ``sampler``, ``samples``, ``seed`` and ``redraw_ess`` are
    :func:`gpubound.audit`'s: an audit on hypotheses drawn from an amortized
    sampler (the file must be at the same path on every node). Each stream
    draws from its own random stream, numbered by its index in the log, so
    the sharded audit draws what the single machine's does: the same rows,
    and the same summary but for the sampling times.

    ``shared_world`` is refused: one world cannot be split. Bad input raises
    ``ValueError`` naming the file or the log's row, as the command line does.
    """
    import numpy
    import ray
    import ray.data

    if shared_world:
        raise ValueError(
            "shared_world cannot be sharded: one world's posterior runs through every "
            "stream in order; audit it on one machine (gpubound.audit)"
        )
    if num_gpus > 0 and backend == "auto":
        backend = "gpu"
    settings = _sharded.options(alpha, delta, prior_floor, thresholds, backend)
    settings.update(_sharded.sampler_options(sampler, samples, seed, redraw_ess))
    sampled = settings.get("sampler") is not None
    started = time.perf_counter()
    given_model = _sharded.model_json(model)
    if isinstance(source, ray.data.Dataset):
        inputs: List[str] = []
        name = "<ray dataset>"
        ds = source
        if given_model is None:
            given_model = _dataset_model(ds)
    else:
        inputs = _sharded.log_files(source)
        name = inputs[0] if len(inputs) == 1 else f"{os.path.dirname(inputs[0]) or '.'} ({len(inputs)} files)"
        plan, given_model = _sharded.plan_files(inputs, given_model)
    model_text = given_model
    folder = _sharded.OutputFolder(output, inputs)
    try:
        if not ray.is_initialized():
            ray.init()
        blocks = num_blocks or max(4, 2 * int(ray.cluster_resources().get("CPU", 2)))
        # each task keeps its `top` riskiest steps: the global top is among them
        task_args = {"model": model_text, "settings": {**settings, "top": top}, "name": name,
                     "folder": folder}
        if inputs:
            # Files in log order: cut the rows where streams begin, one task
            # per range; no shuffle is needed to keep each stream whole.
            total = sum(rows for _, _, rows in plan)
            ranges = _sharded.plan_shards(plan, total, blocks)
            # the log-order index of each range's first stream, and one past its last
            starts = _sharded.stream_starts(plan) if sampled else None
            first = (lambda row: int(numpy.searchsorted(starts, row))) if sampled else (lambda row: 0)
            jobs = ray.data.from_items(
                [{"start": a, "end": b, "first_stream": first(a), "end_stream": first(b)}
                 for a, b in ranges],
                override_num_blocks=len(ranges),
            )
            work = jobs.map_batches(
                _audit_range,
                fn_kwargs={**task_args, "plan": plan},
                batch_size=1,
                batch_format="pyarrow",
                num_gpus=num_gpus,
            )
        else:
            # Any Dataset: hash-partition by stream, so each stream lands whole
            # in one block, audited in the order of its `line`s.
            start_lines = _start_lines(ds) if sampled else None
            work = ds.repartition(blocks, shuffle=True, keys=["stream"]).map_batches(
                _audit_block,
                fn_kwargs={**task_args, "start_lines": start_lines},
                batch_size=None,
                batch_format="pyarrow",
                num_gpus=num_gpus,
            )
        results = work.take_all()
        _raise_first_error(results)
        parts = [r["summary"] for r in results]
        summary = _sharded.merge_summaries(parts, log=name, seconds=0.0, top=top)
        summary["seconds"] = time.perf_counter() - started
        folder.commit(summary)
    except BaseException:
        folder.abandon()
        raise
    return summary


def _audit_range(
    jobs: "pyarrow.Table", plan: List[Any], model: str, settings: Dict[str, Any], name: str,
    folder: Any,
) -> "pyarrow.Table":
    """One task: reads its range of the log's rows and audits it."""
    import pyarrow

    # a task uses the CPU it was given, not every core of the node
    os.environ.setdefault("RAYON_NUM_THREADS", "1")
    out = []
    for a, b, k0, k1 in zip(*(jobs[c].to_pylist() for c in ("start", "end", "first_stream", "end_stream"))):
        try:
            rows = _sharded.read_range(plan, a, b)
            result = _sharded.audit_rows(rows, model, settings, name, folder.part(a + 1),
                                         list(range(k0, k1)))
        except (ValueError, OSError) as e:
            return _error(e)
        out.append(_result(folder.part(a + 1), result.summary_json(), None))
    return pyarrow.concat_tables(out)


def _audit_block(
    rows: "pyarrow.Table", model: str, settings: Dict[str, Any], name: str, folder: Any,
    start_lines: Any,
) -> "pyarrow.Table":
    """One task: audits the block's streams, writes their report rows as a
    part, returns the summary as a one-row table."""
    os.environ.setdefault("RAYON_NUM_THREADS", "1")
    if rows.num_rows == 0:
        return _result(None, None, None).slice(0, 0)
    try:
        rows = _sharded.in_log_order(rows, name)
        part = folder.part(int(rows[_sharded.LINE][0].as_py()))
        indices = None if start_lines is None else _sharded.stream_indices(rows, start_lines)
        result = _sharded.audit_rows(rows, model, settings, name, part, indices)
    except (ValueError, OSError) as e:
        return _error(e)
    return _result(part, result.summary_json(), None)


def _error(e: BaseException) -> "pyarrow.Table":
    # Ray keeps only the text of a task's exception: bad input travels back
    # as data, to be raised on the driver as what it is
    return _result(None, None, f"{type(e).__name__}\t{e}")


def _result(part: Optional[str], summary: Optional[str], error: Optional[str]) -> "pyarrow.Table":
    import pyarrow

    s = pyarrow.string()
    return pyarrow.table(
        {"part": pyarrow.array([part], s), "summary": pyarrow.array([summary], s),
         "error": pyarrow.array([error], s)}
    )


_ERRORS = {"ValueError": ValueError, "FileNotFoundError": FileNotFoundError,
           "PermissionError": PermissionError, "IsADirectoryError": IsADirectoryError}


def _raise_first_error(results: List[Dict[str, Any]]) -> None:
    """Raises the first task's error (tasks run in the log's order of rows)."""
    for r in results:
        if r.get("error"):
            kind, _, message = r["error"].partition("\t")
            raise _ERRORS.get(kind, OSError if kind.endswith("Error") else ValueError)(message)


def _start_lines(ds: "ray.data.Dataset") -> Any:
    """The sorted lines where the Dataset's streams begin (step 1): one
    number per stream, which numbers each stream's draws."""
    import numpy
    import pyarrow.compute as pc

    def firsts(t: "pyarrow.Table") -> "pyarrow.Table":
        return t.filter(pc.equal(t["step"], 1)).select([_sharded.LINE])

    lines = [b[_sharded.LINE] for b in ds.map_batches(firsts, batch_format="pyarrow")
             .iter_batches(batch_format="numpy", batch_size=None)]
    return numpy.sort(numpy.concatenate(lines)) if lines else numpy.zeros(0, numpy.uint64)


def _dataset_model(ds: "ray.data.Dataset") -> str:
    """The model in a Dataset's schema metadata (Parquet read by Ray keeps it)."""
    schema = ds.schema()
    base = getattr(schema, "base_schema", schema)
    meta = getattr(base, "metadata", None) or {}
    if _sharded.MODEL_KEY in meta:
        return meta[_sharded.MODEL_KEY].decode("utf-8")
    raise ValueError("<ray dataset>: no model: its schema has no gpubound.model metadata; pass model=")
