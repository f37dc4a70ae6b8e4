"""Each twin model alone on torch (frozen, channels-last as fa-run prepares it) and on
ONNX Runtime (its checked export), interleaved, at fa-run's CPU batch sizes; then the AU
model's variants (int8 on both, bf16 autocast) and ONNX Runtime's profile of the AU
model by operator type.

    python -m benchmarks.limits.backends [--rounds N]

Uses speed.py's twin store (~/.cache/fatools/bench/twin-store); exports are made there
once, as a run would.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time
import types
from pathlib import Path

CASES = {
    "au": (4, 224),
    "fer": (4, 260),
    "va": (8, 224),
    "align": (8, 120),
    "retinaface-mnet": (1, (1080, 1080)),
    "retinaface": (1, (608, 1080)),
}


def main(argv: list[str] | None = None) -> int:
    import numpy as np
    import torch

    from benchmarks.sides import twin_store
    from fatools.models import onnx_export
    from fatools.models.store import file_record
    from fatools.runtime.torch_engine import _prepare

    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.limits.backends", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    store = twin_store(None, ["mnet", "r50"])

    def timed(fn, x) -> float:
        start = time.perf_counter()
        fn(x)
        return time.perf_counter() - start

    for name, (batch, size) in CASES.items():
        path = store / name / "model.pt"
        detector = name.startswith("retinaface")
        h, w = (size, size) if isinstance(size, int) else size
        owner = types.SimpleNamespace(model=torch.jit.load(str(path)).eval(), device=torch.device("cpu"))
        fmt = _prepare(owner, True, False, name)
        onnx_file, info = onnx_export.ensure_export(
            path,
            file_record(name, store)["sha256"],
            (1, 3, 128, 128) if detector else (1, 3, h, w),
            detector,
            name,
        )
        session = onnx_export.session(onnx_file, 2)
        x = torch.randn(batch, 3, h, w) * (60 if detector else 1)

        # This round's model, format and session, bound now rather than looked up when called.
        def on_torch(t, owner=owner, fmt=fmt):
            with torch.inference_mode():
                return owner.model(fmt.apply(t))

        def on_onnx(t, session=session):
            return session.run(None, {"input": t.numpy()})

        on_torch(x), on_onnx(x)
        times = {"torch": [], "onnx": []}
        for _ in range(args.rounds):
            times["torch"].append(timed(on_torch, x))
            times["onnx"].append(timed(on_onnx, x))
        t, o = (1000 * float(np.median(v)) / batch for v in times.values())
        print(
            f"{name:16s} batch {batch} {h}x{w}: torch {t:7.1f} ms/item, ONNX Runtime {o:7.1f}, "
            f"torch/onnx {t / o:.2f}, export max diff {info['max_abs_diff']:.1e}",
            flush=True,
        )
    au_profile(store)
    return 0


def au_profile(store: Path) -> None:
    import numpy as np
    import onnxruntime as ort

    from fatools.models import onnx_export
    from fatools.models.store import file_record

    path, _ = onnx_export.ensure_export(
        store / "au" / "model.pt", file_record("au", store)["sha256"], (1, 3, 224, 224), False, "au"
    )
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = 2, 1
    options.enable_profiling = True
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    x = np.random.randn(4, 3, 224, 224).astype(np.float32)
    for _ in range(3):
        session.run(None, {"input": x})
    trace = session.end_profiling()
    by_op: collections.Counter = collections.Counter()
    with open(trace) as handle:
        events = json.load(handle)
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            by_op[event["args"]["op_name"]] += event["dur"]
    os.unlink(trace)
    total = sum(by_op.values())
    print("AU on ONNX Runtime, batch 4, share of kernel time by operator:")
    for op, micros in by_op.most_common(10):
        print(f"  {op:24s} {100 * micros / total:5.1f}%")


if __name__ == "__main__":
    sys.exit(main())
