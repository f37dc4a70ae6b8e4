"""fatools' facetorch configuration: load it, trim it to the tasks asked for, build the analyzer.

The bundled ``conf/analyzer.yaml`` is a full facetorch 0.6.2 FaceAnalyzer config whose
model paths point into the model store through the ``fatools_model`` resolver, so
one file serves every store location.  ``build_analyzer`` checks the store first: a
missing model stops with what to do, never with facetorch trying the network.
"""

from __future__ import annotations

import functools
import os
import re
from importlib import resources
from typing import TYPE_CHECKING, Iterable, Iterator

from omegaconf import DictConfig, OmegaConf

from fatools.errors import FatoolsError
from fatools.models import catalogue, store
from fatools.models.torchscript import import_facetorch, quiet_torchscript

if TYPE_CHECKING:  # pragma: no cover
    from facetorch import FaceAnalyzer

RESOLVER = "fatools_model"
_MODEL_REF = re.compile(r"\$\{\s*" + RESOLVER + r"\s*:\s*'?([\w.-]+)'?\s*\}")


def _resolve_model(name: str, *, _root_: DictConfig) -> str:
    """``${fatools_model:NAME}`` -> the store path, read at resolve time so that the
    config's ``fatools.models_dir`` (or the current $FATOOLS_MODELS) decides."""
    root = OmegaConf.select(_root_, "fatools.models_dir", default=None)
    return str(store.model_path(name, root))


if not OmegaConf.has_resolver(RESOLVER):
    OmegaConf.register_new_resolver(RESOLVER, _resolve_model)


def bundled_config_text() -> str:
    """The text of the bundled configuration (a starting point for ``--config``)."""
    return resources.files("fatools.models").joinpath("conf/analyzer.yaml").read_text(encoding="utf-8")


# What a --config's `_target_`s may name without --trust-config: the code the bundled
# configuration itself instantiates.  A guard against a configuration that quietly does
# something else (hydra-core 1.3 blocks exec and os.system, but not shutil.copyfile), not
# a sandbox: torch.hub.load, torch.load and facetorch's downloaders are inside it.
TRUSTED_PREFIXES = ("facetorch.", "fatools.", "torch.", "torchvision.")
TRUSTED_NAMES = ("torch", "torchvision")


def _targets(node: object, where: str) -> Iterator[tuple[str, object]]:
    """(key path, value) of every `_target_` below ``node``, lists included."""
    if isinstance(node, dict):
        for key, value in node.items():
            path = f"{where}.{key}" if where else str(key)
            if key == "_target_":
                yield path, value
            else:
                yield from _targets(value, path)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _targets(value, f"{where}[{index}]")


def _trusted_target(target: object) -> bool:
    # An interpolation (`${...}`) is judged as written: it passes only when its literal
    # prefix already names trusted code.
    return isinstance(target, str) and (target in TRUSTED_NAMES or target.startswith(TRUSTED_PREFIXES))


def check_targets(cfg: DictConfig, path: str | os.PathLike[str]) -> None:
    """A FatoolsError naming the first `_target_` of ``cfg`` outside facetorch, fatools,
    torch and torchvision: a configuration is code, and such a one runs only when trusted."""
    for where, target in _targets(OmegaConf.to_container(cfg, resolve=False), ""):
        if not _trusted_target(target):
            raise FatoolsError(
                f"{path}: {where} is {target!r}, code outside facetorch, fatools, torch and torchvision; "
                "a configuration runs as code: give --trust-config if you trust this file"
            )


def _read(path: str | os.PathLike[str] | None, trust: bool = False) -> DictConfig:
    if path is None:
        return OmegaConf.create(bundled_config_text())
    try:
        cfg = OmegaConf.load(path)
    except OSError as exc:
        raise FatoolsError(f"{path}: cannot read the configuration ({exc.strerror})") from None
    except Exception as exc:  # noqa: BLE001 - YAML and OmegaConf errors alike
        first = " ".join(str(exc).split())[:200]
        raise FatoolsError(f"{path}: not a valid OmegaConf YAML file ({first})") from None
    if not isinstance(cfg, DictConfig) or "analyzer" not in cfg:
        raise FatoolsError(
            f"{path}: no top-level `analyzer` section; start from fatools' own "
            "(fatools/models/conf/analyzer.yaml)"
        )
    if not trust:
        check_targets(cfg, path)
    short = _short_form(cfg.analyzer)
    if short is not None:
        # The seed tool documented `detector: {name: ..., model: ...}`; merging such names
        # over the bundled file would promise model choices fatools does not have (one
        # model per task, the detector's by --detector), so it is refused, in one line.
        raise FatoolsError(
            f"{path}: `analyzer.{short}` has the seed's short form (name/model); --config expects a full facetorch "
            "FaceAnalyzer configuration (copy fatools/models/conf/analyzer.yaml and edit it); `fa-models list` "
            "shows the models fatools runs, --detector chooses the detector (see fa-run(1), --config)"
        )
    return cfg


def _short_form(analyzer: DictConfig) -> str | None:
    """The first section (``detector``, ``predictor.au``, ...) given as name/model only."""
    sections = [("detector", analyzer.get("detector"))]
    predictors = analyzer.get("predictor")
    if isinstance(predictors, DictConfig):
        sections += [(f"predictor.{key}", value) for key, value in predictors.items()]
    for where, section in sections:
        if isinstance(section, DictConfig) and ("name" in section or "model" in section) and "_target_" not in section:
            return where
    return None


@functools.lru_cache(maxsize=8)
def expression_labels(path: str | None = None, trust: bool = False) -> tuple[str, ...]:
    """The expression classes of the configuration's FER predictor, in its order."""
    labels = OmegaConf.select(_read(path, trust), "analyzer.predictor.fer.postprocessor.labels", default=None)
    return tuple(str(label) for label in labels) if labels else ()


def _resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    device: str = "cpu",
    tasks: Iterable[str] | None = None,
    detector: str = catalogue.DEFAULT_DETECTOR,
    root: str | os.PathLike[str] | None = None,
    trust: bool = False,
) -> DictConfig:
    """The facetorch config to run: ``path`` (the user's own YAML) or the bundled one.

    ``tasks`` chooses which predictors remain (default au, fer, va, align); the align
    utilizer goes when align does.  ``detector="retinaface-mnet"`` swaps only the
    detector's weights (same pre/post-processing).  ``root`` pins the model store;
    without it the store is found when paths are resolved ($FATOOLS_MODELS or the cache).
    ``device`` may be ``auto`` (cuda when available).  A ``path`` whose `_target_`s name
    code outside facetorch, fatools, torch and torchvision is refused unless ``trust``.
    """
    # Every model-loading path comes through here: a missing facetorch is one line saying
    # what to install, and its import-time deprecation notices stay off the terminal.
    import_facetorch()
    cfg = _read(path, trust)
    wanted = list(catalogue.DEFAULT_TASKS if tasks is None else tasks)
    unknown = [task for task in wanted if task not in catalogue.TASKS]
    if unknown:
        raise FatoolsError(
            f"unknown task {', '.join(unknown)}; choose from {', '.join(catalogue.TASKS)}"
        )
    if detector not in catalogue.DETECTORS:
        raise FatoolsError(
            f"unknown detector {detector}; choose from {', '.join(catalogue.DETECTORS)}"
        )
    analyzer = cfg.analyzer
    predictors = analyzer.get("predictor") or OmegaConf.create({})
    absent = [task for task in wanted if task not in predictors]
    if absent:
        where = path or "the bundled configuration"
        raise FatoolsError(f"{where}: no predictor configured for {', '.join(absent)}")

    if root is not None or OmegaConf.select(cfg, "fatools.models_dir", default=None) is None:
        # An explicit root wins; otherwise a store named in the user's own file stays.
        pinned = str(store.models_dir(root)) if root is not None else None
        merged = OmegaConf.merge(cfg, {"fatools": {"models_dir": pinned}})
        assert isinstance(merged, DictConfig)
        cfg = merged
    analyzer = cfg.analyzer
    analyzer.device = _resolve_device(device)
    analyzer.predictor = {task: analyzer.predictor[task] for task in wanted}
    if "align" not in wanted and "utilizer" in analyzer and "align" in analyzer.utilizer:
        del analyzer.utilizer["align"]
        if len(analyzer.utilizer) == 0:
            del analyzer["utilizer"]
    if detector == "retinaface-mnet":
        from_spec = catalogue.MODELS["retinaface-mnet"]
        analyzer.detector.downloader = {
            "_target_": "fatools.models.retinaface_mnet.DownloaderPipWheel",
            "file_id": from_spec.source,
            "path_local": "${" + RESOLVER + ":retinaface-mnet}",
        }
    return cfg


def _model_refs(node: object) -> Iterable[str]:
    if isinstance(node, dict):
        for value in node.values():
            yield from _model_refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _model_refs(value)
    elif isinstance(node, str):
        yield from _MODEL_REF.findall(node)


def required_models(cfg: DictConfig) -> list[str]:
    """The store entries a config needs (those its paths take from ``${fatools_model:...}``),
    in catalogue order."""
    section = cfg.analyzer if "analyzer" in cfg else cfg
    found = set(_model_refs(OmegaConf.to_container(section, resolve=False)))
    unknown = sorted(found - set(catalogue.MODELS))
    if unknown:
        raise FatoolsError(
            f"the configuration names unknown model {', '.join(unknown)}; "
            f"choose from {', '.join(catalogue.MODELS)}"
        )
    return [name for name in catalogue.MODELS if name in found]


def build_analyzer(cfg: DictConfig) -> "FaceAnalyzer":
    """A facetorch FaceAnalyzer for ``cfg``, after checking every model it needs is stored."""
    root = OmegaConf.select(cfg, "fatools.models_dir", default=None)
    store.require(required_models(cfg), root)
    from facetorch import FaceAnalyzer

    with quiet_torchscript():
        return FaceAnalyzer(cfg.analyzer if "analyzer" in cfg else cfg)
