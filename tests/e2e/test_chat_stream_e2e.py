"""Chat streams over real HTTP on 127.0.0.1 (uvicorn): paced frames, a client hanging up, a dropped connection.

What the in-process tests can only simulate: the server noticing a closed connection (``cancelled_client_disconnect``)
and the ``stream_drop`` scenario closing the socket mid-stream.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from mockserver import Settings
from mockserver.testing import EmulatorThread
from tests.conftest import new_api_key
from tests.mockserver.api.chat_helpers import CHAT, body, sse

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def paced() -> Iterator[str]:
    settings = Settings(
        clock="system", host="127.0.0.1", port=0, chat_time_to_first_token_ms=0, chat_tokens_per_second=100
    )
    with EmulatorThread(settings) as server:
        yield server.base_url


def final_state(client: httpx.Client, completion_id: str) -> dict[str, object]:
    for _ in range(100):  # the server settles once it sees the socket go (bounded wait)
        got = client.get(f"{CHAT}/{completion_id}").json()
        if got["status"] != "in_progress":
            return dict(got)
        time.sleep(0.05)
    raise AssertionError("the completion never left in_progress")


def test_hanging_up_mid_stream_settles_as_client_disconnect(paced: str) -> None:
    with httpx.Client(base_url=paced, headers={"X-Api-Key": new_api_key()}, timeout=30) as client:
        with client.stream("POST", CHAT, json=body(stream=True, max_tokens=2000)) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            lines = response.iter_lines()
            first = next(line for line in lines if line.startswith("data: "))
            completion_id = sse(first + "\n\n")[0][0]["id"]
            for _ in range(5):
                next(lines)
        final = final_state(client, completion_id)
    assert final["status"] == "cancelled"
    assert final["error"] == {  # type: ignore[comparison-overlap]
        "code": "cancelled_client_disconnect",
        "type": "invalid_request",
        "message": "The client disconnected before the completion finished.",
    }
    usage = final["usage"]
    assert isinstance(usage, dict)
    assert 0 < usage["completion_tokens"] < 2000


def test_stream_drop_closes_the_connection_mid_stream(paced: str) -> None:
    with httpx.Client(base_url=paced, headers={"X-Api-Key": new_api_key()}, timeout=30) as client:
        received = bytearray()

        def read_all() -> None:
            with client.stream("POST", CHAT, json=body("x [mock:stream_drop=5]", stream=True, max_tokens=50)) as r:
                for chunk in r.iter_bytes():
                    received.extend(chunk)

        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            read_all()
        frames, _ = sse(received.decode())
        assert "[DONE]" not in frames
        assert len(frames) == 6  # the role chunk and five tokens
        assert final_state(client, frames[0]["id"])["status"] == "failed"
