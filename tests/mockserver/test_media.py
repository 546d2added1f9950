"""Tests for synthetic media rendering, the media cache and upload inspection (mockserver.media)."""

from __future__ import annotations

import io
import json
import shutil
import struct
import subprocess
import sys
import threading
import zlib
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

import av
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from mockserver.core.errors import InvalidFormatError, ValueOutOfRangeError
from mockserver.media import (
    _LOOP_FRAMES,
    VIDEO_FPS,
    VIDEO_FRAME_SIZES,
    ImageInfo,
    MediaCache,
    _plane_window,
    inspect_image,
    render_mp4,
    render_png,
    video_frame_size,
)

# Hypothesis must not write a database into the project tree; no deadline keeps CI runs stable.
HYPOTHESIS = settings(database=None, deadline=None)


class Probe(NamedTuple):
    codec: str
    width: int
    height: int
    pix_fmt: str | None
    fps: Fraction | None
    frames: int
    duration: float


def _probe(data: bytes) -> Probe:
    """What a player learns from the MP4's metadata (read before the container is closed)."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        assert stream.duration is not None
        assert stream.time_base is not None
        context = stream.codec_context
        return Probe(
            codec=context.name,
            width=stream.width,
            height=stream.height,
            pix_fmt=context.pix_fmt,
            fps=stream.average_rate,
            frames=stream.frames,
            duration=float(stream.duration * stream.time_base),
        )


def _decoded_frames(data: bytes) -> list[tuple[int, int, bytes]]:
    """(width, height, luma plane) of every decoded frame."""
    with av.open(io.BytesIO(data), mode="r") as container:
        return [(frame.width, frame.height, bytes(frame.planes[0])) for frame in container.decode(video=0)]


def _encode(image: Image.Image, image_format: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format)
    return buffer.getvalue()


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG signature and an IHDR claiming a size, then nothing: the file ends before any chunk follows."""
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))


def _png_bomb(width: int, height: int) -> bytes:
    """A well-formed PNG claiming a huge size over a few bytes of pixel data (a decompression-bomb header)."""
    return _png_header_only(width, height) + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _png_chunk(b"IEND", b"")


# --- PNG -------------------------------------------------------------------------------------------


def test_render_png_has_exact_size() -> None:
    data = render_png(640, 360, seed=7, prompt="a lighthouse")
    with Image.open(io.BytesIO(data)) as image:
        assert (image.format, image.size) == ("PNG", (640, 360))


def test_render_png_1024_square_is_a_small_palette_png() -> None:
    data = render_png(1024, 1024, seed=3, prompt="a lighthouse")
    with Image.open(io.BytesIO(data)) as image:
        assert (image.format, image.mode, image.size) == ("PNG", "P", (1024, 1024))
        image.load()
        assert 16 < len(image.getcolors(256) or []) <= 256  # colourful, not a flat fill
    assert len(data) < 200_000


def test_render_png_is_deterministic() -> None:
    assert render_png(320, 200, seed=1, prompt="cat") == render_png(320, 200, seed=1, prompt="cat")


def test_render_png_differs_by_seed_and_prompt() -> None:
    base = render_png(256, 256, seed=1, prompt="cat")
    assert render_png(256, 256, seed=2, prompt="cat") != base
    assert render_png(256, 256, seed=1, prompt="dog") != base


def test_render_png_rejects_size_out_of_range() -> None:
    with pytest.raises(ValueError, match="outside"):
        render_png(4097, 16, seed=0, prompt="")
    with pytest.raises(ValueError, match="outside"):
        render_png(0, 16, seed=0, prompt="")


@settings(HYPOTHESIS, max_examples=8)
@given(
    width=st.integers(1024 // 32, 4096 // 32).map(lambda n: n * 32),
    height=st.integers(1024 // 32, 4096 // 32).map(lambda n: n * 32),
    seed=st.integers(0, 2**31 - 1),
)
def test_render_png_property_exact_size_for_large_sizes(width: int, height: int, seed: int) -> None:
    with Image.open(io.BytesIO(render_png(width, height, seed=seed, prompt="p"))) as image:
        assert image.size == (width, height)


# --- MP4 -------------------------------------------------------------------------------------------


def test_render_mp4_probes_as_h264_with_exact_frames() -> None:
    width, height = VIDEO_FRAME_SIZES["480p"]["16:9"]
    probe = _probe(render_mp4(width, height, duration_s=2, seed=3, prompt="waves"))
    assert probe.codec == "h264"
    assert (probe.width, probe.height) == (864, 480)
    assert probe.pix_fmt == "yuv420p"
    assert probe.fps == VIDEO_FPS
    assert probe.frames == 2 * VIDEO_FPS
    assert probe.duration == pytest.approx(2.0, abs=1 / VIDEO_FPS)


def test_render_mp4_decodes_every_frame_and_moves() -> None:
    frames = _decoded_frames(render_mp4(160, 96, duration_s=1, seed=3, prompt="waves"))
    assert len(frames) == VIDEO_FPS
    assert {(width, height) for width, height, _ in frames} == {(160, 96)}
    assert frames[0][2] != frames[-1][2]  # the picture pans


def test_plane_window_relays_rows_to_another_line_size() -> None:
    # Rows of 3 pixels stored with line size 4 (one pad byte), re-laid with line size 5.
    data = b"abc_def_ghi_"
    assert bytes(_plane_window(data, 4, 4, 1, 2)) == b"def_ghi_"
    assert bytes(_plane_window(data, 4, 5, 1, 2)) == b"def_\x00ghi_\x00"
    assert bytes(_plane_window(data, 4, 3, 0, 2)) == b"abcdef"


def test_render_mp4_is_streamable() -> None:
    data = render_mp4(160, 96, duration_s=1, seed=0, prompt="")
    # +faststart puts the index (moov) before the media data (mdat), so playback can start at once.
    assert 0 < data.index(b"moov") < data.index(b"mdat")


def test_render_mp4_is_byte_identical_for_same_inputs() -> None:
    first = render_mp4(160, 96, duration_s=1, seed=5, prompt="same")
    assert render_mp4(160, 96, duration_s=1, seed=5, prompt="same") == first
    assert render_mp4(160, 96, duration_s=1, seed=6, prompt="same") != first


def test_render_mp4_honours_fps_argument() -> None:
    probe = _probe(render_mp4(160, 96, duration_s=2, fps=12, seed=0, prompt=""))
    assert probe.frames == 24
    assert probe.fps == 12
    assert probe.duration == pytest.approx(2.0, abs=1 / 12)


def test_render_mp4_rejects_odd_size_and_zero_duration() -> None:
    with pytest.raises(ValueError, match="even"):
        render_mp4(161, 96, duration_s=1, seed=0, prompt="")
    with pytest.raises(ValueError, match="duration_s"):
        render_mp4(160, 96, duration_s=0, seed=0, prompt="")


def test_render_mp4_720p_5s_probes_as_5s_at_1248x704() -> None:
    """The product's acceptance scenario."""
    width, height = video_frame_size("720p", "16:9")
    probe = _probe(render_mp4(width, height, duration_s=5, seed=11, prompt="a city at dusk"))
    assert (probe.width, probe.height) == (1248, 704)
    assert probe.frames == 120
    assert probe.duration == pytest.approx(5.0, abs=1 / VIDEO_FPS)


def test_render_mp4_1080p_12s_probes_exactly() -> None:
    width, height = video_frame_size("1080p", "16:9")
    probe = _probe(render_mp4(width, height, duration_s=12, seed=11, prompt="a city at dusk"))
    assert (probe.width, probe.height, probe.frames) == (1920, 1088, 288)
    assert probe.duration == pytest.approx(12.0, abs=1 / VIDEO_FPS)


@pytest.mark.parametrize(
    ("resolution", "ratio"), [(res, ratio) for res in VIDEO_FRAME_SIZES for ratio in VIDEO_FRAME_SIZES[res]]
)
def test_render_mp4_every_seedance_size_decodes_at_its_frame_size(resolution: str, ratio: str) -> None:
    width, height = video_frame_size(resolution, ratio)
    frames = _decoded_frames(render_mp4(width, height, duration_s=1, seed=2, prompt=ratio))
    assert len(frames) == VIDEO_FPS
    assert {(w, h) for w, h, _ in frames} == {(width, height)}


def test_render_mp4_repeats_one_encoded_loop_with_a_keyframe_each() -> None:
    data = render_mp4(160, 96, duration_s=2, seed=4, prompt="loop")
    with av.open(io.BytesIO(data)) as container:
        packets = [packet for packet in container.demux(video=0) if packet.size]
    assert len(packets) == 2 * VIDEO_FPS
    assert [index for index, packet in enumerate(packets) if packet.is_keyframe] == list(range(0, 48, _LOOP_FRAMES))
    assert [packet.pts for packet in packets] == sorted({packet.pts for packet in packets})  # re-timed, in order
    assert all(bytes(packets[i]) == bytes(packets[i % _LOOP_FRAMES]) for i in range(len(packets)))
    luma = [plane for _, _, plane in _decoded_frames(data)]
    assert luma[_LOOP_FRAMES : 2 * _LOOP_FRAMES] == luma[:_LOOP_FRAMES]
    assert len(set(luma[: _LOOP_FRAMES // 2 + 1])) == _LOOP_FRAMES // 2 + 1  # pans down, one new picture a frame


def test_render_mp4_shorter_than_one_loop_has_its_exact_frames() -> None:
    probe = _probe(render_mp4(160, 96, duration_s=1, fps=5, seed=0, prompt=""))
    assert (probe.frames, probe.fps) == (5, 5)
    assert probe.duration == pytest.approx(1.0, abs=1 / 5)


@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="ffprobe (Debian: ffmpeg) is not installed")
def test_render_mp4_1080p_12s_ffprobe_counts_every_frame(tmp_path: Path) -> None:
    path = tmp_path / "video.mp4"
    path.write_bytes(render_mp4(1920, 1088, duration_s=12, seed=11, prompt="a city at dusk"))
    entries = "stream=codec_name,width,height,pix_fmt,avg_frame_rate,nb_read_frames,duration"
    command = ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries", entries]
    out = subprocess.run([*command, "-of", "json", str(path)], capture_output=True, text=True, check=True)
    assert out.stderr == ""  # no decoder complaint
    stream = json.loads(out.stdout)["streams"][0]
    assert (stream["codec_name"], stream["width"], stream["height"], stream["pix_fmt"]) == (
        "h264",
        1920,
        1088,
        "yuv420p",
    )
    assert (stream["avg_frame_rate"], stream["nb_read_frames"], float(stream["duration"])) == ("24/1", "288", 12.0)


# --- frame-size table ------------------------------------------------------------------------------


EXPECTED_FRAME_SIZES = {
    ("480p", "16:9"): (864, 480),
    ("480p", "4:3"): (736, 544),
    ("480p", "1:1"): (640, 640),
    ("480p", "3:4"): (544, 736),
    ("480p", "9:16"): (480, 864),
    ("480p", "21:9"): (960, 416),
    ("720p", "16:9"): (1248, 704),
    ("720p", "4:3"): (1120, 832),
    ("720p", "1:1"): (960, 960),
    ("720p", "3:4"): (832, 1120),
    ("720p", "9:16"): (704, 1248),
    ("720p", "21:9"): (1504, 640),
    ("1080p", "16:9"): (1920, 1088),
    ("1080p", "4:3"): (1664, 1248),
    ("1080p", "1:1"): (1440, 1440),
    ("1080p", "3:4"): (1248, 1664),
    ("1080p", "9:16"): (1088, 1920),
    ("1080p", "21:9"): (2176, 928),
}


def test_video_frame_sizes_match_the_documented_table() -> None:
    table = {(res, ratio): size for res, ratios in VIDEO_FRAME_SIZES.items() for ratio, size in ratios.items()}
    assert table == EXPECTED_FRAME_SIZES
    assert all(video_frame_size(res, ratio) == size for (res, ratio), size in EXPECTED_FRAME_SIZES.items())


@pytest.mark.parametrize(("key", "size"), EXPECTED_FRAME_SIZES.items(), ids=lambda value: str(value))
def test_video_frame_sizes_are_macroblock_aligned_and_match_ratio(key: tuple[str, str], size: tuple[int, int]) -> None:
    width, height = size
    ratio_w, ratio_h = (int(part) for part in key[1].split(":"))
    assert width % 16 == 0
    assert height % 16 == 0
    assert width / height == pytest.approx(ratio_w / ratio_h, rel=0.05)


def test_video_frame_size_unknown_pair_raises_key_error() -> None:
    with pytest.raises(KeyError):
        video_frame_size("4k", "16:9")


# --- MediaCache ------------------------------------------------------------------------------------


@pytest.fixture
def cache(tmp_path: Path) -> MediaCache:
    return MediaCache(tmp_path / "media")


def test_media_cache_second_image_call_is_a_hit(cache: MediaCache) -> None:
    first = cache.image(width=64, height=48, seed=1, prompt="a")
    second = cache.image(width=64, height=48, seed=1, prompt="a")
    assert first == second
    assert (cache.renders, cache.hits) == (1, 1)
    assert first.read_bytes() == render_png(64, 48, seed=1, prompt="a")


def test_media_cache_distinct_inputs_get_distinct_files(cache: MediaCache) -> None:
    paths = {
        cache.image(width=64, height=48, seed=1, prompt="a"),
        cache.image(width=64, height=48, seed=2, prompt="a"),
        cache.image(width=64, height=48, seed=1, prompt="b"),
        cache.image(width=48, height=64, seed=1, prompt="a"),
    }
    assert len(paths) == 4
    assert all(path.is_file() for path in paths)
    assert (cache.renders, cache.hits) == (4, 0)


def test_media_cache_video_is_rendered_once(cache: MediaCache) -> None:
    first = cache.video(width=160, height=96, duration_s=1, seed=1, prompt="v")
    second = cache.video(width=160, height=96, duration_s=1, seed=1, prompt="v")
    assert first == second
    assert first.suffix == ".mp4"
    assert (cache.renders, cache.hits) == (1, 1)
    probe = _probe(first.read_bytes())
    assert (probe.width, probe.height, probe.frames) == (160, 96, VIDEO_FPS)


def test_media_cache_leaves_no_partial_files(cache: MediaCache) -> None:
    cache.image(width=64, height=48, seed=1, prompt="a")
    cache.video(width=160, height=96, duration_s=1, seed=1, prompt="v")
    assert sorted(path.suffix for path in cache.directory.iterdir()) == [".mp4", ".png"]


def test_media_cache_evicts_least_recently_used(tmp_path: Path) -> None:
    sizes = {prompt: len(render_png(64, 48, seed=0, prompt=prompt)) for prompt in "abc"}
    # Room for any two of the three files, not for all three.
    cache = MediaCache(tmp_path, max_bytes=sum(sizes.values()) - 1)
    path_a = cache.image(width=64, height=48, seed=0, prompt="a")
    path_b = cache.image(width=64, height=48, seed=0, prompt="b")
    cache.image(width=64, height=48, seed=0, prompt="a")  # a is now more recent than b
    path_c = cache.image(width=64, height=48, seed=0, prompt="c")
    assert (path_a.exists(), path_b.exists(), path_c.exists()) == (True, False, True)
    cache.image(width=64, height=48, seed=0, prompt="b")  # evicted, so rendered again
    assert (cache.renders, cache.hits) == (4, 1)


def test_media_cache_keeps_newest_file_even_over_budget(tmp_path: Path) -> None:
    cache = MediaCache(tmp_path, max_bytes=1)
    first = cache.image(width=64, height=48, seed=0, prompt="a")
    second = cache.image(width=64, height=48, seed=0, prompt="b")
    assert (first.exists(), second.exists()) == (False, True)


def test_media_cache_rerenders_file_deleted_behind_its_back(cache: MediaCache) -> None:
    path = cache.image(width=64, height=48, seed=0, prompt="a")
    path.unlink()
    assert cache.image(width=64, height=48, seed=0, prompt="a").is_file()
    assert (cache.renders, cache.hits) == (2, 0)


def test_media_cache_concurrent_calls_render_once(cache: MediaCache) -> None:
    workers = 8
    barrier = threading.Barrier(workers)
    results: list[Path] = []

    def fetch() -> None:
        barrier.wait()
        results.append(cache.video(width=160, height=96, duration_s=1, seed=9, prompt="race"))

    threads = [threading.Thread(target=fetch) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == workers
    assert len(set(results)) == 1
    assert (cache.renders, cache.hits) == (1, workers - 1)


def test_media_cache_close_removes_private_directory() -> None:
    cache = MediaCache()
    path = cache.image(width=32, height=32, seed=0, prompt="")
    assert path.is_file()
    cache.close()
    assert not cache.directory.exists()


# An app built and never shut down (a test's create_app() without its lifespan), or a process that exits
# without closing: the cache's own directory goes with the process, a given one stays.
LEFT_OPEN = """
import sys
from pathlib import Path
from mockserver.app import create_app
from mockserver.media import MediaCache
from mockserver.settings import Settings
app = create_app(Settings())
given = MediaCache(Path(sys.argv[1]))
given.image(width=16, height=16, seed=1, prompt="kept")
kept_open = MediaCache()
kept_open.image(width=16, height=16, seed=2, prompt="open")
dropped = MediaCache()
dropped.image(width=16, height=16, seed=3, prompt="dropped")
dropped_dir = dropped.directory
del dropped
assert not dropped_dir.exists(), "collected without close()"
print(app.state.emulator.media.directory)
print(kept_open.directory)
"""


def test_media_directories_left_open_go_with_the_process(tmp_path: Path) -> None:
    given = tmp_path / "given"
    done = subprocess.run(
        [sys.executable, "-c", LEFT_OPEN, str(given)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    made = [Path(line) for line in done.stdout.split()]
    assert len(made) == 2
    assert all(path.name.startswith("aurous-mock-media-") for path in made)
    assert [path for path in made if path.exists()] == []
    assert len(list(given.glob("*.png"))) == 1  # a directory the caller gave is the caller's


FORKED = """
import os, sys
from mockserver.media import MediaCache
cache = MediaCache()
cache.image(width=16, height=16, seed=0, prompt="")
if os.fork() == 0:
    sys.exit(0)  # the child ends as a process does, its exit handlers (and the cache's finalizer) run
os.wait()
print(len(list(cache.directory.glob("*.png"))))
"""


def test_a_forked_child_leaves_its_parents_media_directory_alone() -> None:
    done = subprocess.run([sys.executable, "-c", FORKED], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1"]


def test_media_cache_close_keeps_given_directory(tmp_path: Path) -> None:
    with MediaCache(tmp_path) as cache:
        path = cache.image(width=32, height=32, seed=0, prompt="")
    assert path.is_file()


# --- inspect_image ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image_format", "mime_type"), [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp")]
)
def test_inspect_image_accepts_png_jpeg_webp(image_format: str, mime_type: str) -> None:
    data = _encode(Image.new("RGB", (120, 80), (200, 30, 90)), image_format)
    assert inspect_image(data) == ImageInfo(mime_type=mime_type, width=120, height=80)


def test_inspect_image_accepts_max_side() -> None:
    data = _encode(Image.new("L", (4096, 1)), "PNG")
    assert inspect_image(data) == ImageInfo(mime_type="image/png", width=4096, height=1)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(_encode(Image.new("RGB", (8, 8)), "GIF"), id="gif"),
        pytest.param(_encode(Image.new("RGB", (8, 8)), "BMP"), id="bmp"),
        pytest.param(_encode(Image.new("RGB", (8, 8)), "TIFF"), id="tiff"),
        pytest.param(b"definitely not an image", id="garbage"),
        pytest.param(b"", id="empty"),
        pytest.param(_encode(Image.new("RGB", (64, 64)), "PNG")[:-30], id="truncated-png"),
        pytest.param(_encode(Image.effect_noise((64, 64), 50).convert("RGB"), "JPEG")[:-200], id="truncated-jpeg"),
        pytest.param(_png_header_only(16, 16), id="png-header-without-data"),
    ],
)
def test_inspect_image_rejects_other_formats_and_garbage(data: bytes) -> None:
    with pytest.raises(InvalidFormatError) as caught:
        inspect_image(data, param="image")
    assert caught.value.code == "invalid_format"
    assert caught.value.param == "image"
    assert "PNG, JPEG or WebP" in caught.value.detail


def test_inspect_image_rejects_more_than_10_mb() -> None:
    with pytest.raises(ValueOutOfRangeError) as caught:
        inspect_image(b"\x00" * (10 * 1024 * 1024 + 1))
    assert caught.value.code == "value_out_of_range"
    assert caught.value.param == "file"
    assert "10 MB" in caught.value.detail


@pytest.mark.parametrize("size", [(4097, 1), (1, 4097)])
def test_inspect_image_rejects_side_over_4096(size: tuple[int, int]) -> None:
    with pytest.raises(ValueOutOfRangeError) as caught:
        inspect_image(_encode(Image.new("L", size), "PNG"), param="image")
    assert caught.value.code == "value_out_of_range"
    assert caught.value.param == "image"
    assert "4096 px" in caught.value.detail


# 10000² is past Pillow's warning threshold (~89 Mpx), 100000² past its error threshold (~179 Mpx).
@pytest.mark.parametrize("side", [5000, 10_000, 100_000])
def test_inspect_image_rejects_decompression_bomb_header(side: int) -> None:
    with pytest.raises(ValueOutOfRangeError) as caught:
        inspect_image(_png_bomb(side, side))
    assert "4096 px" in caught.value.detail


_SIGNATURES = [b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"RIFF\x00\x00\x00\x00WEBPVP8 "]


@settings(HYPOTHESIS, max_examples=300)
@given(prefix=st.sampled_from(_SIGNATURES), body=st.binary(max_size=512))
def test_inspect_image_property_raises_only_domain_errors(prefix: bytes, body: bytes) -> None:
    try:
        info = inspect_image(prefix + body)
    except (InvalidFormatError, ValueOutOfRangeError):
        return  # the only two answers for a bad upload; anything else propagates and fails the test
    assert info.mime_type in {"image/png", "image/jpeg", "image/webp"}
