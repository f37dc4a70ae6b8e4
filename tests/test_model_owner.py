"""One owner for the models at run time: a request is resolved from one reading of the
configuration and loaded once per process, a changed file is noticed, and no module of
fatools imports another that imports it back."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.clips import write_clip

ROOT = Path(__file__).resolve().parents[1]


def _square(index: int) -> np.ndarray:
    frame = np.full((240, 320, 3), 40, np.uint8)
    frame[80:160, 60 + index : 140 + index] = 230  # a bright square: the stand-in detector's face
    return frame


@pytest.fixture
def own_store(tmp_path, standin_store) -> Path:
    """A copy of the stand-in store no other test has resolved or loaded."""
    store = tmp_path / "store"
    shutil.copytree(standin_store, store)
    return store


def test_a_batch_reads_the_configuration_once_and_loads_once(tmp_path, own_store):
    import fatools
    from fatools.models import config, loading
    from fatools.run import run_options
    from fatools.study.batch import run_batch
    from fatools.study.inputs import expand

    clips = [write_clip(tmp_path / f"clip{i}.mp4", 8, paint=_square) for i in range(3)]
    reads, builds = config.reads, loading.builds
    options = run_options(models_dir=str(own_store), formats=["json"], every=2)
    outcomes = run_batch(
        expand([str(c) for c in clips]), [str(tmp_path / "out" / str(i)) for i in range(3)], options
    )
    assert [o.status for o in outcomes] == ["analysed"] * 3
    assert config.reads - reads == 1  # the run records, the analyzer and the exports' labels share it
    assert loading.builds - builds == 1
    # The Python API asks for the same models: nothing is read or built again.
    result = fatools.analyze_video(
        str(clips[0]), str(tmp_path / "again"), models_dir=str(own_store), formats=["json"]
    )
    assert len(result["frame_analyses"]) == 2
    assert (config.reads - reads, loading.builds - builds) == (1, 1)
    # Other models (detection only) are another request: one more reading, one more build.
    fatools.analyze_video(
        str(clips[0]), str(tmp_path / "detect-only"), models_dir=str(own_store), tasks=[], formats=["json"]
    )
    assert (config.reads - reads, loading.builds - builds) == (2, 2)


# The seed's short form: the file names the detector (MobileNet0.25) and the expression model.
SHORT_FORM = """\
analyzer:
  detector:
    name: RetinaFace
    model: mobilenet0.25
  predictor:
    fer:
      name: EfficientNet-B2
      model: efficientnet_b2_8
"""


def test_a_user_config_file_is_read_once_and_names_the_detector(tmp_path, own_store):
    """With --config, the one reading the resolution makes names the detector for run.json
    too: run_options does not read the file again to name it, nor the batch to hash it."""
    import hashlib
    import json

    import fatools
    from fatools.models import config, loading
    from fatools.run import run_options
    from fatools.study.batch import run_batch
    from fatools.study.inputs import expand

    path = tmp_path / "short.yaml"
    path.write_text(SHORT_FORM)
    clips = [write_clip(tmp_path / f"clip{i}.mp4", 8, paint=_square) for i in range(2)]
    outs = [tmp_path / "out" / str(i) for i in range(2)]
    reads, builds = config.reads, loading.builds
    options = run_options(
        config_path=str(path), models_dir=str(own_store), tasks=["fer"], formats=["json"], every=2
    )
    assert options.detector is None  # the resolution names it
    outcomes = run_batch(expand([str(c) for c in clips]), [str(o) for o in outs], options)
    assert [o.status for o in outcomes] == ["analysed"] * 2
    assert (config.reads - reads, loading.builds - builds) == (1, 1)
    for out in outs:
        run = json.loads((out / "run.json").read_text())
        assert run["options"]["detector"] == "retinaface-mnet"
        assert run["options"]["config_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert [m["name"] for m in run["models"]] == ["retinaface-mnet", "fer"]
    # The same command again: complete, so skipped, still from that one reading.
    again = run_batch(
        expand([str(c) for c in clips]),
        [str(o) for o in outs],
        run_options(
            config_path=str(path), models_dir=str(own_store), tasks=["fer"], formats=["json"], every=2
        ),
    )
    assert [o.status for o in again] == ["skipped"] * 2
    # The Python API with the same file and models: nothing read or built again.
    fatools.analyze_video(
        str(clips[0]),
        str(tmp_path / "api"),
        config_path=str(path),
        models_dir=str(own_store),
        tasks=["fer"],
        formats=["json"],
    )
    assert (config.reads - reads, loading.builds - builds) == (1, 1)


def test_fa_detect_and_fa_predict_in_one_process_load_once(tmp_path, own_store):
    """fa-detect and fa-predict run again in one process (a notebook, the suite's chains)
    reuse the detector and the predictors they loaded: one build each, then none."""
    import json

    from click.testing import CliRunner

    from fatools.cli.detect import cli as detect
    from fatools.cli.predict import cli as predict
    from fatools.models import loading

    clip = write_clip(tmp_path / "clip.mp4", 4, paint=_square)
    frames = "".join(json.dumps({"video": str(clip), "frame": i}) + "\n" for i in range(0, 4, 2))
    builds = loading.builds
    for round_ in range(2):
        detected = CliRunner().invoke(detect, ["--models-dir", str(own_store), "-"], input=frames)
        assert detected.exit_code == 0, detected.output
        predicted = CliRunner().invoke(
            predict, ["--models-dir", str(own_store), "--tasks", "va", "-"], input=detected.stdout
        )
        assert predicted.exit_code == 0, predicted.output
        faces = [f for line in predicted.stdout.splitlines() for f in json.loads(line).get("faces") or []]
        assert len(faces) == 2 and all("va" in f for f in faces)
        assert loading.builds - builds == 2, f"round {round_}"


def test_a_changed_model_file_is_verified_again(tmp_path, own_store):
    from fatools.errors import FatoolsError
    from fatools.run import VideoAnalyzer, run_options

    options = run_options(models_dir=str(own_store), tasks=["va"])
    first = VideoAnalyzer(options)
    assert VideoAnalyzer(options).model_set is first.model_set  # kept, not rebuilt
    model = own_store / "va" / "model.pt"
    model.write_bytes(model.read_bytes() + b"\0")  # size and mtime move: the stat notices
    with pytest.raises(FatoolsError, match=r"changed since the store recorded it: .*va/model.pt"):
        VideoAnalyzer(options)


def test_records_name_the_files_the_run_resolved(tmp_path, own_store):
    from fatools.models import store
    from fatools.run import VideoAnalyzer, run_options

    analyzer = VideoAnalyzer(run_options(models_dir=str(own_store), tasks=["au", "fer"]))
    files = analyzer.models()
    assert [f["name"] for f in files] == ["retinaface", "au", "fer"]
    for row in files:
        assert row["sha256"] == store.file_record(row["name"], own_store)["sha256"]
        assert row["path"] == str(store.model_path(row["name"], own_store))
    assert analyzer.model_set.expression_labels[:2] == ("Anger", "Contempt")


# -- no import circles --------------------------------------------------------------


def _modules(package: Path) -> dict[str, Path]:
    found = {}
    for path in package.rglob("*.py"):
        parts = path.relative_to(package.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The fatools modules ``name`` imports anywhere in its file (inside functions too:
    a deferred import is still a dependency)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = alias.name
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target:
                    out.add(target)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                stem = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(stem + ([node.module] if node.module else []))
            submodules = {f"{base}.{alias.name}" for alias in node.names} & set(modules)
            # `from fatools.models import store` depends on store, not on the package's __init__.
            out |= submodules or ({base} & set(modules))
    out.discard(name)
    return out


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in graph:
        if node not in index:
            visit(node)
    return groups


def test_no_module_imports_in_a_circle():
    modules = _modules(ROOT / "fatools")
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert graph["fatools.run"], "the import reader found nothing: it would pass on anything"
    assert _cycles(graph) == []


def test_the_circle_finder_finds_a_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
