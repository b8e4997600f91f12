"""Uploads: the tus 1.0.0 endpoint (/api/uploads) and the simple multipart upload.

Handlers live in server.uploads (tus protocol, multipart streaming); this module
describes them for the OpenAPI document.
"""

from __future__ import annotations

from typing import Any

from server.openapi import header_param, op, path_param, ref
from server.uploads import multipart, tus
from server.uploads.protocol import OFFSET_CONTENT_TYPE, TUS_VERSION

__all__ = ["PATHS", "SCHEMAS", "multipart", "tus"]

TUS_RESUMABLE = header_param("Tus-Resumable", f"protocol version, always {TUS_VERSION}", True)
UPLOAD_ID = path_param("upload_id", "the upload's id (last segment of its Location)")
OVERRIDE = header_param("X-HTTP-Method-Override", "PATCH, DELETE or HEAD", True)
OFFSET = header_param("Upload-Offset", "byte offset this chunk starts at", True)
LENGTH = header_param("Upload-Length", "total size in bytes (or later, when deferred)")
DEFER = header_param("Upload-Defer-Length", "'1' when the size is not known yet")
METADATA = header_param(
    "Upload-Metadata", "comma-separated 'key base64(value)': filename, filetype, title, "
    "description, privacy (public|unlisted|private), channel (id or handle)")
CONCAT = header_param("Upload-Concat", "'partial', or 'final;<url> <url> ...'")
CHECKSUM = header_param("Upload-Checksum", "'<sha1|md5|sha256> <base64 digest>' of the chunk")


def _tus(summary: str, params: list[dict[str, Any]], responses: dict[int | str, Any],
         body: bool = False, auth: str = "required") -> dict[str, Any]:
    operation = op(summary, tag="uploads", params=params, responses=responses, auth=auth)
    if body:
        operation["requestBody"] = {"required": False, "content": {
            OFFSET_CONTENT_TYPE: {"schema": {"type": "string", "format": "binary"}}}}
    return operation


_PATCH_RESPONSES: dict[int | str, Any] = {204: None, 409: None, 413: None, 415: None,
                                          460: None}
SCHEMAS: dict[str, Any] = {}
PATHS = {
    "/api/uploads": {
        "options": _tus("tus discovery: Tus-Version, Tus-Extension, Tus-Max-Size, "
                        "Tus-Checksum-Algorithm", [], {204: None}, auth="none"),
        "post": _tus("tus creation (with upload): creates the upload and its video; "
                     "answers Location and Video-Id",
                     [TUS_RESUMABLE, LENGTH, DEFER, METADATA, CONCAT],
                     {201: None, 400: None, 412: None, 413: None, 415: None, 507: None},
                     body=True),
    },
    "/api/uploads/{upload_id}": {
        "options": _tus("tus discovery for an upload URL", [UPLOAD_ID], {204: None},
                        auth="none"),
        "head": _tus("tus offset: Upload-Offset is the number of bytes on disk",
                     [UPLOAD_ID, TUS_RESUMABLE], {200: None, 403: None, 404: None,
                                                  410: None}),
        "patch": _tus("tus chunk: appends the body at Upload-Offset",
                      [UPLOAD_ID, TUS_RESUMABLE, OFFSET, LENGTH, CHECKSUM],
                      {**_PATCH_RESPONSES, 403: None, 404: None, 410: None}, body=True),
        "delete": _tus("tus termination: removes the upload and its unfinished video",
                       [UPLOAD_ID, TUS_RESUMABLE], {204: None, 403: None, 404: None}),
        "post": _tus("X-HTTP-Method-Override for clients that can only POST",
                     [UPLOAD_ID, TUS_RESUMABLE, OVERRIDE, OFFSET, CHECKSUM],
                     {200: None, **_PATCH_RESPONSES}, body=True),
    },
    "/api/videos/upload": {
        "post": {
            **op("Simple upload (multipart/form-data, streamed to disk)", tag="uploads",
                 responses={201: ref("Video")}),
            "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                "type": "object", "required": ["file"],
                "properties": {
                    "file": {"type": "string", "format": "binary"},
                    "title": {"type": "string", "maxLength": 200},
                    "description": {"type": "string"},
                    "privacy": {"enum": ["public", "unlisted", "private"]},
                    "channel": {"type": "string", "description": "channel id or handle"},
                },
            }}}},
        },
    },
}
