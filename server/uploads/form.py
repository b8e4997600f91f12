"""The simple upload's body: multipart/form-data (RFC 7578) streamed onto a file.

The body is parsed as a stream with python-multipart's push parser fed from
`request.content`: the `file` part goes straight to disk in batches written by a thread,
the small text fields are kept (each capped), and the size limit and the early sniff
apply while bytes arrive, so a refused upload is answered before its body is read.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import StreamReader
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser

from server.errors import BadRequest, PayloadTooLarge, UnsupportedMedia
from server.uploads import sniff, store
from server.uploads.disposition import MAX_HEADER, decode_header_bytes, part_names
from server.uploads.receive import FLUSH_BYTES

FIELDS = ("title", "description", "privacy", "channel", "filename")
FIELD_LIMIT = 64 * 1024


class StreamingForm:
    """Callbacks for MultipartParser; `receive_form` drains `batch` to disk."""

    def __init__(self, boundary: str, limit: int) -> None:
        self.limit = limit
        self.fields: dict[str, str] = {}
        self.batch: list[bytes] = []
        self.batch_size = 0
        self.file_size = 0
        self.file_seen = False
        self.filename = ""
        self.head = b""
        self._part: str | None = None
        self._is_file = False
        self._value = bytearray()
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._headers: dict[str, str] = {}
        self.parser = MultipartParser(boundary.encode("ascii"), {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda d, s, e: self._header_bytes(self._header_field, d, s, e),
            "on_header_value": lambda d, s, e: self._header_bytes(self._header_value, d, s, e),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        })

    def _part_begin(self) -> None:
        self._headers, self._part, self._is_file = {}, None, False
        self._value = bytearray()

    @staticmethod
    def _header_bytes(target: bytearray, data: bytes, start: int, end: int) -> None:
        if len(target) + end - start > MAX_HEADER:
            raise BadRequest(f"a part header of the form is longer than {MAX_HEADER} bytes")
        target.extend(data[start:end])

    def _header_end(self) -> None:
        name = self._header_field.decode("latin-1").strip().lower()
        self._headers[name] = decode_header_bytes(bytes(self._header_value))
        self._header_field, self._header_value = bytearray(), bytearray()

    def _headers_finished(self) -> None:
        self._part, filename = part_names(self._headers.get("content-disposition", ""))
        if self._part == "file":
            if self.file_seen:
                raise BadRequest("send one 'file' part")
            self.file_seen = self._is_file = True
            self.filename = filename or ""

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._is_file:
            piece = bytes(data[start:end])
            self.file_size += len(piece)
            if self.file_size > self.limit:
                raise PayloadTooLarge(f"the file is larger than the {self.limit} bytes "
                                      "you may upload (size limit or quota)")
            if len(self.head) < sniff.SNIFF_BYTES:
                self.head += piece[: sniff.SNIFF_BYTES - len(self.head)]
            self.batch.append(piece)
            self.batch_size += len(piece)
        elif self._part in FIELDS:
            if len(self._value) + end - start > FIELD_LIMIT:
                raise BadRequest(f"form field '{self._part}' is too long")
            self._value.extend(data[start:end])

    def _part_end(self) -> None:
        if not self._is_file and self._part in FIELDS:
            self.fields[self._part] = self._value.decode("utf-8", "replace")

    def take_batch(self) -> list[bytes]:
        batch, self.batch, self.batch_size = self.batch, [], 0
        return batch

    def check_head(self, done: bool) -> None:
        if not self.file_seen or (not done and len(self.head) < sniff.SNIFF_BYTES):
            return
        verdict = sniff.sniff(self.head, complete=done)
        if verdict.rejected:
            raise UnsupportedMedia(sniff.refusal(verdict))


async def receive_form(body: StreamReader, form: StreamingForm, path: Path) -> None:
    writer = await asyncio.to_thread(store.ChunkWriter, path, None, truncate=True)
    try:
        async for chunk in body.iter_any():
            try:
                form.parser.write(chunk)
            except FormParserError as exc:
                raise BadRequest(f"malformed multipart body: {exc}") from None
            form.check_head(done=False)
            if form.batch_size >= FLUSH_BYTES:
                await store.run_blocking(writer.write, form.take_batch())
        form.parser.finalize()
        form.check_head(done=True)
        if form.batch:
            await store.run_blocking(writer.write, form.take_batch())
    finally:
        await asyncio.to_thread(writer.close)
