"""Audits on Spark, sharded by stream, with the single machine's result.

>>> from gpubound import spark as gs
>>> log = gs.read_log(session, "logs/")              # doctest: +SKIP
>>> report = gs.audit(log, thresholds=[0.01, 0.1])    # doctest: +SKIP
>>> summary = gs.summary(report)                      # doctest: +SKIP

:func:`audit` groups the log's rows by ``stream`` and audits each group whole
with ``groupBy("stream").applyInArrow`` (Arrow batches in and out, no pandas),
so a stream is never split; its result is a lazy DataFrame of the report's
rows. :func:`summary` computes the summary from those rows, group by group,
and merges it. Both equal ``gpubound audit`` on one machine: the rows (after
sorting by stream, step and candidate) cell by cell, and the summary. Spark
has no unsigned integers: the report's UInt64 columns are ``bigint`` here.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, Dict, Optional, Sequence, Union

from . import _gpubound, _sharded

if TYPE_CHECKING:
    import pyarrow
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["audit", "read_log", "summary"]

MODEL = "gpubound.model"
SETTINGS = "gpubound.settings"
LOG_COLUMNS = ("stream", "step", "action", "outcome", "candidates", "true_hypothesis", "true_params")


def read_log(
    spark: "SparkSession", source: Union[_sharded.PathLike, Sequence[_sharded.PathLike]]
) -> "DataFrame":
    """A log kept as Parquet files (paths, or a folder whose ``*.parquet``
    files are read in name order) as a DataFrame, each row with its ``line``
    (its 1-based row in the log as a whole, from Parquet's row index) and the
    model in the ``stream`` column's metadata."""
    from functools import reduce

    from pyspark.sql import functions as F

    files = _sharded.log_files(source)
    plan, model = _sharded.plan_files(files, None)
    frames = [
        spark.read.parquet(path).select(
            "*", (F.col("_metadata.row_index") + F.lit(offset + 1)).alias(_sharded.LINE)
        )
        for path, offset, _ in plan
    ]
    df = reduce(lambda a, b: a.unionByName(b), frames)
    return df.withMetadata("stream", {MODEL: model})


def _spark_type(t: "pyarrow.DataType") -> Any:
    import pyarrow
    from pyspark.sql import types as T

    if pyarrow.types.is_integer(t):
        return T.LongType()
    if pyarrow.types.is_floating(t):
        return T.DoubleType()
    if pyarrow.types.is_boolean(t):
        return T.BooleanType()
    if pyarrow.types.is_string(t) or pyarrow.types.is_large_string(t):
        return T.StringType()
    raise TypeError(f"no Spark type for the report's {t}")


def audit(
    df: "DataFrame",
    *,
    model: Any = None,
    alpha: Any = None,
    delta: Any = None,
    prior_floor: Optional[float] = None,
    thresholds: Any = (0.01,),
    backend: str = "cpu",
    shared_world: bool = False,
    sampler: Optional[_sharded.PathLike] = None,
    samples: Optional[int] = None,
    seed: int = 1,
    redraw_ess: Optional[float] = None,
) -> "DataFrame":
    """The report's rows of an audit of ``df`` (a log in the columnar schema
    plus ``line``, as :func:`read_log` gives it): one row per step and
    candidate, the columns of ``gpubound audit --format parquet``. Lazy: the
    audit runs when the DataFrame is computed, one group of rows per stream.

    ``model`` (a dict, JSON text or a model file's path) wins over the model
    :func:`read_log` put in the ``stream`` column's metadata. ``alpha``,
    ``delta``, ``prior_floor``, ``thresholds`` and ``backend`` are
    :func:`gpubound.audit`'s. ``shared_world`` is refused: one world cannot
    be split. Bad input raises ``ValueError`` naming the log's row when the
    DataFrame is computed.

    ``sampler``, ``samples``, ``seed`` and ``redraw_ess`` are
    :func:`gpubound.audit`'s: an audit on hypotheses drawn from an amortized
    sampler (the file at the same path on every worker). Each stream draws
    from its own random stream, numbered by its index in the log (found now,
    by one job over the ``step`` and ``line`` columns), so the groups draw
    what one machine draws: the same rows. :func:`summary` then gives the
    sampling totals too, but not the seconds spent (null: no row records
    them).
    """
    import pyarrow
    from pyspark.sql import types as T

    if shared_world:
        raise ValueError(
            "shared_world cannot be sharded: one world's posterior runs through every "
            "stream in order; audit it on one machine (gpubound.audit)"
        )
    model_text = _sharded.model_json(model) or df.schema["stream"].metadata.get(MODEL)
    if model_text is None:
        raise ValueError("no model: the DataFrame's stream column carries none; pass model=")
    if _sharded.LINE not in df.columns:
        raise ValueError(
            f"the DataFrame has no `{_sharded.LINE}` column (each row's 1-based row in the log): "
            "read the log with gpubound.spark.read_log, which numbers the rows"
        )
    settings = _sharded.options(alpha, delta, prior_floor, thresholds, backend)
    settings.update(_sharded.sampler_options(sampler, samples, seed, redraw_ess))
    sampling = _sampling(settings)
    native_schema = pyarrow.schema(
        _gpubound.report_schema(model_json=model_text, sampled=sampling is not None,
                                **_estimator_settings(settings))
    )
    arrow_out = pyarrow.schema(
        [pyarrow.field(f.name, pyarrow.int64() if pyarrow.types.is_integer(f.type) else f.type, f.nullable)
         for f in native_schema]
    )
    spark_schema = T.StructType(
        [T.StructField(f.name, _spark_type(f.type), f.nullable) for f in native_schema]
    )

    # where the log's streams begin: each stream's index in the log numbers
    # its random stream (an audit on sampled hypotheses)
    start_lines = _start_lines(df) if sampling is not None else None

    def audit_group(rows: "pyarrow.Table") -> "pyarrow.Table":
        import os

        os.environ.setdefault("RAYON_NUM_THREADS", "1")
        if rows.num_rows == 0:
            return arrow_out.empty_table()
        rows = _sharded.in_log_order(rows, "<spark>")
        indices = None if start_lines is None else _sharded.stream_indices(rows, start_lines)
        result = _sharded.audit_rows(rows, model_text, settings, "<spark>", indices=indices)
        return pyarrow.table(result.steps()).cast(arrow_out)

    columns = [c for c in df.columns if c in LOG_COLUMNS or c == _sharded.LINE]
    report = df.select(*columns).groupBy("stream").applyInArrow(audit_group, spark_schema)
    kept: Dict[str, Any] = _estimator_settings(settings)
    if sampling is not None:
        kept["sampling"] = json.dumps(sampling)
    return report.withMetadata("stream", {MODEL: model_text, SETTINGS: json.dumps(kept)})


def _estimator_settings(settings: Dict[str, Any]) -> Dict[str, Any]:
    """What decides the report's columns and the summary's α and C."""
    return {k: settings[k] for k in ("alpha", "delta", "prior_floor", "thresholds")}


def _sampling(settings: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The summary's account of the sampler (its training steps read from
    the file), or None for an audit that enumerates."""
    if settings.get("sampler") is None:
        return None
    _, training_steps = _gpubound.describe_sampler(settings["sampler"])
    redraw = settings["redraw_ess"]
    return {
        "sampler": settings["sampler"],
        "training_steps": training_steps,
        "samples": settings["samples"],
        "seed": settings["seed"],
        "redraw_ess": _gpubound.DEFAULT_REDRAW_ESS if redraw is None else float(redraw),
    }


def _start_lines(df: "DataFrame") -> Any:
    """The sorted lines where the log's streams begin (step 1)."""
    import numpy

    firsts = df.filter(df["step"] == 1).select(_sharded.LINE).toArrow()
    return numpy.sort(firsts[_sharded.LINE].to_numpy())


def summary(report: "DataFrame", *, top: int = 10) -> Dict[str, Any]:
    """The summary of a report :func:`audit` gave (the dict of
    :attr:`gpubound.Audit.summary`): each stream's rows summarised where
    they are, the parts merged on the driver. ``seconds`` is this job's
    wall time."""
    import pyarrow

    started = time.perf_counter()
    meta = report.schema["stream"].metadata
    if MODEL not in meta or SETTINGS not in meta:
        raise ValueError(
            "the report's stream column carries no gpubound model and settings: "
            "summarise the DataFrame gpubound.spark.audit returned"
        )
    model_text = meta[MODEL]
    settings = json.loads(meta[SETTINGS])

    # Spark reads a dot in a column name (`plausible_set[alpha=0.5]`) as a
    # field access: the rows travel under plain names, renamed back here.
    names = report.columns
    plain = [f"c{i}" for i in range(len(names))]

    def summarise(rows: "pyarrow.Table") -> "pyarrow.Table":
        if rows.num_rows == 0:
            return pyarrow.table({"summary": pyarrow.array([], pyarrow.string())})
        rows = rows.rename_columns(names)
        rows = rows.sort_by([("line", "ascending"), ("candidate", "ascending")])
        # each stream keeps its `top` riskiest steps: the global top is among them
        # (settings: the estimators' α and C, and `sampling` for a sampled audit)
        part = _gpubound.summarise_report(rows, model_json=model_text, top=top, **settings)
        return pyarrow.table({"summary": [part]})

    parts = [
        r["summary"]
        for r in report.toDF(*plain)
        .groupBy(plain[names.index("stream")])
        .applyInArrow(summarise, "summary string")
        .collect()
    ]
    merged = _sharded.merge_summaries(parts, log="<spark>", seconds=0.0, top=top)
    merged["seconds"] = time.perf_counter() - started
    return merged
