"""The OpenAPI document describes exactly the routes the server has, and is valid 3.1."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from jsonschema import ValidationError
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from server import keys
from server.app import create_app
from server.config import Config
from tests.helpers import check_openapi

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


@pytest.fixture
def openapi_doc(config: Config) -> dict[str, Any]:
    return create_app(config)[keys.OPENAPI]


def router_operations(app: web.Application) -> set[tuple[str, str]]:
    """(method, path template) of every /api route. A HEAD route that aiohttp added beside a
    GET (same handler) is left out; a HEAD route of its own (tus) is kept."""
    found: set[tuple[str, str]] = set()
    for resource in app.router.resources():
        path = resource.canonical
        if not (path == "/api" or path.startswith("/api/")):
            continue
        routes = list(resource)
        get_handlers = [r.handler for r in routes if r.method == "GET"]
        for route in routes:
            if route.method == "HEAD" and route.handler in get_handlers:
                continue
            # A catch-all (`*`) route must still be described by at least one operation.
            found.add((route.method.lower(), path))
    return found


def document_operations(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method, path) for path, item in doc["paths"].items()
            for method in item if method in HTTP_METHODS}


def test_router_and_document_describe_the_same_operations(config: Config) -> None:
    # The real app only: tests that add routes of their own build separate apps.
    app = create_app(config)
    doc = app[keys.OPENAPI]
    served = router_operations(app)
    described = document_operations(doc)
    catch_all = {path for method, path in served if method == "*"}
    served = {(m, p) for m, p in served if m != "*"}
    undocumented = sorted(served - described)
    unserved = sorted((m, p) for m, p in described - served
                      if not (m == "head" and ("get", p) in served) and p not in catch_all)
    assert not undocumented, f"routes missing from the OpenAPI document: {undocumented}"
    assert not unserved, f"documented operations with no route: {unserved}"
    for path in catch_all:
        assert path in doc["paths"], f"catch-all route {path} is not described"
    assert ("post", "/api/users") in served  # the comparison did see the router


def test_document_is_valid_openapi_3_1(openapi_doc: dict[str, Any]) -> None:
    assert openapi_doc["openapi"].startswith("3.1")
    validate(openapi_doc)  # raises on any schema violation


def test_validator_catches_a_broken_document(openapi_doc: dict[str, Any]) -> None:
    broken = {**openapi_doc, "paths": {"/api/x/{id}": {"get": {"responses": "nope"}}}}
    try:
        validate(broken)
    except OpenAPIValidationError:
        return
    raise AssertionError("an invalid document passed validation")


def test_every_operation_is_complete(openapi_doc: dict[str, Any]) -> None:
    schemes = set(openapi_doc["components"]["securitySchemes"])
    schemas = openapi_doc["components"]["schemas"]
    for path, item in openapi_doc["paths"].items():
        templated = set(re.findall(r"\{([^}]+)\}", path))
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            where = f"{method.upper()} {path}"
            assert operation.get("summary"), where
            assert "security" in operation, where
            for requirement in operation["security"]:
                assert set(requirement) <= schemes, where
            params = operation.get("parameters", []) + item.get("parameters", [])
            in_path = {p["name"] for p in params if p["in"] == "path"}
            assert in_path == templated, where
            default = operation["responses"]["default"]["content"]
            assert "application/problem+json" in default, where
    for ref in re.findall(r'"#/components/schemas/([^"]+)"', str(openapi_doc).replace("'", '"')):
        assert ref in schemas, ref


async def test_document_is_served(client: TestClient, openapi: dict[str, Any]) -> None:
    assert openapi == client.app[keys.OPENAPI]
    resp = await client.get("/api/openapi.json")
    assert resp.content_type == "application/json"


async def test_response_check_fails_on_a_mismatch(
    client: TestClient, openapi: dict[str, Any]
) -> None:
    """The helper every test uses must be able to fail."""
    resp = await client.post("/api/users", json={"username": "alice",
                                                  "password": "long enough"})
    assert resp.status == 201
    await check_openapi(openapi, resp)
    user = openapi["components"]["schemas"]["User"]
    stricter = {**openapi, "components": {**openapi["components"], "schemas": {
        **openapi["components"]["schemas"],
        "User": {**user, "required": [*user["required"], "no_such_field"]}}}}
    with pytest.raises(ValidationError):
        await check_openapi(stricter, resp)
    resp = await client.get("/api/users/me")
    assert resp.status == 401
    with pytest.raises(AssertionError):
        await check_openapi({**openapi, "paths": {}}, resp)
