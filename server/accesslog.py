"""Access log lines with secrets taken out of the query string.

WebSocket clients and TVs may carry `token=` or `sig=` in the URL; those must not land in
a log file that other people read.
"""

from __future__ import annotations

import re

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse

# remote "METHOD target HTTP/x.y" status bytes seconds "user agent"
LINE_FORMAT = '%s "%s %s HTTP/%d.%d" %d %d %.6fs "%s"'
_SECRET_PARAMS = re.compile(r"(?i)\b(token|sig|access_token|refresh_token)=[^&\s]*")


def redact(target: str) -> str:
    return _SECRET_PARAMS.sub(lambda m: f"{m.group(1)}=REDACTED", target)


class RedactingAccessLogger(AbstractAccessLogger):
    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        self.logger.info(
            LINE_FORMAT,
            request.remote, request.method, redact(request.path_qs),
            request.version.major, request.version.minor, response.status,
            response.body_length, time, request.headers.get("User-Agent", "-"),
        )
