"""Early file-type sniffing: refuse plainly non-media uploads from their first bytes.

Only obvious cases are refused (images, documents, archives, executables, text); anything
that looks like a container or elementary stream, or that is unknown binary, is let
through and left to the pipeline's probe, which decodes it for real.
"""

from __future__ import annotations

from dataclasses import dataclass

SNIFF_BYTES = 4096
_TEXT_MIN = 512  # a text verdict needs this many bytes (or the whole file)


@dataclass(frozen=True)
class Sniffed:
    kind: str  # "media", "reject" or "undecided"
    label: str = ""

    @property
    def rejected(self) -> bool:
        return self.kind == "reject"


# (offset, magic, label); ISO-BMFF's "ftyp" sits at offset 4 after the box size.
_MEDIA_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (4, b"ftyp", "ISO base media (MP4/MOV/3GP)"),
    (4, b"moov", "QuickTime"),
    (4, b"mdat", "QuickTime"),
    (4, b"wide", "QuickTime"),
    (4, b"free", "QuickTime"),
    (4, b"skip", "QuickTime"),
    (0, b"\x1a\x45\xdf\xa3", "Matroska/WebM"),
    (0, b"FLV\x01", "FLV"),
    (0, b"OggS", "Ogg"),
    (0, b"fLaC", "FLAC"),
    (0, b"ID3", "MP3 with ID3"),
    (0, b"\x00\x00\x01\xba", "MPEG program stream"),
    (0, b"\x00\x00\x01\xb3", "MPEG video"),
    (0, b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", "ASF/WMV"),
    (0, b".RMF", "RealMedia"),
    (0, b"#!AMR", "AMR"),
    (0, b"\x00\x00\x00\x01", "H.264/HEVC elementary stream"),
    (0, b"DHAV", "DAHUA"),
)
_RIFF_MEDIA = {b"AVI ": "AVI", b"WAVE": "WAV", b"AVIX": "AVI", b"AMV ": "AMV"}

_REJECT_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (0, b"\xff\xd8\xff", "a JPEG image"),
    (0, b"GIF87a", "a GIF image"),
    (0, b"GIF89a", "a GIF image"),
    (0, b"BM", "a BMP image"),
    (0, b"II*\x00", "a TIFF image"),
    (0, b"MM\x00*", "a TIFF image"),
    (0, b"%PDF-", "a PDF document"),
    (0, b"PK\x03\x04", "a ZIP archive or office document"),
    (0, b"PK\x05\x06", "a ZIP archive"),
    (0, b"Rar!\x1a\x07", "a RAR archive"),
    (0, b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (0, b"\x1f\x8b", "a gzip file"),
    (0, b"BZh", "a bzip2 file"),
    (0, b"\xfd7zXZ\x00", "an xz file"),
    (0, b"\x28\xb5\x2f\xfd", "a zstd file"),
    (0, b"\x7fELF", "an ELF executable"),
    (0, b"MZ", "a Windows executable"),
    (0, b"\xcf\xfa\xed\xfe", "a Mach-O executable"),
    (0, b"\xfe\xed\xfa\xcf", "a Mach-O executable"),
    (0, b"\xca\xfe\xba\xbe", "a Mach-O or Java class file"),
    (0, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Office document"),
    (0, b"SQLite format 3\x00", "an SQLite database"),
    (0, b"\x00asm", "a WebAssembly module"),
    (0, b"{\\rtf", "an RTF document"),
)
_RIFF_REJECT = {b"WEBP": "a WebP image"}
_TEXT_CONTROLS = frozenset(b"\t\n\r\f\x1b")


def _mpeg_ts(head: bytes) -> bool:
    """MPEG-TS: the 0x47 sync byte every 188 bytes (192 for M2TS with its 4-byte prefix)."""
    for start, step in ((0, 188), (4, 192)):
        marks = range(start, min(len(head), start + step * 4), step)
        if len(marks) >= 2 and all(head[i] == 0x47 for i in marks):
            return True
    return len(head) < 188 and len(head) > 0 and head[0] == 0x47


def _frame_sync(head: bytes) -> str:
    """MPEG audio (MP3) or ADTS AAC: an 11/12-bit frame sync at the very start."""
    if len(head) < 2 or head[0] != 0xFF:
        return ""
    if head[1] & 0xF6 == 0xF0:  # 1111 0xx0 -> ADTS with layer 00
        return "ADTS AAC"
    if head[1] & 0xE0 == 0xE0 and head[1] & 0x06 != 0:  # layer bits not reserved
        return "MPEG audio"
    return ""


def _looks_like_text(head: bytes) -> bool:
    sample = head.lstrip(b"\xef\xbb\xbf")
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(sample) - 4:  # a character cut at the end is fine
            return False
        text = sample[: exc.start].decode("utf-8")
    return all(ch.isprintable() or ch.isspace() or ord(ch) in _TEXT_CONTROLS for ch in text)


def sniff(head: bytes, *, complete: bool = False) -> Sniffed:
    """Classify the first bytes of a file; `complete` says `head` is the whole file."""
    for offset, magic, label in _REJECT_MAGIC:
        if head[offset:offset + len(magic)] == magic:
            return Sniffed("reject", label)
    if head[:4] == b"RIFF" and len(head) >= 12:
        form = head[8:12]
        if form in _RIFF_REJECT:
            return Sniffed("reject", _RIFF_REJECT[form])
        if form in _RIFF_MEDIA:
            return Sniffed("media", _RIFF_MEDIA[form])
    for offset, magic, label in _MEDIA_MAGIC:
        if head[offset:offset + len(magic)] == magic:
            return Sniffed("media", label)
    if _mpeg_ts(head):
        return Sniffed("media", "MPEG transport stream")
    audio = _frame_sync(head)
    if audio:
        return Sniffed("media", audio)
    if (len(head) >= _TEXT_MIN or complete) and head and _looks_like_text(head[:SNIFF_BYTES]):
        lowered = head[:256].lstrip().lower()
        if lowered.startswith((b"<!doctype html", b"<html")):
            return Sniffed("reject", "an HTML page")
        if lowered.startswith((b"{", b"[")):
            return Sniffed("reject", "a JSON document")
        if lowered.startswith(b"<?xml") or lowered.startswith(b"<svg"):
            return Sniffed("reject", "an XML or SVG document")
        return Sniffed("reject", "a text file")
    if len(head) >= SNIFF_BYTES or complete:
        return Sniffed("media", "unknown binary")  # left to the probe
    return Sniffed("undecided")


def refusal(verdict: Sniffed) -> str:
    return f"this file looks like {verdict.label}, not audio or video"
