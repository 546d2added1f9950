"""Chat streams while they run: cancel mid-stream, client disconnect, GET showing in_progress, keep-alive comments.

A stream is driven through the ASGI interface directly (so its frames arrive one by one while other requests run
on the same event loop), paced in real time by the system-clock settings; the other calls go through httpx's ASGI
transport on the same loop.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from mockserver import InMemoryStore, Settings, create_app
from tests.conftest import new_api_key
from tests.mockserver.api.chat_helpers import CHAT, body, content_of, sse

PACED = {"chat_time_to_first_token_ms": 0, "chat_tokens_per_second": 200, "webhook_background": False}


class Stream:
    """One streamed request through the ASGI app: its frames as they come, and a way to hang up."""

    def __init__(self, app: Starlette, key: str, payload: dict[str, Any]) -> None:
        self.app = app
        self.raw = b""
        self.status = 0
        self.hang_up = asyncio.Event()
        self.arrived = asyncio.Event()
        self.payload = json.dumps(payload).encode()
        self.key = key
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": self.payload, "more_body": False}
            await self.hang_up.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                self.status = message["status"]
            elif message["type"] == "http.response.body":
                self.raw += message.get("body", b"")
                self.arrived.set()

        headers = [(b"x-api-key", self.key.encode()), (b"content-type", b"application/json"), (b"host", b"testserver")]
        scope = {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"}, "http_version": "1.1",
            "method": "POST", "scheme": "http", "path": CHAT, "raw_path": CHAT.encode(), "query_string": b"",
            "headers": headers, "client": ("127.0.0.1", 5000), "server": ("testserver", 80),
        }  # fmt: skip
        await self.app(scope, receive, send)

    async def frames_at_least(self, n: int) -> list[Any]:
        for _ in range(2000):
            frames, _ = sse(self.raw.decode())
            if len(frames) >= n:
                return frames
            self.arrived.clear()
            await asyncio.wait_for(self.arrived.wait(), 5)
        raise AssertionError("the stream did not produce enough frames")

    async def done(self) -> None:
        assert self.task is not None
        await asyncio.wait_for(self.task, 10)


def make_app(**overrides: Any) -> Starlette:
    settings = Settings(**{"clock": "system", "seed": 3, **PACED, **overrides})
    return create_app(settings, store=InMemoryStore())


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


# A stream interrupted mid-way runs at 20 tokens/s: its ~170-token reply takes 8 s, so a loaded machine stalling
# the test for a second cannot let the stream catch up to its end before the cancel or the hang-up is seen.
MID_STREAM = {"chat_tokens_per_second": 20}


def test_cancel_mid_stream_ends_it_with_finish_reason_cancelled_and_bills_what_was_sent() -> None:
    async def scenario() -> None:
        app, key = make_app(**MID_STREAM), new_api_key()
        headers = {"X-Api-Key": key}
        stream = Stream(app, key, body(stream=True, max_tokens=2000, reasoning_effort="minimal"))
        stream.start()
        frames = await stream.frames_at_least(4)
        completion_id = frames[0]["id"]
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
            during = (await client.get(f"{CHAT}/{completion_id}", headers=headers)).json()
            assert during["status"] == "in_progress"
            assert during["usage"] is None
            cancelled = await client.post(f"{CHAT}/{completion_id}/cancel", headers=headers)
            await stream.done()
            assert cancelled.status_code == 200, cancelled.text
            final = cancelled.json()
            assert final["status"] == "cancelled"
            assert final["choices"][0]["finish_reason"] == "cancelled"
            assert final["error"]["code"] == "cancelled_by_request"
            assert "cancelled_at" in final
            frames, _ = sse(stream.raw.decode())
            assert frames[-1] == "[DONE]"
            assert frames[-2]["choices"][0]["finish_reason"] == "cancelled"
            sent = content_of(frames)
            assert final["choices"][0]["message"]["content"] == sent
            usage = final["usage"]
            assert usage["completion_tokens"] == len(frames) - 3  # role, cancel chunk, [DONE]
            assert 0 < usage["completion_tokens"] < 2000
            assert usage["credits_charged"] > 0  # the prompt is always billed
            balance = (await client.get("/v1/balance", headers=headers)).json()
            assert balance["held_credits"] == 0
            assert balance["credits"] == pytest.approx(1000 - usage["credits_charged"], abs=1e-9)
            again = await client.post(f"{CHAT}/{completion_id}/cancel", headers=headers)
            assert again.status_code == 409
            assert again.json()["error"]["code"] == "chat_cancel_target_already_terminal"

    run(scenario())


def test_client_disconnect_settles_as_cancelled_client_disconnect() -> None:
    async def scenario() -> None:
        app, key = make_app(**MID_STREAM), new_api_key()
        stream = Stream(app, key, body(stream=True, max_tokens=2000))
        stream.start()
        frames = await stream.frames_at_least(3)
        stream.hang_up.set()
        await stream.done()
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
            final = (await client.get(f"{CHAT}/{frames[0]['id']}", headers={"X-Api-Key": key})).json()
        assert final["status"] == "cancelled"
        assert final["error"]["code"] == "cancelled_client_disconnect"
        assert 0 < final["usage"]["completion_tokens"] < 2000
        assert app.state.emulator.chat.live == {}

    run(scenario())


def test_non_streamed_request_is_in_progress_while_it_runs_and_not_cancellable() -> None:
    async def scenario() -> None:
        app, key = make_app(chat_tokens_per_second=20), new_api_key()
        headers = {"X-Api-Key": key}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
            pending = asyncio.create_task(client.post(CHAT, json=body(max_tokens=40), headers=headers))
            await asyncio.sleep(0.3)
            rows = app.state.emulator.store.values("chat_completion", owner=app.state.emulator.accounts.team_id_of(key))
            [row] = rows
            during = (await client.get(f"{CHAT}/{row.id}", headers=headers)).json()
            assert during["status"] == "in_progress"
            refused = await client.post(f"{CHAT}/{row.id}/cancel", headers=headers)
            assert refused.status_code == 409
            assert refused.json()["error"]["code"] == "chat_cancel_target_not_cancellable"
            done = (await pending).json()
            assert done["status"] == "completed"

    run(scenario())


def test_slow_first_token_sends_keep_alive_comments() -> None:
    async def scenario() -> None:
        app, key = make_app(chat_keepalive_seconds=0.05), new_api_key()
        stream = Stream(app, key, body("hi [mock:slow_first_token=600]", stream=True, max_tokens=5))
        stream.start()
        await stream.done()
        frames, comments = sse(stream.raw.decode())
        assert len(comments) >= 2  # 0.6 s of waiting at 0.05 s intervals (fewer on a loaded machine, never none)
        assert set(comments) == {": keep-alive"}
        assert stream.raw.index(b": keep-alive") < stream.raw.index(b"data: ")
        assert frames[-1] == "[DONE]"

    run(scenario())


def test_streams_are_paced_on_the_event_loop_and_leave_other_requests_answered() -> None:
    """Ten paced streams at once (3 s each): a balance read in between is answered while they run (no blocked
    thread); then every client hangs up."""
    long_reply = "x [mock:reply=" + "word " * 240 + "]"

    async def scenario() -> None:
        app = make_app(chat_tokens_per_second=100)
        streams = [Stream(app, new_api_key(), body(long_reply, stream=True, max_tokens=1000)) for _ in range(10)]
        for stream in streams:
            stream.start()
        await streams[0].frames_at_least(3)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
            answer = await client.get("/v1/balance", headers={"X-Api-Key": streams[0].key})
        assert answer.status_code == 200
        # answered while the streams still run: they wait on the loop, they do not hold it
        assert not any(stream.task is not None and stream.task.done() for stream in streams)
        for stream in streams:
            stream.hang_up.set()
        for stream in streams:
            await stream.done()
        assert app.state.emulator.chat.live == {}

    run(scenario())
