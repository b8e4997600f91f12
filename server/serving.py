"""Serving an app until SIGINT or SIGTERM: aiohttp's `run_app`, with the fast lane's site.

`web.run_app` builds its own TCPSite; this does the same steps (runner, site, wait, a
graceful cleanup that finishes in-flight requests and runs every cleanup context) with a
`LaneSite` for plain HTTP, so playlist polls are answered by `server/fastlane/`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_runner import GracefulExit

from server import keys
from server.fastlane import LaneSite

SHUTDOWN_SECONDS = 10.0


async def _serve(app: web.Application, host: str, port: int, announce: Callable[[], None],
                 ssl_context: ssl.SSLContext | None, access_log: logging.Logger | None,
                 access_log_class: type[AbstractAccessLogger]) -> None:
    runner = web.AppRunner(app, handle_signals=True, access_log=access_log,
                           access_log_class=access_log_class,
                           shutdown_timeout=SHUTDOWN_SECONDS)
    await runner.setup()
    try:
        site: web.TCPSite
        if ssl_context is None:
            app[keys.ANSWERS].access_log = access_log
            site = LaneSite(runner, app[keys.ANSWERS], host, port)
        else:
            site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
        await site.start()
        announce()
        await asyncio.Event().wait()  # until a signal's GracefulExit cancels this task
    finally:
        await runner.cleanup()


def serve(app: web.Application, host: str, port: int, *, loop: asyncio.AbstractEventLoop,
          announce: Callable[[], None], ssl_context: ssl.SSLContext | None,
          access_log: logging.Logger | None,
          access_log_class: type[AbstractAccessLogger]) -> None:
    """Blocks until a signal; like `web.run_app`, cancels what is left on the way out."""
    asyncio.set_event_loop(loop)
    main = loop.create_task(_serve(app, host, port, announce, ssl_context, access_log,
                                   access_log_class))
    try:
        loop.run_until_complete(main)
    except (GracefulExit, KeyboardInterrupt):
        pass
    finally:
        main.cancel()
        with contextlib.suppress(BaseException):
            loop.run_until_complete(main)
        leftovers = asyncio.all_tasks(loop)
        for task in leftovers:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
