"""Tests for mockserver.core.accounts: authentication, scopes and team provisioning (reference §1.2)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from starlette.testclient import TestClient

from mockserver.clock import VirtualClock
from mockserver.core.accounts import KEY_PATTERN, Accounts, require_scope, team_id_for
from mockserver.core.errors import InvalidApiKeyError, MissingApiKeyError, MissingScopeError, RevokedApiKeyError
from mockserver.core.models import ApiKey
from mockserver.settings import KeyConfig, Settings
from mockserver.store import InMemoryStore
from tests.conftest import ClientFactory, new_api_key
from tests.helpers import assert_envelope

START = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
TEAM_ID = r"^team_[0-9A-HJKMNP-TV-Z]{26}$"

DECLARED = [
    {"key": "al_live_revoked", "revoked": True},
    {"key": "al_live_reader", "scope": "read"},
    {"key": "al_live_writer", "scope": "write"},
    {"key": "al_live_one", "team_id": "team_shared", "credits": 42, "team_name": "Acme Studio"},
    {"key": "og_two", "team_id": "team_shared"},
    {
        "key": "al_live_exempt",
        "billing_mode": "exempt",
        "default_api_version": "2026-05-15",
        "billing_email": "billing@acme.com",
    },
]


@pytest.fixture
def declared(client_for: ClientFactory) -> TestClient:
    return client_for(keys=DECLARED)


def accounts(*keys: KeyConfig, **settings: object) -> Accounts:
    result = Accounts(InMemoryStore(), VirtualClock(START), Settings(keys=list(keys), **settings))
    result.bootstrap()
    return result


# --- unit ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["al_live_test", "og_legacy123", "al_live_" + "ab" * 32, "og_x"])
def test_key_pattern_accepts_documented_prefixes(key: str) -> None:
    assert KEY_PATTERN.match(key)


@pytest.mark.parametrize("key", ["nope", "sk_live_x", "al_live_", "al_test_x", "og_", "AL_LIVE_x", "al_live_a b"])
def test_key_pattern_rejects_other_keys(key: str) -> None:
    assert not KEY_PATTERN.match(key)


def test_team_id_for_is_derived_from_key() -> None:
    assert team_id_for("al_live_test") == "team_5C5QQQNYFMVENBE127PBRSHZ47"
    assert team_id_for("al_live_a") != team_id_for("al_live_b")


@pytest.mark.parametrize("raw", [None, ""])
def test_authenticate_without_key_is_missing(raw: str | None) -> None:
    with pytest.raises(MissingApiKeyError):
        accounts().authenticate(raw)


def test_authenticate_malformed_key_is_invalid() -> None:
    with pytest.raises(InvalidApiKeyError):
        accounts().authenticate("sk_live_x")


def test_authenticate_provisions_team_with_defaults() -> None:
    acc = accounts(default_credits=250, default_billing_mode="exempt", default_scope="write")
    team, key = acc.authenticate("al_live_new")
    assert team.id == team_id_for("al_live_new")
    assert team.credits == 250
    assert team.held == 0
    assert team.billing_mode == "exempt"
    assert team.created_at == START
    assert team.name == "aurous-mock team al_live_new"
    assert key.scope == "write"
    assert acc.authenticate("al_live_new")[0] is team


def test_authenticate_revoked_declared_key() -> None:
    with pytest.raises(RevokedApiKeyError):
        accounts(KeyConfig(key="al_live_gone", revoked=True)).authenticate("al_live_gone")


def test_reset_forgets_team_state_and_redeclares_keys() -> None:
    acc = accounts(KeyConfig(key="al_live_decl", credits=9, scope="read"))
    team, _ = acc.authenticate("al_live_decl")
    team.credits = 1
    other, _ = acc.authenticate("al_live_other")
    other.credits = 2
    acc.reset(team)
    again, key = acc.authenticate("al_live_decl")
    assert again.credits == 9
    assert key.scope == "read"
    assert acc.authenticate("al_live_other")[0].credits == 2


@pytest.mark.parametrize(
    ("have", "need", "allowed"),
    [
        ("read", "read", True),
        ("read", "write", False),
        ("write", "read", True),
        ("write", "write", True),
        ("write", "full", False),
        ("full", "write", True),
    ],
)
def test_require_scope_ranks_read_write_full(have: str, need: str, allowed: bool) -> None:
    key = ApiKey(key="al_live_x", team_id="team_x", scope=have)
    if allowed:
        require_scope(key, need)
    else:
        with pytest.raises(MissingScopeError) as caught:
            require_scope(key, need)
        assert caught.value.status == 403


# --- through HTTP -------------------------------------------------------------------------------


def test_http_no_key_is_missing_api_key(client: TestClient) -> None:
    assert_envelope(client.get("/v1/balance"), 401, "missing_api_key")


@pytest.mark.parametrize("header", [{"X-Api-Key": ""}, {"Authorization": "Bearer "}, {"Authorization": "Basic abc"}])
def test_http_empty_credentials_are_missing_api_key(client: TestClient, header: dict[str, str]) -> None:
    assert_envelope(client.get("/v1/balance", headers=header), 401, "missing_api_key")


@pytest.mark.parametrize("key", ["nope", "sk_live_x"])
def test_http_malformed_key_is_invalid_api_key(client: TestClient, key: str) -> None:
    error = assert_envelope(client.get("/v1/balance", headers={"X-Api-Key": key}), 401, "invalid_api_key")
    assert error["message"] == InvalidApiKeyError.message


def test_invalid_api_key_message_says_what_a_well_formed_key_looks_like() -> None:
    message = InvalidApiKeyError.message
    assert message.startswith("The API key is invalid. ")
    assert "al_live_" in message
    assert "og_" in message
    assert "X-Api-Key" in message


@pytest.mark.parametrize("key", ["al_live_test", "og_legacy123"])
def test_http_short_and_legacy_keys_work(client: TestClient, key: str) -> None:
    assert client.get("/v1/balance", headers={"X-Api-Key": key}).status_code == 200


def test_http_bearer_alias_is_same_team(client: TestClient, api_key: str) -> None:
    via_header = client.get("/v1/team", headers={"X-Api-Key": api_key})
    via_bearer = client.get("/v1/team", headers={"Authorization": f"Bearer {api_key}"})
    assert via_bearer.status_code == 200
    assert via_bearer.json()["id"] == via_header.json()["id"]


def test_http_bearer_scheme_is_case_insensitive(client: TestClient, api_key: str) -> None:
    assert client.get("/v1/team", headers={"Authorization": f"bearer {api_key}"}).status_code == 200


def test_http_x_api_key_wins_over_authorization(client: TestClient, api_key: str) -> None:
    response = client.get("/v1/team", headers={"X-Api-Key": api_key, "Authorization": "Bearer sk_nope"})
    assert response.status_code == 200


def test_http_revoked_key(declared: TestClient) -> None:
    assert_envelope(declared.get("/v1/balance", headers={"X-Api-Key": "al_live_revoked"}), 401, "revoked_api_key")


def test_http_read_scope_can_get(declared: TestClient) -> None:
    for path in ("/v1/balance", "/v1/team", "/v1/pricing", "/v1/loras"):
        assert declared.get(path, headers={"X-Api-Key": "al_live_reader"}).status_code == 200


@pytest.mark.parametrize("path", ["/v1/images", "/v1/videos", "/v1/files", "/v1/images/estimate"])
def test_http_read_scope_cannot_write(declared: TestClient, path: str) -> None:
    # An empty (invalid) body: the scope is checked before the handler parses anything.
    response = declared.post(path, headers={"X-Api-Key": "al_live_reader"}, content=b"")
    assert_envelope(response, 403, "missing_scope")


def test_http_write_scope_passes_scope_check(declared: TestClient) -> None:
    response = declared.post("/v1/images", headers={"X-Api-Key": "al_live_writer"}, json={})
    assert response.status_code != 403


def test_http_fresh_keys_get_separate_default_teams(client: TestClient, settings: Settings) -> None:
    first = client.get("/v1/team", headers={"X-Api-Key": new_api_key()}).json()
    second = client.get("/v1/team", headers={"X-Api-Key": new_api_key()}).json()
    assert first["id"] != second["id"]
    for team in (first, second):
        assert team["id"].startswith("team_")
        assert team["credits"] == settings.default_credits
        assert team["billing_mode"] == "metered"


def test_http_same_key_same_team(client: TestClient, headers: dict[str, str]) -> None:
    assert client.get("/v1/team", headers=headers).json() == client.get("/v1/team", headers=headers).json()


def test_http_declared_keys_share_a_team(declared: TestClient) -> None:
    one = declared.get("/v1/team", headers={"X-Api-Key": "al_live_one"}).json()
    two = declared.get("/v1/team", headers={"X-Api-Key": "og_two"}).json()
    assert one == two
    assert one["id"] == "team_shared"
    assert one["name"] == "Acme Studio"
    assert one["credits"] == 42
    assert declared.get("/v1/balance", headers={"X-Api-Key": "og_two"}).json()["credits"] == 42


def test_http_declared_billing_mode_and_version(declared: TestClient) -> None:
    headers = {"X-Api-Key": "al_live_exempt"}
    team = declared.get("/v1/team", headers=headers)
    balance = declared.get("/v1/balance", headers=headers)
    assert team.json()["billing_mode"] == "exempt"
    assert team.json()["billing_email"] == "billing@acme.com"
    assert balance.json()["billing_mode"] == "exempt"
    assert team.headers["Aurous-Version"] == balance.headers["Aurous-Version"] == "2026-05-15"


def test_http_team_pinned_to_prior_date_resolves_to_published(client_for: ClientFactory) -> None:
    client = client_for(keys=[{"key": "al_live_pinned", "default_api_version": "2026-01-01"}])
    response = client.get("/v1/pricing", headers={"X-Api-Key": "al_live_pinned"})
    assert response.status_code == 200
    assert response.headers["Aurous-Version"] == "2026-05-15"
    assert response.json()["version"] == "2026-05-15"


def test_http_declared_key_without_team_id_gets_derived_team(declared: TestClient) -> None:
    team = declared.get("/v1/team", headers={"X-Api-Key": "al_live_reader"}).json()
    assert team["id"] == team_id_for("al_live_reader")
