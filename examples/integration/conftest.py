"""Fixtures of the example suite: our client pointed at the emulator team of the test (``aurous_mock``)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from client import AurousClient

from mockserver.testing import AurousMock


@dataclass
class VirtualSleep:
    """Stands in for ``time.sleep``: records each back-off and moves the team's clock by it instead."""

    mock: AurousMock
    delays: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        self.mock.clock.advance(seconds)


@pytest.fixture
def sleeper(aurous_mock: AurousMock) -> VirtualSleep:
    return VirtualSleep(aurous_mock)


@pytest.fixture
def api(aurous_mock: AurousMock, sleeper: VirtualSleep) -> Iterator[AurousClient]:
    """The code under test, configured exactly as production would be, but for the URL, the key and ``sleep``."""
    with AurousClient(aurous_mock.base_url, aurous_mock.api_key, sleep=sleeper) as client:
        yield client


@pytest.fixture
def tick(aurous_mock: AurousMock) -> Callable[[], object]:
    """The ``poll`` hook for ``AurousClient.wait``: five seconds of virtual time between two reads."""
    return lambda: aurous_mock.clock.advance(5)


# --- acceptance hook (not part of the example) -----------------------------------------------------------
# When AUROUS_EXAMPLE_IDS_FILE is set, every test appends the ids of the generations its team holds after it
# ran, one "<node id> <generation id>" line each, so a seeded rerun can be compared with the first run.
@pytest.fixture(autouse=True)
def _record_generation_ids(request: pytest.FixtureRequest) -> Iterator[None]:
    path = os.environ.get("AUROUS_EXAMPLE_IDS_FILE")
    mock = request.getfixturevalue("aurous_mock") if path and "aurous_mock" in request.fixturenames else None
    yield
    if path and mock is not None:
        with AurousClient(mock.base_url, mock.api_key) as client:
            lines = "".join(f"{request.node.nodeid} {g['id']}\n" for g in client.list_generations(page_size=100))
        with open(path, "a", encoding="utf-8") as out:
            out.write(lines)  # one append per test: safe with several xdist workers
