"""Strict keys: only declared keys authenticate the public API, so a client's handling of a wrong key can be tested."""

from __future__ import annotations

from typing import Any

import pytest

from mockserver.core.accounts import UNKNOWN_KEY
from mockserver.settings import KeyConfig
from tests.conftest import ClientFactory, new_api_key
from tests.helpers import assert_envelope

# The authentication page's example of the dashboard's 14-character preview of a key.
TRUNCATED = "al_live_8jKpQ4"
DECLARED = "al_live_" + "8jKpQ4" + "ab" * 29  # a whole key whose preview is TRUNCATED


def strict(client_for: ClientFactory, **overrides: Any) -> Any:
    return client_for(strict_keys=True, keys=[KeyConfig(key=DECLARED, credits=50)], **overrides)


def test_default_any_well_formed_key_gets_its_own_team(client_for: ClientFactory) -> None:
    client = client_for()
    response = client.get("/v1/balance", headers={"X-Api-Key": TRUNCATED})
    assert response.status_code == 200
    assert response.json()["credits"] == 1000


def test_strict_keys_refuse_the_truncated_preview(client_for: ClientFactory) -> None:
    client = strict(client_for)
    for path in ("/v1/balance", "/v1/images"):
        response = client.get(path, headers={"X-Api-Key": TRUNCATED})
        assert_envelope(response, 401, "invalid_api_key", message=UNKNOWN_KEY)
    bearer = client.post("/v1/images", json={"prompt": "p"}, headers={"Authorization": f"Bearer {TRUNCATED}"})
    assert_envelope(bearer, 401, "invalid_api_key")
    # Refused, not provisioned: the key is still unknown on the next request.
    assert_envelope(client.get("/v1/team", headers={"X-Api-Key": TRUNCATED}), 401, "invalid_api_key")


def test_strict_keys_accept_the_configured_key(client_for: ClientFactory) -> None:
    client = strict(client_for)
    response = client.get("/v1/balance", headers={"X-Api-Key": DECLARED})
    assert response.status_code == 200
    assert response.json()["credits"] == 50
    assert client.post("/v1/images", json={"prompt": "p"}, headers={"X-Api-Key": DECLARED}).status_code == 201


def test_strict_keys_accept_a_key_declared_through_the_control_plane(client_for: ClientFactory) -> None:
    client = strict(client_for)
    added = new_api_key()
    assert_envelope(client.get("/v1/balance", headers={"X-Api-Key": added}), 401, "invalid_api_key")
    declared = client.post("/_mock/keys", json={"key": added, "scope": "read"}, headers={"X-Api-Key": DECLARED})
    assert declared.status_code == 201, declared.text
    balance = client.get("/v1/balance", headers={"X-Api-Key": added})
    assert (balance.status_code, balance.json()["credits"]) == (200, 50)  # the declaring key's team
    assert_envelope(client.post("/v1/images", json={"prompt": "p"}, headers={"X-Api-Key": added}), 403, "missing_scope")


def test_strict_keys_a_key_used_on_the_control_plane_is_declared(client_for: ClientFactory) -> None:
    """A test's setup through the control plane (``aurous_mock``'s handle) provisions its key, as it always did."""
    client = strict(client_for)
    own = new_api_key()
    assert client.patch("/_mock/team", json={"credits": 7}, headers={"X-Api-Key": own}).status_code == 200
    assert client.get("/v1/balance", headers={"X-Api-Key": own}).json()["credits"] == 7


def test_strict_keys_keep_revoked_and_malformed_answers(client_for: ClientFactory) -> None:
    revoked = new_api_key()
    client = client_for(strict_keys=True, keys=[KeyConfig(key=revoked, revoked=True)])
    assert_envelope(client.get("/v1/balance", headers={"X-Api-Key": revoked}), 401, "revoked_api_key")
    assert_envelope(client.get("/v1/balance", headers={"X-Api-Key": "sk-nope"}), 401, "invalid_api_key")
    assert_envelope(client.get("/v1/balance"), 401, "missing_api_key")


def test_strict_keys_an_output_url_read_with_an_unknown_key_is_401(client_for: ClientFactory) -> None:
    client = strict(client_for)
    created = client.post("/v1/images", json={"prompt": "p"}, headers={"X-Api-Key": DECLARED}).json()
    response = client.get(f"/v1/images/{created['id']}/output/0", headers={"X-Api-Key": TRUNCATED})
    assert_envelope(response, 401, "invalid_api_key")


@pytest.mark.parametrize(("env", "expected"), [(None, False), ("true", True)])
def test_strict_keys_setting_reads_the_environment(
    monkeypatch: pytest.MonkeyPatch, env: str | None, expected: bool
) -> None:
    from mockserver.settings import Settings

    if env is not None:
        monkeypatch.setenv("AUROUS_MOCK_STRICT_KEYS", env)
    assert Settings().strict_keys is expected
