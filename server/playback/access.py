"""Who may fetch a media URL: the video's privacy, the viewer, and signed media grants.

Public and unlisted videos: anyone, at stable unsigned URLs (the unguessable id keeps
unlisted unlisted). Private: the owner and administrators, by Bearer token, session
cookie, or a signed grant (`?sig=`) made for one of them. A grant names one video
and one viewer (`u:<user id>` or `anon:<cookie id>`) and expires after
`signed_url_seconds`. Privacy is checked on every request, so making a video private stops
every grant made for anyone else at once; the small per-process cache below is dropped
for a video whenever it is changed through the API.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from server.db import Database
from server.errors import Forbidden, NotFound
from server.tokens import TokenSigner
from server.viewer import Viewer

CACHE_SECONDS = 2.0
SIG_PARAM = "sig"


@dataclass(frozen=True)
class MediaVideo:
    key: int
    public_id: str
    owner_id: int
    privacy: str
    status: str
    allow_download: bool
    original_filename: str
    original_mime: str


@dataclass(frozen=True)
class Access:
    video: MediaVideo
    sig: str | None  # the grant to carry on to the URLs a playlist lists
    viewer_key: str


class VideoCache:
    """public id -> (privacy, owner, status) for a couple of seconds: media requests are
    many and small, and each would otherwise cost a database round trip."""

    def __init__(self) -> None:
        self._videos: dict[str, tuple[float, MediaVideo | None]] = {}
        self._admins: dict[int, tuple[float, bool]] = {}
        self._credentials: dict[str, tuple[float, bool]] = {}

    async def video(self, db: Database, public_id: str) -> MediaVideo | None:
        now = time.monotonic()
        hit = self._videos.get(public_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        row = await db.fetch_one(
            "SELECT id, owner_id, privacy, status, allow_download, original_filename,"
            " original_mime FROM videos"
            " WHERE public_id = ?", (public_id,))
        found = None if row is None else MediaVideo(
            row["id"], public_id, row["owner_id"], row["privacy"], row["status"],
            bool(row["allow_download"]), row["original_filename"], row["original_mime"])
        if len(self._videos) > 10_000:
            self._videos.clear()
        self._videos[public_id] = (now + CACHE_SECONDS, found)
        return found

    async def is_admin(self, db: Database, user_id: int) -> bool:
        now = time.monotonic()
        hit = self._admins.get(user_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        value = bool(await db.fetch_value(
            "SELECT is_admin FROM users WHERE id = ? AND disabled = 0", (user_id,)))
        if len(self._admins) > 10_000:
            self._admins.clear()
        self._admins[user_id] = (now + CACHE_SECONDS, value)
        return value

    async def credential_alive(self, db: Database, credential: str) -> bool:
        """The session or API token a grant was made for still stands: signing out,
        revoking the session or token, a password change or a disabled account ends the
        grants made for it (within CACHE_SECONDS)."""
        now = time.monotonic()
        hit = self._credentials.get(credential)
        if hit is not None and hit[0] > now:
            return hit[1]
        kind, _, ident = credential.partition(":")
        if kind == "s":
            sql = ("SELECT 1 FROM sessions s JOIN users u ON u.id = s.user_id WHERE"
                   " s.public_id = ? AND s.revoked = 0 AND s.expires_at > ? AND u.disabled = 0")
            alive = await db.fetch_value(sql, (ident, time.time())) is not None
        elif kind == "t" and ident.isdigit():
            sql = ("SELECT 1 FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE"
                   " t.id = ? AND u.disabled = 0")
            alive = await db.fetch_value(sql, (int(ident),)) is not None
        else:
            alive = False
        if len(self._credentials) > 10_000:
            self._credentials.clear()
        self._credentials[credential] = (now + CACHE_SECONDS, alive)
        return alive

    def forget_credentials(self) -> None:
        """A session or token ended somewhere: every grant is checked afresh."""
        self._credentials.clear()

    def forget(self, public_id: str) -> None:
        self._videos.pop(public_id, None)


def may_view(video: MediaVideo, viewer: Viewer | None) -> bool:
    if video.privacy in ("public", "unlisted"):
        return True
    return viewer is not None and (viewer.user_id == video.owner_id or viewer.is_admin)


async def _grant_allows(db: Database, cache: VideoCache, video: MediaVideo,
                       granted_to: str) -> bool:
    kind, _, ident = granted_to.partition(":")
    if kind != "u" or not ident.isdigit():
        return False
    user_id = int(ident)
    return user_id == video.owner_id or await cache.is_admin(db, user_id)


async def authorize(db: Database, signer: TokenSigner, cache: VideoCache, public_id: str,
                    viewer: Viewer | None, viewer_key: str, sig: str | None) -> Access:
    """Raises 404 when the video is unknown or hidden from this viewer, 403 for a bad grant.

    `viewer_key` names the viewer (identity.viewer_key); `sig` is the URL's grant, if any.
    """
    video = await cache.video(db, public_id)
    if video is None:
        raise NotFound(f"no video '{public_id}'")
    if video.privacy != "private":
        # Public and unlisted: the same URL for everyone, for as long as the video stays so
        # (an old link's `sig` is not even read, so it cannot expire).
        return Access(video, None, viewer_key)
    if sig is not None:
        grant = signer.read_media_grant(sig, public_id)
        if grant is None:
            raise Forbidden("the signed URL is invalid, expired or for another video",
                            slug="bad-signature")
        granted_to, credential = grant
        if not await _grant_allows(db, cache, video, granted_to) \
                or not await cache.credential_alive(db, credential):
            raise Forbidden("the signed URL no longer gives access to this video",
                            slug="bad-signature")
        return Access(video, sig, granted_to)
    if not may_view(video, viewer):
        raise NotFound(f"no video '{public_id}'")
    return Access(video, None, viewer_key)


class MediaCaching:
    """Cache-Control for media (RFC 9111 section 5.2.2).

    Files (segments, init, progressive, poster, storyboard sprites) never change under
    their name: browsers keep them a year (`immutable`), while shared caches revalidate
    after `shared_seconds` (`s-maxage`, a 304 that costs the origin no bytes), so a public
    video made private leaves a proxy or CDN within that instead of a year. A finished
    video's playlists are kept `playlist_seconds`; one still processing grows, so it is
    always revalidated. Private media is `private`: only the viewer's own cache keeps it.
    """

    def __init__(self, shared_seconds: int, playlist_seconds: int) -> None:
        shared = f"public, max-age=31536000, immutable, s-maxage={shared_seconds}"
        self._files = {True: shared, False: "private, max-age=31536000, immutable"}
        self._playlists = {
            (True, True): f"public, max-age={playlist_seconds}",
            (False, True): f"private, max-age={playlist_seconds}",
            (True, False): "public, no-cache", (False, False): "private, no-cache",
        }

    def file(self, video: MediaVideo, *, for_anyone: bool = True) -> str:
        """`for_anyone=False`: a file only some viewers may have (an original the owner
        does not offer), which no shared cache may keep."""
        return self._files[video.privacy != "private" and for_anyone]

    def playlist(self, video: MediaVideo) -> str:
        return self._playlists[video.privacy != "private", video.status == "ready"]
