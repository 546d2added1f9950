"""Synthetic output media (PNG/MP4 rendering, Seedance frame sizes, on-disk cache) and uploaded-image inspection."""

from __future__ import annotations

import hashlib
import io
import os
import random
import shutil
import tempfile
import threading
import uuid
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from mockserver.core.errors import InvalidFormatError, ValueOutOfRangeError

if TYPE_CHECKING:
    import av
    from PIL import Image

# Pillow and PyAV are imported by the functions that use them, not here: together they were about 90 ms of the
# emulator's start-up (bench/README.md), and a run that never renders or inspects an image needs neither.

__all__ = [
    "MAX_RENDER_SIDE",
    "VIDEO_FPS",
    "VIDEO_FRAME_SIZES",
    "ImageInfo",
    "MediaCache",
    "inspect_image",
    "render_mp4",
    "render_png",
    "video_frame_size",
]

# Bump when the renderers change what they draw: it is part of every cache key, so a persistent
# cache directory never serves media produced by an older renderer.
RENDER_VERSION = "2"
MAX_RENDER_SIDE = 4096
VIDEO_FPS = 24

# Seedance output sizes (width, height) per resolution and aspect ratio, as the upstream documents them.
VIDEO_FRAME_SIZES: dict[str, dict[str, tuple[int, int]]] = {
    "480p": {
        "16:9": (864, 480),
        "4:3": (736, 544),
        "1:1": (640, 640),
        "3:4": (544, 736),
        "9:16": (480, 864),
        "21:9": (960, 416),
    },
    "720p": {
        "16:9": (1248, 704),
        "4:3": (1120, 832),
        "1:1": (960, 960),
        "3:4": (832, 1120),
        "9:16": (704, 1248),
        "21:9": (1504, 640),
    },
    "1080p": {
        "16:9": (1920, 1088),
        "4:3": (1664, 1248),
        "1:1": (1440, 1440),
        "3:4": (1248, 1664),
        "9:16": (1088, 1920),
        "21:9": (2176, 928),
    },
}


def video_frame_size(resolution: str, ratio: str) -> tuple[int, int]:
    """The (width, height) of a Seedance video; KeyError for a pair the table does not know."""
    return VIDEO_FRAME_SIZES[resolution][ratio]


# --- rendering -------------------------------------------------------------------------------------

# The picture is composed at this long side and then upscaled: composing at full size would cost
# seconds at 4096 px, while a blurred composition loses nothing visible when scaled up.
_SKETCH_SIDE = 256
# A PNG is the sketch reduced to an adaptive palette of this many colours and enlarged with nearest-neighbour
# sampling. Pillow does not filter palette rows (its adaptive filter choice for RGB was ~22 ms of a 1024² PNG
# by itself) and the repeated rows and runs leave zlib next to nothing to do: a 1024² PNG costs ~7 ms instead
# of ~40 ms of CPU (bench/media_first.py --options), at the price of 4-px blocks and some banding.
_PNG_COLOURS = 256
_PNG_COMPRESS_LEVEL = 1
# A video is one short loop encoded once, then its packets repeated (re-timed, never re-encoded) up to the
# requested duration: every loop starts with an IDR frame, so each repetition is a self-contained GOP any
# decoder accepts, and the encode costs the same for 1 s or 12 s. A 12 s 1080p clip costs ~0.08 s of CPU
# instead of ~2.9 s with every frame encoded; each frame more in the loop costs ~6 ms (bench/media_first.py).
_LOOP_FRAMES = 8
# Within a loop the picture pans down and back this many luma rows per frame (a triangle wave, so the loop's
# last frame leads smoothly into the next loop's first). Even, so chroma rows stay whole.
_PAN_ROWS_PER_FRAME = 4
# ultrafast + zerolatency is the cheapest x264 configuration (and has no B-frames, so decode order is
# presentation order and packets can be re-timed one by one); a high CRF keeps files small because nobody
# looks closely at emulator output. One thread makes the bitstream independent of the host's core count
# (byte-identical everywhere for one x264 build).
_X264_OPTIONS = {"preset": "ultrafast", "tune": "zerolatency", "crf": "32"}
_X264_THREADS = 1
# Pillow's YCbCr is full range (JPEG); H.264's default, and what players assume, is limited (studio) range.
_LUMA_RANGE = [16 + value * 219 // 255 for value in range(256)]
_CHROMA_RANGE = [16 + value * 224 // 255 for value in range(256)]


def _rng(seed: int, prompt: str) -> random.Random:
    """A generator seeded by a hash of the inputs, so any change to either gives a new picture."""
    digest = hashlib.sha256(f"{seed}\x00{prompt}".encode()).digest()
    return random.Random(int.from_bytes(digest, "big"))


def _colour(rng: random.Random) -> tuple[int, int, int]:
    return rng.randrange(256), rng.randrange(256), rng.randrange(256)


def _sketch(width: int, height: int, rng: random.Random) -> Image.Image:
    """A small, blurred composition (tilted three-colour gradient plus soft blobs) with the target's aspect."""
    from PIL import Image, ImageDraw, ImageFilter, ImageOps

    scale = _SKETCH_SIDE / max(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    # The centre crop of the rotated gradient stays inside the rotated square, so no black corners.
    gradient = Image.linear_gradient("L").rotate(rng.uniform(0, 360), resample=Image.Resampling.BILINEAR)
    gradient = ImageOps.fit(gradient.crop((48, 48, 208, 208)), size)
    image = ImageOps.colorize(gradient, _colour(rng), _colour(rng), mid=_colour(rng))
    draw = ImageDraw.Draw(image)
    long_side = max(size)
    for _ in range(rng.randint(4, 8)):
        x, y = rng.uniform(0, size[0]), rng.uniform(0, size[1])
        radius = rng.uniform(0.08, 0.3) * long_side
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=_colour(rng))
    # Blurred at a quarter of the size and enlarged again: the same softness as blurring in place, a third of the cost.
    small = image.resize((max(1, size[0] // 4), max(1, size[1] // 4)), Image.Resampling.BOX)
    return small.filter(ImageFilter.GaussianBlur(long_side / 96)).resize(size, Image.Resampling.BILINEAR)


def _check_size(width: int, height: int) -> None:
    # Programming errors, not request errors: the API layer validates sizes before rendering.
    if not (1 <= width <= MAX_RENDER_SIDE and 1 <= height <= MAX_RENDER_SIDE):
        raise ValueError(f"render size {width}x{height} is outside 1..{MAX_RENDER_SIDE} px")


def render_png(width: int, height: int, *, seed: int, prompt: str) -> bytes:
    """A PNG of exactly width x height, byte-identical for the same (size, seed, prompt)."""
    from PIL import Image

    _check_size(width, height)
    sketch = _sketch(width, height, _rng(seed, prompt))
    # Fast octree quantization is deterministic and ~1 ms on the sketch; it never dithers.
    palette = sketch.quantize(_PNG_COLOURS, method=Image.Quantize.FASTOCTREE)
    buffer = io.BytesIO()
    palette.resize((width, height), Image.Resampling.NEAREST).save(buffer, "PNG", compress_level=_PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


def _pan_offset(index: int, loop: int) -> int:
    """Luma row where frame ``index`` of a ``loop``-frame loop starts: down for half the loop, then back up."""
    position = index % loop
    return min(position, loop - position) * _PAN_ROWS_PER_FRAME


def _yuv_planes(width: int, height: int, *, seed: int, prompt: str) -> list[tuple[bytes, int]]:
    """The yuv420p planes (limited range) of a ``width`` x ``height`` canvas, each with its line size.

    Pillow converts the small sketch and enlarges each plane on its own, the chroma planes to half size:
    a third of the pixels an RGB enlargement plus a swscale conversion would touch.
    """
    from PIL import Image

    luma, blue, red = _sketch(width, height, _rng(seed, prompt)).convert("YCbCr").split()
    half = (width // 2, height // 2)
    planes = [
        luma.point(_LUMA_RANGE).resize((width, height), Image.Resampling.BILINEAR),
        blue.point(_CHROMA_RANGE).resize(half, Image.Resampling.BILINEAR),
        red.point(_CHROMA_RANGE).resize(half, Image.Resampling.BILINEAR),
    ]
    return [(plane.tobytes(), plane.width) for plane in planes]


def _plane_window(data: bytes, src_line: int, dst_line: int, first_row: int, rows: int) -> bytes | memoryview:
    """Rows [first_row, first_row + rows) of a plane, laid out with the destination's line size."""
    if src_line == dst_line:
        # Same layout (the usual case): one zero-copy slice instead of a copy per row.
        return memoryview(data)[first_row * src_line : (first_row + rows) * src_line]
    width = min(src_line, dst_line)
    pad = b"\x00" * (dst_line - width)
    return b"".join(data[row * src_line : row * src_line + width] + pad for row in range(first_row, first_row + rows))


def _fill_frame(frame: av.VideoFrame, source: list[tuple[bytes, int]], luma_row: int) -> None:
    """Copy the window starting at ``luma_row`` of the yuv420p canvas planes into ``frame``."""
    for index, (plane, (data, line)) in enumerate(zip(frame.planes, source, strict=True)):
        first_row = luma_row if index == 0 else luma_row // 2  # the chroma planes are half height
        # The stub says bytes, but any buffer works; copying each window to bytes costs ~0.4 s per 1080p clip.
        plane.update(_plane_window(data, line, plane.line_size, first_row, plane.height))  # type: ignore[arg-type]


def _encode_loop(
    stream: av.VideoStream, width: int, height: int, frames: int, *, seed: int, prompt: str
) -> list[bytes]:
    """The packets of one loop (its first an IDR frame): a frame-sized window panning over a taller canvas."""
    import av

    source = _yuv_planes(width, height + _PAN_ROWS_PER_FRAME * (frames // 2), seed=seed, prompt=prompt)
    # One frame object is refilled for every picture: libx264 copies its input during encode().
    frame = av.VideoFrame(width, height, "yuv420p")
    frame.time_base = stream.codec_context.time_base
    packets: list[bytes] = []
    for index in range(frames):
        _fill_frame(frame, source, _pan_offset(index, frames))
        frame.pts = index
        packets.extend(bytes(packet) for packet in stream.encode(frame))
    packets.extend(bytes(packet) for packet in stream.encode(None))
    return packets


def _encode_mp4(path: Path, width: int, height: int, *, duration_s: int, fps: int, seed: int, prompt: str) -> None:
    """Write the video to ``path``: one encoded loop, its packets repeated and re-timed up to the duration."""
    import av

    frames = duration_s * fps
    loop = min(_LOOP_FRAMES, frames)
    time_base = Fraction(1, fps)
    with av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = time_base
        stream.codec_context.thread_count = _X264_THREADS
        # keyint = the loop: x264 starts no second IDR inside it (scenecut never fires on a pan this smooth).
        stream.options = {**_X264_OPTIONS, "keyint": str(loop), "scenecut": "0"}
        packets = _encode_loop(stream, width, height, loop, seed=seed, prompt=prompt)
        if len(packets) != loop:  # x264 without B-frames emits one packet per frame
            raise RuntimeError(f"x264 returned {len(packets)} packets for a {loop}-frame loop")
        for index in range(frames):
            packet = av.Packet(packets[index % loop])
            packet.stream = stream
            packet.time_base = time_base
            packet.pts = packet.dts = index
            packet.duration = 1
            packet.is_keyframe = index % loop == 0
            container.mux(packet)


def _check_video(width: int, height: int, duration_s: int, fps: int) -> None:
    _check_size(width, height)
    if width % 2 or height % 2:
        raise ValueError(f"video size {width}x{height} must be even for yuv420p")
    if duration_s < 1 or fps < 1:
        raise ValueError(f"video needs duration_s >= 1 and fps >= 1, got {duration_s} s at {fps} fps")


def render_mp4(width: int, height: int, *, duration_s: int, fps: int = VIDEO_FPS, seed: int, prompt: str) -> bytes:
    """A streamable H.264 MP4 of exactly ``duration_s * fps`` frames, byte-identical for the same inputs."""
    _check_video(width, height, duration_s, fps)
    # +faststart rewrites the file to move the index in front, so the muxer needs a real file.
    with tempfile.TemporaryDirectory(prefix="aurous-mock-mp4-") as scratch:
        path = Path(scratch) / "video.mp4"
        _encode_mp4(path, width, height, duration_s=duration_s, fps=fps, seed=seed, prompt=prompt)
        return path.read_bytes()


# --- cache -----------------------------------------------------------------------------------------


def _cache_key(kind: str, **inputs: object) -> str:
    """A hash of everything that determines the rendered bytes (and of the renderer version)."""
    text = "\x00".join([RENDER_VERSION, kind, *(f"{name}={inputs[name]!r}" for name in sorted(inputs))])
    return hashlib.sha256(text.encode()).hexdigest()


def _remove_directory(directory: Path, owner_pid: int) -> None:
    """Delete a cache's own directory, in the process that made it (a forked child leaves its parent's alone)."""
    if os.getpid() == owner_pid:
        shutil.rmtree(directory, ignore_errors=True)


class MediaCache:
    """Renders each distinct output once and keeps it as a file, evicting least-recently-used files.

    ``renders`` counts files actually produced and ``hits`` the calls answered from disk. The
    returned paths are meant for ``FileResponse``; an eviction between lookup and serving is only
    possible when ``max_bytes`` is so small that the file was pushed out by newer renders.

    A directory the cache made itself is deleted by :meth:`close`, or else when the cache is collected or the
    interpreter exits: an app built and dropped without its lifespan (a test's ``create_app()``) leaves no
    ``aurous-mock-media-*`` behind in the temporary directory.
    """

    def __init__(self, directory: Path | None = None, *, max_bytes: int = 2 * 1024**3) -> None:
        owned = directory is None
        self.directory = Path(tempfile.mkdtemp(prefix="aurous-mock-media-")) if directory is None else directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self._remove = weakref.finalize(self, _remove_directory, self.directory, os.getpid()) if owned else None
        self.max_bytes = max_bytes
        self.renders = 0
        self.hits = 0
        self._lock = threading.Lock()  # guards everything below and the counters
        self._entries: OrderedDict[str, tuple[Path, int]] = OrderedDict()  # key -> (path, size), oldest first
        self._total_bytes = 0
        self._key_locks: dict[str, tuple[threading.Lock, int]] = {}  # key -> (lock, number of users)

    def image(self, *, width: int, height: int, seed: int, prompt: str) -> Path:
        """The PNG for these inputs, rendered on first use."""
        _check_size(width, height)
        key = _cache_key("png", width=width, height=height, seed=seed, prompt=prompt)

        def render(path: Path) -> None:
            path.write_bytes(render_png(width, height, seed=seed, prompt=prompt))

        return self._get(key, ".png", render)

    def video(self, *, width: int, height: int, duration_s: int, seed: int, prompt: str) -> Path:
        """The MP4 (at ``VIDEO_FPS``) for these inputs, rendered on first use."""
        _check_video(width, height, duration_s, VIDEO_FPS)
        key = _cache_key(
            "mp4", width=width, height=height, duration_s=duration_s, fps=VIDEO_FPS, seed=seed, prompt=prompt
        )

        def render(path: Path) -> None:
            _encode_mp4(path, width, height, duration_s=duration_s, fps=VIDEO_FPS, seed=seed, prompt=prompt)

        return self._get(key, ".mp4", render)

    def close(self) -> None:
        """Forget every entry; delete the directory if the cache created it (a given one is left alone)."""
        with self._lock:
            self._entries.clear()
            self._total_bytes = 0
        if self._remove is not None:
            self._remove()  # once: a finalizer that has run does nothing

    def __enter__(self) -> MediaCache:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def _get(self, key: str, suffix: str, render: Callable[[Path], None]) -> Path:
        # The per-key lock makes concurrent requests for one output wait for a single render, while
        # renders of different outputs proceed in parallel.
        with self._locked(key):
            cached = self._lookup(key)
            if cached is not None:
                return cached
            path = self.directory / f"{key}{suffix}"
            self._render_atomically(path, render)
            self._admit(key, path)
            return path

    @contextmanager
    def _locked(self, key: str) -> Iterator[None]:
        # Locks are reference-counted and dropped when unused, so the table does not grow with every
        # distinct prompt ever rendered.
        with self._lock:
            lock, users = self._key_locks.get(key, (threading.Lock(), 0))
            self._key_locks[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._lock:
                users = self._key_locks[key][1] - 1
                if users:
                    self._key_locks[key] = (lock, users)
                else:
                    del self._key_locks[key]

    def _lookup(self, key: str) -> Path | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            path, size = entry
            if not path.exists():
                # Deleted behind our back (e.g. a tmp cleaner): forget it and render again.
                del self._entries[key]
                self._total_bytes -= size
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return path

    def _render_atomically(self, path: Path, render: Callable[[Path], None]) -> None:
        # Readers only ever see complete files: render under a private name, then rename over.
        scratch = path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial")
        try:
            render(scratch)
            os.replace(scratch, path)
        finally:
            scratch.unlink(missing_ok=True)

    def _admit(self, key: str, path: Path) -> None:
        size = path.stat().st_size
        with self._lock:
            self.renders += 1
            self._entries[key] = (path, size)
            self._total_bytes += size
            # The newest entry is never evicted, even alone over budget: its caller is about to serve it.
            while self._total_bytes > self.max_bytes and len(self._entries) > 1:
                _, (old_path, old_size) = self._entries.popitem(last=False)
                self._total_bytes -= old_size
                old_path.unlink(missing_ok=True)


# --- uploaded images -------------------------------------------------------------------------------

# MPO is how Pillow reports a JPEG carrying extra (e.g. depth) pictures; it is still a JPEG file.
_ACCEPTED_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "MPO": "image/jpeg", "WEBP": "image/webp"}
_ACCEPTED_TEXT = "PNG, JPEG or WebP"


@dataclass(frozen=True)
class ImageInfo:
    """What an accepted upload is: its MIME type and pixel size."""

    mime_type: str
    width: int
    height: int


def inspect_image(
    data: bytes, *, param: str = "file", max_bytes: int = 10 * 1024 * 1024, max_side: int = 4096
) -> ImageInfo:
    """Validate an uploaded image (PNG, JPEG or WebP within the size limits) and describe it.

    Raises ``InvalidFormatError`` for empty, undecodable or other-format data and
    ``ValueOutOfRangeError`` for too many bytes or a side over ``max_side``; never a Pillow error.
    """
    if not data:
        raise InvalidFormatError(f"The {param} is empty; accepted formats are {_ACCEPTED_TEXT}.", param=param)
    if len(data) > max_bytes:
        raise ValueOutOfRangeError(
            f"The {param} is {len(data)} bytes; the limit is {_megabytes(max_bytes)} MB.", param=param
        )
    image_format, width, height = _identify(data, param=param, max_side=max_side)
    if max(width, height) > max_side:
        raise _too_large(param, max_side, f"{width}x{height} px")
    _decode_fully(data, param=param)
    return ImageInfo(mime_type=_ACCEPTED_FORMATS[image_format], width=width, height=height)


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):g}"


def _not_an_image(param: str) -> InvalidFormatError:
    return InvalidFormatError(f"The {param} is not a valid image; accepted formats are {_ACCEPTED_TEXT}.", param=param)


def _too_large(param: str, max_side: int, actual: str) -> ValueOutOfRangeError:
    return ValueOutOfRangeError(f"The {param} is {actual}; each side must be at most {max_side} px.", param=param)


def _identify(data: bytes, *, param: str, max_side: int) -> tuple[str, int, int]:
    """Format and size from the header, without decoding pixels."""
    from PIL import Image

    try:
        # Pillow warns (and past twice the limit raises) on huge headers. The warning becomes an error
        # here so it never reaches the log; the filter only affects this one category, so even if
        # catch_warnings races with another thread (it is process-global) nothing else changes.
        # Pillow's limit (~89 Mpx) is far above max_side**2, so a "bomb" is always an oversize image.
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=["PNG", "JPEG", "WEBP"]) as image:
                return str(image.format), image.width, image.height
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_large(param, max_side, "too large to decode") from None
    except Exception:
        # Fuzzed files make Pillow raise almost anything (SyntaxError, struct.error, ValueError,
        # OSError, ...); to a client they all mean the same thing.
        raise _not_an_image(param) from None


def _decode_fully(data: bytes, *, param: str) -> None:
    """Reject corrupt or truncated pixel data that a header-only look would accept."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            # verify() checks structure (PNG chunk CRCs) but leaves the image unusable, and load()
            # catches truncation that verify() does not see (JPEG, WebP), hence two opens.
            with Image.open(io.BytesIO(data), formats=["PNG", "JPEG", "WEBP"]) as image:
                image.verify()
            with Image.open(io.BytesIO(data), formats=["PNG", "JPEG", "WEBP"]) as image:
                image.load()
    except Exception:
        raise _not_an_image(param) from None
