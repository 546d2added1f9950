"""The SSE side of chat completions: OpenAI's frames, paced on the event loop, and the response that serves them.

Framing as OpenAI's SDKs parse it (``openai/_streaming.py``): one ``data: <json>`` line and a blank line per frame,
``: keep-alive`` comments, ``data: [DONE]`` last, an ``{"error": …}`` frame for a failure after the ``200`` (fact
sheet §3.9, §14.8-§14.10). However a stream ends (done, cancelled, failed, the client gone), it settles once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import anyio
import orjson
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from mockserver.api.errors import error_body
from mockserver.api.pipeline import Ctx
from mockserver.api.scenarios import drop_connection
from mockserver.clock import unix_seconds
from mockserver.core import idempotency, tokens
from mockserver.core._chat_records import Completion
from mockserver.core.chat import Plan
from mockserver.core.errors import ChatProviderUnavailableError, DomainError

DONE = b"data: [DONE]\n\n"
KEEP_ALIVE = b": keep-alive\n\n"
# Pacing (emulator choices): a stream wakes at most every TICK seconds and writes every frame due by then (tokens
# still stream one per frame, at the configured rate on average); at most BATCH frames go in one write. 100 real-time
# streams then cost 2,000 wake-ups a second instead of 8,000 (bench/llm.py).
TICK = 0.05
BATCH = 64
WARNING = "Idempotency-Key is ignored on streamed chat completions; retrying may bill twice."
CANCELLED_MESSAGES = {
    "cancelled_by_request": "The completion was cancelled by request.",
    "cancelled_client_disconnect": "The client disconnected before the completion finished.",
}


def sent_key(ctx: Ctx) -> tuple[str, str] | None:
    for header in idempotency.HEADERS:
        value = ctx.header(header.lower())
        if value is not None:
            return header, value
    return None


def delays(ctx: Ctx, completion: Completion) -> tuple[float, float]:
    """(seconds to the first token, seconds per token after it), in real time.

    Under the virtual clock a stream is instant; under the system clock it is paced by the settings, divided by
    ``--speed``. A ``slow_first_token`` scenario waits in real time under either clock (like ``latency``).
    """
    s = ctx.emulator.settings
    first = per_token = 0.0
    if s.clock != "virtual":
        first = s.chat_time_to_first_token_ms / 1000 / s.speed
        per_token = 1 / s.chat_tokens_per_second / s.speed
    step = completion.scenario or {}
    if step.get("outcome") == "slow_first_token":
        first += float(step.get("arg") or 0) / 1000
    return first, per_token


def step(completion: Completion) -> tuple[str | None, int]:
    step = completion.scenario or {}
    arg = step.get("arg")
    return step.get("outcome"), int(arg) if isinstance(arg, int | float) else 0


def provider_error() -> dict[str, Any]:
    error = ChatProviderUnavailableError()
    return {"code": error.code, "type": error.type, "message": error.detail}


def frame(data: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"


class _Drop(Exception):
    """``stream_drop``: the connection closes mid-stream."""


class StreamRun:
    """One stream's frames, paced on the event loop (never a blocked thread), and its settlement however it ends."""

    def __init__(self, ctx: Ctx, completion: Completion, plan: Plan) -> None:
        self.ctx = ctx
        self.completion = completion
        self.include_usage = bool(plan.req.stream_options and plan.req.stream_options.include_usage)
        self.key_sent = sent_key(ctx) is not None
        self.delivered = 0
        self.settled = False
        self.wake = asyncio.Event()
        live = ctx.emulator.chat.live.get(completion.id)
        if live is not None:
            live.wake = self.wake.set
        self.base = {
            "id": completion.id,
            "object": "chat.completion.chunk",
            "created": unix_seconds(completion.created_at),
            "model": completion.model,
        }

    def chunk(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        body = {**self.base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}
        if self.include_usage and "usage" not in extra:
            extra["usage"] = None  # OpenAI's include_usage shape: null until the last chunk (fact sheet §14.10)
        return frame({**body, **extra})

    def _cancel_requested(self) -> bool:
        live = self.ctx.emulator.chat.live.get(self.completion.id)
        return live is not None and live.cancel_at is not None

    async def _until(self, deadline: float) -> AsyncIterator[bytes]:
        """Wait for ``deadline`` (loop time), sending ``: keep-alive`` when nothing was sent for the interval.

        A short wait (between two ticks) is a plain sleep; a long one (the first token) can be cut short by a cancel.
        """
        loop = asyncio.get_running_loop()
        interval = self.ctx.emulator.settings.chat_keepalive_seconds
        while not self._cancel_requested():
            left = deadline - loop.time()
            if left <= 0:
                return
            if left <= 2 * TICK:
                await asyncio.sleep(left)
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), min(left, interval))
            if deadline - loop.time() > 0 and not self._cancel_requested():
                yield KEEP_ALIVE

    def _settle(
        self, state: str, finish: str | None, error: dict[str, Any] | None = None, *, bill: bool = True
    ) -> None:
        if self.settled:
            return
        self.settled = True
        chat, team = self.ctx.emulator.chat, self.ctx.team
        with contextlib.suppress(DomainError):  # reset meanwhile: nothing is left to settle
            self.completion = chat.finish(
                team, self.completion.id, self.ctx.emulator.accounts.now(team),
                state=state, delivered=self.delivered, finish_reason=finish, error=error, bill=bill,
            )  # fmt: skip

    def _cancelled_frames(self, state: str) -> bytes:
        error = {"code": state, "type": "invalid_request", "message": CANCELLED_MESSAGES[state]}
        self._settle(state, "cancelled", error)
        return self.chunk({}, "cancelled", usage=self.completion.usage) + DONE

    def abort(self, disconnected: bool) -> None:
        """However the stream ended early (a disconnect, a cancelled task): commit what was delivered."""
        if disconnected:
            self._cancelled_frames("cancelled_client_disconnect")
        else:
            self._settle("failed", None, provider_error(), bill=self.delivered > 0)

    def _pieces(self) -> list[tuple[dict[str, Any], int]]:
        """(delta, tokens) per content frame after the role frame."""
        reply = self.completion.reply
        if reply.tool_calls:
            return [({"tool_calls": [{"index": 0, "function": {"arguments": part}}]}, 1)
                    for part in tokens.split(reply.tool_calls[0].arguments)]  # fmt: skip
        return [({"content": piece}, 1) for piece in reply.pieces]

    def _first_delta(self) -> dict[str, Any]:
        calls = self.completion.reply.tool_calls
        if not calls:
            return {"role": "assistant", "content": ""}
        call = calls[0]
        function = {"name": call.name, "arguments": ""}
        tool_call = {"index": 0, "id": call.id, "type": "function", "function": function}
        return {"role": "assistant", "content": None, "tool_calls": [tool_call]}

    async def frames(self) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        first, per_token = delays(self.ctx, self.completion)
        outcome, at = step(self.completion)
        if self.key_sent:
            warning = {"code": "idempotency_ignored_streaming", "message": WARNING}
            yield frame({**self.base, "choices": [], "aurous_warning": warning})
        start = loop.time()
        async for keep_alive in self._until(start + first):
            yield keep_alive
        if self._cancel_requested():
            yield self._cancelled_frames("cancelled_by_request")
            return
        # Frames go out in batches: every frame due when the stream wakes (at most every TICK), at most BATCH per
        # write. A token counts as delivered once its batch was written (the generator resumed after the yield).
        batch, pending = [self.chunk(self._first_delta())], 0
        woke = loop.time()
        for i, (delta, count) in enumerate(self._pieces()):
            if outcome in ("stream_error", "stream_drop") and self.delivered + pending >= at:
                break
            due = start + first + i * per_token
            if per_token and due > loop.time():
                if batch:
                    yield b"".join(batch)
                    self.delivered, batch, pending = self.delivered + pending, [], 0
                async for keep_alive in self._until(max(due, woke + TICK)):
                    yield keep_alive
                woke = loop.time()
                if self._cancel_requested():
                    yield self._cancelled_frames("cancelled_by_request")
                    return
            batch.append(self.chunk(delta))
            pending += count
            if len(batch) >= BATCH:
                yield b"".join(batch)
                self.delivered, batch, pending = self.delivered + pending, [], 0
        if batch:
            yield b"".join(batch)
            self.delivered += pending
        if outcome == "stream_error":
            self._settle("failed", None, provider_error(), bill=self.delivered > 0)
            yield frame(error_body(ChatProviderUnavailableError(), self.ctx.request_id)) + DONE
            return
        if outcome == "stream_drop":
            self._settle("failed", None, provider_error(), bill=self.delivered > 0)
            raise _Drop
        self._settle("completed", self.completion.reply.finish_reason)
        yield self.chunk({}, self.completion.reply.finish_reason, usage=self.completion.usage)
        yield DONE


class EventStream(StreamingResponse):
    """``text/event-stream`` from a :class:`StreamRun`; a client disconnect stops it and settles what was sent."""

    def __init__(self, run: StreamRun, headers: dict[str, str]) -> None:
        super().__init__(
            run.frames(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no", **headers},
        )
        self.run = run

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        disconnected = dropped = False
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        try:
            async with anyio.create_task_group() as group:

                async def watch() -> None:
                    nonlocal disconnected
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    disconnected = True
                    group.cancel_scope.cancel()

                group.start_soon(watch)
                try:
                    async for chunk in self.body_iterator:
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
                except _Drop:
                    dropped = True
                except OSError:  # the client went away while we wrote
                    disconnected = True
                group.cancel_scope.cancel()
        finally:
            if not self.run.settled:
                self.run.abort(disconnected or not dropped)
        if dropped and await drop_connection(scope.get("state", {}).get("raw_receive", receive)):
            return
        if not disconnected:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
