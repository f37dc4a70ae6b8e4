"""fatools' facetorch configuration: load it, trim it to the tasks asked for, build the analyzer.

The bundled ``conf/analyzer.yaml`` is a full facetorch 0.6.2 FaceAnalyzer config whose
model paths point into the model store through the ``fatools_model`` resolver, so
one file serves every store location.  ``build_analyzer`` checks the store first: a
missing model stops with what to do, never with facetorch trying the network.
A ``--config`` in the seed tool's short form (a name and a model per section) means the
bundled file with the models it names (``short_form_choices``, ``resolve_detector``).
"""

from __future__ import annotations

import copy
import functools
import logging
import os
import re
from collections.abc import Iterable, Iterator
from importlib import resources
from typing import TYPE_CHECKING

from omegaconf import DictConfig, OmegaConf

from fatools.devices import resolve_device
from fatools.errors import FatoolsError
from fatools.models import catalogue, store
from fatools.models.torchscript import import_facetorch, quiet_torchscript

if TYPE_CHECKING:  # pragma: no cover
    from facetorch import FaceAnalyzer

log = logging.getLogger("fatools")

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


def _load(path: str | os.PathLike[str], trust: bool = False) -> DictConfig:
    """The user's configuration file as written, checked for what it may run."""
    try:
        # As a string: OmegaConf reads any path-like that is not a pathlib.Path as an open file.
        cfg = OmegaConf.load(os.fspath(path))
    except OSError as exc:
        raise FatoolsError(f"{path}: cannot read the configuration ({exc.strerror})") from None
    except Exception as exc:
        first = " ".join(str(exc).split())[:200]
        raise FatoolsError(f"{path}: not a valid OmegaConf YAML file ({first})") from None
    if not isinstance(cfg, DictConfig) or "analyzer" not in cfg:
        raise FatoolsError(
            f"{path}: no top-level `analyzer` section; start from fatools' own "
            "(fatools/models/conf/analyzer.yaml)"
        )
    if not trust:
        check_targets(cfg, path)
    return cfg


# How many times this process has read a configuration (a test checks that a batch
# reads it once: fatools.models.request resolves a run's request from one read).
reads = 0


def read_config(path: str | os.PathLike[str] | None, trust: bool = False) -> tuple[DictConfig, str | None]:
    """The configuration to run (``path``'s, or the bundled one), and the detector a
    short-form ``path`` names (None otherwise)."""
    global reads
    reads += 1
    if path is None:
        return _bundled(), None
    cfg = _load(path, trust)
    choices = short_form_choices(cfg, path)
    if choices is not None:
        # The seed tool's short form names models, nothing else; each names fatools' own
        # model for its task (one per task), so fatools' own configuration is what runs,
        # with the detector it names (resolve_detector: as --detector would).
        return _bundled(), choices.get("detector")
    return cfg, None


def _bundled() -> DictConfig:
    """The bundled configuration, the caller's own copy (callers trim and change it)."""
    return copy.deepcopy(_bundled_parsed())


@functools.cache
def _bundled_parsed() -> DictConfig:
    # Parsed once a process: OmegaConf's YAML parse takes ~60 ms, a copy ~10 ms, and a
    # process resolving several requests (a batch, a notebook, the test suite) read it
    # hundreds of times.
    cfg = OmegaConf.create(bundled_config_text())
    assert isinstance(cfg, DictConfig)  # the bundled file is a mapping
    return cfg


def _read(path: str | os.PathLike[str] | None, trust: bool = False) -> DictConfig:
    return read_config(path, trust)[0]


def _short_form(analyzer: DictConfig) -> str | None:
    """The first section (``detector``, ``predictor.au``, ...) given as name/model only."""
    sections = [("detector", analyzer.get("detector"))]
    predictors = analyzer.get("predictor")
    if isinstance(predictors, DictConfig):
        sections += [(f"predictor.{key!s}", value) for key, value in predictors.items()]
    for where, section in sections:
        if (
            isinstance(section, DictConfig)
            and ("name" in section or "model" in section)
            and "_target_" not in section
        ):
            return where
    return None


def _spelling(value: object) -> str:
    return re.sub(r"[-_.\s]", "", str(value)).lower()


def _short_models(task: str) -> list[str]:
    return [
        name for name, spec in catalogue.MODELS.items() if spec.task == task and name in catalogue.SHORT_FORM
    ]


def _short_names(model: str) -> str:
    name, models = catalogue.SHORT_FORM[model]
    return f"{name}/{'|'.join(models)}"


def _fits(model: str, name: object, spelled: object) -> bool:
    known_name, known_models = catalogue.SHORT_FORM[model]
    return (name is None or _spelling(name) == _spelling(known_name)) and (
        spelled is None or _spelling(spelled) in {_spelling(m) for m in known_models}
    )


_announced: set[str] = set()


def _announce(line: str) -> None:
    # The configuration is read by every stage that loads a model; say each thing once.
    if line not in _announced:
        _announced.add(line)
        log.warning("%s", line)


def short_form_choices(cfg: DictConfig, path: str | os.PathLike[str]) -> dict[str, str] | None:
    """The catalogue model each section of a short-form configuration names, by section
    (``detector``, ``predictor.fer``, ...); None for a full facetorch configuration.

    The short form is the seed tool's: ``analyzer: detector: {name: RetinaFace, model:
    resnet50}``, ``predictor: <task>: {name: ..., model: ...}`` (catalogue.SHORT_FORM
    spells the models fatools has).  Each mapped section is said once on stderr; a
    section naming a model fatools does not have, or anything else in such a file, is a
    one-line FatoolsError saying what fatools has.
    """
    first = _short_form(cfg.analyzer)
    if first is None:
        return None
    full = "a full facetorch FaceAnalyzer configuration (copy fatools/models/conf/analyzer.yaml)"
    holds = (
        f"a short-form configuration (name/model sections, as analyzer.{first}) holds only analyzer.detector "
        "and analyzer.predictor.<task>"
    )

    def refuse(what: str) -> None:
        raise FatoolsError(f"{path}: {what} (see fa-run(1), --config)")

    for key in cfg:
        if key != "analyzer":
            refuse(f"{key!s}: {holds}; give {full}")
    sections: list[tuple[str, str, object]] = []
    for key, value in cfg.analyzer.items():
        if key == "detector":
            sections.append(("detector", "detector", value))
        elif key == "predictor" and isinstance(value, DictConfig):
            for task, section in value.items():
                if task not in catalogue.TASKS:
                    refuse(
                        f"analyzer.predictor.{task!s}: fatools has no {task!s} predictor; it has "
                        f"{', '.join(catalogue.TASKS)}"
                    )
                sections.append((f"predictor.{task!s}", str(task), section))
        else:
            refuse(f"analyzer.{key}: {holds}; fatools' options (--device, ...) set the rest, or give {full}")
    mapped: list[tuple[str, str, str]] = []
    for where, task, section in sections:
        if not isinstance(section, DictConfig) or not set(section) or not set(section) <= {"name", "model"}:
            refuse(
                f"analyzer.{where} is not a name/model section and analyzer.{first} is: a configuration gives "
                f"every section in the seed's short form (a name and a model) or is {full}"
            )
        assert isinstance(section, DictConfig)
        name, spelled = section.get("name"), section.get("model")
        given = "/".join(str(v) for v in (name, spelled) if v is not None)
        have = _short_models(task)
        listed = ", ".join(f"{_short_names(m)} ({m})" for m in have)
        matches = [model for model in have if _fits(model, name, spelled)]
        if len(matches) > 1:
            refuse(f"analyzer.{where} {given} could be any of fatools' {listed}; give its model too")
        if not matches:
            # The seed's own example names the expression model under au: say where it belongs.
            elsewhere = [m for m in catalogue.SHORT_FORM if m not in have and _fits(m, name, spelled)]
            hint = (
                f" (that is fatools' {elsewhere[0]} model, under predictor.{catalogue.MODELS[elsewhere[0]].task})"
                if elsewhere
                else ""
            )
            refuse(
                f"analyzer.{where} {given} is not a model fatools has for {task}{hint}; for {task} fatools has "
                f"{listed}: write {'that' if len(have) == 1 else 'one of those'}, or leave the section out for "
                "fatools' default"
            )
        mapped.append((where, given, matches[0]))
    for where, given, model in mapped:
        _announce(f"{path}: analyzer.{where} {given} is fatools' {model}")
    return {where: model for where, _, model in mapped}


def configured_detector(path: str | os.PathLike[str] | None, trust: bool = False) -> str | None:
    """The detector a short-form configuration's ``analyzer.detector`` names; None when
    ``path`` is None, a full facetorch configuration, or names no detector."""
    if path is None:
        return None
    return read_config(path, trust)[1]  # counted: a run names its detector from its resolution instead


def resolve_detector(
    detector: str | None, path: str | os.PathLike[str] | None = None, trust: bool = False
) -> str:
    """The detector a run uses: ``detector`` (--detector) when given, else the one a
    short-form configuration at ``path`` names, else fatools' default (retinaface).  A
    run takes it from its resolution (``models.request``), which reads the file once for
    this and everything else; this reads it again."""
    return chosen_detector(detector, configured_detector(path, trust), path)


def chosen_detector(detector: str | None, configured: str | None, path: str | os.PathLike[str] | None) -> str:
    """``resolve_detector`` once the file's own choice (``configured``) is known."""
    if detector is None:
        return configured or catalogue.DEFAULT_DETECTOR
    if configured is not None and configured != detector:
        # As elsewhere, the command line wins over the file; said, since the file was
        # probably meant.
        _announce(f"{path}: --detector {detector} replaces its analyzer.detector ({configured})")
    return detector


@functools.lru_cache(maxsize=8)
def expression_labels(path: str | None = None, trust: bool = False) -> tuple[str, ...]:
    """The expression classes of the configuration's FER predictor, in its order."""
    return labels_of(_read(path, trust))


def labels_of(cfg: DictConfig) -> tuple[str, ...]:
    """The expression classes of ``cfg``'s FER predictor, in its order (before trimming)."""
    labels = OmegaConf.select(cfg, "analyzer.predictor.fer.postprocessor.labels", default=None)
    return tuple(str(label) for label in labels) if labels else ()


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    device: str = "cpu",
    tasks: Iterable[str] | None = None,
    detector: str | None = None,
    root: str | os.PathLike[str] | None = None,
    trust: bool = False,
    source: tuple[DictConfig, str | None] | None = None,
) -> DictConfig:
    """The facetorch config to run: ``path`` (the user's own YAML) or the bundled one.

    ``tasks`` chooses which predictors remain (default au, fer, va, align); the align
    utilizer goes when align does.  ``detector="retinaface-mnet"`` swaps only the
    detector's weights (same pre/post-processing); None: ``resolve_detector``'s (a
    short-form ``path``'s detector, else retinaface).  A short-form ``path`` (the seed
    tool's name/model sections) runs the bundled configuration.  ``root`` pins the model store;
    without it the store is found when paths are resolved ($FATOOLS_MODELS or the cache).
    ``device`` may be ``auto`` (cuda when available).  A ``path`` whose `_target_`s name
    code outside facetorch, fatools, torch and torchvision is refused unless ``trust``.
    ``source`` is ``read_config(path, trust)`` when the caller has read it already.
    """
    # Every model-loading path comes through here: a missing facetorch is one line saying
    # what to install, and its import-time deprecation notices stay off the terminal.
    import_facetorch()
    cfg, configured = source if source is not None else read_config(path, trust)
    detector = chosen_detector(detector, configured, path)
    wanted = list(catalogue.DEFAULT_TASKS if tasks is None else tasks)
    unknown = [task for task in wanted if task not in catalogue.TASKS]
    if unknown:
        raise FatoolsError(f"unknown task {', '.join(unknown)}; choose from {', '.join(catalogue.TASKS)}")
    if detector not in catalogue.DETECTORS:
        raise FatoolsError(f"unknown detector {detector}; choose from {', '.join(catalogue.DETECTORS)}")
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
    # A device the caller resolved stays as given (a configuration may be made for a GPU elsewhere).
    analyzer.device = str(resolve_device(device)) if device == "auto" else device
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


def build_analyzer(cfg: DictConfig) -> FaceAnalyzer:
    """A facetorch FaceAnalyzer for ``cfg``, after checking every model it needs is stored."""
    root = OmegaConf.select(cfg, "fatools.models_dir", default=None)
    store.require(required_models(cfg), root)
    from facetorch import FaceAnalyzer

    with quiet_torchscript():
        return FaceAnalyzer(cfg.analyzer if "analyzer" in cfg else cfg)
