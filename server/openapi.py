"""The OpenAPI 3.1 document, assembled from the `PATHS` and `SCHEMAS` of each API module.

Each module describes its own routes next to their handlers; tests check that the router
and this document list the same operations and validate real responses against it.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import ModuleType
from typing import Any

Schema = dict[str, Any]

PROBLEM_SCHEMA: Schema = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}

COMMON_SCHEMAS: dict[str, Schema] = {"Problem": PROBLEM_SCHEMA}

# A one-line name: no control characters, no DEL, no bidirectional overrides or isolates
# (they let a name display as something else; Unicode TR 9, CVE-2021-42574).
SINGLE_LINE = "^[^\\x00-\\x1f\\x7f\\u202a-\\u202e\\u2066-\\u2069]*$"

# At least one character that str.strip() keeps: for text the server trims before it checks
# that something is left. Spelled out, as \S means other things in Python and ECMA-262.
NOT_BLANK = ("[^\\t-\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f"
             "\\u205f\\u3000]")


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


PROBLEM_CONTENT: Schema = {"application/problem+json": {"schema": ref("Problem")}}


def path_param(name: str, description: str = "", schema: Schema | None = None) -> Schema:
    return {"name": name, "in": "path", "required": True,
            "schema": schema or {"type": "string"}, "description": description or name}


def query_param(name: str, schema: Schema, description: str = "") -> Schema:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description or name}


def header_param(name: str, description: str, required: bool = False) -> Schema:
    return {"name": name, "in": "header", "required": required,
            "schema": {"type": "string"}, "description": description}


# A row id: what server/validation.parse_id reads.
ROW_ID: Schema = {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}

CURSOR_PARAMS = [
    query_param("cursor", {"type": "string"}, "opaque cursor from a previous page"),
    query_param("limit", {"type": "integer", "minimum": 1, "maximum": 100}, "page size"),
]


def json_content(schema: Schema) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def op(
    summary: str,
    *,
    tag: str,
    responses: dict[int | str, Schema | str | None],
    body: Schema | None = None,
    body_required: bool = True,
    params: Iterable[Schema] = (),
    auth: str = "required",
) -> dict[str, Any]:
    """One operation. `responses` maps a status to a JSON schema, a media type, or None."""
    operation: dict[str, Any] = {"summary": summary, "tags": [tag]}
    params = list(params)
    if params:
        operation["parameters"] = params
    if body is not None:
        operation["requestBody"] = {"required": body_required, "content": json_content(body)}
    out: dict[str, Any] = {}
    for status, content in responses.items():
        entry: dict[str, Any] = {"description": str(status)}
        if isinstance(content, dict):
            entry["content"] = json_content(content)
        elif isinstance(content, str):
            entry["content"] = {content: {"schema": {"type": "string"}}}
        elif int(status) >= 400:
            entry["content"] = PROBLEM_CONTENT
        out[str(status)] = entry
    out["default"] = {"description": "an error, as RFC 9457 problem details",
                      "content": PROBLEM_CONTENT}
    operation["responses"] = out
    if auth == "required":
        operation["security"] = [{"bearer": []}, {"cookie": []}]
    elif auth == "optional":
        operation["security"] = [{"bearer": []}, {"cookie": []}, {}]
    else:
        operation["security"] = []
    return operation


def refusal(operation: dict[str, Any], status: int, description: str) -> dict[str, Any]:
    """The operation with one of its refusals (problem+json) described: what it means here
    and what lifts it."""
    operation["responses"][str(status)] = {"description": description,
                                           "content": PROBLEM_CONTENT}
    return operation


def link(path: str, method: str, description: str, parameters: dict[str, str]) -> Schema:
    """An OpenAPI link (3.1 section 4.8.20) to the operation `method path`, each parameter a
    runtime expression such as `$response.body#/id`."""
    pointer = path.replace("~", "~0").replace("/", "~1")
    return {"operationRef": f"#/paths/{pointer}/{method}", "description": description,
            "parameters": parameters}


def with_links(operation: dict[str, Any], status: int, links: dict[str, Schema]
               ) -> dict[str, Any]:
    """The operation, its `status` answer linked to what a client may do next with it."""
    operation["responses"][str(status)]["links"] = links
    return operation


def build_document(modules: Iterable[ModuleType]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    schemas: dict[str, Schema] = dict(COMMON_SCHEMAS)
    for module in modules:
        for path, operations in getattr(module, "PATHS", {}).items():
            paths.setdefault(path, {}).update(operations)
        schemas.update(getattr(module, "SCHEMAS", {}))
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Reelhouse API",
            "version": "0.1.0",
            "description": "Self-hosted video: accounts, uploads (tus 1.0.0), HLS playback, "
            "channels, comments and live notifications. Errors are RFC 9457 problem details. "
            "No string of a JSON body may hold U+0000 or an unpaired surrogate (400): "
            "SQLite and UTF-8 readers downstream take neither.",
        },
        "servers": [{"url": "/"}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "an access token from /api/auth/login, or an API "
                           "token (rh_...) from /api/users/me/tokens"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "rh_access",
                           "description": "browser session; unsafe methods also need the "
                           "X-CSRF-Token header"},
            },
        },
    }
