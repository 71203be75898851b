"""HTTP to the twin: one urllib3 connection pool, no retries of its own.

urllib3 is the HTTP client because it has no dependencies of its own, its
pools are thread-safe (the fleet simulator shares one among its workers) and
it does nothing behind our back: retries, backoff and ``Retry-After`` are the
protocol's decisions (``protocol.py``), not the client's.

An answer is read as a stream and cut at ``ANSWER_MAX_BYTES`` (after
decompression), within the read timeout as a whole: a server answering
128 MB, a gzip bomb or one byte every few seconds costs the agent at most
that much memory and time, and is a ``TransportError`` like a lost answer.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import urllib3

from twin_agent import __version__
from twin_agent.answers import error_code
from twin_agent.logs import text_safe

USER_AGENT = f"twin-agent/{__version__}"
# The protocol's answers are a few kilobytes; a full batch's refusals or a long poll's invocations
# stay far below this.
ANSWER_MAX_BYTES = 1024 * 1024
READ_CHUNK_BYTES = 64 * 1024


class TransportError(Exception):
    """No answer from the server: refused, reset, timed out, TLS failure."""


@dataclass(frozen=True)
class Reply:
    """An HTTP answer, read whole (at most ``ANSWER_MAX_BYTES``)."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        """The decoded JSON body, or ``{}`` when there is none (a proxy's HTML error page, say)."""
        try:
            return json.loads(self.body) if self.body else {}
        except (ValueError, RecursionError):  # RecursionError: "[[[[…" nested past the decoder's stack
            return {}

    @property
    def error(self) -> str:
        """The ``error`` code of a JSON error body, or ``""`` (also when it is no code at all)."""
        return error_code(self.json())

    @property
    def detail(self) -> str:
        """The ``detail`` of a JSON error body (or the body's start), safe to log."""
        decoded = self.json()
        if isinstance(decoded, dict) and "detail" in decoded:
            return text_safe(decoded["detail"])
        return text_safe(self.body[:200].decode(errors="replace"))

    def retry_after(self, *, now: float | None = None) -> float | None:
        """``Retry-After`` in seconds: delta-seconds or an HTTP date (RFC 9110 10.2.3); ``None`` if unusable.

        Not bounded above here: ``Backoff`` bounds it to the configuration's ``backoff_max``.
        """
        raw = self.headers.get("retry-after", "").strip()
        if not raw:
            return None
        try:
            seconds = float(raw)
        except ValueError:
            try:
                moment = parsedate_to_datetime(raw)
                seconds = moment.timestamp() - (now if now is not None else time.time())
            except (TypeError, ValueError, IndexError, OverflowError):
                return None
        return max(0.0, seconds) if math.isfinite(seconds) else None


class Http:
    """Requests to one server (``base_url``), over a pool of ``pool_size`` kept-alive connections."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 15.0,
        connect_timeout: float = 5.0,
        pool_size: int = 2,
        ca_file: str | None = None,
        max_answer_bytes: int = ANSWER_MAX_BYTES,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.max_answer_bytes = max_answer_bytes
        self._pool = urllib3.PoolManager(
            num_pools=2,
            maxsize=pool_size,
            block=True,
            retries=False,
            ca_certs=ca_file,
            headers={"User-Agent": USER_AGENT},
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Reply:
        """Send one request; raise ``TransportError`` when no usable HTTP answer came back."""
        read_timeout = timeout or self.timeout
        try:
            response = self._pool.request(
                method,
                self.base_url + path,
                body=body,
                headers=headers,
                timeout=urllib3.Timeout(connect=self.connect_timeout, read=read_timeout),
                retries=False,
                redirect=False,
                preload_content=False,
            )
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            raise TransportError(text_safe(f"{type(exc).__name__}: {exc}")) from None
        try:
            data = self._body_read(response, deadline=time.monotonic() + read_timeout)
        finally:
            response.release_conn()
        return Reply(
            status=response.status,
            body=data,
            headers={name.lower(): value for name, value in response.headers.items()},
        )

    def _body_read(self, response: urllib3.BaseHTTPResponse, *, deadline: float) -> bytes:
        """The body, decompressed, read in chunks: at most ``max_answer_bytes`` and until ``deadline``."""
        chunks, size = [], 0
        try:
            declared = int(response.headers.get("content-length", "0") or 0)
        except ValueError:
            declared = 0
        try:
            if declared > self.max_answer_bytes:
                raise TransportError(f"answer of {declared} bytes, more than {self.max_answer_bytes}")
            while True:
                # urllib3 bounds each decompressed read to about the amount asked (a gzip bomb stays small).
                chunk = response.read(READ_CHUNK_BYTES)
                if not chunk:
                    return b"".join(chunks)
                size += len(chunk)
                if size > self.max_answer_bytes:
                    raise TransportError(f"answer larger than {self.max_answer_bytes} bytes")
                if time.monotonic() > deadline:
                    raise TransportError("answer not read whole within the read timeout")
                chunks.append(chunk)
        except TransportError:
            response.close()  # never drain the rest into the pool's connection
            raise
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            response.close()
            raise TransportError(text_safe(f"{type(exc).__name__}: {exc}")) from None

    def close(self) -> None:
        self._pool.clear()
