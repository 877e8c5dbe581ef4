"""Arrow in and out through the PyCapsule interface: the data comes back
equal, and neither direction copies the buffers."""

import polars as pl
import pyarrow as pa
import pytest

import gpubound
from gpubound import _gpubound


def sample_table() -> pa.Table:
    # Two batches, nulls, and the types a log has: integers, floats,
    # strings and lists of floats (candidate feature vectors).
    first = pa.record_batch(
        {
            "step": pa.array([0, 1, 2], pa.int64()),
            "outcome": pa.array([0.5, None, -1.25], pa.float64()),
            "stream": pa.array(["ep-1", "ep-1", None], pa.string()),
            "x": pa.array([[1.0, 0.0], [0.5, 0.25], []], pa.list_(pa.float64())),
        }
    )
    second = pa.record_batch(
        {
            "step": pa.array([3], pa.int64()),
            "outcome": pa.array([2.0], pa.float64()),
            "stream": pa.array(["ep-2"], pa.string()),
            "x": pa.array([[3.0]], pa.list_(pa.float64())),
        }
    )
    return pa.Table.from_batches([first, second])


def buffer_addresses(table: pa.Table) -> list:
    """The address of every data buffer of every chunk of every column."""
    out = []
    for column in table.columns:
        for chunk in column.chunks:
            out.extend(b.address for b in chunk.buffers() if b is not None)
    return out


def test_a_pyarrow_table_comes_back_equal_and_uncopied():
    table = sample_table()
    back = gpubound._arrow_roundtrip(table)
    assert isinstance(back, pa.Table)
    assert back.schema == table.schema
    assert back.equals(table)
    # Same batches, same buffers: the very memory pyarrow allocated.
    assert [c.num_chunks for c in back.columns] == [2, 2, 2, 2]
    assert buffer_addresses(back) == buffer_addresses(table)
    assert back.column("step").chunk(0).buffers()[1].address == (
        table.column("step").chunk(0).buffers()[1].address
    )


def test_a_record_batch_reader_comes_back_equal():
    table = sample_table()
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches())
    back = gpubound._arrow_roundtrip(reader)
    assert back.equals(table)
    assert buffer_addresses(back) == buffer_addresses(table)


def test_a_reader_fed_by_python_code_is_read_without_deadlock():
    # Rust reads the stream with the GIL released; a producer written in
    # Python takes it back for each batch.
    table = sample_table()

    def batches():
        yield from table.to_batches()

    reader = pa.RecordBatchReader.from_batches(table.schema, batches())
    assert gpubound._arrow_roundtrip(reader).equals(table)


def test_a_producer_error_becomes_a_value_error_with_its_message():
    schema = pa.schema({"a": pa.int64()})

    def batches():
        yield pa.record_batch({"a": [1]})
        raise RuntimeError("the log was cut at row 2")

    reader = pa.RecordBatchReader.from_batches(schema, batches())
    with pytest.raises(ValueError, match="the log was cut at row 2"):
        gpubound._arrow_roundtrip(reader)


def test_a_polars_data_frame_comes_back_equal_and_uncopied():
    frame = pl.DataFrame(
        {
            "step": [0, 1, 2],
            "outcome": [0.5, None, -1.25],
            "x": [[1.0, 0.0], [0.5], []],
        }
    )
    back = gpubound._arrow_roundtrip(frame)
    assert isinstance(back, pa.Table)
    assert back.column_names == ["step", "outcome", "x"]
    assert back.column("step").to_pylist() == [0, 1, 2]
    assert back.column("outcome").to_pylist() == [0.5, None, -1.25]
    assert back.column("x").to_pylist() == [[1.0, 0.0], [0.5], []]
    assert pl.from_arrow(back).equals(frame)
    # polars exports its own buffers: what comes back is that memory.
    direct = pa.table(frame)
    assert buffer_addresses(back) == buffer_addresses(direct)


def test_a_single_record_batch_is_read_through_arrow_c_array():
    batch = sample_table().to_batches()[0]
    back = gpubound._arrow_roundtrip(_ArrayOnly(batch))
    assert back.equals(pa.Table.from_batches([batch]))
    assert buffer_addresses(back) == buffer_addresses(pa.Table.from_batches([batch]))


class _ArrayOnly:
    """A producer with only ``__arrow_c_array__`` (no stream)."""

    def __init__(self, data):
        self.data = data

    def __arrow_c_array__(self, requested_schema=None):
        return self.data.__arrow_c_array__(requested_schema)


def test_a_table_without_rows_keeps_its_schema():
    table = pa.table({"a": pa.array([], pa.int32()), "b": pa.array([], pa.string())})
    back = gpubound._arrow_roundtrip(table)
    assert back.schema == table.schema
    assert back.num_rows == 0


def test_the_exported_stream_can_be_read_more_than_once():
    table = sample_table()
    stream = _gpubound._arrow_roundtrip(table)
    assert pa.table(stream).equals(table)
    assert pa.RecordBatchReader.from_stream(stream).read_all().equals(table)
    assert pa.schema(stream) == table.schema
    assert repr(stream).startswith("<ArrowStream [step: Int64, outcome: Float64, stream: Utf8, x: List")


def test_what_is_not_arrow_data_is_a_type_error():
    with pytest.raises(TypeError, match="not int"):
        gpubound._arrow_roundtrip(3)
    with pytest.raises(TypeError, match="not dict"):
        gpubound._arrow_roundtrip({"a": [1, 2]})


def test_a_single_array_is_not_a_table():
    with pytest.raises(ValueError, match="single array of type Int64"):
        gpubound._arrow_roundtrip(_ArrayOnly(pa.array([1, 2])))


def test_a_struct_array_with_null_rows_is_not_a_table():
    rows = pa.array([{"a": 1}, None], pa.struct([("a", pa.int64())]))
    with pytest.raises(ValueError, match="null rows"):
        gpubound._arrow_roundtrip(_ArrayOnly(rows))
