"""run.py as a real subprocess on loopback, for crash, memory and throughput checks."""

from __future__ import annotations

import contextlib
import http.client
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    def __init__(self, data_dir: Path, port: int | None = None, **settings: Any) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.settings = {
            "rate_limit_per_minute": 0, "rate_limit_user_per_minute": 0,
            "auth_rate_limit_per_minute": 0, "upload_rate_limit_per_minute": 0,
            "media_rate_limit_per_minute": 0,
            "access_log": "false", "workers": 1, "min_free_disk_bytes": 0,
            "log_level": "WARNING", **settings,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerProcess:
        args = [sys.executable, str(ROOT / "run.py"), "--host", "127.0.0.1",
                "--port", str(self.port), "--data-dir", str(self.data_dir)]
        for name, value in self.settings.items():
            args += ["--" + name.replace("_", "-"), str(value)]
        self.proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"run.py exited with {self.proc.returncode}")
            with contextlib.suppress(OSError):
                status, _, _ = self.request("GET", "/healthz")
                if status == 200:
                    return self
            time.sleep(0.1)
        raise RuntimeError("run.py did not become healthy in 30 s")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill9()

    def rss_bytes(self) -> int:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def request(self, method: str, path: str, body: Any = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            payload = json.dumps(body).encode() if isinstance(body, dict) else body
            hdrs = dict(headers or {})
            if isinstance(body, dict):
                hdrs["Content-Type"] = "application/json"
            conn.request(method, path, body=payload, headers=hdrs)
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()

    def sign_up(self, username: str) -> str:
        """Registers and logs in; returns an access token."""
        status, _, text = self.request("POST", "/api/users",
                                       {"username": username, "password": PASSWORD})
        assert status == 201, text
        status, _, text = self.request("POST", "/api/auth/login",
                                       {"username": username, "password": PASSWORD})
        assert status == 200, text
        return str(json.loads(text)["access_token"])


def upload_file(data_dir: Path, location: str) -> Path:
    return data_dir / "uploads" / location.rstrip("/").rsplit("/", 1)[1]

