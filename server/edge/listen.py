"""The listening socket: aiohttp's `AppRunner` for the application, and `loop.create_server`
with the connection guard (server/edge/connections.py) around the protocol factory it
offers (`AppRunner.server`, a public `web.Server`).

`web.run_app` and `web.TCPSite` call `loop.create_server(runner.server, ...)` themselves and
take no protocol factory, so this does what they do for one TCP address, with the guard in
between: the same runner, so start-up, graceful shutdown (stop accepting, finish in-flight
requests, `on_shutdown`, cleanup contexts) and the access log are aiohttp's own.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from server import keys
from server.edge.connections import ConnectionGuard

# aiohttp's run_app default: an idle kept-alive connection closes after this long (nginx's
# keepalive_timeout is 75 s too).
KEEPALIVE_SECONDS = 75.0
BACKLOG = 128


@asynccontextmanager
async def listening(
    app: web.Application, *, host: str, port: int, ssl_context: ssl.SSLContext | None = None,
    shutdown_timeout: float = 10.0, access_log: logging.Logger | None = None,
    access_log_class: type[AbstractAccessLogger] | None = None,
) -> AsyncIterator[asyncio.Server]:
    """Serve `app` on host:port until the block ends, then shut down as run_app does."""
    config = app[keys.CONFIG]
    runner_args: dict[str, Any] = {}
    if access_log_class is not None:
        runner_args["access_log_class"] = access_log_class
    # Handlers are cancelled when their client goes away, as under aiohttp's test server,
    # so tests and production behave alike.
    runner = web.AppRunner(app, handler_cancellation=True, keepalive_timeout=KEEPALIVE_SECONDS,
                           shutdown_timeout=shutdown_timeout, access_log=access_log,
                           **runner_args)
    await runner.setup()
    server: asyncio.Server | None = None
    try:
        assert runner.server is not None
        shed = app[keys.METRICS].shed
        guard = ConnectionGuard(
            runner.server, header_timeout=config.header_timeout,
            per_address=config.max_connections_per_address,
            exempt=config.trusted_proxy_set,
            on_shed=lambda reason: shed.labels(reason).inc())
        loop = asyncio.get_running_loop()
        # A TLS handshake happens before the guard sees the connection (asyncio calls
        # connection_made once it is done), so it gets the head's deadline of its own.
        handshake = config.header_timeout if ssl_context and config.header_timeout > 0 \
            else None
        server = await loop.create_server(guard, host, port, ssl=ssl_context,
                                          backlog=BACKLOG, ssl_handshake_timeout=handshake)
        yield server
    finally:
        if server is not None:
            server.close()  # stop accepting; open connections are the runner's to end
        await runner.cleanup()
        if server is not None:
            await server.wait_closed()
