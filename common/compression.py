"""Large JSON answers compressed on the wire, in the best encoding the client accepts.

The 10,000-host state is 5.4 MB of JSON; a dashboard fetches it on load and on
every resync. Measured on this machine (``python -m bench.compression``,
bench/results.md): zstd at level 3 makes it 196 kB (27x) in 5 ms of server
CPU and inflates in 2 ms; brotli at quality 1 makes it 232 kB in 12 ms;
gzip at level 1 404 kB in 29 ms (Django's ``GZipMiddleware`` uses level 6:
322 kB for 126 ms, a snapshot build's worth of CPU per reader). So the
levels are chosen for CPU, not for the last kilobytes, and the order of
preference is zstd, br, gzip (Chromium and Firefox accept zstd; Safari br).

Only the views that call ``json_response`` compress: documents of the
twin's state and history. They hold no secret, so compression leaks nothing
(BREACH needs a secret and attacker-chosen text in the same compressed
body); answers that carry one (a registration's credential, HTML with a CSRF
token) are never compressed.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable

import brotli
import zstandard
from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_vary_headers

# Below this a compressed answer saves less than its header and the client's work.
COMPRESS_MIN_BYTES = 1400
# A longer Accept-Encoding is no browser's: read only its start.
ACCEPT_ENCODING_MAX = 256

_zstd = zstandard.ZstdCompressor(level=3)

# Our order of preference among equally acceptable encodings.
CODECS: dict[str, Callable[[bytes], bytes]] = {
    "zstd": _zstd.compress,
    "br": lambda body: brotli.compress(body, quality=1),
    "gzip": lambda body: gzip.compress(body, compresslevel=1, mtime=0),
}


def encoding_choose(accept_encoding: str) -> str | None:
    """The encoding to answer in (RFC 9110 §12.5.3): the client's highest q among ours, ties by our order.

    ``identity`` (None) when the client accepts none of ours, gives them q=0,
    or sends a header this parser cannot read (an unreadable q counts as 0).
    """
    weights: dict[str, float] = {}
    wildcard: float | None = None
    for part in accept_encoding[:ACCEPT_ENCODING_MAX].split(","):
        name, _, params = part.partition(";")
        name = name.strip().lower()
        q = 1.0
        params = params.strip().lower()
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                q = 0.0
            if not 0.0 <= q <= 1.0:  # also NaN
                q = 0.0
        if name == "*":
            wildcard = q
        elif name in CODECS:
            weights[name] = q
    best: str | None = None
    best_q = 0.0
    for name in CODECS:
        q = weights.get(name, wildcard if wildcard is not None else 0.0)
        if q > best_q:
            best, best_q = name, q
    return best


def json_response(request: HttpRequest, body: bytes, *, status: int = 200) -> HttpResponse:
    """An ``application/json`` answer of ``body``, compressed when the client accepts one of ``CODECS``."""
    response = HttpResponse(body, content_type="application/json", status=status)
    if len(body) < COMPRESS_MIN_BYTES:
        return response
    # Caches between us and the client must keep one copy per encoding.
    patch_vary_headers(response, ("Accept-Encoding",))
    encoding = encoding_choose(request.headers.get("Accept-Encoding", ""))
    if encoding is None:
        return response
    response.content = CODECS[encoding](body)
    response["Content-Encoding"] = encoding
    response["Content-Length"] = str(len(response.content))
    return response
