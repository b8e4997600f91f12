"""The on-disk upload store: one append-only file per upload under `uploads/`.

The offset of an upload IS the size of its file (os.stat), so whatever reached the disk
before a disconnect or a crash is exactly what HEAD reports afterwards. Every function
here is blocking and runs in a thread (`asyncio.to_thread` or `run_blocking`), but for the
last three: those run steps that a cancelled request must not cut short.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import functools
import hashlib
import os
import shutil
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from server.config import Config

T = TypeVar("T")
P = ParamSpec("P")
_IOV_MAX = 1024
CHECKSUM_ALGORITHMS: dict[str, Callable[[], Any]] = {
    "sha1": hashlib.sha1, "md5": hashlib.md5, "sha256": hashlib.sha256,
}


def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        func = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    func.restype = ctypes.c_int
    return func


_SYNC_FILE_RANGE = _sync_file_range()
_SYNC_FILE_RANGE_WRITE = 2  # <fcntl.h>: start writeback, do not wait for it
WRITEBACK_BYTES = 4 << 20


def start_writeback(fd: int) -> bool:
    """Start writing the file's dirty pages to disk without waiting (sync_file_range(2)).

    An upload is fsynced before its last answer; with writeback started as the bytes
    arrive, the disk works while the network does and that fsync finds little left,
    instead of the whole file (the kernel alone starts only at dirty_background_ratio of
    memory). Elsewhere than Linux this does nothing and the fsync does it all. Returns
    whether the kernel took the request; either way the fsync still makes it durable.
    """
    if _SYNC_FILE_RANGE is None:
        return False
    return _SYNC_FILE_RANGE(fd, 0, 0, _SYNC_FILE_RANGE_WRITE) == 0  # 0, 0: the whole file


class Writeback:
    """Starts writeback of one file each time WRITEBACK_BYTES more were written to it."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._unflushed = 0

    def wrote(self, count: int) -> None:
        self._unflushed += count
        if self._unflushed >= WRITEBACK_BYTES:
            self._unflushed = 0
            start_writeback(self._fd)


def upload_path(config: Config, upload_id: str) -> Path:
    return config.uploads_dir / upload_id


def chunk_path(config: Config, upload_id: str, tag: str) -> Path:
    """Where a checksummed chunk waits until its checksum is verified (tus checksum ext.)."""
    return config.uploads_dir / f"{upload_id}.chunk-{tag}"


def size_on_disk(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def create_empty(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    os.close(fd)


def read_head(path: Path, count: int) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(count)
    except FileNotFoundError:
        return b""


def remove(*paths: Path) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def free_bytes(directory: Path) -> int:
    return shutil.disk_usage(directory).free


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def move_into_place(source: Path, target: Path) -> None:
    """os.replace within one filesystem: atomic, so the original never appears half-written."""
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, target)
    fsync_dir(target.parent)


def _copy_range(src_fd: int, dst_fd: int, count: int) -> None:
    remaining = count
    while remaining > 0:
        try:
            done = os.copy_file_range(src_fd, dst_fd, min(remaining, 1 << 30))
        except OSError:
            done = os.sendfile(dst_fd, src_fd, None, min(remaining, 1 << 30))
        if done == 0:
            raise OSError("short copy while appending a chunk")
        remaining -= done


def append_file(target: Path, source: Path) -> None:
    """Append `source` to `target` in the kernel (copy_file_range), then drop `source`."""
    src_fd = os.open(source, os.O_RDONLY)
    try:
        # copy_file_range and sendfile refuse O_APPEND descriptors: seek to the end instead.
        dst_fd = os.open(target, os.O_WRONLY | os.O_CREAT, 0o640)
        try:
            os.lseek(dst_fd, 0, os.SEEK_END)
            _copy_range(src_fd, dst_fd, os.fstat(src_fd).st_size)
        finally:
            os.close(dst_fd)
    finally:
        os.close(src_fd)
    remove(source)


def concatenate(target: Path, parts: Iterable[Path]) -> None:
    """Write the parts one after another into a temporary file, then move it to `target`."""
    tmp = target.with_name(target.name + ".concat")
    remove(tmp)
    dst_fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    try:
        for part in parts:
            src_fd = os.open(part, os.O_RDONLY)
            try:
                _copy_range(src_fd, dst_fd, os.fstat(src_fd).st_size)
            finally:
                os.close(src_fd)
        os.fsync(dst_fd)
    finally:
        os.close(dst_fd)
    os.replace(tmp, target)


class ChunkWriter:
    """Appends received chunks to a file, hashing them on the way when asked to."""

    def __init__(self, path: Path, algorithm: str | None = None, *, truncate: bool = False
                 ) -> None:
        flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if truncate else os.O_APPEND)
        self.path = path
        self._fd = os.open(path, flags, 0o640)
        self._hash = CHECKSUM_ALGORITHMS[algorithm]() if algorithm else None
        self.written = 0
        self._writeback = Writeback(self._fd)

    def write(self, chunks: list[bytes]) -> None:
        if self._hash is not None:
            for chunk in chunks:
                self._hash.update(chunk)  # hashlib drops the GIL on large buffers
        pending = [memoryview(c) for c in chunks if c]
        while pending:  # one writev per batch; a short write resumes where it stopped
            done = os.writev(self._fd, pending[:_IOV_MAX])
            self.written += done
            self._writeback.wrote(done)
            while done:
                if done >= len(pending[0]):
                    done -= len(pending.pop(0))
                else:
                    pending[0], done = pending[0][done:], 0

    def finish(self, chunks: list[bytes]) -> None:
        """The last batch and the close in one trip to the thread pool."""
        try:
            self.write(chunks)
        finally:
            self.close()

    def digest(self) -> bytes:
        assert self._hash is not None
        return bytes(self._hash.digest())

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


async def until_done(step: Awaitable[T]) -> T:
    """Await `step` to its end even if the caller is cancelled meanwhile, then let the
    cancellation go on.

    With handler cancellation a client that leaves cancels its request's handler; a step
    that must not stop half-way (a write a lock is guarding, a move into place and its job
    row) runs as a task of its own, shielded, and the handler waits for it before it goes.
    """
    task = asyncio.ensure_future(step)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(task)
            break
        except asyncio.CancelledError:
            if task.done():
                raise
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    return result


def runs_to_end(func: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Every call of `func` is awaited with `until_done`."""
    @functools.wraps(func)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        return await until_done(func(*args, **kwargs))
    return wrapper


async def run_blocking(func: Callable[..., T], *args: Any) -> T:
    """Run `func` in a thread; a cancelled request still waits until its write has landed,
    so it never releases the upload's lock while the file is still growing."""
    return await until_done(asyncio.get_running_loop().run_in_executor(None, func, *args))
