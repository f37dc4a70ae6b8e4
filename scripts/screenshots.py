"""The README's two pictures, docs/report.png and docs/index.png, made again.

A small study of real faces: 4-second clips panning over ../shared's photos
(fatools.sample: family4.jpg, grid25.jpg, noface.jpg) and one damaged file, analysed by
fa-run with the real RetinaFace-MobileNet0.25 detector (../shared's weights, imported as
a user would) and stand-in predictors (python -m fatools.testing: tiny models with the
real ones' contracts, so expressions, AUs and valence/arousal are not real predictions),
collected by fa-collect; then report.html (family.mp4's) and index.html shot in Debian's
headless Chromium. Everything runs in a temporary directory, as the working directory,
so every name the pages show is relative (study/family.mp4); only the two PNGs are
written, into --out. From the checkout's root (about 2 minutes on 2 CPU cores):

    .venv/bin/python scripts/screenshots.py [--shared ../shared] [--out docs] [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLIPS = {"family": "family4.jpg", "grid": "grid25.jpg", "noface": "noface.jpg"}
MNET = Path("models") / "retinaface-mobilenet0.25" / "mobilenet0.25_Final.pth"
# The text of what the viewport shows (text nodes, SVG labels included), to check for paths.
SHOWN_TEXT = """
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT), shown = [];
while (walker.nextNode()) {
  const range = document.createRange();
  range.selectNodeContents(walker.currentNode);
  const box = range.getBoundingClientRect();
  if (box.width && box.bottom > 0 && box.top < innerHeight && box.right > 0 && box.left < innerWidth)
    shown.push(walker.currentNode.textContent);
}
return shown.join('\\n');
"""


def run(*args: str | Path, cwd: Path, ok: tuple[int, ...] = (0,)) -> None:
    proc = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
    )
    if proc.returncode not in ok:
        sys.exit(f"screenshots: {' '.join(map(str, args))} exited {proc.returncode}:\n{proc.stderr}")


def make_study(work: Path, shared: Path) -> None:
    """Model store, clips, fa-run's results and fa-collect's index, all under ``work``."""
    py = sys.executable
    run(py, "-m", "fatools.testing", "models", "au", "fer", "va", "align", "align-meta", cwd=work)
    run("fa-models", "import", "retinaface-mnet", shared / MNET, "--models-dir", "models", cwd=work)
    (work / "study").mkdir()
    for name, photo in CLIPS.items():
        run(
            py,
            "-m",
            "fatools.sample",
            shared / "testdata" / "faces" / photo,
            f"study/{name}.mp4",
            "--seconds",
            "4",
            cwd=work,
        )
    (work / "study" / "damaged.mp4").write_bytes(b"not a video\n")  # the index's failed row
    # Exit 1: the damaged input failed (the others are analysed).
    run(
        "fa-run",
        "study/",
        "-o",
        "results/",
        "--detector",
        "retinaface-mnet",
        "--models-dir",
        "models",
        "-q",
        cwd=work,
        ok=(1,),
    )
    run("fa-collect", "results/", "-o", "results/study.csv", "-q", cwd=work)


def browser(width: int, height: int):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        sys.exit("screenshots: needs Debian's chromium and chromium-driver (make system-deps)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        f"--window-size={width},{height}",
        "--allow-file-access-from-files",
        "--hide-scrollbars",
    ):
        options.add_argument(arg)
    return webdriver.Chrome(options=options, service=Service(executable_path=driver))


def wait(page, script: str, timeout: float = 30.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = page.execute_script(script)
        if value:
            return value
        time.sleep(0.1)
    sys.exit(f"screenshots: timed out waiting for: {script}")


def shoot(page, path: Path, work: Path) -> None:
    """The viewport to ``path`` (palette PNG, a few hundred KB), refusing one that shows a path."""
    from PIL import Image

    shown = page.execute_script(SHOWN_TEXT)
    for absolute in (str(work), str(work.resolve()), "/tmp", str(Path.home())):
        if absolute in shown:
            sys.exit(f"screenshots: {path.name} would show {absolute!r}")
    raw = path.with_suffix(".raw.png")
    page.save_screenshot(str(raw))
    # Octree keeps the charts' colour scales in their hues (median cut bands viridis into
    # orange and green) and the photo close: about 200 KB instead of 700 KB in full colour.
    Image.open(raw).convert("RGB").quantize(256, method=Image.Quantize.FASTOCTREE).save(path, optimize=True)
    raw.unlink()
    print(f"{path} ({path.stat().st_size // 1024} KB)")


def screenshots(work: Path, out: Path) -> None:
    results = work / "results"
    page = browser(1400, 1800)
    try:
        page.get((results / "family" / "report.html").as_uri())
        wait(page, "const v = document.getElementById('media'); return v && v.readyState >= 2")
        wait(page, "return document.getElementById('au') && document.getElementById('au').data")
        page.execute_script(
            "const s = document.getElementById('track'); s.value = '0';"
            "s.dispatchEvent(new Event('change'));"
            "document.getElementById('media').currentTime = 2.1;"
        )  # between two samples: one cue a track
        wait(page, "const v = document.getElementById('media'); return !v.seeking && v.readyState >= 2")
        time.sleep(1)
        shoot(page, out / "report.png", work)
        page.get((results / "index.html").as_uri())
        wait(page, "return document.querySelectorAll('#index tbody tr').length")
        page.set_window_size(1400, 560)
        time.sleep(0.5)
        shoot(page, out / "index.png", work)
    finally:
        page.quit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--shared",
        type=Path,
        default=Path(os.environ.get("FATOOLS_SHARED", ROOT.parent / "shared")),
        help="the shared data: testdata/faces/*.jpg and the MobileNet0.25 weights (default ../shared)",
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "docs", help="where report.png and index.png go (default docs/)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary study (its path is printed)")
    args = parser.parse_args()
    shared, out = args.shared.resolve(), args.out.resolve()
    missing = [
        p
        for p in [shared / MNET, *(shared / "testdata" / "faces" / p for p in CLIPS.values())]
        if not p.is_file()
    ]
    if missing:
        sys.exit(f"screenshots: missing {', '.join(map(str, missing))}; give --shared")
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="fatools-screenshots-"))
    try:
        make_study(work, shared)
        screenshots(work, out)
    finally:
        if args.keep:
            print(f"study kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
