"""Domain errors and their RFC 9457 problem+json form."""

from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from aiohttp import web

PROBLEM_TYPE_BASE = "https://reelhouse.invalid/problems/"
PROBLEM_CONTENT_TYPE = "application/problem+json"


class Problem(Exception):
    """An error the API reports as `application/problem+json` (RFC 9457 section 3)."""

    status = 400
    slug = "bad-request"

    def __init__(
        self,
        detail: str,
        *,
        status: int | None = None,
        slug: str | None = None,
        title: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if status is not None:
            self.status = status
        if slug is not None:
            self.slug = slug
        self.title = title or HTTPStatus(self.status).phrase
        self.errors = errors
        self.headers = dict(headers or {})

    def body(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": PROBLEM_TYPE_BASE + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        if self.errors:
            body["errors"] = self.errors
        return body


class BadRequest(Problem):
    status, slug = 400, "bad-request"


class ValidationFailed(Problem):
    status, slug = 400, "validation"

    def __init__(self, errors: list[dict[str, Any]], detail: str | None = None) -> None:
        text = detail or "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        super().__init__(text, errors=errors)


class Unauthorized(Problem):
    status, slug = 401, "unauthorized"

    def __init__(self, detail: str = "authentication required") -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="reelhouse"'})


class Forbidden(Problem):
    status, slug = 403, "forbidden"


class NotFound(Problem):
    status, slug = 404, "not-found"


class Conflict(Problem):
    status, slug = 409, "conflict"


class Gone(Problem):
    status, slug = 410, "gone"


class PayloadTooLarge(Problem):
    status, slug = 413, "too-large"


class UnsupportedMedia(Problem):
    status, slug = 415, "unsupported-media-type"


class TooManyRequests(Problem):
    status, slug = 429, "rate-limited"


class InsufficientStorage(Problem):
    status, slug = 507, "insufficient-storage"


def field_error(field: str, message: str) -> dict[str, Any]:
    return {"field": field, "message": message}


def problem_response(problem: Problem, instance: str | None = None) -> web.Response:
    # An error is about this request, at this moment: no cache keeps it (RFC 9111 5.2.2.5),
    # or a CDN could go on answering 404 for a video that has since become public.
    headers = {"Cache-Control": "no-store", **problem.headers}
    return web.Response(
        status=problem.status,
        body=json.dumps(problem.body(instance)).encode(),
        content_type=PROBLEM_CONTENT_TYPE,
        headers=headers,
    )


def problem_from_http(exc: web.HTTPException) -> Problem:
    slug = HTTPStatus(exc.status).phrase.lower().replace(" ", "-")
    detail = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
    headers = {k: v for k, v in exc.headers.items() if k.lower() in {"allow", "retry-after"}}
    return Problem(detail, status=exc.status, slug=slug, headers=headers)
