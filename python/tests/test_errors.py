"""Rust errors become Python exceptions: bad input → ValueError with the
command-line tool's message (file:line first), unreadable files → OSError
(its errno subclass), anything else → RuntimeError."""

import errno
import json
import os

import pytest

import gpubound

MODEL = {
    "type": "model",
    "hypotheses": {"kind": "grid", "k": 2, "d": 3},
    "observation": {"kind": "gaussian", "sigma": 1.0, "harm_threshold": 1.0},
}


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_valid_model_file_is_described(tmp_path):
    path = write(tmp_path, "model.json", json.dumps(MODEL))
    # {0,1}^3: 2**3 = 8 hypotheses.
    assert gpubound.describe_model(path) == (
        "grid {0..1}^3 (8 hypotheses, uniform prior); "
        "gaussian outcomes (σ = 1), harm = outcome > 1"
    )
    assert gpubound.describe_model(str(path)) == gpubound.describe_model(path)


def test_malformed_json_is_a_value_error_naming_file_and_line(tmp_path):
    path = write(tmp_path, "model.json", '{"type": "model",\n  "hypotheses": \n}')
    with pytest.raises(ValueError) as raised:
        gpubound.describe_model(path)
    assert str(raised.value).startswith(f"{path}:3: malformed JSON: ")


def test_an_invalid_model_is_a_value_error_naming_the_file(tmp_path):
    bad = dict(MODEL, observation={"kind": "gaussian", "sigma": -1.0, "harm_threshold": 1.0})
    path = write(tmp_path, "model.json", json.dumps(bad))
    with pytest.raises(ValueError) as raised:
        gpubound.describe_model(path)
    message = str(raised.value)
    assert message.startswith(f"{path}")
    assert "sigma" in message or "σ" in message


def test_a_log_line_of_another_type_is_a_value_error(tmp_path):
    path = write(tmp_path, "model.json", '{"type": "step", "action": 0, "outcome": 1.0}')
    with pytest.raises(ValueError, match="expected a model, found type step"):
        gpubound.describe_model(path)


def test_a_missing_file_is_file_not_found_with_its_name(tmp_path):
    path = tmp_path / "absent.json"
    with pytest.raises(FileNotFoundError) as raised:
        gpubound.describe_model(path)
    assert raised.value.errno == errno.ENOENT
    assert raised.value.filename == str(path)
    assert str(raised.value) == f"[Errno {errno.ENOENT}] {os.strerror(errno.ENOENT)}: '{path}'"


def test_a_folder_is_an_os_error(tmp_path):
    with pytest.raises(IsADirectoryError) as raised:
        gpubound.describe_model(tmp_path)
    assert raised.value.errno == errno.EISDIR
    assert isinstance(raised.value, OSError)


def test_a_bad_setting_is_a_value_error_with_the_cli_message():
    with pytest.raises(ValueError) as raised:
        gpubound.backend("fast")
    assert str(raised.value) == 'invalid setting: backend must be "auto", "gpu" or "cpu", not "fast"'


def test_no_gpu_adapter_is_a_runtime_error(monkeypatch):
    # DirectX 12 exists on no Linux machine: no adapter can be found.
    monkeypatch.setenv("WGPU_BACKEND", "dx12")
    with pytest.raises(RuntimeError, match="^GPU: no GPU adapter found"):
        gpubound.backend("gpu")
    # `auto` falls back to the CPU engine rather than failing.
    assert gpubound.backend("auto")["kind"] == "cpu"
    # And the list holds the CPU engine alone.
    assert [b["kind"] for b in gpubound.backends()] == ["cpu"]


def test_the_cpu_backend_names_its_threads():
    # rayon counts the cores this process may run on.
    threads = int(os.environ.get("RAYON_NUM_THREADS") or len(os.sched_getaffinity(0)))
    assert gpubound.backend("cpu") == {
        "kind": "cpu",
        "device": f"{threads} threads",
        "api": "",
        "driver": "",
    }


def test_backends_lists_the_cpu_first_and_marks_software_renderers():
    found = gpubound.backends()
    assert found[0]["kind"] == "cpu"
    assert found[0]["software"] is False
    for b in found[1:]:
        assert b["kind"] == "gpu"
        assert b["api"] in {"Vulkan", "Metal", "DirectX 12", "OpenGL", "WebGPU"}
        name = b["device"].lower()
        if "llvmpipe" in name or "lavapipe" in name:
            assert b["software"] is True


def test_every_public_function_is_documented():
    assert gpubound.__doc__ and "Bengio" in gpubound.__doc__
    for name in gpubound.__all__:
        assert getattr(gpubound, name).__doc__, name
    assert gpubound.version() == gpubound.__version__
    assert gpubound.__version__.count(".") == 2


def columnar_log(action_of_row_2=1):
    """A columnar log of two streams: "a" of two steps, "b" of one."""
    import pyarrow as pa

    table = pa.table(
        {
            "stream": ["a", "a", "b"],
            "step": pa.array([1, 2, 1], pa.int64()),
            "action": pa.array([0, action_of_row_2, 0], pa.int64()),
            "outcome": [0.5, 2.0, None],
            "candidates": pa.array(
                [[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], None, [[1.0, 1.0, 1.0]]],
                pa.list_(pa.list_(pa.float64())),
            ),
        }
    )
    return table.replace_schema_metadata({"gpubound.model": json.dumps(MODEL)})


def test_a_valid_columnar_log_is_counted():
    streams, steps, model = gpubound.check_log(columnar_log())
    assert (streams, steps) == (2, 3)
    assert model.startswith("grid {0..1}^3 (8 hypotheses")


def test_a_bad_row_is_a_value_error_naming_the_row():
    # Row 2 uses stream a's table of 2 candidates: action 5 is out of range.
    with pytest.raises(ValueError) as raised:
        gpubound.check_log(columnar_log(action_of_row_2=5), name="agent.arrow")
    assert str(raised.value).startswith("agent.arrow: row 2: action 5 is out of range")


def test_a_table_without_a_model_is_a_value_error_naming_it():
    table = columnar_log().replace_schema_metadata(None)
    with pytest.raises(ValueError, match="^<arrow>: .*model"):
        gpubound.check_log(table)


def test_an_unknown_column_is_a_value_error():
    table = columnar_log()
    table = table.append_column("true_param", pa_array_of_three()).replace_schema_metadata(
        table.schema.metadata
    )
    with pytest.raises(ValueError, match="true_param"):
        gpubound.check_log(table)


def pa_array_of_three():
    import pyarrow as pa

    return pa.array([1.0, 2.0, 3.0])
