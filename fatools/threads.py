"""How many CPU threads a fatools process uses: the CPUs it may use, not the machine's.

torch, OpenCV and FFmpeg each start a thread per core they see.  On a 64-core node where
SLURM gave the job 4 CPUs, or with several jobs per node, that oversubscribes the
machine.  ``available_cpus`` reads what this process may really use: its affinity mask
(what ``taskset`` and SLURM's CPU binding set), ``SLURM_CPUS_PER_TASK``, and the cgroup's
CPU quota (``cpu.max``, what containers and SLURM's cgroup plugin set), the smallest of
them; ``apply`` gives that number to torch, OpenCV and the video decoder.
"""

from __future__ import annotations

import math
import os

_decode_threads = 0  # FFmpeg's thread count for decoding (0: FFmpeg's own choice)


def _cgroup_quota() -> int | None:
    try:
        with open("/sys/fs/cgroup/cpu.max", encoding="ascii") as handle:
            quota, period = handle.read().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    return max(1, math.ceil(int(quota) / int(period)))


def available_cpus() -> int:
    """The CPUs this process may use (affinity, SLURM_CPUS_PER_TASK, cgroup quota)."""
    counts = []
    try:
        counts.append(len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        counts.append(os.cpu_count() or 1)
    slurm = os.environ.get("SLURM_CPUS_PER_TASK", "")
    if slurm.isdigit() and int(slurm) > 0:
        counts.append(int(slurm))
    quota = _cgroup_quota()
    if quota:
        counts.append(quota)
    return max(1, min(counts))


def apply(threads: int | None = None) -> int:
    """Use ``threads`` threads (default: ``available_cpus()``) in torch, OpenCV and decoding."""
    global _decode_threads
    count = threads or available_cpus()
    import cv2
    import torch

    torch.set_num_threads(count)
    try:
        torch.set_num_interop_threads(min(count, 4))
    except RuntimeError:  # only settable before torch's first parallel work; keep what it has
        pass
    cv2.setNumThreads(count)
    _decode_threads = count
    return count


def decode_threads() -> int:
    """FFmpeg's decoding threads (0 until ``apply`` ran: FFmpeg decides)."""
    return _decode_threads
