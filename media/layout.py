"""The names of every file in a video's directory, for the writers in media/ and the
readers in server/ alike.

    original                       the uploaded file
    hls/master.m3u8                the master playlist (RFC 8216 section 4.3.4)
    hls/<rendition>/index.m3u8     a media playlist
    hls/<rendition>/iframes.m3u8   its I-frame playlist (byte ranges of its segments)
    hls/<rendition>/init.mp4       its fMP4 initialisation segment (EXT-X-MAP)
    hls/<rendition>/seg_NNNNN.m4s  its media segments
    hls/.<rendition>.partial/      a rendition being written, renamed into place when done;
                                   its segments are whole (each renamed into place when
                                   complete), so a run that was stopped resumes from them
    ts/<rendition>/seg_NNNNN.ts    MPEG-TS remuxes of the segments, made on demand (served
                                   under hls-ts/; hls-ts/ on disk holds remuxes made before
                                   their continuity counters ran on, never served again)
    poster.jpg                     the poster frame
    storyboard/storyboard.vtt      the seek-preview index, with storyboard/sprite_NNN.jpg
    .storyboard.partial/           a storyboard being written, with its tiles so far
                                   (tile_NNNNN.jpg) until the sprites are made from them
    .<name>.tmp                    any file being written, renamed to <name> when whole
    g<N>/                          generation N of the outputs above (hls/, ts/,
                                   poster.jpg, storyboard/), made when the video is
                                   processed again: new names, so no cache, however long
                                   it keeps a file, ever serves an old file for a new one.
                                   Generation 0 is the video's directory itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ORIGINAL = "original"
HLS = "hls"
TS_REMUXES = "ts"
OLD_TS_REMUXES = "hls-ts"
MASTER = "master.m3u8"
MEDIA_PLAYLIST = "index.m3u8"
IFRAME_PLAYLIST = "iframes.m3u8"
INIT = "init.mp4"
POSTER = "poster.jpg"
STORYBOARD = "storyboard"
STORYBOARD_INDEX = "storyboard.vtt"

RENDITION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
SEGMENT_NAME = re.compile(r"^seg_(\d{5})\.m4s$")
FMP4_FILE = re.compile(r"^(init\.mp4|seg_\d{5}\.m4s)$")
TS_SEGMENT_NAME = re.compile(r"^seg_(\d{5})\.ts$")
STORYBOARD_FILE = re.compile(r"^[A-Za-z0-9_-]{1,60}\.(jpg|vtt)$")
TEMPORARY_NAME = re.compile(r"^\..+\.tmp$")
PARTIAL_NAME = re.compile(r"^\..+\.partial$")


def segment_name(index: int) -> str:
    return f"seg_{index:05d}.m4s"


def ts_segment_name(index: int) -> str:
    return f"seg_{index:05d}.ts"


def sprite_name(index: int) -> str:
    return f"sprite_{index:03d}.jpg"


def tile_name(index: int) -> str:
    return f"tile_{index:05d}.jpg"


def temporary(path: Path) -> Path:
    """Where `path` is written before it is renamed into place (os.replace)."""
    return path.with_name(f".{path.name}.tmp")


@dataclass(frozen=True)
class VideoLayout:
    """One video's directory and one generation of its outputs (0: the first). Names are
    checked by the patterns above before they get here."""

    root: Path
    generation: int = 0

    @property
    def original(self) -> Path:
        return self.root / ORIGINAL

    @property
    def out(self) -> Path:
        """Where this generation's outputs are."""
        return self.root / f"g{self.generation}" if self.generation else self.root

    def of_generation(self, generation: int) -> VideoLayout:
        return VideoLayout(self.root, generation)

    def outputs(self) -> list[Path]:
        """Every file and folder this generation's runs write (the original excepted)."""
        if self.generation:
            return [self.out]
        names = (HLS, TS_REMUXES, OLD_TS_REMUXES, POSTER, STORYBOARD,
                 f".{STORYBOARD}.partial")
        found = [self.out / name for name in names]
        if self.out.is_dir():
            found += [p for p in self.out.iterdir() if TEMPORARY_NAME.match(p.name)]
        return found

    @property
    def hls(self) -> Path:
        return self.out / HLS

    @property
    def master(self) -> Path:
        return self.hls / MASTER

    def rendition(self, name: str) -> Path:
        return self.hls / name

    def rendition_partial(self, name: str) -> Path:
        return self.hls / f".{name}.partial"

    def media_playlist(self, name: str) -> Path:
        return self.rendition(name) / MEDIA_PLAYLIST

    def init(self, name: str) -> Path:
        return self.rendition(name) / INIT

    def segment(self, name: str, index: int) -> Path:
        return self.rendition(name) / segment_name(index)

    def ts_segment(self, name: str, index: int) -> Path:
        return self.out / TS_REMUXES / name / ts_segment_name(index)

    @property
    def poster(self) -> Path:
        return self.out / POSTER

    @property
    def storyboard(self) -> Path:
        return self.out / STORYBOARD

    @property
    def storyboard_partial(self) -> Path:
        return self.out / f".{STORYBOARD}.partial"

    @property
    def storyboard_index(self) -> Path:
        return self.storyboard / STORYBOARD_INDEX

    def tile(self, index: int) -> Path:
        return self.storyboard_partial / tile_name(index)

    def unfinished(self) -> list[Path]:
        """What a run writes but has not finished: partial renditions and storyboard, and
        temporary files. Finished renditions, playlists, the poster and the original are not."""
        found: list[Path] = []
        for directory in (self.out, self.hls):
            if not directory.is_dir():
                continue
            for path in directory.iterdir():
                if PARTIAL_NAME.match(path.name) or TEMPORARY_NAME.match(path.name):
                    found.append(path)
                elif directory == self.hls and path.is_dir():
                    found += [p for p in path.iterdir() if TEMPORARY_NAME.match(p.name)]
        return found
