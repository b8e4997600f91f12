"""Streaming a request body onto the end of an upload's file.

Chunks from `request.content` are gathered into ~4 MiB batches and written by a thread
while the next batch arrives (double buffering), so the event loop never touches the
disk and memory per upload stays at two batches. A disconnect keeps what arrived: the
batch in hand is written before the handler returns. A checksummed PATCH (tus checksum
extension) goes to a side file first and is appended only when its digest matches.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import secrets
import time
from dataclasses import dataclass

from aiohttp import StreamReader, web
from aiohttp.http_exceptions import HttpProcessingError

from server import keys
from server.errors import BadRequest, PayloadTooLarge, Problem
from server.uploads import quota, records, sniff, store
from server.uploads.locks import Holder
from server.uploads.records import Upload

FLUSH_BYTES = 4 << 20
FLUSH_SECONDS = 1.0
PROGRESS_SECONDS = 1.0
_DISCONNECTS = (ConnectionError, HttpProcessingError, asyncio.IncompleteReadError)


class ChecksumMismatch(Problem):
    status, slug = 460, "checksum-mismatch"  # tus checksum extension


class SniffRefused(Exception):
    def __init__(self, verdict: sniff.Verdict) -> None:
        super().__init__(verdict.label)
        self.verdict = verdict


@dataclass(frozen=True)
class Checksum:
    algorithm: str
    digest: bytes


def parse_checksum(header: str | None) -> Checksum | None:
    """tus checksum extension: `Upload-Checksum: <algorithm> <base64 digest>`."""
    if header is None:
        return None
    algorithm, _, encoded = header.strip().partition(" ")
    if algorithm.lower() not in store.CHECKSUM_ALGORITHMS:
        raise BadRequest(f"unsupported checksum algorithm '{algorithm}'; use one of "
                         + ",".join(store.CHECKSUM_ALGORITHMS))
    try:
        digest = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("Upload-Checksum: the digest is not base64") from None
    return Checksum(algorithm.lower(), digest)


@dataclass
class Outcome:
    added: int = 0
    too_large: bool = False
    disconnected: bool = False


class BodyReceiver:
    def __init__(self, app: web.Application, upload: Upload, offset: int, allowed: int,
                 checksum: Checksum | None, holder: Holder | None, incoming: int = 0) -> None:
        self.app = app
        self.upload = upload
        self.offset = offset
        self.allowed = allowed
        self.checksum = checksum
        self.holder = holder
        self.incoming = incoming
        config = app[keys.CONFIG]
        self.reserve = config.min_free_disk_bytes
        self.path = store.upload_path(config, upload.public_id)
        self.side = (store.chunk_path(config, upload.public_id, secrets.token_hex(4))
                     if checksum else None)
        self.sniffing = not upload.is_partial and offset < sniff.SNIFF_BYTES
        self.head = b""
        self.refused = False
        self.tail: list[bytes] = []
        self.outcome = Outcome()
        self._pending: asyncio.Future[None] | None = None
        self._last_progress = self._last_flush = time.monotonic()

    @property
    def _aborted(self) -> bool:
        return self.holder is not None and self.holder.aborted

    def _open(self) -> store.ChunkWriter:
        """Free-disk check, the head for sniffing and the open, in one thread trip."""
        problem = quota.disk_problem(store.free_bytes(self.path.parent), self.incoming,
                                     self.reserve)
        if problem is not None:
            raise problem
        if self.sniffing and self.offset:
            self.head = store.read_head(self.path, self.offset)
        return store.ChunkWriter(self.side or self.path,
                                 self.checksum.algorithm if self.checksum else None,
                                 truncate=self.side is not None)

    async def receive(self, request: web.Request) -> Outcome:
        writer = await asyncio.to_thread(self._open)
        try:
            await self._pump(request.content, writer)
        finally:
            await self._settle()
            await store.run_blocking(writer.finish, self.tail)
        if self.side is not None:
            await self._verify(writer)
        return self.outcome

    async def _pump(self, reader: StreamReader, writer: store.ChunkWriter) -> None:
        batch: list[bytes] = []
        size = 0
        try:
            while not self._aborted:
                try:
                    # readchunk hands out buffered pieces as they are; readany would join
                    # them into a new bytes object first (one more copy).
                    chunk, boundary = await reader.readchunk()
                except _DISCONNECTS:
                    # aiohttp raises the connection's error ahead of what it still buffered,
                    # so the bytes kept are those handed out before it; reading as they
                    # arrive keeps that buffer (and what a disconnect loses) small.
                    self.outcome.disconnected = True
                    break
                if not chunk and boundary:
                    continue  # the end of one HTTP chunk (chunked transfer coding)
                if not chunk or self._aborted:
                    break
                room = self.allowed - self.outcome.added - size
                if len(chunk) > room:
                    chunk, self.outcome.too_large = chunk[:room], True
                if self.sniffing:
                    self._sniff(chunk, self.offset + self.outcome.added + size + len(chunk))
                batch.append(chunk)
                size += len(chunk)
                # Flush by size, or by age so a slow client's bytes reach the disk (and
                # HEAD) within about a second rather than after 4 MiB.
                if size >= FLUSH_BYTES or time.monotonic() - self._last_flush > FLUSH_SECONDS:
                    await self._flush(writer, batch)
                    batch, size = [], 0
                if self.outcome.too_large:
                    break
        finally:
            # Bytes in hand are kept on a disconnect; dropped on a takeover, because the
            # newer request resumes from the offset HEAD reported before they were written.
            if batch and not self._aborted and not self.refused:
                self.tail = batch  # written with the close, in `receive`
                self.outcome.added += size

    def _sniff(self, chunk: bytes, end: int) -> None:
        need = sniff.SNIFF_BYTES - len(self.head)
        self.head += chunk[:need]
        length = self.upload.length
        whole = length is not None and end >= length
        verdict = sniff.sniff(self.head, complete=whole)
        if verdict.rejected:
            self.refused = True
            raise SniffRefused(verdict)
        if verdict.kind == "media":
            self.sniffing = False

    async def _flush(self, writer: store.ChunkWriter, batch: list[bytes]) -> None:
        await self._settle()
        loop = asyncio.get_running_loop()
        self._pending = loop.run_in_executor(None, writer.write, batch)
        self._last_flush = time.monotonic()
        self.outcome.added += sum(len(c) for c in batch)
        await self._progress()

    async def _settle(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            await store.until_done(pending)

    async def _progress(self) -> None:
        now = time.monotonic()
        if self.upload.video_id is None or now - self._last_progress < PROGRESS_SECONDS:
            return
        self._last_progress = now
        if self.side is None:  # checksummed bytes only count once verified
            await records.set_bytes_received(self.app[keys.DB], self.upload.video_id,
                                             self.offset + self.outcome.added)

    async def _verify(self, writer: store.ChunkWriter) -> None:
        assert self.side is not None and self.checksum is not None
        if self.outcome.disconnected or self._aborted or self.outcome.too_large:
            await asyncio.to_thread(store.remove, self.side)  # unverifiable: discarded
            self.outcome.added = 0
            return
        if writer.digest() != self.checksum.digest:
            await asyncio.to_thread(store.remove, self.side)
            raise ChecksumMismatch(
                f"the {self.checksum.algorithm} checksum of the chunk does not match; it was "
                "discarded and the offset is unchanged", title="Checksum Mismatch")
        await store.run_blocking(store.append_file, self.path, self.side)


def allowed_bytes(upload: Upload, offset: int, max_upload: int, quota_left: int | None) -> int:
    """The most this request may add: up to the length, the size limit and the quota."""
    limits = [max_upload - offset]
    if upload.length is not None:
        limits.append(upload.length - offset)
    if quota_left is not None and upload.length is None:
        limits.append(quota_left - offset)  # a deferred length is not counted in the quota
    return max(0, min(limits))


def too_large(detail: str) -> PayloadTooLarge:
    return PayloadTooLarge(detail, headers={"Tus-Resumable": "1.0.0"})
