"""Type stubs of the native module (the Rust code); use the package
``gpubound``, which documents each function."""

from typing import Any, Dict, List, Optional, Tuple

def version() -> str: ...
def backends() -> List[Dict[str, Any]]: ...
def backend(choice: str = "auto") -> Dict[str, Any]: ...
DEFAULT_REDRAW_ESS: float

def describe_model(path: str) -> str: ...
def describe_sampler(path: str) -> Tuple[str, int]: ...
def check_log(data: Any, name: str = "<arrow>") -> Tuple[int, int, str]: ...
def folder_files(dir: str) -> List[str]: ...
def _arrow_roundtrip(data: Any) -> ArrowStream: ...

class ArrowStream:
    """Arrow data from Rust: pass it to ``pyarrow.table(...)``,
    ``polars.from_arrow(...)`` or any consumer of the Arrow PyCapsule
    interface. Tables are exported again at each request (sharing their
    buffers); a stream is read once."""

    def __arrow_c_stream__(self, requested_schema: Optional[object] = None) -> object: ...
    def __arrow_c_schema__(self) -> object: ...

def audit(
    log: Any,
    *,
    model_json: Optional[str] = None,
    model_path: Optional[str] = None,
    alpha: List[float] = ...,
    delta: List[float] = ...,
    prior_floor: Optional[float] = None,
    thresholds: List[float] = ...,
    backend: str = "auto",
    shared_world: bool = False,
    skip_unexplained: bool = False,
    input_format: Optional[str] = None,
    html: bool = True,
    name: str = "<arrow>",
    report_path: Optional[str] = None,
    top: int = 10,
    sampler: Optional[str] = None,
    samples: Optional[int] = None,
    seed: int = 1,
    redraw_ess: Optional[float] = None,
    stream_indices: Optional[List[int]] = None,
) -> AuditResult: ...
def report_schema(
    *,
    model_json: str,
    alpha: List[float] = ...,
    delta: List[float] = ...,
    prior_floor: Optional[float] = None,
    thresholds: List[float] = ...,
    sampled: bool = False,
) -> ArrowStream: ...
def summarise_report(
    rows: Any,
    *,
    model_json: str,
    alpha: List[float] = ...,
    delta: List[float] = ...,
    prior_floor: Optional[float] = None,
    thresholds: List[float] = ...,
    top: int = 10,
    name: str = "<report>",
    sampling: Optional[str] = None,
) -> str: ...
def merge_summaries(parts: List[str], *, log: str, seconds: float, top: int = 10) -> str: ...

class AuditResult:
    def steps(self) -> ArrowStream: ...
    def summary_json(self) -> str: ...
    def summary_text(self) -> str: ...
    def write_html(self, path: str) -> None: ...

class NativeGuardrail:
    def __init__(
        self,
        *,
        model_json: Optional[str] = None,
        model_path: Optional[str] = None,
        alpha: List[float] = ...,
        delta: List[float] = ...,
        prior_floor: Optional[float] = None,
        threshold: float = 0.01,
        estimator: str = "plausible_set",
        backend: str = "auto",
    ) -> None: ...
    # (columns, A) float64 array, rows in column_names' order; candidates: an
    # (A, d) array-like (a C-contiguous float64 array is read in place)
    def estimates(self, candidates: Any) -> Any: ...
    @property
    def column_names(self) -> Tuple[str, ...]: ...
    def check(self, candidates: Any, action: int) -> Tuple[bool, float, int, float]: ...
    def observe(self, candidates: Any, action: int, outcome: Optional[float] = None) -> None: ...
    def reset(self) -> None: ...
    @property
    def steps(self) -> int: ...
    @property
    def estimator(self) -> str: ...
    @property
    def threshold(self) -> float: ...
