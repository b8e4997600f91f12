"""Signed access tokens, opaque refresh and API tokens, CSRF tokens and signed media grants."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

API_TOKEN_PREFIX = "rh_"  # noqa: S105 (a prefix, not a secret)


@dataclass(frozen=True)
class AccessClaims:
    user_id: int
    session_id: str


def new_opaque_token(prefix: str = "") -> str:
    return prefix + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """Tokens are stored as SHA-256: they are long and random, so no KDF is needed."""
    return hashlib.sha256(token.encode()).hexdigest()


class TokenSigner:
    def __init__(self, secret_key: str, access_seconds: int, media_seconds: int) -> None:
        self._secret = secret_key.encode()
        self._access = URLSafeTimedSerializer(secret_key, salt="access-token")
        self._media = URLSafeTimedSerializer(secret_key, salt="media-grant")
        self.access_seconds = access_seconds
        self.media_seconds = media_seconds

    def access_token(self, user_id: int, session_id: str) -> str:
        return self._access.dumps({"u": user_id, "s": session_id})

    def read_access_token(self, token: str) -> AccessClaims | None:
        try:
            data: Any = self._access.loads(token, max_age=self.access_seconds)
        except (BadSignature, SignatureExpired):
            return None
        if not isinstance(data, dict) or not isinstance(data.get("u"), int):
            return None
        return AccessClaims(user_id=data["u"], session_id=str(data.get("s", "")))

    def csrf_token(self, session_id: str) -> str:
        return hmac.new(self._secret, b"csrf:" + session_id.encode(), "sha256").hexdigest()

    def check_csrf(self, session_id: str, presented: str) -> bool:
        return hmac.compare_digest(self.csrf_token(session_id), presented)

    def media_grant(self, video_id: str, viewer: str, credential: str) -> str:
        """A signature for every media URL of one video, for one viewer, for a while, for
        as long as the session or API token it was made for (`credential`) lives."""
        return self._media.dumps({"v": video_id, "w": viewer, "c": credential})

    def read_media_grant(self, grant: str, video_id: str) -> tuple[str, str] | None:
        """(viewer, credential) the grant was made for, or None if it is not valid here."""
        try:
            data: Any = self._media.loads(grant, max_age=self.media_seconds)
        except (BadSignature, SignatureExpired):
            return None
        if not isinstance(data, dict) or data.get("v") != video_id or not data.get("c"):
            return None
        return str(data.get("w", "")), str(data["c"])
