"""MPEG-TS segments remuxed from the stored fMP4 ones, for TVs that want TS.

A TS segment is the fMP4 segment's packets remuxed (no re-encode) with PyAV: the init
segment and the media segment are read as one file, demuxed, and muxed as MPEG-TS with the
original timestamps kept (`mpegts_copyts`), so consecutive segments join seamlessly. The
H.264 bitstream is converted to Annex B by the muxer's automatic bitstream filter. The
output is written to a temporary name and renamed (media.layout names it). Blocking: PyAV
releases the GIL while it demuxes and muxes, so a thread is enough.

Continuity counters (ISO/IEC 13818-1 section 2.4.3.3) run on across segment boundaries,
as if the rung had been muxed once, while each segment is still made on its own (a seek
to minute 90 must not remux the 89 minutes before it): every segment is made to carry a
multiple of 16 payload packets of each PID, so each PID starts at counter 0 and ends at 15
in every segment. The packets that make up the difference carry no extra bytes: a payload
packet of an audio or video PID is split into several, their room filled with adaptation
field stuffing (section 2.4.3.5), which is what a muxer does with a PES's last packet
anyway; a table (PAT, PMT, SDT) is repeated, as tables are every tenth of a second.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
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


PACKET = 188
COUNTER_MODULUS = 16  # continuity_counter is 4 bits
_PES_START = b"\x00\x00\x01"


@dataclass
class _Pid:
    payloads: int = 0  # payload packets in the segment as muxed
    is_pes: bool | None = None  # None until its first unit start is seen
    padding: int = 0  # packets still to add
    written: int = 0  # payload packets written, for the counter


def _payload_offset(packet: bytes | bytearray) -> int | None:
    """Where the payload begins, or None when the packet has none (section 2.4.3.2)."""
    control = (packet[3] >> 4) & 0x3
    if control in (0, 2):
        return None
    if control == 1:
        return 4
    offset = 5 + packet[4]
    return offset if offset < PACKET else None


def _plain_adaptation(packet: bytes | bytearray) -> bool:
    """No adaptation field, or one of stuffing only (no PCR, no random access flag)."""
    control = (packet[3] >> 4) & 0x3
    return control == 1 or (control == 3 and (packet[4] == 0 or packet[5] == 0))


def _piece(header: bytes | bytearray, payload: bytes | bytearray) -> bytearray:
    """A packet of `header`'s PID carrying `payload` (1 to 183 bytes), the rest stuffing."""
    stuffing = PACKET - 4 - len(payload) - 1  # bytes of adaptation field after its length
    packet = bytearray(header[:3])
    packet[1] &= 0xBF  # not a unit start: the payload goes on from the previous packet
    packet.append(0x30)  # adaptation field and payload; the counter is set when written
    packet.append(stuffing)
    if stuffing > 0:
        packet.append(0x00)  # no flags
        packet += b"\xff" * (stuffing - 1)
    packet += payload
    return packet


def _split(packet: bytes | bytearray, pieces: int) -> list[bytearray] | None:
    """The packet's payload spread over `pieces` packets, or None when it cannot be: a unit
    start, a PCR or flag in its adaptation field, or fewer payload bytes than pieces."""
    offset = _payload_offset(packet)
    if offset is None or packet[1] & 0x40 or not _plain_adaptation(packet):
        return None
    payload = packet[offset:]
    if len(payload) < pieces:
        return None
    size, extra = divmod(len(payload), pieces)
    out, start = [], 0
    for i in range(pieces):
        end = start + size + (1 if i < extra else 0)
        out.append(_piece(packet, payload[start:end]))
        start = end
    return out


def _packets(path: Path) -> Iterator[bytes]:
    with open(path, "rb", buffering=1 << 16) as fh:
        while len(packet := fh.read(PACKET)) == PACKET:
            yield packet


def make_continuous(source: Path, out: Path) -> None:
    """Copy the TS file `source` to `out` with each PID's payload packets a multiple of 16
    and continuity counters from 0. Two streaming passes: memory stays flat."""
    pids: dict[int, _Pid] = {}
    for packet in _packets(source):
        pid = ((packet[1] & 0x1F) << 8) | packet[2]
        state = pids.setdefault(pid, _Pid())
        offset = _payload_offset(packet)
        if offset is None:
            continue
        state.payloads += 1
        if state.is_pes is None and packet[1] & 0x40:
            state.is_pes = packet[offset:offset + 3] == _PES_START
    for state in pids.values():
        state.padding = -state.payloads % COUNTER_MODULUS
    with open(out, "wb", buffering=1 << 16) as dst:
        def write(packet: bytes | bytearray, state: _Pid) -> None:
            if _payload_offset(packet) is None:
                counter = (state.written - 1) % COUNTER_MODULUS  # not incremented (2.4.3.3)
            else:
                counter = state.written % COUNTER_MODULUS
                state.written += 1
            dst.write(bytes(packet[:3]) + bytes([(packet[3] & 0xF0) | counter]) + packet[4:])

        for packet in _packets(source):
            pid = ((packet[1] & 0x1F) << 8) | packet[2]
            state = pids[pid]
            if state.padding and state.is_pes:
                pieces = _split(packet, state.padding + 1)
                if pieces is not None:
                    state.padding = 0
                    for piece in pieces:
                        write(piece, state)
                    continue
            write(packet, state)
            if state.padding and state.is_pes is False and packet[1] & 0x40:
                for _ in range(state.padding):  # the table again, right after itself
                    write(packet, state)
                state.padding = 0


def remux_segment(init: Path, segment: Path, out: Path) -> None:
    # ts/ and ts/<rendition>/ only: if the video's folder is gone (deleted while
    # this remux waited), FileNotFoundError, rather than a stray folder made anew.
    out.parent.parent.mkdir(exist_ok=True)
    out.parent.mkdir(exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    muxed = tmp.with_name(tmp.name + ".muxed")
    try:
        # The stored timestamps, not the edit list's (media.fmp4): with it, the first
        # decode times would be negative, which MPEG-TS cannot carry.
        with ConcatReader(init, segment) as reader, av.open(
                reader, "r", format="mp4", options={"ignore_editlist": "1"}) as src:
            with av.open(str(muxed), "w", format="mpegts",
                         options={"mpegts_copyts": "1"}) as dst:
                streams = {s.index: dst.add_stream_from_template(s) for s in src.streams
                           if s.type in ("video", "audio")}
                for packet in src.demux(*[src.streams[i] for i in streams]):
                    if packet.dts is None:
                        continue  # the demuxer's end-of-stream marker
                    packet.stream = streams[packet.stream.index]
                    dst.mux(packet)
        make_continuous(muxed, tmp)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
        muxed.unlink(missing_ok=True)
