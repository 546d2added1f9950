"""What the domain needs from outside and does not build: upload inspection and the media file cache.

``mockserver.media`` provides both (``inspect_image``, ``MediaCache``) and ``create_app`` wires them in, so the
domain never imports Pillow, PyAV or ``mockserver.media`` (tests/test_quality.py holds it to that).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

__all__ = ["InspectImage", "MediaFiles", "UploadedImage"]


class UploadedImage(Protocol):
    """What an accepted upload is: its MIME type and pixel size."""

    @property
    def mime_type(self) -> str: ...

    @property
    def width(self) -> int: ...

    @property
    def height(self) -> int: ...


class InspectImage(Protocol):
    """Validates uploaded bytes and describes the image.

    Raises the documented ``DomainError``s (``InvalidFormatError`` for empty, undecodable or other-format data,
    ``ValueOutOfRangeError`` past ``max_bytes`` or ``max_side``) naming ``param``; never a decoder's own error.
    """

    def __call__(
        self, data: bytes, *, param: str = ..., max_bytes: int = ..., max_side: int = ...
    ) -> UploadedImage: ...


class MediaFiles(Protocol):
    """Output media as files, rendered deterministically from their inputs on first use and kept for later ones.

    ``renders`` counts files produced, ``hits`` the calls answered from a file already there.
    """

    renders: int
    hits: int

    def image(self, *, width: int, height: int, seed: int, prompt: str) -> Path:
        """A PNG of exactly ``width`` x ``height``."""
        ...

    def video(self, *, width: int, height: int, duration_s: int, seed: int, prompt: str) -> Path:
        """An H.264 MP4 of exactly that frame size and duration."""
        ...

    def close(self) -> None:
        """Let go of the files (and of the directory, if the cache made it)."""
        ...
