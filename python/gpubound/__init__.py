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
from typing import TYPE_CHECKING, Any, Dict, List, Tuple, Union

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
