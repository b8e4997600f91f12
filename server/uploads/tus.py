"""tus 1.0.0 handlers for /api/uploads: OPTIONS, POST, HEAD, PATCH, DELETE.

Extensions: creation, creation-with-upload, creation-defer-length, checksum (sha1, md5,
sha256), expiration, termination, concatenation and concatenation-unfinished.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from server import keys
from server.errors import BadRequest, Conflict, Forbidden, Gone, NotFound, Problem
from server.identity import require_user
from server.uploads import complete, metadata, protocol, quota, records, store
from server.uploads.locks import Holder
from server.uploads.protocol import int_header, tus_endpoint
from server.uploads.receive import (
    BodyReceiver,
    SniffRefused,
    allowed_bytes,
    parse_checksum,
    too_large,
)
from server.uploads.records import Upload
from server.videos import create_video
from server.viewer import Viewer

UPLOAD_ID = "upload_id"


@tus_endpoint
async def options(request: web.Request) -> web.Response:
    config = request.app[keys.CONFIG]
    return web.Response(status=204, headers=protocol.discovery_headers(config.max_upload_bytes))


async def _owned(request: web.Request, viewer: Viewer, upload_id: str) -> Upload:
    upload = await records.find_upload(request.app[keys.DB], upload_id)
    if upload is None:
        raise NotFound(f"no upload '{upload_id}'")
    if upload.owner_id != viewer.user_id:
        raise Forbidden("only the upload's owner may do this")
    if upload.expired():
        raise Gone("this upload expired; start a new one")
    if upload.state == records.FAILED:
        raise Gone(f"this upload was refused: {upload.error}")
    if upload.video_id is None and not upload.is_partial:
        raise Gone("the video this upload belonged to was deleted")
    return upload


def _upload_url(request: web.Request, upload_id: str) -> str:
    return protocol.upload_url(request, upload_id)


async def _offset(request: web.Request, upload: Upload) -> int | None:
    if upload.state == records.COMPLETE:
        return upload.length
    if upload.is_final:
        return None  # concatenation: no offset until the parts are joined
    path = store.upload_path(request.app[keys.CONFIG], upload.public_id)
    return await asyncio.to_thread(store.size_on_disk, path)


def _state_headers(request: web.Request, upload: Upload) -> dict[str, str]:
    headers: dict[str, str] = {}
    if upload.length is not None:
        headers["Upload-Length"] = str(upload.length)
    elif not upload.is_final:
        headers["Upload-Defer-Length"] = "1"
    if upload.metadata:
        headers["Upload-Metadata"] = upload.metadata
    if upload.is_partial:
        headers["Upload-Concat"] = "partial"
    elif upload.is_final:
        urls = " ".join(_upload_url(request, p) for p in upload.parts)
        headers["Upload-Concat"] = f"final;{urls}"
    if upload.state == records.RECEIVING:
        headers["Upload-Expires"] = protocol.http_date(upload.expires_at)
    if upload.video_public_id:
        headers["Video-Id"] = upload.video_public_id
    return headers


@tus_endpoint
async def head(request: web.Request) -> web.Response:
    viewer = require_user(request)
    upload = await _owned(request, viewer, request.match_info[UPLOAD_ID])
    headers = _state_headers(request, upload)
    offset = await _offset(request, upload)
    if offset is not None:
        headers["Upload-Offset"] = str(offset)
    headers["Cache-Control"] = "no-store"  # core protocol, HEAD: offsets must not be cached
    return web.Response(status=200, headers=headers)


def _parse_concat(header: str | None) -> tuple[str | None, list[str]]:
    if header is None:
        return None, []
    value = header.strip()
    if value == "partial":
        return "partial", []
    if value.startswith("final;"):
        ids = [protocol.upload_id_from_url(u) for u in value[len("final;"):].split()]
        if not ids or any(i is None for i in ids):
            raise BadRequest("Upload-Concat: final needs the URLs of this server's uploads")
        return "final", [i for i in ids if i is not None]
    raise BadRequest("Upload-Concat must be 'partial' or 'final;<url> <url> ...'")


async def _check_parts(request: web.Request, viewer: Viewer, ids: list[str]) -> None:
    found = await records.uploads_by_ids(request.app[keys.DB], tuple(ids))
    for upload_id in ids:
        part = found.get(upload_id)
        if part is None or part.owner_id != viewer.user_id:
            raise BadRequest(f"Upload-Concat: no upload '{upload_id}' of yours")
        if not part.is_partial:
            raise BadRequest(f"Upload-Concat: upload '{upload_id}' is not a partial upload")
        if part.expired() or part.state == records.FAILED:
            raise Gone(f"Upload-Concat: upload '{upload_id}' expired or failed")


def _creation_length(request: web.Request, concat: str | None) -> int | None:
    length = int_header(request, "Upload-Length")
    defer = request.headers.get("Upload-Defer-Length")
    if concat == "final":
        if length is not None:
            raise BadRequest("a final concatenation must not carry Upload-Length")
        return None
    if defer is not None:
        if defer.strip() != "1" or length is not None:
            raise BadRequest("send either Upload-Length or 'Upload-Defer-Length: 1'")
        return None
    if length is None:
        raise BadRequest("Upload-Length (or 'Upload-Defer-Length: 1') is required")
    return length


def _has_body(request: web.Request) -> bool:
    return bool(request.content_length) or "chunked" in request.headers.get(
        "Transfer-Encoding", "").lower()


@tus_endpoint
async def create(request: web.Request) -> web.Response:
    """creation extension: POST makes the upload and, at once, its video (`uploading`)."""
    app = request.app
    db, config = app[keys.DB], app[keys.CONFIG]
    viewer = require_user(request)
    concat, part_ids = _parse_concat(request.headers.get("Upload-Concat"))
    length = _creation_length(request, concat)
    if length is not None:
        quota.check_max_size(config, length)
    raw_metadata = request.headers.get("Upload-Metadata", "")
    values = metadata.parse_header(raw_metadata)
    has_body = _has_body(request)
    if has_body:
        if concat == "final":
            raise BadRequest("a final concatenation takes no body")
        protocol.check_content_type(request)
    fields = metadata.video_fields(values) if concat != "partial" else None
    channel = await metadata.upload_channel(db, viewer.user_id, fields) if fields else None
    if concat == "final":
        await _check_parts(request, viewer, part_ids)
    if concat != "final":
        await quota.check_quota(db, config, viewer.user_id, length or 0)
    await quota.check_free_disk(config, length or request.content_length or 0)
    video_id = None
    if fields is not None and channel is not None:
        video = await create_video(
            db, viewer.user_id, channel["id"], fields.title, description=fields.description,
            privacy=fields.privacy, original_filename=fields.filename)
        video_id = video["id"]
    upload = await records.insert_upload(
        db, owner_id=viewer.user_id, video_id=video_id, length=length, metadata=raw_metadata,
        concat=concat, parts=part_ids, expiry_seconds=config.upload_expiry_seconds)
    await asyncio.to_thread(store.create_empty, store.upload_path(config, upload.public_id))
    headers = {"Location": _upload_url(request, upload.public_id)}
    if has_body:  # creation-with-upload: the body is the first chunk
        async with app[keys.UPLOADS].locks.hold(upload.public_id, request) as holder:
            offset, upload = await _receive(request, upload, 0, None, holder)
        headers["Upload-Offset"] = str(offset)
    if concat == "final":
        await complete.finalize_concatenation(app, upload)
    fresh = await records.find_upload(db, upload.public_id)
    headers.update(_state_headers(request, fresh or upload))
    return web.Response(status=201, headers=headers)


async def _apply_length(request: web.Request, upload: Upload, offset: int) -> Upload:
    """creation-defer-length: the length arrives with a later PATCH, once, never changed."""
    length = int_header(request, "Upload-Length")
    if length is None:
        return upload
    if upload.length is not None:
        if length != upload.length:
            raise BadRequest("Upload-Length is already set and cannot change")
        return upload
    config, db = request.app[keys.CONFIG], request.app[keys.DB]
    quota.check_max_size(config, length)
    if length < offset:
        raise BadRequest(f"Upload-Length {length} is below the {offset} bytes already received")
    await quota.check_quota(db, config, upload.owner_id, length)
    await records.set_length(db, upload, length)
    found = await records.find_upload(db, upload.public_id)
    assert found is not None
    return found


async def _receive(request: web.Request, upload: Upload, offset: int,
                   checksum_header: str | None, holder: Holder) -> tuple[int, Upload]:
    """Stream the body onto the upload; finish it when its last byte is on disk."""
    app = request.app
    db, config = app[keys.DB], app[keys.CONFIG]
    checksum = parse_checksum(checksum_header)
    declared = request.content_length
    if upload.length is not None and declared is not None and offset + declared > upload.length:
        raise too_large(f"the chunk would end at {offset + declared}, past the upload's "
                        f"length {upload.length}")
    quota_left = None
    if upload.length is None:
        quota_left = await quota.remaining_quota(db, config, upload.owner_id)
    allowed = allowed_bytes(upload, offset, config.max_upload_bytes, quota_left)
    receiver = BodyReceiver(app, upload, offset, allowed, checksum, holder,
                            incoming=min(declared or 0, allowed))
    try:
        outcome = await receiver.receive(request)
    except SniffRefused as refused:
        await complete.reject_sniffed(app, upload, refused.verdict)
    path = store.upload_path(config, upload.public_id)
    new_offset = await asyncio.to_thread(store.size_on_disk, path)
    upload = await records.record_activity(db, upload, config.upload_expiry_seconds, new_offset)
    if outcome.too_large:
        raise too_large(f"the upload may take {allowed} more bytes here (size limit, length "
                        "or quota); the rest was refused")
    if upload.length is not None and new_offset >= upload.length:
        await complete.finish_upload(app, upload)
        upload = await records.find_upload(db, upload.public_id) or upload
    return new_offset, upload


@tus_endpoint
async def patch(request: web.Request) -> web.Response:
    app = request.app
    viewer = require_user(request)
    upload_id = request.match_info[UPLOAD_ID]
    upload = await _owned(request, viewer, upload_id)
    if upload.is_final:
        raise Forbidden("a final concatenated upload cannot be patched (tus concatenation)")
    protocol.check_content_type(request)
    claimed = int_header(request, "Upload-Offset")
    if claimed is None:
        raise BadRequest("Upload-Offset is required")
    parse_checksum(request.headers.get("Upload-Checksum"))  # 400 before taking the lock
    async with app[keys.UPLOADS].locks.hold(upload_id, request) as holder:
        if holder.waited:  # another request had it: it may have changed meanwhile
            upload = await _owned(request, viewer, upload_id)
        offset = await _offset(request, upload) or 0
        if upload.state == records.COMPLETE:
            if claimed == offset and not _has_body(request):
                return web.Response(status=204, headers={"Upload-Offset": str(offset)})
            raise Conflict("this upload is already complete",
                           headers={"Upload-Offset": str(offset)})
        if claimed != offset:
            raise Conflict(f"Upload-Offset {claimed} does not match the {offset} bytes "
                           "received; HEAD the upload and resume from there",
                           headers={"Upload-Offset": str(offset)})
        upload = await _apply_length(request, upload, offset)
        new_offset, upload = await _receive(
            request, upload, offset, request.headers.get("Upload-Checksum"), holder)
    headers = {"Upload-Offset": str(new_offset)}
    if upload.state == records.RECEIVING:
        headers["Upload-Expires"] = protocol.http_date(upload.expires_at)
    return web.Response(status=204, headers=headers)


@tus_endpoint
async def delete(request: web.Request) -> web.Response:
    """termination extension: the bytes go; an unfinished upload's video goes with them."""
    app = request.app
    db, config = app[keys.DB], app[keys.CONFIG]
    viewer = require_user(request)
    upload_id = request.match_info[UPLOAD_ID]
    upload = await _owned(request, viewer, upload_id)
    async with app[keys.UPLOADS].locks.hold(upload_id, request):
        await asyncio.to_thread(store.remove, store.upload_path(config, upload_id))
        await records.delete_upload(db, upload.id)
        if upload.video_id is not None and upload.state != records.COMPLETE:
            await records.delete_unfinished_video(db, upload.video_id)
    return web.Response(status=204)


_OVERRIDES = {"PATCH": patch, "DELETE": delete, "HEAD": head}


async def method_override(request: web.Request) -> web.StreamResponse:
    """X-HTTP-Method-Override (core protocol) for clients that can only send POST."""
    wanted = request.headers.get("X-HTTP-Method-Override", "").strip().upper()
    handler = _OVERRIDES.get(wanted)
    if handler is None:
        @tus_endpoint
        async def refuse(_: web.Request) -> web.Response:
            raise Problem("POST to an upload URL needs X-HTTP-Method-Override: PATCH, DELETE "
                          "or HEAD", status=405, slug="method-not-allowed",
                          headers={"Allow": "OPTIONS, HEAD, PATCH, DELETE, POST"})
        return await refuse(request)
    return await handler(request)
