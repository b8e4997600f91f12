"""Header parameters of a multipart body: its `Content-Type` boundary and each part's
`Content-Disposition` name and filename, for any Unicode name.

Browsers put file and field names into `filename="..."` as raw UTF-8 (the HTML standard's
multipart/form-data encoding, RFC 7578 section 4.2); some clients send RFC 8187's
`filename*=UTF-8''<percent-encoded>` instead or as well, which wins when both are there
(RFC 6266 section 4.3). Values are str throughout: nothing here encodes to Latin-1.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from server.errors import BadRequest

MAX_HEADER = 16_384
# RFC 2046 section 5.1.1: 1 to 70 characters from this set, not ending with a space.
_BOUNDARY = re.compile(r"^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$")
_EXT_VALUE = re.compile(r"^([A-Za-z0-9!#$%&+\-^_`{}~]+)'([A-Za-z0-9\-]*)'(.*)$", re.DOTALL)
_PCT_OK = re.compile(r"^(?:[^%]|%[0-9A-Fa-f]{2})*$", re.DOTALL)
_CHARSETS = {"utf-8": "utf-8", "iso-8859-1": "latin-1"}


def decode_header_bytes(raw: bytes) -> str:
    """A part header's bytes: UTF-8 as browsers send it, else Latin-1 (every byte a char)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def parse_params(value: str) -> tuple[str, dict[str, str]]:
    """`type; name=value; name="quoted"` (RFC 9110 section 5.6.6): the lower-cased type and
    the parameters, names lower-cased, the first of a repeated name kept."""
    if len(value) > MAX_HEADER:
        raise BadRequest(f"a header of the form is longer than {MAX_HEADER} characters")
    items = _split(value)
    kind = items[0].strip().lower() if items else ""
    params: dict[str, str] = {}
    for item in items[1:]:
        name, sep, raw = item.partition("=")
        name = name.strip().lower()
        if not sep or not name:
            continue
        params.setdefault(name, _unquote(raw.strip()))
    return kind, params


def form_boundary(content_type: str) -> str | None:
    """The boundary of a `multipart/form-data` body, or None when it is not one."""
    kind, params = parse_params(content_type)
    if kind != "multipart/form-data":
        return None
    boundary = params.get("boundary", "")
    if not _BOUNDARY.match(boundary):
        raise BadRequest("the multipart boundary must be 1 to 70 characters of RFC 2046 "
                         "section 5.1.1 (letters, digits and '()+_,-./:=? )")
    return boundary


def part_names(content_disposition: str) -> tuple[str, str | None]:
    """A part's field name and its file name (None for a text field)."""
    _, params = parse_params(content_disposition)
    name = _extended(params, "name")
    filename = _extended(params, "filename")
    return name if name is not None else "", filename


def _extended(params: dict[str, str], key: str) -> str | None:
    """`key*` (an RFC 8187 ext-value) over plain `key`, as RFC 6266 section 4.3 says."""
    ext = params.get(key + "*")
    if ext is None:
        return params.get(key)
    match = _EXT_VALUE.match(ext)
    charset = _CHARSETS.get(match.group(1).lower()) if match else None
    if match is None or charset is None or not _PCT_OK.match(match.group(3)):
        raise BadRequest(f"the part's {key}* must be an RFC 8187 value such as "
                         f"UTF-8''%E6%97%A5.mp4")
    try:
        return unquote_to_bytes(match.group(3)).decode(charset)
    except UnicodeDecodeError:
        raise BadRequest(f"the part's {key}* is not valid {match.group(1)}") from None


def _split(value: str) -> list[str]:
    """Splits at the semicolons that are outside quoted strings."""
    items: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in value:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == ";" and not quoted:
            items.append("".join(current))
            current = []
            continue
        current.append(char)
    items.append("".join(current))
    return items


def _unquote(raw: str) -> str:
    """A quoted-string's content. Only `\\"` and `\\\\` are escapes: browsers send a Windows
    path's backslashes as they are (and `"` as %22), so `C:\\dir\\a.mp4` keeps its `\\`."""
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        return re.sub(r'\\(["\\])', r"\1", raw[1:-1])
    return raw
