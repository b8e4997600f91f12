"""The services domain modules are handed: settings, the database and the bus. Built once
the database and bus exist (server/app.py); domain code never sees the application."""

from __future__ import annotations

from dataclasses import dataclass

from server.bus import Bus
from server.config import Config
from server.db import Database


@dataclass(frozen=True)
class Services:
    config: Config
    db: Database
    bus: Bus
