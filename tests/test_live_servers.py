"""Live inputs from real servers on 127.0.0.1 (issue 33): RTSP (GStreamer's RTSP server),
RTMP (nginx's RTMP module), SRT (an ffmpeg listener) and HLS (ffmpeg's segments through
Python's http.server). Each server is killed while fa-frames reads from it and started
again on the same port: the reader reconnects, the first frame after the gap says so, the
clock goes on, and SIGINT ends it with its summary line. A deliberately slow predictor on
the RTMP stream forces drops through fa-run's own pipeline: counted, latency bounded. A
progressive HTTP download (an MP4 from the HLS test's http.server) is read whole. fa-run's
analysis (in-process) reads four frames of each of RTSP, SRT, HLS, UDP and the download.

Small frames (320x240), senders that run until they are killed, every wait bounded. The
Debian packages are in the Makefile's SYSTEM_TOOLS (make system-deps)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import require

BIN = Path(sys.executable).parent
SYSTEM_PYTHON = "/usr/bin/python3"  # the one Debian's python3-gi is built for
NGINX = "/usr/sbin/nginx"
RTMP_MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"
FFMPEG = ["ffmpeg", "-nostdin", "-loglevel", "error"]
# A white square moving on a dark ground: one face for the stand-in detector (FFmpeg's
# testsrc is six or seven, each one more face for fa-run's models to analyse).
SQUARE = (
    "color=c=0x141414:size=320x240:rate=25[ground];color=c=white:size=80x80:rate=25[square];"
    "[ground][square]overlay=x='40+mod(t*100,160)':y=70"
)
TESTSRC = ["-re", "-f", "lavfi", "-i", SQUARE]
H264 = ["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "5", "-pix_fmt", "yuv420p"]
# Every 5th frame, reopened up to 5 times, half a second without data is a stall, and 0.2 s
# of the stream to find its parameters (FFmpeg's default for a live source here is 1 s).
READ = [
    "--every",
    "5",
    "--reconnect",
    "5",
    "--stall-timeout",
    "0.5s",
    "--input-option",
    "analyzeduration=200000",
]

# GStreamer's RTSP server, run by Debian's Python (the project's venv may be another
# Python, which cannot import Debian's gi): a live test picture, H.264, a keyframe every
# 5 frames so that a reader starts at once (a ball: one shape for the stand-in detector,
# where the colour bars were dozens, each a face to analyse). One slice a picture: config-interval=-1 puts
# the parameter sets before each keyframe slice, between the slices of one picture (which
# H.264 does not allow), and FFmpeg made two pictures of each keyframe, t twice.
RTSP_SERVER = """
import sys
import gi
gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer
Gst.init(None)
server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service(sys.argv[1])
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch(
    "( videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=25/1 "
    "! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=5 sliced-threads=false "
    "! rtph264pay name=pay0 pt=96 config-interval=-1 )"
)
factory.set_shared(True)
server.get_mount_points().add_factory("/live", factory)
if server.attach(None) == 0:
    sys.exit("cannot listen on port " + sys.argv[1])
GLib.MainLoop().run()
"""

NGINX_CONF = """
daemon off;
master_process off;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
load_module {module};
events {{ worker_connections 64; }}
rtmp {{ server {{ listen 127.0.0.1:{port}; application live {{ live on; }} }} }}
"""


@pytest.fixture(autouse=True)
def _tools() -> None:
    require(shutil.which("ffmpeg") is not None, "needs the ffmpeg command (make system-deps)")


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bound(port: int, table: str) -> bool:
    """Whether a socket listens on ``port`` (``tcp``: in LISTEN state; ``udp``: bound)."""
    with open(f"/proc/net/{table}") as rows:
        for row in rows.readlines()[1:]:
            fields = row.split()
            if fields[1].endswith(f":{port:04X}") and (table == "udp" or fields[3] == "0A"):
                return True
    return False


def wait_until(
    condition: Callable[[], bool], what: str, limit: float = 120.0, alive: Callable[[], None] | None = None
) -> None:
    # A generous limit: each wait also checks its processes are alive, so a server or reader
    # that died fails at once; a slow start on a loaded machine (26 s seen) only waits.
    deadline = time.monotonic() + limit
    while not condition():
        if alive is not None:
            alive()
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


class Server:
    """Processes that are one server (nginx and its publisher, say), started and killed together."""

    def __init__(self, name: str, commands: list[list[str]], ready: Callable[[], bool], log: Path) -> None:
        self.name, self.commands, self.ready, self.log = name, commands, ready, log
        self.processes: list[subprocess.Popen] = []
        self.keep: list[subprocess.Popen] = []  # what runs beside it and is not killed with it
        self.down = 0.3  # seconds between its kill and its start in the outage test
        self.root: Path | None = None  # the folder an HTTP server serves

    def start(self) -> Server:
        with open(self.log, "ab") as log:
            for number, command in enumerate(self.commands):
                self.processes.append(
                    subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
                )
                if number == 0:
                    wait_until(self.ready, f"{self.name} to listen", alive=self._alive)
        return self

    def _alive(self) -> None:
        for process in self.processes:
            assert process.poll() is None, f"{self.name} ended: {self.log.read_text()[-2000:]}"

    def running(self) -> Server:
        """Started again if a process of it ended (an SRT listener ends with its caller)."""
        if any(process.poll() is not None for process in self.processes):
            self.kill()
            self.start()
        return self

    def kill(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait()
        self.processes = []


class Follower:
    """A live fa-frames (or other command) whose records are read as they come."""

    def __init__(self, command: list, log: Path) -> None:
        self.log = log
        self.stderr = open(log, "wb")
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=self.stderr, text=True)
        self.records: list[dict] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.records.append(json.loads(line))

    def frames(self) -> list[dict]:
        return [r for r in list(self.records) if r.get("type", "frame") == "frame"]

    def wait(self, condition: Callable[[list[dict]], bool], what: str, limit: float = 120.0) -> None:
        def running() -> None:
            assert self.process.poll() is None, f"the reader ended: {self.log.read_text()[-2000:]}"

        wait_until(lambda: condition(self.frames()), what, limit, running)

    def interrupt(self) -> tuple[int, str]:
        self.process.send_signal(signal.SIGINT)
        try:
            code = self.process.wait(timeout=20)
        finally:
            self.close()
        self._thread.join(5)
        return code, self.log.read_text()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.stderr.close()


def after_reconnect(frames: list[dict]) -> int:
    """How many frames came after the one marked as the first after a reconnect."""
    marked = [i for i, f in enumerate(frames) if "reconnected" in f]
    return len(frames) - marked[0] - 1 if marked else -1


def rtsp_server(work: Path) -> tuple[Server, str, tuple[str, ...]]:
    """GStreamer's RTSP server; RTP over the RTSP connection (rtsp_transport=tcp)."""
    done = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0')"], capture_output=True
    )
    require(
        done.returncode == 0, "needs Debian's python3-gi and gir1.2-gst-rtsp-server-1.0 (make system-deps)"
    )
    port = free_port()
    command = [SYSTEM_PYTHON, "-c", RTSP_SERVER, str(port)]
    server = Server("the RTSP server", [command], lambda: bound(port, "tcp"), work / "server.log")
    return server, f"rtsp://127.0.0.1:{port}/live", ("--input-option", "rtsp_transport=tcp")


def rtmp_server(work: Path) -> tuple[Server, str, tuple[str, ...]]:
    """nginx with its RTMP module, and ffmpeg publishing H.264 in FLV to it, in real time."""
    require(
        os.path.exists(NGINX) and os.path.exists(RTMP_MODULE),
        "needs nginx and libnginx-mod-rtmp (make system-deps)",
    )
    port = free_port()
    (work / "nginx.conf").write_text(NGINX_CONF.format(dir=work, module=RTMP_MODULE, port=port))
    url = f"rtmp://127.0.0.1:{port}/live/cam"
    nginx = [NGINX, "-p", str(work), "-e", str(work / "error.log"), "-c", str(work / "nginx.conf")]
    publish = FFMPEG + TESTSRC + H264 + ["-f", "flv", url]
    return Server("nginx", [nginx, publish], lambda: bound(port, "tcp"), work / "server.log"), url, ()


def srt_server(work: Path) -> tuple[Server, str, tuple[str, ...]]:
    """ffmpeg as an SRT listener (MPEG-TS); fa-frames calls it (through the relay: PyAV's
    FFmpeg has no libsrt)."""
    done = subprocess.run(["ffmpeg", "-hide_banner", "-protocols"], capture_output=True, text=True)
    require(" srt\n" in done.stdout, "needs an ffmpeg built with libsrt")
    port = free_port(socket.SOCK_DGRAM)
    send = FFMPEG + TESTSRC + H264 + ["-f", "mpegts", f"srt://127.0.0.1:{port}?mode=listener"]
    return (
        Server("the SRT sender", [send], lambda: bound(port, "udp"), work / "server.log"),
        f"srt://127.0.0.1:{port}",
        (),
    )


def hls_server(work: Path) -> tuple[Server, str, tuple[str, ...]]:
    """ffmpeg writes a live HLS playlist and its segments (it runs until the module ends);
    Python's http.server serves them, and it is the server that is killed."""
    hls = work / "hls"
    hls.mkdir()
    write = FFMPEG + TESTSRC + H264 + [
        "-f", "hls", "-hls_time", "0.4", "-hls_list_size", "6", "-hls_flags", "delete_segments",
        str(hls / "live.m3u8"),
    ]  # fmt: skip
    playlist = hls / "live.m3u8"
    port = free_port()
    http = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(hls), str(port)]
    server = Server("http.server", [http], lambda: bound(port, "tcp"), work / "server.log")
    # FFmpeg's HLS reader rides out a short outage (a playlist reload that fails is tried
    # again, the segments it holds play on): down for longer than the stall timeout.
    server.down = 1.5
    server.root = hls  # what it serves: the progressive download's file goes there too
    with open(work / "writer.log", "wb") as log:
        server.keep = [subprocess.Popen(write, stdin=subprocess.DEVNULL, stderr=log)]
    wait_until(lambda: playlist.exists() and playlist.read_text().count("#EXTINF") >= 2, "HLS segments")
    return server, f"http://127.0.0.1:{port}/live.m3u8", ()


SERVERS = {"rtsp": rtsp_server, "rtmp": rtmp_server, "srt": srt_server, "hls": hls_server}


def kill_and_restart(server: Server, url: str, work: Path, extra: tuple[str, ...]) -> dict:
    """fa-frames reads ``url``; the server is killed after a few frames and started again
    on the same port, and fa-frames is stopped with SIGINT once a frame came after the gap."""
    reader = Follower([BIN / "fa-frames", url, *READ, *extra], work / "reader.log")
    try:
        reader.wait(lambda frames: len(frames) >= 2, "the first frames")
        server.kill()
        down = time.monotonic()
        time.sleep(server.down)
        server.start()
        reader.wait(lambda frames: after_reconnect(frames) >= 1, "a frame after the reconnect")
        outage = time.monotonic() - down
    finally:
        code, log = reader.interrupt()
    return {"url": url, "code": code, "log": log, "records": reader.records, "outage": outage}


def together(task: Callable[[str], None]) -> None:
    """``task(kind)`` for every kind at the same time (they mostly wait)."""
    threads = [threading.Thread(target=task, args=(kind,)) for kind in SERVERS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)


@pytest.fixture(scope="module")
def servers(tmp_path_factory) -> Iterator[dict[str, tuple[Server, str, tuple[str, ...]] | BaseException]]:
    """One server of each kind for the module (killed at its end), started together."""
    started: dict[str, tuple[Server, str, tuple[str, ...]] | BaseException] = {}
    work = {kind: tmp_path_factory.mktemp(kind) for kind in SERVERS}  # mktemp is not thread-safe

    def one(kind: str) -> None:
        try:
            server, url, extra = SERVERS[kind](work[kind])
            started[kind] = (server.start(), url, extra)
        except BaseException as exc:  # a missing tool: that kind's test skips (fails under CI)
            started[kind] = exc

    together(one)
    yield started
    for entry in started.values():
        if isinstance(entry, tuple):
            entry[0].kill()
            for process in entry[0].keep:
                process.kill()
                process.wait()


@pytest.fixture(scope="module")
def outages(servers, tmp_path_factory) -> dict[str, dict | BaseException]:
    """Every kind's kill-and-restart, run at the same time (they mostly wait: a few seconds
    in all rather than one after another)."""
    results: dict[str, dict | BaseException] = {}
    work = {kind: tmp_path_factory.mktemp(f"{kind}-reader") for kind in SERVERS}

    def one(kind: str) -> None:
        entry = servers[kind]
        try:
            if isinstance(entry, BaseException):
                raise entry
            server, url, extra = entry
            results[kind] = kill_and_restart(server, url, work[kind], extra)
        except BaseException as exc:
            results[kind] = exc

    together(one)
    return results


@pytest.mark.parametrize("kind", list(SERVERS))
def test_server_killed_and_restarted(kind, outages):
    """The server is killed while fa-frames reads it and started again: one reconnect,
    marked on the first frame after the gap (``reconnected``, ``gap`` in wall seconds), the
    stream's clock going on across it, and SIGINT a clean end (exit 130, the summary line)."""
    result = outages.get(kind, AssertionError(f"{kind}: not done within 120 s"))
    if isinstance(result, BaseException):
        raise result
    log = result["log"]
    assert result["code"] == 130, log
    header = result["records"][0]
    frames = [r for r in result["records"] if r.get("type", "frame") == "frame"]
    assert header["type"] == "video" and header["live"] is True and header["video"] == result["url"]
    assert header["width"] == 320 and header["height"] == 240
    assert all(f["width"] == 320 and f["height"] == 240 and f["dropped"] == 0 for f in frames)
    marked = [f for f in frames if "reconnected" in f]
    assert len(marked) == 1, log  # the gap is marked once, on the first frame after it
    gap, first = marked[0], frames.index(marked[0])
    assert gap["reconnected"] >= 1 and 0.3 <= gap["gap"] <= result["outage"] + 0.5, (gap, result["outage"])
    ts = [f["t"] for f in frames]
    assert ts == sorted(ts) and ts[first] - ts[first - 1] >= 0.3  # the clock goes on across the gap
    assert "reconnecting" in log and "ended: stopped" in log, log


def test_slow_stage_drops_newest_wins(servers, standin_store, monkeypatch, tmp_path):
    """fa-run's pipeline on an RTMP stream with its predictor step made far slower than the
    camera (0.3 s a frame; every frame of 25 fps sampled): the newest frame wins, the drops
    are counted per record and in the summary, and the latency stays bounded by the queue
    (2 frames waiting) instead of growing with the run: the last frame analysed is one of
    the last captured (without drops it would be one of the first)."""
    import fatools.pipeline
    from fatools.live import LiveOptions
    from fatools.run import VideoAnalyzer, run_options

    entry = servers["rtmp"]
    if isinstance(entry, BaseException):
        raise entry
    # A black picture of its own on the same nginx: no faces for the stand-in detector, so
    # that the sleep, not the models, sets the pace.
    url = entry[1].replace("/cam", "/black")
    black = ["-re", "-f", "lavfi", "-i", "color=c=black:size=320x240:rate=25"]
    publisher = subprocess.Popen(FFMPEG + black + H264 + ["-f", "flv", url], stdin=subprocess.DEVNULL)
    real = fatools.pipeline.predict_frames

    def slow(*args: Any, **kwargs: Any) -> Iterator[Any]:
        for frame in real(*args, **kwargs):
            time.sleep(0.3)
            yield frame

    monkeypatch.setattr(fatools.pipeline, "predict_frames", slow)
    live = LiveOptions(duration=2.0, input_options=(("analyzeduration", "200000"),))
    options = run_options(
        every=1, det_size=None, models_dir=str(standin_store), backend="torch", formats=["json"], progress=False,
        live=live,
    )  # fmt: skip
    try:
        VideoAnalyzer(options).analyze(url, tmp_path)
    finally:
        publisher.kill()
        publisher.wait()
    records = [json.loads(line) for line in (tmp_path / "frames.jsonl").read_bytes().splitlines()]
    frames = [r for r in records if r.get("type", "frame") == "frame"]
    summary = json.loads((tmp_path / "summary.json").read_text())["live"]
    assert summary["ended"] == "duration" and len(frames) == summary["analysed"] >= 4, summary
    counted = sum(f["dropped"] for f in frames)
    waiting = LiveOptions().queue_size  # the frames the queue holds at most
    assert (
        summary["dropped"] >= 2 * len(frames)
        and summary["dropped"] - waiting <= counted <= summary["dropped"]
    )
    assert frames[-1]["frame"] >= summary["frames"] - 1 - 2 * (waiting + 1), (
        frames[-1],
        summary,
    )  # the newest
    assert all(f["faces"] == [] for f in frames)
    # Bounded by the queue: the frames waiting and the one in analysis, at the pace measured, and one of slack.
    pace = summary["seconds"] / summary["analysed"]
    latency = summary["latency_ms"]
    assert latency["p50"] <= (waiting + 2) * 1000 * pace, (latency, pace)


@pytest.fixture(scope="module")
def progressive(servers) -> str:
    """A file downloaded as it plays (progressive HTTP: an MP4 with its index first, 2 s at
    25 fps), from the HLS test's http.server."""
    entry = servers["hls"]
    if isinstance(entry, BaseException):
        raise entry
    server, url, _ = entry
    assert server.root is not None
    subprocess.run(
        [*FFMPEG, "-f", "lavfi", "-i", SQUARE, "-t", "2", *H264,
         "-movflags", "+faststart", str(server.root / "clip.mp4")],
        check=True, timeout=60,
    )  # fmt: skip
    return url.replace("live.m3u8", "clip.mp4")


def test_progressive_http_is_read_whole(servers, progressive):
    """A progressive download: a live source (`wallclock`, no frame count) read to its end
    with --no-drop, every sampled frame there, `t` on the file's clock."""
    servers["hls"][0].running()
    done = subprocess.run(
        [str(BIN / "fa-frames"), progressive, "--every", "5", "--no-drop"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    header, frames = records[0], records[1:]
    assert header["live"] is True and header["frame_count"] is None
    assert [f["frame"] for f in frames] == list(range(0, 50, 5))
    assert [f["t"] for f in frames] == pytest.approx([i * 0.2 for i in range(10)], abs=1e-3)
    assert all(f["dropped"] == 0 and "wallclock" in f for f in frames)
    assert "ended: end of stream" in done.stderr


ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def live_source(
    kind: str, servers: dict, progressive: str
) -> tuple[str, tuple[str, ...], Callable[[], None]]:
    """The URL of a running source of ``kind``, fa-run's options for it, and what ends it."""
    if kind == "progressive":
        servers["hls"][0].running()
        return progressive, (), lambda: None
    if kind == "udp":  # an endless sender to a port nothing listens on until fa-run binds it
        port = free_port(socket.SOCK_DGRAM)
        url = f"udp://127.0.0.1:{port}"
        send = FFMPEG + TESTSRC + H264 + ["-f", "mpegts", f"{url}?pkt_size=1316"]
        sender = subprocess.Popen(send, stdin=subprocess.DEVNULL)

        def end() -> None:
            sender.kill()
            sender.wait()

        return url, (), end
    entry = servers[kind]
    if isinstance(entry, BaseException):
        raise entry
    server, url, extra = entry
    server.running()
    return url, extra, lambda: None


@pytest.mark.parametrize("kind", ["rtsp", "srt", "hls", "udp", "progressive"])
def test_fa_run_reads_the_source(kind, servers, progressive, standin_store, tmp_path):
    """fa-run's analysis (in-process, the stand-in models, as the slow-stage test's: loaded
    once) on each source only fa-frames read (RTMP: the slow-stage test; standard input:
    tests/test_live.py): four sampled frames, their records on the stream's clock with a
    wall-clock time, frames.jsonl and summary.json written, the summary's live figures."""
    from fatools.live import LiveOptions, parse_input_options
    from fatools.run import VideoAnalyzer, run_options

    url, extra, end = live_source(kind, servers, progressive)
    out = tmp_path / "out"
    live = LiveOptions(
        input_options=(("analyzeduration", "200000"), *parse_input_options(extra[1::2])), stall_timeout=5.0
    )
    options = run_options(
        every=5, max_frames=4, det_size=None, models_dir=str(standin_store), backend="torch", formats=["json"],
        progress=False, live=live,
    )  # fmt: skip
    try:
        VideoAnalyzer(options).analyze(url, out)
    finally:
        end()
    records = [json.loads(line) for line in (out / "frames.jsonl").read_bytes().splitlines()]
    header, frames = records[0], records[1:]
    assert header["type"] == "video" and header["live"] is True and header["video"] == url
    live = json.loads((out / "summary.json").read_text())["live"]
    assert live["ended"] == "end of sampling" and live["frames"] == 4, live
    assert (
        live["analysed"] == len(frames) == 4 - live["dropped"]
        and sum(f["dropped"] for f in frames) <= live["dropped"]
    )
    assert live["latency_ms"]["p95"] >= live["latency_ms"]["p50"] > 0, live
    # The pixels reached the models: the stand-in detector finds the test pictures' shapes.
    assert all(ISO.match(f["wallclock"]) and f["width"] == 320 and f["faces"] for f in frames)
    # The stream's clock: from 0 at the first frame, each the frame's place at 25 fps (the
    # wall's clock would give a download's frames, read at once, about the same time).
    ts = [f["t"] for f in frames]
    assert ts == pytest.approx([(f["frame"] - frames[0]["frame"]) / 25 for f in frames], abs=1e-3), frames
