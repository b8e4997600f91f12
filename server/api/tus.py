"""tus 1.0.0 at /api/uploads: each request handled top to bottom here, helpers below.

Protocol text: https://tus.io/protocols/resumable-upload (core protocol and extensions).
Extensions: creation, creation-with-upload, creation-defer-length, checksum (sha1, md5,
sha256), expiration, termination, concatenation and concatenation-unfinished.

A PATCH checks the upload and its headers, takes the upload's lock (from a stalled request
if need be), compares Upload-Offset with the bytes on disk and calls `_append`: the body
onto the upload's file (server/uploads/receive.py) and, with its last byte, the upload's
completion (server/uploads/complete.py). That step, like the other ones below that must
not stop half-way, runs to its end even when the client leaves (store.runs_to_end).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable

from aiohttp import web

from server import keys
from server.db import Database, Row
from server.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    Gone,
    NotFound,
    PayloadTooLarge,
    Problem,
    UnsupportedMedia,
    problem_response,
)
from server.identity import SAFE_METHODS, require_user
from server.playback.ranges import http_date
from server.services import Services
from server.uploads import complete, metadata, quota, receive, records, store
from server.uploads.receive import Checksum, Holder
from server.uploads.records import Upload
from server.videos import create_video
from server.viewer import Viewer

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = ("creation,creation-with-upload,creation-defer-length,checksum,expiration,"
                  "termination,concatenation,concatenation-unfinished")
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"
UPLOADS_PATH = "/api/uploads"
UPLOAD_ID = "upload_id"
_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def closes_on_problem(handler: Handler) -> Handler:
    """A refusal while the body streams in closes the connection after the answer instead
    of reading gigabytes that are refused."""
    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except Problem as problem:
            response = problem_response(problem, request.path)
            if not request.content.is_eof():
                response.force_close()
            return response
    return wrapper


def tus_method(request: web.Request) -> str:
    """Core protocol, X-HTTP-Method-Override: when a request carries it, the server MUST take
    its value as the request's method, on every tus URL."""
    override = request.headers.get("X-HTTP-Method-Override", "").strip().upper()
    return override or request.method


def tus_endpoint(handler: Handler) -> Handler:
    """Core protocol: every request but OPTIONS names the version (412 otherwise), and every
    response carries Tus-Resumable, OPTIONS's and errors included (as the spec's own OPTIONS
    example and tusd do)."""
    @closes_on_problem
    async def checked(request: web.Request) -> web.StreamResponse:
        if tus_method(request) != "OPTIONS" and \
                request.headers.get("Tus-Resumable") != TUS_VERSION:
            raise Problem(
                f"this server speaks tus {TUS_VERSION}; send 'Tus-Resumable: {TUS_VERSION}'",
                status=412, slug="tus-version", headers={"Tus-Version": TUS_VERSION})
        return await handler(request)

    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        response = await checked(request)
        response.headers["Tus-Resumable"] = TUS_VERSION
        return response
    return wrapper


@tus_endpoint
async def options(request: web.Request) -> web.Response:
    """Core protocol, OPTIONS: what this server speaks."""
    return web.Response(status=204, headers={
        "Tus-Version": TUS_VERSION,
        "Tus-Extension": TUS_EXTENSIONS,
        "Tus-Checksum-Algorithm": ",".join(store.CHECKSUM_ALGORITHMS),
        "Tus-Max-Size": str(request.app[keys.CONFIG].max_upload_bytes),
    })


@tus_endpoint
async def head(request: web.Request) -> web.Response:
    services = request.app[keys.SERVICES]
    upload = await _owned(services.db, require_user(request), request.match_info[UPLOAD_ID])
    headers = _state_headers(request, upload)
    offset = await receive.current_offset(services.config, upload)
    if offset is not None:
        headers["Upload-Offset"] = str(offset)
    headers["Cache-Control"] = "no-store"  # core protocol, HEAD: offsets must not be cached
    return web.Response(status=200, headers=headers)


@tus_endpoint
async def create(request: web.Request) -> web.Response:
    """creation extension: POST makes the upload and, at once, its video (`uploading`)."""
    services = request.app[keys.SERVICES]
    db, config = services.db, services.config
    viewer = require_user(request)
    concat, part_ids = _parse_concat(request.headers.get("Upload-Concat"))
    length = _creation_length(request, concat)
    if length is not None:
        receive.check_max_size(config, length)
    raw_metadata = request.headers.get("Upload-Metadata", "")
    values = metadata.parse_header(raw_metadata)
    has_body = _has_body(request)
    if has_body:
        if concat == "final":
            raise BadRequest("a final concatenation takes no body")
        _check_content_type(request)
    fields = metadata.video_fields(values) if concat != "partial" else None
    channel = await metadata.upload_channel(db, viewer.user_id, fields) if fields else None
    state = request.app[keys.UPLOADS]
    users, user_id = state.users, viewer.user_id
    async with users.creating(user_id):  # the checks and the new row in one step
        if concat == "final":
            await _check_parts(db, viewer, part_ids)
            await quota.check_unfinished(db, config, users, user_id, replacing=len(part_ids))
        else:
            await quota.check_unfinished(db, config, users, user_id)
            await quota.check_quota(db, config, user_id, length or 0, users.held_bytes(user_id))
        await receive.check_free_disk(config, length or request.content_length or 0)
        upload = await _new_upload(services, viewer, fields, channel, length, raw_metadata,
                                   concat, part_ids)
    headers = {"Location": _upload_url(request, upload.public_id)}
    if has_body:  # creation-with-upload: the body is the first chunk
        async with state.locks.hold(upload.public_id, _stopper(request)) as holder:
            offset, upload = await _append(request, upload, 0, None, holder)
        headers["Upload-Offset"] = str(offset)
    if concat == "final":
        await complete.finalize_concatenation(services, request.app.get(keys.WORKERS),
                                              state, upload)
    fresh = await records.find_upload(db, upload.public_id)
    headers.update(_state_headers(request, fresh or upload))
    return web.Response(status=201, headers=headers)


@tus_endpoint
async def patch(request: web.Request) -> web.Response:
    services = request.app[keys.SERVICES]
    viewer = require_user(request)
    upload_id = request.match_info[UPLOAD_ID]
    upload = await _owned(services.db, viewer, upload_id)
    if upload.is_final:
        raise Forbidden("a final concatenated upload cannot be patched (tus concatenation)")
    _check_content_type(request)
    claimed = _int_header(request, "Upload-Offset")
    if claimed is None:
        raise BadRequest("Upload-Offset is required")
    checksum = receive.parse_checksum(request.headers.get("Upload-Checksum"))  # 400 first
    async with request.app[keys.UPLOADS].locks.hold(upload_id, _stopper(request)) as holder:
        if holder.waited:  # another request had it: it may have changed meanwhile
            upload = await _owned(services.db, viewer, upload_id)
        offset = await receive.current_offset(services.config, upload) or 0
        if upload.state == records.COMPLETE:
            if claimed == offset and not _has_body(request):
                return web.Response(status=204, headers={"Upload-Offset": str(offset)})
            raise Conflict("this upload is already complete",
                           headers={"Upload-Offset": str(offset)})
        if claimed != offset:
            raise Conflict(f"Upload-Offset {claimed} does not match the {offset} bytes "
                           "received; HEAD the upload and resume from there",
                           headers={"Upload-Offset": str(offset)})
        upload = await _apply_length(request, services, upload, offset)
        offset, upload = await _append(request, upload, offset, checksum, holder)
    headers = {"Upload-Offset": str(offset)}
    if upload.state == records.RECEIVING:
        headers["Upload-Expires"] = http_date(upload.expires_at)
    return web.Response(status=204, headers=headers)


@tus_endpoint
async def delete(request: web.Request) -> web.Response:
    """termination extension: the bytes go; an unfinished upload's video goes with them."""
    services = request.app[keys.SERVICES]
    upload_id = request.match_info[UPLOAD_ID]
    upload = await _owned(services.db, require_user(request), upload_id)
    async with request.app[keys.UPLOADS].locks.hold(upload_id, _stopper(request)):
        await _terminate(services, upload)
    return web.Response(status=204)


async def creation_url(request: web.Request) -> web.StreamResponse:
    """Every request to the creation URL, by its method or its X-HTTP-Method-Override."""
    return await _dispatch(request, _CREATION_METHODS)


async def upload_url(request: web.Request) -> web.StreamResponse:
    """Every request to an upload's URL, by its method or its X-HTTP-Method-Override."""
    return await _dispatch(request, _UPLOAD_METHODS)


async def _dispatch(request: web.Request, handlers: dict[str, Handler]
                    ) -> web.StreamResponse:
    method = tus_method(request)
    handler = handlers.get(method)
    # A GET or HEAD may stand for OPTIONS or HEAD, never for a change: the edge checked
    # CSRF and the rest for the method the request really has.
    if handler is None or (request.method in SAFE_METHODS and method not in SAFE_METHODS):
        handler = _refusal(request.method, method, handlers)
    return await handler(request)


def _refusal(sent: str, method: str, handlers: dict[str, Handler]) -> Handler:
    names = ", ".join(handlers)
    if method == sent:
        detail = (f"{sent} is not a tus method of this URL: send {names}, or a POST with "
                  "X-HTTP-Method-Override naming one of them")
    elif method in handlers:
        detail = (f"a {sent} may stand only for OPTIONS or HEAD; send {method} itself, or a "
                  f"POST with X-HTTP-Method-Override: {method}")
    else:
        detail = (f"X-HTTP-Method-Override: {method[:20]} names no tus method of this URL "
                  f"({names})")
    allow = ", ".join([*handlers, *(m for m in ("GET", "POST") if m not in handlers)])

    @tus_endpoint
    async def refuse(_: web.Request) -> web.Response:
        raise Problem(detail, status=405, slug="method-not-allowed", headers={"Allow": allow})
    return refuse


_CREATION_METHODS: dict[str, Handler] = {"OPTIONS": options, "POST": create}
_UPLOAD_METHODS: dict[str, Handler] = {"OPTIONS": options, "HEAD": head, "PATCH": patch,
                                       "DELETE": delete}


# --- Steps that run to their end once started (store.runs_to_end) ------------------------

@store.runs_to_end
async def _append(request: web.Request, upload: Upload, offset: int,
                  checksum: Checksum | None, holder: Holder) -> tuple[int, Upload]:
    """The body onto the upload's file, then, with its last byte, the upload's completion.

    A client that leaves cancels the handler but not this: its body stream ends with the
    disconnect, the bytes received are kept, and a full upload is still finished (a client
    that HEADs it later sees every byte and will not send another PATCH).
    """
    app = request.app
    services, state = app[keys.SERVICES], app[keys.UPLOADS]
    try:
        got = await receive.receive_body(services, upload, offset, request.content,
                                         request.content_length, checksum, holder,
                                         state.users.held_bytes(upload.owner_id))
    except receive.SniffRefused as refused:
        await complete.reject_sniffed(services, upload, refused.verdict)
    upload = got.upload
    if upload.length is not None and got.offset >= upload.length:
        await complete.finish_upload(services, app.get(keys.WORKERS), state, upload)
        upload = await records.find_upload(services.db, upload.public_id) or upload
    if got.too_large:
        raise PayloadTooLarge(f"the upload may take {got.allowed} more bytes here (size "
                              "limit, length or quota); the rest was refused")
    return got.offset, upload


@store.runs_to_end
async def _new_upload(services: Services, viewer: Viewer, fields: metadata.VideoFields | None,
                      channel: Row | None, length: int | None, raw_metadata: str,
                      concat: str | None, part_ids: list[str]) -> Upload:
    """The video (not for a partial), the upload's row and its empty file: a client that
    leaves half-way must not leave a video without an upload to fill it."""
    video_id = None
    if fields is not None and channel is not None:
        video = await create_video(
            services.db, viewer.user_id, channel["id"], fields.title,
            description=fields.description, privacy=fields.privacy,
            original_filename=fields.filename)
        video_id = video["id"]
    upload = await records.insert_upload(
        services.db, owner_id=viewer.user_id, video_id=video_id, length=length,
        metadata=raw_metadata, concat=concat, parts=part_ids,
        expiry_seconds=services.config.upload_expiry_seconds)
    await store.run_blocking(store.create_empty,
                             store.upload_path(services.config, upload.public_id))
    return upload


@store.runs_to_end
async def _terminate(services: Services, upload: Upload) -> None:
    await store.run_blocking(store.remove, store.upload_path(services.config, upload.public_id))
    await records.delete_upload(services.db, upload.id)
    if upload.video_id is not None and upload.state != records.COMPLETE:
        await records.delete_unfinished_video(services.db, upload.video_id)


# --- Helpers -----------------------------------------------------------------------------

async def _owned(db: Database, viewer: Viewer, upload_id: str) -> Upload:
    upload = await records.find_upload(db, upload_id)
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


def _stopper(request: web.Request) -> Callable[[], None]:
    """How a newer request stops this one when it takes the lock over: the connection
    closes, so this request's body stream fails and it lets go of the upload."""
    def stop() -> None:
        if request.transport is not None:
            request.transport.close()
    return stop


def _check_content_type(request: web.Request) -> None:
    """PATCH bodies MUST be `application/offset+octet-stream` (core protocol, PATCH)."""
    if request.content_type != OFFSET_CONTENT_TYPE:
        raise UnsupportedMedia(f"the body's Content-Type must be {OFFSET_CONTENT_TYPE}")


def _int_header(request: web.Request, name: str) -> int | None:
    raw = request.headers.get(name)
    if raw is None:
        return None
    if not raw.strip().isdigit():
        raise BadRequest(f"{name} must be a non-negative integer")
    return int(raw)


def _has_body(request: web.Request) -> bool:
    return bool(request.content_length) or "chunked" in request.headers.get(
        "Transfer-Encoding", "").lower()


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
        headers["Upload-Expires"] = http_date(upload.expires_at)
    if upload.video_public_id:
        headers["Video-Id"] = upload.video_public_id
    return headers


def _creation_length(request: web.Request, concat: str | None) -> int | None:
    length = _int_header(request, "Upload-Length")
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


async def _apply_length(request: web.Request, services: Services, upload: Upload,
                        offset: int) -> Upload:
    """creation-defer-length: the length arrives with a later PATCH, once, never changed."""
    length = _int_header(request, "Upload-Length")
    if length is None:
        return upload
    if upload.length is not None:
        if length != upload.length:
            raise BadRequest("Upload-Length is already set and cannot change")
        return upload
    receive.check_max_size(services.config, length)
    if length < offset:
        raise BadRequest(f"Upload-Length {length} is below the {offset} bytes already received")
    users = request.app[keys.UPLOADS].users
    async with users.creating(upload.owner_id):
        # Until now the upload held its `offset` bytes on disk; from now on its length.
        await quota.check_quota(services.db, services.config, upload.owner_id,
                                length - offset, users.held_bytes(upload.owner_id))
        await records.set_length(services.db, upload, length)
    found = await records.find_upload(services.db, upload.public_id)
    assert found is not None
    return found


def _parse_concat(header: str | None) -> tuple[str | None, list[str]]:
    if header is None:
        return None, []
    value = header.strip()
    if value == "partial":
        return "partial", []
    if value.startswith("final;"):
        ids = [_upload_id_from_url(u) for u in value[len("final;"):].split()]
        if not ids or any(i is None for i in ids):
            raise BadRequest("Upload-Concat: final needs the URLs of this server's uploads")
        return "final", [i for i in ids if i is not None]
    raise BadRequest("Upload-Concat must be 'partial' or 'final;<url> <url> ...'")


async def _check_parts(db: Database, viewer: Viewer, ids: list[str]) -> None:
    found = await records.uploads_by_ids(db, tuple(ids))
    for upload_id in ids:
        part = found.get(upload_id)
        if part is None or part.owner_id != viewer.user_id:
            raise BadRequest(f"Upload-Concat: no upload '{upload_id}' of yours")
        if not part.is_partial:
            raise BadRequest(f"Upload-Concat: upload '{upload_id}' is not a partial upload")
        if part.expired() or part.state == records.FAILED:
            raise Gone(f"Upload-Concat: upload '{upload_id}' expired or failed")


def _base_url(request: web.Request) -> str:
    """The URL clients reach us by: public_url, else the (trusted) proxy's view, else ours."""
    config = request.app[keys.CONFIG]
    if config.public_url:
        return config.public_url.rstrip("/")
    scheme, host = request.scheme, request.host
    if request.remote in config.trusted_proxy_set:
        proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
        forwarded_host = request.headers.get("X-Forwarded-Host", "").split(",")[0].strip()
        if proto in ("http", "https"):
            scheme = proto
        if forwarded_host and _HOST.match(forwarded_host):
            host = forwarded_host
    return f"{scheme}://{host}"


def _upload_url(request: web.Request, upload_id: str) -> str:
    return f"{_base_url(request)}{UPLOADS_PATH}/{upload_id}"


def _upload_id_from_url(url: str) -> str | None:
    """Upload-Concat lists upload URLs, absolute or relative; the id is the last segment."""
    path = url.split("?", 1)[0].rstrip("/")
    marker = UPLOADS_PATH + "/"
    if marker not in path:
        return None
    candidate = path.rsplit(marker, 1)[1]
    return candidate if candidate and "/" not in candidate else None
