"""Shared test helpers: sign-up/sign-in shortcuts and OpenAPI response validation."""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

PASSWORD = "correct horse battery"


class User:
    def __init__(self, username: str, tokens: dict[str, Any], profile: dict[str, Any]) -> None:
        self.username = username
        self.tokens = tokens
        self.profile = profile

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens['access_token']}"}

    @property
    def id(self) -> int:
        return int(self.profile["id"])

    @property
    def channel_id(self) -> str:
        return str(self.profile["channels"][0]["id"])


async def sign_up(client: TestClient, username: str, password: str = PASSWORD) -> User:
    resp = await client.post("/api/users", json={"username": username, "password": password})
    assert resp.status == 201, await resp.text()
    profile = await resp.json()
    resp = await client.post("/api/auth/login", json={"username": username, "password": password})
    assert resp.status == 200, await resp.text()
    tokens = await resp.json()
    # Tests authenticate by header; drop the cookies the login set on the shared jar.
    client.session.cookie_jar.clear()
    return User(username, tokens, profile)


def _registry(doc: dict[str, Any]) -> Registry:
    return Registry().with_resource("urn:openapi", Resource.from_contents(
        {**doc, "$schema": "https://json-schema.org/draft/2020-12/schema"}))


def _match_template(doc: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    for template, operations in doc["paths"].items():
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if re.match(pattern, path) and method.lower() in operations:
            return operations[method.lower()]  # type: ignore[no-any-return]
    raise AssertionError(f"{method} {path} is not in the OpenAPI document")


async def check_openapi(doc: dict[str, Any], resp: ClientResponse) -> Any:
    """Validates a real response against the document's schema for that status."""
    operation = _match_template(doc, resp.method, resp.url.path)
    responses = operation["responses"]
    entry = responses.get(str(resp.status)) or responses.get("default")
    assert entry is not None, f"status {resp.status} not documented for {resp.url.path}"
    if resp.status >= 400:
        assert resp.content_type == "application/problem+json", resp.content_type
    content = entry.get("content")
    if not content:
        return None
    text = await resp.text()
    media_type = resp.content_type
    assert media_type in content, f"{media_type} not documented for {resp.url.path}"
    if "json" not in media_type:
        return text
    body = json.loads(text)
    schema = content[media_type]["schema"]
    fixed = json.loads(json.dumps(schema).replace("#/components", "urn:openapi#/components"))
    Draft202012Validator(fixed, registry=_registry(doc)).validate(body)
    return body
