"""fa-run over many inputs: layout, run records, fault isolation, resume after kills and
signals, the lock, shards and threads."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fatools import threads
from fatools.cli.run import cli as run_cli
from fatools.sample import write_video
from fatools.study import outdir
from fatools.study.inputs import Input, expand, layout, parse_shard, shard

BIN = Path(sys.executable).parent


def _faces(i: int) -> np.ndarray:
    image = np.full((360, 640, 3), 15, np.uint8)
    x = 40 + (i * 3) % 400
    image[30:150, x : x + 120] = 250
    if i % 7:
        image[200:310, 460 - (i % 50) : 570 - (i % 50)] = (235, 245, 225)
    return image


def clip(path: Path, frames: int = 24) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_video((_faces(i) for i in range(frames)), str(path), fps=25)
    return path


# The resume tests' clip: frames enough for kills early, midway and late, each well past
# a batch (a detector batch is 1 frame on the CPU, a predictor batch 8).
LONG = 120


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory) -> Path:
    return clip(tmp_path_factory.mktemp("long") / "long.mp4", LONG)


# The resume tests' options: every frame, and the detector at the clip's own 640x360
# rather than scaled up to 1080 (a third of its work; resuming is the same).
RESUME_OPTIONS = ["--every", "1", "-f", "csv", "--det-size", "0"]


@pytest.fixture(scope="module")
def uninterrupted(long_clip, standin_store, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("whole")
    result = CliRunner().invoke(
        run_cli, [str(long_clip), "-o", str(out), *RESUME_OPTIONS, "--models-dir", str(standin_store)]
    )
    assert result.exit_code == 0, result.output
    return out


def run(args: list[str], store: Path):
    return CliRunner().invoke(run_cli, [*args, "--models-dir", str(store), "-f", "csv"])


def record(out: Path) -> dict:
    return json.loads((out / "run.json").read_text())


# -- inputs and layout --------------------------------------------------------------


def test_layout_gives_every_input_its_own_directory(tmp_path):
    a, b = clip(tmp_path / "a" / "v.mp4"), clip(tmp_path / "b" / "v.mp4")
    same_dir = [clip(tmp_path / "c" / "v.mp4"), clip(tmp_path / "c" / "v.mov")]
    assert layout([Input(str(a), "video")], "out") == ["out"]
    assert layout([Input(str(a), "video"), Input(str(b), "video")], "out") == ["out/a/v", "out/b/v"]
    assert layout([Input(str(p), "video") for p in same_dir], "out") == ["out/v.mp4", "out/v.mov"]
    photos = tmp_path / "study" / "photos"
    photos.mkdir(parents=True)
    shutil.copy(Path(__file__).parent / "conftest.py", photos / "notes.txt")  # not an image: ignored
    from conftest import squares_image

    squares_image(photos / "1.png")
    clip(tmp_path / "study" / "s1" / "x.mp4")
    items = expand([str(tmp_path / "study")])
    assert [(Path(i.path).name, i.kind) for i in items] == [("photos", "images"), ("x.mp4", "video")]
    assert layout(items, "out") == ["out/photos", "out/s1/x"]


def test_two_videos_of_one_name_no_longer_overwrite_each_other(tmp_path, standin_store):
    a, b = clip(tmp_path / "a" / "v.mp4", 12), clip(tmp_path / "b" / "v.mp4", 18)
    result = run([str(a), str(b), "-o", str(tmp_path / "out"), "--every", "6"], standin_store)
    assert result.exit_code == 0, result.output
    assert record(tmp_path / "out" / "a" / "v")["input"]["path"] == str(a)
    assert record(tmp_path / "out" / "b" / "v")["frames_done"] == 3
    assert "2 analysed" in result.stderr


def test_a_damaged_input_is_recorded_and_the_batch_goes_on(tmp_path, standin_store):
    one, three = clip(tmp_path / "one.mp4", 12), clip(tmp_path / "three.mp4", 12)
    two = tmp_path / "two.mp4"
    two.write_bytes(one.read_bytes()[:300])  # a truncated file
    proc = subprocess.run(
        [
            BIN / "fa-run",
            one,
            two,
            three,
            "-o",
            tmp_path / "out",
            "--every",
            "6",
            "-f",
            "csv",
            "--models-dir",
            standin_store,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert lines[0].startswith("fa-run: failed: ") and "two.mp4" in lines[0]  # nothing of FFmpeg's before it
    assert lines[-1] == f"fa-run: 2 analysed, 1 failed: {two}"
    assert record(tmp_path / "out" / "three")["status"] == "complete"
    failed = record(tmp_path / "out" / "two")
    assert failed["status"] == "failed" and "two.mp4" in failed["error"]
    assert not (tmp_path / "out" / "two" / "frames.jsonl").exists()
    fast = run(
        [str(one), str(two), str(three), "-o", str(tmp_path / "fast"), "--every", "6", "--fail-fast"],
        standin_store,
    )
    assert fast.exit_code == 1 and "1 not started (--fail-fast)" in fast.stderr
    assert not (tmp_path / "fast" / "three").exists()


def test_a_missing_input_fails_before_any_model_loads(tmp_path, monkeypatch):
    """Every input is checked before the models are even looked at: with a store that
    does not exist the one error is the typo, and no model was resolved or loaded
    (counted, not timed: a loaded machine cannot make it pass or fail)."""
    from fatools.models import loading
    from fatools.study import batch

    calls = []
    monkeypatch.setattr(batch, "resolve", lambda *a, **k: calls.append("resolve"))
    monkeypatch.setattr(loading, "load_models", lambda *a, **k: calls.append("load_models"))
    listed = tmp_path / "list.txt"
    listed.write_text(f"# study\n{clip(tmp_path / 'ok.mp4', 6)}\n\n{tmp_path / 'typo.mp4'}\n")
    result = CliRunner().invoke(
        run_cli,
        ["--from", str(listed), "-o", str(tmp_path / "out"), "--models-dir", str(tmp_path / "no-store")],
    )
    assert (
        result.exit_code == 1
        and result.stderr.strip()
        == f"fa-run: error: {tmp_path / 'typo.mp4'}: no such file or folder; check the path"
    )
    assert calls == [] and not (tmp_path / "out").exists()


def test_inputs_from_a_list_on_standard_input(tmp_path, standin_store):
    a, b = clip(tmp_path / "a.mp4", 6), clip(tmp_path / "b.mp4", 6)
    result = CliRunner().invoke(
        run_cli,
        [
            "--from",
            "-",
            str(b),
            "-o",
            str(tmp_path / "out"),
            "--every",
            "3",
            "-f",
            "csv",
            "--models-dir",
            str(standin_store),
        ],
        input=f"{a}\n",
    )
    assert result.exit_code == 0, result.output
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"a", "b"}


# -- rerunning ----------------------------------------------------------------------


def test_rerun_skips_refuses_other_options_and_adds_missing_exports(tmp_path, standin_store):
    video = clip(tmp_path / "v.mp4", 12)
    out = tmp_path / "out"
    assert run([str(video), "-o", str(out), "--every", "3"], standin_store).exit_code == 0
    first = record(out)
    assert first["status"] == "complete" and first["frames_done"] == 4 and first["models"]
    assert first["attempts"] == 1 and first["resumed_from"] is None  # said, not left to guess
    assert {
        "input",
        "options",
        "options_fingerprint",
        "versions",
        "device",
        "host",
        "started",
        "ended",
    } <= set(first)
    again = run([str(video), "-o", str(out), "--every", "3"], standin_store)
    assert again.exit_code == 0 and "skipped" in again.stderr and again.stdout == ""
    other = run([str(video), "-o", str(out), "--every", "2"], standin_store)
    assert (
        other.exit_code == 1
        and "differs in: options (sampling)" in other.stderr
        and "--force" in other.stderr
    )
    assert record(out)["options_fingerprint"] == first["options_fingerprint"]
    more = CliRunner().invoke(
        run_cli,
        [
            str(video),
            "-o",
            str(out),
            "--every",
            "3",
            "-f",
            "csv,text",
            "--models-dir",
            str(tmp_path / "no-models-needed"),
        ],
    )
    assert more.exit_code == 1  # the models are checked, not loaded: give the store
    more = CliRunner().invoke(
        run_cli,
        [str(video), "-o", str(out), "--every", "3", "-f", "csv,text", "--models-dir", str(standin_store)],
    )
    assert more.exit_code == 0, more.output
    names = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert sum(n.startswith("facial_analysis_summary_") for n in names) == 1  # the old csv is replaced
    assert any(n.startswith("facial_analysis_report_") for n in names)
    forced = run([str(video), "-o", str(out), "--every", "2", "--force"], standin_store)
    assert forced.exit_code == 0 and record(out)["frames_done"] == 6
    assert record(out)["attempts"] == 1 and record(out)["resumed_from"] is None


def _kill_after(args: list, part: Path, lines: int, sig: int) -> tuple[int, str]:
    """Run ``args`` and send ``sig`` once ``part`` holds ``lines`` lines; exit status, stderr."""
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    # No deadline: the run ends by itself if it never gets there (a slow machine only waits).
    while proc.poll() is None:
        if part.is_file() and part.read_bytes().count(b"\n") >= lines:
            proc.send_signal(sig)
            break
        time.sleep(0.02)
    _, stderr = proc.communicate(timeout=600)
    return proc.returncode, stderr


# run.json fields that differ between any two runs of one command, resumed or not.
PER_RUN = ("pid", "started", "ended", "files")
# run.json fields that say how a result was made (a resume or not): the one way a resumed
# result's files may differ from an uninterrupted run's; checked by the tests themselves.
RESUME = ("attempts", "resumed_from")


def _same_results(out: Path, reference: Path) -> None:
    """The records byte for byte, the summary, the CSV export and run.json but for the
    fields named above equal an uninterrupted run's."""
    assert (out / "frames.jsonl").read_bytes() == (reference / "frames.jsonl").read_bytes()
    assert json.loads((out / "summary.json").read_text()) == json.loads(
        (reference / "summary.json").read_text()
    )
    [csv], [reference_csv] = (
        out.glob("facial_analysis_summary_*.csv"),
        reference.glob("facial_analysis_summary_*.csv"),
    )
    assert csv.read_bytes() == reference_csv.read_bytes()
    got, expected = record(out), record(reference)
    assert expected["attempts"] == 1 and expected["resumed_from"] is None
    assert {k: v for k, v in got.items() if k not in PER_RUN + RESUME} == {
        k: v for k, v in expected.items() if k not in PER_RUN + RESUME
    }

    def names(files: list[str]) -> list[str]:  # without the directory and the exports' timestamps
        return [re.sub(r"_\d{8}_\d{6}", "", Path(p).name) for p in files]

    assert names(got["files"]) == names(expected["files"])


def _resume_lines(stderr: str, video: Path) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(f"fa-run: {video}: resumed: ")]


def _check_attempt(out: Path, stderr: str, video: Path, before: int) -> int:
    """The run that wrote ``stderr`` is one more attempt when it said it resumed (at the
    default log level: no -v), attempt 1 otherwise; its run.json says which, and what it
    kept, as its line does.  Its attempt number."""
    now = record(out)
    lines = _resume_lines(stderr, video)
    if not lines:
        assert now["attempts"] == 1 and now["resumed_from"] is None, stderr
        return 1
    assert len(lines) == 1, stderr
    kept = now["resumed_from"]
    assert now["attempts"] == before + 1
    assert lines[0] == (
        f"fa-run: {video}: resumed: {kept['frames_kept']} frames kept, going on after frame "
        f"{kept['frame']} ({kept['t']:.2f} s)"
    )
    part = out / ".frames.jsonl.part"
    # A killed run's last line may be cut short; what was kept lies well before it.
    saved = (
        part.read_text().splitlines()[:-1]
        if part.is_file()
        else (out / "frames.jsonl").read_text().splitlines()
    )
    frames = [r for r in map(json.loads, saved) if r.get("type", "frame") == "frame"]
    last = frames[kept["frames_kept"] - 1]
    assert (last["frame"], last["t"]) == (kept["frame"], kept["t"])
    return now["attempts"]


def _counted_rerun(args: list, out: Path, monkeypatch) -> tuple[str, list[int], list[int]]:
    """Rerun ``args`` in-process, counting the model work: the frame numbers the detector
    and the predictors were given.  Checks the work is exactly the frames the stopped runs
    did not keep, and that what the rerun dropped of their records (work done again) is at
    most a detector batch and a predictor batch.  Its stderr."""
    import torch

    from fatools.detect import BatchDetector
    from fatools.devices import default_batch_size
    from fatools.predict import FacePredictors

    detected: list[int] = []
    predicted: list[int] = []
    detect, predict = BatchDetector.detect_with_inputs, FacePredictors.predict

    def counted_detect(self, images, names=None):
        detected.extend(int(name.rsplit("frame ", 1)[1]) for name in names)
        return detect(self, images, names)

    def counted_predict(self, frames):
        predicted.extend(frame.record["frame"] for frame in frames if frame.record.get("faces"))
        return predict(self, frames)

    part = out / ".frames.jsonl.part"
    saved = [json.loads(line) for line in part.read_text().splitlines()[:-1]]  # the last may be cut
    saved_frames = [r["frame"] for r in saved if r.get("type", "frame") == "frame"]
    monkeypatch.setattr(BatchDetector, "detect_with_inputs", counted_detect)
    monkeypatch.setattr(FacePredictors, "predict", counted_predict)
    result = CliRunner().invoke(run_cli, [str(a) for a in args[1:]])
    monkeypatch.undo()
    assert result.exit_code == 0, result.output
    kept = record(out)["resumed_from"]
    frames = [
        r
        for r in map(json.loads, (out / "frames.jsonl").read_text().splitlines())
        if r.get("type", "frame") == "frame"
    ]
    not_kept = [r["frame"] for r in frames[kept["frames_kept"] :]]
    assert detected == not_kept, "the detector ran on frames the resume kept, or missed some"
    assert predicted == [r["frame"] for r in frames[kept["frames_kept"] :] if r["faces"]]
    cpu = torch.device("cpu")
    redone = len(saved_frames) - kept["frames_kept"]
    assert 0 <= redone <= default_batch_size(cpu, "detector") + default_batch_size(cpu, "frames"), redone
    return result.stderr


def test_killed_runs_resume_to_the_uninterrupted_result(
    long_clip, uninterrupted, standin_store, tmp_path, monkeypatch
):
    """kill -9 at three points of one analysis, each time rerun: the records and the
    summary equal an uninterrupted run's, byte for byte; each rerun that kept records
    says so at the default log level and counts one more attempt in run.json; the last
    rerun's model work is counted: only the frames not kept, no model work redone but
    the last batch (``_counted_rerun``)."""
    out = tmp_path / "out"
    args = [BIN / "fa-run", long_clip, "-o", out, *RESUME_OPTIONS, "--models-dir", standin_store]
    attempts = 0
    for lines in (3, 30, 75):
        code, stderr = _kill_after(args, out / ".frames.jsonl.part", lines, signal.SIGKILL)
        assert code == -signal.SIGKILL
        assert record(out)["status"] == "running"  # what a kill leaves
        assert not (out / "frames.jsonl").exists()
        attempts = _check_attempt(out, stderr, long_clip, attempts)
    assert attempts >= 2  # killed at 30 and 75 lines, the last two kept records
    stderr = _counted_rerun(args, out, monkeypatch)
    assert len(_resume_lines(stderr, long_clip)) == 1, stderr
    assert _check_attempt(out, stderr, long_clip, attempts) == attempts + 1
    _same_results(out, uninterrupted)
    assert record(out)["status"] == "complete" and record(out)["frames_done"] == LONG


def test_sigterm_stops_at_a_record_and_the_rerun_completes(
    long_clip, uninterrupted, standin_store, tmp_path, monkeypatch
):
    """SIGTERM, a resume killed with -9, a second resume: three attempts, recorded."""
    out = tmp_path / "out"
    args = [BIN / "fa-run", long_clip, "-o", out, *RESUME_OPTIONS, "--models-dir", standin_store]
    assert _kill_after(args, out / ".frames.jsonl.part", 50, signal.SIGTERM)[0] == 143
    stopped = record(out)
    assert stopped["status"] == "partial" and stopped["frames_done"] >= 49
    assert stopped["attempts"] == 1 and stopped["resumed_from"] is None
    assert (out / ".frames.jsonl.part").read_bytes().endswith(b"\n")  # flushed at a record boundary
    assert not list(out.glob("facial_analysis_*"))
    code, stderr = _kill_after(args, out / ".frames.jsonl.part", 90, signal.SIGKILL)
    assert code == -signal.SIGKILL
    assert _check_attempt(out, stderr, long_clip, 1) == 2
    first_resume = record(out)["resumed_from"]
    assert first_resume["frames_kept"] >= 40  # the SIGTERM's records, but for a batch or two
    stderr = _counted_rerun(args, out, monkeypatch)
    assert _check_attempt(out, stderr, long_clip, 2) == 3
    assert record(out)["resumed_from"]["frames_kept"] > first_resume["frames_kept"]
    _same_results(out, uninterrupted)


def test_a_second_process_on_the_same_directory_is_refused(tmp_path, standin_store):
    video = clip(tmp_path / "v.mp4", 6)
    out = tmp_path / "out"
    with outdir.locked(out):
        result = run([str(video), "-o", str(out)], standin_store)
    assert (
        result.exit_code == 1
        and "is writing into it" in result.stderr
        and f"pid {os.getpid()}" in result.stderr
    )
    assert run([str(video), "-o", str(out)], standin_store).exit_code == 0  # released


# -- shards and threads -------------------------------------------------------------


def test_shards_cover_every_input_once_whatever_the_order():
    keys = [f"v{i:02d}.mp4" for i in range(11)]
    for n in (1, 2, 3, 5):
        chosen = [sorted(keys[i] for i in shard(keys, k, n)) for k in range(n)]
        assert sorted(key for keys_of_shard in chosen for key in keys_of_shard) == sorted(keys)
        shuffled = list(reversed(keys))
        assert [sorted(shuffled[i] for i in shard(shuffled, k, n)) for k in range(n)] == chosen
    assert parse_shard("1/4") == (1, 4)
    for bad in ("4/4", "1", "a/b", "-1/2"):
        with pytest.raises(ValueError):
            parse_shard(bad)


def test_two_shards_together_analyse_every_input_once(tmp_path, standin_store):
    videos = [clip(tmp_path / "in" / f"{name}.mp4", 6) for name in ("c", "a", "d", "b", "e")]
    for k in (0, 1):
        listed = [str(v) for v in (videos if k else reversed(videos))]
        assert (
            run(
                [*listed, "-o", str(tmp_path / "out"), "--every", "3", "--shard", f"{k}/2"], standin_store
            ).exit_code
            == 0
        )
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a", "b", "c", "d", "e"]


def _cgroup_tree(root: Path, own: dict[str, str], files: dict[str, str]) -> tuple[Path, Path]:
    """A fake cgroup mount (``files``: path under it -> content) and /proc/self/cgroup."""
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(content + "\n")
    proc = root.parent / f"{root.name}.proc"
    proc.write_text(
        "".join(f"{i}:{controllers}:{path}\n" for i, (controllers, path) in enumerate(own.items()))
    )
    return root, proc


def test_threads_follow_a_cgroup_quota(tmp_path, monkeypatch):
    """cgroup v2 and v1 quotas, in a container's namespace or below the root as SLURM's
    cgroup plugin nests them; the smallest of the process's cgroup and those above it."""
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    cases = {  # name: (own cgroups, files, CPUs the quota allows or None)
        "v2 container": ({"": "/"}, {"cpu.max": "150000 100000"}, 2),
        "v2 no quota": ({"": "/"}, {"cpu.max": "max 100000"}, None),
        "v2 nested": (
            {"": "/job_7/step_0"},
            {"job_7/cpu.max": "100000 100000", "job_7/step_0/cpu.max": "max 100000"},
            1,
        ),
        "v2 elsewhere": ({"": "/not/mounted/here"}, {"cpu.max": "250000 100000"}, 3),
        "v1 nested": (
            {"cpu,cpuacct": "/slurm/job_7", "memory": "/x"},
            {
                "cpu,cpuacct/slurm/job_7/cpu.cfs_quota_us": "300000",
                "cpu,cpuacct/slurm/job_7/cpu.cfs_period_us": "100000",
                "cpu,cpuacct/cpu.cfs_quota_us": "-1",
                "cpu,cpuacct/cpu.cfs_period_us": "100000",
            },
            3,
        ),
        "v1 none": ({"cpu": "/"}, {"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"}, None),
        "none at all": ({}, {}, None),
    }
    affinity = len(os.sched_getaffinity(0))
    for i, (name, (own, files, quota)) in enumerate(cases.items()):
        root, proc = _cgroup_tree(tmp_path / f"c{i}", own, files)
        assert threads._cgroup_quota(root, proc) == quota, name
        assert threads.available_cpus(cgroup_root=root, proc_cgroup=proc) == min(
            affinity, quota or affinity
        ), name
    root, proc = _cgroup_tree(
        tmp_path / "one", {"": "/"}, {"cpu.max": "50000 100000"}
    )  # half a CPU: one thread
    assert threads.available_cpus(cgroup_root=root, proc_cgroup=proc) == 1
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "1")
    root, proc = _cgroup_tree(tmp_path / "many", {"": "/"}, {"cpu.max": "6400000 100000"})
    assert threads.available_cpus(cgroup_root=root, proc_cgroup=proc) == 1


def test_threads_follow_what_the_process_may_use(monkeypatch):
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "1")
    assert threads.available_cpus() == 1
    monkeypatch.delenv("SLURM_CPUS_PER_TASK")
    # The same rule as fatools', on this machine: a container's quota may be below its affinity.
    quota = threads._cgroup_quota()
    affinity = len(os.sched_getaffinity(0))
    assert threads.available_cpus() == min(affinity, quota or affinity)
    # One process for both of fatools' rules (torch and OpenCV imported once): pinned to one
    # CPU, as `taskset -c` pins it, apply() gives one thread; an explicit count is taken as
    # given.  Each apply() starts from 3 threads, which it must set, not leave.
    code = (
        "import os, torch, cv2; from fatools import threads\n"
        "def used(): return [torch.get_num_threads(), cv2.getNumThreads(), threads.decode_threads()]\n"
        "os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})\n"
        "torch.set_num_threads(3); cv2.setNumThreads(3); threads.apply(); print(*used())\n"
        "torch.set_num_threads(3); cv2.setNumThreads(3); threads.apply(1); print(*used())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.split("\n") == ["1 1 1", "1 1 1", ""], out.stderr


def test_fa_collect_has_a_row_per_video_and_track_and_keeps_failures(tmp_path, standin_store):
    import csv

    from fatools.cli.collect import cli as collect_cli

    good = clip(tmp_path / "in" / "good.mp4", 12)
    bad = tmp_path / "in" / "bad.mp4"
    bad.write_bytes(b"not a video")
    assert (
        run([str(good), str(bad), "-o", str(tmp_path / "out"), "--every", "3"], standin_store).exit_code == 1
    )
    result = CliRunner().invoke(collect_cli, [str(tmp_path / "out"), "-o", str(tmp_path / "study.csv")])
    assert result.exit_code == 0, result.output
    assert "1 complete, 1 failed" in result.stderr
    rows = list(csv.DictReader(open(tmp_path / "study.csv", newline="")))
    videos = {Path(r["input"]).name: r for r in rows if r["level"] == "video"}
    assert videos["bad.mp4"]["status"] == "failed" and "bad.mp4" in videos["bad.mp4"]["error"]
    assert videos["good.mp4"]["status"] == "complete" and videos["good.mp4"]["frames_analysed"] == "4"
    tracks = [r for r in rows if r["level"] == "track"]
    assert len(tracks) == int(videos["good.mp4"]["tracks"]) >= 2
    assert float(videos["good.mp4"]["AU1_rate"]) >= 0 and videos["good.mp4"]["emotion_happiness"] != ""
    assert (
        videos["good.mp4"]["options_fingerprint"] == record(tmp_path / "out" / "good")["options_fingerprint"]
    )
