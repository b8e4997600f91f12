"""MPEG-TS segments remuxed from the stored fMP4 ones, for TVs that want TS.

A TS segment is the fMP4 segment's packets remuxed (no re-encode) with PyAV: the init
segment and the media segment are read as one file, demuxed, and muxed as MPEG-TS with the
original timestamps kept (`mpegts_copyts`), so consecutive segments join seamlessly. The
H.264 bitstream is converted to Annex B by the muxer's automatic bitstream filter. The
output is written to a temporary name and renamed (media.layout names it). Blocking: PyAV
releases the GIL while it demuxes and muxes, so a thread is enough.
"""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path
from typing import Any

import av


class ConcatReader(io.RawIOBase):
    """Two files read as one, seekable, without loading either into memory."""

    def __init__(self, first: Path, second: Path) -> None:
        self._files = [open(first, "rb"), open(second, "rb")]
        self._sizes = [os.fstat(f.fileno()).st_size for f in self._files]
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: sum(self._sizes)}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer)
        first = self._sizes[0]
        if self._pos < first:
            fh, offset = self._files[0], self._pos
            want = min(len(view), first - self._pos)
        else:
            fh, offset = self._files[1], self._pos - first
            want = len(view)
        fh.seek(offset)
        got = fh.readinto(view[:want]) or 0
        self._pos += got
        return got

    def close(self) -> None:
        for fh in self._files:
            fh.close()
        super().close()


def remux_segment(init: Path, segment: Path, out: Path) -> None:
    # hls-ts/ and hls-ts/<rendition>/ only: if the video's folder is gone (deleted while
    # this remux waited), FileNotFoundError, rather than a stray folder made anew.
    out.parent.parent.mkdir(exist_ok=True)
    out.parent.mkdir(exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with ConcatReader(init, segment) as reader, av.open(reader, "r", format="mp4") as src:
            with av.open(str(tmp), "w", format="mpegts",
                         options={"mpegts_copyts": "1"}) as dst:
                streams = {s.index: dst.add_stream_from_template(s) for s in src.streams
                           if s.type in ("video", "audio")}
                for packet in src.demux(*[src.streams[i] for i in streams]):
                    if packet.dts is None:
                        continue  # the demuxer's end-of-stream marker
                    packet.stream = streams[packet.stream.index]
                    dst.mux(packet)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
