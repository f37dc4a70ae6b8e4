"""fa-collect's study index (index.html beside the table), in headless Chromium: every
input has its row with its status, each link opens that input's report, the columns
sort, and a tree of thousands of inputs still lists and sorts them all."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from browser import Shared, console_errors, requested, wait
from click.testing import CliRunner
from clips import write_clip


def _paint(i: int) -> np.ndarray:
    frame = np.full((240, 320, 3), 20, np.uint8)
    frame[40:120, 60 + i : 140 + i] = 250
    return frame


@pytest.fixture(scope="module")
def chromium():
    """One headless Chromium for the module's tests (a start is 1-2 s), fresh for each."""
    shared = Shared()
    yield shared
    shared.quit()


@pytest.fixture(scope="module")
def study(tmp_path_factory, standin_store) -> Path:
    """fa-run over two clips (one in a folder whose name needs quoting in a URL) and a
    file that is no video; plus an input killed part way."""
    root = tmp_path_factory.mktemp("study")
    (root / "in" / "sub dir#1").mkdir(parents=True)
    write_clip(root / "in" / "a.mp4", 30, 25, (320, 240), _paint)
    write_clip(root / "in" / "sub dir#1" / "b.mp4", 20, 25, (320, 240), _paint)
    (root / "in" / "bad.mp4").write_bytes(b"not a video")
    from fatools.cli.run import cli as run_cli

    done = CliRunner().invoke(
        run_cli, [str(root / "in"), "-o", str(root / "results"), "--models-dir", str(standin_store), "-q"]
    )
    assert done.exit_code == 1 and "2 analysed, 1 failed" in done.stderr, done.output
    partial = root / "results" / "killed"
    partial.mkdir()
    (partial / "run.json").write_text(
        json.dumps({"input": {"path": "in/killed.mp4"}, "status": "partial", "frames_done": 3})
    )
    return root


def _collect(*args: str):
    from fatools.cli.collect import cli

    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result


def test_one_plotly_for_the_tree(study):
    results = study / "results"
    assert sorted(p.relative_to(results).as_posix() for p in results.rglob("plotly.min.js")) == [
        "plotly.min.js"
    ]
    assert '<script src="../../plotly.min.js">' in (results / "sub dir#1" / "b" / "report.html").read_text()
    assert (results / "index.html").read_text().count(
        "<tr><td"
    ) == 3  # fa-run's own, before "killed" was added


def test_index_beside_the_table_and_not_without_one(study, tmp_path):
    _collect(str(study / "results"), "-o", str(tmp_path / "study.csv"))
    page = (tmp_path / "index.html").read_text()
    assert page.count("<tr><td") == 4 and "sub%20dir%231/b/report.html" in page
    assert not list(tmp_path.glob(".*part"))
    from fatools.cli.collect import cli

    both = CliRunner().invoke(
        cli, [str(study / "results"), "--no-index", "--index", str(tmp_path / "x.html")]
    )
    assert both.exit_code == 2 and not (tmp_path / "x.html").exists()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    _collect(str(study / "results"), "--index", str(elsewhere / "study.html"))
    assert (elsewhere / "study.html").is_file() and not (elsewhere / "index.html").exists()


def test_index_in_chromium(study, chromium):
    _collect(str(study / "results"), "-o", str(study / "study.csv"))
    page, _ = chromium.open(study / "index.html", "return document.getElementById('shown').textContent")
    rows = page.execute_script(
        "return Array.from(document.querySelectorAll('#index tbody tr'))"
        ".map(r => [r.cells[0].textContent, r.cells[1].textContent])"
    )
    assert sorted((status, text.rsplit("/", 1)[-1]) for status, text in rows) == [
        ("complete", "a.mp4"),
        ("complete", "b.mp4"),
        ("failed", "bad.mp4 (run record)"),
        ("partial", "killed.mp4 (run record)"),
    ]
    assert (
        page.execute_script("return document.getElementById('counts').textContent")
        == "4 inputs: 2 complete, 1 failed, 1 partial"
    )
    error = page.execute_script(
        "return Array.from(document.querySelectorAll('#index tbody tr'))"
        ".find(r => r.cells[0].textContent === 'failed').cells[12].textContent"
    )
    assert "bad.mp4" in error and "not a readable video" in error
    # Sorting by duration: ascending with the blanks (failed, partial) last, then descending.
    page.execute_script("document.querySelectorAll('#index th')[2].click()")
    durations = page.execute_script(
        "return Array.from(document.querySelectorAll('#index tbody tr'))"
        ".map(r => r.cells[2].dataset.v === undefined ? null : Number(r.cells[2].dataset.v))"
    )
    assert durations == [0.8, 1.2, None, None]
    page.execute_script("document.querySelectorAll('#index th')[2].click()")
    assert page.execute_script("return document.querySelector('#index tbody tr').cells[2].dataset.v") == "1.2"
    shot = os.environ.get("FATOOLS_INDEX_SCREENSHOT")
    if shot:
        page.set_window_size(1400, 720)
        page.save_screenshot(shot)
    page.execute_script(
        "const s = document.getElementById('status'); s.value = 'failed';"
        "s.dispatchEvent(new Event('change'));"
    )
    assert page.execute_script("return document.getElementById('shown').textContent") == "1 shown"
    links = page.execute_script(
        "return Array.from(document.querySelectorAll('#index tbody a')).map(a => a.href)"
    )
    assert len(links) == 4 and sum(link.endswith("/report.html") for link in links) == 2
    for link in links:
        page.get(link)
        if link.endswith("report.html"):
            wait(page, "return document.getElementById('au') && document.getElementById('au').data")
            assert page.execute_script("return DATA.tracks.length") >= 1
        else:
            assert json.loads(page.find_element("tag name", "body").text)["status"] in ("failed", "partial")
    assert not console_errors(page)
    assert all(u.startswith(("file://", "data:", "blob:")) for u in requested(page))


def test_index_filters_by_each_design_column(study, chromium, tmp_path):
    """With --design, the page offers a choice per design column (and the identity
    verdict); choices combine with each other and with the status choice."""
    design = tmp_path / "design.csv"
    design.write_text(
        "video,participant,session,condition\n"
        "a.mp4,P1,s1,rest\nb.mp4,P2,s1,task\nbad.mp4,P1,s2,task\nkilled.mp4,P2,s2,rest\n"
    )
    _collect(str(study / "results"), "-o", str(tmp_path / "study.csv"), "--design", str(design))
    page, _ = chromium.open(tmp_path / "index.html", "return document.getElementById('shown').textContent")
    options = page.execute_script(
        "return Array.from(document.querySelectorAll('#choices select'))"
        ".map(s => [s.id, Array.from(s.options).map(o => o.textContent)])"
    )
    assert options == [
        ["filter-participant", ["every participant", "P1", "P2"]],
        ["filter-session", ["every session", "s1", "s2"]],
        ["filter-condition", ["every condition", "rest", "task"]],
        ["filter-identity", ["every identity", "(none)", "unchecked"]],
    ]

    def choose(select: str, value: str) -> list[str]:
        page.execute_script(
            f"const s = document.getElementById('{select}'); s.value = '{value}';"
            "s.dispatchEvent(new Event('change'));"
        )
        return page.execute_script(
            "return Array.from(document.querySelectorAll('#index tbody tr')).filter(r => !r.hidden)"
            ".map(r => r.cells[1].textContent.split('/').pop().split(' ')[0]).sort()"
        )

    assert choose("filter-participant", "P1") == ["a.mp4", "bad.mp4"]
    assert choose("filter-condition", "task") == ["bad.mp4"]
    assert choose("status", "complete") == []
    assert choose("filter-condition", "") == ["a.mp4"]
    assert choose("filter-identity", "") == ["a.mp4"] and choose("status", "") == ["a.mp4", "bad.mp4"]
    assert page.execute_script("return document.getElementById('shown').textContent") == "2 shown"
    assert not console_errors(page)


def test_index_of_thousands(study, tmp_path, chromium):
    """3,000 inputs (copies of one result's records, each with its own duration)."""
    source = study / "results" / "a"
    run, summary = (
        json.loads((source / "run.json").read_text()),
        json.loads((source / "summary.json").read_text()),
    )
    n = 3000
    for i in range(n):
        out = tmp_path / "results" / f"{i // 100:02d}" / f"v{i:04d}"
        out.mkdir(parents=True)
        summary["videos"][0]["metadata"]["duration"] = (i * 7919) % n + 1
        (out / "run.json").write_text(json.dumps({**run, "input": {"path": f"v{i:04d}.mp4"}}))
        (out / "summary.json").write_text(json.dumps(summary))
        shutil.copy(source / "report.html", out / "report.html")
    started = time.perf_counter()
    _collect(str(tmp_path / "results"), "-o", str(tmp_path / "study.csv"))
    collected = time.perf_counter() - started
    page = chromium.page()
    started = time.perf_counter()
    page.get((tmp_path / "index.html").as_uri())
    assert wait(page, "return document.getElementById('shown').textContent") == f"{n} shown"
    opened = time.perf_counter() - started
    started = time.perf_counter()
    page.execute_script("document.querySelectorAll('#index th')[2].click()")
    durations = page.execute_script(
        "return Array.from(document.querySelectorAll('#index tbody tr'))"
        ".map(r => Number(r.cells[2].dataset.v))"
    )
    sorted_in = time.perf_counter() - started
    assert durations == sorted(durations) and len(durations) == n and durations[0] == 1
    size = (tmp_path / "index.html").stat().st_size
    print(
        f"index of {n}: fa-collect {collected:.2f} s, {size / 1e6:.2f} MB, opened in {opened:.2f} s, "
        f"sorted in {sorted_in:.2f} s"
    )
    assert not console_errors(page)


def test_figures_shown_as_read():
    from fatools.study.index import shown_number

    assert [shown_number(v) for v in (1234567.0, 12.0, 0.4567, 3.14159, 1234.6, 0.0)] == [
        "1234567",
        "12",
        "0.457",
        "3.14",
        "1235",
        "0",
    ]


def test_most_active_au_shown():
    from fatools.study.index import _most_active

    assert _most_active({"AU6_rate": "0.5", "AU12_rate": "0.75", "AU25_rate": "0.75"}) == ("AU12 (75%)", 0.75)
    assert _most_active({"AU1_rate": "0", "R6_rate": "0.0", "AU45_rate": "0"}) == ("none", 0.0)
    assert _most_active({"AU1_rate": ""}) == ("", None)
