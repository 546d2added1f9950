"""The chat service without HTTP: one token count from hold to charge, settlement, cancel rules, the ledger's settle."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mockserver.clock import VirtualClock
from mockserver.core import llm_models, tokens
from mockserver.core._chat_records import ChatRequest
from mockserver.core.emulator import Emulator
from mockserver.core.errors import (
    BalanceTooLowError,
    ChatCancelTargetAlreadyTerminalError,
    ChatCancelTargetNotCancellableError,
    ChatCancelTargetNotFoundError,
)
from mockserver.core.models import Cost, Team
from mockserver.ids import IdSource
from mockserver.media import MediaCache, inspect_image
from mockserver.settings import Settings
from mockserver.store import InMemoryStore
from tests.conftest import START, new_api_key

MODEL = "aurous-grow-2.0-pro"


MEDIA: list[MediaCache] = []  # one media cache for the module (chat renders nothing), in pytest's temp dir


@pytest.fixture(autouse=True, scope="module")
def _media(tmp_path_factory: pytest.TempPathFactory) -> Any:
    MEDIA.append(MediaCache(tmp_path_factory.mktemp("media")))
    yield
    MEDIA.pop().close()


def emulator(**overrides: Any) -> Emulator:
    settings = Settings(clock="virtual", seed=5, **overrides)
    return Emulator(settings, InMemoryStore(), VirtualClock(START), IdSource(5), MEDIA[-1], inspect_image)


def team_of(em: Emulator) -> Team:
    team, _ = em.accounts.authenticate(new_api_key())
    return team


def request(text: str, max_tokens: int, **extra: Any) -> tuple[ChatRequest, dict[str, Any]]:
    body = {"model": MODEL, "messages": [{"role": "user", "content": text}], "max_tokens": max_tokens, **extra}
    return ChatRequest.model_validate(body), body


def meta(now: datetime = START) -> dict[str, Any]:
    return {"now": now, "request_id": "req_test", "api_key_id": None, "scenario": None}


@settings(max_examples=60)
@given(
    text=st.text(min_size=1, max_size=400),
    max_tokens=st.integers(1, 600),
    effort=st.sampled_from(["minimal", "low", "medium", "high"]),
)
def test_one_token_count_from_estimate_to_hold_to_usage_to_charge(text: str, max_tokens: int, effort: str) -> None:
    em = emulator()
    team = team_of(em)
    chat = em.chat
    req, body = request(text, max_tokens, reasoning_effort=effort)
    plan = chat.plan(team, req, body)
    estimated = tokens.count_prompt(body["messages"]).total
    assert plan.prompt_tokens == estimated
    model = em.llm_models.resolve(MODEL)
    completion = chat.create(team, plan, meta())
    assert completion.cost.amount == float(llm_models.chat_hold(model, estimated, max_tokens))
    produced = tokens.count_text(completion.reply.text())
    assert produced <= max_tokens
    done = chat.finish(team, completion.id, START, state="completed", delivered=produced, finish_reason="stop")
    usage = done.usage
    assert usage is not None
    assert usage["prompt_tokens"] == estimated
    reasoning = math.floor({"minimal": 0, "low": 0.25, "medium": 0.5, "high": 1.0}[effort] * produced)
    assert usage.get("reasoning_tokens", 0) == reasoning
    charge = llm_models.chat_charge(model, estimated, produced, reasoning)
    assert usage["credits_charged"] == float(charge.total)
    team = em.accounts.team(team.id)
    assert team.held == 0
    assert team.credits == pytest.approx(1000 - float(charge.total), abs=1e-9)


def test_finish_settles_once() -> None:
    em = emulator()
    team = team_of(em)
    req, body = request("hello", 50)
    completion = em.chat.create(team, em.chat.plan(team, req, body), meta())
    first = em.chat.finish(team, completion.id, START, state="completed", delivered=10, finish_reason="stop")
    again = em.chat.finish(team, completion.id, START, state="failed", delivered=50, finish_reason=None)
    assert again.state == "completed"
    assert again.usage == first.usage
    charges = [e for e in em.ledger.entries(team) if e.type == "charge"]
    assert len(charges) == 1


def test_cancel_rules() -> None:
    em = emulator()
    team = team_of(em)
    with pytest.raises(ChatCancelTargetNotFoundError):
        em.chat.request_cancel(team, "cmp_01HXMQ7Z3K8Y2ABCDEFGHJKM", START)
    req, body = request("hello", 50)
    sync = em.chat.create(team, em.chat.plan(team, req, body), meta())
    with pytest.raises(ChatCancelTargetNotCancellableError):
        em.chat.request_cancel(team, sync.id, START)
    req, body = request("hello", 50, stream=True)
    streamed = em.chat.create(team, em.chat.plan(team, req, body), meta())
    woken: list[bool] = []
    em.chat.live[streamed.id].wake = lambda: woken.append(True)
    live = em.chat.request_cancel(team, streamed.id, START)
    assert woken == [True]
    assert getattr(live, "cancel_at", None) == START
    em.chat.live.pop(streamed.id)  # as if this process had restarted: the stream is served elsewhere
    with pytest.raises(ChatCancelTargetNotCancellableError):
        em.chat.request_cancel(team, streamed.id, START)
    em.chat.finish(team, sync.id, START, state="completed", delivered=5, finish_reason="stop")
    with pytest.raises(ChatCancelTargetAlreadyTerminalError):
        em.chat.request_cancel(team, sync.id, START)
    other = team_of(em)
    with pytest.raises(ChatCancelTargetNotFoundError):
        em.chat.request_cancel(other, streamed.id, START)


def test_hold_beyond_the_balance_is_refused_before_any_row() -> None:
    em = emulator(default_credits=0.01)
    team = team_of(em)
    req, body = request("hello", 8000)
    with pytest.raises(BalanceTooLowError):
        em.chat.create(team, em.chat.plan(team, req, body), meta())
    assert em.store.values("chat_completion", owner=team.id) == []


class _Held:
    def __init__(self, amount: float) -> None:
        self.id = "cmp_x"
        self.cost = Cost(amount=amount, base=amount, enhance=0)
        self.hold_id: str | None = None


def test_ledger_settle_charges_the_actual_and_releases_the_rest_and_stops_at_zero() -> None:
    em = emulator(default_credits=1.0)
    team = team_of(em)
    small = _Held(0.4)
    em.ledger.hold(team, small, START)
    assert em.ledger.settle(team, small, 0.123456, START) == 0.123456
    rows = [(e.type, e.amount) for e in em.ledger.entries(team)]
    assert rows == [("hold", 0.4), ("charge", 0.123456), ("release", pytest.approx(0.276544))]
    big = _Held(0.5)
    em.ledger.hold(team, big, START)
    debited = em.ledger.settle(team, big, 5.0, START)  # far over the hold: stops at the team's credits
    assert debited == pytest.approx(1.0 - 0.123456)
    team = em.accounts.team(team.id)
    assert team.credits == 0
    assert team.held == 0
