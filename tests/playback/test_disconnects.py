"""Players drop connections mid-body all the time (a seek, a rung switch, a closed tab):
that is never a server error, whichever moment of the send it hits."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from server.playback.files import _send_file as send_file


async def test_a_transport_closed_before_the_copy_is_a_client_that_left(
    tmp_path: Path,
) -> None:
    """asyncio's loop.sendfile answers a closing transport with RuntimeError; that is the
    client going away (ConnectionResetError, which the media handlers treat as routine),
    not an error to log as a 500."""
    loop = asyncio.get_running_loop()
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
    path = tmp_path / "segment"
    path.write_bytes(os.urandom(1 << 20))
    fd = os.open(path, os.O_RDONLY)
    try:
        transport.close()
        response: Any = web.StreamResponse()
        with pytest.raises(ConnectionResetError):
            await send_file(loop, transport, response, fd, 0, 1 << 20)  # type: ignore[arg-type]
    finally:
        os.close(fd)
        server.close()
        await server.wait_closed()
