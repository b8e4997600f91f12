"""Processing control: an owner or administrator cancels a video's transcoding."""

from __future__ import annotations

from aiohttp import web

from server import keys, videos
from server.identity import require_user
from server.openapi import op, path_param, ref
from server.workers import jobs

PATHS = {
    "/api/videos/{video_id}/cancel": {
        "post": op(
            "Cancel the video's processing (owner or admin). The worker stops within a "
            "second and its partial outputs are removed; the video ends `failed` with the "
            "error \"processing was cancelled\" and its original file is kept. 409 when the "
            "video is not queued or being processed.",
            tag="videos", params=[path_param("video_id", "the video's public id")],
            responses={200: ref("Video")}),
    },
}


async def cancel_processing(request: web.Request) -> web.Response:
    viewer = require_user(request)
    db = request.app[keys.DB]
    row = await videos.managed_video(db, request.match_info["video_id"], viewer)
    await jobs.cancel_transcode(request.app[keys.SERVICES], request.app.get(keys.WORKERS), row)
    row = await videos.get_video(db, row["public_id"])
    return web.json_response(await videos.video_json(db, row, viewer))
