"""ONNX models built by hand (benchmarks.rates' GEMM) and fatools' exports are written at
an IR version the installed ONNX Runtime opens: onnx's default is its own newest (onnx
1.23 writes 14), which the ONNX Runtime beside it may refuse (1.30 opens up to 13)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime  # noqa: F401  (dependencies of fatools: missing is a failure, not a skip)
import pytest
from onnx import TensorProto, helper

from fatools.models import onnx_export


@pytest.fixture(autouse=True)
def _fresh_cache():
    onnx_export.supported_ir_version.cache_clear()
    yield
    onnx_export.supported_ir_version.cache_clear()


def _identity_graph():
    spec = [helper.make_tensor_value_info(name, TensorProto.FLOAT, [2]) for name in ("x", "y")]
    return helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", spec[:1], spec[1:])


def test_the_hand_made_gemm_opens_and_multiplies_in_the_installed_onnxruntime():
    from benchmarks.rates import _ort_matmul

    session = _ort_matmul(4, 1)
    a, b = np.arange(16, dtype=np.float32).reshape(4, 4), np.eye(4, dtype=np.float32) * 2
    (c,) = session.run(None, {"A": a, "B": b})
    np.testing.assert_allclose(c, a @ b)


def test_the_supported_ir_version_is_the_newest_onnxruntime_opens():
    ir = onnx_export.supported_ir_version()
    assert 3 < ir <= onnx.IR_VERSION
    assert onnx_export._ir_problem(ir) is None
    if ir < onnx.IR_VERSION:
        assert "IR version" in onnx_export._ir_problem(ir + 1)
    assert onnx_export.hand_made_model(_identity_graph()).ir_version == ir


def test_the_search_takes_onnxruntimes_own_limit_from_its_error(monkeypatch):
    tried = []

    def problem(ir):  # what onnxruntime 1.30 says beside onnx 1.23
        tried.append(ir)
        return None if ir <= 13 else f"Unsupported model IR version: {ir}, max supported IR version: 13"

    monkeypatch.setattr(onnx, "IR_VERSION", 14)
    monkeypatch.setattr(onnx_export, "_ir_problem", problem)
    assert onnx_export.supported_ir_version() == 13 and tried == [14, 13]


def test_the_search_steps_down_when_the_error_names_no_limit(monkeypatch):
    monkeypatch.setattr(onnx, "IR_VERSION", 12)
    monkeypatch.setattr(
        onnx_export, "_ir_problem", lambda ir: None if ir <= 10 else "Protobuf parsing failed."
    )
    assert onnx_export.supported_ir_version() == 10


def test_a_file_written_at_a_newer_ir_is_lowered_where_its_opsets_allow(tmp_path, monkeypatch):
    newer = tmp_path / "newer.onnx"
    onnx.save(
        helper.make_model(_identity_graph(), opset_imports=[helper.make_opsetid("", 17)], ir_version=10),
        newer,
    )
    assert onnx_export.ir_version_of(newer) == 10
    monkeypatch.setattr(onnx_export, "supported_ir_version", lambda: 8)
    assert onnx_export.fit_ir_version(newer) == 10
    assert onnx_export.ir_version_of(newer) == onnx.load(str(newer)).ir_version == 8
    assert onnx_export.fit_ir_version(newer) is None  # already there
    assert onnx_export.open_problem(newer) is None
    # Opset 21 needs IR 10: such a model is left as it is (ONNX Runtime's error says why).
    needs10 = tmp_path / "needs10.onnx"
    onnx.save(
        helper.make_model(_identity_graph(), opset_imports=[helper.make_opsetid("", 21)], ir_version=10),
        needs10,
    )
    assert onnx_export.fit_ir_version(needs10) is None and onnx_export.ir_version_of(needs10) == 10
