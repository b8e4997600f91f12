"""Real players against a real server: ffmpeg reads whole HLS ladders (fMP4 and TS),
ffprobe reads and seeks the progressive MP4s, the m3u8 parser checks every playlist."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import m3u8
import pytest
from aiohttp.test_utils import TestClient

from server import keys, storage
from tests.helpers import check_openapi, sign_up
from tests.playback.conftest import Tree, add_video


async def run(*argv: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def url(client: TestClient, path: str) -> str:
    return str(client.make_url(path))


async def _decode_all(client: TestClient, master: str) -> None:
    """Every stream of every variant, with nothing at all to say (not even a warning: a
    continuity counter that jumps at a segment boundary is one)."""
    code, _, err = await run("ffmpeg", "-v", "warning", "-i", url(client, master),
                             "-map", "0", "-f", "null", "-")
    assert code == 0, err
    assert err.strip() == "", err


def continuity_breaks(segments: list[bytes]) -> list[str]:
    """ISO/IEC 13818-1 section 2.4.3.3: each PID's counter goes up by one per packet with a
    payload, modulo 16, across the whole rung as if it were one stream."""
    last: dict[int, int] = {}
    breaks = []
    for index, data in enumerate(segments):
        assert len(data) % 188 == 0 and data[:1] == b"G"
        for offset in range(0, len(data), 188):
            packet = data[offset:offset + 188]
            assert packet[0] == 0x47, (index, offset)
            pid, control, counter = ((packet[1] & 0x1F) << 8) | packet[2], packet[3] >> 4 & 3, \
                packet[3] & 0xF
            if control in (1, 3):
                if pid in last and counter != (last[pid] + 1) % 16:
                    breaks.append(f"segment {index}, PID {pid:#x}: {last[pid]} then {counter}")
                last[pid] = counter
    return breaks


async def test_ts_continuity_counters_run_on_across_every_segment(
    client: TestClient, hls_tree: Tree
) -> None:
    alice = await sign_up(client, "alice")
    vid = await add_video(client, alice, hls_tree)
    body = await (await client.get(f"/api/videos/{vid}")).json()
    master = m3u8.loads(await (await client.get(body["streams"]["hls_ts"])).text())
    base = f"/api/videos/{vid}/hls-ts/"
    checked = 0
    for variant in master.playlists:
        media = m3u8.loads(await (await client.get(base + variant.uri)).text())
        folder = base + variant.uri.rsplit("/", 1)[0] + "/"
        # Asked for out of order, as a seek would: each segment is made on its own.
        order = list(reversed(range(len(media.segments))))
        fetched: dict[int, bytes] = {}
        for index in order:
            resp = await client.get(folder + media.segments[index].uri)
            assert resp.status == 200 and resp.content_type == "video/mp2t"
            fetched[index] = await resp.read()
        assert len(fetched) >= 2  # at least one boundary
        assert continuity_breaks([fetched[i] for i in sorted(fetched)]) == []
        checked += 1
    assert checked == len(master.playlists) >= 2


@pytest.mark.parametrize("flavour", ["hls", "hls_ts"])
async def test_gstreamer_plays_each_ladder_to_the_end(
    client: TestClient, hls_tree: Tree, flavour: str
) -> None:
    """GStreamer's playbin (hlsdemux2, Debian's gstreamer1.0-plugins-bad) to end of stream;
    the ladder's own URLs, no sink that needs a screen."""
    alice = await sign_up(client, "alice")
    vid = await add_video(client, alice, hls_tree)
    body = await (await client.get(f"/api/videos/{vid}")).json()
    code, out, err = await run(
        "gst-launch-1.0", "playbin", f"uri={url(client, body['streams'][flavour])}",
        "video-sink=fakesink sync=false", "audio-sink=fakesink sync=false", "--eos-on-shutdown")
    assert code == 0, out + err
    assert "Got EOS from element \"playbin" in out, out + err
    assert "ERROR" not in out + err and "WARNING" not in out + err, out + err


async def test_ffmpeg_plays_fmp4_and_ts_ladders_of_a_private_video(
    client: TestClient, hls_tree: Tree, openapi: dict[str, Any]
) -> None:
    alice = await sign_up(client, "alice")
    vid = await add_video(client, alice, hls_tree, privacy="private")
    resp = await client.get(f"/api/videos/{vid}", headers=alice.headers)
    body = await check_openapi(openapi, resp)
    # Signed URLs only: ffmpeg sends no token and no cookie.
    await _decode_all(client, body["streams"]["hls"])
    await _decode_all(client, body["streams"]["hls_ts"])
    cached = storage.video_dir(client.app[keys.CONFIG], vid) / "ts"
    assert sorted(p.name for p in (cached / "360p").glob("*.ts")) == [
        f"seg_{i:05d}.ts" for i in range(hls_tree.result.renditions[0].segments)]


@pytest.mark.parametrize("privacy", ["unlisted", "private"])
async def test_playlists_parse_and_carry_a_grant_only_when_private(
        client: TestClient, hls_tree: Tree, privacy: str) -> None:
    alice = await sign_up(client, "alice")
    vid = await add_video(client, alice, hls_tree, privacy=privacy)
    body = await (await client.get(f"/api/videos/{vid}", headers=alice.headers)).json()
    signed = privacy == "private"
    for flavour, key, ext in (("hls", "hls", ".m4s"), ("hls-ts", "hls_ts", ".ts")):
        resp = await client.get(body["streams"][key], headers={"Accept-Encoding": "gzip"})
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "application/vnd.apple.mpegurl"
        assert resp.headers["Content-Encoding"] == "gzip"
        text = await resp.text()
        # A master needs nothing past version 1 (RFC 8216 section 7): no EXT-X-VERSION.
        assert "#EXT-X-VERSION" not in text
        assert ("#EXT-X-I-FRAME-STREAM-INF" in text) == (flavour == "hls")
        master = m3u8.loads(text)
        assert master.is_variant
        names = {r.name for r in hls_tree.result.renditions}
        assert len(master.playlists) == len(names)
        for variant in master.playlists:
            assert ("sig=" in variant.uri) == signed
            assert variant.stream_info.bandwidth > 0 and variant.stream_info.codecs
            media_url = f"/api/videos/{vid}/{flavour}/{variant.uri}"
            mresp = await client.get(media_url)
            assert mresp.status == 200, media_url
            media = m3u8.loads(await mresp.text())
            assert media.is_endlist and media.playlist_type == "vod"
            assert media.segments and all(s.uri.split("?")[0].endswith(ext)
                                          for s in media.segments)
            assert all(("sig=" in s.uri) == signed for s in media.segments)
            if flavour == "hls":
                assert media.segment_map and media.version == 6
                assert ("sig=" in media.segment_map[0].uri) == signed
            else:
                assert not media.segment_map and media.version == 3
            assert abs(sum(s.duration for s in media.segments) - 4.0) < 0.2
    raw = await client.get(f"/api/videos/{vid}/hls/master.m3u8",
                           headers={"Accept-Encoding": "identity", **alice.headers})
    assert "Content-Encoding" not in raw.headers
    scope = "private" if signed else "public"
    assert raw.headers["Cache-Control"] == f"{scope}, max-age=60"


async def test_processing_playlists_are_not_cached(client: TestClient, hls_tree: Tree) -> None:
    alice = await sign_up(client, "alice")
    vid = await add_video(client, alice, hls_tree, status="processing")
    resp = await client.get(f"/api/videos/{vid}/hls/master.m3u8",
                            headers={"Accept-Encoding": "gzip"})
    assert resp.headers["Cache-Control"] == "public, no-cache"
    assert resp.headers["Content-Encoding"] == "gzip"  # the client inflates it
    assert (await resp.read()).startswith(b"#EXTM3U")
    seg = await client.get(f"/api/videos/{vid}/hls/360p/seg_00000.m4s")
    assert seg.headers["Cache-Control"] == (
        "public, max-age=31536000, immutable, s-maxage=300")
    assert seg.headers["Content-Type"] == "video/mp4"
    assert seg.headers["ETag"].startswith('"')


async def test_ffprobe_reads_and_seeks_every_progressive_mp4(
    client: TestClient, hls_tree: Tree
) -> None:
    alice = await sign_up(client, "alice")
    vid = await add_video(client, alice, hls_tree)
    body = await (await client.get(f"/api/videos/{vid}")).json()
    progressive = body["streams"]["progressive"]
    assert {p["name"] for p in progressive} == {"360p", "240p"}
    for entry in progressive:
        target = url(client, entry["url"])
        code, out, err = await run("ffprobe", "-v", "error", "-show_entries",
                                   "format=duration:stream=codec_name,width,height",
                                   "-of", "json", target)
        assert code == 0, err
        info = json.loads(out)
        assert abs(float(info["format"]["duration"]) - 4.0) < 0.2
        assert {s["codec_name"] for s in info["streams"]} == {"h264", "aac"}
        assert info["streams"][0]["height"] == entry["height"]
        # Seek into the middle: reading starts at the keyframe opening the segment that
        # holds 2.5 s (segments start with IDR frames), not at 0.
        media = m3u8.load(str(hls_tree.root / "hls" / entry["name"] / "index.m3u8"))
        starts = [sum(s.duration for s in media.segments[:i])
                  for i in range(len(media.segments))]
        expected = max(t for t in starts if t <= 2.5)
        assert expected > 0.5
        code, out, err = await run("ffprobe", "-v", "error", "-read_intervals", "2.5%+0.2",
                                   "-select_streams", "v", "-show_entries",
                                   "frame=pts_time", "-of", "json", target)
        assert code == 0, err
        frames = json.loads(out)["frames"]
        assert frames and expected <= float(frames[0]["pts_time"]) <= expected + 0.2, frames[:2]
        code, _, err = await run("ffmpeg", "-v", "error", "-i", target, "-f", "null", "-")
        assert code == 0 and not err.strip(), err


async def test_concurrent_first_requests_remux_a_ts_segment_once(
    client: TestClient, hls_tree: Tree
) -> None:
    from server.keys import PLAYBACK

    alice = await sign_up(client, "alice")
    vid = await add_video(client, alice, hls_tree)
    path = f"/api/videos/{vid}/hls-ts/360p/seg_00001.ts"
    responses = await asyncio.gather(*[client.get(path) for _ in range(6)])
    bodies = {await r.read() for r in responses}
    assert [r.status for r in responses] == [200] * 6
    assert len(bodies) == 1 and next(iter(bodies))[0] == 0x47  # MPEG-TS sync byte
    assert responses[0].headers["Content-Type"] == "video/mp2t"
    assert client.app[PLAYBACK].ts.remuxes == 1
    again = await client.get(path, headers={"Range": "bytes=188-375"})
    assert again.status == 206 and (await again.read())[0] == 0x47
    assert client.app[PLAYBACK].ts.remuxes == 1


async def test_signed_in_viewer_gets_grants_minted_into_playlists(
    client: TestClient, hls_tree: Tree
) -> None:
    alice = await sign_up(client, "alice")
    vid = await add_video(client, alice, hls_tree, privacy="private")
    resp = await client.get(f"/api/videos/{vid}/hls/master.m3u8", headers=alice.headers)
    master = m3u8.loads(await resp.text())
    uri = master.playlists[0].uri
    assert "sig=" in uri
    media = await client.get(f"/api/videos/{vid}/hls/{uri}")  # no header: the grant
    assert media.status == 200
    segment = m3u8.loads(await media.text()).segments[0].uri
    rendition = uri.split("/")[0]
    assert (await client.get(f"/api/videos/{vid}/hls/{rendition}/{segment}")).status == 200


async def test_playlist_validators_and_head(client: TestClient, hls_tree: Tree) -> None:
    alice = await sign_up(client, "alice")
    vid = await add_video(client, alice, hls_tree)
    url = f"/api/videos/{vid}/hls-ts/360p/index.m3u8"
    plain = await client.get(url, headers={"Accept-Encoding": "identity"})
    zipped = await client.get(url, headers={"Accept-Encoding": "gzip"})
    assert plain.headers["ETag"] != zipped.headers["ETag"]
    assert plain.headers["Vary"] == "Accept-Encoding"
    body = await plain.read()
    again = await client.get(url, headers={"If-None-Match": plain.headers["ETag"],
                                           "Accept-Encoding": "identity"})
    assert again.status == 304
    head = await client.head(url, headers={"Accept-Encoding": "identity"})
    assert head.status == 200 and int(head.headers["Content-Length"]) == len(body)
    part = await client.get(url, headers={"Range": "bytes=0-6", "Accept-Encoding": "identity"})
    assert part.status == 206 and await part.read() == body[:7] == b"#EXTM3U"


async def test_iframe_playlists_point_at_one_keyframe_each(
    client: TestClient, hls_tree: Tree, tmp_path: Any
) -> None:
    """RFC 8216 4.3.4.3 and 4.3.3.6: every video variant has an I-frame playlist whose byte
    ranges (into the stored segments) each hold exactly one frame, a keyframe."""
    alice = await sign_up(client, "alice")
    vid = await add_video(client, alice, hls_tree, privacy="private")
    body = await (await client.get(f"/api/videos/{vid}", headers=alice.headers)).json()
    master = m3u8.loads(await (await client.get(body["streams"]["hls"])).text())
    variants = {p.uri.split("/")[0]: p for p in master.playlists if p.stream_info.resolution}
    assert set(variants) == {"360p", "240p"}
    assert all(p.stream_info.closed_captions == "NONE" for p in master.playlists)
    assert {p.uri.split("/")[0] for p in master.iframe_playlists} == set(variants)
    base = f"/api/videos/{vid}/hls/"
    for iframe in master.iframe_playlists:
        info = iframe.iframe_stream_info
        assert info.bandwidth > 0 and info.average_bandwidth > 0
        assert info.codecs.startswith("avc1") and "mp4a" not in info.codecs
        name = iframe.uri.split("/")[0]
        assert info.resolution == variants[name].stream_info.resolution
        assert "sig=" in iframe.uri  # a private video's grant reaches it too
        text = await (await client.get(base + iframe.uri)).text()
        playlist = m3u8.loads(text)
        assert playlist.is_i_frames_only and playlist.version == 5 and playlist.is_endlist
        init = await (await client.get(base + name + "/" + playlist.segment_map[0].uri)).read()
        assert playlist.segments
        for n, entry in enumerate(playlist.segments):
            length, offset = entry.byterange.split("@")
            first, last = int(offset), int(offset) + int(length) - 1
            resp = await client.get(base + name + "/" + entry.uri,
                                    headers={"Range": f"bytes={first}-{last}"})
            assert resp.status == 206
            sample = tmp_path / f"{name}-{n}.mp4"
            sample.write_bytes(init + await resp.read())
            code, out, err = await run(
                "ffprobe", "-v", "error", "-select_streams", "v", "-show_entries",
                "frame=key_frame,pict_type", "-of", "json", str(sample))
            assert code == 0, err
            frames = json.loads(out)["frames"]
            assert [(f["key_frame"], f["pict_type"]) for f in frames] == [(1, "I")], frames
        total = sum(e.duration for e in playlist.segments)
        assert abs(total - 4.0) < 0.2
