"""The interactive report (fa-export --format html), driven in Debian's headless Chromium
through Selenium: it loads from file:// with no console error and no other request, the
player and the timelines share one clock, and the track selector switches the data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from browser import browser as _browser
from browser import console_errors, requested
from browser import wait as _wait
from clips import ffmpeg, write_clip

FPS = 25
FRAMES = 150  # 6 s


def _paint(i: int) -> np.ndarray:
    frame = np.full((360, 640, 3), 20, np.uint8)
    x = 100 + i * 3
    frame[80:200, x:x + 120] = 250  # a face moving right: track 0
    frame[150:230, 420:500] = 240  # a still one: track 1
    return frame


@pytest.fixture(scope="module")
def report(tmp_path_factory, standin_store) -> Path:
    root = tmp_path_factory.mktemp("report")
    raw = write_clip(root / "raw.mp4", FRAMES, FPS, (640, 360), _paint)
    clip = root / "clip.mp4"
    ffmpeg("-i", str(raw), "-pix_fmt", "yuv420p", "-c:v", "libx264", "-g", "12", str(clip))
    out = root / "res"
    subprocess.run([sys.executable, "-c", "from fatools.cli.run import main; main()", str(clip), "-o", str(out), "--models-dir",
                    str(standin_store)], check=True, capture_output=True)
    return out


def test_report_written_beside_plotly(report):
    page = (report / "report.html").read_text()
    assert (report / "plotly.min.js").stat().st_size > 1_000_000
    assert '<script src="plotly.min.js">' in page
    assert "http://" not in page.split('id="data"')[0] and "https://" not in page.split('id="data"')[0]
    data = json.loads(page.split('id="data">')[1].split("</script>")[0].replace("<\\/", "</"))
    assert data["media"] == "../clip.mp4" and data["kind"] == "video"
    assert len(data["tracks"]) == 2 and data["tracks"][0]["samples"] == 30  # 6 s at the default 5 samples a second


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


def test_report_in_chromium(report, tmp_path):
    browser = _browser()
    try:
        browser.get((report / "report.html").as_uri())
        duration = _wait(browser, "const v = document.getElementById('media');"
                                  "return v && v.readyState >= 1 && v.duration;")
        assert abs(duration - FRAMES / FPS) < 0.1
        assert browser.execute_script("return document.getElementById('problem').hidden")
        # Seeking the player moves the playhead.
        browser.execute_script("document.getElementById('media').currentTime = 2.0")
        _wait(browser, "return Math.abs((window.fatoolsPlayhead || 0) - 2.0) < 0.05")
        shape = browser.execute_script("return document.getElementById('va').layout.shapes[0].x0")
        assert abs(shape - 2.0) < 0.05
        # Clicking a timeline at t seeks the player there, within one sample.
        target = 4.0
        x, y = browser.execute_script(
            "const el = document.getElementById('va'), L = el._fullLayout, r = el.getBoundingClientRect();"
            f"return [r.left + L._size.l + L.xaxis.l2p({target}), r.top + L._size.t + L._size.h / 2];")
        from selenium.webdriver.common.action_chains import ActionChains

        ActionChains(browser).move_by_offset(int(x), int(y)).click().perform()
        now = _wait(browser, f"const t = document.getElementById('media').currentTime;"
                             f"return Math.abs(t - {target}) < 1 ? t : 0;")
        assert abs(now - target) <= 1.0 / FPS + 1e-6
        # Playing moves the playhead on.
        browser.execute_script("const v = document.getElementById('media'); v.muted = true; v.play();")
        _wait(browser, f"return (window.fatoolsPlayhead || 0) > {now} + 0.2")
        browser.execute_script("document.getElementById('media').pause()")
        # The track selector switches the data.
        title = browser.execute_script("return document.getElementById('au').layout.title.text")
        browser.execute_script("const s = document.getElementById('track'); s.value = '1';"
                               "s.dispatchEvent(new Event('change'));")
        assert browser.execute_script("return document.getElementById('au').layout.title.text") != title
        for chart in ("expression", "va", "au"):  # track 1 was seen in fewer samples than track 0
            shown, expected = browser.execute_script(
                f"return [document.getElementById('{chart}').data[0].x.length, DATA.tracks[1].points]")
            assert shown == expected != browser.execute_script("return DATA.tracks[0].points")
        browser.save_screenshot(str(tmp_path / "report.png"))
        shot = os.environ.get("FATOOLS_REPORT_SCREENSHOT")
        if shot:
            browser.execute_script("const s = document.getElementById('track'); s.value = '0';"
                                   "s.dispatchEvent(new Event('change'));"
                                   "document.getElementById('media').currentTime = 3.0;")
            time.sleep(1)
            browser.save_screenshot(shot)
        assert (tmp_path / "report.png").stat().st_size > 10_000
        errors = console_errors(browser)
        assert not errors, errors
        urls = requested(browser)
        assert urls and all(u.startswith(("file://", "data:", "blob:")) for u in urls), urls
    finally:
        browser.quit()
