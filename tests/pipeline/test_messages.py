"""Every message a worker sends arrives equal through a multiprocessing pipe."""

from __future__ import annotations

import multiprocessing
import typing

from media.hls import RenditionInfo
from server.workers import messages

SAMPLES: list[messages.Message] = [
    messages.Started(4242),
    messages.Probed(12.5, 640, 360, ("360p", "240p", "audio"), "video/mp4"),
    messages.Progress(37.5, {"360p": 30.0, "240p": 45.0}),
    messages.RenditionDone(RenditionInfo(
        name="360p", kind="video", width=640, height=360, frame_rate=30.0,
        codecs="avc1.64001e,mp4a.40.2", bandwidth=900_000, average_bandwidth=700_000,
        segments=3, duration=12.5, target_duration=6, playlist="hls/360p/index.m3u8")),
    messages.Done({"probe": 0.1, "transcode": 4.2}, 7.25),
    messages.MediaRejected("no decodable audio or video stream"),
    messages.Cancelled(),
    messages.OutOfSpace("the disk is full (No space left on device)"),
    messages.Failed("OSError: disk full"),
]


def test_every_message_crosses_a_pipe() -> None:
    assert {type(sample) for sample in SAMPLES} == set(typing.get_args(messages.Message))
    reader, writer = multiprocessing.Pipe(duplex=False)
    with reader, writer:
        for sample in SAMPLES:
            writer.send(sample)
            assert reader.recv() == sample
