"""The settings table: precedence, types, the secret key; the database's set-up."""

from __future__ import annotations

import sqlite3
from dataclasses import fields
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from server import keys
from server.config import Config, argument_parser, build_config, load_secret_key, settings_table
from server.db import MIGRATIONS_DIR, Database


def test_every_setting_has_a_default_and_help() -> None:
    table = settings_table()
    assert [name for name, _, _ in table] == [f.name for f in fields(Config)]
    for name, default, help_text in table:
        assert default is not None and help_text.strip(), name
    defaults = build_config({}, environ={})
    assert (defaults.host, defaults.port, defaults.data_dir) == ("127.0.0.1", 8080, Path("data"))


def test_precedence_default_toml_env_flag(tmp_path: Path) -> None:
    toml = tmp_path / "settings.toml"
    toml.write_text('port = 7000\nhost = "0.0.0.0"\nworkers = 3\naccess_log = false\n')
    env = {"REELHOUSE_CONFIG_FILE": str(toml), "REELHOUSE_PORT": "7100",
           "REELHOUSE_WORKERS": "4"}
    config = build_config({"workers": "5"}, environ=env)
    assert config.host == "0.0.0.0"  # TOML over the default
    assert config.port == 7100  # environment over TOML
    assert config.workers == 5  # flag over environment
    assert config.access_log is False
    assert config.log_level == "INFO"  # untouched default

    args = argument_parser().parse_args(["--port", "7200", "--data-dir", str(tmp_path)])
    config = build_config(vars(args), environ=env)
    assert (config.port, config.data_dir, config.workers) == (7200, tmp_path, 4)


@pytest.mark.parametrize(("raw", "expected"), [
    ("1", True), ("true", True), ("YES", True), ("on", True),
    ("0", False), ("false", False), ("No", False), ("off", False),
])
def test_booleans(raw: str, expected: bool) -> None:
    assert build_config({}, environ={"REELHOUSE_ACCESS_LOG": raw}).access_log is expected


@pytest.mark.parametrize(("overrides", "environ"), [
    ({"port": "http"}, {}),
    ({}, {"REELHOUSE_ACCESS_LOG": "perhaps"}),
    ({}, {"REELHOUSE_SEGMENT_SECONDS": "six"}),
])
def test_bad_values_are_refused(overrides: dict[str, str], environ: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="setting"):
        build_config(overrides, environ=environ)


def test_unknown_toml_key_is_refused(tmp_path: Path) -> None:
    toml = tmp_path / "settings.toml"
    toml.write_text("prot = 8000\n")
    with pytest.raises(ValueError, match="prot"):
        build_config({"config_file": str(toml)}, environ={})


def test_secret_key_is_made_once_and_kept(tmp_path: Path) -> None:
    first = load_secret_key(tmp_path)
    assert len(first) >= 32
    path = tmp_path / "secret.key"
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_secret_key(tmp_path) == first
    other = tmp_path / "other"
    assert load_secret_key(other) != first
    path.write_text("")  # emptied by accident: a fresh key, never an empty one
    replaced = load_secret_key(tmp_path)
    assert len(replaced) >= 32 and replaced != first


async def test_database_pragmas_and_migrations(client: TestClient) -> None:
    config = client.app[keys.CONFIG]
    db = client.app[keys.DB]
    assert await db.fetch_value("PRAGMA journal_mode") == "wal"
    assert await db.fetch_value("PRAGMA foreign_keys") == 1
    assert await db.fetch_value("PRAGMA busy_timeout") == 10000
    applied = [r["name"] for r in await db.fetch_all(
        "SELECT name FROM schema_migrations ORDER BY name")]
    on_disk = sorted(p.name for p in MIGRATIONS_DIR.glob("[0-9][0-9][0-9][0-9]_*.sql"))
    assert applied == on_disk and applied[0] == "0001_core.sql"
    # Applied once each: a second run finds nothing to do and the record is unchanged.
    assert await db.migrate() == []
    conn = sqlite3.connect(config.db_path)
    try:
        count = conn.execute("SELECT COUNT(*) FROM schema_migrations").fetchone()[0]
    finally:
        conn.close()
    assert count == len(on_disk)


async def test_migrations_run_once_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    db = await Database.open(path)
    try:
        first = await db.migrate()
        assert first
    finally:
        await db.close()
    db = await Database.open(path)
    try:
        assert await db.migrate() == []
    finally:
        await db.close()


async def test_a_failed_transaction_leaves_nothing(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "db.sqlite3")
    try:
        await db.migrate()
        with pytest.raises(sqlite3.IntegrityError):
            async with db.transaction() as conn:
                await conn.execute("INSERT INTO settings(key, value) VALUES ('a', '1')")
                await conn.execute("INSERT INTO settings(key, value) VALUES ('a', '2')")
        assert await db.fetch_value("SELECT COUNT(*) FROM settings") == 0
        # The writer is usable afterwards.
        await db.write("INSERT INTO settings(key, value) VALUES ('b', '1')")
        assert await db.fetch_value("SELECT value FROM settings WHERE key = 'b'") == "1"
    finally:
        await db.close()
