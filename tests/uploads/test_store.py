"""The blocking disk functions of the upload store."""

from __future__ import annotations

import os
from pathlib import Path

from server.uploads import store


def test_writeback_starts_while_bytes_arrive(tmp_path: Path) -> None:
    """sync_file_range(2) is reached through ctypes and accepted for an upload's file; a
    descriptor it cannot take (a pipe) reports False instead of raising."""
    path = tmp_path / "upload"
    writer = store.ChunkWriter(path)
    writer.write([os.urandom(store.WRITEBACK_BYTES)])
    writer.close()
    fd = os.open(path, os.O_WRONLY)
    try:
        assert store.start_writeback(fd) is True
    finally:
        os.close(fd)
    read_end, write_end = os.pipe()
    try:
        assert store.start_writeback(write_end) is False
    finally:
        os.close(read_end)
        os.close(write_end)
