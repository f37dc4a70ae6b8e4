"""The seed tool's short configuration form given to --config: refused in one line that
says what --config expects (fatools runs one model per task; see models/config.py)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from fatools.errors import FatoolsError
from fatools.models.config import load_config

# The form the seed's documentation shows: a model chosen by name and model per section.
SEED_EXAMPLE = """\
analyzer:
  device: cpu
  detector:
    name: RetinaFace
    model: resnet50
  predictor:
    au:
      name: OpenGraphAU
      model: swin_base
"""


@pytest.fixture()
def seed_config(tmp_path):
    path = tmp_path / "seed.yaml"
    path.write_text(SEED_EXAMPLE)
    return path


def test_short_form_is_refused_in_one_line(seed_config):
    with pytest.raises(FatoolsError) as error:
        load_config(str(seed_config), tasks=["au"])
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"{seed_config}: `analyzer.detector` has the seed's short form")
    assert "full facetorch FaceAnalyzer configuration" in message and "analyzer.yaml" in message
    assert "fa-models list" in message and "fa-run(1)" in message


def test_a_short_predictor_alone_is_named(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("analyzer:\n  predictor:\n    fer:\n      name: EfficientNet\n      model: b2\n")
    with pytest.raises(FatoolsError, match=r"`analyzer.predictor.fer` has the seed's short form"):
        load_config(str(path), tasks=["fer"])


def test_the_bundled_configuration_still_loads():
    cfg = load_config(None, tasks=["au", "fer"])
    assert set(cfg.analyzer.predictor) == {"au", "fer"}


def test_fa_run_stops_before_any_work(seed_config, tmp_path, standin_store):
    from fatools.cli.run import cli
    from fatools.sample import write_video
    from tests.test_run import two_faces

    clip = tmp_path / "two.mp4"
    write_video((two_faces(i) for i in range(4)), str(clip), fps=12)
    result = CliRunner().invoke(cli, [str(clip), "-o", str(tmp_path / "out"), "--config", str(seed_config),
                                      "--models-dir", str(standin_store)])
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "seed's short form" in result.stderr
    assert "ConfigAttributeError" not in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out" / "frames.jsonl").exists()
