from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.pytest_plugin import AiohttpClient
from aiohttp.test_utils import TestClient

from server.app import create_app
from server.config import Config, build_config

METRICS_TOKEN = "scrape-me"
METRICS = {"Authorization": f"Bearer {METRICS_TOKEN}"}


def make_config(data_dir: Path, **overrides: Any) -> Config:
    settings: dict[str, Any] = {
        "data_dir": data_dir,
        "rate_limit_per_minute": 100_000,
        "rate_limit_user_per_minute": 100_000,
        "auth_rate_limit_per_minute": 100_000,
        "upload_rate_limit_per_minute": 100_000,
        "access_log": False,
        "workers": 1,
        "min_free_disk_bytes": 0,
        "metrics_token": METRICS_TOKEN,
    }
    settings.update(overrides)
    return build_config(settings, environ={})


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path / "data")


@pytest.fixture
async def client(aiohttp_client: AiohttpClient, config: Config) -> AsyncIterator[TestClient]:
    yield await aiohttp_client(create_app(config))


@pytest.fixture
async def openapi(client: TestClient) -> dict[str, Any]:
    resp = await client.get("/api/openapi.json")
    assert resp.status == 200
    return dict(await resp.json())
