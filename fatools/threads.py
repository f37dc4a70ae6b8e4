"""How many CPU threads a fatools process uses: the CPUs it may use, not the machine's.

torch, OpenCV and FFmpeg each start a thread per core they see.  On a 64-core node where
SLURM gave the job 4 CPUs, or with several jobs per node, that oversubscribes the
machine.  ``available_cpus`` reads what this process may really use: its affinity mask
(what ``taskset`` and SLURM's CPU binding set), ``SLURM_CPUS_PER_TASK``, and the cgroup's
CPU quota (what containers and SLURM's cgroup plugin set: cgroup v2's ``cpu.max``, v1's
``cpu.cfs_quota_us``/``cpu.cfs_period_us``, in the process's own cgroup and each one
above it, as ``/proc/self/cgroup`` names it), the smallest of them; ``apply`` gives that
number to torch, OpenCV and the video decoder.

``available_cpus(cgroup_root=..., proc_cgroup=...)`` reads another cgroup tree and
membership file than the machine's (``CGROUP_ROOT``, ``PROC_CGROUP``): the tests' fake trees.
"""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")  # where the cgroup file systems are mounted
PROC_CGROUP = Path("/proc/self/cgroup")  # the process's cgroups, one "id:controllers:path" a line

_decode_threads = 0  # FFmpeg's thread count for decoding (0: FFmpeg's own choice)


def _own_cgroups(proc_cgroup: Path) -> dict[str, str]:
    """Controller -> the process's cgroup path ('' for cgroup v2's unified hierarchy)."""
    try:
        lines = proc_cgroup.read_text(encoding="ascii").splitlines()
    except (OSError, ValueError):
        return {}
    own = {}
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) == 3:
            for controller in parts[1].split(",") if parts[1] else [""]:
                own[controller] = parts[2]
    return own


def _from_own_up(base: Path, own: str | None) -> list[Path]:
    """``base``/``own`` and each directory above it up to ``base`` (``base`` alone when the
    process's path is unknown or not under it, as inside a container's cgroup namespace)."""
    start = base / own.strip("/") if own else base
    if not start.is_dir():
        start = base
    return [start, *[p for p in start.parents if p == base or base in p.parents]]


def _read_quota(directory: Path) -> float | None:
    """The CPUs a cgroup directory's quota allows (None: no quota, or no such file)."""
    try:
        v2 = directory / "cpu.max"
        if v2.is_file():
            quota, period = v2.read_text(encoding="ascii").split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        quota_us = int((directory / "cpu.cfs_quota_us").read_text(encoding="ascii"))
        period_us = int((directory / "cpu.cfs_period_us").read_text(encoding="ascii"))
        return None if quota_us <= 0 else quota_us / period_us
    except (OSError, ValueError, ZeroDivisionError):
        return None


def _cgroup_quota(cgroup_root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> int | None:
    """The smallest CPU quota of the process's cgroup and those above it, rounded up."""
    own = _own_cgroups(proc_cgroup)
    bases = [(cgroup_root, own.get(""))]  # v2 (a v1 root has no cpu.max: read as no quota)
    bases += [(cgroup_root / name, own.get("cpu")) for name in ("cpu", "cpu,cpuacct")]  # v1
    quotas = [
        q for base, path in bases if base.is_dir() for q in map(_read_quota, _from_own_up(base, path)) if q
    ]
    return max(1, math.ceil(min(quotas))) if quotas else None


def available_cpus(*, cgroup_root: Path | None = None, proc_cgroup: Path | None = None) -> int:
    """The CPUs this process may use (affinity, SLURM_CPUS_PER_TASK, cgroup quota).

    ``cgroup_root`` and ``proc_cgroup`` replace ``CGROUP_ROOT`` and ``PROC_CGROUP`` (tests)."""
    counts = []
    try:
        counts.append(len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        counts.append(os.cpu_count() or 1)
    slurm = os.environ.get("SLURM_CPUS_PER_TASK", "")
    if slurm.isdigit() and int(slurm) > 0:
        counts.append(int(slurm))
    quota = _cgroup_quota(cgroup_root or CGROUP_ROOT, proc_cgroup or PROC_CGROUP)
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
    # Only settable before torch's first parallel work: after that, keep what it has.
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(min(count, 4))
    cv2.setNumThreads(count)
    _decode_threads = count
    return count


def decode_threads() -> int:
    """FFmpeg's decoding threads (0 until ``apply`` ran: FFmpeg decides)."""
    return _decode_threads
