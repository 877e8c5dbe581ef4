"""What the cluster faces (:mod:`gpubound.ray`, :mod:`gpubound.spark`) share:
finding a log's Parquet files and numbering their rows as the log's, auditing
one shard of whole streams, merging the shards' summaries, and an output
folder written whole or not at all.

A sharded audit is the single-machine audit exactly: streams are independent
worlds, so each shard audits whole streams with the same engine, and every
row carries ``line``, its 1-based row in the log as a whole (the files read in
order), so the report's ``line`` column and the summary's tie rule ("earlier
steps first") are the single machine's.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

from . import _gpubound

if TYPE_CHECKING:
    import pyarrow

LINE = "line"
MODEL_KEY = b"gpubound.model"
SUMMARY_FILE = "_gpubound_summary.json"
PathLike = Union[str, "os.PathLike[str]"]


def log_files(source: Union[PathLike, Sequence[PathLike]]) -> List[str]:
    """The Parquet files of a log, in the log's order: the paths as given, a
    folder's ``*.parquet``/``*.pq`` files by name (the command line's rule)."""
    items = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    if not items:
        raise ValueError("no log files given")
    files: List[str] = []
    for item in items:
        p = os.fspath(item)
        if os.path.isdir(p):
            files.extend(_gpubound.folder_files(p))
        elif os.path.exists(p):
            files.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such file or folder")
    return files


def model_json(model: Any) -> Optional[str]:
    """A model given as a dict, JSON text or a file's path, as JSON text."""
    if model is None:
        return None
    if isinstance(model, dict):
        return json.dumps(model)
    if isinstance(model, str) and model.lstrip().startswith("{"):
        return model
    if isinstance(model, (str, os.PathLike)):
        with open(os.fspath(model), encoding="utf-8") as f:
            text = f.read()
        _gpubound.describe_model(os.fspath(model))  # the CLI's checks and messages
        return text
    raise TypeError(f"model must be a dict, a JSON string or a path, not {type(model).__name__}")


def plan_files(files: List[str], model: Optional[str]) -> Tuple[List[Tuple[str, int, int]], str]:
    """Each file with the number of rows before it and its own, and the model: ``model``
    when given, else the files' ``gpubound.model`` metadata, which must agree."""
    import pyarrow.parquet as pq

    plan: List[Tuple[str, int, int]] = []
    offset = 0
    found: Optional[Tuple[str, bytes]] = None
    for f in files:
        try:
            meta = pq.ParquetFile(f).metadata
        except OSError:
            raise
        except Exception as e:  # pyarrow's ArrowInvalid for a file that is not Parquet
            raise ValueError(f"{f}: not a Parquet file: {e}") from None
        plan.append((f, offset, meta.num_rows))
        offset += meta.num_rows
        kv = meta.metadata or {}
        if model is None and MODEL_KEY in kv:
            if found is None:
                found = (f, kv[MODEL_KEY])
            elif kv[MODEL_KEY] != found[1]:
                raise ValueError(
                    f"{f}: its model (metadata gpubound.model) differs from {found[0]}'s: "
                    "one log has one model"
                )
    if model is not None:
        return plan, model
    if found is None:
        raise ValueError(
            f"{files[0]}: no model: the files carry no gpubound.model metadata; pass model="
        )
    return plan, found[1].decode("utf-8")


def stream_starts(plan: List[Tuple[str, int, int]]) -> "Any":
    """The 0-based rows of the log where a stream begins (step 1), read from
    the ``step`` column alone."""
    import numpy
    import pyarrow.parquet as pq

    starts = []
    for path, offset, _ in plan:
        steps = pq.read_table(path, columns=["step"])["step"].to_numpy(zero_copy_only=False)
        starts.append(numpy.flatnonzero(steps == 1) + offset)
    return numpy.concatenate(starts) if starts else numpy.zeros(0, dtype=numpy.int64)


def plan_shards(plan: List[Tuple[str, int, int]], total_rows: int, shards: int) -> List[Tuple[int, int]]:
    """Cuts the log's rows into about ``shards`` ranges of similar size, each
    cut where a stream begins, so that no stream is split: ``[start, end)``
    in 0-based rows of the log. A range begins at a stream's first row
    except where the log itself does not (the reader then says so)."""
    import numpy

    starts = stream_starts(plan)
    cuts = {0, total_rows}
    for i in range(1, shards):
        k = int(numpy.searchsorted(starts, total_rows * i // shards))
        if k < len(starts):
            cuts.add(int(starts[k]))
    edges = sorted(cuts)
    return [(a, b) for a, b in zip(edges, edges[1:]) if b > a]


def read_range(plan: List[Tuple[str, int, int]], start: int, end: int) -> "pyarrow.RecordBatchReader":
    """The log's rows ``[start, end)`` (0-based), across files, each with its
    ``line``, as a stream read one row group at a time (memory stays bounded
    by a row group); ``plan`` holds (path, rows before it, its rows)."""
    import pyarrow
    import pyarrow.parquet as pq

    def pieces() -> Iterator["pyarrow.Table"]:
        for path, offset, rows in plan:
            lo, hi = max(start, offset), min(end, offset + rows)
            if lo >= hi:
                continue
            f = pq.ParquetFile(path)
            first = offset
            for g in range(f.num_row_groups):
                n = f.metadata.row_group(g).num_rows
                a, b = max(lo, first), min(hi, first + n)
                if a < b:
                    yield path, with_lines(f.read_row_group(g).slice(a - first, b - a), a, path)
                first += n

    it = pieces()
    first_path, head = next(it)
    schema = head.schema

    def batches() -> Iterator["pyarrow.RecordBatch"]:
        yield from head.to_batches()
        for path, t in it:
            if t.schema != schema:
                raise ValueError(f"{path}: its columns differ from {first_path}'s: {t.schema} against {schema}")
            yield from t.to_batches()

    return pyarrow.RecordBatchReader.from_batches(schema, batches())


def with_lines(t: "pyarrow.Table", first: int, path: str) -> "pyarrow.Table":
    """``t`` (rows from the log's 0-based row ``first`` on) with ``line``,
    without the file's metadata."""
    import numpy
    import pyarrow

    if LINE in t.column_names:
        raise ValueError(f"{path}: a log file has no `{LINE}` column (it is added when read)")
    lines = numpy.arange(first + 1, first + 1 + t.num_rows, dtype=numpy.uint64)
    return t.append_column(LINE, pyarrow.array(lines)).replace_schema_metadata(None)


def read_rows(path: str, offset: int) -> Iterator["pyarrow.Table"]:
    """A log file's rows, one row group at a time, each with its ``line``
    (its row in the whole log), with the file's metadata (its model)."""
    import pyarrow.parquet as pq

    f = pq.ParquetFile(path)
    start = offset
    for g in range(f.num_row_groups):
        t = f.read_row_group(g)
        yield with_lines(t, start, path).replace_schema_metadata(t.schema.metadata)
        start += t.num_rows


def options(
    alpha: Any, delta: Any, prior_floor: Optional[float], thresholds: Any, backend: str
) -> Dict[str, Any]:
    """The engine's settings, as :func:`gpubound.audit` takes them."""
    from . import _floats

    return {
        "alpha": _floats("alpha", alpha),
        "delta": _floats("delta", delta),
        "prior_floor": prior_floor,
        "thresholds": _floats("thresholds", thresholds),
        "backend": backend,
    }


def sampler_options(
    sampler: Optional[PathLike], samples: Optional[int], seed: int, redraw_ess: Optional[float]
) -> Dict[str, Any]:
    """:func:`gpubound.audit`'s ``sampler``, ``samples``, ``seed`` and
    ``redraw_ess`` (checked together by the engine). The sampler file is read
    by every task: on a cluster it must be at the same path on every node."""
    if sampler is None:
        for name, value in (("samples", samples), ("redraw_ess", redraw_ess)):
            if value is not None:
                raise ValueError(
                    f"{name}= applies to an audit on sampled hypotheses: give sampler= too"
                )
        return {}
    if samples is None:
        raise ValueError("sampler= needs samples=N, the hypotheses drawn per step")
    path = os.path.abspath(os.fspath(sampler))
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such sampler file")
    return {
        "sampler": path,
        "samples": None if samples is None else int(samples),
        "seed": int(seed),
        "redraw_ess": redraw_ess,
    }


def stream_indices(rows: "pyarrow.Table", start_lines: "Any") -> List[int]:
    """The index in the whole log of each stream of ``rows`` (a shard's rows
    in log order, with ``line``), from the sorted lines where the log's
    streams begin (step 1): an audit on sampled hypotheses seeds each
    stream's draws with its index, so a shard draws what the whole log's
    audit draws."""
    import numpy
    import pyarrow.compute as pc

    first = rows.filter(pc.equal(rows["step"], 1))[LINE].to_numpy()
    return numpy.searchsorted(start_lines, first).tolist()


def in_log_order(rows: "pyarrow.Table", name: str) -> "pyarrow.Table":
    """A shard's rows (whole streams, any order) in the log's order."""
    if LINE not in rows.column_names:
        raise ValueError(
            f"{name}: the rows have no `{LINE}` column (each row's 1-based row in the log); "
            "read the log with read_log(...), which numbers them"
        )
    return rows.sort_by(LINE)


def audit_rows(
    rows: Any,
    model: str,
    settings: Dict[str, Any],
    name: str,
    report_path: Optional[str] = None,
    indices: Optional[List[int]] = None,
) -> Any:
    """Audits a shard's rows (Arrow data in the log's order, with ``line``):
    the native result; with ``report_path`` its rows go to that Parquet
    file as they come instead of memory. ``indices``: each stream's index in
    the whole log (:func:`stream_indices`), for an audit on sampled
    hypotheses."""
    extra = {"stream_indices": indices} if settings.get("sampler") else {}
    return _gpubound.audit(
        rows, model_json=model, html=False, name=name, report_path=report_path, **settings,
        **extra
    )


def merge_summaries(parts: List[str], log: str, seconds: float, top: int = 10) -> Dict[str, Any]:
    """The shards' summaries as one: counts add, the riskiest steps merged
    to the top ``top`` (earlier lines first on ties)."""
    return json.loads(_gpubound.merge_summaries(parts, log=log, seconds=seconds, top=top))


class OutputFolder:
    """A report folder written whole or not at all: parts go to a hidden
    staging folder beside it, which replaces the folder at the end. Running
    the same audit again replaces what an earlier run wrote; a folder that
    holds anything else is refused before any work."""

    def __init__(self, path: PathLike, inputs: List[str]) -> None:
        self.path = os.path.abspath(os.fspath(path))
        for f in inputs:
            a = os.path.abspath(f)
            if a == self.path or a.startswith(self.path + os.sep):
                raise ValueError(f"output {self.path}: it holds the log file {f}; choose another folder")
        if os.path.exists(self.path):
            if not os.path.isdir(self.path):
                raise ValueError(f"output {self.path}: exists and is not a folder")
            entries = os.listdir(self.path)
            if entries and SUMMARY_FILE not in entries:
                raise ValueError(
                    f"output {self.path}: a folder that holds other files than an earlier "
                    "gpubound report; choose an empty or new folder"
                )
        parent = os.path.dirname(self.path)
        if not os.path.isdir(parent):
            raise ValueError(f"output {self.path}: its folder {parent} does not exist")
        self.staging = os.path.join(parent, f".{os.path.basename(self.path)}.{uuid.uuid4().hex}.tmp")
        os.mkdir(self.staging)

    def part(self, first_line: int) -> str:
        """The path of the part whose first row is the log's ``first_line``:
        the same name on every run, so parts sort in log order."""
        return os.path.join(self.staging, f"part-{first_line:015d}.parquet")

    def commit(self, summary: Dict[str, Any]) -> None:
        with open(os.path.join(self.staging, SUMMARY_FILE), "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=1)
        old = None
        if os.path.exists(self.path):
            old = self.staging + ".old"
            os.rename(self.path, old)
        os.rename(self.staging, self.path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def abandon(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)
