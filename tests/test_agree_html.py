"""fa-agree's page (--html): its data from a synthetic case with known answers, and the page
in Debian's headless Chromium: no console error, no request off the file system, the
table's figures, the chart beside coder against coder, and a click on a timeline seeking
the video. One browser for the module."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from browser import Shared, console_errors, requested
from browser import wait as _wait
from click.testing import CliRunner
from clips import h264_clip
from test_agree import blocks, write_records

FPS = 25.0
N = 200  # 8 s
FLIPS = [3, 4, 25]  # coder a against fatools: two misses (3, 4: a says present) and a false alarm (25)


@pytest.fixture(scope="module")
def chromium():
    shared = Shared()
    yield shared
    shared.quit()


def _js(value: float) -> str:
    """A figure as the page writes it (three decimals, JavaScript's String)."""
    r = round(value * 1000) / 1000
    return str(int(r)) if r == int(r) else repr(r)


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    """Records of an 8 s H.264 clip (AU12 on in alternate 0.8 s blocks, AU4 never), two
    coders' per-frame tables, and fa-agree --html of them."""
    root = tmp_path_factory.mktemp("agree_html")
    clip = h264_clip(root / "clip.mp4", N / FPS)
    au12 = blocks(N)
    probs = {"AU12": np.where(au12, 0.8, 0.2), "AU4": np.full(N, 0.1)}
    records = write_records(root / "res" / "frames.jsonl", probs, video=str(clip))
    a, b = au12.copy(), au12.copy()
    a[FLIPS] = 1 - a[FLIPS]
    b[[10, 11, 12, 50]] = 1 - b[[10, 11, 12, 50]]
    for name, values in (("a", a), ("b", b)):
        pd.DataFrame({"frame": np.arange(N), "AU12": values, "AU4": 0}).to_csv(
            root / f"{name}.csv", index=False
        )
    from fatools.cli.agree import cli

    page = root / "out" / "agreement.html"
    result = CliRunner().invoke(
        cli,
        [
            str(records.parent),
            "-r",
            f"a={root / 'a.csv'}",
            "-r",
            f"b={root / 'b.csv'}",
            "-o",
            str(root / "t.csv"),
            "--html",
            str(page),
            "--resamples",
            "200",
        ],
    )
    assert result.exit_code == 0, result.output
    return {"root": root, "page": page, "au12": au12, "a": a, "b": b, "table": pd.read_csv(root / "t.csv")}


def _data(page: Path) -> dict:
    return json.loads(page.read_text().split('id="data">')[1].split("</script>")[0].replace("<\\/", "</"))


def _row(table: pd.DataFrame, rater: str, reference: str, unit: str, video: str = "all") -> dict:
    t = table[
        (table.rater == rater)
        & (table.reference == reference)
        & (table.unit == unit)
        & (table.video == video)
    ]
    assert len(t) == 1
    return t.iloc[0].to_dict()


def test_page_data_is_what_was_scored(case):
    page, au12, a = case["page"], case["au12"], case["a"]
    assert (page.parent / "plotly.min.js").stat().st_size > 1_000_000
    text = page.read_text()
    assert '<script src="plotly.min.js">' in text
    head = text.split('id="data"')[0]
    assert "http://" not in head and "https://" not in head
    data = _data(page)
    assert data["references"] == ["a", "b", "consensus"] and data["reference"] == "consensus"
    video = data["videos"][0]
    assert video["media"] == "../clip.mp4" and video["timed"] and video["range"] == [0.0, 8.0]
    au = {x["au"]: x for x in video["aus"]}
    # fatools against coder a: run-length segments whose frames are the table's counts.
    segs = au["AU12"]["versus"]["a"]["fatools"]
    frames = {code: round(sum(e - s for s, e, c in segs if c == code) * FPS) for code in (2, 3, 4, 5)}
    assert frames == {
        2: int((au12 & a).sum()),
        3: int((~au12.astype(bool) & a.astype(bool)).sum()),
        4: int((au12.astype(bool) & ~a.astype(bool)).sum()),
        5: 0,
    }
    assert frames[3] == 2 and frames[4] == 1
    assert len(segs) < 20  # a segment per run, not a point per frame
    assert [s[:2] for s in au["AU12"]["coders"]["a"][:2]] == [[0.12, 0.2], [0.8, 1.0]]
    assert au["AU4"]["coders"]["a"] == [] and au["AU4"]["versus"]["a"]["fatools"] == []
    # The table: undefined is null, never 0; pooled rows carry their intervals.
    rows = {(r["video"], r["rater"], r["reference"], r["unit"]): r for r in data["rows"]}
    assert rows[("all", "fatools", "a", "AU4")]["stats"]["f1"] == [None, None, None]
    assert rows[("all", "fatools", "a", "AU4")]["stats"]["accuracy"][0] == 1.0
    f1 = _row(case["table"], "fatools", "a", "AU12")
    assert rows[("all", "fatools", "a", "AU12")]["stats"]["f1"] == pytest.approx(
        [f1["f1"], f1["f1_lo"], f1["f1_hi"]]
    )
    assert "f1" not in rows[("all", "coders", "coders", "AU12")]["stats"]  # alpha's row: F1 does not apply
    assert next(iter(rows))[0] == "all"  # pooled first
    # The chart: fatools against coder a beside b against a (the pair's figure, with its interval).
    bars = {s["name"]: s for s in data["chart"]["references"]["a"]["f1"]}
    pair = _row(case["table"], "a", "b", "AU12")
    i = data["chart"]["aus"].index("AU12")
    assert bars["a vs b (human ceiling)"]["values"][i] == pytest.approx(
        [pair["f1"], pair["f1_lo"], pair["f1_hi"]]
    )
    assert bars["fatools vs a"]["values"][data["chart"]["aus"].index("AU4")] == [
        None,
        None,
        None,
    ]  # undefined
    from fatools.agree.page import chart

    table = case["table"]
    unrated = chart(table[~((table.rater == "a") & (table.unit == "AU4"))], ["a", "b"], ["fatools"])
    ceiling = unrated["references"]["a"]["f1"][-1]
    assert (
        ceiling["values"][unrated["aus"].index("AU4")] is None
    )  # not rated by both: no figure, not "undefined"


def test_long_video_stays_compact():
    """Two hours at 6 samples a second: a segment per change of state."""
    from fatools.agree import Compared
    from fatools.agree.align import Source
    from fatools.agree.page import timelines

    n = 43_200
    t = np.arange(n) / 6.0
    on = ((np.arange(n) // 300) % 2).astype(float)  # 50 s on, 50 s off: 144 runs
    frame = pd.DataFrame({"AU12": on})
    source = Source(
        "a",
        "coder",
        frame,
        pd.DataFrame(index=range(n)),
        pd.Series([None] * n, dtype=object),
        pd.DataFrame(index=range(n)),
    )
    video = Compared(
        "long",
        "nowhere.mp4",
        "nowhere/frames.jsonl",
        6.0,
        t,
        {"a": source},
        {("fatools", "a", "AU12"): (np.ones(n, bool), on, on)},
    )
    out = timelines(video, ["a"], ["fatools"], Path("."))
    assert out["media"] is None and out["range"] == [0.0, 7200.0]
    au = out["aus"][0]
    assert len(au["coders"]["a"]) == 72 and len(au["versus"]["a"]["fatools"]) == 72
    assert len(json.dumps(out)) < 10_000


def _cells(page) -> dict:
    return page.execute_script(
        "const out = {}; document.querySelectorAll('#stats tbody tr').forEach(tr => { const c = {};"
        " tr.querySelectorAll('td[data-stat]').forEach(td => { c[td.dataset.stat] = td.textContent; });"
        " out[tr.dataset.key] = c; }); return out;"
    )


def test_page_in_chromium(case, chromium):
    from selenium.webdriver.common.action_chains import ActionChains

    page, _ = chromium.open(
        case["page"],
        "const v = document.getElementById('media');"
        "return window.agreeReady && v && v.readyState >= 1 && v.duration",
    )
    assert page.execute_script("return document.getElementById('problem').hidden")
    # The table shows the known case's figures, intervals on pooled rows, "undefined" for AU4.
    cells, table = _cells(page), case["table"]
    f1 = _row(table, "fatools", "a", "AU12")
    assert cells["all|fatools|a|AU12"]["f1"] == f"{_js(f1['f1'])} [{_js(f1['f1_lo'])}, {_js(f1['f1_hi'])}]"
    assert cells["clip|fatools|a|AU12"]["f1"] == _js(f1["f1"])  # one video: its own row, no interval
    assert cells["clip|fatools|a|AU12"]["kappa"] == _js(_row(table, "fatools", "a", "AU12", "clip")["kappa"])
    assert (
        cells["all|fatools|a|AU4"]["f1"] == "undefined" and cells["all|fatools|a|AU4"]["kappa"] == "undefined"
    )
    assert cells["all|fatools|a|AU4"]["accuracy"].startswith("1")
    assert cells["all|coders|coders|AU12"]["f1"] == "" and cells["all|coders|coders|AU12"]["alpha"] != ""
    # The chart: fatools beside coder against coder, for the reference chosen.
    names = page.execute_script("return document.getElementById('chart').data.map(t => t.name)")
    assert names == ["fatools vs consensus", "a vs b (human ceiling)"]  # two coders: their one pair
    page.execute_script(
        "const s = document.getElementById('reference'); s.value = 'a';s.dispatchEvent(new Event('change'));"
    )
    assert page.execute_script("return document.getElementById('chart').data.map(t => t.name)") == [
        "fatools vs a",
        "a vs b (human ceiling)",
    ]
    rows = page.execute_script("return document.getElementById('strip-AU12')._fullLayout.yaxis.categoryarray")
    assert rows == ["fatools vs a", "a (reference)", "b"]
    colours = page.execute_script("return document.getElementById('strip-AU12').data.map(t => t.name)")
    assert {"hit", "miss", "false alarm", "present"} <= set(colours)
    # A click on a timeline at t seeks the video there (within a frame).
    target = 4.0
    x, y = page.execute_script(
        "const el = document.getElementById('strip-AU12'); el.scrollIntoView({block: 'center'});"
        "const L = el._fullLayout, r = el.getBoundingClientRect();"
        f"return [r.left + L._size.l + L.xaxis.l2p({target}), r.top + L._size.t + L._size.h / 2];"
    )
    ActionChains(page).move_by_offset(int(x), int(y)).click().perform()
    now = _wait(
        page,
        f"const t = document.getElementById('media').currentTime;return Math.abs(t - {target}) < 0.5 && t",
    )
    assert abs(now - target) <= 1.0 / FPS + 1e-6
    assert abs(page.execute_script("return window.agreePlayhead") - now) <= 1.0 / FPS + 1e-6
    errors = console_errors(page)
    assert not errors, errors
    urls = requested(page)
    assert urls and all(u.startswith(("file://", "data:", "blob:")) for u in urls), urls


def test_one_coder_and_a_moved_video(case, tmp_path, chromium):
    """One coder: no coder-vs-coder bar, a line saying why; the video gone: a line, and the
    timelines still move the playhead."""
    from fatools.agree import agree
    from fatools.agree.page import write_html

    root = case["root"]
    result = agree(root / "res", {"a": [root / "a.csv"]}, resamples=0)
    result.videos[0].path = str(tmp_path / "gone.mp4")
    page_path = write_html(result, case["page"].with_name("one.html"))  # the same plotly.min.js: cached
    page, _ = chromium.open(page_path, "return window.agreeReady && document.getElementById('strip-AU12')")
    assert page.execute_script("return document.getElementById('chart').data.map(t => t.name)") == [
        "fatools vs a"
    ]
    assert "two or more coders" in page.execute_script(
        "return document.getElementById('chart-note').textContent"
    )
    assert "not found" in page.execute_script("return document.getElementById('problem').textContent")
    assert page.execute_script("return document.getElementById('media')") is None
    page.execute_script(
        "const el = document.getElementById('strip-AU12'), L = el._fullLayout,"
        " r = el.getBoundingClientRect();"
        " el.dispatchEvent(new MouseEvent('click', {bubbles: true,"
        " clientX: r.left + L._size.l + L.xaxis.l2p(2.0), clientY: r.top + L._size.t + 5}));"
    )
    assert abs(page.execute_script("return window.agreePlayhead") - 2.0) < 0.05
    assert not console_errors(page)
