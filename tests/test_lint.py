"""ruff and mypy --strict over the whole tree; runs after the test folders (sorted by name)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)


@pytest.mark.timeout(900)
def test_ruff_is_clean() -> None:
    result = run(str(BIN / "ruff"), "check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.timeout(900)
def test_mypy_strict_is_clean() -> None:
    # The files (server, media, run.py) come from [tool.mypy] in pyproject.toml.
    result = run(str(BIN / "mypy"), "--strict", "server", "media", "run.py")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success" in result.stdout
