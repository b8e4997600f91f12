"""Simple upload: `POST /api/videos/upload` as multipart/form-data (RFC 7578), streamed to
disk (server/uploads/form.py) and then handed on like a finished tus upload."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from server import keys
from server.api.tus import closes_on_problem
from server.api.tus_openapi import upload_caps
from server.api.videos import video_links
from server.db import Row
from server.errors import BadRequest, PayloadTooLarge, UnsupportedMedia
from server.identity import require_user
from server.openapi import op, ref, with_links
from server.services import Services
from server.uploads import complete, metadata, quota, receive, store
from server.uploads.disposition import form_boundary
from server.uploads.form import StreamingForm, receive_form
from server.videos import create_video, video_json
from server.viewer import Viewer

if TYPE_CHECKING:
    from server.workers.pool import WorkerPool

FORM_SLACK = 1 << 20  # room for the text fields and part headers around the file


@closes_on_problem
async def upload_video(request: web.Request) -> web.Response:
    services = request.app[keys.SERVICES]
    db, config = services.db, services.config
    viewer = require_user(request)
    boundary = form_boundary(request.headers.get("Content-Type", ""))
    if boundary is None:
        raise UnsupportedMedia("send the video as multipart/form-data with a 'file' part")
    users, user_id = request.app[keys.UPLOADS].users, viewer.user_id
    declared = request.content_length
    async with users.creating(user_id):  # the checks and the hold in one step
        await quota.check_unfinished(db, config, users, user_id)
        left = await quota.remaining_quota(db, config, user_id, users.held_bytes(user_id))
        limit = config.max_upload_bytes if left is None else min(config.max_upload_bytes, left)
        if declared is not None and declared > limit + FORM_SLACK:
            raise PayloadTooLarge(f"the body is {declared} bytes; at most {limit} may be "
                                  "uploaded (size limit or quota)")
        await receive.check_free_disk(config, declared or 0)
        # While it streams, the form holds its declared length against the quota (all
        # that is left of it when it declares none: chunked).
        key = users.hold(user_id, limit if declared is None else min(declared, limit))
    form = StreamingForm(boundary, limit)
    path = config.uploads_dir / f"form-{secrets.token_urlsafe(12)}"
    try:
        await receive_form(request.content, form, path)
        if not form.file_seen or form.file_size == 0:
            raise BadRequest("the form has no 'file' part, or it is empty")
        values = {"filename": form.filename, **form.fields}
        fields = metadata.video_fields(values, source="form field")
        channel = await metadata.upload_channel(db, viewer.user_id, fields, "form field")
        row = await _publish(services, request.app.get(keys.WORKERS), viewer, fields,
                             channel, path)
    finally:
        users.release(user_id, key)
        await asyncio.to_thread(store.remove, path)
    return web.json_response(await video_json(db, row, viewer), status=201)


async def options(_: web.Request) -> web.Response:
    """The answer to a plain OPTIONS; a CORS preflight is answered by the edge."""
    return web.Response(status=204, headers={"Allow": "OPTIONS, POST"})


@store.runs_to_end
async def _publish(services: Services, pool: WorkerPool | None, viewer: Viewer,
                   fields: metadata.VideoFields, channel: Row, path: Path) -> Row:
    """The video and its hand-over: a client leaving now must not strand an empty video."""
    video = await create_video(
        services.db, viewer.user_id, channel["id"], fields.title,
        description=fields.description, privacy=fields.privacy,
        original_filename=fields.filename)
    return await complete.finish_file(services, pool, video, path)


SCHEMAS: dict[str, Any] = {}
PATHS = {
    "/api/videos/upload": {
        "options": op("The upload URL's methods; a cross-origin preflight gets the upload "
                      "CORS policy", tag="uploads", responses={204: None}, auth="none"),
        "post": {
            **with_links(upload_caps(op("Simple upload (multipart/form-data, streamed to disk)",
                                  tag="uploads", responses={201: ref("Video")})),
                         201, video_links("$response.body#/id")),
            "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                "type": "object", "required": ["file"],
                "properties": {
                    "file": {"type": "string", "format": "binary", "description": "audio or "
                             "video; its file name (any Unicode name) is kept"},
                    "title": {"type": "string", "maxLength": metadata.MAX_TITLE},
                    "description": {"type": "string", "maxLength": metadata.MAX_DESCRIPTION},
                    "privacy": {"enum": ["public", "unlisted", "private"]},
                    "channel": {"type": "string", "description": "channel id or handle"},
                },
            }, "encoding": {"file": {"contentType": "video/*, audio/*"}}}}},
        },
    },
}
