"""Moving a request body from the socket to the upload's file inside the kernel (Linux).

splice(2) takes the socket's received pages into a pipe and hands them on to the file,
so the body is copied once (into the page cache), like a plain write, instead of four
times on the usual path (socket -> uvloop buffer -> bytes -> parser's body piece -> file).
Only the event loop's reader is bypassed: aiohttp has parsed the headers and stays in
charge of the response; the connection closes after it, because its parser never saw
the spliced bytes (see `receive.close_after_splice`).

Every method here is blocking and runs in a thread.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import time
from collections.abc import Callable
from pathlib import Path

from server.uploads.store import Writeback

AVAILABLE = hasattr(os, "splice") and hasattr(fcntl, "F_SETPIPE_SZ")
PIPE_BYTES = 1 << 20  # the default /proc/sys/fs/pipe-max-size; fewer, larger moves
IDLE_MS = 50  # nothing arrived for this long: hand the wait back to the event loop
_MOVE = getattr(os, "SPLICE_F_MOVE", 1)
_NONBLOCK = getattr(os, "SPLICE_F_NONBLOCK", 2)


class SocketMover:
    """A private duplicate of the connection's socket, a pipe, and the file to append to.

    The duplicate keeps the socket open if the transport is closed meanwhile (a lock
    takeover closes it), so a move in flight never touches a reused descriptor number.
    """

    def __init__(self, sock: int, path: Path) -> None:
        self.sock = sock  # owned: a duplicate made on the event loop (os.dup)
        self._pipe_r = self._pipe_w = self._fd = -1
        try:
            self._pipe_r, self._pipe_w = os.pipe()
            with contextlib.suppress(OSError):  # a smaller pipe only means more moves
                fcntl.fcntl(self._pipe_w, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
            self._pipe_size = fcntl.fcntl(self._pipe_w, fcntl.F_GETPIPE_SZ)
            # splice(2) refuses a target opened with O_APPEND: write at the end instead.
            self._fd = os.open(path, os.O_WRONLY)
            os.lseek(self._fd, 0, os.SEEK_END)
        except BaseException:
            self.close()
            raise
        self._writeback = Writeback(self._fd)
        self._poll = select.poll()
        self._poll.register(self.sock, select.POLLIN | select.POLLERR | select.POLLHUP)

    def pump(self, want: int, stop: Callable[[], bool], seconds: float) -> tuple[int, bool]:
        """Move up to `want` bytes within about `seconds`. Returns (moved, end of stream).

        Returns early, with what was moved, when the client goes quiet for IDLE_MS, so a
        stalled client waits on the event loop rather than in a pool thread.
        """
        deadline = time.monotonic() + seconds
        moved = 0
        while moved < want and not stop():
            try:
                count = os.splice(self.sock, self._pipe_w,
                                  min(want - moved, self._pipe_size),
                                  flags=_MOVE | _NONBLOCK)
            except BlockingIOError:
                if time.monotonic() > deadline or not self._poll.poll(IDLE_MS):
                    break
                continue
            except ConnectionError:
                return moved, True
            if count == 0:
                return moved, True  # the client closed its side
            self._to_file(count)
            moved += count
            if time.monotonic() > deadline:
                break
        return moved, False

    def _to_file(self, count: int) -> None:
        while count:
            done = os.splice(self._pipe_r, self._fd, count, flags=_MOVE)
            if done == 0:
                raise OSError("short move from the pipe to the upload's file")
            count -= done
            self._writeback.wrote(done)

    def close(self) -> None:
        for fd in (self._fd, self._pipe_r, self._pipe_w, self.sock):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._fd = self._pipe_r = self._pipe_w = self.sock = -1
