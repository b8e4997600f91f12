"""schemathesis against /api/openapi.json of the real app on a real port, bounded.

Every operation gets a fixed number of generated requests, valid (positive) and invalid
(negative) by the document, then the stateful phase follows the document's OpenAPI links
from what creates a channel, a video, a comment, an upload or a token to what uses it.
Every answer goes through schemathesis' checks: no 5xx, statuses, content types, headers
and bodies as documented (4xx as problem+json), valid input accepted, invalid refused.
The totals land in test-output/schemathesis.json and on stdout.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hypothesis
import hypothesis.configuration
import hypothesis.errors
import pytest
import requests
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, given
from hypothesis import strategies as st
from schemathesis import GenerationMode

from server.app import create_app
from tests.conftest import make_config
from tests.media.clips import Clip, make_clip

ROOT = Path(__file__).resolve().parents[2]
TOTALS = ROOT / "test-output" / "schemathesis.json"
PASSWORD = "correct horse battery"
# Fixed for the suite; other values for a longer look by hand.
SEED = int(os.environ.get("REELHOUSE_FUZZ_SEED", "20261203"))
EXAMPLES = int(os.environ.get("REELHOUSE_FUZZ_EXAMPLES", "10"))  # per operation and mode
# Stateful phase: its derandomized paths follow from the document, so a change to it moves
# them; rounds end as soon as every linked resource was reached (usually in fewer).
SCENARIOS, STEPS, ROUNDS = 60, 10, 8
# What the links of the document lead to, from the operations that create each of them.
LINKED = {"/api/channels/{channel_id}", "/api/videos/{video_id}",
          "/api/videos/{video_id}/comments/{comment_id}", "/api/uploads/{upload_id}",
          "/api/users/me/tokens/{token_id}"}
# Not request/response operations: a WebSocket upgrade and an endless event stream.
SKIPPED = {("GET", "/api/ws"), ("GET", "/api/events")}
# tus core protocol: a request without (or with another) Tus-Resumable gets 412.
TUS_412 = ["400", "401", "403", "404", "405", "406", "409", "412", "415", "422", "428",
           "429"]
# Valid by the document yet refused, because what makes them valid is no matter of schema:
# an opaque cursor this server made, the account's real password, a channel of the
# uploader's, tus offsets, lengths and checksums that agree with the bytes received.
CONTEXTUAL = [
    *(f"GET {path}" for path in ("/api/feed", "/api/notifications", "/api/subscriptions",
                                 "/api/videos", "/api/channels/{channel_id}/videos",
                                 "/api/videos/{video_id}/comments")),
    "POST /api/users/me/password", "POST /api/videos/upload",
    *(f"{method} /api/uploads" for method in ("POST", "GET")),
    *(f"{method} /api/uploads/{{upload_id}}" for method in ("HEAD", "GET", "PATCH", "DELETE",
                                                            "POST")),
]
CONFIG = {
    "seed": SEED,
    "operations": [{"include-name": CONTEXTUAL,
                    "checks": {"positive_data_acceptance": {"enabled": False}}}],
    # NUL is refused in every JSON string (400), as the document's description says: no
    # JSON Schema of its own says it for each string.
    "generation": {"database": "none", "max-examples": EXAMPLES,
                   "allow-x00": False},
    # The stateful phase follows the document's own links only, not links it would infer.
    "phases": {"stateful": {"inference": {"algorithms": []}}},
    "checks": {
        "missing_required_header": {"expected-statuses": [
            "400", "401", "403", "406", "412", "415", "422"]},
        "negative_data_rejection": {"expected-statuses": TUS_412},
    },
}
# Stateless examples are seeded (SEED); the stateful phase, whose steps depend on what the
# server answers, is derandomized.
SETTINGS = hypothesis.settings(
    max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
    suppress_health_check=list(HealthCheck), phases=[hypothesis.Phase.generate])

# tus PATCH bodies are bytes like any other (tus core protocol, PATCH).
schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")


class LiveServer:
    """create_app served on a loopback port by aiohttp's AppRunner, in a thread of its own
    so that schemathesis' blocking client can call it."""

    def __init__(self, data_dir: Path) -> None:
        # No upload quota or cap: generated Upload-Lengths of up to 8 GiB would spend a
        # quota in a few creations, and the links from a created upload would go untried
        # (tests/uploads/test_caps.py checks those refusals against the document).
        self.app = create_app(make_config(data_dir, access_token_seconds=3600,
                                          user_quota_bytes=0, unfinished_uploads_per_user=0))
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.runner = web.AppRunner(self.app, handler_cancellation=True)
        self.port = 0

    def __enter__(self) -> LiveServer:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(60)
        return self

    def __exit__(self, *_: object) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    async def _start(self) -> None:
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        self.port = int(self.runner.addresses[0][1])

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Fuzzer:
    """The signed-in account the requests are made as, and what they met."""

    base: str
    session: requests.Session = field(default_factory=requests.Session)
    username: str = ""
    token: str = ""
    statuses: Counter[int] = field(default_factory=Counter)
    operations: set[str] = field(default_factory=set)
    failures: dict[str, str] = field(default_factory=dict)
    unbreakable: set[str] = field(default_factory=set)  # no invalid request to generate
    logins: int = 0

    def sign_up(self, username: str) -> None:
        resp = self.session.post(f"{self.base}/api/users", timeout=30,
                                 json={"username": username, "password": PASSWORD})
        assert resp.status_code == 201, resp.text
        self.username = username
        self.login()

    def login(self) -> None:
        resp = self.session.post(f"{self.base}/api/auth/login", timeout=30,
                                 json={"username": self.username, "password": PASSWORD})
        assert resp.status_code == 200, resp.text
        self.token = resp.json()["access_token"]
        self.session.cookies.clear()  # the Bearer token only, no cookie session
        self.logins += 1

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def after(self, case: schemathesis.Case, response: schemathesis.Response) -> None:
        self.statuses[response.status_code] += 1
        self.operations.add(case.operation.label)
        if response.status_code == 401:
            # A generated logout or session revocation may have ended this very session.
            check = self.session.get(f"{self.base}/api/users/me", headers=self.headers,
                                     timeout=30)
            if check.status_code == 401:
                self.login()

    def check(self, case: schemathesis.Case, response: schemathesis.Response,
              **kwargs: Any) -> None:
        try:
            case.validate_response(response, **kwargs)
        except (AssertionError, schemathesis.errors.FailureGroup) as failure:
            self.failures.setdefault(case.operation.label, f"{failure}\n{case.as_curl_command()}")

    @property
    def examples(self) -> int:
        return sum(self.statuses.values())

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with LiveServer(tmp_path_factory.mktemp("fuzz") / "data") as server:
        yield server


@pytest.fixture(scope="module")
def fuzzer(live: LiveServer) -> Iterator[Fuzzer]:
    admin = Fuzzer(live.base)
    admin.sign_up("instance-admin")  # the first account is the admin; the fuzzer is not
    fuzzer = Fuzzer(live.base)
    fuzzer.sign_up("fuzzer")
    yield fuzzer
    fuzzer.session.close()
    admin.session.close()


@pytest.fixture(scope="module")
def schema(live: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Any:
    # Hypothesis keeps a cache of constants it found in the code: in the test's own folder.
    hypothesis.configuration.set_hypothesis_home_dir(tmp_path_factory.mktemp("hypothesis"))
    # Real media for the multipart `file` (declared video/* or audio/*), so that valid
    # uploads make videos for the stateful phase to reach.
    clip = make_clip(tmp_path_factory.mktemp("clip") / "clip.mp4",
                     Clip(160, 120, fps=10, seconds=1.0))
    schemathesis.openapi.media_type("video/mp4", st.just(clip.read_bytes()))
    return schemathesis.openapi.from_url(f"{live.base}/api/openapi.json",
                                         config=schemathesis.Config.from_dict(CONFIG))


def _operations(schema: Any) -> list[Any]:
    operations = [result.ok() for result in schema.get_all_operations()]
    return [op for op in operations if (op.method.upper(), op.path) not in SKIPPED]


def _fuzz(fuzzer: Fuzzer, operation: Any, mode: GenerationMode) -> None:
    @hypothesis.seed(SEED)
    @hypothesis.settings(SETTINGS, derandomize=False)
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        response = case.call(session=fuzzer.session, headers=fuzzer.headers, timeout=30)
        fuzzer.after(case, response)
        fuzzer.check(case, response, headers=fuzzer.headers)

    try:
        run()
    except hypothesis.errors.Unsatisfiable:
        assert mode is GenerationMode.NEGATIVE, operation.label  # nothing there to break
        fuzzer.unbreakable.add(operation.label)


def _stateful(schema: Any, fuzzer: Fuzzer) -> dict[str, int]:
    steps = Counter[str]()

    class Machine(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {"session": fuzzer.session, "headers": fuzzer.headers, "timeout": 30}

        def after_call(self, response: schemathesis.Response, case: schemathesis.Case) -> None:
            super().after_call(response, case)
            steps[f"{case.operation.label} -> {response.status_code}"] += 1
            fuzzer.after(case, response)

        def validate_response(self, response: schemathesis.Response, case: schemathesis.Case,
                              additional_checks: Any = None, **kwargs: Any) -> None:
            try:
                super().validate_response(response, case, additional_checks, **kwargs)
            except (AssertionError, schemathesis.errors.FailureGroup) as failure:
                fuzzer.failures.setdefault("stateful " + case.operation.label,
                                           f"{failure}\n{case.as_curl_command()}")

    for _ in range(ROUNDS):
        try:
            Machine.run(settings=hypothesis.settings(
                SETTINGS, max_examples=SCENARIOS, stateful_step_count=STEPS))
        except hypothesis.errors.Flaky:
            # The server's state moved on under a replayed scenario (a link's target is gone,
            # a new id): the round ends there, as in schemathesis' own engine.
            pass
        if LINKED <= {label.split(" ")[1] for label in steps}:
            break  # each kind of resource was reached: no further round needed
    return dict(sorted(steps.items()))


def test_schemathesis(schema: Any, fuzzer: Fuzzer) -> None:
    started = time.monotonic()
    operations = _operations(schema)
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _fuzz(fuzzer, operation, mode)
    stateless = fuzzer.examples
    stateful_operations = _stateful(schema, fuzzer)
    totals = {
        "operations": len(operations),
        "operations_skipped": sorted(f"{m} {p}" for m, p in SKIPPED),
        "examples": fuzzer.examples,
        "examples_stateless": stateless,
        "examples_stateful": fuzzer.examples - stateless,
        "operations_reached_statefully": len({k.split(" -> ")[0]
                                              for k in stateful_operations}),
        "server_errors_5xx": fuzzer.server_errors,
        "statuses": {str(k): v for k, v in sorted(fuzzer.statuses.items())},
        "operations_without_negative_cases": len(fuzzer.unbreakable),
        "failures": len(fuzzer.failures),
        "relogins": fuzzer.logins - 1,
        "seed": SEED,
        "seconds": round(time.monotonic() - started, 1),
    }
    TOTALS.parent.mkdir(exist_ok=True)
    TOTALS.write_text(json.dumps({**totals, "stateful": stateful_operations,
                                  "failed": fuzzer.failures}, indent=2,
                                 ensure_ascii=False) + "\n")
    print("schemathesis totals:", json.dumps(totals))
    assert fuzzer.server_errors == 0, fuzzer.statuses
    assert not fuzzer.failures, "\n\n".join(f"{k}:\n{v}" for k, v in fuzzer.failures.items())
    # The links lead to every kind of resource they start from.
    paths = {label.split(" ")[1] for label in stateful_operations}
    assert LINKED <= paths, (LINKED - paths, stateful_operations)
