"""Every setting, declared once: name, type, default and help text.

Precedence (lowest first): embedded default < TOML file < environment variable
(`REELHOUSE_<NAME>`) < command-line flag.
"""

from __future__ import annotations

import argparse
import os
import secrets
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

ENV_PREFIX = "REELHOUSE_"


def _setting(default: Any, help_text: str) -> Any:
    return field(default=default, metadata={"help": help_text})


@dataclass(frozen=True)
class Config:
    host: str = _setting("127.0.0.1", "address to listen on")
    port: int = _setting(8080, "TCP port to listen on")
    data_dir: Path = _setting(Path("data"), "directory holding the SQLite file and media")  # noqa: RUF009
    tls_cert: str = _setting("", "PEM certificate file; with --tls-key, serve HTTPS")
    tls_key: str = _setting("", "PEM private key file for --tls-cert")
    public_url: str = _setting("", "external base URL, e.g. https://video.example.org")
    trusted_proxies: str = _setting(
        "127.0.0.1,::1", "comma-separated proxy addresses whose X-Forwarded-* and Forwarded"
        " headers are believed (loopback: a proxy on the same host; empty: none)"
    )
    header_timeout: float = _setting(
        60.0, "seconds a request head may take to arrive, from the connection's start or the "
        "head's first byte (nginx's client_header_timeout); a late one closes the connection"
        " (0: no limit)")
    max_connections_per_address: int = _setting(
        256, "open connections per client address, the next one closed at once; a trusted "
        "proxy is exempt, so limit its clients at the proxy (0: no limit)")
    cors_origins: str = _setting(
        "*", "origins allowed to call the upload API from a browser, comma-separated "
        "('*': any origin, Bearer tokens only; listed origins may also send cookies)"
    )
    media_cors_origins: str = _setting(
        "*", "origins whose players may fetch media (playlists, segments, files), "
        "comma-separated ('*': any origin)")
    media_rate_limit_per_minute: int = _setting(
        6000, "media requests (playlists, segments, files) per minute per client address")
    shared_cache_seconds: int = _setting(
        300, "how long a shared cache (a proxy, a CDN) may keep a public segment before it "
        "revalidates (s-maxage): a video made private leaves such caches within this")
    playlist_max_age_seconds: int = _setting(
        60, "how long a client or shared cache may keep a finished video's playlists")
    metrics_token: str = _setting(
        "", "bearer token a Prometheus scraper sends for /metrics (administrators may always"
        " read it; with no token set, nobody else)")
    access_log: bool = _setting(True, "write an access log line per request")
    event_loop: str = _setting(
        "asyncio", "event loop: asyncio (has loop.sendfile, so media is sent by the kernel)"
        " or uvloop (faster small requests; media bytes are read in a thread)")
    log_level: str = _setting("INFO", "logging level")
    max_body_bytes: int = _setting(1 << 20, "largest JSON request body accepted")
    access_token_seconds: int = _setting(900, "lifetime of an access token")
    refresh_token_days: int = _setting(30, "lifetime of a session's refresh token")
    signed_url_seconds: int = _setting(6 * 3600, "lifetime of signed media URLs")
    open_registration: bool = _setting(True, "anyone may register (admins can change it)")
    rate_limit_per_minute: int = _setting(600, "requests per minute per client address")
    rate_limit_user_per_minute: int = _setting(1200, "requests per minute per signed-in user")
    auth_rate_limit_per_minute: int = _setting(
        10, "login and registration attempts per minute per client address"
    )
    upload_rate_limit_per_minute: int = _setting(
        240, "upload creations and chunks per minute per user"
    )
    password_min_length: int = _setting(8, "shortest password accepted")
    max_upload_bytes: int = _setting(8 << 30, "largest upload accepted (Tus-Max-Size)")
    user_quota_bytes: int = _setting(
        10 << 30, "total bytes of uploads per user, unfinished uploads counted at their "
        "declared length; administrators have none (0: no limit)")
    user_daily_quota_bytes: int = _setting(
        0, "bytes a user may upload per day; administrators have none (0: no limit)")
    unfinished_uploads_per_user: int = _setting(
        20, "uploads a user may have unfinished at once (tus and multipart); the next gets "
        "429 (0: no limit)")
    upload_expiry_seconds: int = _setting(24 * 3600, "abandoned uploads expire after this")
    upload_sweep_seconds: int = _setting(600, "how often expired uploads are swept")
    min_free_disk_bytes: int = _setting(512 << 20, "free disk space always kept")
    scan_command: str = _setting("", "command run on each finished upload, {path} replaced")
    workers: int = _setting(
        0, "transcoding job slots, one worker process each (0: cores minus one, at least 2,"
        " so another user's short upload need not wait for a long job)")
    jobs_running_per_user: int = _setting(
        1, "jobs of one user processed at once (the other slots go to other users)")
    jobs_queued_per_user: int = _setting(
        20, "jobs of one user queued at once; later uploads still succeed and their jobs"
        " wait their turn behind them")
    worker_nice: int = _setting(19, "CPU niceness added to worker processes (and their threads)")
    worker_scheduling: str = _setting(
        "idle", "CPU policy of workers: idle (only time nothing else wants) or batch")
    job_max_attempts: int = _setting(3, "attempts before a failing job is given up")
    x264_preset: str = _setting("veryfast", "libx264 preset for encoded renditions")
    ladder: str = _setting(
        "2160,1440,1080,720,480,360,240", "rungs by their short side, highest first"
    )
    replaced_ladder_seconds: int = _setting(
        6 * 3600, "how long a video processed again keeps its previous ladder for the players"
        " that began with it (a player keeps the playlists it loaded for the whole film)")
    max_duration_seconds: int = _setting(4 * 3600, "longest video accepted")
    max_resolution: int = _setting(4320, "largest short side accepted")
    segment_seconds: float = _setting(6.0, "target HLS segment duration")
    ws_queue_size: int = _setting(256, "events buffered per live subscriber before it is dropped")
    ws_connections_per_user: int = _setting(
        16, "live connections (WebSocket and SSE together) per user; the next WebSocket is "
        "closed with 1008, the next SSE request gets 429 (0: no limit)")
    ws_heartbeat_seconds: float = _setting(30.0, "WebSocket ping interval")
    test_hooks: bool = _setting(
        False, "enable /api/admin/test-hooks/* (benchmarks only; never on a real server)"
    )
    config_file: str = _setting("", "TOML file with settings (keys as in this table)")

    @property
    def db_path(self) -> Path:
        return self.data_dir / "reelhouse.sqlite3"

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def media_dir(self) -> Path:
        return self.data_dir / "media"

    @property
    def worker_count(self) -> int:
        if self.workers > 0:
            return self.workers
        # Workers run at idle priority (worker_scheduling), so two slots on two cores
        # cost the API nothing it would feel.
        return max(2, (os.cpu_count() or 2) - 1)

    @property
    def trusted_proxy_set(self) -> frozenset[str]:
        return frozenset(p.strip() for p in self.trusted_proxies.split(",") if p.strip())


def settings_table() -> list[tuple[str, Any, str]]:
    return [(f.name, f.default, str(f.metadata["help"])) for f in fields(Config)]


def _coerce(name: str, kind: type, raw: Any) -> Any:
    if kind is bool and isinstance(raw, str):
        lowered = raw.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise ValueError(f"setting {name}: {raw!r} is not a boolean")
    try:
        return kind(raw)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"setting {name}: {raw!r} is not a valid {kind.__name__}") from exc


def _kinds() -> dict[str, type]:
    return {f.name: type(f.default) for f in fields(Config)}


def build_config(
    overrides: dict[str, Any] | None = None, environ: dict[str, str] | None = None
) -> Config:
    kinds = _kinds()
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    explicit = dict(overrides or {})
    config_file = explicit.get("config_file") or env.get(ENV_PREFIX + "CONFIG_FILE", "")
    if config_file:
        with open(config_file, "rb") as fh:
            for key, raw in tomllib.load(fh).items():
                if key not in kinds:
                    raise ValueError(f"unknown setting {key!r} in {config_file}")
                values[key] = raw
    for name in kinds:
        raw_env = env.get(ENV_PREFIX + name.upper())
        if raw_env is not None:
            values[name] = raw_env
    values.update({k: v for k, v in explicit.items() if v is not None})
    coerced = {name: _coerce(name, kinds[name], raw) for name, raw in values.items()}
    config = Config(**coerced)
    if config.worker_scheduling not in {"idle", "batch"}:
        raise ValueError("setting worker_scheduling: must be 'idle' or 'batch'")
    if config.event_loop not in {"asyncio", "uvloop"}:
        raise ValueError("setting event_loop: must be 'asyncio' or 'uvloop'")
    return config


def argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="run.py",
        description="Reelhouse video server. Every flag may also be set as an environment "
        f"variable {ENV_PREFIX}<NAME> or in a TOML file given with --config-file.",
    )
    for name, default, help_text in settings_table():
        flag = "--" + name.replace("_", "-")
        if isinstance(default, bool):
            parser.add_argument(flag, dest=name, default=None, type=str, metavar="BOOL",
                                help=f"{help_text} (default: {default})")
        else:
            parser.add_argument(flag, dest=name, default=None, type=str,
                                help=f"{help_text} (default: {default})")
    return parser


def load_secret_key(data_dir: Path) -> str:
    """The signing key is made on first start and kept beside the database."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "secret.key"
    try:
        existing = path.read_text().strip()
    except FileNotFoundError:
        existing = ""
    if existing:
        return existing
    # Missing, or emptied by a careless edit: never sign with an empty key.
    key = secrets.token_urlsafe(48)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    os.replace(tmp, path)
    return key
