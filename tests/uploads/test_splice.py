"""Large PATCH bodies that move socket -> file with splice(2), against run.py on loopback."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.uploads import store
from server.uploads.receive import SPLICE_MIN_BYTES
from tests.uploads.serverproc import ServerProcess, upload_file
from tests.uploads.test_crash_and_memory import _send_headers

MIB = 1 << 20


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path / "data").start()
    yield proc
    proc.stop()


def _create(server: ServerProcess, token: str, length: int) -> str:
    status, headers, text = server.request("POST", "/api/uploads", headers={
        "Tus-Resumable": "1.0.0", "Authorization": f"Bearer {token}",
        "Upload-Length": str(length)})
    assert status == 201, text
    return str(headers["Location"])


def _offset(server: ServerProcess, token: str, location: str) -> int:
    status, headers, _ = server.request("HEAD", "/api/uploads/" + location.rsplit("/", 1)[1],
                                        headers={"Tus-Resumable": "1.0.0",
                                                 "Authorization": f"Bearer {token}"})
    assert status == 200
    return int(headers["Upload-Offset"])


def _wait_for_size(path: Path, size: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and path.stat().st_size < size:
        time.sleep(0.05)


def test_spliced_patch_closes_and_keeps_bytes_of_a_disconnect(
        server: ServerProcess, clip_bytes: bytes) -> None:
    token = server.sign_up("alice")
    head = clip_bytes[:64 * 1024]  # sniffed as media; the rest is filler
    body = (head + bytes(range(256)) * (16 * MIB // 256))[:16 * MIB]
    location = _create(server, token, 64 * MIB)
    path = "/api/uploads/" + location.rsplit("/", 1)[1]
    sock = _send_headers(server.port, path, token, 0, len(body))
    sock.sendall(body[:6 * MIB])  # well past SPLICE_MIN_BYTES, then the client vanishes
    file = upload_file(server.data_dir, location)
    _wait_for_size(file, 6 * MIB)
    sock.close()
    time.sleep(0.3)
    assert file.stat().st_size == 6 * MIB
    assert _offset(server, token, location) == 6 * MIB
    assert file.read_bytes() == body[:6 * MIB]

    # A whole spliced PATCH: 204 with the new offset, and the connection closes after it.
    sock = _send_headers(server.port, path, token, 6 * MIB, 2 * SPLICE_MIN_BYTES)
    sock.sendall(body[6 * MIB:6 * MIB + 2 * SPLICE_MIN_BYTES])
    reply = sock.recv(65536).decode()
    assert reply.startswith("HTTP/1.1 204"), reply
    assert f"Upload-Offset: {6 * MIB + 2 * SPLICE_MIN_BYTES}" in reply
    assert "Connection: close" in reply
    sock.settimeout(5)
    assert sock.recv(1) == b""  # closed by the server
    sock.close()


def test_takeover_of_a_stalled_spliced_patch(server: ServerProcess, clip_bytes: bytes) -> None:
    token = server.sign_up("alice")
    location = _create(server, token, 8 * MIB)
    path = "/api/uploads/" + location.rsplit("/", 1)[1]
    body = (clip_bytes[:64 * 1024] + b"\x00" * 8 * MIB)[:8 * MIB]
    stalled = _send_headers(server.port, path, token, 0, len(body))
    stalled.sendall(body[:3 * MIB])  # then stalls with the lock held
    file = upload_file(server.data_dir, location)
    _wait_for_size(file, 3 * MIB)
    offset = _offset(server, token, location)
    assert offset == 3 * MIB
    fresh = _send_headers(server.port, path, token, offset, len(body) - offset)
    fresh.sendall(body[offset:])
    fresh.settimeout(20)
    reply = fresh.recv(65536).decode()
    assert reply.startswith("HTTP/1.1 204"), reply
    assert f"Upload-Offset: {len(body)}" in reply
    stalled.close()
    fresh.close()


def test_writeback_starts_while_bytes_arrive(tmp_path: Path) -> None:
    """sync_file_range(2) is reached through ctypes and accepted for an upload's file; a
    descriptor it cannot take (a pipe) reports False instead of raising."""
    path = tmp_path / "upload"
    writer = store.ChunkWriter(path)
    writer.write([os.urandom(store.WRITEBACK_BYTES)])
    assert store.start_writeback(writer._fd) is True
    writer.close()
    read_end, write_end = os.pipe()
    try:
        assert store.start_writeback(write_end) is False
    finally:
        os.close(read_end)
        os.close(write_end)
