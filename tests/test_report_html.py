"""The interactive report (fa-export --format html), driven in Debian's headless Chromium
through Selenium: it loads from file:// with no console error and no other request, the
player and the timelines share one clock, and the track selector switches the data."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from browser import Shared, console_errors, requested
from browser import wait as _wait
from clips import ffmpeg, write_clip

FPS = 25
FRAMES = 150  # 6 s


def _paint(i: int) -> np.ndarray:
    frame = np.full((360, 640, 3), 20, np.uint8)
    x = 100 + i * 3
    frame[80:200, x : x + 120] = 250  # a face moving right: track 0
    frame[150:230, 420:500] = 240  # a still one: track 1
    return frame


@pytest.fixture(scope="module")
def chromium():
    """One headless Chromium for the module's tests (a start is 1-2 s), fresh for each."""
    shared = Shared()
    yield shared
    shared.quit()


@pytest.fixture(scope="module")
def report(tmp_path_factory, standin_store) -> Path:
    root = tmp_path_factory.mktemp("report")
    raw = write_clip(root / "raw.mp4", FRAMES, FPS, (640, 360), _paint)
    clip = root / "clip.mp4"
    ffmpeg("-i", str(raw), "-pix_fmt", "yuv420p", "-c:v", "libx264", "-g", "12", str(clip))
    (root / "events.csv").write_text("onset,offset,label\n1.0,2.5,rest\n3.0,5.0,joke\n")
    out = root / "res"
    fa_run(
        [str(clip), "-o", str(out), "--models-dir", str(standin_store), "--events", str(root / "events.csv")]
    )
    return out


def fa_run(args: list[str]) -> None:
    """fa-run in this process (the models are the session's loaded stand-ins)."""
    from click.testing import CliRunner

    from fatools.cli.run import cli

    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output


def fa_export(args: list[str]) -> None:
    """fa-export in this process (no models: what a process would add is its imports)."""
    from click.testing import CliRunner

    from fatools.cli.export import cli

    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output


def _export(records: Path, out: Path, *formats: str, video: Path | None = None) -> Path:
    """fa-export of the report's records (no models), the header pointing at ``video``."""
    lines = records.read_text().splitlines()
    if video is not None:
        header = json.loads(lines[0])
        header["video"] = str(video)
        lines[0] = json.dumps(header)
        lines = [json.dumps({**json.loads(line), "video": str(video)}) for line in lines]
    out.mkdir(parents=True, exist_ok=True)
    (out / "in.jsonl").write_text("\n".join(lines) + "\n")
    args = [a for f in formats for a in ("-f", f)]
    fa_export([str(out / "in.jsonl"), "-o", str(out), *args])
    return out / "report.html"


def _x_of(page, chart: str, t: float) -> tuple[int, int]:
    """Where on the screen the chart's time axis is at ``t`` (mid-height)."""
    return page.execute_script(
        f"const el = document.getElementById('{chart}'), L = el._fullLayout, r = el.getBoundingClientRect();"
        f"return [Math.round(r.left + L._size.l + L.xaxis.l2p({t})), Math.round(r.top + L._size.t + L._size.h / 2)];"
    )


def test_report_written_beside_plotly(report):
    page = (report / "report.html").read_text()
    assert (report / "plotly.min.js").stat().st_size > 1_000_000
    assert '<script src="plotly.min.js">' in page
    assert "http://" not in page.split('id="data"')[0] and "https://" not in page.split('id="data"')[0]
    data = json.loads(page.split('id="data">')[1].split("</script>")[0].replace("<\\/", "</"))
    assert data["media"] == "../clip.mp4" and data["kind"] == "video"
    assert (
        len(data["tracks"]) == 2 and data["tracks"][0]["samples"] == 30
    )  # 6 s at the default 5 samples a second


def test_downsample_keeps_bin_means():
    from fatools.export.html_report import downsample

    x = np.arange(10_000, dtype=float) / 6
    y = np.sin(x)
    y[:100] = np.nan
    xs, (ys,) = downsample(x, [y], 500)
    assert len(xs) == 500 and np.isnan(ys[:5]).all() and not np.isnan(ys[6:]).any()
    assert abs(np.nanmean(ys) - np.nanmean(y)) < 0.01
    same, (col,) = downsample(x[:300], [y[:300]], 500)
    assert len(same) == 300


def test_report_in_chromium(report, tmp_path, chromium):
    browser = chromium.page()
    browser.get((report / "report.html").as_uri())
    duration = _wait(
        browser, "const v = document.getElementById('media');return v && v.readyState >= 1 && v.duration;"
    )
    assert abs(duration - FRAMES / FPS) < 0.1
    assert browser.execute_script("return document.getElementById('problem').hidden")
    # Seeking the player moves the playhead.
    browser.execute_script("document.getElementById('media').currentTime = 2.0")
    _wait(browser, "return Math.abs((window.fatoolsPlayhead || 0) - 2.0) < 0.05")
    left, expected = browser.execute_script(
        "const el = document.getElementById('va'), L = el._fullLayout;"
        "return [parseFloat(el.querySelector('.playhead').style.left), L._size.l + L.xaxis.l2p(2.0)]"
    )
    assert abs(left - expected) < 1
    # Clicking a timeline at t seeks the player there, within one sample.
    target = 4.0
    x, y = browser.execute_script(
        "const el = document.getElementById('va'), L = el._fullLayout, r = el.getBoundingClientRect();"
        f"return [r.left + L._size.l + L.xaxis.l2p({target}), r.top + L._size.t + L._size.h / 2];"
    )
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(browser).move_by_offset(int(x), int(y)).click().perform()
    now = _wait(
        browser,
        f"const t = document.getElementById('media').currentTime;return Math.abs(t - {target}) < 1 ? t : 0;",
    )
    assert abs(now - target) <= 1.0 / FPS + 1e-6
    # Playing moves the playhead on.
    browser.execute_script("const v = document.getElementById('media'); v.muted = true; v.play();")
    _wait(browser, f"return (window.fatoolsPlayhead || 0) > {now} + 0.2")
    browser.execute_script("document.getElementById('media').pause()")
    # The track selector switches the data.
    title = browser.execute_script("return document.getElementById('au').layout.title.text")
    browser.execute_script(
        "const s = document.getElementById('track'); s.value = '1';s.dispatchEvent(new Event('change'));"
    )
    assert browser.execute_script("return document.getElementById('au').layout.title.text") != title
    for chart in ("expression", "va", "au"):  # track 1 was seen in fewer samples than track 0
        shown, expected = browser.execute_script(
            f"return [document.getElementById('{chart}').data[0].x.length, DATA.tracks[1].points]"
        )
        assert shown == expected != browser.execute_script("return DATA.tracks[0].points")
    browser.save_screenshot(str(tmp_path / "report.png"))
    shot = os.environ.get("FATOOLS_REPORT_SCREENSHOT")
    if shot:
        browser.execute_script(
            "const s = document.getElementById('track'); s.value = '0';"
            "s.dispatchEvent(new Event('change'));"
            "document.getElementById('media').currentTime = 3.0;"
        )
        time.sleep(1)
        browser.save_screenshot(shot)
    assert (tmp_path / "report.png").stat().st_size > 10_000
    errors = console_errors(browser)
    assert not errors, errors
    urls = requested(browser)
    assert urls and all(u.startswith(("file://", "data:", "blob:")) for u in urls), urls


def test_drag_seeks_and_zoom_is_shared(report, chromium):
    from selenium.webdriver.common.action_chains import ActionChains

    page, _ = chromium.open(
        report / "report.html", "const v = document.getElementById('media'); return v && v.readyState >= 1"
    )
    ranges = page.execute_script(
        "return ['expression', 'va', 'au'].map(id => document.getElementById(id)._fullLayout.xaxis.range)"
    )
    assert ranges[0] == ranges[1] == ranges[2], ranges  # the heatmap's half cells included in all three
    (x1, y), (x2, _) = _x_of(page, "va", 1.0), _x_of(page, "va", 3.0)
    ActionChains(page).move_by_offset(x1, y).click_and_hold().move_by_offset(
        (x2 - x1) // 2, 0
    ).move_by_offset(x2 - x1 - (x2 - x1) // 2, 0).release().perform()
    now = _wait(page, "const t = document.getElementById('media').currentTime; return t > 2.5 ? t : 0;")
    assert abs(now - 3.0) <= 0.2 + 1e-6  # within one sample (every 5th frame at 25 fps)
    assert abs(page.execute_script("return window.fatoolsPlayhead") - now) < 0.05
    # The keyboard steps one sample (every 5th frame: 0.2 s), with Shift one frame.
    from selenium.webdriver.common.keys import Keys

    for keys, step in ((Keys.ARROW_RIGHT, 0.2), (Keys.SHIFT + Keys.ARROW_RIGHT, 1.0 / FPS)):
        before = page.execute_script("return document.getElementById('media').currentTime")
        page.find_element("tag name", "body").send_keys(keys)
        after = _wait(
            page, f"const t = document.getElementById('media').currentTime; return t > {before} + 1e-3 && t"
        )
        assert abs(after - before - step) < 1e-3
    page.execute_script("Plotly.relayout('va', {'xaxis.range': [1, 2]})")
    _wait(page, "return document.getElementById('au')._fullLayout.xaxis.range[0] === 1")
    assert page.execute_script("return document.getElementById('expression')._fullLayout.xaxis.range") == [
        1,
        2,
    ]
    assert not console_errors(page)


def test_event_windows_and_quality_are_tables(report, chromium):
    page, _ = chromium.open(report / "report.html", "return document.getElementById('au').data")
    rows = page.execute_script(
        "return Array.from(document.querySelectorAll('#events tr'))"
        ".map(r => Array.from(r.cells).map(c => c.textContent))"
    )
    assert [r[:3] for r in rows] == [
        ["event", "onset (s)", "offset (s)"],
        ["rest", "1", "2.5"],
        ["joke", "3", "5"],
    ]
    assert rows[1][4].endswith("%") and rows[1][6] != ""
    shapes = page.execute_script(
        "return document.getElementById('va').layout.shapes"
        ".filter(s => s.type === 'rect').map(s => [s.x0, s.x1])"
    )
    assert shapes == [[1, 2.5], [3, 5]]
    frames = dict(
        page.execute_script(
            "return Array.from(document.querySelectorAll('#frames tr'))"
            ".map(r => [r.cells[0].textContent, r.cells[1].textContent])"
        )
    )
    assert frames["frames sampled"] == "30" and frames["with faces"] == "30"
    summary = dict(
        page.execute_script(
            "return Array.from(document.querySelectorAll('#summary tr'))"
            ".map(r => [r.cells[0].textContent, r.cells[1].textContent])"
        )
    )
    assert summary["face quality (faces shown)"].startswith(("good", "fair", "poor"))
    assert "{" not in "".join(summary.values())  # figures, not raw JSON
    provenance = json.loads(page.execute_script("return document.getElementById('provenance').textContent"))
    assert provenance["versions"]["fatools"] and all(m["sha256"] for m in provenance["analysis"]["models"])


def test_overlay_unplayable_and_moved_videos(report, tmp_path, chromium):
    """The annotated video is shown when it was made; an MPEG-4 Part 2 file (which
    Chromium does not decode) or a moved source gets one line naming what would play."""
    root = report.parent
    overlay = _export(report / "frames.jsonl", tmp_path / "overlay", "html", "overlay")
    unplayable = _export(report / "frames.jsonl", tmp_path / "mp4v", "html", video=root / "raw.mp4")
    moved_clip = shutil.copy(root / "clip.mp4", tmp_path / "moving.mp4")
    moved = _export(report / "frames.jsonl", tmp_path / "moved", "html", video=Path(moved_clip))
    Path(moved_clip).unlink()
    page, duration = chromium.open(
        overlay, "const v = document.getElementById('media'); return v.readyState >= 1 && v.duration"
    )
    assert abs(duration - FRAMES / FPS) < 0.1
    assert page.execute_script("return document.getElementById('media').getAttribute('src')").startswith(
        "facial_analysis_"
    )
    assert "clip.mp4" in page.execute_script("return document.getElementById('original').textContent")
    for url, name in ((unplayable, "raw.mp4"), (moved, "moving.mp4")):
        page.get(url.as_uri())
        text = _wait(page, "const p = document.getElementById('problem'); return !p.hidden && p.textContent")
        assert name in text and "--format overlay" in text and "H.264" in text and "\n" not in text
        assert page.execute_script("return document.getElementById('au').data[0].x.length") > 0


def test_photo_shows_its_boxes(tmp_path, standin_store, chromium):
    import cv2

    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), _paint(0))
    out = tmp_path / "res"
    fa_run([str(photo), "-o", str(out), "--models-dir", str(standin_store), "-f", "html"])
    page, _ = chromium.open(
        out / "report.html",
        "const i = document.getElementById('media'); return i && i.complete && i.naturalWidth",
    )
    boxes = page.execute_script(
        "return Array.from(document.querySelectorAll('#boxes rect'))"
        ".map(r => r.getBoundingClientRect().width)"
    )
    assert len(boxes) == 2 and all(w > 20 for w in boxes)
    assert page.execute_script("return document.getElementById('problem').hidden")
    assert not console_errors(page)


def _page_data(page: Path) -> dict:
    """The JSON the report page is drawn from."""
    return json.loads(page.read_text().split('id="data">')[1].split("</script>")[0].replace("<\\/", "</"))


def test_every_still_fa_run_takes_is_shown_as_an_image(tmp_path, standin_store):
    """The page shows a still as an image (with its boxes) by the one list of image
    extensions fa-run has, not a shorter one of its own: a .bmp is no video."""
    import cv2

    from fatools.export.html_report import _media_kind
    from fatools.video import IMAGE_EXTENSIONS

    for suffix in sorted(IMAGE_EXTENSIONS):
        for name in (f"a{suffix}", f"a{suffix.upper()}"):
            assert _media_kind(name, {}) == "image", name
    assert _media_kind("a.mp4", {}) == _media_kind("a.mkv", {}) == _media_kind("a", {}) == "video"
    photo = tmp_path / "photo.bmp"
    cv2.imwrite(str(photo), _paint(0))
    out = tmp_path / "res"
    fa_run([str(photo), "-o", str(out), "--models-dir", str(standin_store), "-f", "html"])
    data = _page_data(out / "report.html")
    assert (data["kind"], data["media"]) == ("image", "../photo.bmp")
    assert len(data["frame"]["faces"]) == 2


def test_two_hours_stay_small(tmp_path, chromium):
    """43,200 samples (2 h at 6 a second): 2000 points shown, a page under 1 MB, drawn
    with its thousands of AU episodes as one trace."""
    from benchmarks.html_report import write_records

    records = tmp_path / "long.jsonl"
    write_records(records, 1, 7200)
    fa_export([str(records), "-o", str(tmp_path / "out"), "-f", "html", "-q"])
    page_path = tmp_path / "out" / "report.html"
    assert page_path.stat().st_size < 1_000_000
    page, _ = chromium.open(page_path, "const e = document.getElementById('au'); return e && e.data", 60)
    points, traces, episodes = page.execute_script(
        "return [DATA.tracks[0].points, document.getElementById('au').data.length, DATA.tracks[0].episodes.length]"
    )
    assert points == 2000 and traces == 2 and episodes > 1000
    assert not console_errors(page)
