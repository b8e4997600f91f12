"""Rate limits that fit real viewers and proxies, on the default settings: media has a
generous budget of its own, a reverse proxy on the same host is trusted by default, and
signed-in users spend their account's budget rather than their address's."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp.pytest_plugin import AiohttpClient
from aiohttp.test_utils import TestClient

from server.app import create_app
from server.config import Config, build_config
from server.edge.limits import forwarded_address
from tests.helpers import PASSWORD, sign_up
from tests.playback.conftest import Tree, add_video

DEFAULTS = Config()
LOOPBACK = frozenset({"127.0.0.1", "::1"})


async def default_client(aiohttp_client: AiohttpClient, tmp_path: Path) -> TestClient:
    """Every setting as shipped, but for the data directory and the free-disk floor."""
    config = build_config({"data_dir": tmp_path / "data", "min_free_disk_bytes": 0,
                           "access_log": False, "workers": 1}, environ={})
    assert config.rate_limit_per_minute == DEFAULTS.rate_limit_per_minute
    return await aiohttp_client(create_app(config))


async def test_one_viewer_fetching_segments_is_never_throttled(
    aiohttp_client: AiohttpClient, tmp_path: Path, hls_tree: Tree
) -> None:
    """1,200 segment GETs from one address within a minute (ten people watching through
    one NAT address, each fetching a segment every few seconds, and then some): no 429."""
    client = await default_client(aiohttp_client, tmp_path)
    owner = await sign_up(client, "owner")
    vid = await add_video(client, owner, hls_tree, privacy="public")
    path = f"/api/videos/{vid}/hls/360p/seg_00000.m4s"

    async def fetch() -> int:
        async with client.get(path) as resp:
            await resp.read()
            return resp.status

    statuses: list[int] = []
    for _ in range(12):
        statuses += await asyncio.gather(*(fetch() for _ in range(100)))
    assert statuses.count(429) == 0 and set(statuses) == {200}
    # The API's own budget is untouched by all that media.
    resp = await client.get("/api/openapi.json")
    assert resp.status == 200
    assert int(resp.headers["RateLimit-Remaining"]) == DEFAULTS.rate_limit_per_minute - 1


async def test_failed_logins_behind_a_proxy_throttle_only_their_client(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    """nginx or Caddy on the same host: every request comes from 127.0.0.1, and the
    client's address arrives in X-Forwarded-For (addresses from TEST-NET, RFC 5737)."""
    client = await default_client(aiohttp_client, tmp_path)
    await sign_up(client, "alice")
    attacker, neighbour = {"X-Forwarded-For": "192.0.2.7"}, {"X-Forwarded-For": "192.0.2.8"}
    statuses = []
    for _ in range(DEFAULTS.auth_rate_limit_per_minute + 2):
        resp = await client.post("/api/auth/login", headers=attacker,
                                 json={"username": "alice", "password": "wrong password"})
        statuses.append(resp.status)
    assert statuses[-1] == 429 and 401 in statuses
    resp = await client.post("/api/auth/login", headers=neighbour,
                             json={"username": "alice", "password": PASSWORD})
    assert resp.status == 200
    forwarded = {"Forwarded": 'for="192.0.2.9";proto=https'}  # RFC 7239 works as well
    resp = await client.post("/api/auth/login", headers=forwarded,
                             json={"username": "alice", "password": PASSWORD})
    assert resp.status == 200


async def test_signed_in_users_spend_their_own_budget(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    config = build_config({"data_dir": tmp_path / "data", "rate_limit_per_minute": 3,
                           "rate_limit_user_per_minute": 5, "access_log": False},
                          environ={})
    client = await aiohttp_client(create_app(config))
    alice = await sign_up(client, "alice")  # sign-up and sign-in: the auth budget
    anonymous = [(await client.get("/api/openapi.json")).status for _ in range(4)]
    assert anonymous == [200, 200, 200, 429]  # this address has spent its budget
    mine = [(await client.get("/api/users/me", headers=alice.headers)).status
            for _ in range(6)]
    assert mine[:5] == [200] * 5 and mine[5] == 429  # ... the account has its own


def test_forwarded_address_believes_only_trusted_proxies() -> None:
    headers = {"X-Forwarded-For": "198.51.100.1, 192.0.2.1"}
    assert forwarded_address("127.0.0.1", headers, LOOPBACK) == "192.0.2.1"
    assert forwarded_address("203.0.113.5", headers, LOOPBACK) == "203.0.113.5"
    for value, want in [('for="[2001:db8:cafe::17]:4711"', "2001:db8:cafe::17"),
                        ("for=192.0.2.60;proto=http;by=203.0.113.43", "192.0.2.60"),
                        ("for=192.0.2.43, for=198.51.100.17", "198.51.100.17"),
                        ("for=192.0.2.43:8080", "192.0.2.43"), ("proto=https", "::1")]:
        assert forwarded_address("::1", {"Forwarded": value}, LOOPBACK) == want, value
