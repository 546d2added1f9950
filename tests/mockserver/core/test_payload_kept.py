"""Encoded JSON kept beyond its request costs its own size, not orjson's encoding buffer (bench/README.md)."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable

import orjson
import pytest

from mockserver.core import payload
from mockserver.core.journal import clip

BODY = {"prompt": "x" * 900, "index": 0}
COUNT = 1000


def _traced(make: Callable[[int], bytes]) -> tuple[int, list[bytes]]:
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [make(i) for i in range(COUNT)]
        return tracemalloc.get_traced_memory()[0] - before, kept
    finally:
        tracemalloc.stop()


def test_orjson_output_holds_more_than_its_length() -> None:
    """The reason for payload.kept: if orjson ever returns exact-size bytes, this fails and kept is moot."""
    used, kept = _traced(lambda i: orjson.dumps({**BODY, "index": i}))
    assert used > 3 * sum(map(len, kept))


@pytest.mark.parametrize("keep", [payload.kept, clip], ids=["kept", "journal clip"])
def test_kept_bytes_cost_about_their_length(keep: Callable[[bytes], bytes | None]) -> None:
    def make(i: int) -> bytes:
        found = keep(orjson.dumps({**BODY, "index": i}))
        assert found == orjson.dumps({**BODY, "index": i})
        return found or b""

    used, kept = _traced(make)
    assert used < 1.5 * sum(map(len, kept)) + 64 * COUNT
