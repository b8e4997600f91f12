"""Processing control: an owner or administrator cancels a video's processing or has it
processed again; an administrator processes every failed video again."""

from __future__ import annotations

from aiohttp import web

from server import keys, videos
from server.errors import Conflict, NotFound
from server.identity import require_admin, require_user
from server.openapi import op, path_param, ref
from server.workers import jobs, queue

_VIDEO = path_param("video_id", "the video's public id")
PATHS = {
    "/api/videos/{video_id}/cancel": {
        "post": op(
            "Cancel the video's processing (owner or admin). The worker stops within a "
            "second and its partial outputs are removed; the video ends `failed` with the "
            "error \"processing was cancelled\" and its original file is kept. A ready video "
            "being processed again keeps playing what it had. 409 when the video is not "
            "queued or being processed.",
            tag="videos", params=[_VIDEO], responses={200: ref("Video")}),
    },
    "/api/videos/{video_id}/reprocess": {
        "post": op(
            "Process the video again from its stored original (owner or admin): a failed "
            "video, or a ready one (after a change of the ladder). A ready video keeps "
            "playing its current ladder until the new one is complete, then its media URLs "
            "name the new one (`?g=`); players that began with the old one keep it for "
            "`replaced_ladder_seconds`. 409 while the video is uploading or being "
            "processed, or when its original is no longer stored.",
            tag="videos", params=[_VIDEO], responses={202: ref("Video"), 409: None}),
    },
    "/api/admin/reprocess-failed": {
        "post": op(
            "Process every failed video whose original is stored again (admin).",
            tag="admin", responses={202: {
                "type": "object", "required": ["queued", "skipped"],
                "properties": {"queued": {"type": "integer", "minimum": 0},
                               "skipped": {"type": "integer", "minimum": 0,
                                           "description": "failed videos without their "
                                                          "original, or already queued"}}}}),
    },
}


async def cancel_processing(request: web.Request) -> web.Response:
    viewer = require_user(request)
    db = request.app[keys.DB]
    row = await videos.managed_video(db, request.match_info["video_id"], viewer)
    await jobs.cancel_transcode(request.app[keys.SERVICES], request.app.get(keys.WORKERS), row)
    row = await videos.get_video(db, row["public_id"])
    return web.json_response(await videos.video_json(db, row, viewer))


async def reprocess(request: web.Request) -> web.Response:
    viewer = require_user(request)
    db = request.app[keys.DB]
    row = await videos.managed_video(db, request.match_info["video_id"], viewer)
    await jobs.reprocess(request.app[keys.SERVICES], request.app.get(keys.WORKERS), row)
    request.app[keys.PLAYBACK].videos.forget(row["public_id"])
    row = await videos.get_video(db, row["public_id"])
    return web.json_response(await videos.video_json(db, row, viewer), status=202)


async def reprocess_failed(request: web.Request) -> web.Response:
    require_admin(request)
    db = request.app[keys.DB]
    queued = skipped = 0
    for video_id in await queue.failed_videos(db):
        try:
            row = await videos.get_video_by_key(db, video_id)
            await jobs.reprocess(request.app[keys.SERVICES], request.app.get(keys.WORKERS), row)
        except (Conflict, NotFound):  # being processed, no original, or deleted meanwhile
            skipped += 1
            continue
        request.app[keys.PLAYBACK].videos.forget(row["public_id"])
        queued += 1
    return web.json_response({"queued": queued, "skipped": skipped}, status=202)
