"""gpubound: audit AI-agent action logs with the harm bounds of Bengio et al.,
"Can a Bayesian Oracle Prevent Harm from an Agent?" (UAI 2025), on the GPU
(wgpu) or the CPU.

Functions:

* :func:`version` -- the version of the Rust library inside.
* :func:`backends` -- the CPU engine and every GPU adapter found.
* :func:`backend` -- the backend an audit would run on.
* :func:`describe_model` -- check a model file and describe its model.
* :func:`check_log` -- read a columnar log (Arrow data) through every check.

Errors: bad input (a malformed log, model or table, a setting out of range)
raises :class:`ValueError` with the message the command-line tool prints
(``file:line: ...``); a file that cannot be read raises :class:`OSError`
(``FileNotFoundError``, ...); anything else (no GPU, an internal error)
raises :class:`RuntimeError`.

Tables go in and out through the Arrow PyCapsule interface: a pyarrow
``Table`` or ``RecordBatchReader``, a polars ``DataFrame`` or a DuckDB
relation is read without copying its buffers, and tables come back as
``pyarrow.Table``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Tuple, Union

# wgpu's Vulkan start-up asks libwayland for a display, and on a machine
# without a desktop session libwayland prints "error: XDG_RUNTIME_DIR is
# invalid" twice, which reads like a failure. As the command-line tool does:
# given an absolute WAYLAND_DISPLAY that does not exist, it fails quietly.
# Only where no Wayland session could be reached anyway (neither variable set).
if "XDG_RUNTIME_DIR" not in os.environ and "WAYLAND_DISPLAY" not in os.environ:
    os.environ["WAYLAND_DISPLAY"] = "/nonexistent/gpubound-headless"

from . import _gpubound  # noqa: E402
from ._gpubound import ArrowStream  # noqa: E402

if TYPE_CHECKING:
    import pyarrow

__all__ = ["ArrowStream", "backend", "backends", "check_log", "describe_model", "version"]

__version__: str = _gpubound.version()


def version() -> str:
    """The version of gpubound, the Rust library this package is built from."""
    return _gpubound.version()


def backends() -> List[Dict[str, Any]]:
    """Every backend this machine offers: the CPU engine first, then each
    GPU adapter wgpu finds (the ``WGPU_BACKEND`` environment variable, e.g.
    ``"vulkan"`` or ``"gl"``, restricts the APIs searched).

    Each is a dict with ``kind`` (``"cpu"`` or ``"gpu"``), ``device`` (the
    thread count or the adapter's name), ``api`` (``"Vulkan"``, ...; empty
    for the CPU), ``driver`` and ``software`` (True for software renderers
    such as lavapipe and llvmpipe, which ``backend("auto")`` skips because
    the CPU engine is faster on the same cores).
    """
    return _gpubound.backends()


def backend(choice: str = "auto") -> Dict[str, Any]:
    """The backend an audit would run on, as the command line's ``--backend``
    picks it: ``"auto"`` (a hardware GPU when there is one, the CPU
    otherwise), ``"gpu"`` (any adapter, software renderers included) or
    ``"cpu"``.

    Returns a dict with ``kind``, ``device``, ``api`` and ``driver`` (see
    :func:`backends`). Raises ``ValueError`` for another choice and
    ``RuntimeError`` when ``"gpu"`` finds no adapter.
    """
    return _gpubound.backend(choice)


def describe_model(path: Union[str, "os.PathLike[str]"]) -> str:
    """Reads a model file (what ``gpubound audit --model FILE`` reads: the
    JSON of a log's model line), checks it as an audit would, and returns
    a one-line description of its hypothesis space and observation model.

    Raises ``ValueError`` (``file:line: ...``) for an invalid model and
    ``OSError`` when the file cannot be read.
    """
    return _gpubound.describe_model(os.fspath(path))


def check_log(data: Any, name: str = "<arrow>") -> Tuple[int, int, str]:
    """Reads a columnar log -- any Arrow data: a ``pyarrow.Table`` or
    ``RecordBatchReader``, a polars ``DataFrame``, a DuckDB relation; one
    row per step, the model as the schema's ``gpubound.model`` metadata
    (docs/parquet-log.md) -- through every check an audit makes, without
    copying it.

    Returns ``(streams, steps, model description)``. Raises ``ValueError``
    naming ``name`` and the 1-based row for bad input, e.g.
    ``"<arrow>: row 2: action 5 is out of range: ..."``.
    """
    return _gpubound.check_log(data, name)


def _arrow_roundtrip(data: Any) -> "pyarrow.Table":
    """Reads Arrow data (any object with ``__arrow_c_stream__`` or, for one
    record batch, ``__arrow_c_array__``) into Rust and hands it back as a
    ``pyarrow.Table``; neither direction copies the buffers. For tests."""
    import pyarrow

    return pyarrow.table(_gpubound._arrow_roundtrip(data))


PathLike = Union[str, "os.PathLike[str]"]
ModelLike = Union[Dict[str, Any], str, "os.PathLike[str]", None]


def _model_args(model: ModelLike) -> Dict[str, Any]:
    """A model as a dict (a model line's content), JSON text, or a file path."""
    import json

    if model is None:
        return {}
    if isinstance(model, dict):
        return {"model_json": json.dumps(model)}
    if isinstance(model, str) and model.lstrip().startswith("{"):
        return {"model_json": model}
    if isinstance(model, (str, os.PathLike)):
        return {"model_path": os.fspath(model)}
    raise TypeError(f"model must be a dict, a JSON string or a path, not {type(model).__name__}")


def _floats(name: str, v: Any) -> List[float]:
    if v is None:
        return []
    if isinstance(v, (int, float)):
        return [float(v)]
    try:
        return [float(x) for x in v]
    except TypeError:
        raise TypeError(f"{name} must be a number or a sequence of numbers") from None


class Audit:
    """The result of :func:`audit`.

    * ``steps``: a ``pyarrow.Table``, one row per (step, candidate), with
      exactly the columns, types and values of ``gpubound audit LOG
      --format parquet`` (docs/report.md).
    * ``summary``: a dict with everything the command line's summary states:
      ``streams``, ``steps``, ``observed_steps``, ``harmful_outcomes``,
      ``triples``, ``alphas`` (each ``alpha``, implied ``delta`` and
      ``coverage``), ``prior_floor``, ``rejections`` (by threshold, then by
      estimator column: ``rejected``, ``with_safer_candidate``,
      ``evaluated``), ``guardrail`` and ``riskiest`` (the riskiest taken
      actions with their safest candidates), ``unexplained`` and more.
    * ``summary_text``: the summary as the command line prints it.
    * :meth:`write_html`: the self-contained HTML report.
    """

    def __init__(self, native: Any) -> None:
        import json

        self._native = native
        self._steps: Optional["pyarrow.Table"] = None
        self.summary: Dict[str, Any] = json.loads(native.summary_json())

    @property
    def steps(self) -> "pyarrow.Table":
        if self._steps is None:
            import pyarrow

            self._steps = pyarrow.table(self._native.steps())
        return self._steps

    @property
    def summary_text(self) -> str:
        return self._native.summary_text()

    def write_html(self, path: PathLike) -> None:
        """Writes the HTML report (summary, plots per stream, the riskiest
        taken actions) to ``path``, whole or not at all; never over the log."""
        self._native.write_html(os.fspath(path))

    def __repr__(self) -> str:
        s = self.summary
        return f"<gpubound.Audit of {s['log']}: {s['streams']} streams, {s['steps']} steps>"


def audit(
    log: Any,
    *,
    model: ModelLike = None,
    alpha: Any = None,
    delta: Any = None,
    prior_floor: Optional[float] = None,
    thresholds: Any = (0.01,),
    backend: str = "auto",
    shared_world: bool = False,
    skip_unexplained: bool = False,
    input_format: Optional[str] = None,
    top: int = 10,
    sampler: Optional[PathLike] = None,
    samples: Optional[int] = None,
    seed: int = 1,
    redraw_ess: Optional[float] = None,
) -> Audit:
    """Audits a log, exactly as ``gpubound audit`` does.

    ``log`` is a path (JSON Lines, or Parquet for ``.parquet``/``.pq``;
    ``input_format="jsonl"|"parquet"`` for other names) or Arrow data in the
    columnar log schema (a ``pyarrow.Table``, a polars ``DataFrame``, a
    DuckDB relation: anything with ``__arrow_c_stream__``; read without a
    copy). ``model`` (a dict with a model line's content, its JSON, or a
    model file's path) overrides the log's model. ``alpha`` or ``delta``
    (default δ = 0.05, α = δ · ``prior_floor``, which defaults to the
    smallest prior mass) and ``thresholds`` (the guardrail's C values) are
    the command line's ``--alpha``, ``--delta``, ``--prior-floor`` and
    ``-C``. ``backend`` is ``"auto"``, ``"gpu"`` or ``"cpu"``. ``top``: how
    many of the riskiest steps the summary lists (``--top``).

    ``sampler`` (a file from ``gpubound sampler train``) with ``samples=N``
    audits on ``N`` hypotheses drawn per step from the amortized sampler
    instead of enumerating the grid, as ``--sampler FILE --samples N`` does
    (``seed``, ``redraw_ess``: ``--seed``, ``--redraw-ess``; the same seed
    gives the same report): the way to audit a grid too large to enumerate.
    The rows then carry each step's effective sample size and estimated
    log-normaliser, and the summary says the estimates are over sampled
    hypotheses (docs/sampler.md).

    The engine runs without the GIL. Bad input raises ``ValueError`` with
    the command line's message (file and line, or row); an unreadable file
    ``OSError``.
    """
    native = _gpubound.audit(
        log if not isinstance(log, os.PathLike) else os.fspath(log),
        alpha=_floats("alpha", alpha),
        delta=_floats("delta", delta),
        prior_floor=prior_floor,
        thresholds=_floats("thresholds", thresholds),
        backend=backend,
        shared_world=shared_world,
        skip_unexplained=skip_unexplained,
        input_format=input_format,
        top=int(top),
        sampler=None if sampler is None else os.fspath(sampler),
        samples=None if samples is None else int(samples),
        seed=int(seed),
        redraw_ess=redraw_ess,
        **_model_args(model),
    )
    return Audit(native)


class GuardrailEstimates(Mapping):
    """What :meth:`Guardrail.estimates` returns: a read-only mapping from
    column names to NumPy arrays of length A (one value per candidate),
    which behaves as a dict does for reading (``e[name]``, ``in``,
    ``keys()``, ``items()``, ``dict(e)``, or faster :meth:`to_dict`).
    ``array`` is the ``(columns, A)`` array underneath, rows in the
    mapping's order (each row is a view of it). Each row is made when
    asked for: an agent's loop usually reads one column, and making (and
    freeing) all 23 at the paper's size (7 α) costs about 4 µs a call."""

    __slots__ = ("array", "_rows")

    def __init__(self, array: Any, rows: Dict[str, int]) -> None:
        self.array = array
        self._rows = rows

    def __getitem__(self, name: str) -> Any:
        return self.array[self._rows[name]]

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, name: object) -> bool:
        return name in self._rows

    def to_dict(self) -> Dict[str, Any]:
        """Every row at once, as a dict: under half the time ``dict(e)``
        takes (which asks for each row through ``e[name]``)."""
        return dict(zip(self._rows, self.array))

    def __repr__(self) -> str:
        return f"GuardrailEstimates({self.to_dict()!r})"


class Guardrail:
    """The guardrail inside an agent's loop: one stream's posterior, kept in
    f64 log space as the audit keeps it, so that replaying a log gives the
    audit's numbers at every step.

    ``model`` is a dict (a model line's content), its JSON or a model
    file's path. ``estimator`` (default ``"plausible_set"`` at the first α,
    or a column name such as ``"ville_max[alpha=0.0005]"``) and
    ``threshold`` C decide :meth:`check`: an action is allowed when its
    estimate is at most C.

    >>> g = Guardrail({"hypotheses": {"kind": "grid", "k": 2, "d": 3},
    ...                "observation": {"kind": "gaussian", "sigma": 1.0, "harm_threshold": 1.0}})
    >>> import numpy as np
    >>> x = np.array([[0., 0., 0.], [1., 1., 1.]])
    >>> g.check(x, 1)["allowed"]
    False
    """

    def __init__(
        self,
        model: ModelLike,
        *,
        alpha: Any = None,
        delta: Any = None,
        prior_floor: Optional[float] = None,
        threshold: float = 0.01,
        estimator: str = "plausible_set",
        backend: str = "auto",
    ) -> None:
        if model is None:
            raise TypeError("a Guardrail needs a model")
        self._native = _gpubound.NativeGuardrail(
            alpha=_floats("alpha", alpha),
            delta=_floats("delta", delta),
            prior_floor=prior_floor,
            threshold=float(threshold),
            estimator=estimator,
            backend=backend,
            **_model_args(model),
        )
        # column name -> row of the native (columns, A) array
        self._rows = {name: i for i, name in enumerate(self._native.column_names)}

    def estimates(self, candidates: Any) -> GuardrailEstimates:
        """Every estimator for every candidate (an ``(A, d)`` array), before
        the step's outcome: a read-only mapping, like a dict, from the
        Parquet report's column names (``posterior_predictive``,
        ``cautious_theory``, ``plausible_set[alpha=...]``,
        ``ville_max[alpha=...]``, ``ville_sum[alpha=...]``) to NumPy arrays
        of length A; ``.array`` holds them all as one ``(columns, A)`` array.
        A C-contiguous, aligned float64 array is read as it is; anything
        else is converted first (``numpy.require(candidates, float64,
        "CA")``)."""
        return GuardrailEstimates(self._native.estimates(candidates), self._rows)

    def check(self, candidates: Any, action: int) -> Dict[str, Any]:
        """Whether ``action`` is allowed (its estimate at most C), its
        ``estimate``, the ``safest_candidate`` and its ``safest_estimate``."""
        allowed, estimate, safest, safest_estimate = self._native.check(candidates, int(action))
        return {
            "allowed": allowed,
            "estimate": estimate,
            "safest_candidate": safest,
            "safest_estimate": safest_estimate,
        }

    def observe(self, candidates: Any, action: int, outcome: Optional[float]) -> None:
        """The posterior update with the taken action's outcome (``None``: no
        update). An outcome no hypothesis can explain raises ``ValueError``
        and leaves the guardrail as it was."""
        self._native.observe(
            candidates, int(action), None if outcome is None else float(outcome)
        )

    def reset(self) -> None:
        """A new stream: back to the prior."""
        self._native.reset()

    @property
    def steps(self) -> int:
        """Steps observed in this stream."""
        return self._native.steps

    @property
    def estimator(self) -> str:
        return self._native.estimator

    @property
    def threshold(self) -> float:
        return self._native.threshold
