"""The seed tool's README, run as written: its command lines with fa-run for
`python enhanced_facetorch_analyzer.py`, its Python examples with fatools for its two
modules.  The one other change is the documented one, `frame_results` ->
`frame_analyses` (the seed's README misnames its own JSON's key), plus the
`from collections import Counter` its example needs.  On stand-in models and a short
clip of two 'faces' the stand-in detector finds.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fatools.sample import write_video
from tests.test_config_short import SEED_README_CONFIG
from tests.test_run import two_faces

BIN = Path(sys.executable).parent

# The seed README's "Command Line Usage", verbatim.  They are alternatives that all
# write results/, so each runs in a directory of its own (run one after another in one
# directory, the second is refused: results/ holds results made with other options,
# and fa-run redoes them only with --force).
SEED_COMMANDS = """\
python enhanced_facetorch_analyzer.py video.mp4 --output results/
python enhanced_facetorch_analyzer.py video.mp4 --sample-rate 10 --output results/
python enhanced_facetorch_analyzer.py video.mp4 --verbose --output results/
"""

# The seed README's Python examples, verbatim, one per section.
SEED_BASIC = """\
from facetorch_video_analyzer import analyze_video_facial_actions
# Analyze a video with default settings
results = analyze_video_facial_actions(
    video_path="sample_video.mp4",
    output_path="results/",
    sample_rate=5  # Analyze every 5th frame
)
print(f"Analyzed {len(results['frame_results'])} frames")
"""

SEED_ADVANCED = """\
from enhanced_facetorch_analyzer import FacialActionVideoAnalyzer
analyzer = FacialActionVideoAnalyzer()
results = analyzer.analyze_video(
    video_path="interview.mp4",
    output_dir="results/",
    sample_rate=10  # Every 10th frame for faster processing
)
stats = results['summary_statistics']
print(f"Most common emotion: {stats['most_common_emotion']}")
print(f"Average valence: {stats['average_valence']:.3f}")
print(f"Most active AUs: {stats['most_active_action_units'][:3]}")
"""

SEED_EXAMPLES = """\
# 1. Interview Analysis
results = analyzer.analyze_video(video_path="job_interview.mp4", output_dir="interview_analysis/", sample_rate=5)
emotions = [face['expression']['predicted_emotion']
           for frame in results['frame_analyses']
           for face in frame['faces']
           if 'expression' in face]
print(f"Emotion distribution: {Counter(emotions)}")
# 2. Therapy Session Analysis
results = analyzer.analyze_video(video_path="therapy_session.mp4", output_dir="therapy_analysis/", sample_rate=3)
valence_timeline = []
for frame in results['frame_analyses']:
    for face in frame['faces']:
        if 'valence_arousal' in face:
            valence_timeline.append({'timestamp': frame['timestamp_seconds'], 'valence': face['valence_arousal']['valence']})
# 3. Educational Content Analysis
results = analyzer.analyze_video(video_path="lecture.mp4", output_dir="engagement_analysis/", sample_rate=15)
attention_markers = []
for frame in results['frame_analyses']:
    for face in frame['faces']:
        if 'action_units' in face:
            if 'AU5' in face['action_units']['active_action_units']:
                attention_markers.append(frame['timestamp_seconds'])
"""

SEED_CONFIG_YAML = SEED_README_CONFIG  # the seed README's custom_config.yaml, as written there

SEED_CONFIG_USE = 'analyzer = FacialActionVideoAnalyzer(config_path="custom_config.yaml")\n'


def as_fatools(python: str) -> str:
    """The seed's Python with fatools for its modules and the documented key."""
    return (
        python.replace("from facetorch_video_analyzer import", "from fatools import")
        .replace("from enhanced_facetorch_analyzer import", "from fatools import")
        .replace("frame_results", "frame_analyses")
    )


def paste_in_turn(paths: list[str]) -> None:
    """Runs each snippet in one namespace, as a reader pasting them in turn would; a
    fatools error (the seed's configuration) is printed, and what the examples built is
    printed last for the test to look at."""
    from fatools.errors import FatoolsError

    namespace: dict = {}
    for path in paths:
        try:
            exec(compile(Path(path).read_text(), path, "exec"), namespace)
        except FatoolsError as exc:
            print(f"refused: {exc}")
    built = {
        "valence_timeline": namespace["valence_timeline"],
        "attention_markers": namespace["attention_markers"],
    }
    print(json.dumps(built))


FRAMES = 16  # every 15th frame still gives two


@pytest.fixture(scope="module")
def seed_clip(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("seed-clip") / "video.mp4"
    write_video((two_faces(i) for i in range(FRAMES)), str(path), fps=12)
    return path


def environment(store: Path) -> dict:
    env = dict(os.environ)
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", FATOOLS_MODELS=str(store))
    return env


def analysis_in(results: Path) -> dict:
    (json_file,) = results.glob("facial_analysis_2*.json")
    return json.loads(json_file.read_text())


def test_the_seed_command_lines_run_as_fa_run(seed_clip, standin_store, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from fatools.cli.run import cli as run_cli

    lines = SEED_COMMANDS.splitlines()
    assert len(lines) == 3
    frames_of = []
    for index, line in enumerate(lines):
        work = tmp_path / f"command{index}"
        work.mkdir()
        shutil.copy(seed_clip, work / "video.mp4")
        command = line.replace("python enhanced_facetorch_analyzer.py", "fa-run")
        if "--verbose" in line:
            # Through the shell, as the README's reader types it: the fa-run on PATH, its stderr.
            proc = subprocess.run(
                command, shell=True, cwd=work, env=environment(standin_store), capture_output=True, text=True
            )
            code, stderr = proc.returncode, proc.stderr
        else:
            # The same words given to fa-run in this process (no torch import and model build each).
            monkeypatch.chdir(work)
            result = CliRunner().invoke(
                run_cli, shlex.split(command)[1:], env={"FATOOLS_MODELS": str(standin_store)}
            )
            code, stderr = result.exit_code, result.stderr
        assert code == 0, f"{command}: {stderr}"
        assert "Traceback" not in stderr
        analysis = analysis_in(work / "results")
        frames_of.append([frame["frame_index"] for frame in analysis["frame_analyses"]])
        assert all(len(frame["faces"]) == 2 for frame in analysis["frame_analyses"])
        # --verbose is fatools' -v: progress on stderr, which the default run keeps quiet.
        assert ("frames analysed" in stderr) == ("--verbose" in line), stderr
    # The seed's default is every 5th frame; --sample-rate 10 is --every 10.
    assert frames_of == [[0, 5, 10, 15], [0, 10], [0, 5, 10, 15]]


def test_the_seed_python_examples_run_on_fatools(seed_clip, standin_store, tmp_path, monkeypatch, capfd):
    """The snippets run in this process (its loaded models; the shell's command line is
    test_the_seed_command_lines_run_as_fa_run's, a fresh `import fatools`
    test_dir_shows_the_api_and_import_stays_cheap's), everything they print captured at
    the file descriptor, as a process's standard output would be."""
    for name in ("sample_video", "interview", "job_interview", "therapy_session", "lecture"):
        shutil.copy(seed_clip, tmp_path / f"{name}.mp4")
    (tmp_path / "custom_config.yaml").write_text(SEED_CONFIG_YAML)
    snippets = {
        "basic.py": as_fatools(SEED_BASIC),
        "advanced.py": as_fatools(SEED_ADVANCED),
        "examples.py": "from collections import Counter\n" + as_fatools(SEED_EXAMPLES),
        "configuration.py": as_fatools(SEED_CONFIG_USE),
    }
    for name, text in snippets.items():
        (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FATOOLS_MODELS", str(standin_store))
    capfd.readouterr()
    paste_in_turn(list(snippets))
    out = capfd.readouterr().out.splitlines()
    assert out[0] == "Analyzed 4 frames"  # frames 0, 5, 10, 15
    assert out[1] == "Most common emotion: Happiness"  # the stand-in's brightest-face expression
    assert out[2].startswith("Average valence: ") and -1 <= float(out[2].split(": ")[1]) <= 1
    assert out[3].startswith("Most active AUs: [['AU")
    assert out[4].startswith("Emotion distribution: Counter({'Happiness': ")
    # The seed's configuration names the expression model for au: refused, saying so.
    assert out[5].startswith(
        "refused: custom_config.yaml: analyzer.predictor.au EfficientNet-B2/efficientnet_b2_8 "
        "is not a model fatools has for au (that is fatools' fer model"
    )
    built = json.loads(out[6])
    assert len(out) == 7
    # Every 3rd frame of 16 (0, 3, ..., 15), two faces each.
    assert [entry["timestamp"] for entry in built["valence_timeline"]] == [
        round(frame / 12, 6) for frame in range(0, FRAMES, 3) for _ in range(2)
    ]
    assert all(-1 <= entry["valence"] <= 1 for entry in built["valence_timeline"])
    assert isinstance(built["attention_markers"], list)
    for directory in ("interview_analysis", "therapy_analysis", "engagement_analysis"):
        assert analysis_in(tmp_path / directory)["frame_analyses"], directory
    assert list((tmp_path / "results").glob("facial_analysis_2*.json"))  # basic and advanced both write there


def test_the_seed_names_are_fatools_names(standin_store, seed_clip, tmp_path, monkeypatch):
    import inspect
    import tempfile

    import fatools

    assert fatools.analyze_video_facial_actions is fatools.analyze_video
    parameters = inspect.signature(fatools.analyze_video_facial_actions).parameters
    assert list(parameters)[:3] == ["video_path", "output_path", "sample_rate"]
    assert parameters["output_path"].default is None and parameters["sample_rate"].default == 5
    # No output_path: the analysis comes back and nothing stays on disk.
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.chdir(tmp_path)
    before = sorted(tmp_path.iterdir())
    analysis = fatools.analyze_video_facial_actions(
        str(seed_clip), sample_rate=8, models_dir=str(standin_store)
    )
    assert [frame["frame_index"] for frame in analysis["frame_analyses"]] == [0, 8]
    assert sorted(tmp_path.iterdir()) == before and not list(scratch.iterdir())


def test_dir_shows_the_api_and_import_stays_cheap():
    code = (
        "import json, sys, fatools; print(json.dumps([dir(fatools), sorted(m for m in sys.modules if m == 'torch' "
        "or m.startswith('fatools.'))]))"
    )
    names, loaded = json.loads(
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    )
    assert {
        "analyze_video",
        "analyze_video_facial_actions",
        "FacialActionVideoAnalyzer",
        "__version__",
    } <= set(names)
    # dir() names the lazy API without importing it; fatools.versions (the version string,
    # importlib.metadata only) is all `import fatools` loads.
    assert loaded == ["fatools.versions"]
    import fatools

    assert all(hasattr(fatools, name) for name in dir(fatools))


@pytest.mark.parametrize("command", ["fa-run", "fa-frames"])
def test_sample_rate_is_every_on_each_command_that_samples(command):
    from click.testing import CliRunner

    from fatools.cli.frames import cli as frames_cli
    from fatools.cli.run import cli as run_cli

    cli = {"fa-run": run_cli, "fa-frames": frames_cli}[command]
    every = next(p for p in cli.params if p.name == "every")
    assert every.opts == ["--every", "--sample-rate"]
    text = CliRunner().invoke(cli, ["--help"], terminal_width=200).output
    assert "--every, --sample-rate INTEGER" in text and "seed tool's name" in text


def test_fa_frames_sample_rate_keeps_what_every_keeps(seed_clip):
    from click.testing import CliRunner

    from fatools.cli.frames import cli

    seed = CliRunner().invoke(cli, [str(seed_clip), "--sample-rate", "5"])
    ours = CliRunner().invoke(cli, [str(seed_clip), "--every", "5"])
    assert seed.exit_code == ours.exit_code == 0
    assert seed.stdout == ours.stdout
    assert [json.loads(line)["frame"] for line in ours.stdout.splitlines()[1:]] == [0, 5, 10, 15]
