"""``python -m bench.compression``: the 10,000-host state on the wire, compressed: gzip, brotli and zstd
against their CPU cost on the server (issue 25, item 4).

A fleet is seeded into a fresh database, the state document is built and
encoded as ``GET /api/twin/state`` does, and each codec at a few levels
compresses it several times: the median time, the size, and the time to
inflate (what the browser pays) are printed beside the uncompressed figures.
"""

from __future__ import annotations

import gzip
import statistics
import time
import zlib
from collections.abc import Callable

import brotli
import orjson
import zstandard
from django.core.management import call_command

import bench.django_setup  # noqa: F401  (first: a fresh database, Django set up)

ROUNDS = 5


def _median_ms(job: Callable[[], object]) -> tuple[float, object]:
    timings, result = [], None
    for _ in range(ROUNDS):
        started = time.perf_counter()
        result = job()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings), result


def main() -> None:
    call_command("migrate", verbosity=0)
    from bench.fleet import fleet_seed
    from twin.snapshot import snapshot_build

    fleet_seed(hosts=10_000, prefix="node")
    encode_ms, body = _median_ms(lambda: orjson.dumps(snapshot_build()))
    assert isinstance(body, bytes)
    print(f"state: {len(body) / 1e6:.2f} MB, build+encode median {encode_ms:.0f} ms")
    codecs: list[tuple[str, Callable[[bytes], bytes], Callable[[bytes], bytes]]] = [
        ("gzip 1", lambda b: gzip.compress(b, 1, mtime=0), gzip.decompress),
        ("gzip 6", lambda b: gzip.compress(b, 6, mtime=0), gzip.decompress),
        ("deflate 1 (zlib)", lambda b: zlib.compress(b, 1), zlib.decompress),
        ("brotli 1", lambda b: brotli.compress(b, quality=1), brotli.decompress),
        ("brotli 4", lambda b: brotli.compress(b, quality=4), brotli.decompress),
        ("brotli 5", lambda b: brotli.compress(b, quality=5), brotli.decompress),
        ("zstd 1", zstandard.ZstdCompressor(level=1).compress, zstandard.ZstdDecompressor().decompress),
        ("zstd 3", zstandard.ZstdCompressor(level=3).compress, zstandard.ZstdDecompressor().decompress),
        ("zstd 6", zstandard.ZstdCompressor(level=6).compress, zstandard.ZstdDecompressor().decompress),
    ]
    print("| codec | size | ratio | compress (server CPU) | inflate (client CPU) |")
    print("| --- | --- | --- | --- | --- |")
    for name, compress, inflate in codecs:
        ms, packed = _median_ms(lambda c=compress: c(body))
        assert isinstance(packed, bytes)
        inflate_ms, back = _median_ms(lambda i=inflate, p=packed: i(p))
        assert back == body
        print(
            f"| {name} | {len(packed) / 1e3:,.0f} kB | {len(body) / len(packed):.1f}x "
            f"| {ms:.1f} ms | {inflate_ms:.1f} ms |"
        )


if __name__ == "__main__":
    main()
