"""Start the Reelhouse server: `python run.py --help` lists every setting."""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
import sys

from server.accesslog import RedactingAccessLogger
from server.app import create_app
from server.config import Config, argument_parser, build_config
from server.edge.listen import listening

SHUTDOWN_SECONDS = 10.0


def _event_loop(name: str) -> asyncio.AbstractEventLoop:
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def _ssl_context(config: Config) -> ssl.SSLContext | None:
    if not config.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(config.tls_cert, config.tls_key or None)
    return context


async def serve(config: Config, ssl_context: ssl.SSLContext | None) -> None:
    """Serve until SIGINT or SIGTERM. Then stop accepting, finish in-flight requests and run
    every cleanup context (workers, database), as web.run_app does; its listening socket
    takes no protocol factory, so server/edge/listen.py puts the connection guard in."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    access_log = logging.getLogger("aiohttp.access") if config.access_log else None
    async with listening(create_app(config), host=config.host, port=config.port,
                         ssl_context=ssl_context, shutdown_timeout=SHUTDOWN_SECONDS,
                         access_log=access_log, access_log_class=RedactingAccessLogger):
        logging.getLogger("reelhouse").info(
            "listening on %s://%s:%s", "https" if ssl_context else "http", config.host,
            config.port)
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    args = argument_parser().parse_args(argv)
    try:
        config = build_config(vars(args))
    except (ValueError, OSError) as exc:
        print(f"run.py: {exc}", file=sys.stderr)
        return 2
    if bool(config.tls_cert) != bool(config.tls_key):
        print("run.py: --tls-cert and --tls-key go together", file=sys.stderr)
        return 2
    try:
        ssl_context = _ssl_context(config)
    except (OSError, ssl.SSLError) as exc:
        print(f"run.py: cannot load the TLS certificate or key: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=config.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # asyncio.Runner, as asyncio.run: the remaining tasks are cancelled, async generators
    # and the default executor shut down, then the loop is closed.
    with asyncio.Runner(loop_factory=lambda: _event_loop(config.event_loop)) as runner:
        runner.run(serve(config, ssl_context))
    logging.getLogger("reelhouse").info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
