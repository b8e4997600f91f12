"""run.py as a real process: start, serve, SIGTERM, restart on the same data, settings, TLS."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from server.config import settings_table
from tests.helpers import PASSWORD

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELHOUSE_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


class Server:
    def __init__(self, proc: subprocess.Popen[bytes], base: str, log: Path) -> None:
        self.proc = proc
        self.base = base
        self.log = log

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


async def wait_ready(server: Server, ssl_context: ssl.SSLContext | None) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if server.proc.poll() is not None:
                raise AssertionError(f"run.py exited early:\n{server.log_text()}")
            try:
                async with http.get(server.base + "/healthz", ssl=ssl_context) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"run.py did not answer in {START_TIMEOUT} s:\n{server.log_text()}")


def stop(server: Server, sig: int = signal.SIGTERM) -> int:
    if server.proc.poll() is None:
        server.proc.send_signal(sig)
    try:
        return server.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait()
        raise AssertionError(f"run.py ignored the signal:\n{server.log_text()}") from None


@asynccontextmanager
async def running(
    tmp_path: Path, args: list[str], env: dict[str, str] | None = None, *,
    port: int | None = None, scheme: str = "http", ssl_context: ssl.SSLContext | None = None,
) -> AsyncIterator[Server]:
    port = port or free_port()
    log = tmp_path / f"server-{port}-{time.monotonic_ns()}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "run.py", "--port", str(port), "--workers", "1", *args],
            cwd=ROOT, env=env or clean_env(), stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    server = Server(proc, f"{scheme}://127.0.0.1:{port}", log)
    try:
        await wait_ready(server, ssl_context)
        yield server
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def call(http: aiohttp.ClientSession, method: str, url: str,
               **kwargs: Any) -> tuple[int, Any]:
    async with http.request(method, url, **kwargs) as resp:
        body = await resp.json() if resp.content_type.endswith("json") else await resp.text()
        return resp.status, body


@pytest.mark.timeout(180)
async def test_start_stop_restart_keeps_accounts_and_keys(tmp_path: Path) -> None:
    data = tmp_path / "data"
    args = ["--host", "127.0.0.1", "--data-dir", str(data)]
    async with running(tmp_path, args) as server, aiohttp.ClientSession() as http:
        status, user = await call(http, "POST", server.base + "/api/users",
                                  json={"username": "alice", "password": PASSWORD})
        assert status == 201, user
        status, tokens = await call(http, "POST", server.base + "/api/auth/login",
                                    json={"username": "alice", "password": PASSWORD})
        assert status == 200, tokens
        auth = {"Authorization": f"Bearer {tokens['access_token']}"}
        status, me = await call(http, "GET", server.base + "/api/users/me", headers=auth)
        assert (status, me["username"]) == (200, "alice")
        assert await asyncio.to_thread(stop, server) == 0
        first_log = server.log_text()
    assert "Traceback" not in first_log
    # The access log has a line per request.
    assert '"POST /api/users HTTP/1.1" 201' in first_log
    assert '"GET /api/users/me HTTP/1.1" 200' in first_log
    secret = data / "secret.key"
    key = secret.read_text()
    assert len(key) >= 32 and secret.stat().st_mode & 0o777 == 0o600
    assert (data / "reelhouse.sqlite3").exists()

    async with running(tmp_path, args) as server, aiohttp.ClientSession() as http:
        # Same key, so the access token signed before the restart is still good.
        status, me = await call(http, "GET", server.base + "/api/users/me", headers=auth)
        assert (status, me["username"]) == (200, "alice")
        status, again = await call(http, "POST", server.base + "/api/auth/refresh",
                                   json={"refresh_token": tokens["refresh_token"]})
        assert status == 200, again
        status, _ = await call(http, "POST", server.base + "/api/auth/login",
                               json={"username": "alice", "password": PASSWORD})
        assert status == 200
        status, _ = await call(http, "POST", server.base + "/api/users",
                                  json={"username": "alice", "password": PASSWORD})
        assert status == 409
        # SIGINT is as graceful as SIGTERM.
        assert await asyncio.to_thread(stop, server, signal.SIGINT) == 0
    assert secret.read_text() == key
    assert "Traceback" not in server.log_text()


def test_help_lists_every_setting() -> None:
    out = subprocess.run([sys.executable, "run.py", "--help"], cwd=ROOT, env=clean_env(),
                         capture_output=True, text=True, timeout=60, check=True).stdout
    flat = " ".join(out.split())
    for name, default, help_text in settings_table():
        assert "--" + name.replace("_", "-") in out, name
        assert " ".join(help_text.split()) in flat, name
        assert f"(default: {default})" in flat, name
    assert "REELHOUSE_" in flat


@pytest.mark.parametrize(("args", "message"), [
    (["--port", "eighty"], "port"),
    (["--access-log", "maybe"], "access_log"),
    (["--tls-cert", "cert.pem"], "--tls-key"),
    (["--tls-cert", "missing.pem", "--tls-key", "missing.key"], "TLS"),
    (["--config-file", "does-not-exist.toml"], "does-not-exist.toml"),
])
def test_bad_settings_exit_with_a_message(tmp_path: Path, args: list[str],
                                          message: str) -> None:
    proc = subprocess.run(
        [sys.executable, "run.py", "--data-dir", str(tmp_path), "--port", str(free_port()),
         *args], cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.timeout(120)
async def test_environment_and_toml_settings(tmp_path: Path) -> None:
    port = free_port()
    toml = tmp_path / "reelhouse.toml"
    toml.write_text(f'data_dir = "{tmp_path / "from-toml"}"\n'
                    'password_min_length = 12\nport = 1\naccess_log = false\n')
    env = clean_env(REELHOUSE_CONFIG_FILE=str(toml), REELHOUSE_PORT=str(port),
                    REELHOUSE_HOST="127.0.0.1")
    # No --port flag here: the environment beats the TOML file's port.
    proc_log = tmp_path / "env.log"
    with proc_log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "run.py"], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = Server(proc, f"http://127.0.0.1:{port}", proc_log)
    try:
        await wait_ready(server, None)
        async with aiohttp.ClientSession() as http:
            status, _ = await call(http, "POST", server.base + "/api/users",
                                   json={"username": "alice", "password": "elevenchars"})
            assert status == 400
            status, _ = await call(http, "POST", server.base + "/api/users",
                                   json={"username": "alice", "password": "twelve chars"})
            assert status == 201
        assert await asyncio.to_thread(stop, server) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (tmp_path / "from-toml" / "reelhouse.sqlite3").exists()
    assert '"POST /api/users' not in server.log_text()  # access_log = false from TOML


@contextmanager
def self_signed_cert(directory: Path) -> Iterator[tuple[Path, Path]]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    try:
        _cert_with_cryptography(cert, key)
    except ImportError:
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
             "-keyout", str(key), "-out", str(cert)],
            check=True, capture_output=True, timeout=60,
        )
    yield cert, key


def _cert_with_cryptography(cert_path: Path, key_path: Path) -> None:
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))


@pytest.mark.timeout(120)
async def test_tls(tmp_path: Path) -> None:
    with self_signed_cert(tmp_path) as (cert, key):
        trust = ssl.create_default_context(cafile=str(cert))
        args = ["--host", "127.0.0.1", "--data-dir", str(tmp_path / "data"),
                "--tls-cert", str(cert), "--tls-key", str(key)]
        async with running(tmp_path, args, scheme="https", ssl_context=trust) as server:
            async with aiohttp.ClientSession() as http:
                async with http.post(server.base + "/api/users", ssl=trust, json={
                        "username": "alice", "password": PASSWORD}) as resp:
                    assert resp.status == 201
                    assert resp.url.scheme == "https"
                    assert "max-age=" in resp.headers["Strict-Transport-Security"]
                async with http.post(server.base + "/api/auth/login", ssl=trust, json={
                        "username": "alice", "password": PASSWORD}) as resp:
                    assert resp.status == 200
                    # Over HTTPS the session cookies are Secure.
                    assert all(c["secure"] for c in resp.cookies.values())
                plain = server.base.replace("https://", "http://")
                with pytest.raises(aiohttp.ClientError):
                    async with http.get(plain + "/healthz") as resp:
                        await resp.read()
            assert await asyncio.to_thread(stop, server) == 0


def test_access_log_redacts_secrets_in_query_strings() -> None:
    from server.accesslog import redact

    assert redact("/api/ws?token=abc.def&last_id=3") == "/api/ws?token=REDACTED&last_id=3"
    assert redact("/api/videos/x/hls/master.m3u8?sig=xyz") == (
        "/api/videos/x/hls/master.m3u8?sig=REDACTED")
    assert redact("/api/videos?sort=newest") == "/api/videos?sort=newest"
