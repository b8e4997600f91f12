"""Media URLs: HLS (fMP4 and MPEG-TS), progressive MP4, original, poster, storyboard.

Every handler first asks `access.authorize` (privacy, viewer, signed grant), then sends
bytes with `files.send_parts` (RFC 9110 ranges and conditionals, sendfile). HEAD is
answered by every route (aiohttp adds it to each GET route).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any
from urllib.parse import quote

from aiohttp import hdrs, web

from media.layout import (
    FMP4_FILE,
    IFRAME_PLAYLIST,
    RENDITION_NAME,
    STORYBOARD_FILE,
    TS_SEGMENT_NAME,
    VideoLayout,
)
from media.probe import SAFE_MEDIA_TYPES
from server import keys, storage
from server.errors import NotFound
from server.identity import current_viewer, viewer_key
from server.openapi import header_param, op, path_param, query_param
from server.playback import hls
from server.playback.access import SIG_PARAM, Access, authorize
from server.playback.files import FilePart, send_parts
from server.playback.ranges import http_date
from server.playback.state import PlaybackState
from server.videos import GENERATION_PARAM

PROGRESSIVE_FILE = re.compile(r"^([A-Za-z0-9_-]{1,40})\.mp4$")
# CORS itself is the edge's (server/edge/cors.py, on every answer of a media route); these
# let other origins embed and time the media.
EMBEDDABLE = {"Cross-Origin-Resource-Policy": "cross-origin", "Timing-Allow-Origin": "*"}
CONDITIONAL = (hdrs.RANGE, hdrs.IF_NONE_MATCH, hdrs.IF_MODIFIED_SINCE, hdrs.IF_MATCH,
               hdrs.IF_UNMODIFIED_SINCE, hdrs.IF_RANGE)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def media(handler: Handler) -> Handler:
    """A missing file (not produced yet, or removed) is a 404 problem, not a 500."""
    @wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise NotFound("this media file does not exist (yet)") from exc
    return wrapper


def generation(request: web.Request) -> int:
    """`?g=N`: the generation of the outputs asked for (media/layout.py); none is the
    first. Whichever generations are on disk are served: the current one, and the one it
    replaced for as long as it is kept."""
    raw = request.query.get(GENERATION_PARAM)
    if raw is None:
        return 0
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 9):
        raise NotFound("no such generation of this video's media")
    return int(raw)


async def _authorized(request: web.Request) -> tuple[PlaybackState, Access, VideoLayout]:
    """The id is one the database knows, so its folder is safe to name."""
    app = request.app
    st = app[keys.PLAYBACK]
    public_id = request.match_info["video_id"]
    viewer = current_viewer(request)
    access = await authorize(app[keys.DB], app[keys.SIGNER], st.videos, public_id, viewer,
                             viewer_key(request, viewer), request.query.get(SIG_PARAM))
    return st, access, storage.video_layout(request.app[keys.CONFIG], public_id,
                                            generation(request))


def _part(request: web.Request, name: str, pattern: re.Pattern[str]) -> re.Match[str]:
    match = pattern.match(request.match_info[name])
    if match is None:
        raise NotFound(f"no such {name}")
    return match


def _grant_for_playlist(request: web.Request, access: Access) -> str | None:
    """Only a private video's playlists carry a grant down to the URLs they list (public and
    unlisted ones are the same for everyone, so shared caches can serve them); a signed-in
    viewer of a private video gets one minted, for players that drop headers and cookies."""
    if access.video.privacy != "private":
        return None
    if access.sig is not None:
        return access.sig
    viewer = current_viewer(request)
    if viewer is None or viewer.credential is None:
        return None
    return request.app[keys.SIGNER].media_grant(access.video.public_id, access.viewer_key,
                                                viewer.credential)


def accepts_gzip(accept_encoding: str | None) -> bool:
    """RFC 9110 section 12.5.3: gzip unless refused with q=0."""
    if not accept_encoding or "gzip" not in accept_encoding:
        return False
    for item in accept_encoding.split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() in ("gzip", "x-gzip"):
            q = params.strip().lower().removeprefix("q=")
            return not (params and q.replace(".", "").strip("0") == "")
    return False


def _conditional(request: web.Request) -> bool:
    headers = request.headers
    return any(name in headers for name in CONDITIONAL)


def _carried(request: web.Request, access: Access) -> str | None:
    """The query every URI a playlist lists carries down: its generation and the grant."""
    query = []
    if gen := generation(request):
        query.append(f"{GENERATION_PARAM}={gen}")
    if sig := _grant_for_playlist(request, access):
        query.append(f"{SIG_PARAM}={quote(sig, safe='')}")
    return "&".join(query) or None


async def _text(request: web.Request, path: str, flavour: str, content_type: str,
                st: PlaybackState, access: Access) -> web.StreamResponse:
    carried = _carried(request, access)
    rendered = st.playlists.fresh(path, carried, flavour) or await st.playlists.get(
        path, carried, flavour)
    gz = accepts_gzip(request.headers.get(hdrs.ACCEPT_ENCODING))
    body, validators = ((rendered.gzipped, rendered.gzip_validators) if gz
                        else (rendered.body, rendered.validators))
    headers = {**EMBEDDABLE, "Cache-Control": st.caching.playlist(access.video),
               "Vary": "Accept-Encoding"}
    if gz:
        headers["Content-Encoding"] = "gzip"
    if not _conditional(request):
        # The common case: nothing to evaluate, answer from memory.
        return web.Response(body=body, headers={
            **headers, "ETag": validators.etag, "Accept-Ranges": "bytes",
            "Last-Modified": http_date(validators.last_modified),
            hdrs.CONTENT_TYPE: content_type})
    return await send_parts(request, [body], validators, content_type=content_type,
                            files=st.files, headers=headers)


async def _file(request: web.Request, path: str, content_type: str, st: PlaybackState,
                access: Access, extra: dict[str, str] | None = None, *,
                for_anyone: bool = True) -> web.StreamResponse:
    info = await st.stats.get(path)
    headers = {**EMBEDDABLE, "Cache-Control": st.caching.file(access.video,
                                                              for_anyone=for_anyone),
               **(extra or {})}
    return await send_parts(request, [FilePart(path, 0, info.size)], info.validators,
                            content_type=content_type, files=st.files, headers=headers)


async def options(request: web.Request) -> web.Response:
    """OPTIONS without a CORS preflight (the edge answers those): what the path allows."""
    return web.Response(status=204, headers={"Allow": "GET, HEAD, OPTIONS"})


@media
async def hls_master(request: web.Request) -> web.StreamResponse:
    st, access, layout = await _authorized(request)
    return await _text(request, str(layout.master), "fmp4", hls.CONTENT_TYPE, st, access)


@media
async def hls_media(request: web.Request) -> web.StreamResponse:
    st, access, layout = await _authorized(request)
    rendition = _part(request, "rendition", RENDITION_NAME).group(0)
    return await _text(request, str(layout.media_playlist(rendition)), "fmp4",
                       hls.CONTENT_TYPE, st, access)


@media
async def hls_iframes(request: web.Request) -> web.StreamResponse:
    st, access, layout = await _authorized(request)
    rendition = _part(request, "rendition", RENDITION_NAME).group(0)
    return await _text(request, str(layout.rendition(rendition) / IFRAME_PLAYLIST), "fmp4",
                       hls.CONTENT_TYPE, st, access)


@media
async def hls_segment(request: web.Request) -> web.StreamResponse:
    st, access, layout = await _authorized(request)
    rendition = _part(request, "rendition", RENDITION_NAME).group(0)
    name = _part(request, "segment", FMP4_FILE).group(0)
    return await _file(request, str(layout.rendition(rendition) / name), "video/mp4", st,
                       access)


@media
async def ts_master(request: web.Request) -> web.StreamResponse:
    st, access, layout = await _authorized(request)
    # The TS master lists the same variants; their relative URIs resolve under hls-ts/.
    return await _text(request, str(layout.master), "ts", hls.CONTENT_TYPE, st, access)


@media
async def ts_media(request: web.Request) -> web.StreamResponse:
    st, access, layout = await _authorized(request)
    rendition = _part(request, "rendition", RENDITION_NAME).group(0)
    return await _text(request, str(layout.media_playlist(rendition)), "ts",
                       hls.CONTENT_TYPE, st, access)


@media
async def ts_segment(request: web.Request) -> web.StreamResponse:
    st, access, layout = await _authorized(request)
    rendition = _part(request, "rendition", RENDITION_NAME).group(0)
    index = int(_part(request, "segment", TS_SEGMENT_NAME).group(1))
    out = layout.ts_segment(rendition, index)
    try:
        await st.stats.get(str(out))  # made before: no remux, no extra stat
    except FileNotFoundError:
        await st.ts.ensure(layout.init(rendition), layout.segment(rendition, index), out)
    return await _file(request, str(out), "video/mp2t", st, access)


@media
async def progressive_mp4(request: web.Request) -> web.StreamResponse:
    st, access, layout = await _authorized(request)
    rendition = _part(request, "file", PROGRESSIVE_FILE).group(1)

    async def duration() -> float:
        value = await request.app[keys.DB].fetch_value(
            "SELECT duration FROM renditions WHERE video_id = ? AND name = ?",
            (access.video.key, rendition))
        if value is None:
            raise NotFound(f"no rendition '{rendition}'")
        return float(value)

    made = await st.layouts.get(str(layout.rendition(rendition)), duration,
                                settled=access.video.status == "ready")
    headers = {**EMBEDDABLE, "Cache-Control": st.caching.file(access.video)}
    return await send_parts(request, made.parts, made.validators,
                            content_type="video/mp4", files=st.files, headers=headers)


@media
async def original(request: web.Request) -> web.StreamResponse:
    st, access, layout = await _authorized(request)
    video = access.video
    owner = current_viewer(request)
    if not video.allow_download and not (owner and (owner.user_id == video.owner_id
                                                    or owner.is_admin)):
        raise NotFound("the owner does not offer the original file")
    # Always an attachment, and typed from the probe's allowlist only: an uploaded file is
    # bytes somebody chose, and must never render as a page or run as a script here.
    content_type = (video.original_mime if video.original_mime in SAFE_MEDIA_TYPES
                    else "application/octet-stream")
    name = video.original_filename or f"{video.public_id}"
    return await _file(request, str(layout.original), content_type, st, access,
                       {"Content-Disposition": attachment(name)},
                       for_anyone=video.allow_download)


def attachment(filename: str) -> str:
    """RFC 6266 section 4.3: an ASCII `filename` for old clients, and the name itself as
    `filename*` in RFC 8187's UTF-8 encoding for the rest."""
    ascii_name = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode()
    ascii_name = re.sub(r'[^A-Za-z0-9._ ()+-]', "_", ascii_name).strip()
    stem, dot, ext = ascii_name.rpartition(".") if "." in ascii_name else (ascii_name, "", "")
    if not stem.strip(" ._"):  # nothing is left of the name itself (日本の動画.mp4)
        ascii_name = "video" + dot + ext
    encoded = quote(filename, safe="")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{encoded}"


@media
async def poster(request: web.Request) -> web.StreamResponse:
    st, access, layout = await _authorized(request)
    return await _file(request, str(layout.poster), "image/jpeg", st, access)


@media
async def storyboard(request: web.Request) -> web.StreamResponse:
    st, access, layout = await _authorized(request)
    match = _part(request, "file", STORYBOARD_FILE)
    path = str(layout.storyboard / match.group(0))
    if match.group(1) == "vtt":
        return await _text(request, path, "vtt", "text/vtt", st, access)
    return await _file(request, path, "image/jpeg", st, access)


def _media_op(summary: str, content_type: str, *extra_params: dict[str, Any]) -> dict[str, Any]:
    params = [
        path_param("video_id", "the video's public id"), *extra_params,
        query_param("sig", {"type": "string"}, "signed media grant from GET /api/videos/{id}"),
        query_param(GENERATION_PARAM, {"type": "integer", "minimum": 0, "maximum": 999_999_999},
                    "generation of the outputs (a video processed again has a new one; the "
                    "URLs from GET /api/videos/{id} name it)"),
        header_param("Range", "RFC 9110 byte ranges"),
        header_param("If-Range", "an ETag or HTTP date"),
        header_param("If-None-Match", "ETags"),
        header_param("If-Modified-Since", "an HTTP date"),
    ]
    get = op(summary, tag="playback", params=params, auth="optional",
             responses={200: content_type, 206: content_type, 304: None})
    # Several ranges come back as one multipart/byteranges body (RFC 9110 section 14.6).
    get["responses"]["206"]["content"]["multipart/byteranges"] = {"schema": {"type": "string"}}
    head = op(summary + " (headers only)", tag="playback", params=params, auth="optional",
              responses={200: None, 304: None})
    # CORS preflights (answered by the edge) and plain OPTIONS (what the path allows).
    options = op("CORS preflight for " + summary, tag="playback", auth="none",
                 params=[path_param("video_id", "the video's public id"),
                         *(p for p in extra_params if p["in"] == "path")],
                 responses={204: None})
    return {"get": get, "head": head, "options": options}


def _original_op(operations: dict[str, Any]) -> dict[str, Any]:
    """The original goes out typed as the probe found it, when that type is on the safe
    list (`original` above), else as application/octet-stream."""
    for status in ("200", "206"):
        content = operations["get"]["responses"][status]["content"]
        for media_type in sorted(SAFE_MEDIA_TYPES):
            content[media_type] = {"schema": {"type": "string"}}
    return operations


_RENDITION = path_param("rendition", "a rendition's name, e.g. 720p or audio")
_SEGMENT = path_param("segment", "init.mp4 or seg_NNNNN.m4s (TS: seg_NNNNN.ts)")
_FILE = path_param("file", "a file name")
_V = "/api/videos/{video_id}"
M3U8 = hls.CONTENT_TYPE
PATHS = {
    f"{_V}/hls/master.m3u8": _media_op("fMP4 HLS master playlist", M3U8),
    f"{_V}/hls/{{rendition}}/index.m3u8": _media_op("fMP4 media playlist", M3U8, _RENDITION),
    f"{_V}/hls/{{rendition}}/iframes.m3u8": _media_op(
        "I-frame playlist: byte ranges of the keyframes in the fMP4 segments", M3U8,
        _RENDITION),
    f"{_V}/hls/{{rendition}}/{{segment}}": _media_op(
        "fMP4 init or media segment", "video/mp4", _RENDITION, _SEGMENT),
    f"{_V}/hls-ts/master.m3u8": _media_op("MPEG-TS HLS master playlist", M3U8),
    f"{_V}/hls-ts/{{rendition}}/index.m3u8": _media_op(
        "MPEG-TS media playlist", M3U8, _RENDITION),
    f"{_V}/hls-ts/{{rendition}}/{{segment}}": _media_op(
        "MPEG-TS segment, remuxed from fMP4 on first request", "video/mp2t",
        _RENDITION, _SEGMENT),
    f"{_V}/progressive/{{file}}": _media_op(
        "one rendition as a single seekable MP4 (<rendition>.mp4)", "video/mp4", _FILE),
    f"{_V}/original": _original_op(_media_op(
        "the uploaded file as an attachment, when the owner allows downloads",
        "application/octet-stream",
        query_param("download", {"type": "string"},
                    "any value, read by nobody: accepted for old links (always an attachment)"))),
    f"{_V}/poster.jpg": _media_op("poster frame", "image/jpeg"),
    f"{_V}/storyboard/{{file}}": _media_op(
        "seek preview sprites and their WebVTT index", "text/vtt", _FILE),
}
SCHEMAS: dict[str, Any] = {}
