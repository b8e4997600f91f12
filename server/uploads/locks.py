"""Per-upload locks that a newer request takes over instead of failing.

A client whose connection stalled (a phone changing networks) comes back with HEAD and
PATCH while the server still holds the old request open. tusd answers 423 until the old
request times out; here the newcomer aborts the stalled holder, waits until its last
write has landed (so the file length is final) and carries on.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from server.errors import Problem

TAKEOVER_WAIT_SECONDS = 30.0


class Holder:
    def __init__(self, request: web.Request | None) -> None:
        self._request = request
        self.aborted = False
        self.waited = False  # the lock was taken over from (or waited for) another holder
        self.released = asyncio.Event()

    def abort(self) -> None:
        """Stop the older request: its body stream fails and it drops unwritten bytes."""
        self.aborted = True
        if self._request is not None and self._request.transport is not None:
            self._request.transport.close()


class UploadLocks:
    def __init__(self) -> None:
        self._holders: dict[str, Holder] = {}

    def held(self, upload_id: str) -> bool:
        return upload_id in self._holders

    @asynccontextmanager
    async def hold(self, upload_id: str, request: web.Request | None) -> AsyncIterator[Holder]:
        waited = False
        while (current := self._holders.get(upload_id)) is not None:
            waited = True
            if request is None:  # internal work (concatenation) waits its turn
                await current.released.wait()
                continue
            current.abort()
            try:
                await asyncio.wait_for(current.released.wait(), TAKEOVER_WAIT_SECONDS)
            except TimeoutError:
                raise Problem("the upload is still busy with an earlier request; retry",
                              status=423, slug="locked") from None
        mine = Holder(request)
        mine.waited = waited
        self._holders[upload_id] = mine
        try:
            yield mine
        finally:
            mine.released.set()
            if self._holders.get(upload_id) is mine:
                del self._holders[upload_id]
