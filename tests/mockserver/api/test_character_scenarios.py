"""Scenarios drive character synthesis: fail, stall and a fixed duration, seeded by header or control plane."""

from __future__ import annotations

import pytest

from tests.helpers import assert_envelope

SYNTHESIS_SECONDS = 60


@pytest.fixture
def client(client_for):
    return client_for(character_synthesis_seconds=SYNTHESIS_SECONDS, rate_limits_enabled=False)


def synthesize(client, headers, extra=None):
    response = client.post(
        "/v1/characters", json={"name": "Aurora", "generate": True}, headers={**headers, **(extra or {})}
    )
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "synthesizing"
    return response.json()


def advance(client, headers, seconds):
    assert client.post("/_mock/clock/advance", json={"seconds": seconds}, headers=headers).status_code == 200


def character(client, headers, character_id):
    return client.get(f"/v1/characters/{character_id}", headers=headers).json()


def test_character_synthesis_fails_with_header_scenario(client, headers):
    created = synthesize(client, headers, {"Aurous-Mock-Scenario": "fail=Face not detected"})
    held = client.get("/v1/balance", headers=headers).json()
    assert held["held_credits"] == 4
    advance(client, headers, SYNTHESIS_SECONDS)
    failed = character(client, headers, created["id"])
    assert (failed["status"], failed["error_message"]) == ("failed", "Face not detected")
    balance = client.get("/v1/balance", headers=headers).json()
    assert (balance["held_credits"], balance["credits"]) == (0, held["credits"])  # released, never charged


def test_character_synthesis_stalls_with_control_plane_rule(client, headers):
    rule = {"when": {"operation": "createCharacter"}, "then": ["stall"]}
    assert client.post("/_mock/scenarios", json=rule, headers=headers).status_code == 201
    created = synthesize(client, headers)
    advance(client, headers, 24 * 3600)
    assert character(client, headers, created["id"])["status"] == "synthesizing"
    assert client.delete(f"/v1/characters/{created['id']}", headers=headers).json()["deleted"] is True
    assert client.get("/v1/balance", headers=headers).json()["held_credits"] == 0


def test_character_synthesis_duration_scenario_sets_the_finish(client, headers):
    created = synthesize(client, headers, {"Aurous-Mock-Scenario": "duration=5"})
    advance(client, headers, 4)
    assert character(client, headers, created["id"])["status"] == "synthesizing"
    advance(client, headers, 1)
    assert character(client, headers, created["id"])["status"] == "ready"


def test_character_chain_fails_then_resynthesis_succeeds(client, headers):
    rule = {"when": {"operation": "resynthesizeCharacter"}, "then": ["fail", "succeed"]}
    assert client.post("/_mock/scenarios", json=rule, headers=headers).status_code == 201
    created = synthesize(client, headers)
    advance(client, headers, SYNTHESIS_SECONDS)
    assert character(client, headers, created["id"])["status"] == "ready"
    for expected in ("failed", "ready"):
        response = client.post(f"/v1/characters/{created['id']}/resynthesize", json={}, headers=headers)
        assert response.status_code == 200, response.text
        advance(client, headers, SYNTHESIS_SECONDS)
        assert character(client, headers, created["id"])["status"] == expected


def test_generation_only_outcome_is_refused_for_character_rules(client, headers):
    rule = {"when": {"operation": "createCharacter"}, "then": ["webhook_duplicate"]}
    response = client.post("/_mock/scenarios", json=rule, headers=headers)
    assert_envelope(response, 400, "invalid_format", param="then[0]")
