from __future__ import annotations

import av

from media.frames import RungFrames, SdrConverter, rate_fraction


def _pq_gray(code: int) -> av.VideoFrame:
    frame = av.VideoFrame(64, 64, "yuv420p10le")
    frame.planes[0].update(code.to_bytes(2, "little") * (frame.planes[0].buffer_size // 2))
    for plane in frame.planes[1:]:
        plane.update((512).to_bytes(2, "little") * (plane.buffer_size // 2))
    frame.color_trc, frame.color_primaries, frame.colorspace, frame.color_range = 16, 9, 9, 1
    return frame


def test_pq_reference_white_becomes_sdr_white() -> None:
    # PQ code 584 (10-bit, limited) is 203 cd/m2, the BT.2408 HDR reference white.
    hdr, sdr = SdrConverter(True), SdrConverter(False)
    assert bytes(hdr(_pq_gray(584), 32, 32).planes[0])[0] >= 230
    # 100 cd/m2 sits near 75% of SDR, not at half as a plain matrix conversion leaves it.
    assert 170 <= bytes(hdr(_pq_gray(509), 32, 32).planes[0])[0] <= 185
    assert bytes(sdr(_pq_gray(509), 32, 32).planes[0])[0] < 135


def _run(
    times: list[float], fps: float, end: float, boundaries: tuple[float, ...] = (0.0,)
) -> list[tuple[int, int, int]]:
    out: list[tuple[int, int, int]] = []
    source: dict[int, int] = {}

    def encode(frame: av.VideoFrame) -> None:
        out.append((frame.pts, source[id(frame)], int(frame.pict_type)))

    rung = RungFrames(32, 32, fps, boundaries, encode)
    original = rung._emit

    def emit() -> None:
        assert rung.prev is not None
        if rung.scaled is None:
            rung.scaled = rung.prev.reformat(width=32, height=32, format="yuv420p")
            source[id(rung.scaled)] = rung.prev.pts or 0
        original()

    rung._emit = emit  # type: ignore[method-assign]
    for n, t in enumerate(times):
        frame = av.VideoFrame(32, 32, "yuv420p")
        frame.pts = n
        rung.feed(frame, t)
    rung.finish(end)
    return out


def test_cfr_repeats_and_drops_by_timestamp() -> None:
    # Irregular source (0, 20, 70, 103, 143 ms) to 30 fps: nearest earlier frame per slot.
    out = _run([0.0, 0.020, 0.070, 0.103, 0.143], 30.0, 0.166)
    assert [pts for pts, _, _ in out] == [0, 1, 2, 3, 4]
    assert [src for _, src, _ in out] == [0, 1, 2, 3, 4]
    # 60 fps to 30 fps keeps every other frame.
    out = _run([n / 60 for n in range(12)], 30.0, 0.2)
    assert [src for _, src, _ in out] == [0, 2, 4, 6, 8, 10]


def test_forced_idr_at_boundaries() -> None:
    out = _run([n / 30 for n in range(90)], 30.0, 3.0, (0.0, 1.0, 2.0))
    idr = [pts for pts, _, kind in out if kind == int(av.video.frame.PictureType.I)]
    assert idr == [0, 30, 60]
    assert rate_fraction(29.97).denominator == 1001
