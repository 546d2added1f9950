"""The dashboard's control routes (teams, generations, characters, ledger, endpoints, changes), its shell and
files, and the control plane's guard against other browser pages, in process (the browser: tests/e2e/test_dashboard.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from mockserver import InMemoryStore, VirtualClock, create_app
from mockserver.api.control import TOKEN_HEADER
from mockserver.api.recorder import DASHBOARD_HEADER
from mockserver.api.ui import STATIC
from mockserver.core.errors import ForeignOriginError
from mockserver.webhooks import RecordingSender
from tests.conftest import BASE_URL, START, make_settings, new_api_key
from tests.helpers import assert_envelope

LOCAL = "http://127.0.0.1:8080"
UI = {DASHBOARD_HEADER: "1"}
XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    settings = make_settings(rate_limits_enabled=False, image_pending_seconds=2, image_processing_seconds=8)
    app = create_app(settings, clock=VirtualClock(START), store=InMemoryStore(), sender=RecordingSender())
    with TestClient(app, base_url=LOCAL) as test_client:
        yield test_client


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def team() -> dict[str, str]:
    return {"X-Api-Key": new_api_key()}


# --- the views -----------------------------------------------------------------------------------------------


def test_generations_view_shows_the_public_resource_and_what_only_the_emulator_knows(client: TestClient) -> None:
    key = team()
    created = ok(client.post("/v1/images", json={"prompt": XSS}, headers=key), 201)
    row = ok(client.get("/_mock/generations", headers=key))["data"][0]
    assert row["resource"] == ok(client.get(f"/v1/images/{created['id']}", headers=key))
    assert (row["id"], row["kind"], row["status"], row["prompt"]) == (created["id"], "image", "pending", XSS)
    assert row["credits"] == {"amount": 1.0, "held": 1.0, "charged": 0.0}
    assert row["outputs_expire_at"] is None
    ok(client.post("/_mock/clock/advance", json={"seconds": 10}, headers=key))
    row = ok(client.get("/_mock/generations", headers=key))["data"][0]
    assert row["status"] == "succeeded"
    assert row["credits"] == {"amount": 1.0, "held": 0.0, "charged": 1.0}
    assert row["outputs_expire_at"] == (START + timedelta(seconds=10 + 86400)).isoformat().replace("+00:00", "Z")
    assert row["resource"] == ok(client.get(f"/v1/images/{created['id']}", headers=key))


def test_generations_view_filters_before_paginating(client: TestClient) -> None:
    key = team()
    ids = [ok(client.post("/v1/images", json={"prompt": f"p{i}"}, headers=key), 201)["id"] for i in range(5)]
    ok(client.post("/_mock/clock/advance", json={"seconds": 10}, headers=key))
    ok(client.post("/_mock/scenarios", json={"then": "fail"}, headers=key), 201)
    failed = ok(client.post("/v1/images", json={"prompt": "no"}, headers=key), 201)["id"]
    ok(client.post("/_mock/clock/advance", json={"seconds": 10}, headers=key))
    first = ok(client.get("/_mock/generations", params={"limit": 2, "status": "succeeded"}, headers=key))
    assert [row["id"] for row in first["data"]] == ids[::-1][:2]
    assert (first["has_more"], first["total"]) == (True, 5)
    params = {"status": "succeeded", "starting_after": first["next_cursor"]}
    rest = ok(client.get("/_mock/generations", params=params, headers=key))
    assert [row["id"] for row in rest["data"]] == ids[::-1][2:]
    assert rest["has_more"] is False
    failed_only = ok(client.get("/_mock/generations", params={"status": "failed"}, headers=key))
    assert [row["id"] for row in failed_only["data"]] == [failed]
    assert ok(client.get("/_mock/generations", params={"kind": "video"}, headers=key))["data"] == []


@pytest.mark.parametrize(
    ("params", "param"), [({"status": "done"}, "status"), ({"kind": "audio"}, "kind"), ({"limit": "0"}, "limit")]
)
def test_generations_view_refuses_bad_filters_in_the_envelope(client: TestClient, params: dict, param: str) -> None:
    response = client.get("/_mock/generations", params=params, headers=team())
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


def test_ledger_view_lists_hold_and_charge_newest_first(client: TestClient) -> None:
    key = team()
    gen = ok(client.post("/v1/images", json={"prompt": "x"}, headers=key), 201)["id"]
    ok(client.patch("/_mock/team", json={"credits": 500}, headers=key))
    ok(client.post("/_mock/clock/advance", json={"seconds": 60}, headers=key))
    rows = ok(client.get("/_mock/ledger", headers=key))["data"]
    assert [row["type"] for row in rows] == ["charge", "adjustment", "hold"]
    assert rows[0]["generation_id"] == rows[2]["generation_id"] == gen


def test_teams_view_is_the_callers_team_and_every_team_with_global(client: TestClient) -> None:
    a, b = team(), team()
    ok(client.post("/v1/images", json={"prompt": "x"}, headers=a), 201)
    mine = ok(client.get("/_mock/teams", headers=a))["data"]
    preview = a["X-Api-Key"][:14] + "…"
    assert [(row["key_preview"], row["keys"], row["generations"], row["held_credits"]) for row in mine] == [
        (preview, 1, 1, 1.0)
    ]
    b_id = ok(client.get("/_mock/team", headers=b))["id"]
    everyone = ok(client.get("/_mock/teams", params={"global": "true", "limit": 1000}, headers=a))
    assert b_id in {row["id"] for row in everyone["data"]}
    assert a["X-Api-Key"] not in str(everyone)  # the overview shows no team's whole key
    assert b["X-Api-Key"] not in str(everyone)


def test_endpoints_and_characters_views_show_the_teams_own(client: TestClient) -> None:
    key = team()
    made = ok(
        client.post("/v1/webhook_endpoints", json={"url": "http://127.0.0.1:9/h", "events": ["*"]}, headers=key), 201
    )
    rows = ok(client.get("/_mock/webhooks/endpoints", headers=key))["data"]
    assert [(row["id"], row["secret"]) for row in rows] == [(made["id"], None)]
    assert ok(client.get("/_mock/webhooks/endpoints", headers=team()))["data"] == []
    assert ok(client.get("/_mock/characters", headers=key))["data"] == []


def test_changes_version_moves_with_the_team_and_not_with_dashboard_reads(client: TestClient) -> None:
    key = team()
    headers = {**key, **UI}
    first = ok(client.get("/_mock/changes", headers=headers))
    for path in ("/_mock/generations", "/_mock/team", "/_mock/ledger", "/_mock/teams", "/_mock/webhooks/deliveries"):
        ok(client.get(path, headers=headers))
    assert ok(client.get("/_mock/changes", headers=headers))["version"] == first["version"]
    ok(client.post("/v1/images", json={"prompt": "x"}, headers=key), 201)
    second = ok(client.get("/_mock/changes", headers=headers))
    assert second["version"] != first["version"]
    ok(client.post("/_mock/clock/freeze", headers=headers))
    third = ok(client.get("/_mock/changes", headers=headers))
    assert third["version"] != second["version"]
    assert third["clock"]["frozen"] is True


def test_changes_version_moves_without_a_journal(client_for: Any) -> None:
    quiet = client_for(journal_size=0)
    key = team()
    before = ok(quiet.get("/_mock/changes", headers=key))["version"]
    ok(quiet.post("/v1/images", json={"prompt": "x"}, headers=key), 201)
    assert ok(quiet.get("/_mock/changes", headers=key))["version"] != before


def test_dashboard_reads_are_not_journaled_but_its_changes_are(client: TestClient) -> None:
    key = team()
    ok(client.get("/_mock/team", headers={**key, **UI}))
    ok(client.get("/_mock/team", headers=key))
    ok(client.post("/_mock/clock/advance", json={"seconds": 1}, headers={**key, **UI}))
    entries = ok(client.get("/_mock/journal", headers=key))["data"]
    assert [(row["operation"], DASHBOARD_HEADER.lower() in row["request_headers"]) for row in entries] == [
        ("mock_advance_clock", True),
        ("mock_get_team", False),
    ]


# --- the shell and its files ---------------------------------------------------------------------------------


def test_shell_is_served_with_a_strict_policy_and_no_inline_script(client: TestClient) -> None:
    response = client.get("/_mock/ui")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self';" in policy
    assert "frame-ancestors 'none'" in policy
    assert "unsafe" not in policy
    assert response.headers["x-frame-options"] == "DENY"
    assert not re.search(r"<script(?![^>]*\bsrc=)", response.text)  # every script is a file
    assert "on" + "click=" not in response.text


def test_static_files_are_exactly_the_shipped_ones(client: TestClient) -> None:
    script = client.get("/_mock/ui/static/dashboard.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert client.get("/_mock/ui/static/dashboard.css").headers["content-type"].startswith("text/css")
    for name in ("..%2Fapi%2Fui.py", "dashboard.html", "missing.js", "%2e%2e"):
        assert_envelope(client.get(f"/_mock/ui/static/{name}"), 404, "resource_not_found")


def test_script_never_builds_html_from_strings() -> None:
    source = (STATIC / "dashboard.js").read_text(encoding="utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in source, sink


def test_package_data_ships_in_the_wheel_configuration() -> None:
    """hatch ships every file under mockserver/ (no exclusion names ui/); the files exist where ui.py reads them."""
    root = Path(__file__).resolve().parents[3]
    assert "exclude" not in (root / "pyproject.toml").read_text(encoding="utf-8").split("[tool.hatch.build")[1]
    assert {path.name for path in STATIC.iterdir()} >= {"dashboard.js", "dashboard.css"}


# --- the guard -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/_mock/ui", "/_mock/ui/static/dashboard.js", "/_mock/changes", "/_mock/teams"])
def test_nothing_of_the_dashboard_answers_beyond_loopback_without_a_token(path: str) -> None:
    app = create_app(make_settings(), clock=VirtualClock(START), store=InMemoryStore(), sender=RecordingSender())
    with TestClient(app, base_url=BASE_URL, client=("10.9.8.7", 4000)) as remote:
        assert_envelope(remote.get(path, headers=team()), 404, "resource_not_found")


def test_with_a_token_the_shell_loads_and_every_view_needs_the_token() -> None:
    settings = make_settings(control_token="s3cret")
    app = create_app(settings, clock=VirtualClock(START), store=InMemoryStore(), sender=RecordingSender())
    with TestClient(app, base_url=BASE_URL, client=("10.9.8.7", 4000)) as remote:
        shell = remote.get("/_mock/ui")
        assert shell.status_code == 200
        assert "al_live_" not in shell.text.replace("al_live_…", "")  # the shell holds no key, no data
        key = team()
        for path in ("/_mock/changes", "/_mock/generations", "/_mock/teams?global=true", "/_mock/ledger"):
            assert_envelope(remote.get(path, headers=key), 401, "missing_api_key")
            assert remote.get(path, headers={**key, TOKEN_HEADER: "s3cret"}).status_code == 200


# --- other browser pages -------------------------------------------------------------------------------------------


def test_a_state_change_from_another_origin_is_refused(client: TestClient) -> None:
    key = team()
    before = ok(client.get("/_mock/clock", headers=key))["now"]
    for browser in ({"Origin": "http://evil.example"}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"}):
        response = client.post("/_mock/clock/advance", json={"seconds": 60}, headers={**key, **browser})
        assert_envelope(response, 403, "foreign_origin")
        assert response.json()["error"]["message"].startswith(ForeignOriginError.message.split("(")[0])
    assert ok(client.get("/_mock/clock", headers=key))["now"] == before
    same = {"Origin": LOCAL, "Sec-Fetch-Site": "same-origin"}
    assert ok(client.post("/_mock/clock/advance", json={"seconds": 60}, headers={**key, **same}))["now"] != before


def test_a_cross_site_form_post_cannot_move_anything(client: TestClient) -> None:
    """A form can send neither X-Api-Key nor JSON's type: refused whatever its Origin says."""
    form = {"Content-Type": "application/x-www-form-urlencoded", "Origin": "http://evil.example"}
    response = client.post("/_mock/reset?global=true", content=b"seconds=1", headers=form)
    assert response.status_code in (401, 403)
    response = client.post("/_mock/reset?global=true", content=b"x=1", headers={"Content-Type": form["Content-Type"]})
    assert_envelope(response, 401, "missing_api_key")


def test_a_browser_reaching_loopback_under_another_name_is_beyond_loopback(client: TestClient) -> None:
    """DNS rebinding: a page of evil.example renamed to 127.0.0.1 is same-origin to itself, but its Host is not ours."""
    rebound = {**team(), "Host": "evil.example:8080", "Sec-Fetch-Site": "same-origin"}
    assert_envelope(client.get("/_mock/teams?global=true", headers=rebound), 404, "resource_not_found")
    assert_envelope(
        client.get("/_mock/ui", headers={"Host": "evil.example", "Sec-Fetch-Site": "none"}), 404, "resource_not_found"
    )
    for host in ("localhost:8080", "127.0.0.1:8080", "[::1]:8080"):
        assert client.get("/_mock/ui", headers={"Host": host, "Sec-Fetch-Site": "none"}).status_code == 200
