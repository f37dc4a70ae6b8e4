"""How close the models come to the CPU's float32 rate: a GEMM microbenchmark for the
peak, FLOPs per model call counted by torch, and each model's achieved GFLOP/s.

* **peak**: the best rate of a 2048x2048x2048 float32 matrix product through each
  library there is here (torch's MKL, NumPy's OpenBLAS, ONNX Runtime's MLAS), best of
  several runs at the benchmark's thread count: what this CPU does when the work is
  all large GEMMs.  A library's own choice of kernels (MKL runs AVX2 code on AMD CPUs
  with AVX-512) shows as its lower figure beside the others';
* **FLOPs**: ``torch.utils.flop_counter.FlopCounterMode`` over one forward of each
  model's TorchScript file (batch 1, the model's input size; the detector at the side's
  input size), so ONNX Runtime's runs are counted the same way: the same arithmetic;
* **achieved**: FLOPs per item times items over the model's measured forward seconds.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

GEMM_N = 2048


def gemm_peak(threads: int, repeats: int = 6) -> dict:
    """GFLOP/s of an N^3 float32 matrix product, per library and the best of them."""
    import torch

    n = GEMM_N
    flop = 2.0 * n**3
    a, b = torch.randn(n, n), torch.randn(n, n)
    an, bn = a.numpy(), b.numpy()

    def best(fn: Any) -> float:
        fn()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return round(flop / min(times) / 1e9, 1)

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        rates = {"torch (MKL)": best(lambda: a @ b), "numpy": best(lambda: an @ bn)}
    finally:
        torch.set_num_threads(previous)
    session = _ort_matmul(n, threads)
    if session is not None:
        rates["onnxruntime (MLAS)"] = best(lambda: session.run(None, {"A": an, "B": bn}))
    return {"n": n, "threads": threads, "gflops": rates, "peak_gflops": max(rates.values())}


def _ort_matmul(n: int, threads: int) -> Any:
    try:
        import onnxruntime as ort
        from onnx import TensorProto, helper
    except ImportError:
        return None
    from fatools.models.onnx_export import hand_made_model

    spec = [helper.make_tensor_value_info(name, TensorProto.FLOAT, [n, n]) for name in ("A", "B", "C")]
    graph = helper.make_graph([helper.make_node("MatMul", ["A", "B"], ["C"])], "gemm", spec[:2], spec[2:])
    # At the IR version this ONNX Runtime opens: onnx's default may be newer (onnx 1.23
    # writes 14, onnxruntime 1.30 opens up to 13).
    model = hand_made_model(graph, opset=17)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def model_gflop(analyzer: Any, width: int, height: int) -> dict[str, float]:
    """GFLOP of one item (a frame for the detector, a face for a predictor) per store name."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from fatools.geometry import detector_geometry
    from fatools.models.torchscript import quiet_torchscript

    detect = analyzer.options.detect
    geo = detector_geometry(width, height, detect.det_size, detect.square_pad)
    owners = [(analyzer.detector.face_detector, (1, 3, geo.det_height, geo.det_width))]
    for task, predictor in analyzer.predictors.predictors.items():
        size = analyzer.predictors.sizes[task]
        owners.append((predictor, (1, 3, size, size)))
    out: dict[str, float] = {}
    for owner, shape in owners:
        path = Path(str(owner.path_local))
        with quiet_torchscript():
            module = torch.jit.load(str(path), map_location="cpu").eval()
        with FlopCounterMode(display=False) as counter, torch.inference_mode():
            module(torch.zeros(shape))
        out[path.parent.name] = round(counter.get_total_flops() / 1e9, 3)
    return out


def achieved(stages: dict, gflop: dict[str, float], peak: float | None) -> dict[str, dict]:
    """Each timed model's GFLOP/s (and fraction of ``peak``) from a side's median stages."""
    out = {}
    for name, per_item in gflop.items():
        stat = stages.get(name)
        if not stat or not stat.get("seconds") or not stat.get("items"):
            continue
        rate = per_item * stat["items"] / stat["seconds"]
        out[name] = {
            "gflop_per_item": per_item,
            "gflops": round(rate, 1),
            "of_peak": round(rate / peak, 3) if peak else None,
        }
    return out
