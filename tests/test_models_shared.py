"""One store shared by many jobs and a lab: modes, concurrent first use of derived files,
`fa-models prepare`, and a store nobody may write to."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def modes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): stat.S_IMODE(p.stat().st_mode) for p in [root, *root.rglob("*")]}


def test_the_store_is_readable_by_the_lab_whatever_the_umask(tmp_path: Path, standin_store: Path) -> None:
    root = tmp_path / "store"
    script = (
        f"umask 077 && {sys.executable} -m fatools.testing {root} va align-meta && "
        f"{BIN / 'fa-models'} import au {standin_store / 'au' / 'model.pt'} --models-dir {root}"
    )
    subprocess.run(["sh", "-c", script], check=True, capture_output=True, timeout=300)
    found = modes(root)
    assert set(found) == {
        ".",
        "va",
        "va/model.pt",
        "va/source.json",
        "align-meta",
        "align-meta/meta.pt",
        "align-meta/source.json",
        "au",
        "au/model.pt",
        "au/source.json",
    }
    wrong = {
        name: oct(mode)
        for name, mode in found.items()
        if mode != (0o755 if (root / name).is_dir() else 0o644)
    }
    assert not wrong, f"not 0644 files / 0755 directories under umask 077: {wrong}"


def test_many_processes_make_one_derived_file_once(tmp_path: Path, standin_store: Path) -> None:
    """Six jobs that need the same missing derived file at the same moment: one builds it,
    the others wait and load the whole file; the store ends with the file, its record and
    its lock, nothing else.  That they waited is seen, not assumed: the kernel listed one
    blocked on the lock while the build went on, and it asked before the build ended and
    got the file after."""
    import shutil

    import toy_deriver

    root = tmp_path / "store"
    # Without what earlier runs derived there (ONNX exports): only the toy file is wanted.
    shutil.copytree(standin_store / "va", root / "va", ignore=shutil.ignore_patterns("derived"))
    model_file = root / "va" / "model.pt"
    build_log = tmp_path / "builds.log"
    gate = tmp_path / "gate"  # every process imported and waiting before any asks
    gate.mkdir()
    env = dict(os.environ, PYTHONPATH=str(Path(toy_deriver.__file__).parent))
    jobs = [
        subprocess.Popen(
            [sys.executable, toy_deriver.__file__, str(model_file), str(gate), str(build_log)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(6)
    ]
    try:
        toy_deriver.open_gate(gate, jobs)
    finally:
        (gate / "go").touch()  # never leave a job waiting
    results = [job.communicate(timeout=600) for job in jobs]
    assert all(job.returncode == 0 for job in jobs), [err for _, err in results]
    path = toy_deriver.toy_path(model_file)
    assert [out.split() for out, _ in results] == [["ok", str(path)]] * 6
    builds = [json.loads(line) for line in build_log.read_text().splitlines()]
    assert len(builds) == 1, f"built {len(builds)} times"
    (build,) = builds
    pids = {job.pid for job in jobs}
    times = {int(p.name.split("-")[1]): json.loads(p.read_text()) for p in gate.glob("times-*")}
    assert set(times) == pids and build["pid"] in pids
    assert build["waiters"] and set(build["waiters"]) <= pids - {build["pid"]}, build
    for waiter in build["waiters"]:
        assert times[waiter]["asked"] < build["end"] <= times[waiter]["got"], (times[waiter], build)
    derived_dir = path.parent
    assert sorted(p.name for p in derived_dir.iterdir()) == sorted(
        [path.name, path.with_suffix(".json").name, f"{path.name}.lock"]
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    from fatools.models import verify

    assert verify.verify_one("va", root)["status"] == "ok"


def test_many_processes_make_one_onnx_export(tmp_path: Path, standin_store: Path) -> None:
    """fatools' own deriver raced: four jobs preparing the ONNX export of the same model at
    the same moment (four first runs on a fresh store): it is made once, every job gets
    that file, whole, with its record, and ONNX Runtime opens it; the kernel listed a job
    blocked on the lock while it was made."""
    import shutil
    import time

    import toy_deriver

    from fatools.models import derived, onnx_export, store

    root = tmp_path / "store"
    shutil.copytree(standin_store / "va", root / "va", ignore=shutil.ignore_patterns("derived"))
    path = onnx_export.onnx_path(root / "va" / "model.pt", store.file_record("va", root)["sha256"])
    gate = tmp_path / "gate"
    gate.mkdir()
    env = dict(os.environ, PYTHONPATH=str(Path(toy_deriver.__file__).parent))
    jobs = [
        subprocess.Popen(
            [sys.executable, toy_deriver.__file__, "--onnx", "va", str(root), str(gate)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(4)
    ]
    waiters: set[int] = set()
    try:
        toy_deriver.open_gate(gate, jobs)
        while any(job.poll() is None for job in jobs):  # until all end: their pipes hold little
            waiters |= toy_deriver.lock_waiters(toy_deriver.lock_of(path))
            time.sleep(0.002)
    finally:
        (gate / "go").touch()
    results = [job.communicate(timeout=600) for job in jobs]
    assert all(job.returncode == 0 for job in jobs), [err for _, err in results]
    sha256 = store.file_sha256(path)
    assert [out.split() for out, _ in results] == [[str(path), sha256]] * 4
    made = [err for _, err in results if "the ONNX export of va: making it once" in err]
    assert len(made) == 1, [err for _, err in results]
    assert waiters and waiters <= {job.pid for job in jobs}, waiters
    info = derived.read_info(path)
    assert info["sha256"] == sha256 and info["max_abs_diff"] <= info["tolerance"]
    assert onnx_export.open_problem(path) is None
    assert sorted(p.name for p in path.parent.iterdir()) == sorted(
        [path.name, path.with_suffix(".json").name, f"{path.name}.lock"]
    )


def test_prepare_makes_what_each_deriver_would(tmp_path: Path, standin_store: Path, monkeypatch) -> None:
    import shutil

    import toy_deriver
    from click.testing import CliRunner

    from fatools.cli.models import cli
    from fatools.models import derived

    root = tmp_path / "store"
    for name in ("va", "fer"):
        shutil.copytree(standin_store / name, root / name, ignore=shutil.ignore_patterns("derived"))
    # Only the toy deriver: not the ONNX exports fatools registers itself.
    monkeypatch.setattr(derived, "DERIVERS", {})
    monkeypatch.setattr(derived, "DERIVER_MODULES", ())
    result = CliRunner().invoke(cli, ["prepare", "--models-dir", str(root)])
    assert result.exit_code == 0 and result.stdout == ""
    assert result.stderr == "fa-models: nothing to prepare: no derived files are in use\n"

    derived.register("toy", toy_deriver.toy)
    result = CliRunner().invoke(cli, ["prepare", "--models-dir", str(root)])
    assert result.exit_code == 0, result.output
    made = [toy_deriver.toy_path(root / name / "model.pt") for name in ("fer", "va")]  # catalogue order
    assert result.stdout.splitlines() == [str(path) for path in made]
    assert all(path.read_bytes() == toy_deriver.expected(path.parents[1] / "model.pt") for path in made)
    again = CliRunner().invoke(cli, ["prepare", "va", "--models-dir", str(root)])
    assert again.exit_code == 0 and again.stdout.splitlines() == [str(made[1])]
    missing = CliRunner().invoke(cli, ["prepare", "au", "--models-dir", str(root)])
    assert missing.exit_code == 1 and "model not in the store: au" in missing.stderr


def _as_unprivileged() -> list[str]:
    """The command prefix that runs a process as a user the store's permissions bind:
    nothing as that user already, `nobody` through setpriv as root (root ignores them)."""
    import shutil

    from conftest import require

    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    require(setpriv is not None, "setpriv (util-linux) not installed: cannot run as an unprivileged user")
    return [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]


def listing(root: Path) -> list[tuple[str, int, int, int]]:
    return sorted(
        (str(p.relative_to(root)), p.stat().st_mtime_ns, p.stat().st_size, p.stat().st_mode)
        for p in [root, *root.rglob("*")]
    )


def test_a_read_only_store_is_never_written(standin_store: Path) -> None:
    """fa-run on stills with the store read-only (as a cluster mounts it) analyses them and
    writes nothing there, even when a file's mtime is not the recorded one; a derived file
    the store lacks is one line saying to run `fa-models prepare` once."""
    import shutil
    import tempfile

    import toy_deriver
    from conftest import squares_image

    prefix = _as_unprivileged()
    base = Path(tempfile.mkdtemp(prefix="fatools-ro-", dir="/tmp"))  # not below root's 0700 pytest dir
    try:
        os.chmod(base, 0o755)
        root = base / "store"
        shutil.copytree(standin_store, root)
        os.chmod(root, 0o755)  # pytest made the original 0700; the store makes its own 0755
        os.utime(root / "va" / "model.pt", ns=(1_000_000_000, 1_000_000_000))  # copied without its times
        stills = base / "stills"
        stills.mkdir()
        squares_image(stills / "a.png")
        squares_image(stills / "b.png", size=(640, 480), squares=((100, 100, 150),))
        for writable in (base / "out", base / "home"):
            writable.mkdir()
            if prefix:
                os.chown(writable, 65534, 65534)
        subprocess.run(["chmod", "-R", "a-w", str(root)], check=True)
        before = listing(root)
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(base / "home"), "FATOOLS_MODELS": str(root)}

        proc = subprocess.run(
            [*prefix, str(BIN / "fa-run"), str(stills), "-o", str(base / "out")],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stderr
        frames = (base / "out" / "frames.jsonl").read_text().splitlines()  # the folder is one input
        assert len(frames) == 2 and all('"faces":[{' in line for line in frames)
        assert (base / "out" / "run.json").is_file()
        assert f"{root / 'va' / 'model.pt'}: hashed again" in proc.stderr  # said once, not cached
        assert proc.stderr.count("hashed again") == 1
        assert listing(root) == before, "the run wrote into the read-only store"

        script = (
            "import sys, toy_deriver\n"
            "from pathlib import Path\n"
            "from fatools.errors import ModelMissingError\n"
            "try:\n"
            "    toy_deriver.ensure(Path(sys.argv[1]))\n"
            "except ModelMissingError as exc:\n"
            "    print(exc)\n"
            "    sys.exit(1)\n"
        )
        proc = subprocess.run(
            [*prefix, sys.executable, "-c", script, str(root / "fer" / "model.pt")],
            capture_output=True,
            text=True,
            timeout=120,
            env=dict(env, PYTHONPATH=str(Path(toy_deriver.__file__).parent)),
        )
        assert proc.returncode == 1, proc.stderr
        path = toy_deriver.toy_path(root / "fer" / "model.pt")
        assert proc.stdout == (
            f"{path}: the toy file of fer is not in the store, which is read-only here; run "
            "`fa-models prepare fer` once with write access to the store (or use --backend torch)\n"
        )
        assert listing(root) == before
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(base)], check=False)
        shutil.rmtree(base, ignore_errors=True)
