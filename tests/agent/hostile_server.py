"""A hostile twin on loopback: it answers every request with whatever the test scripted, bytes and headers.

Unlike ``fake_twin.py`` it keeps no protocol: each request (any method, any
path) takes the next ``Answer`` of its script (the last one repeats, or
``default``). It counts the requests it got, so a test can bound how often the
agent asks.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Answer:
    """One answer. ``stream_bytes`` sends that many zero bytes after ``body``, lazily (a 128 MB answer)."""

    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    stream_bytes: int = 0
    content_length: bool = True  # send a Content-Length (of body + stream_bytes)


def gzip_bomb(inflated_bytes: int) -> bytes:
    """A gzip body of a few hundred kilobytes that inflates to ``inflated_bytes`` zeros."""
    out = gzip.compress(b"\0" * min(inflated_bytes, 16 * 1024 * 1024), compresslevel=9)
    return out


@dataclass
class HostileServer:
    default: Answer = field(default_factory=lambda: Answer(503, (("Retry-After", "1"),), b"{}"))
    script: list[Answer] = field(default_factory=list)
    chooser: Callable[[str, str], Answer | None] | None = None  # (method, path) -> an answer, before the script
    requests: list[tuple[float, str, str]] = field(default_factory=list)  # (monotonic time, method, path)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        # The agent hangs up on answers it will not read whole: not the server's concern.
        self.server.handle_error = lambda request, address: None  # type: ignore[method-assign]
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> HostileServer:
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def play(self, answers: list[Answer]) -> None:
        with self.lock:
            self.script = list(answers)
            self.requests.clear()

    def _next(self, method: str, path: str) -> Answer:
        with self.lock:
            self.requests.append((time.monotonic(), method, path))
            if self.chooser is not None:
                chosen = self.chooser(method, path)
                if chosen is not None:
                    return chosen
            return self.script.pop(0) if self.script else self.default

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hostile = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            wbufsize = 64 * 1024
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length", 0) or 0)
                if length:
                    self.rfile.read(length)
                answer = hostile._next(self.command, self.path)
                self.send_response(answer.status)
                for name, value in answer.headers:
                    self.send_header(name, value)
                if answer.content_length:
                    self.send_header("Content-Length", str(len(answer.body) + answer.stream_bytes))
                else:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                self.wfile.write(answer.body)
                left, zeros = answer.stream_bytes, b"\0" * 65536
                while left > 0:
                    self.wfile.write(zeros[: min(left, len(zeros))])
                    left -= len(zeros)

            do_GET = do_POST = do_PUT = do_DELETE = _any

        return Handler
