"""Receiving bytes onto an upload's file: its lock, the limits, and the body stream.

A tus PATCH (or a creation-with-upload POST) takes the upload's lock, and `receive_body`
streams `request.content` onto the end of the upload's file within the size limit, the
length and the quota. The offset of an upload IS the size of its file (store.py), so what
reached the disk is what HEAD reports, after a disconnect or a crash alike.

Chunks are gathered into ~4 MiB batches and written by a thread while the next batch
arrives (double buffering): the event loop never touches the disk and memory per upload
stays at two batches. A checksummed chunk (tus checksum extension) goes to a side file
first and is appended only when its digest matches.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import StreamReader
from aiohttp.http_exceptions import HttpProcessingError

from server.config import Config
from server.errors import BadRequest, InsufficientStorage, PayloadTooLarge, Problem
from server.services import Services
from server.uploads import records, sniff, store
from server.uploads.quota import UserUploads, remaining_quota
from server.uploads.records import Upload

FLUSH_BYTES = 4 << 20
FLUSH_SECONDS = 1.0
PROGRESS_SECONDS = 1.0
TAKEOVER_WAIT_SECONDS = 30.0
# What aiohttp's body stream raises when the client goes away mid-body (the connection's
# error, or a Content-Length or chunked body that ended short).
_DISCONNECTS = (OSError, HttpProcessingError, asyncio.IncompleteReadError)


# --- Per-process state: who holds each upload's file -------------------------------------

class Holder:
    def __init__(self, stop: Callable[[], None] | None) -> None:
        self._stop = stop
        self.aborted = False
        self.waited = False  # the lock was taken over from (or waited for) another holder
        self.released = asyncio.Event()

    def abort(self) -> None:
        """Stop the older request: its body stream fails and it drops unwritten bytes."""
        self.aborted = True
        if self._stop is not None:
            self._stop()


class UploadLocks:
    """Per-upload locks that a newer request takes over instead of failing.

    A client whose connection stalled (a phone changing networks) comes back with HEAD and
    PATCH while the server still holds the old request open. tusd answers 423 until the old
    request times out; here the newcomer stops the stalled holder, waits until its last
    write has landed (so the file length is final) and carries on.
    """

    def __init__(self) -> None:
        self._holders: dict[str, Holder] = {}

    def held(self, upload_id: str) -> bool:
        return upload_id in self._holders

    @asynccontextmanager
    async def hold(self, upload_id: str, stop: Callable[[], None] | None
                   ) -> AsyncIterator[Holder]:
        """`stop` ends this holder's request if a newer one takes over; None (internal
        work such as a concatenation) waits its turn instead of taking over."""
        waited = False
        while (current := self._holders.get(upload_id)) is not None:
            waited = True
            if stop is None:
                await current.released.wait()
                continue
            current.abort()
            try:
                await asyncio.wait_for(current.released.wait(), TAKEOVER_WAIT_SECONDS)
            except TimeoutError:
                raise Problem("the upload is still busy with an earlier request; retry",
                              status=423, slug="locked") from None
        mine = Holder(stop)
        mine.waited = waited
        self._holders[upload_id] = mine
        try:
            yield mine
        finally:
            mine.released.set()
            if self._holders.get(upload_id) is mine:
                del self._holders[upload_id]


@dataclass
class UploadState:
    """Per-process upload state (keys.UPLOADS), made by the uploads cleanup context."""

    locks: UploadLocks = field(default_factory=UploadLocks)
    users: UserUploads = field(default_factory=UserUploads)
    finishing: set[str] = field(default_factory=set)  # concatenations being joined now


# --- Limits: the largest upload and the disk's reserve (quotas: quota.py) ----------------

def _mib(count: int) -> str:
    return f"{count / (1 << 20):.1f} MiB"


def check_max_size(config: Config, length: int) -> None:
    if length > config.max_upload_bytes:
        raise PayloadTooLarge(
            f"the upload is {length} bytes; the largest accepted is {config.max_upload_bytes}",
            headers={"Tus-Max-Size": str(config.max_upload_bytes)},
        )


def _disk_problem(free: int, incoming: int, reserve: int) -> InsufficientStorage | None:
    """507 (RFC 4918 section 11.5) when storing `incoming` bytes would eat the reserve."""
    if free - incoming >= reserve:
        return None
    return InsufficientStorage(
        f"the server is short of disk space ({_mib(free)} free, {_mib(incoming)} needed, "
        f"{_mib(reserve)} kept in reserve); try again later")


async def check_free_disk(config: Config, incoming: int) -> None:
    free = await asyncio.to_thread(store.free_bytes, config.uploads_dir)
    problem = _disk_problem(free, incoming, config.min_free_disk_bytes)
    if problem is not None:
        raise problem


def _allowed_bytes(upload: Upload, offset: int, max_upload: int, quota_left: int | None
                   ) -> int:
    """The most this request may add: up to the length, the size limit and the quota."""
    limits = [max_upload - offset]
    if upload.length is not None:
        limits.append(upload.length - offset)
    if quota_left is not None and upload.length is None:
        # A deferred length holds its bytes on disk, `offset` included: what is left is
        # all it may add.
        limits.append(quota_left)
    return max(0, min(limits))


# --- The body ----------------------------------------------------------------------------

class ChecksumMismatch(Problem):
    status, slug = 460, "checksum-mismatch"  # tus checksum extension


class SniffRefused(Exception):
    def __init__(self, verdict: sniff.Sniffed) -> None:
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


async def current_offset(config: Config, upload: Upload) -> int | None:
    """The bytes on disk (core protocol, HEAD); None for a final not yet concatenated."""
    if upload.state == records.COMPLETE:
        return upload.length
    if upload.is_final:
        return None
    return await asyncio.to_thread(store.size_on_disk, store.upload_path(config, upload.public_id))


@dataclass(frozen=True)
class Received:
    offset: int  # the size of the upload's file afterwards
    upload: Upload  # with its expiry pushed back
    allowed: int  # the most this request could add
    too_large: bool  # the body went on past `allowed`; the rest was not read


async def receive_body(services: Services, upload: Upload, offset: int, body: StreamReader,
                       declared: int | None, checksum: Checksum | None, holder: Holder,
                       held: int = 0) -> Received:
    """Append the body at `offset` (the file's size, checked by the caller under the lock).

    Raises SniffRefused when the first bytes are plainly not media, ChecksumMismatch when
    the chunk's digest is wrong (the chunk is then discarded). `held`: the bytes the
    owner's multipart uploads hold now (quota.UserUploads).
    """
    config, db = services.config, services.db
    if upload.length is not None and declared is not None and offset + declared > upload.length:
        raise PayloadTooLarge(f"the chunk would end at {offset + declared}, past the "
                              f"upload's length {upload.length}")
    quota_left = None
    if upload.length is None:
        quota_left = await remaining_quota(db, config, upload.owner_id, held)
    allowed = _allowed_bytes(upload, offset, config.max_upload_bytes, quota_left)
    receiver = BodyReceiver(services, upload, offset, allowed, checksum, holder,
                            incoming=min(declared or 0, allowed))
    too_large = await receiver.receive(body)
    new_offset = await asyncio.to_thread(store.size_on_disk, receiver.path)
    upload = await records.record_activity(db, upload, config.upload_expiry_seconds, new_offset)
    return Received(new_offset, upload, allowed, too_large)


@dataclass
class _Outcome:
    added: int = 0
    too_large: bool = False
    disconnected: bool = False


class BodyReceiver:
    def __init__(self, services: Services, upload: Upload, offset: int, allowed: int,
                 checksum: Checksum | None, holder: Holder, incoming: int) -> None:
        self.db = services.db
        self.upload = upload
        self.offset = offset
        self.allowed = allowed
        self.checksum = checksum
        self.holder = holder
        self.incoming = incoming
        config = services.config
        self.reserve = config.min_free_disk_bytes
        self.path = store.upload_path(config, upload.public_id)
        self.side = (store.chunk_path(config, upload.public_id, secrets.token_hex(4))
                     if checksum else None)
        self.sniffing = not upload.is_partial and offset < sniff.SNIFF_BYTES
        self.head = b""
        self.refused = False
        self.tail: list[bytes] = []
        self.outcome = _Outcome()
        self._pending: asyncio.Future[None] | None = None
        self._last_progress = self._last_flush = time.monotonic()

    def _open(self) -> store.ChunkWriter:
        """Free-disk check, the head for sniffing and the open, in one thread trip."""
        problem = _disk_problem(store.free_bytes(self.path.parent), self.incoming,
                                self.reserve)
        if problem is not None:
            raise problem
        if self.sniffing and self.offset:
            self.head = store.read_head(self.path, self.offset)
        return store.ChunkWriter(self.side or self.path,
                                 self.checksum.algorithm if self.checksum else None,
                                 truncate=self.side is not None)

    async def receive(self, body: StreamReader) -> bool:
        """Returns whether the body went on past what this request may add."""
        writer = await asyncio.to_thread(self._open)
        try:
            await self._pump(body, writer)
        finally:
            await self._settle()
            await store.run_blocking(writer.finish, self.tail)
        if self.side is not None:
            await self._verify(writer)
        return self.outcome.too_large

    async def _pump(self, body: StreamReader, writer: store.ChunkWriter) -> None:
        batch: list[bytes] = []
        size = 0
        try:
            while not self.holder.aborted:
                try:
                    # readchunk hands out buffered pieces as they are; readany would join
                    # them into a new bytes object first (one more copy).
                    chunk, boundary = await body.readchunk()
                except _DISCONNECTS:
                    # aiohttp raises the connection's error ahead of what it still buffered,
                    # so what is kept is what was handed out before it; reading as bytes
                    # arrive keeps that buffer, and what a disconnect loses, small.
                    self.outcome.disconnected = True
                    break
                if not chunk and boundary:
                    continue  # the end of one HTTP chunk (chunked transfer coding)
                if not chunk or self.holder.aborted:
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
            if batch and not self.holder.aborted and not self.refused:
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
            await records.set_bytes_received(self.db, self.upload.video_id,
                                             self.offset + self.outcome.added)

    async def _verify(self, writer: store.ChunkWriter) -> None:
        assert self.side is not None and self.checksum is not None
        if self.outcome.disconnected or self.holder.aborted or self.outcome.too_large:
            await asyncio.to_thread(store.remove, self.side)  # unverifiable: discarded
            self.outcome.added = 0
            return
        if writer.digest() != self.checksum.digest:
            await asyncio.to_thread(store.remove, self.side)
            raise ChecksumMismatch(
                f"the {self.checksum.algorithm} checksum of the chunk does not match; it was "
                "discarded and the offset is unchanged", title="Checksum Mismatch")
        await store.run_blocking(store.append_file, self.path, self.side)
