"""fa-run --serve: the live page over HTTP while a run goes on.

The page is report.html's (export/report_page.html) with ``DATA.live`` set: it loads the
same plotly.js, from this server (nothing from the network), and follows the run through
server-sent events (``/events``): each event is the whole ``DATA`` of the records so far
(``export.live_page.LivePage.snapshot``; the timelines are binned to at most 2000 points
as report.html's, so an event stays about half a MB a track however long the run), sent
at most every ``interval`` seconds and only when records came.  A snapshot holds up the
run's records while it reads the series (0.1 s for a track of 20,000 samples on a loaded
2-core Xeon) and summarises the records so far for the tables (0.04 s more for 20,000
samples with 3,600 AU episodes): the events come less often as they cost more, so that
making them takes at most about a tenth of the time.  ``/frame.jpg?v=N`` is the picture of the frame snapshot N
shows.

No authentication: the server listens on the loopback interface unless a host is given,
and there it answers only requests that name a loopback host (a web page elsewhere cannot
reach it by DNS rebinding).  The standard library's threading HTTP server: one thread per
connection, which is plenty for the few viewers of a lab's run.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fatools.errors import FatoolsError
from fatools.export.live_page import LivePage

log = logging.getLogger("fatools")

DEFAULT_HOST = "127.0.0.1"
INTERVAL = 0.5  # seconds between two events at most often
BUSY = 10  # the wait after an event is at least this many times what it took to make
LINGER = 0.5  # seconds the server stays after the last event, when a page followed the run
KEEPALIVE = 15.0  # seconds of silence after which a comment keeps proxies from closing the stream
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}
# The fa-* commands let SIGPIPE end them (a reader of stdout that goes away): a page closed
# while the server writes to it must not, so its socket is written without the signal.
NO_SIGNAL = getattr(socket, "MSG_NOSIGNAL", 0)


def parse_address(text: str) -> tuple[str, int]:
    """``[HOST:]PORT`` as (host, port): the host 127.0.0.1 unless given, an IPv6 host in
    brackets; port 0 is any free port.  ValueError says what is wrong."""
    host, colon, port = text.strip().rpartition(":")
    if not colon:
        host = DEFAULT_HOST
    elif host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"{text!r}: write an IPv6 host in brackets, as [::1]:8080")
    if not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{text!r}: give [HOST:]PORT, the port a number from 0 to 65535 (0: any free port)")
    return host, int(port)


def is_loopback(host: str) -> bool:
    return host in LOOPBACK_NAMES or host.startswith("127.")


class LiveServer:
    """The live page of ``page`` served at ``host:port`` (``start``, then ``close``)."""

    def __init__(
        self, page: LivePage, host: str = DEFAULT_HOST, port: int = 0, interval: float = INTERVAL
    ) -> None:
        self.page, self.host, self.port, self.interval = page, host, port, interval
        self._changed = threading.Condition()
        self._message: tuple[int, bytes] | None = None  # (version, the event's bytes)
        self._done = False  # the last event is out: streams end after it
        self._closing = threading.Event()
        self._streams = 0  # event streams open
        self._watched = False  # a page has followed the run
        self._threads: list[threading.Thread] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._plotly: bytes | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def start(self) -> LiveServer:
        """Listen (FatoolsError when the address cannot be had) and serve in threads."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        server_class = type(
            "Server", (ThreadingHTTPServer,), {"address_family": family, "daemon_threads": True}
        )
        try:
            httpd = server_class((self.host, self.port), _handler(self))
        except OSError as exc:
            raise FatoolsError(
                f"--serve {self.host}:{self.port}: cannot listen there ({exc.strerror or exc}); "
                "give another port"
            ) from None
        self._httpd = httpd
        self.port = httpd.server_address[1]
        for name, target in (("serve", httpd.serve_forever), ("publish", self._publish_loop)):
            thread = threading.Thread(target=target, name=f"fatools-live-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("live page at %s", self.url)
        return self

    def close(self, how: str = "complete", drain: float = 2.0) -> None:
        """The run ended (``how``): the pages get a last event saying so, then the server stops."""
        if self._httpd is None:
            return
        self.page.end(how)
        self._closing.set()
        self._threads[1].join()  # the last event is published
        deadline = time.monotonic() + drain
        with self._changed:  # the streams send it and end
            self._changed.wait_for(lambda: self._streams == 0, timeout=max(0.0, deadline - time.monotonic()))
        if self._watched:  # a page may be asking for the picture of the event before the last
            time.sleep(LINGER)
        self._httpd.shutdown()
        self._httpd.server_close()
        self._threads[0].join()
        self._httpd = None

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close("failed" if exc[0] is not None else "complete")

    # -- what the threads do -----------------------------------------------------------

    def _publish_loop(self) -> None:
        published, took = -1, 0.0
        while True:
            closing = self._closing.is_set()
            # Only for a page that follows: no snapshot costs the run anything while none does.
            if self.page.version != published and self._streams:
                started = time.monotonic()
                published = self._publish()
                took = time.monotonic() - started
            if closing:
                break
            self._closing.wait(max(self.interval, BUSY * took))
        with self._changed:
            self._done = True
            self._changed.notify_all()

    def _publish(self) -> int:
        try:
            data = self.page.snapshot()
        except Exception:  # the page must not stop a run; what went wrong is said
            log.exception("live page: cannot make an update")
            return self.page.version
        event = b"data: " + json.dumps(data, allow_nan=False).encode() + b"\n\n"
        version = data["live"]["version"]
        with self._changed:
            self._message = (version, event)
            self._changed.notify_all()
        return version

    def plotly(self) -> bytes:
        if self._plotly is None:
            import plotly.offline

            self._plotly = plotly.offline.get_plotlyjs().encode("utf-8")
        return self._plotly

    def _news(self, sent: tuple[int, bytes] | None) -> Any:
        return lambda: self._message is not sent or self._done

    def stream(self, write: Any) -> None:
        """Events to one page until the run's last one (``write`` raises when the page left)."""
        with self._changed:
            self._streams += 1
            self._watched = True
        try:
            sent: tuple[int, bytes] | None = None
            while True:
                with self._changed:
                    self._changed.wait_for(self._news(sent), timeout=KEEPALIVE)
                    message, done = self._message, self._done
                if message is not sent and message is not None:
                    write(message[1])
                    sent = message
                elif not done:
                    write(b": still running\n\n")
                if done and message is sent:
                    write(b"event: end\ndata: {}\n\n")
                    return
        finally:
            with self._changed:
                self._streams -= 1
                self._changed.notify_all()


def _handler(server: LiveServer) -> type[BaseHTTPRequestHandler]:
    from fatools.export.html_report import PLOTLY_JS, render_page

    class Handler(BaseHTTPRequestHandler):
        server_version = "fatools-live"

        def setup(self) -> None:
            super().setup()
            if hasattr(socket, "SO_NOSIGPIPE"):  # macOS, which has no MSG_NOSIGNAL
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_NOSIGPIPE, 1)
            self.wfile = _Writer(self.connection)

        def do_GET(self) -> None:
            if is_loopback(server.host) and not _loopback_host(self.headers.get("Host", "")):
                self._send(403, b"this page answers only to a loopback host name\n", "text/plain")
                return
            url = urlsplit(self.path)
            if url.path in ("/", "/index.html"):
                data = server.page.snapshot()
                page = render_page(
                    data, f"fatools live: {data['video'] or 'waiting for the first frame'}", PLOTLY_JS
                )
                self._send(200, page.encode("utf-8"), "text/html; charset=utf-8")
            elif url.path == "/" + PLOTLY_JS:
                self._send(200, server.plotly(), "text/javascript; charset=utf-8", cache=True)
            elif url.path == "/events":
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                with contextlib.suppress(OSError):  # the page was closed
                    server.stream(self._write)
            elif url.path == "/favicon.ico":
                self._send(204, b"", "image/x-icon", cache=True)
            elif url.path == "/frame.jpg":
                version = (parse_qs(url.query).get("v") or [""])[0]
                jpeg = server.page.frame_jpeg(int(version)) if version.isdigit() else None
                if jpeg is None:
                    self._send(404, b"no such frame (any more)\n", "text/plain")
                else:
                    self._send(200, jpeg, "image/jpeg")
            else:
                self._send(404, b"not found\n", "text/plain")

        def _write(self, data: bytes) -> None:
            self.wfile.write(data)
            self.wfile.flush()

        def _send(self, status: int, body: bytes, kind: str, cache: bool = False) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "max-age=3600" if cache else "no-store")
            self.end_headers()
            with contextlib.suppress(OSError):
                self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("live page: %s %s", self.address_string(), format % args)

    return Handler


class _Writer(io.BufferedIOBase):
    """A response's bytes to the socket, unbuffered, without SIGPIPE (as http.server's own
    writer, but for the flag)."""

    def __init__(self, connection: socket.socket) -> None:
        self._connection = connection

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._connection.sendall(data, NO_SIGNAL)
        with memoryview(data) as view:
            return view.nbytes

    def fileno(self) -> int:
        return self._connection.fileno()


def _loopback_host(header: str) -> bool:
    """Whether a Host header names a loopback host (any port)."""
    host = header.strip().lower()
    if host.startswith("[") and "]" in host:  # [::1]:8080
        return is_loopback(host[1 : host.index("]")])
    return is_loopback(host.split(":")[0] if host.count(":") == 1 else host)
