"""The seed tool's short configuration form given to --config (a name and a model per
section): each section naming a model fatools has runs it, said on stderr; anything
else is refused in one line that says what fatools has (models/config.py)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from fatools.errors import FatoolsError
from fatools.models.config import load_config, required_models, resolve_detector

# The seed README's custom_config.yaml, as written there: its au line names the
# expression model, which is no action-unit model (facetorch's is OpenGraphAU).
SEED_README_CONFIG = """\
# custom_config.yaml
analyzer:
  detector:
    name: "RetinaFace"
    model: "resnet50"
  predictor:
    au:
      name: "EfficientNet-B2"
      model: "efficientnet_b2_8"
    fer:
      name: "EfficientNet-B2"
      model: "efficientnet_b2_8"
"""

# What fatools has, in the seed's form: the MobileNet0.25 detector and the expression model.
MNET_FER = """\
analyzer:
  detector:
    name: RetinaFace
    model: mobilenet0.25
  predictor:
    fer:
      name: EfficientNet-B2
      model: efficientnet_b2_8
"""


def write(tmp_path, text, name="custom_config.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def refusal(path, **kwargs) -> str:
    with pytest.raises(FatoolsError) as error:
        load_config(path, **kwargs)
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    return message


def test_short_form_names_the_catalogue_models(tmp_path):
    path = write(tmp_path, MNET_FER)
    assert resolve_detector(None, path) == "retinaface-mnet"
    cfg = load_config(path, tasks=["fer", "va"])
    # fatools' own configuration runs, with the detector the file names; the other
    # tasks (va here) are fatools' defaults.
    assert required_models(cfg) == ["retinaface-mnet", "fer", "va"]
    assert cfg.analyzer.predictor.fer.downloader.repo_id == "tomas-gajarsky/facetorch-fer-efficientnet-b2"


def test_resnet50_is_retinaface_and_a_given_detector_wins(tmp_path):
    path = write(tmp_path, 'analyzer:\n  detector: {name: "RetinaFace", model: "resnet50"}\n')
    assert resolve_detector(None, path) == "retinaface"
    assert required_models(load_config(path, tasks=["au"])) == ["retinaface", "au"]
    mnet = write(tmp_path, MNET_FER, "mnet.yaml")
    assert resolve_detector("retinaface", mnet) == "retinaface"  # the command line over the file
    # Spelt loosely (case, separators) it is the same model.
    loose = write(tmp_path, "analyzer:\n  detector: {name: retinaface, model: MobileNet0_25}\n", "loose.yaml")
    assert resolve_detector(None, loose) == "retinaface-mnet"


def test_a_path_like_configuration_path_is_read(tmp_path):
    # OmegaConf opens a str or a pathlib.Path and took any other os.PathLike for an open file.
    class Where:
        def __init__(self, path: str) -> None:
            self.path = path

        def __fspath__(self) -> str:
            return self.path

    assert resolve_detector(None, Where(write(tmp_path, MNET_FER))) == "retinaface-mnet"


def test_a_full_configuration_is_not_short_form(tmp_path):
    from fatools.models.config import bundled_config_text

    path = write(tmp_path, bundled_config_text(), "full.yaml")
    assert resolve_detector(None, path) == "retinaface"
    assert set(load_config(path, tasks=["au", "fer"]).analyzer.predictor) == {"au", "fer"}


def test_a_model_fatools_lacks_is_refused_with_what_it_has(tmp_path):
    path = write(
        tmp_path, "analyzer:\n  predictor:\n    fer: {name: EfficientNet-B0, model: efficientnet_b0_7}\n"
    )
    message = refusal(path, tasks=["fer"])
    assert (
        "analyzer.predictor.fer EfficientNet-B0/efficientnet_b0_7 is not a model fatools has for fer"
        in message
    )
    assert "for fer fatools has EfficientNet-B2/efficientnet_b2_8 (fer)" in message
    detector = write(tmp_path, "analyzer:\n  detector: {name: MTCNN, model: mtcnn}\n", "det.yaml")
    message = refusal(detector)
    assert "analyzer.detector MTCNN/mtcnn is not a model fatools has for detector" in message
    assert "RetinaFace/resnet50 (retinaface), RetinaFace/mobilenet0.25 (retinaface-mnet)" in message


def test_the_seed_readme_config_is_refused_for_its_au_line(tmp_path):
    path = write(tmp_path, SEED_README_CONFIG)
    message = refusal(path, tasks=["au", "fer"])
    assert message.startswith(
        f"{path}: analyzer.predictor.au EfficientNet-B2/efficientnet_b2_8 is not a model fatools has for au"
    )
    # What to do: where that model belongs, and the one to name instead.
    assert "fatools' fer model, under predictor.fer" in message
    assert "OpenGraphAU/open_graph_swin_base (au)" in message and "leave the section out" in message
    fixed = write(
        tmp_path,
        SEED_README_CONFIG.replace(
            '"EfficientNet-B2"\n      model: "efficientnet_b2_8"\n    fer',
            '"OpenGraphAU"\n      model: "open_graph_swin_base"\n    fer',
        ),
        "fixed.yaml",
    )
    assert set(load_config(fixed, tasks=["au", "fer"]).analyzer.predictor) == {"au", "fer"}


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "analyzer:\n  device: cpu\n  detector: {name: RetinaFace, model: resnet50}\n",
            "analyzer.device: a short-form configuration",
        ),
        (
            "analyzer:\n  detector: {name: RetinaFace, model: resnet50}\n  predictor:\n    va: {_target_: facetorch.x}\n",
            "analyzer.predictor.va is not a name/model section",
        ),
        (
            "analyzer:\n  predictor:\n    deepfake: {name: EfficientNet-B7, model: efficientnet_b7}\n",
            "fatools has no deepfake predictor; it has au, fer, va, align, embed",
        ),
        ("analyzer:\n  detector: {name: RetinaFace}\n", "RetinaFace could be any of fatools'"),
    ],
)
def test_what_the_short_form_cannot_mean_is_refused(tmp_path, text, expected):
    assert expected in refusal(write(tmp_path, text))


def test_the_bundled_configuration_still_loads():
    cfg = load_config(None, tasks=["au", "fer"])
    assert set(cfg.analyzer.predictor) == {"au", "fer"}


def clip_of(tmp_path):
    from fatools.sample import write_video
    from tests.test_run import two_faces

    clip = tmp_path / "two.mp4"
    write_video((two_faces(i) for i in range(4)), str(clip), fps=12)
    return clip


def test_fa_run_runs_the_models_a_short_form_names(tmp_path, standin_store):
    from fatools.cli.run import cli

    path = write(tmp_path, MNET_FER)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli,
        [
            str(clip_of(tmp_path)),
            "-o",
            str(out),
            "--config",
            path,
            "--every",
            "2",
            "--tasks",
            "fer",
            "--format",
            "json",
            "--models-dir",
            str(standin_store),
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        f"fa-run: {path}: analyzer.detector RetinaFace/mobilenet0.25 is fatools' retinaface-mnet",
        f"fa-run: {path}: analyzer.predictor.fer EfficientNet-B2/efficientnet_b2_8 is fatools' fer",
    ]
    records = [json.loads(line) for line in (out / "frames.jsonl").read_text().splitlines()]
    frames = [r for r in records if r.get("type", "frame") == "frame"]
    assert frames and all(r["detection"]["detector"] == "retinaface-mnet" for r in frames)
    assert all(face["expression"] for r in frames for face in r["faces"])
    run = json.loads((out / "run.json").read_text())
    assert run["options"]["detector"] == "retinaface-mnet"
    assert [m["name"] for m in run["models"]] == ["retinaface-mnet", "fer"]


def test_fa_run_stops_on_the_seed_config_before_any_work(tmp_path, standin_store):
    from fatools.cli.run import cli

    path = write(tmp_path, SEED_README_CONFIG)
    result = CliRunner().invoke(
        cli,
        [
            str(clip_of(tmp_path)),
            "-o",
            str(tmp_path / "out"),
            "--config",
            path,
            "--models-dir",
            str(standin_store),
        ],
    )
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(
        f"fa-run: error: {path}: analyzer.predictor.au EfficientNet-B2/efficientnet_b2_8"
    )
    assert "Traceback" not in result.stderr and not (tmp_path / "out" / "frames.jsonl").exists()
