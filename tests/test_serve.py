"""fa-run --serve (issue 33's live page): the report page in its live mode, in Debian's
headless Chromium while fa-run analyses a short clip with the stand-in models: the
timelines grow and the frame shown changes, with nothing loaded from elsewhere; the
address option's checks and its loopback default."""

from __future__ import annotations

import http.client
import shutil
import signal
import socket
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from browser import browser, console_errors, requested, wait
from click.testing import CliRunner
from clips import write_clip
from conftest import require

from fatools.cli.run import cli
from fatools.export.live_page import LivePage
from fatools.serve import LiveServer, parse_address


def _paint(i: int) -> np.ndarray:
    frame = np.full((240, 320, 3), 20, np.uint8)
    x = 30 + i * 12
    frame[70:150, x : x + 80] = 250  # a bright square moving right: the stand-in detector's face
    return frame


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_address_option_and_loopback_default():
    assert parse_address("8080") == ("127.0.0.1", 8080)
    assert parse_address("0.0.0.0:8080") == ("0.0.0.0", 8080)
    assert parse_address("[::1]:0") == ("::1", 0)
    for bad in ("", "eighty", "99999", "-1", "host:", ":8080", "::1:8080"):
        with pytest.raises(ValueError):
            parse_address(bad)
    for bad in ("99999", "localhost:http"):
        result = CliRunner().invoke(cli, ["clip.mp4", "--serve", bad])
        assert result.exit_code == 2 and "--serve" in result.output, result.output
    server = LiveServer(LivePage(), *parse_address("0")).start()
    try:
        assert server._httpd is not None and server._httpd.server_address[0] == "127.0.0.1"
        for host, status in ((f"127.0.0.1:{server.port}", 200), ("attacker.example", 403)):
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            connection.request("GET", "/", headers={"Host": host})
            response = connection.getresponse()
            body = response.read().decode()
            connection.close()
            assert response.status == status, body
        assert "fatools live" in body or status == 403
    finally:
        server.close()


def test_a_page_that_leaves_does_not_end_the_run():
    """fa-* commands die by SIGPIPE on a closed stdout: a page closed while the server
    writes to it must not end the run with them (it did, silently, before MSG_NOSIGNAL)."""
    page = LivePage()
    server = LiveServer(page, "127.0.0.1", 0, interval=0.05).start()
    old = signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # as fa-run's main sets it
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as viewer:
            viewer.sendall(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert b"text/event-stream" in viewer.recv(4096)
        for index in range(6):  # the events after it went: the first write may still pass
            page.add(
                {"type": "frame", "frame": index, "t": index / 10, "width": 320, "height": 240, "faces": []}
            )
            time.sleep(0.1)
        assert page.snapshot()["frames"]["sampled"] == 6
    finally:
        server.close()
        signal.signal(signal.SIGPIPE, old)


def test_a_record_the_page_cannot_take_does_not_stop_the_run(caplog):
    page = LivePage()
    page.add({"type": "frame", "frame": 0, "t": 0.0, "width": 320, "height": 240, "faces": []})
    page.add({"type": "frame", "video": ["unhashable"], "frame": 1, "faces": []})  # raises in the export
    page.add({"type": "frame", "frame": 2, "t": 0.2, "width": 320, "height": 240, "faces": []})
    assert page.failed and "live page: stops following the run" in caplog.text
    assert page.snapshot()["frames"]["sampled"] == 1  # what came before


def test_the_tables_follow_the_records_with_the_run_summary_options():
    """The per-track table's figures are the summary of the records so far, with the
    summary options the page is given (--top 1 here: one AU listed, not the default five)."""
    from fatools.summary import SummaryOptions

    def records(page: LivePage, n: int) -> None:
        page.add({"schema": 1, "type": "video", "video": "cam", "fps": 5.0, "live": True})
        for i in range(n):
            probs = {"AU1": 0.9, "AU2": 0.8, "AU4": 0.7, "AU6": 0.6}
            face = {
                "track": 1,
                "box": [10, 10, 90, 90],
                "au": {"probs": probs},
                "va": {"valence": 0.5, "arousal": 0.1},
            }
            page.add(
                {
                    "type": "frame",
                    "video": "cam",
                    "frame": i,
                    "t": i / 5,
                    "width": 320,
                    "height": 240,
                    "faces": [face],
                }
            )

    default, top = LivePage(), LivePage(summary=SummaryOptions(top=1))
    records(default, 3)
    records(top, 3)
    shown = default.snapshot()["tracks"][0]["summary"]
    assert shown["faces"] == 3 and shown["last"] == 0.4 and shown["valence"]["mean"] == 0.5
    assert (
        len(shown["most_active_aus"]) == 4
        and len(top.snapshot()["tracks"][0]["summary"]["most_active_aus"]) == 1
    )
    records(default, 2)  # a second input: its own figures
    assert default.snapshot()["tracks"][0]["summary"]["faces"] == 2


def _watch(base: str, gates: list[threading.Event], seen: dict) -> None:
    """The page through the run: what it shows while the run is held at each gate."""
    # What the page shows, with the per-track table's "faces" (read in the same script as
    # the state: an event that came between would make them disagree).
    live = (
        "const l = window.fatoolsLive, row = [...document.querySelectorAll('#summary tr')]"
        ".find(r => r.cells[0].textContent === 'faces'); "
        "if (l) l.faces = row ? row.cells[1].textContent : null; "
    )
    try:
        seen["page"] = browser()  # starts while the models load
        deadline = time.monotonic() + 60
        while True:  # listening before the models load, but the page needs the server up
            try:
                urllib.request.urlopen(base, timeout=5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the live page never answered"
                time.sleep(0.1)
        page = seen["page"]
        page.get(base)
        shown = "l.shown && l.shown.picture && l.shown.frame === l.frame"
        seen["first"] = wait(page, f"{live}return l && l.points > 0 && {shown} ? l : null", 60)
        gates[0].set()
        first = seen["first"]
        seen["second"] = wait(
            page,
            f"{live}return l.points > {first['points']} && l.frame !== {first['frame']} && {shown} ? l : null",
            60,
        )
        seen["plotted"] = page.execute_script("return document.getElementById('va').data[0].x.length")
        seen["boxes"] = page.execute_script("return document.querySelectorAll('#boxes rect').length")
        gates[1].set()
        seen["ended"] = wait(page, f"{live}return l.ended", 60)
        seen["requested"], seen["errors"] = requested(page), console_errors(page)
    except BaseException as exc:
        seen["error"] = exc
        if "page" in seen:
            seen["state"] = seen["page"].execute_script("return window.fatoolsLive")
    finally:
        for gate in gates:
            gate.set()


def test_live_page_follows_the_run(tmp_path: Path, standin_store: Path, monkeypatch):
    """fa-run held twice (after its first frame, after its third and last) while the page
    is read: the timelines grew, the frame changed and the per-track table followed between;
    the end is shown; every request went to fa-run."""
    clip = write_clip(tmp_path / "clip.mp4", 3, 25.0, (320, 240), _paint)
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    gates = [threading.Event(), threading.Event()]
    frames = 0
    add = LivePage.add

    def held(self: LivePage, record: dict) -> None:
        nonlocal frames
        add(self, record)
        if record.get("type", "frame") == "frame":
            frames += 1
            for gate, at in zip(gates, (1, 3), strict=True):
                if frames == at:
                    assert gate.wait(90), "the page never showed the run"

    monkeypatch.setattr(LivePage, "add", held)
    require(
        bool(shutil.which("chromium") and shutil.which("chromedriver")),
        "Debian's chromium and chromium-driver",
    )
    seen: dict = {}
    try:
        watcher = threading.Thread(target=_watch, args=(base, gates, seen), daemon=True)
        watcher.start()
        # Small and quick: records leave frame by frame, the detector at 320 pixels, no ONNX export.
        args = ["--every", "1", "--det-size", "320", "--detect-batch", "1", "--frame-batch", "1"]
        args += ["--backend", "torch", "-f", "json", "--no-progress", "--serve", str(port)]
        result = CliRunner().invoke(
            cli, [str(clip), "-o", str(tmp_path / "out"), "--models-dir", str(standin_store), *args]
        )
        watcher.join(60)
    finally:
        if "page" in seen:
            seen["page"].quit()
    assert result.exit_code == 0, result.output
    assert f"live page at {base} (no authentication)" in result.output  # no host given: loopback
    if "error" in seen:
        raise AssertionError(f"the page showed {seen.get('state')}") from seen["error"]
    first, second = seen["first"], seen["second"]
    assert second["points"] > first["points"] and second["sampled"] > first["sampled"]
    assert second["frame"] > first["frame"] and seen["plotted"] >= second["points"]
    # The track's table while the run goes (before the end: it is held), not only after it.
    assert not first["ended"] and not second["ended"]
    assert first["faces"] == str(first["samples"]) and second["faces"] == str(second["samples"]), (
        first,
        second,
    )
    assert seen["boxes"] >= 1
    assert seen["ended"] == "complete"
    assert seen["errors"] == []
    urls = seen["requested"]  # plotly's own images are data: URLs
    assert urls and all(url.startswith((base, "data:", "blob:")) for url in urls), urls
