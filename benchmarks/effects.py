"""How much fa-run's speed options change its outputs, measured on the benchmark clip.

    python -m benchmarks.effects [--frames 3] [--device cpu|cuda] [--json FILE]
                                 [--variants optimize,onnx,fp16,int8,int8-torch,bf16,det640]

The reference is fa-run with ``--no-optimize --backend torch`` (the models exactly as
facetorch loads them, float32).  Each variant runs on the same clip (the 1080p pan over
family4.jpg, every 5th frame) with the same models (compute twins and the real
RetinaFace-MobileNet0.25, ``benchmarks.speed``'s store), and its faces are matched
to the reference's per frame (IoU >= 0.5).  Reported per variant: faces found and
matched; the largest box and landmark shifts in pixels; the largest differences of
detection scores, AU probabilities, expression scores, valence/arousal and head pose;
how many faces changed their active AU set or their expression label, and how many
reference AU probabilities lay within 0.05 of the threshold (the chances a set had to
change).

The twins have random weights, so their probabilities sit near where real models'
might not; the differences are of the arithmetic, which is what the options change.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks import memory, sides

VARIANTS = {
    "optimize": {"optimize": True, "backend": "torch"},  # frozen TorchScript, channels-last
    "onnx": {"optimize": True, "backend": "onnx"},  # fa-run's CPU default (--backend auto)
    "fp16": {"optimize": True, "fp16": True},  # torch's precision: on torch
    "int8": {"optimize": True, "int8": True},  # CPU: the AU model, on ONNX Runtime's int8
    "int8-torch": {"optimize": True, "int8": True, "backend": "torch"},  # torch's dynamic int8 Linear
    "bf16": {
        "optimize": True,
        "bf16": True,
    },  # predictors under bf16 autocast (forced where the CPU lacks it)
    "det640": {"optimize": True, "det_size": 640},
}


def run_records(clip: Path, store: Path, device: str, frames: int, **options: Any) -> list[dict]:
    from fatools.run import analyze_video

    out = Path(tempfile.mkdtemp(prefix="fatools-effects-"))
    try:
        analyze_video(
            str(clip),
            str(out),
            sample_rate=sides.EVERY,
            max_frames=frames,
            detector="retinaface-mnet",
            models_dir=str(store),
            device=device,
            formats=("json",),
            **options,
        )
        with open(out / "frames.jsonl", encoding="utf-8") as handle:
            return [r for r in map(json.loads, handle) if r.get("type", "frame") == "frame"]
    finally:
        shutil.rmtree(out, ignore_errors=True)


def iou(a: list[float], b: list[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _max_abs(pairs: list[tuple[float, float]]) -> float:
    return max((abs(x - y) for x, y in pairs), default=0.0)


def compare(reference: list[dict], variant: list[dict]) -> dict:
    """Differences of matched faces, frame by frame."""
    by_frame = {r["frame"]: r for r in variant}
    diffs: dict[str, list] = {k: [] for k in ("box", "score", "landmarks", "au", "expression", "va", "pose")}
    counts = {
        "reference_faces": 0,
        "variant_faces": 0,
        "matched": 0,
        "au_active_changed": 0,
        "expression_label_changed": 0,
        "au_probs_near_threshold": 0,
    }
    for ref in reference:
        other = by_frame.get(ref["frame"], {"faces": []})
        ref_faces, var_faces = ref.get("faces") or [], other.get("faces") or []
        counts["reference_faces"] += len(ref_faces)
        counts["variant_faces"] += len(var_faces)
        for face in ref_faces:
            best = max(var_faces, key=lambda f: iou(face["box"], f["box"]), default=None)
            if best is None or iou(face["box"], best["box"]) < 0.5:
                continue
            counts["matched"] += 1
            diffs["box"] += list(zip(face["box"], best["box"], strict=True))
            diffs["score"].append((face["score"], best["score"]))
            if "landmarks3d" in face and "landmarks3d" in best:
                diffs["landmarks"] += [
                    (p[i], q[i])
                    for p, q in zip(face["landmarks3d"], best["landmarks3d"], strict=True)
                    for i in (0, 1)
                ]
            if "au" in face and "probs" in face["au"]:
                diffs["au"] += [(face["au"]["probs"][k], best["au"]["probs"][k]) for k in face["au"]["probs"]]
                counts["au_active_changed"] += face["au"]["active"] != best["au"]["active"]
                # How many chances the active set had to change: probabilities within 0.05 of the threshold.
                threshold = face["au"].get("threshold", 0.5)
                counts["au_probs_near_threshold"] += sum(
                    abs(v - threshold) < 0.05 for v in face["au"]["probs"].values()
                )
            if "expression" in face:
                scores = face["expression"]["scores"]
                diffs["expression"] += [(scores[k], best["expression"]["scores"][k]) for k in scores]
                counts["expression_label_changed"] += (
                    face["expression"]["label"] != best["expression"]["label"]
                )
            if "va" in face:
                diffs["va"] += [(face["va"][k], best["va"][k]) for k in ("valence", "arousal")]
            if "pose" in face:
                diffs["pose"] += [(face["pose"][k], best["pose"][k]) for k in ("yaw", "pitch", "roll")]
    result: dict[str, Any] = dict(counts)
    result.update({f"max_{key}_diff": round(_max_abs(pairs), 6) for key, pairs in diffs.items()})
    au = diffs["au"]
    result["mean_au_diff"] = round(sum(abs(x - y) for x, y in au) / len(au), 6) if au else 0.0
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.effects",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--frames", type=int, default=3, help="sampled frames (default 3)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--variants", default=",".join(VARIANTS), help=f"comma-separated, from {', '.join(VARIANTS)}"
    )
    parser.add_argument("--store", type=Path, help="twin store (default: speed.py's)")
    parser.add_argument("--work", type=Path, help="where the clip is kept (default: speed.py's)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)

    work = args.work or memory.default_work_dir()
    store = sides.twin_store(args.store, ["mnet"])
    clip = sides.make_clip(work, max(args.frames * sides.EVERY, 5), (1920, 1080), "main")
    # --bf16 is float32 on a CPU without native bfloat16 (it would be slower); here its
    # effect on outputs is what is measured, so it is applied anyway.
    os.environ["FATOOLS_FORCE_BF16"] = "1"
    reference = run_records(clip, store, args.device, args.frames, optimize=False, backend="torch")
    results = {}
    for name in [v.strip() for v in args.variants.split(",") if v.strip()]:
        if name not in VARIANTS:
            parser.error(f"unknown variant {name}; choose from {', '.join(VARIANTS)}")
        results[name] = compare(
            reference, run_records(clip, store, args.device, args.frames, **VARIANTS[name])
        )
        print(name, json.dumps(results[name]), flush=True)
    report = {
        "clip": str(clip),
        "frames": args.frames,
        "device": args.device,
        "reference": "--no-optimize --backend torch (models as facetorch loads them, float32)",
        "variants": results,
    }
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
