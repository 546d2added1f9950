"""The dashboard's chat completions view (``GET /_mock/chat/completions``) and the change digest it relies on, in
process (the browser: tests/e2e/test_dashboard.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from mockserver import InMemoryStore, VirtualClock, create_app
from mockserver.api.chat import parse
from mockserver.api.recorder import DASHBOARD_HEADER
from mockserver.clock import rfc3339
from mockserver.core._chat_records import PROMPT_PREVIEW, Completion
from mockserver.core.emulator import Emulator
from tests.conftest import START, make_settings, new_api_key
from tests.helpers import assert_envelope
from tests.mockserver.api.chat_helpers import CHAT, MODEL, body

VIEW = "/_mock/chat/completions"
UI = {DASHBOARD_HEADER: "1"}
XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    settings = make_settings(rate_limits_enabled=False)
    app = create_app(settings, clock=VirtualClock(START), store=InMemoryStore())
    with TestClient(app, base_url="http://127.0.0.1:8080") as test_client:
        yield test_client


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def team() -> dict[str, str]:
    return {"X-Api-Key": new_api_key()}


def view(client: TestClient, key: dict[str, str], **params: Any) -> Any:
    return ok(client.get(VIEW, params=params, headers={**key, **UI}))


def public(client: TestClient, key: dict[str, str], completion_id: str) -> Any:
    return ok(client.get(f"{CHAT}/{completion_id}", headers=key))


def started(client: TestClient, key: dict[str, str], text: str = "still running") -> tuple[Emulator, Completion]:
    """A streamed completion held and stored but not settled yet: what a stream in flight looks like."""
    ok(client.get("/_mock/team", headers=key))  # provisions the team
    emulator: Emulator = client.app.state.emulator  # type: ignore[attr-defined]
    team_, api_key = emulator.accounts.authenticate(key["X-Api-Key"])
    payload = body(text, stream=True)
    plan = emulator.chat.plan(team_, parse(payload), payload)
    meta = {"now": emulator.accounts.now(team_), "request_id": "req_dashboard_test", "api_key_id": api_key.id}
    return emulator, emulator.chat.create(team_, plan, meta)


def test_a_completed_completion_shows_its_public_resource_tokens_and_charge(client: TestClient) -> None:
    key = team()
    ok(client.post("/_mock/clock/advance", json={"seconds": 90}, headers=key))
    now = ok(client.get("/_mock/clock", headers=key))["now"]
    done = ok(client.post(CHAT, json=body(XSS, max_tokens=30), headers=key))
    page = view(client, key)
    assert (page["total"], page["has_more"], page["next_cursor"]) == (1, False, None)
    [row] = page["data"]
    assert row["resource"] == public(client, key, done["id"]) == done
    usage = done["usage"]
    assert row == {
        "id": done["id"],
        "object": "mock.chat_completion",
        "model": MODEL,
        "status": "completed",
        "stream": False,
        "finish_reason": done["choices"][0]["finish_reason"],
        "prompt": XSS,  # as sent: the page shows it as text
        "prompt_tokens": usage["prompt_tokens"],
        "completion_tokens": usage["completion_tokens"],
        "credits": {"amount": row["credits"]["amount"], "held": 0.0, "charged": usage["credits_charged"]},
        "created_at": now,  # the team's clock, not the wall clock
        "finished_at": now,
        "resource": done,
    }
    ledger = {entry["type"]: entry["amount"] for entry in ok(client.get("/_mock/ledger", headers=key))["data"]}
    assert ledger["hold"] == row["credits"]["amount"] > 0
    assert ledger["charge"] == row["credits"]["charged"] > 0


def test_a_stream_in_flight_holds_credits_and_shows_as_get_does_until_cancelled(client: TestClient) -> None:
    key = team()
    emulator, completion = started(client, key)
    [row] = view(client, key)["data"]
    assert (row["status"], row["stream"], row["finish_reason"], row["completion_tokens"]) == (
        "in_progress",
        True,
        None,
        None,
    )
    assert row["credits"] == {"amount": completion.cost.amount, "held": completion.cost.amount, "charged": 0.0}
    assert ok(client.get("/v1/balance", headers=key))["held_credits"] == completion.cost.amount
    assert row["finished_at"] is None
    assert row["resource"] == public(client, key, completion.id)
    team_ = emulator.accounts.authenticate(key["X-Api-Key"])[0]
    later = emulator.accounts.now(team_)
    emulator.chat.finish(team_, completion.id, later, state="cancelled_by_request", delivered=2, finish_reason=None)
    [row] = view(client, key)["data"]
    assert row["status"] == "cancelled"
    assert row["resource"] == public(client, key, completion.id)
    assert row["resource"]["cancelled_at"] == rfc3339(later) == row["finished_at"]
    assert row["completion_tokens"] == 2
    assert row["credits"]["held"] == 0.0
    assert row["credits"]["charged"] == row["resource"]["usage"]["credits_charged"] > 0  # delivered tokens billed


def test_a_failed_stream_shows_failed_with_its_error(client: TestClient) -> None:
    key = team()
    response = client.post(CHAT, json=body("x [mock:stream_error=3]", stream=True, max_tokens=20), headers=key)
    assert response.status_code == 200
    [row] = view(client, key)["data"]
    assert (row["status"], row["stream"], row["completion_tokens"]) == ("failed", True, 3)
    assert row["resource"]["error"]["code"] == "chat_provider_unavailable"
    assert row["resource"] == public(client, key, row["id"])


def test_newest_first_paginated_and_filtered_before_paginating(client: TestClient) -> None:
    key = team()
    ids = [ok(client.post(CHAT, json=body(f"question {i}"), headers=key))["id"] for i in range(5)]
    client.post(CHAT, json=body("x [mock:stream_error=1]", stream=True), headers=key)
    failed = view(client, key, status="failed")
    assert failed["total"] == 1
    first = view(client, key, limit=2, status="completed")
    assert [row["id"] for row in first["data"]] == ids[::-1][:2]
    assert (first["has_more"], first["total"], first["next_cursor"]) == (True, 5, ids[3])
    rest = view(client, key, status="completed", starting_after=first["next_cursor"])
    assert [row["id"] for row in rest["data"]] == ids[::-1][2:]
    assert rest["has_more"] is False
    assert [row["prompt"] for row in rest["data"]] == ["question 2", "question 1", "question 0"]
    assert view(client, key, status="in_progress")["data"] == []
    assert view(client, team())["data"] == []  # another team sees none of them


@pytest.mark.parametrize(
    ("params", "code", "param"),
    [
        ({"status": "in-progress"}, "invalid_format", "status"),
        ({"limit": "101"}, "value_out_of_range", "limit"),
        ({"starting_after": "cmp_x"}, "resource_not_found", "starting_after"),
    ],
)
def test_bad_filters_and_cursors_are_refused_in_the_envelope(
    client: TestClient, params: dict, code: str, param: str
) -> None:
    assert_envelope(client.get(VIEW, params=params, headers=team()), 400, code, param)


def test_a_long_prompt_is_cut_and_completions_past_retention_are_left_out_like_get(client: TestClient) -> None:
    key = team()
    done = ok(client.post(CHAT, json=body("word " * 400), headers=key))
    [row] = view(client, key)["data"]
    assert len(row["prompt"]) == PROMPT_PREVIEW
    retention = client.app.state.emulator.settings.chat_retention_days  # type: ignore[attr-defined]
    seconds = timedelta(days=retention).total_seconds()
    ok(client.post("/_mock/clock/advance", json={"seconds": seconds}, headers=key))
    assert [row["id"] for row in view(client, key)["data"]] == [done["id"]]  # exactly at the limit: still there
    ok(client.post("/_mock/clock/advance", json={"seconds": 1}, headers=key))
    assert client.get(f"{CHAT}/{done['id']}", headers=key).status_code == 404
    assert view(client, key) | {"data": None} == {
        "object": "list",
        "data": None,
        "has_more": False,
        "next_cursor": None,
        "total": 0,
    }


def test_the_digest_moves_when_a_completion_is_created_and_when_it_settles_on_an_exempt_team(
    client: TestClient,
) -> None:
    """An exempt team moves no credit and no ledger row, and a stream settles after its request was journaled."""
    key = team()
    ok(client.patch("/_mock/team", json={"billing_mode": "exempt"}, headers=key))
    changes = lambda: ok(client.get("/_mock/changes", headers={**key, **UI}))["version"]  # noqa: E731
    before = changes()
    emulator, completion = started(client, key)
    created = changes()
    assert created != before
    view(client, key)
    assert changes() == created  # reading the view changes nothing
    team_ = emulator.accounts.authenticate(key["X-Api-Key"])[0]
    emulator.chat.finish(
        team_, completion.id, emulator.accounts.now(team_), state="completed", delivered=4, finish_reason="stop"
    )
    assert changes() != created
    [row] = view(client, key)["data"]
    assert row["credits"] == {"amount": completion.cost.amount, "held": 0.0, "charged": 0.0}  # exempt: nothing held


# --- LLM usage rows (the Credits view) ---------------------------------------------------------------------------

EMBED = {"model": "aurous-embed-vision-1.0", "input": "a short text to embed"}


def test_llm_usage_rows_list_chat_and_embeddings_as_the_usage_stream_does(client: TestClient) -> None:
    key = team()
    ok(client.patch("/_mock/team", json={"billing_mode": "exempt"}, headers=key))  # embeddings move no credit here
    embedded = ok(client.post("/v1/embeddings", json=EMBED, headers=key))
    done = ok(client.post(CHAT, json=body("Explain caching"), headers=key))
    page = ok(client.get("/_mock/usage/llm", headers={**key, **UI}))
    assert (page["total"], page["has_more"]) == (2, False)
    chat_row, embed_row = page["data"]  # newest first
    start = {"start_time": rfc3339(START - timedelta(days=1)), "end_time": rfc3339(START + timedelta(days=1))}
    stream = {row["id"]: row for row in ok(client.get("/v1/usage/events", params=start, headers=key))["data"]}
    assert set(stream) == {done["id"], embed_row["id"]}
    assert chat_row == stream[done["id"]]
    assert embed_row == stream[embed_row["id"]]
    assert (chat_row["type"], chat_row["output_tokens"]) == ("chat", done["usage"]["completion_tokens"])
    assert (embed_row["type"], embed_row["input_tokens"]) == ("embedding", embedded["usage"]["prompt_tokens"])
    only = ok(client.get("/_mock/usage/llm", params={"type": "embedding", "limit": 1}, headers=key))
    assert [row["id"] for row in only["data"]] == [embed_row["id"]]
    assert (only["total"], only["has_more"]) == (1, False)
    first = ok(client.get("/_mock/usage/llm", params={"limit": 1}, headers=key))
    assert (first["has_more"], first["next_cursor"]) == (True, chat_row["id"])
    rest = ok(client.get("/_mock/usage/llm", params={"starting_after": first["next_cursor"]}, headers=key))
    assert [row["id"] for row in rest["data"]] == [embed_row["id"]]
    refused = client.get("/_mock/usage/llm", params={"type": "image"}, headers=key)
    assert_envelope(refused, 400, "invalid_format", "type")
    assert ok(client.get("/_mock/usage/llm", headers=team()))["data"] == []


def test_an_embeddings_request_moves_the_digest_without_a_journal_or_credits(client_for: Any) -> None:
    quiet = client_for(journal_size=0, rate_limits_enabled=False)
    key = team()
    ok(quiet.patch("/_mock/team", json={"billing_mode": "exempt"}, headers=key))
    before = ok(quiet.get("/_mock/changes", headers=key))["version"]
    ok(quiet.post("/v1/embeddings", json=EMBED, headers=key))
    assert ok(quiet.get("/_mock/changes", headers=key))["version"] != before


@pytest.mark.every_store
def test_the_view_and_the_digest_on_every_store(app: Starlette) -> None:
    """The settle marker and the view read through each backend (memory, SQLite, Redis) alike."""
    with TestClient(app, base_url="http://127.0.0.1:8080") as shared:
        key = team()
        ok(shared.patch("/_mock/team", json={"billing_mode": "exempt"}, headers=key))
        emulator, completion = started(shared, key)
        created = ok(shared.get("/_mock/changes", headers={**key, **UI}))["version"]
        [row] = view(shared, key)["data"]
        assert (row["id"], row["status"], row["prompt"]) == (completion.id, "in_progress", "still running")
        team_ = emulator.accounts.authenticate(key["X-Api-Key"])[0]
        now = emulator.accounts.now(team_)
        emulator.chat.finish(team_, completion.id, now, state="completed", delivered=3, finish_reason="stop")
        assert ok(shared.get("/_mock/changes", headers={**key, **UI}))["version"] != created
        [row] = view(shared, key)["data"]
        assert row["status"] == "completed"
        assert row["resource"] == public(shared, key, completion.id)
