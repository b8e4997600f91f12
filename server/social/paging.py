"""Opaque keyset cursors: the sort key of the last row served, base64url-encoded JSON.

Keyset pagination (not OFFSET) keeps pages stable while rows are added, and each page
costs one index range scan however deep the reader goes.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from server.errors import ValidationFailed, field_error

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


@dataclass(frozen=True)
class PageRequest:
    after: list[Any] | None
    limit: int


def encode_cursor(key: Sequence[Any]) -> str:
    raw = json.dumps(list(key), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str, arity: int) -> list[Any]:
    try:
        padded = text + "=" * (-len(text) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise ValidationFailed([field_error("cursor", "is not a cursor this server made")]) \
            from exc
    if (not isinstance(key, list) or len(key) != arity
            or not all(isinstance(v, int | str) and not isinstance(v, bool) for v in key)):
        raise ValidationFailed([field_error("cursor", "is not a cursor this server made")])
    return key


def page_request(request: web.Request, arity: int) -> PageRequest:
    raw_limit = request.query.get("limit", str(DEFAULT_LIMIT))
    try:
        limit = int(raw_limit)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed([field_error("limit", f"must be an integer from 1 to {MAX_LIMIT}")])
    cursor = request.query.get("cursor")
    return PageRequest(decode_cursor(cursor, arity) if cursor else None, limit)


def page_json(items: list[Any], rows: Sequence[Any], limit: int,
              key: Any) -> dict[str, Any]:
    """`rows` were fetched with LIMIT limit+1: one more row means there is a next page."""
    more = len(rows) > limit
    next_cursor = encode_cursor(key(rows[limit - 1])) if more else None
    return {"items": items[:limit], "next_cursor": next_cursor}


def page_schema(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object", "required": ["items", "next_cursor"],
        "properties": {"items": {"type": "array", "items": item},
                       "next_cursor": {"type": ["string", "null"]}},
    }
