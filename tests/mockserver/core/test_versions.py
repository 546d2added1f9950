"""Tests for mockserver.core.versions and the Aurous-Version echo over HTTP (reference §1.3)."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from mockserver.core.errors import InvalidFormatError, UnknownVersionError
from mockserver.core.versions import DEFAULT_VERSION, PUBLISHED_VERSIONS, echo_version, resolve_version
from tests.helpers import assert_envelope

HEADER = "Aurous-Version"
MALFORMED = ["2026-5-1", "yesterday", "2026-02-30", "2026-13-01", "20260515", "2026-05-15T00:00:00Z", ""]


def test_default_version_is_the_only_published_one() -> None:
    assert DEFAULT_VERSION == "2026-05-15"
    assert PUBLISHED_VERSIONS == ("2026-05-15",)


def test_resolve_absent_uses_team_pin() -> None:
    assert resolve_version(None, "2026-05-15") == "2026-05-15"


def test_resolve_absent_without_pin_uses_system_default() -> None:
    assert resolve_version(None, None) == "2026-05-15"


def test_resolve_published_version() -> None:
    assert resolve_version("2026-05-15", None) == "2026-05-15"


@pytest.mark.parametrize("prior", ["2025-01-01", "2026-05-14", "1999-12-31"])
def test_resolve_prior_date_is_first_published(prior: str) -> None:
    assert resolve_version(prior, None) == "2026-05-15"


@pytest.mark.parametrize("future", ["2027-01-01", "2026-05-16"])
def test_resolve_unpublished_future_is_unknown_version(future: str) -> None:
    with pytest.raises(UnknownVersionError) as caught:
        resolve_version(future, "2026-05-15")
    assert caught.value.code == "unknown_version"
    assert caught.value.status == 400
    assert caught.value.param == HEADER
    assert future in caught.value.detail


@pytest.mark.parametrize("value", MALFORMED)
def test_resolve_malformed_is_invalid_format(value: str) -> None:
    with pytest.raises(InvalidFormatError) as caught:
        resolve_version(value, None)
    assert caught.value.code == "invalid_format"
    assert caught.value.param == HEADER


@pytest.mark.parametrize("value", [None, "2026-05-15", "2025-01-01", "2027-01-01", "yesterday"])
def test_echo_version_never_raises(value: str | None) -> None:
    assert echo_version(value) == "2026-05-15"


# --- through HTTP -------------------------------------------------------------------------------


def test_http_absent_version_echoes_default(client: TestClient, headers: dict[str, str]) -> None:
    response = client.get("/v1/balance", headers=headers)
    assert response.status_code == 200
    assert response.headers[HEADER] == "2026-05-15"


@pytest.mark.parametrize("sent", ["2026-05-15", "2025-01-01"])
def test_http_accepted_version_echoes_applied(client: TestClient, headers: dict[str, str], sent: str) -> None:
    response = client.get("/v1/balance", headers={**headers, HEADER: sent})
    assert response.status_code == 200
    assert response.headers[HEADER] == "2026-05-15"


def test_http_unknown_version_is_400(client: TestClient, headers: dict[str, str]) -> None:
    response = client.get("/v1/pricing", headers={**headers, HEADER: "2027-01-01"})
    assert_envelope(response, 400, "unknown_version", param=HEADER)
    assert response.headers[HEADER] == "2026-05-15"


@pytest.mark.parametrize("value", ["2026-5-1", "yesterday", "2026-02-30"])
def test_http_malformed_version_is_invalid_format(client: TestClient, headers: dict[str, str], value: str) -> None:
    response = client.get("/v1/balance", headers={**headers, HEADER: value})
    assert_envelope(response, 400, "invalid_format", param=HEADER)
    assert response.headers[HEADER] == "2026-05-15"


@pytest.mark.parametrize("sent", [None, "2026-05-15", "2027-01-01", "yesterday"])
def test_http_version_echoed_on_401(client: TestClient, sent: str | None) -> None:
    response = client.get("/v1/balance", headers={HEADER: sent} if sent else {})
    assert_envelope(response, 401, "missing_api_key")
    assert response.headers[HEADER] == "2026-05-15"


@pytest.mark.parametrize("sent", [None, "2025-01-01", "2027-01-01"])
def test_http_version_echoed_on_unknown_route(client: TestClient, headers: dict[str, str], sent: str | None) -> None:
    response = client.get("/v1/nothing-here", headers={**headers, **({HEADER: sent} if sent else {})})
    assert_envelope(response, 404, "resource_not_found")
    assert response.headers[HEADER] == "2026-05-15"


def test_http_version_echoed_on_legacy_redirect(client: TestClient) -> None:
    response = client.post("/v1/generations", follow_redirects=False)
    assert response.status_code == 308
    assert response.headers[HEADER] == "2026-05-15"
