"""Early sniffing verdicts on the first bytes of real and synthetic files."""

from __future__ import annotations

import pytest

from server.uploads.sniff import SNIFF_BYTES, sniff


def test_real_mp4_is_media(clip_bytes: bytes) -> None:
    assert sniff(clip_bytes[:SNIFF_BYTES]).kind == "media"


@pytest.mark.parametrize("head", [
    b"\x1a\x45\xdf\xa3" + bytes(100),                      # Matroska / WebM
    b"RIFF\x00\x00\x00\x00AVI LIST" + bytes(100),          # AVI
    b"RIFF\x00\x00\x00\x00WAVEfmt " + bytes(100),          # WAV
    (b"\x47" + bytes(187)) * 4,                            # MPEG-TS
    b"\x00\x00\x01\xba" + bytes(100),                      # MPEG-PS
    b"FLV\x01\x05" + bytes(100),                           # FLV
    b"OggS\x00\x02" + bytes(100),                          # Ogg
    b"ID3\x04\x00" + bytes(100),                           # MP3 with ID3
    b"\xff\xfb\x90\x64" + bytes(100),                      # MP3 frame
    b"fLaC" + bytes(100),                                  # FLAC
    b"\xff\xf1\x50\x80" + bytes(100),                      # ADTS AAC
    b"\x30\x26\xb2\x75\x8e\x66\xcf\x11" + bytes(100),      # ASF
])
def test_media_magic(head: bytes) -> None:
    assert sniff(head).kind == "media"


@pytest.mark.parametrize(("head", "label"), [
    (b"\x89PNG\r\n\x1a\n" + bytes(100), "PNG"),
    (b"\xff\xd8\xff\xe0" + bytes(100), "JPEG"),
    (b"GIF89a" + bytes(100), "GIF"),
    (b"%PDF-1.7\n" + bytes(100), "PDF"),
    (b"PK\x03\x04" + bytes(100), "ZIP"),
    (b"\x7fELF\x02\x01" + bytes(100), "ELF"),
    (b"MZ\x90\x00" + bytes(100), "Windows"),
    (b"<!DOCTYPE html>" + b"<p>hi</p>" * 100, "HTML"),
    (b'{"a": 1, ' + b'"b": 2, ' * 100 + b"}", "JSON"),
    ("Plain words, ünïcode too. ".encode() * 40, "text"),
])
def test_non_media_refused(head: bytes, label: str) -> None:
    verdict = sniff(head)
    assert verdict.rejected and label in verdict.label


def test_short_text_waits_for_more_bytes() -> None:
    assert sniff(b"hello").kind == "undecided"
    assert sniff(b"hello", complete=True).rejected
    assert sniff(bytes(range(256)) * 16).kind == "media"  # unknown binary: left to the probe
