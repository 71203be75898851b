"""WhiteNoise's static files without leaving the event loop for every request.

WhiteNoise's middleware is sync-only. Under ASGI, Django then ran it in a
worker thread and hopped back to the event loop for the async-capable middleware
below it, then to a thread again for the view: two extra hops per request,
which profiles of the ingest path showed (bench/analysis.md). Looking a path up
in WhiteNoise's table is a dict access, so doing it on the loop is safe; only
when it re-scans files (``autorefresh``, DEBUG) does it touch the disk, and
then it runs in a thread. In the sync chain that serves sync views in one hop
(``twinsite.handler``) it is WhiteNoise's own ``__call__``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.http import HttpRequest, HttpResponseBase
from whitenoise.middleware import WhiteNoiseMiddleware


class AsyncWhiteNoiseMiddleware(WhiteNoiseMiddleware):
    """WhiteNoise on the loop under ASGI, and in the caller's thread in a sync chain (``twinsite.handler``)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Awaitable[HttpResponseBase]]) -> None:
        super().__init__(get_response)
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:  # type: ignore[override]
        if self.async_mode:
            return self._acall(request)
        return super().__call__(request)

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        if self.autorefresh:
            static_file = await sync_to_async(self.find_file, thread_sensitive=False)(request.path_info)
        else:
            static_file = self.files.get(request.path_info)
        if static_file is not None:
            return self.serve(static_file, request)
        return await self.get_response(request)
