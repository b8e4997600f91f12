"""run.py as a subprocess: SIGKILL mid-upload then resume; a 2 GiB upload's memory use."""

from __future__ import annotations

import hashlib
import io
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tusclient import client as tus_client

from tests.uploads.serverproc import ServerProcess, upload_file


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path / "data").start()
    yield proc
    proc.stop()


def _send_headers(port: int, path: str, token: str, offset: int, length: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall((f"PATCH {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\n"
                  f"Authorization: Bearer {token}\r\nUpload-Offset: {offset}\r\n"
                  "Content-Type: application/offset+octet-stream\r\n"
                  f"Content-Length: {length}\r\n\r\n").encode())
    return sock


def test_resume_after_sigkill(server: ServerProcess, clip_bytes: bytes) -> None:
    token = server.sign_up("alice")
    tus = tus_client.TusClient(server.base + "/api/uploads",
                               headers={"Authorization": f"Bearer {token}"})
    up = tus.uploader(file_stream=io.BytesIO(clip_bytes), chunk_size=16 * 1024,
                      metadata={"filename": "crash.mp4"})
    up.set_url(up.create_url())
    for _ in range(3):
        up.upload_chunk()
    path = "/api/uploads/" + up.url.rsplit("/", 1)[1]
    # A PATCH is in flight (some bytes sent, more announced) when the server dies.
    sock = _send_headers(server.port, path, token, up.offset, len(clip_bytes) - up.offset)
    sock.sendall(clip_bytes[up.offset:up.offset + 20_000])
    time.sleep(0.5)
    server.kill9()
    sock.close()
    on_disk = upload_file(server.data_dir, up.url).stat().st_size
    assert on_disk >= 3 * 16 * 1024
    server.start()
    status, headers, _ = server.request("HEAD", path, headers={
        "Tus-Resumable": "1.0.0", "Authorization": f"Bearer {token}"})
    assert status == 200
    assert int(headers["Upload-Offset"]) == on_disk  # exactly the bytes on disk
    resumed = tus.uploader(file_stream=io.BytesIO(clip_bytes), chunk_size=16 * 1024,
                           url=up.url)
    assert resumed.offset == on_disk
    resumed.upload()
    stored = server.data_dir / "media" / headers["Video-Id"] / "original"
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == \
        hashlib.sha256(clip_bytes).hexdigest()


def test_2gib_upload_keeps_rss_flat(server: ServerProcess, clip_bytes: bytes) -> None:
    token = server.sign_up("alice")
    total = 2 << 30
    # Length one byte more than sent: the upload stays unfinished, so no pipeline runs.
    status, headers, text = server.request("POST", "/api/uploads", headers={
        "Tus-Resumable": "1.0.0", "Authorization": f"Bearer {token}",
        "Upload-Length": str(total + 1)})
    assert status == 201, text
    path = "/api/uploads/" + headers["Location"].rsplit("/", 1)[1]
    baseline = server.rss_bytes()
    peak = baseline
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, server.rss_bytes())
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    block = bytearray(8 << 20)
    block[: len(clip_bytes[:4096])] = clip_bytes[:4096]  # real MP4 head: passes sniffing
    view = memoryview(block)
    sock = _send_headers(server.port, path, token, 0, total)
    started = time.monotonic()
    try:
        for i in range(total // len(block)):
            sock.sendall(view)
            if i == 0:
                view = memoryview(bytes(len(block)))  # the rest is generated, never stored
        reply = sock.recv(4096).decode()
    finally:
        sock.close()
        stop.set()
        sampler.join()
    elapsed = time.monotonic() - started
    assert reply.startswith("HTTP/1.1 204"), reply
    assert f"Upload-Offset: {total}" in reply
    assert upload_file(server.data_dir, headers["Location"]).stat().st_size == total
    growth = peak - baseline
    print(f"2 GiB in {elapsed:.1f} s, server RSS {baseline >> 20} MiB -> peak "
          f"{peak >> 20} MiB (growth {growth / (1 << 20):.1f} MiB)")
    assert growth < 50 << 20
    status, _, _ = server.request("DELETE", path, headers={
        "Tus-Resumable": "1.0.0", "Authorization": f"Bearer {token}"})
    assert status == 204
