"""HTTP to the twin: one urllib3 connection pool, no retries of its own.

urllib3 is the HTTP client because it has no dependencies of its own, its
pools are thread-safe (the fleet simulator shares one among its workers) and
it does nothing behind our back: retries, backoff and ``Retry-After`` are the
protocol's decisions (``protocol.py``), not the client's.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import urllib3

from twin_agent import __version__

USER_AGENT = f"twin-agent/{__version__}"


class TransportError(Exception):
    """No answer from the server: refused, reset, timed out, TLS failure."""


@dataclass(frozen=True)
class Reply:
    """An HTTP answer, read whole."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        """The decoded JSON body, or ``{}`` when there is none (a proxy's HTML error page, say)."""
        try:
            return json.loads(self.body) if self.body else {}
        except ValueError:
            return {}

    @property
    def error(self) -> str:
        """The ``error`` code of a JSON error body, or ``""``."""
        decoded = self.json()
        return str(decoded.get("error", "")) if isinstance(decoded, dict) else ""

    @property
    def detail(self) -> str:
        decoded = self.json()
        if isinstance(decoded, dict) and "detail" in decoded:
            return str(decoded["detail"])
        return self.body[:200].decode(errors="replace")

    def retry_after(self, *, now: float | None = None) -> float | None:
        """``Retry-After`` in seconds: delta-seconds or an HTTP date (RFC 9110 10.2.3)."""
        raw = self.headers.get("retry-after", "").strip()
        if not raw:
            return None
        try:
            return max(0.0, float(raw))
        except ValueError:
            pass
        try:
            moment = parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        return max(0.0, moment.timestamp() - (now if now is not None else time.time()))


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
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.connect_timeout = connect_timeout
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
        """Send one request; raise ``TransportError`` when no HTTP answer came back."""
        try:
            response = self._pool.request(
                method,
                self.base_url + path,
                body=body,
                headers=headers,
                timeout=urllib3.Timeout(connect=self.connect_timeout, read=timeout or self.timeout),
                retries=False,
                redirect=False,
            )
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}") from None
        return Reply(
            status=response.status,
            body=response.data,
            headers={name.lower(): value for name, value in response.headers.items()},
        )

    def close(self) -> None:
        self._pool.clear()
