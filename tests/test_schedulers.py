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
from test_batch import clip

from fatools.study.inputs import shard

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
BIN = Path(sys.executable).parent
LENGTHS = {"a": 12, "b": 30, "c": 18, "d": 240}  # d is long enough to be killed mid-video
# make and GNU parallel analyse the short three (three jobs for two slots): d is 80% of the
# study's frames and is there for the SLURM test's kill.
SHORT = ("a", "b", "c")
# Every job's options: one thread, as each scheduler here gives a job (make's JOB_THREADS,
# parallel's --threads 1, --cpus-per-task=1; float sums depend on the thread count, and the
# SLURM test compares records byte for byte), and the detector at the clips' own 640x360
# rather than scaled up to 1080 (a third of its work; what the schedulers do is the same).
OPTIONS = ["--every", "2", "-f", "csv", "--det-size", "0"]


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
def reference_run(study, standin_store, tmp_path_factory) -> Path:
    """One fa-run over the whole list, uninterrupted, with the jobs' options: what every
    scheduler must give (its results directory)."""
    from click.testing import CliRunner

    from fatools.cli.collect import cli as collect_cli
    from fatools.cli.run import cli as run_cli

    # In this process (the jobs below are the processes under test): the same command, the
    # same store, one thread as each job has.
    out = tmp_path_factory.mktemp("reference")
    args = ["--from", str(study / "videos.txt"), "-o", str(out), *OPTIONS, "--threads", "1"]
    result = CliRunner().invoke(run_cli, args, env={"FATOOLS_MODELS": str(standin_store)})
    assert result.exit_code == 0, result.output
    collected = CliRunner().invoke(collect_cli, [str(out), "-o", str(out / "study.csv")])
    assert collected.exit_code == 0, collected.output
    return out


@pytest.fixture(scope="module")
def reference(reference_run) -> list[dict]:
    """The reference's study table."""
    rows = table(reference_run / "study.csv")
    assert [r["status"] for r in rows if r["level"] == "video"] == ["complete"] * len(LENGTHS)
    return rows


def short_videos(study: Path, work: Path) -> None:
    """The study's SHORT videos, copied into ``work``/videos."""
    (work / "videos").mkdir(parents=True)
    for name in SHORT:
        shutil.copy(study / "videos" / f"{name}.mp4", work / "videos" / f"{name}.mp4")


def without_input(rows: list[dict], names=SHORT) -> list[dict]:
    """The rows of the named videos, without the column that names the input's path."""
    return [{k: v for k, v in r.items() if k != "input"} for r in rows if Path(r["input"]).stem in names]


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
        queued = subprocess.run(
            ["squeue", "-h", "-j", job], env=cluster.env, capture_output=True, text=True
        ).stdout
        if not queued.strip():
            return
        time.sleep(0.1)
    raise AssertionError(f"SLURM job {job} did not end in {seconds} s")


def test_slurm_array_with_a_task_killed_mid_video(
    cluster, study, standin_store, tmp_path, reference_run, reference
):
    """First in the module, the cluster first among its fixtures: slurmctld's first
    scheduling pass comes some seconds after it starts, and the reference run fills them."""
    results = tmp_path / "results"
    script = EXAMPLES / "slurm" / "fatools-array.sbatch"
    args = [
        "--array=0-1",
        "--cpus-per-task=1",
        f"--output={tmp_path}/task-%a.log",
        str(script),
        str(study / "videos.txt"),
        str(results),
    ]
    job_env = {**env(standin_store), "FA_RUN_OPTIONS": " ".join(OPTIONS), "FA_RUN": str(BIN / "fa-run")}
    # The long video's task, killed (SIGKILL, no chance to clean up) once it is well into it.
    inputs = [str(study / "videos" / f"{name}.mp4") for name in LENGTHS]
    task = next(k for k in (0, 1) if inputs.index(str(study / "videos" / "d.mp4")) in shard(inputs, k, 2))
    job = cluster.sbatch(*args, env=job_env)
    part = results / "d" / ".frames.jsonl.part"
    deadline = time.monotonic() + 300
    while not (part.is_file() and part.read_bytes().count(b"\n") >= 30):  # of 121 lines
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
    proc = subprocess.run(
        ["fa-collect", results, "-o", results / "study.csv"],
        env=env(standin_store),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    rows = table(results / "study.csv")
    assert (results / "index.html").read_text().count('<td class="complete">') == len(LENGTHS)
    # The uninterrupted run of the same list with the same options and thread count.
    assert rows == reference
    assert (results / "d" / "frames.jsonl").read_bytes() == (
        reference_run / "d" / "frames.jsonl"
    ).read_bytes()


def test_make_pattern_rule_is_incremental(study, standin_store, tmp_path, reference):
    require(shutil.which("make") is not None, "make not installed")
    work = tmp_path / "make"
    work.mkdir()
    shutil.copy(EXAMPLES / "make" / "Makefile", work / "Makefile")
    short_videos(study, work)
    variables = [f"FA_RUN_OPTIONS={' '.join(OPTIONS)}"]

    def make(timeout: float) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["make", "-j2", *variables],
            cwd=work,
            env=env(standin_store),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    first = make(timeout=900)
    assert first.returncode == 0, first.stderr
    assert len(re.findall(r"^fa-run videos/", first.stdout, re.M)) == len(SHORT)
    rows = table(work / "results" / "study.csv")
    assert [r["status"] for r in rows if r["level"] == "video"] == ["complete"] * len(SHORT)
    assert (work / "results" / "index.html").read_text().count("<tr><td") == len(SHORT)
    assert without_input(rows) == without_input(reference)
    # Touched, as a user would, after the results: which make tells apart even where it
    # compares modification times in whole seconds (the results set 10 s back, no sleep).
    past = time.time() - 10
    for path in (work / "results").rglob("*"):
        os.utime(path, (past, past))
    for path in (work / "videos").iterdir():
        os.utime(path, (past - 10, past - 10))
    os.utime(work / "videos" / "c.mp4")
    again = make(timeout=600)
    assert again.returncode == 0, again.stderr
    assert re.findall(r"^fa-run (\S+)", again.stdout, re.M) == ["videos/c.mp4"]  # only the touched video


def test_gnu_parallel_one_liner(study, standin_store, tmp_path, reference):
    require(shutil.which("parallel") is not None, "GNU parallel not installed (make test installs it)")
    readme = (EXAMPLES / "parallel" / "README.md").read_text()
    line = next(line for line in readme.splitlines() if line.startswith("parallel "))
    work = tmp_path / "parallel"
    work.mkdir()
    short_videos(study, work)
    line = line.replace("--threads 1", f"--threads 1 {' '.join(OPTIONS)}")
    proc = subprocess.run(
        ["bash", "-c", line], cwd=work, env=env(standin_store), capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stderr
    rows = table(work / "results" / "study.csv")
    assert without_input(rows) == without_input(reference)
    assert (work / "results" / "index.html").read_text().count("<tr><td") == len(SHORT)  # the study's page
