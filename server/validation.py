"""Request bodies are checked against the same JSON Schemas the OpenAPI document publishes."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from aiohttp import web
from jsonschema import Draft202012Validator

from server.errors import BadRequest, PayloadTooLarge, UnsupportedMedia, ValidationFailed


@lru_cache(maxsize=256)
def _validator(schema_json: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_json))


def _field_name(path: list[Any], message: str, validator: str) -> str:
    if validator == "required" and "'" in message:
        missing = message.split("'")[1]
        return ".".join(str(p) for p in [*path, missing])
    if validator == "additionalProperties" and "'" in message:
        return ".".join(str(p) for p in [*path, message.split("'")[1]])
    return ".".join(str(p) for p in path) or "body"


def _describe(error: Any) -> str:
    kind = error.validator
    if kind == "type":
        return f"must be of type {error.validator_value}"
    if kind == "required":
        return "is required"
    if kind == "additionalProperties":
        return "is not a known field"
    if kind == "minLength":
        return f"must be at least {error.validator_value} characters"
    if kind == "maxLength":
        return f"must be at most {error.validator_value} characters"
    if kind == "pattern":
        return "contains characters that are not allowed"
    if kind == "enum":
        return "must be one of " + ", ".join(map(str, error.validator_value))
    if kind in {"minimum", "maximum"}:
        return f"must be {'at least' if kind == 'minimum' else 'at most'} {error.validator_value}"
    return str(error.message)


def validate(data: Any, schema: dict[str, Any]) -> None:
    validator = _validator(json.dumps(schema, sort_keys=True))
    try:
        errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    except RecursionError as exc:
        raise BadRequest("the request body is nested too deeply") from exc
    if errors:
        raise ValidationFailed([
            {"field": _field_name(list(e.absolute_path), e.message, e.validator),
             "message": _describe(e)}
            for e in errors
        ])


# SQLite's INTEGER is 64-bit signed: a larger number in a query is an OverflowError, not a
# row that is missing.
MAX_ID = 2**63 - 1


def parse_id(raw: str) -> int | None:
    """A row id given as text (a path or query parameter): ASCII digits from 1 to MAX_ID,
    else None (int() also reads " 7", "+7", "7_0" and other scripts' digits)."""
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19:
        return None
    value = int(raw)
    return value if 1 <= value <= MAX_ID else None


def _reject_constant(name: str) -> Any:
    # NaN and Infinity are not JSON (RFC 8259 section 6), though Python's parser takes them.
    raise ValueError(f"{name} is not a JSON number")


def _bad_text(value: Any, path: str) -> str | None:
    """The first string (or key) holding NUL or a lone surrogate, which SQLite and every
    UTF-8 consumer downstream would choke on (RFC 8259 section 8.2)."""
    if isinstance(value, str):
        if "\x00" in value or any("\ud800" <= ch <= "\udfff" for ch in value):
            return path or "body"
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            found = _bad_text(key, where) or _bad_text(item, where)
            if found:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _bad_text(item, f"{path}.{index}" if path else str(index))
            if found:
                return found
    return None


def parse_json(raw: bytes) -> Any:
    try:
        data = json.loads(raw, parse_constant=_reject_constant)
        bad = _bad_text(data, "")
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        # ValueError also covers integers too long to convert (CPython's 4300-digit limit).
        raise BadRequest("the request body is not valid JSON", slug="malformed-json") from exc
    if bad is not None:
        raise ValidationFailed([{"field": bad,
                                 "message": "contains NUL or an unpaired surrogate"}])
    return data


async def json_body(request: web.Request, schema: dict[str, Any]) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise UnsupportedMedia("the request body must be application/json")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise PayloadTooLarge("the request body is larger than the server accepts") from exc
    data = parse_json(raw)
    if not isinstance(data, dict):
        raise ValidationFailed([{"field": "body", "message": "must be a JSON object"}])
    validate(data, schema)
    return data


async def optional_json_body(request: web.Request, schema: dict[str, Any]) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    return await json_body(request, schema)
