"""The examples/ of running fatools over a study, run for real: make -j2, GNU parallel -j2,
and a SLURM array on a single-node cluster the test starts (and stops) itself, with a task
killed mid-video and the array resubmitted.  Under CI=true none of them may skip."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import slurm_cluster
from conftest import require
from fatools.inputs import shard
from test_batch import clip

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
BIN = Path(sys.executable).parent
LENGTHS = {"a": 12, "b": 30, "c": 18, "d": 240}  # d is long enough to be killed mid-video


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("study")
    for name, frames in LENGTHS.items():
        clip(root / "videos" / f"{name}.mp4", frames)
    (root / "videos.txt").write_text("".join(f"{root / 'videos' / name}.mp4\n" for name in LENGTHS))
    return root


def env(store: Path) -> dict:
    return {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "FATOOLS_MODELS": str(store)}


def table(path: Path) -> list[dict]:
    """The study table without the column that names where results were written."""
    with open(path, newline="", encoding="utf-8") as handle:
        return [{k: v for k, v in row.items() if k != "output_dir"} for row in csv.DictReader(handle)]


@pytest.fixture(scope="module")
def reference(study, standin_store, tmp_path_factory) -> list[dict]:
    """One fa-run over the whole list, uninterrupted: the table every scheduler must give."""
    out = tmp_path_factory.mktemp("reference")
    proc = subprocess.run(["fa-run", "--from", study / "videos.txt", "-o", out, "--every", "2", "-f", "csv"],
                          env=env(standin_store), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    subprocess.run(["fa-collect", out, "-o", out / "study.csv"], env=env(standin_store), check=True, timeout=120)
    rows = table(out / "study.csv")
    assert [r["status"] for r in rows if r["level"] == "video"] == ["complete"] * len(LENGTHS)
    return rows


def test_make_pattern_rule_is_incremental(study, standin_store, tmp_path, reference):
    require(shutil.which("make") is not None, "make not installed")
    work = tmp_path / "make"
    work.mkdir()
    shutil.copy(EXAMPLES / "make" / "Makefile", work / "Makefile")
    shutil.copytree(study / "videos", work / "videos")
    variables = ["FA_RUN_OPTIONS=--every 2 -f csv"]
    first = subprocess.run(["make", "-j2", *variables], cwd=work, env=env(standin_store), capture_output=True,
                           text=True, timeout=900)
    assert first.returncode == 0, first.stderr
    assert len(re.findall(r"^fa-run videos/", first.stdout, re.M)) == len(LENGTHS)
    rows = table(work / "results" / "study.csv")
    assert [r["status"] for r in rows if r["level"] == "video"] == ["complete"] * len(LENGTHS)
    assert (work / "results" / "index.html").read_text().count("<tr><td") == len(LENGTHS)
    assert [{k: v for k, v in r.items() if k != "input"} for r in rows] == \
        [{k: v for k, v in r.items() if k != "input"} for r in reference]
    time.sleep(1.1)  # make compares modification times in seconds on some file systems
    os.utime(work / "videos" / "c.mp4")
    again = subprocess.run(["make", "-j2", *variables], cwd=work, env=env(standin_store), capture_output=True,
                           text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert re.findall(r"^fa-run (\S+)", again.stdout, re.M) == ["videos/c.mp4"]  # only the touched video


def test_gnu_parallel_one_liner(study, standin_store, tmp_path, reference):
    require(shutil.which("parallel") is not None, "GNU parallel not installed (make test installs it)")
    readme = (EXAMPLES / "parallel" / "README.md").read_text()
    line = next(line for line in readme.splitlines() if line.startswith("parallel "))
    work = tmp_path / "parallel"
    work.mkdir()
    shutil.copytree(study / "videos", work / "videos")
    line = line.replace("--threads 1", "--threads 1 --every 2 -f csv")
    proc = subprocess.run(["bash", "-c", line], cwd=work, env=env(standin_store), capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr
    rows = table(work / "results" / "study.csv")
    assert [{k: v for k, v in r.items() if k != "input"} for r in rows] == \
        [{k: v for k, v in r.items() if k != "input"} for r in reference]
    assert (work / "results" / "index.html").read_text().count("<tr><td") == len(LENGTHS)  # the study's page


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    require(slurm_cluster.available(), "slurm-wlm and munge not installed (make test installs them)")
    require(os.geteuid() == 0, "starting slurmctld and munged here needs root")
    running = slurm_cluster.Cluster(tmp_path_factory.mktemp("slurm")).start()
    try:
        yield running
    finally:
        running.stop()


def _wait_done(cluster: slurm_cluster.Cluster, job: str, seconds: float = 600) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        queued = subprocess.run(["squeue", "-h", "-j", job], env=cluster.env, capture_output=True, text=True).stdout
        if not queued.strip():
            return
        time.sleep(0.5)
    raise AssertionError(f"SLURM job {job} did not end in {seconds} s")


def test_slurm_array_with_a_task_killed_mid_video(study, standin_store, tmp_path, reference, cluster):
    results = tmp_path / "results"
    script = EXAMPLES / "slurm" / "fatools-array.sbatch"
    args = ["--array=0-1", "--cpus-per-task=1", f"--output={tmp_path}/task-%a.log", str(script),
            str(study / "videos.txt"), str(results)]
    job_env = {**env(standin_store), "FA_RUN_OPTIONS": "--every 1 -f csv", "FA_RUN": str(BIN / "fa-run")}
    # The long video's task, killed (SIGKILL, no chance to clean up) once it is well into it.
    inputs = [str(study / "videos" / f"{name}.mp4") for name in LENGTHS]
    task = next(k for k in (0, 1) if inputs.index(str(study / "videos" / "d.mp4")) in shard(inputs, k, 2))
    job = cluster.sbatch(*args, env=job_env)
    part = results / "d" / ".frames.jsonl.part"
    deadline = time.monotonic() + 300
    while not (part.is_file() and part.read_bytes().count(b"\n") >= 60):
        assert time.monotonic() < deadline, "the long video never got going"
        time.sleep(0.1)
    subprocess.run(["scancel", "--signal=KILL", "--full", f"{job}_{task}"], env=cluster.env, check=True)
    _wait_done(cluster, job)
    killed = json.loads((results / "d" / "run.json").read_text())
    # SLURM signals the task's processes (SIGTERM first where it can): stopped either way, not complete.
    assert killed["status"] in ("running", "partial") and not (results / "d" / "frames.jsonl").exists()
    # Resubmitted as it was: only what is missing is done.
    again = cluster.sbatch(*args, env=job_env)
    _wait_done(cluster, again)
    logs = "".join(p.read_text() for p in sorted(tmp_path.glob("task-*.log")))
    assert "skipped" in logs
    proc = subprocess.run(["fa-collect", results, "-o", results / "study.csv"], env=env(standin_store),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = table(results / "study.csv")
    assert (results / "index.html").read_text().count('<td class="complete">') == len(LENGTHS)
    # Every 1st frame here, every 2nd in the reference: compare with a reference of the same sampling.
    ref_out = tmp_path / "ref1"
    # The same thread count as the tasks (--cpus-per-task=1): float sums depend on it.
    subprocess.run(["fa-run", "--from", study / "videos.txt", "-o", ref_out, "--every", "1", "-f", "csv", "--threads", "1"],
                   env=env(standin_store), check=True, capture_output=True, timeout=600)
    subprocess.run(["fa-collect", ref_out, "-o", ref_out / "study.csv"], env=env(standin_store), check=True)
    assert rows == table(ref_out / "study.csv")
    assert (results / "d" / "frames.jsonl").read_bytes() == (ref_out / "d" / "frames.jsonl").read_bytes()
