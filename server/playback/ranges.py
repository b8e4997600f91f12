"""Conditional and range requests, RFC 9110 sections 13 and 14, as a pure decision.

`decide(...)` takes the request's headers and the representation's validators and size,
and says what to send: 200 with everything, 206 with one or more ranges, 304, 412 or 416.
Multiple ranges are answered as `multipart/byteranges` (section 14.6); more than
`MAX_RANGES` ranges in one request are ignored and the full representation is sent
(section 14.2 allows ignoring a Range header), which keeps abusive requests cheap.
"""

from __future__ import annotations

import calendar
import email.utils
from collections.abc import Mapping
from dataclasses import dataclass, field

MAX_RANGES = 16


@dataclass(frozen=True)
class Validators:
    etag: str  # strong, quoted: '"5f2a-18c3"'
    last_modified: int  # seconds since the epoch (HTTP dates have second precision)


@dataclass(frozen=True)
class Decision:
    status: int  # 200, 206, 304, 412 or 416
    ranges: list[tuple[int, int]] = field(default_factory=list)  # inclusive (first, last)


def http_date(seconds: float) -> str:
    return email.utils.formatdate(int(seconds), usegmt=True)


def parse_http_date(value: str) -> int | None:
    parsed = email.utils.parsedate(value)
    if parsed is None:
        return None
    try:
        return calendar.timegm(parsed)
    except (ValueError, OverflowError):
        return None


def _etags(value: str) -> list[str]:
    """Entity tags of an If-Match / If-None-Match list, section 8.8.3 syntax."""
    return [t.strip() for t in value.split(",") if t.strip()]


def _weak_match(tags: list[str], etag: str) -> bool:
    # Section 8.8.3.2: weak comparison ignores the W/ prefix; used by If-None-Match.
    bare = etag.removeprefix("W/")
    return any(t == "*" or t.removeprefix("W/") == bare for t in tags)


def _strong_match(tags: list[str], etag: str) -> bool:
    # Strong comparison: both strong and identical (If-Match, If-Range).
    if etag.startswith("W/"):
        return False
    return any(t == "*" or t == etag for t in tags)


def parse_range(value: str, size: int) -> list[tuple[int, int]] | None:
    """Satisfiable ranges of a `Range: bytes=...` header, clamped to the size.

    None means "ignore the header" (bad syntax, another unit, too many ranges); an empty
    list means none is satisfiable (416). Section 14.1.2.
    """
    unit, _, spec = value.partition("=")
    if unit.strip().lower() != "bytes" or not spec.strip():
        return None
    specs = spec.split(",")
    if len(specs) > MAX_RANGES:
        return None
    out: list[tuple[int, int]] = []
    for raw in specs:
        first, dash, last = raw.strip().partition("-")
        if not dash:
            return None
        first, last = first.strip(), last.strip()
        if (first and not first.isdigit()) or (last and not last.isdigit()):
            return None
        if not first:
            if not last:
                return None
            suffix = int(last)  # bytes=-N: the last N bytes
            if suffix > 0 and size > 0:
                out.append((max(0, size - suffix), size - 1))
            continue
        start = int(first)
        end = int(last) if last else size - 1
        if last and end < start:
            return None  # an invalid range-spec makes the whole header invalid
        if start < size:
            out.append((start, min(end, size - 1)))
    return out


def _if_range_holds(value: str, v: Validators) -> bool:
    """Section 13.1.5: the Range applies only while the validator is current."""
    value = value.strip()
    if value.startswith('"') or value.startswith("W/"):
        return _strong_match([value], v.etag)
    date = parse_http_date(value)
    return date is not None and date == v.last_modified


def decide(method: str, headers: Mapping[str, str], size: int, v: Validators) -> Decision:
    """Section 13.2.2's order: If-Match, If-Unmodified-Since, If-None-Match,
    If-Modified-Since, then If-Range and Range."""
    if_match = headers.get("If-Match")
    if if_match is not None and not _strong_match(_etags(if_match), v.etag):
        return Decision(412)
    if if_match is None:
        ius = parse_http_date(headers.get("If-Unmodified-Since", ""))
        if ius is not None and v.last_modified > ius:
            return Decision(412)
    safe = method in ("GET", "HEAD")
    inm = headers.get("If-None-Match")
    if inm is not None:
        if _weak_match(_etags(inm), v.etag):
            return Decision(304 if safe else 412)
    elif safe:
        ims = parse_http_date(headers.get("If-Modified-Since", ""))
        if ims is not None and v.last_modified <= ims:
            return Decision(304)
    range_header = headers.get("Range")
    if method != "GET" or range_header is None:
        return Decision(200)
    if_range = headers.get("If-Range")
    if if_range is not None and not _if_range_holds(if_range, v):
        return Decision(200)
    ranges = parse_range(range_header, size)
    if ranges is None:
        return Decision(200)
    if not ranges:
        return Decision(416)
    return Decision(206, ranges)
