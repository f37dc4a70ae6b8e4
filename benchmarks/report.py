"""What the speed benchmark reports: medians and ratios of the rounds, the ceiling, the
machine, the targets and the printed table."""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import subprocess
from pathlib import Path
from typing import Any

from benchmarks import memory

HERE = Path(__file__).resolve().parent

TARGETS = {
    "overhead": 1.15,  # fa-run wall / sum of model forward time, at most
    "speedup_exact": 1.8,  # fa-run --facetorch-exact / seed, at least
    "speedup_default": 2.2,  # fa-run defaults / seed, at least
    "memory": 1.10,  # 10-minute / 1-minute peak RSS, at most
    "au_of_peak": 0.5,  # the AU model's GFLOP/s in fa-run defaults / the GEMM peak, at least
    "r50_vs_torch": 1.0,  # ResNet-50 case: fa-run defaults / defaults on torch (--torch), at least
}
GPU_TARGETS = {  # evaluated on CUDA only
    "fps_every_frame": 200.0,  # fa-run defaults, sampled frames/s with --every 1, at least
    "speedup": 20.0,  # fa-run defaults / seed on the same GPU, at least
    "decode_bound": 0.9,  # fa-run frames/s / iter_frames' sampled frames/s (--every > 1), at least
}


def nth(every: int) -> str:
    """``every 5th``, ``every 2nd``, ``every frame``..."""
    if every == 1:
        return "every frame"
    suffix = "th" if every % 100 in (11, 12, 13) else {1: "st", 2: "nd", 3: "rd"}.get(every % 10, "th")
    return f"every {every}{suffix}"


def fatools_decode_label(every: int) -> str:
    return f"fatools iter_frames ({nth(every)}, BGR pixels)"


def summarise(runs: list[dict], names: list[str], rounds: int) -> dict:
    by = {(run["side"], run["round"]): run for run in runs}
    out: dict[str, Any] = {"runs": runs, "sides": {}}
    for name in names:
        mine = [by[(name, r)] for r in range(rounds)]
        out["sides"][name] = {
            "fps_median": round(statistics.median(run["fps"] for run in mine), 4),
            "faces_per_s_median": round(statistics.median(run["faces_per_s"] for run in mine), 4),
            "wall_s_median": round(statistics.median(run["wall_s"] for run in mine), 3),
            "frames": mine[0]["frames"],
            "faces": mine[0]["faces"],
            "overhead_median": _median([run["overhead"] for run in mine]),
            "stages_median": _median_stages([run["stages"] for run in mine]),
        }
    for name in names:
        if name == "seed":
            continue
        ratios = [by[(name, r)]["fps"] / by[("seed", r)]["fps"] for r in range(rounds)]
        out["sides"][name]["speedup_per_round"] = [round(x, 3) for x in ratios]
        out["sides"][name]["speedup_median"] = round(statistics.median(ratios), 3)
        # The ratio this side would reach if nothing but its models ran (no decoding, no
        # pre/post-processing, no tracking or writing): the models' own floor.
        ceilings = [
            by[(name, r)]["frames"] / by[(name, r)]["forward_s"] / by[("seed", r)]["fps"]
            for r in range(rounds)
            if by[(name, r)]["forward_s"]
        ]
        out["sides"][name]["speedup_ceiling_median"] = (
            round(statistics.median(ceilings), 3) if ceilings else None
        )
        # Per face too: a side that finds a face more or less does more or less work.
        per_face = [by[(name, r)]["faces_per_s"] / by[("seed", r)]["faces_per_s"] for r in range(rounds)]
        out["sides"][name]["speedup_per_face_median"] = round(statistics.median(per_face), 3)
        seed_counts = by[("seed", 0)]["faces_per_frame"]
        mine = by[(name, 0)]["faces_per_frame"]
        out["sides"][name]["frames_with_other_face_count_than_seed"] = sum(
            a != b for a, b in zip(seed_counts, mine, strict=True)
        )
    return out


def _median(values: list[float | None]) -> float | None:
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 3) if values else None


def _median_stages(all_stats: list[dict]) -> dict:
    labels = sorted({label for stats in all_stats for label in stats})
    result = {}
    for label in labels:
        rows = [stats[label] for stats in all_stats if label in stats]
        result[label] = {
            "seconds": round(statistics.median(r["seconds"] for r in rows), 3),
            "calls": rows[0]["calls"],
            "items": rows[0]["items"],
        }
    return result


def machine() -> dict:
    import torch

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    with contextlib.suppress(Exception):  # metadata is a nicety
        from importlib.metadata import version

        info["facetorch"] = version("facetorch")
        info["fatools"] = version("fatools")
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    try:  # which fatools was measured: the commit, and whether its library had local changes
        head = subprocess.run(
            ["git", "-C", str(HERE), "log", "-1", "--format=%h %cI"],
            check=False,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(HERE), "status", "--porcelain", "--untracked-files=no", "--", "../fatools"],
            check=False,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        if head:
            info["commit"] = head + (" + uncommitted changes in fatools/" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def table(result: dict) -> str:
    lines = []
    gpu = (
        f" ({result['machine']['gpu']})"
        if result["device"].startswith("cuda") and "gpu" in result["machine"]
        else ""
    )
    lines.append(
        f"fatools speed benchmark, {result['date']}, {result['machine']['cpu']} "
        f"({result['machine']['cores']} cores), device {result['device']}{gpu}, "
        f"commit {result['machine'].get('commit', '?')}"
    )
    for key, case in result["cases"].items():
        sides = case["sides"]
        width = max([10] + [len(name) + 2 for name in sides])
        lines.append("")
        lines.append(f"== {key}: {case['description']}")
        lines.append(
            f"{'side':<{width}}{'frames/s':>10}{'vs seed':>9}{'faces/s':>9}{'vs seed':>9}{'wall s':>9}"
            f"{'faces':>7}{'overhead':>10}{'ceiling':>9}"
        )
        for name, row in sides.items():
            speed = f"{row['speedup_median']:.2f}x" if "speedup_median" in row else ""
            per_face = f"{row['speedup_per_face_median']:.2f}x" if "speedup_per_face_median" in row else ""
            over = f"{row['overhead_median']:.2f}x" if row.get("overhead_median") else ""
            ceiling = f"{row['speedup_ceiling_median']:.2f}x" if row.get("speedup_ceiling_median") else ""
            lines.append(
                f"{name:<{width}}{row['fps_median']:>10.3f}{speed:>9}{row['faces_per_s_median']:>9.3f}{per_face:>9}"
                f"{row['wall_s_median']:>9.2f}{row['faces']:>7}{over:>10}{ceiling:>9}"
            )
        lines.append("  (overhead: wall time / sum of the models' forward time in the same run;")
        lines.append(
            "   ceiling: the 'vs seed' ratio if the side's models were all it ran, median over rounds)"
        )
        for name, row in sides.items():
            lines.append(f"  where {name}'s time goes (median seconds per run):")
            for label, stat in row["stages_median"].items():
                per = ""
                if stat["items"]:
                    unit = "frame" if label.startswith("retinaface") else "face"
                    per = f"  {1000 * stat['seconds'] / stat['items']:7.1f} ms/{unit}, {stat['calls']} calls"
                lines.append(f"    {label:<48}{stat['seconds']:8.2f}{per}")
    if "gemm" in result:
        gemm = result["gemm"]
        lines.append("")
        lines.append(
            f"== float32 GEMM {gemm['n']}^3, {gemm['threads']} threads (GFLOP/s, best of runs): "
            + ", ".join(f"{k} {v:.0f}" for k, v in gemm["gflops"].items())
            + f"; peak {gemm['peak_gflops']:.0f}"
        )
    for key, case in result["cases"].items():
        if not case.get("rates"):
            continue
        lines.append(f"== {key}: models' achieved GFLOP/s (FLOPs per item x items / forward seconds)")
        for side, models in case["rates"].items():
            cells = [
                f"{name} {row['gflop_per_item']:.2f} GFLOP, {row['gflops']:.0f} GFLOP/s"
                + (f" ({100 * row['of_peak']:.0f}%)" if row.get("of_peak") else "")
                for name, row in models.items()
            ]
            lines.append(f"  {side}: " + "; ".join(cells))
    if "decode" in result:
        lines.append("")
        lines.append("== decoding the 1080p clip (median seconds)")
        for name, value in result["decode"].items():
            lines.append(f"  {name:<52}{value:8.3f}")
    if "decode_bound" in result:
        bound = result["decode_bound"]
        lines.append(
            f"  {'decode-bound: sampled frames/s of iter_frames':<52}{bound['decode_fps'] or 0:8.3f}"
        )
        for name, ratio in bound["ratio"].items():
            lines.append(f"  {'fa-run ' + name + ' frames/s / decode-bound':<52}{ratio:8.3f}")
    if "memory" in result:
        lines.append("")
        lines.append("== " + memory.report(result["memory"]))
    lines.append("")
    lines.append("== targets")
    for name, row in result["targets"].items():
        lines.append(f"  {name:<44}{row['measured']!s:>8}  target {row['target']:<10} {row['verdict']}")
    return "\n".join(lines)


def targets(result: dict) -> dict:
    out = {}
    mnet = result["cases"].get("mnet", {}).get("sides", {})

    def verdict(value: float | None, target: float, at_most: bool, missing: str = "not measured") -> dict:
        if value is None:
            return {"measured": None, "target": f"{'<=' if at_most else '>='} {target}", "verdict": missing}
        ok = value <= target if at_most else value >= target
        margin = value / target
        return {
            "measured": value,
            "target": f"{'<=' if at_most else '>='} {target}",
            "verdict": ("met" if ok else "MISSED") + f" ({margin:.2f} of target)",
        }

    out["pipeline overhead, fa-run defaults (wall/forward)"] = verdict(
        mnet.get("default", {}).get("overhead_median"), TARGETS["overhead"], True
    )
    out["pipeline overhead, fa-run exact (wall/forward)"] = verdict(
        mnet.get("exact", {}).get("overhead_median"), TARGETS["overhead"], True
    )
    out["fa-run --facetorch-exact vs seed"] = verdict(
        mnet.get("exact", {}).get("speedup_median"), TARGETS["speedup_exact"], False
    )
    out["fa-run defaults vs seed"] = verdict(
        mnet.get("default", {}).get("speedup_median"), TARGETS["speedup_default"], False
    )
    au = result["cases"].get("mnet", {}).get("rates", {}).get("default", {}).get("au", {})
    out["AU model GFLOP/s / GEMM peak, fa-run defaults"] = verdict(
        au.get("of_peak"), TARGETS["au_of_peak"], False
    )
    r50 = result["cases"].get("r50", {}).get("sides", {})
    if "default-torch" in r50:
        ratio = (
            r50["default"]["wall_s_median"]
            and r50["default-torch"]["wall_s_median"] / r50["default"]["wall_s_median"]
        )
        out["ResNet-50 case: defaults vs defaults on torch"] = verdict(
            round(ratio, 3), TARGETS["r50_vs_torch"], False
        )
    mem = result.get("memory", {})
    out["peak RSS 10-min / 1-min"] = verdict(mem.get("ratio_10min_to_1min"), TARGETS["memory"], True)
    if result["device"].startswith("cuda"):
        every_frame = result["clip"]["every"] == 1
        bound = result.get("decode_bound", {}).get("ratio", {})
        labels = {"default": "fa-run defaults", "default-fp16": "fa-run defaults fp16"}
        for name in ["default"] + (["default-fp16"] if "default-fp16" in mnet else []):
            label, row = labels[name], mnet.get(name, {})
            out[f"{label} frames/s when sampling every frame"] = verdict(
                row.get("fps_median") if every_frame else None,
                GPU_TARGETS["fps_every_frame"],
                False,
                "not measured (needs --every 1)",
            )
            out[f"{label} vs seed on the same GPU"] = verdict(
                row.get("speedup_median"), GPU_TARGETS["speedup"], False
            )
            if name in bound:
                out[f"{label} frames/s / decode-bound frames/s"] = verdict(
                    bound[name], GPU_TARGETS["decode_bound"], False
                )
    return out


def decode_bound(result: dict) -> dict:
    """fa-run's sampled frames/s against the rate at which fatools' iter_frames alone decodes and
    samples the same clip (its median seconds in ``result["decode"]``; the sampled frames are the
    frames fa-run analysed)."""
    sides = result["cases"]["mnet"]["sides"]
    seconds = result["decode"][fatools_decode_label(result["clip"]["every"])]
    sampled = sides["default"]["frames"]
    decode_fps = sampled / seconds if seconds else None
    out: dict[str, Any] = {
        "sampled_frames": sampled,
        "decode_s": seconds,
        "decode_fps": round(decode_fps, 3) if decode_fps else None,
        "fps": {},
        "ratio": {},
    }
    for name in ("default", "default-fp16"):
        if name in sides and decode_fps:
            out["fps"][name] = sides[name]["fps_median"]
            out["ratio"][name] = round(sides[name]["fps_median"] / decode_fps, 3)
    return out
