"""ONNX exports of the store's TorchScript models, made once and checked, for ONNX Runtime.

Each facetorch model file is exported with torch's TorchScript-based ONNX exporter
(``torch.onnx.export(..., dynamo=False)``: it takes a ``ScriptModule`` as it is, so no
model code changes), opset 17, with a dynamic batch axis (and dynamic height and width
for the detectors, whose input size follows the video).  The export lives beside its
source in the store (``fatools.models.derived``), named by a key of the source file's
sha256, the opset and the torch and onnx versions: a new model file or a new exporter
means a new export, never a stale one.

At export the ONNX model's outputs are compared with the TorchScript model's on
representative inputs: fixed-seed normal noise at the model's own input size, at two
batch sizes (two input sizes for a detector), scaled as the real inputs are (a
predictor's are normalised, about unit variance; a detector's are pixels minus the
mean, tens of units).  The export is kept only when every output agrees within
``TOLERANCE`` times the output's own scale (at least 1); the largest difference is
recorded and shown by ``fa-models list``.  A model that cannot be exported, or whose
export disagrees, is recorded as such (so later runs do not try again for minutes) and
runs on torch.  So does one whose export was damaged after its check (its record's
sha256, ``derived.damage``) or does not open in ONNX Runtime (``fatools.runtime.onnx_engine``):
``fa-models prepare NAME --force`` makes it again.

``--int8`` on ONNX Runtime is a second file made from the first:
``onnxruntime.quantization.quantize_dynamic`` (int8 weights per channel, uint8
activations quantised per call) of the MatMul nodes; its difference from the float32
export is recorded but not bounded (it changes outputs by design; measured in fa-run(1)).

The IR version: the onnx package writes its own newest IR version by default (onnx 1.23:
14), which an ONNX Runtime released beside it need not open yet (1.30 opens up to 13).
``supported_ir_version()`` is the newest both accept (found once by opening a one-node
model); a model built by hand takes it (``hand_made_model``), and an export or int8 file
written with a newer one is lowered to it (``fit_ir_version``) when its opsets allow.
"""

from __future__ import annotations

import functools
import logging
import re
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fatools.models import derived

log = logging.getLogger("fatools")

OPSET = 17
TOLERANCE = 1e-4
INPUT_NAME = "input"


def onnxruntime_available() -> bool:
    """Whether ONNX Runtime and the onnx package are installed (found, not imported:
    start-up pays for them only when a model is made or loaded)."""
    from importlib.util import find_spec

    return find_spec("onnxruntime") is not None and find_spec("onnx") is not None


@functools.cache
def supported_ir_version() -> int:
    """The newest ONNX IR version that the installed onnx writes and the installed ONNX
    Runtime opens: ``onnx.IR_VERSION`` or, where ONNX Runtime refuses that ("Unsupported
    model IR version: 14, max supported IR version: 13"), the newest it takes.  ONNX
    Runtime says its limit only in that error, so a one-node model is opened to find it
    (milliseconds, once a process)."""
    import onnx

    ir = int(onnx.IR_VERSION)
    while ir > 3:
        problem = _ir_problem(ir)
        if problem is None:
            return ir
        said = re.search(r"max supported IR version: (\d+)", problem)
        ir = int(said.group(1)) if said and int(said.group(1)) < ir else ir - 1
    return ir


def _ir_problem(ir_version: int) -> str | None:
    """Why ONNX Runtime refuses a one-node model of that IR version, or None."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    spec = [helper.make_tensor_value_info(name, TensorProto.FLOAT, [1]) for name in ("x", "y")]
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "probe", spec[:1], spec[1:])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=ir_version)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        return str(exc)
    return None


def hand_made_model(graph: Any, opset: int = OPSET) -> Any:
    """``onnx.helper.make_model`` of ``graph`` (default domain at ``opset``) at the IR
    version the installed ONNX Runtime opens, not the onnx package's newest: what every
    model fatools or its benchmarks build by hand goes through."""
    from onnx import helper

    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=supported_ir_version()
    )


def ir_version_of(path: str | Path) -> int:
    """The IR version of the ONNX file at ``path``: read from its first bytes (a
    serialised ModelProto starts with field 1, ``ir_version``), else from the whole file."""
    with open(path, "rb") as f:
        head = f.read(11)
    if head[:1] == b"\x08":
        value, shift = 0, 0
        for byte in head[1:]:
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value
    import onnx

    return onnx.load(str(path), load_external_data=False).ir_version


def fit_ir_version(path: str | Path) -> int | None:
    """Lower the IR version of the ONNX file at ``path`` to ``supported_ir_version()``
    when it is above it and the model's opsets allow (torch's exporter and ONNX Runtime's
    quantiser pick their own); the version it had when lowered, else None."""
    had = ir_version_of(path)
    supported = supported_ir_version()
    if had <= supported:
        return None
    import onnx
    from onnx import helper

    model = onnx.load(str(path))
    needed = helper.find_min_ir_version_for(list(model.opset_import), ignore_unknown=True)
    if needed > supported:
        return None  # it cannot be lowered: ONNX Runtime's own error says why it does not open
    model.ir_version = supported
    onnx.save(model, str(path))
    log.info(
        "%s: IR version %d lowered to %d, the newest this ONNX Runtime opens", Path(path).name, had, supported
    )
    return had


def _versions() -> dict[str, str]:
    """The exporter's versions (from package metadata: no import, so listing stays fast)."""
    from importlib import metadata

    return {"torch": metadata.version("torch"), "onnx": metadata.version("onnx")}


def onnx_path(model_file: str | Path, source_sha256: str, int8: bool = False) -> Path:
    """Where the (float32, or int8) export of ``model_file`` with that sha256 lives."""
    key = derived.key_of(source_sha256, OPSET, _versions())
    if int8:
        key = derived.key_of(key, "int8", _ort_version())
    return derived.derived_path(model_file, "model-int8" if int8 else "model", key, ".onnx")


def check_inputs(example: tuple[int, ...], detector: bool) -> list[Any]:
    """The representative inputs an export is checked on (see the module's doc)."""
    import torch

    generator = torch.Generator().manual_seed(0)
    _, channels, height, width = example
    if detector:
        shapes, scale = [(1, channels, height, width), (2, channels, height + 32, width + 64)], 60.0
    else:
        shapes, scale = [(1, channels, height, width), (3, channels, height, width)], 1.0
    return [torch.randn(shape, generator=generator) * scale for shape in shapes]


def _as_tuple(out: Any) -> tuple[str, tuple]:
    if isinstance(out, (tuple, list)):
        return ("list" if isinstance(out, list) else "tuple"), tuple(out)
    return "tensor", (out,)


# What torch's exporter says on every export of a facetorch ScriptModule, silenced by
# message (whatever category a torch version gives it), so that any other warning shows:
# the TorchScript-based exporter is deprecated in favour of torch.export's (it is the one
# that takes facetorch's ScriptModules unchanged), one of its helpers says the same, and a
# ScriptModule's forward has no Python signature for it to read the input names from.
_EXPORT_NOTICES = (
    r"You are using the legacy TorchScript-based ONNX export",
    r"The legacy ONNX export logic is deprecated",
    r"The feature will be removed\. Please remove usage of this function",
    r"no signature found for .*, skipping _decide_input_format",
)


def _export(module: Any, example: Any, target: Path, detector: bool) -> None:
    import torch

    from fatools.models.torchscript import quiet_torchscript

    axes = {0: "batch", 2: "height", 3: "width"} if detector else {0: "batch"}
    with quiet_torchscript(), warnings.catch_warnings():
        for message in _EXPORT_NOTICES:
            warnings.filterwarnings("ignore", message=message)
        arguments: dict[str, Any] = {
            "opset_version": OPSET,
            "input_names": [INPUT_NAME],
            "dynamic_axes": {INPUT_NAME: axes},
        }
        try:
            torch.onnx.export(module, (example,), str(target), dynamo=False, **arguments)
        except TypeError as exc:
            # Torch before 2.5 (the pinned stack's 2.3.1) has only this exporter and no
            # ``dynamo`` argument: passing it failed every export there.
            if "dynamo" not in str(exc):
                raise
            torch.onnx.export(module, (example,), str(target), **arguments)


def session(path: str | Path, threads: int | None = None) -> Any:
    """An ONNX Runtime CPU session of ``path`` with all graph optimisations."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Its worker threads spin while a run lasts (fast hand-offs between operators) but
    # stop when it ends: otherwise they keep spinning into the next model's run, the
    # crops and the decode thread, and on 2 cores a spinning thread is a core taken.
    options.add_session_config_entry("session.force_spinning_stop", "1")
    options.log_severity_level = 3  # errors only: its warnings are about graph details
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def open_problem(path: str | Path) -> str | None:
    """Why ONNX Runtime does not open ``path``, or None when it does."""
    try:
        session(path, 1)
    except Exception as exc:
        return ort_message(exc)
    return None


def ort_message(exc: BaseException) -> str:
    """ONNX Runtime's error as a short clause: its first line, without the "Load model
    from PATH failed:" our messages say already ("Protobuf parsing failed.")."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if "Load model from " in first and " failed:" in first:
        first = first.split(" failed:", 1)[1]
    return first.strip()[:200] or type(exc).__name__


def remake_hint(name: str, path: str | Path) -> str:
    """The command that makes the export at ``path`` of model ``name`` again."""
    int8 = " --int8" if Path(path).name.startswith("model-int8-") else ""
    return f"`fa-models prepare {name}{int8} --force` makes it again"


def _max_difference(module: Any, sess: Any, inputs: list[Any]) -> tuple[float, float, str, int]:
    """Largest |onnx - torch| over the inputs, its bound, and the outputs' kind and count."""
    import numpy as np
    import torch

    worst, bound, kind, count = 0.0, 0.0, "tensor", 1
    for x in inputs:
        with torch.inference_mode():
            kind, expected = _as_tuple(module(x))
        got = sess.run(None, {INPUT_NAME: x.numpy()})
        if len(got) != len(expected):
            raise ValueError(f"{len(got)} outputs, TorchScript gives {len(expected)}")
        count = len(expected)
        for out, ref in zip(got, expected, strict=True):
            ref = ref.float().numpy()
            if out.shape != ref.shape:
                raise ValueError(f"output shape {out.shape}, TorchScript gives {ref.shape}")
            worst = max(worst, float(np.abs(out - ref).max()) if out.size else 0.0)
            bound = max(bound, TOLERANCE * max(1.0, float(np.abs(ref).max()) if ref.size else 1.0))
    return worst, bound, kind, count


def build_export(
    model_file: str | Path, source_sha256: str, example: tuple[int, ...], detector: bool
) -> Callable[[Path], dict]:
    """The ``derived.ensure`` builder of a checked float32 export."""

    def build(tmp: Path) -> dict:
        import torch

        from fatools.models.torchscript import quiet_torchscript

        started = time.perf_counter()
        # Models may be built under inference mode (fa-run's analyzer is); the exporter
        # traces with autograd's machinery, which refuses inference tensors.
        with torch.inference_mode(False), torch.no_grad():
            with quiet_torchscript():
                module = torch.jit.load(str(model_file), map_location="cpu").eval()
            inputs = check_inputs(example, detector)
            _export(module, inputs[0], tmp, detector)
        lowered = fit_ir_version(tmp)
        worst, bound, kind, count = _max_difference(module, session(tmp), inputs)
        if not worst <= bound:
            raise ValueError(
                f"ONNX Runtime's outputs differ from TorchScript's by {worst:.3g} (more than {bound:.3g})"
            )
        return {
            "source_sha256": source_sha256,
            "opset": OPSET,
            **_versions(),
            "onnxruntime": _ort_version(),
            "max_abs_diff": worst,
            "tolerance": bound,
            "outputs": kind,
            "output_count": count,
            "checked_on": [list(x.shape) for x in inputs],
            "ir_version": ir_version_of(tmp),
            **({"ir_version_written": lowered} if lowered else {}),
            "seconds": round(time.perf_counter() - started, 1),
        }

    return build


def build_int8(
    fp32_file: Path, source_sha256: str, example: tuple[int, ...], detector: bool
) -> Callable[[Path], dict]:
    """The ``derived.ensure`` builder of the int8 (dynamic MatMul quantisation) file."""

    def build(tmp: Path) -> dict:
        import numpy as np
        from onnxruntime.quantization import QuantType, quantize_dynamic

        started = time.perf_counter()
        root_logger = logging.getLogger()
        level = root_logger.level
        # The quantiser logs advice on the root logger ("consider pre-processing"), meant
        # for people tuning static quantisation; dynamic quantisation needs none.
        root_logger.setLevel(logging.ERROR)
        try:
            # No warning filter: it says none today (onnxruntime 1.32), and a new one should show.
            quantize_dynamic(
                str(fp32_file),
                str(tmp),
                op_types_to_quantize=["MatMul"],
                per_channel=True,
                weight_type=QuantType.QInt8,
            )
        finally:
            root_logger.setLevel(level)
        lowered = fit_ir_version(tmp)
        inputs = check_inputs(example, detector)
        fp32, int8 = session(fp32_file), session(tmp)
        worst = 0.0
        for x in inputs:
            feed = {INPUT_NAME: x.numpy()}
            for a, b in zip(fp32.run(None, feed), int8.run(None, feed), strict=True):
                if not np.isfinite(b).all():
                    raise ValueError("the int8 model gives non-finite outputs")
                worst = max(worst, float(np.abs(a - b).max()) if a.size else 0.0)
        return {
            "source_sha256": source_sha256,
            "from": fp32_file.name,
            "onnxruntime": _ort_version(),
            "quantization": "dynamic int8 MatMul, per-channel weights",
            "max_abs_diff_vs_fp32": worst,
            "ir_version": ir_version_of(tmp),
            **({"ir_version_written": lowered} if lowered else {}),
            "seconds": round(time.perf_counter() - started, 1),
        }

    return build


def _ort_version() -> str:
    from importlib import metadata

    return metadata.version("onnxruntime")


def export_status(model_file: str | Path, source_sha256: str) -> dict:
    """What the store has of a model's ONNX export for today's exporter: ``state``
    (``ok``, ``failed``, ``damaged``: changed since it was made, ``none``), the max abs
    difference found at its check, the error."""
    try:
        path = onnx_path(model_file, source_sha256)
    except Exception:
        return {"state": "none"}
    info = derived.read_info(path)
    if info is None:
        return {"state": "none"}
    if info.get("error"):
        return {"state": "failed", "error": info["error"], "path": str(path)}
    if not path.is_file():
        return {"state": "none"}
    why = derived.damage(path, info)
    if why is not None:
        return {"state": "damaged", "error": why, "path": str(path)}
    return {
        "state": "ok",
        "max_abs_diff": info.get("max_abs_diff"),
        "tolerance": info.get("tolerance"),
        "path": str(path),
    }


def ensure_export(
    model_file: str | Path,
    source_sha256: str,
    example: tuple[int, ...],
    detector: bool,
    name: str,
    int8: bool = False,
) -> tuple[Path | None, dict]:
    """The checked export of a model (made now when missing), or None and why not."""
    path, info = derived.ensure(
        onnx_path(model_file, source_sha256),
        build_export(model_file, source_sha256, example, detector),
        what=f"the ONNX export of {name}",
        prepare_hint=f"fa-models prepare {name}",
    )
    if path is None or not int8:
        return path, info
    int8_path = onnx_path(model_file, source_sha256, int8=True)
    why = None if derived.made(int8_path) else derived.damage(path, info)
    if why is not None:  # else a damaged export would be recorded as an int8 form that cannot be made
        raise derived.DamagedError(
            f"its ONNX export {path} is damaged ({why}); {remake_hint(name, int8_path)}"
        )
    return derived.ensure(
        int8_path,
        build_int8(path, source_sha256, example, detector),
        what=f"the int8 ONNX export of {name}",
        prepare_hint=f"fa-models prepare {name} --int8",
    )


def example_of(name: str) -> tuple[tuple[int, ...], bool] | None:
    """The export's example input shape and whether the model is a detector, from the
    catalogue; None for a file that is not an exportable model (the 3DMM meta file)."""
    from fatools.models import catalogue

    entry = catalogue.get(name)
    if entry.filename != "model.pt":
        return None
    if entry.task == "detector":
        return (1, 3, 128, 128), True
    size = entry.input_size or 224
    return (1, 3, size, size), False


def prepare(name: str, root: str | Path | None = None, int8: bool = False, force: bool = False) -> list[Path]:
    """Make the checked ONNX export of model ``name`` (and its int8 form for ``int8``) in
    the store now, as a first run would (``fa-models prepare``); the paths made or found.

    A failed export is an error here (FatoolsError with its reason), not a fallback; so
    is one made before but damaged since (``--force`` makes it again).
    """
    from fatools.errors import FatoolsError
    from fatools.models import catalogue, store

    shape = example_of(name)
    if shape is None:
        return []
    model_file = store.model_path(name, root)
    sha256 = store.file_record(name, root)["sha256"]
    if force:
        derived.forget(onnx_path(model_file, sha256))
        derived.forget(onnx_path(model_file, sha256, int8=True))
    path, info = ensure_export(model_file, sha256, shape[0], shape[1], name, int8=False)
    if path is None:
        raise FatoolsError(f"{name}: cannot export to ONNX ({info.get('error')}); it runs on torch")
    _check_made(name, path, info)
    made = [path]
    if int8 and catalogue.get(name).task == "au":  # --int8 quantises the AU model only
        int8_path, info = ensure_export(model_file, sha256, shape[0], shape[1], name, int8=True)
        if int8_path is None:
            raise FatoolsError(f"{name}: cannot make its int8 ONNX form ({info.get('error')})")
        _check_made(name, int8_path, info)
        made.append(int8_path)
    return made


def _check_made(name: str, path: Path, info: dict) -> None:
    """A file prepare found rather than made may have been damaged since (a stat)."""
    why = derived.damage(path, info)
    if why is not None:
        raise derived.DamagedError(
            f"{path}: the ONNX export of {name} is damaged ({why}); {remake_hint(name, path)}"
        )


def _deriver(
    name: str, root: str | Path | None = None, *, int8: bool = False, force: bool = False
) -> list[Path]:
    if not onnxruntime_available():
        return []
    return prepare(name, root, int8=int8, force=force)


derived.register("onnx", _deriver)
