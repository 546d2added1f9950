"""Suite 3 (lifecycle model) against the emulator in process, and against a drifted emulator it must catch."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.testclient import TestClient

from contracts.lifecycle import JobLifecycle, LifecycleConfig, LifecycleViolation, run_lifecycle
from mockserver import Settings, create_app

BASE = "http://127.0.0.1"


def emulator(**overrides: Any) -> Any:
    return create_app(Settings(clock="virtual", rate_limits_enabled=False, default_credits=1000, **overrides))


class CancelKeepsHold:
    """A drifted target: each cancel leaves one credit held (the balance reports ``held_credits + 1`` per cancel)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.kept: dict[str, float] = {}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        key = dict(scope["headers"]).get(b"x-api-key", b"").decode()
        if not (path == "/v1/balance" or path.endswith("/cancel")):
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            else:
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        body = b"".join(chunks)
        if start["status"] == 200:
            data = json.loads(body)
            if path.endswith("/cancel"):
                self.kept[key] = self.kept.get(key, 0.0) + 1.0
            else:
                data["held_credits"] += self.kept.get(key, 0.0)
                data["available_credits"] = data["credits"] - data["held_credits"]
                body = json.dumps(data).encode()
        headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def test_lifecycle_holds_against_the_emulator() -> None:
    with TestClient(emulator(), base_url=BASE) as client:
        run_lifecycle(BASE, "al_live_unused", client=client, max_examples=10, steps=15, seed=1)


def test_lifecycle_catches_a_cancel_that_keeps_the_hold() -> None:
    with TestClient(CancelKeepsHold(emulator()), base_url=BASE) as client, pytest.raises(LifecycleViolation) as info:
        # Found, not minimised: shrinking replays hundreds of programs (~15x the search) and is Hypothesis' own.
        run_lifecycle(BASE, "al_live_unused", client=client, max_examples=10, steps=15, seed=2, shrink=False)
    assert info.value.name == "balance_conserved"
    assert "held_credits" in str(info.value)


def test_without_creates_only_reads_run() -> None:
    with TestClient(emulator(), base_url=BASE) as client:
        run_lifecycle(BASE, "al_live_" + "0" * 32, client=client, max_examples=3, steps=5, max_creates=0, seed=3)


def test_every_rule_path_holds_in_a_scripted_run() -> None:
    """The rules driven by hand, so the 200 / 410 / 422 outputs and both cancel answers are always exercised."""
    with TestClient(emulator(), base_url=BASE) as client:
        machine = type(
            "Scripted", (JobLifecycle,), {"config": LifecycleConfig(BASE, "al_live_script", client=client)}
        )()
        image = machine.create_image(prompt="a lighthouse", count=2, enhance=True, idempotent=True)
        video = machine.create_video(resolution="480p", duration=2, idempotent=False)
        doomed = machine.create_video(resolution="720p", duration=5, idempotent=False)
        machine.fetch_output(image, 0)  # 422 output_not_available
        machine.cancel(doomed)  # pending → cancelled
        machine.cancel(doomed)  # cancelled → same
        machine.replay_create(image)  # still pending: 409 idempotency_key_in_use, nothing billed
        machine.advance_clock(600)
        machine.replay_create(image)  # terminal: same id, not billed again
        machine.fetch_output(image, 1)  # 200 image/png
        machine.fetch_output(video, 0)  # 200 video/mp4
        machine.fetch_output(doomed, 0)  # cancelled: 422
        machine.cancel(image)  # succeeded → 400 generation_not_cancellable
        machine.balance_conserved()
        machine.advance_clock(86_401)
        machine.fetch_output(image, 0)  # 410 output_expired
        machine.read_balance()
        machine.balance_conserved()
        machine.status_never_goes_backwards()
        machine.terminal_status_never_changes()
        assert {g.status for g in machine.model.values()} == {"succeeded", "cancelled"}
        assert (
            machine.initial - float(machine._balance()["credits"])
            == machine.model[image].cost + machine.model[video].cost
        )


def test_lifecycle_catches_a_replay_before_the_generation_is_terminal() -> None:
    with TestClient(emulator(idempotency_replay="immediate"), base_url=BASE) as client:
        machine = type(
            "Scripted", (JobLifecycle,), {"config": LifecycleConfig(BASE, "al_live_script", client=client)}
        )()
        image = machine.create_image(prompt="a lighthouse", count=1, enhance=False, idempotent=True)
        with pytest.raises(LifecycleViolation) as info:
            machine.replay_create(image)
    assert info.value.name == "idempotent_replay"
    assert "still running" in str(info.value)


class LiveLike:
    """The emulator without its control plane (as the live API looks), counting billable POSTs."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.creates = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/_mock"):
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in ("/v1/images", "/v1/videos"):
            self.creates += 1
        await self.app(scope, receive, send)


def test_without_clock_control_the_budget_caps_creates() -> None:
    target = LiveLike(emulator())
    with TestClient(target, base_url=BASE) as client:
        run_lifecycle(
            BASE,
            "al_live_" + "1" * 32,
            client=client,
            max_examples=5,
            steps=8,
            max_creates=2,
            poll_timeout=0.01,
            seed=4,
        )
    assert 0 < target.creates <= 2
