"""Mutants of the pre-processing, as tests of the tests (issue 29): each must fail a test.

A mutant is a plausible bug in fatools' own pre-processing, put in by monkeypatching
from the tests (nothing of it is in the product): ``FATOOLS_MUTANT=NAME:MODE`` makes
tests/conftest.py's ``_mutant`` fixture apply it for the whole session.  MODE says which
of fatools' two paths it breaks: ``default`` (crops from the original frame) or
``exact`` (``--facetorch-exact``: crops from the detector's input); facetorch's own code,
which the parity tests compare with, is never touched.

=============  =======================================================================
NAME           default mode                        exact mode
=============  =======================================================================
crop           the square cut one pixel right      the box one detector pixel right
channels       crops in BGR                        the frame converted to BGR
antialias      fatools' resizes without antialiasing (the crops' / the detector input's)
norm           crops scaled by 1/256, not 1/255    the detector's mean subtracted in RGB
                                                   order, not facetorch's BGR order
=============  =======================================================================

``python tests/mutants.py`` (``make test-mutants``) runs the unmutated tests (which must
pass), then each mutant against its mode's tests (``TESTS``), which must fail, and
prints which tests caught each one.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from pathlib import Path
from typing import Any

NAMES = ("crop", "channels", "antialias", "norm")
MODES = ("default", "exact")
# The tests that back each mode's exactness claim.
TESTS = {"default": ["tests/test_predict_oracle.py"], "exact": ["tests/test_predict_parity.py"]}


def _shift_crop(mp: Any) -> None:
    import fatools.predict as predict

    original = predict.crop_padded
    mp.setattr(
        predict, "crop_padded", lambda frame, box: original(frame, (box[0] + 1, box[1], box[2] + 1, box[3]))
    )


def _shift_exact_box(mp: Any) -> None:
    from fatools.geometry import Geometry

    original = Geometry.box_to_detector

    def box_to_detector(self: Geometry, box: list[float]) -> list[float]:
        x1, y1, x2, y2 = original(self, box)
        return [x1 + 1, y1, x2 + 1, y2]

    mp.setattr(Geometry, "box_to_detector", box_to_detector)


def _bgr_crops(mp: Any) -> None:
    import fatools.predict as predict

    original = predict.crop_padded
    mp.setattr(
        predict, "crop_padded", lambda frame, box: original(frame, box).flip(0)
    )  # predict flips it back to BGR


def _bgr_frames(mp: Any) -> None:
    import fatools.geometry as geometry

    original = geometry.rgb_batch
    mp.setattr(geometry, "rgb_batch", lambda images, device: original(images, device).flip(1))


def _no_antialias(mp: Any) -> None:
    """torchvision's resize without antialiasing where fatools' code calls it (facetorch's
    transforms call it from torchvision's own module and keep theirs)."""
    from torchvision.transforms import functional

    original = functional.resize

    @functools.wraps(original)
    def resize(*args: Any, **kwargs: Any) -> Any:
        if sys._getframe(1).f_globals.get("__name__", "").startswith("fatools."):
            kwargs["antialias"] = False
        return original(*args, **kwargs)

    mp.setattr(functional, "resize", resize)


def _scale_256(mp: Any) -> None:
    import fatools.predict as predict

    original = predict.crop_padded
    mp.setattr(predict, "crop_padded", lambda frame, box: original(frame, box).float() * (255.0 / 256.0))


def _mean_in_rgb_order(mp: Any) -> None:
    from torchvision.transforms import Normalize

    import fatools.predict as predict

    original = predict.FacePredictors.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        if self.detector_transform is not None:
            self.detector_transform = Normalize(mean=[104.0, 117.0, 123.0], std=[1.0, 1.0, 1.0])

    mp.setattr(predict.FacePredictors, "__init__", __init__)


MUTANTS: dict[tuple[str, str], Callable[[Any], None]] = {
    ("crop", "default"): _shift_crop,
    ("crop", "exact"): _shift_exact_box,
    ("channels", "default"): _bgr_crops,
    ("channels", "exact"): _bgr_frames,
    ("antialias", "default"): _no_antialias,
    ("antialias", "exact"): _no_antialias,
    ("norm", "default"): _scale_256,
    ("norm", "exact"): _mean_in_rgb_order,
}


def apply(spec: str, mp: Any) -> None:
    """Apply the mutant ``NAME:MODE`` with the MonkeyPatch ``mp``."""
    name, _, mode = spec.partition(":")
    if (name, mode) not in MUTANTS:
        raise ValueError(
            f"FATOOLS_MUTANT={spec!r}: choose NAME:MODE, NAME one of {NAMES}, MODE one of {MODES}"
        )
    MUTANTS[name, mode](mp)


def _run(tests: list[str], mutant: str | None, pytest_args: list[str]) -> tuple[int, list[str], int]:
    """pytest on ``tests`` under ``mutant``: exit status, the failed tests, the tests run."""
    env = dict(os.environ)
    env.pop("FATOOLS_MUTANT", None)
    if mutant:
        env["FATOOLS_MUTANT"] = mutant
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.xml"
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                f"--junitxml={report}",
                *pytest_args,
                *tests,
            ],
            env=env,
            capture_output=True,
            text=True,
        )
        failed, ran = [], 0
        if report.is_file():
            for case in ElementTree.parse(report).iter("testcase"):
                ran += 1
                if case.find("failure") is not None or case.find("error") is not None:
                    failed.append(f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}")
    if proc.returncode not in (0, 1):
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
    return proc.returncode, failed, ran


def main(argv: list[str]) -> int:
    """``python tests/mutants.py [NAME:MODE ...] [-- PYTEST ARGS]``: the clean run, then each mutant."""
    pytest_args = argv[argv.index("--") + 1 :] if "--" in argv else []
    chosen = (argv[: argv.index("--")] if "--" in argv else argv) or [
        f"{n}:{m}" for n in NAMES for m in MODES
    ]
    for spec in chosen:
        name, _, mode = spec.partition(":")
        if (name, mode) not in MUTANTS:
            raise SystemExit(f"unknown mutant {spec!r}: NAME:MODE, NAME one of {NAMES}, MODE one of {MODES}")
    status = 0
    modes = sorted({spec.partition(":")[2] for spec in chosen})
    clean_tests = [test for mode in modes for test in TESTS[mode]]
    code, failed, ran = _run(clean_tests, None, pytest_args)
    print(
        f"unmutated: {ran} tests, " + ("pass" if code == 0 else f"FAIL (exit {code}): {', '.join(failed)}"),
        flush=True,
    )
    status |= code != 0
    for spec in chosen:
        code, failed, ran = _run(TESTS[spec.partition(":")[2]], spec, pytest_args)
        caught = code == 1 and failed
        print(
            f"{spec:20s} {'caught' if caught else 'SURVIVED'} by {len(failed)}/{ran}: {', '.join(failed) or '-'}",
            flush=True,
        )
        status |= not caught
    return int(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
