"""The record contract: lazy reading, line-numbered errors, pass-through, flushed writing."""

from __future__ import annotations

import io

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fatools.errors import RecordError
from fatools.records import (
    RecordWriter,
    frame_record,
    is_frame,
    is_header,
    read_paths,
    read_records,
)


def stream(*lines: bytes) -> io.BytesIO:
    return io.BytesIO(b"\n".join(lines) + b"\n")


def test_reads_lazily_and_passes_unknown_fields_through():
    data = stream(
        b'{"schema":1,"type":"video","video":"v.mp4","fps":25}',
        b'{"schema":1,"video":"v.mp4","frame":0,"t":0.0,"width":4,"height":3,"mine":{"x":[1,2]}}',
        b"",
        b"not json at all",
    )
    records = read_records(data, "in.jsonl")
    header = next(records)
    frame = next(records)  # the bad line 4 is not read yet: reading is lazy
    assert is_header(header) and not is_frame(header)
    assert is_frame(frame) and frame["mine"] == {"x": [1, 2]}
    with pytest.raises(RecordError, match=r"in\.jsonl:4: malformed JSON record"):
        next(records)


def test_skip_logs_and_goes_on(caplog):
    data = stream(b'{"frame":1}', b"[1,2]", b"{bad", b'{"frame":2}')
    with caplog.at_level("WARNING", logger="fatools"):
        frames = [r["frame"] for r in read_records(data, "x", on_error="skip")]
    assert frames == [1, 2]
    assert "x:2: expected a JSON object" in caplog.text and "x:3:" in caplog.text


def test_newer_schema_is_refused():
    with pytest.raises(RecordError, match="newer than this fatools"):
        list(read_records(stream(b'{"schema":99,"frame":0}')))


def test_missing_records_file_names_it(tmp_path):
    with pytest.raises(RecordError, match=r"nope\.jsonl: cannot open records"):
        list(read_paths([str(tmp_path / "nope.jsonl")]))


class CountingStream(io.BytesIO):
    flushes = 0

    def flush(self):
        self.flushes += 1
        super().flush()


def test_writer_flushes_every_line_and_serialises_numpy():
    import numpy as np

    out = CountingStream()
    writer = RecordWriter(out)
    writer.write(frame_record("v.mp4", 3, 0.12, 640, 480, faces=[{"box": np.array([1.5, 2, 3, 4])}]))
    writer.write({"schema": 1, "frame": 4, "score": np.float32(0.5)})
    assert out.flushes == 2
    lines = out.getvalue().splitlines()
    assert orjson.loads(lines[0])["faces"][0]["box"] == [1.5, 2, 3, 4]
    assert orjson.loads(lines[1])["score"] == 0.5


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(st.dictionaries(st.text(max_size=10), json_values, max_size=6))
def test_round_trip_any_record(extra):
    record = {**extra, **frame_record("v.mp4", 1, 0.04, 2, 2)}
    out = io.BytesIO()
    RecordWriter(out).write(record)
    out.seek(0)
    assert list(read_records(out)) == [record]
