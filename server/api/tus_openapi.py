"""The OpenAPI description of the tus endpoints (server/api/tus.py): their headers,
method overrides, discovery answers and the links from a created upload."""

from __future__ import annotations

from typing import Any

from server.api.tus import OFFSET_CONTENT_TYPE, TUS_VERSION, UPLOADS_PATH
from server.api.videos import video_links
from server.openapi import header_param, link, op, path_param, refusal


def _enum_header(name: str, values: list[str], description: str,
                 required: bool = True) -> dict[str, Any]:
    return {**header_param(name, description, required),
            "schema": {"type": "string", "enum": values}}


TUS_RESUMABLE = _enum_header("Tus-Resumable", [TUS_VERSION],
                             "protocol version; without it 412 (tus core protocol)")
UPLOAD_PARAM = path_param("upload_id", "the upload's id (last segment of its Location)")


def _pattern_header(name: str, pattern: str, description: str,
                    required: bool = False) -> dict[str, Any]:
    return {**header_param(name, description, required),
            "schema": {"type": "string", "pattern": pattern}}


OFFSET = _pattern_header("Upload-Offset", "^[0-9]{1,19}$", "byte offset this chunk starts at",
                         True)
LENGTH = _pattern_header("Upload-Length", "^[0-9]{1,19}$",
                         "total size in bytes (or later, when deferred)")
DEFER = _enum_header("Upload-Defer-Length", ["1"], "'1' when the size is not known yet",
                     False)
METADATA = header_param(
    "Upload-Metadata", "comma-separated 'key base64(value)': filename (any Unicode name, "
    "base64 of its UTF-8), filetype, title, description, privacy (public|unlisted|private), "
    "channel (id or handle)")
CONCAT = _pattern_header("Upload-Concat", "^(partial|final;.+)$",
                         "'partial', or 'final;<url> <url> ...'")
CHECKSUM = _pattern_header("Upload-Checksum", "^(sha1|md5|sha256) [A-Za-z0-9+/]+={0,2}$",
                           "'<sha1|md5|sha256> <base64 digest>' of the chunk")


def _override(methods: list[str], required: bool = True) -> dict[str, Any]:
    return _enum_header("X-HTTP-Method-Override", methods, "the method this request stands "
                        "for (tus core protocol), for clients that can send only GET and POST",
                        required)


_TUS_HEADERS = {"Tus-Resumable": {"required": True, "description": "always " + TUS_VERSION,
                                  "schema": {"type": "string", "enum": [TUS_VERSION]}}}
_DISCOVERY = {"Tus-Version", "Tus-Extension", "Tus-Max-Size", "Tus-Checksum-Algorithm"}


def _tus(summary: str, params: list[dict[str, Any]], responses: dict[int | str, Any],
         body: bool = False, auth: str = "required") -> dict[str, Any]:
    """A tus operation: the answers its handler gives carry Tus-Resumable; discovery
    answers (204 to OPTIONS) the Tus-* headers too."""
    operation = op(summary, tag="uploads", params=params, responses=responses, auth=auth)
    for status, entry in operation["responses"].items():
        if status.startswith("2") or status in ("409", "412", "460"):
            entry["headers"] = dict(_TUS_HEADERS)
    if body:
        operation["requestBody"] = {"required": False, "content": {
            OFFSET_CONTENT_TYPE: {"schema": {"type": "string", "format": "binary"}}}}
    return operation


def _discovery(operation: dict[str, Any]) -> dict[str, Any]:
    headers = operation["responses"]["204"]["headers"]
    headers.update({name: {"required": True, "schema": {"type": "string"}}
                    for name in sorted(_DISCOVERY)})
    return operation


def _created(operation: dict[str, Any]) -> dict[str, Any]:
    """201: Location names the upload, Video-Id its video (none for a partial upload)."""
    entry = operation["responses"]["201"]
    entry["headers"] = {**entry["headers"],
                        "Location": {"required": True, "schema": {"type": "string"},
                                     "description": "the upload's URL"},
                        "Video-Id": {"required": False, "schema": {"type": "string"}}}
    upload = "$response.header.Location#regex:/api/uploads/([^/?]+)$"
    entry["links"] = {
        **{name: link(UPLOADS_PATH + "/{upload_id}", method, summary, {"upload_id": upload})
           for name, method, summary in (("UploadOffset", "head", "its offset"),
                                         ("UploadChunk", "patch", "send a chunk"),
                                         ("TerminateUpload", "delete", "terminate it"),
                                         ("OverrideMethod", "post", "the same by POST"))},
        **video_links("$response.header.Video-Id")}
    return operation


TOO_MANY_UPLOADS = (
    "the user already has unfinished_uploads_per_user (default 20) unfinished uploads: "
    "finish or terminate one first, waiting does not help (RFC 6585 section 4); or the "
    "upload rate limit, with Retry-After")
OVER_QUOTA = (
    "larger than max_upload_bytes, or more than the user's quota leaves (user_quota_bytes, "
    "default 10 GiB, none for administrators; unfinished uploads count at their declared "
    "length, an open multipart upload at its Content-Length)")


def upload_caps(operation: dict[str, Any], *, tus: bool = False) -> dict[str, Any]:
    """An operation that creates an upload: its 413 and 429 explained (quota.py)."""
    refusal(operation, 413, OVER_QUOTA)
    refusal(operation, 429, TOO_MANY_UPLOADS)
    if tus:
        for status in ("413", "429"):
            operation["responses"][status]["headers"] = dict(_TUS_HEADERS)
    return operation


_PATCH_RESPONSES: dict[int | str, Any] = {204: None, 409: None, 413: None, 415: None,
                                          460: None}
_UPLOAD_ERRORS: dict[int | str, Any] = {403: None, 404: None, 410: None, 412: None}
SCHEMAS: dict[str, Any] = {}
PATHS = {
    "/api/uploads": {
        "options": _discovery(_tus(
            "tus discovery: Tus-Version, Tus-Extension, Tus-Max-Size, Tus-Checksum-Algorithm",
            [], {204: None}, auth="none")),
        "post": upload_caps(_created(_tus(
            "tus creation (with upload): creates the upload and its video; answers Location "
            "and Video-Id. X-HTTP-Method-Override: OPTIONS makes it discovery instead (204)",
            [TUS_RESUMABLE, LENGTH, DEFER, METADATA, CONCAT],
            {201: None, 204: None, 400: None, 405: None, 412: None, 413: None, 415: None,
             507: None}, body=True)), tus=True),
        "get": _tus("X-HTTP-Method-Override: OPTIONS (discovery) for clients that cannot send "
                    "OPTIONS; a GET stands for nothing else",
                    [_override(["OPTIONS"])],
                    {204: None, 405: None}, auth="none"),
    },
    "/api/uploads/{upload_id}": {
        "options": _discovery(_tus("tus discovery for an upload URL", [UPLOAD_PARAM],
                                   {204: None}, auth="none")),
        "head": _tus("tus offset: Upload-Offset is the number of bytes on disk",
                     [UPLOAD_PARAM, TUS_RESUMABLE], {200: None, **_UPLOAD_ERRORS}),
        "get": _tus("X-HTTP-Method-Override: HEAD (the offset), for clients that cannot "
                    "send HEAD; OPTIONS too (discovery, 204); a GET stands for nothing else",
                    [UPLOAD_PARAM, TUS_RESUMABLE, _override(["HEAD"])],
                    {200: None, 204: None, 405: None, **_UPLOAD_ERRORS}),
        "patch": _tus("tus chunk: appends the body at Upload-Offset",
                      [UPLOAD_PARAM, TUS_RESUMABLE, OFFSET, LENGTH, CHECKSUM],
                      {**_PATCH_RESPONSES, 400: None, **_UPLOAD_ERRORS}, body=True),
        "delete": _tus("tus termination: removes the upload and its unfinished video",
                       [UPLOAD_PARAM, TUS_RESUMABLE], {204: None, **_UPLOAD_ERRORS}),
        "post": _tus("X-HTTP-Method-Override: PATCH, DELETE or HEAD (OPTIONS too), for "
                     "clients that can send only POST; with PATCH, the headers and body of a "
                     "PATCH", [UPLOAD_PARAM, TUS_RESUMABLE, _override(["PATCH", "DELETE", "HEAD"])],
                     {200: None, **_PATCH_RESPONSES, 400: None, 405: None,
                      **_UPLOAD_ERRORS}, body=True),
    },
}
