"""Upload metadata: the tus `Upload-Metadata` header and the multipart form fields.

tus 1.0.0, Upload-Metadata: comma-separated `key base64value` pairs; keys are unique,
ASCII without spaces or commas and MUST NOT be empty (so neither may a pair: a trailing
comma is malformed); the value may be missing.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from server.db import Database, Row
from server.errors import BadRequest, NotFound, field_error
from server.videos import PRIVACY, resolve_upload_channel

MAX_TITLE = 200
MAX_DESCRIPTION = 10_000
MAX_HEADER = 16_384
MAX_FILENAME = 255
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_KEY = re.compile(r"^[!-+\--~]+$")  # printable ASCII without space and comma


@dataclass(frozen=True)
class VideoFields:
    title: str
    description: str
    privacy: str
    channel: str | None
    filename: str


def _bad(key: str, message: str) -> BadRequest:
    return BadRequest(f"Upload-Metadata '{key}': {message}",
                      errors=[field_error(key, message)])


def parse_header(header: str) -> dict[str, str]:
    if len(header) > MAX_HEADER:
        raise BadRequest(f"Upload-Metadata is longer than {MAX_HEADER} characters")
    pairs: dict[str, str] = {}
    if not header.strip():
        return pairs  # an empty header names nothing, like tusd reads it
    for item in header.split(","):
        item = item.strip()
        if not item:
            raise BadRequest("Upload-Metadata has an empty pair (a stray comma); a key "
                             "must not be empty", errors=[field_error(
                                 "Upload-Metadata", "a pair with an empty key")])
        key, _, encoded = item.partition(" ")
        if not _KEY.match(key):
            raise _bad(key, "keys are ASCII without spaces or commas")
        if key in pairs:
            raise _bad(key, "appears twice")
        try:
            raw = base64.b64decode(encoded.strip(), validate=True)
            pairs[key] = raw.decode("utf-8")
        except (binascii.Error, ValueError):
            raise _bad(key, "the value is not base64 of UTF-8 text") from None
    return pairs


def video_fields(values: dict[str, str], *, source: str = "Upload-Metadata") -> VideoFields:
    """Checks the keys the server uses; others (Uppy's relativePath, ...) are ignored."""
    def bad(key: str, message: str) -> BadRequest:
        return BadRequest(f"{source} '{key}': {message}", errors=[field_error(key, message)])

    # A client's `filetype` is read by nobody: the original is served with a type the
    # server derives from the probe (server/api/playback.py), never one a client chose.
    filename = clean_filename(values.get("filename") or values.get("name") or "")
    title = (values.get("title") or "").strip() or _title_from(filename)
    if len(title) > MAX_TITLE:
        raise bad("title", f"must be at most {MAX_TITLE} characters")
    description = values.get("description") or ""
    if len(description) > MAX_DESCRIPTION:
        raise bad("description", f"must be at most {MAX_DESCRIPTION} characters")
    privacy = (values.get("privacy") or "public").strip()
    if privacy not in PRIVACY:
        raise bad("privacy", "must be one of " + ", ".join(PRIVACY))
    channel = (values.get("channel") or "").strip() or None
    return VideoFields(title, description, privacy, channel, filename)


def clean_filename(name: str) -> str:
    """The file name as given, in any script, minus what could act on a path or a terminal:
    only the last path component, control characters dropped, bounded in length (the
    extension kept)."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _CONTROL.sub("", name).strip()
    if name in (".", ".."):
        return ""
    if len(name) <= MAX_FILENAME:
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or len(ext) > 16:
        return name[:MAX_FILENAME].rstrip()
    return name[: MAX_FILENAME - len(ext) - 1].rstrip() + "." + ext


def _title_from(filename: str) -> str:
    stem = filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    stem = stem.rsplit(".", 1)[0] if "." in stem[1:] else stem
    return stem.strip()[:MAX_TITLE] or "Untitled"


async def upload_channel(db: Database, user_id: int, fields: VideoFields,
                         source: str = "Upload-Metadata") -> Row:
    try:
        return await resolve_upload_channel(db, user_id, fields.channel)
    except NotFound as exc:
        raise BadRequest(f"{source} 'channel': {exc.detail}",
                         errors=[field_error("channel", exc.detail)]) from None
