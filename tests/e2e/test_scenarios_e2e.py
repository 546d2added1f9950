"""End to end: the ``drop`` scenario under real uvicorn closes the connection unanswered, and the server carries on."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import new_api_key

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("way", ["header", "control"])
def test_drop_closes_the_connection_without_a_response(live_server: str, way: str) -> None:
    headers = {"X-Api-Key": new_api_key()}
    with httpx.Client(base_url=live_server, timeout=10, headers=headers) as client:
        extra = {}
        if way == "header":
            extra = {"Aurous-Mock-Scenario": "drop"}
        else:
            rule = {"when": {"operation": "getBalance"}, "then": ["drop"]}
            assert client.post("/_mock/scenarios", json=rule).status_code == 201
        with pytest.raises(httpx.RemoteProtocolError, match="without sending"):
            client.get("/v1/balance", headers=extra)
        # The same client opens a new connection; the server is still serving this team and others.
        assert client.get("/v1/balance").status_code == 200
    with httpx.Client(base_url=live_server, timeout=10) as other:
        assert other.get("/v1/balance", headers={"X-Api-Key": new_api_key()}).status_code == 200


def test_dropped_create_is_not_billed_and_its_idempotency_key_is_free(live_server: str) -> None:
    headers = {"X-Api-Key": new_api_key(), "Idempotency-Key": "drop-then-retry"}
    with httpx.Client(base_url=live_server, timeout=10, headers=headers) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            client.post("/v1/images", json={"prompt": "a lighthouse [mock:drop]"})
        assert client.get("/v1/images").json()["data"] == []
        assert client.get("/v1/balance").json()["held_credits"] == 0
        retried = client.post("/v1/images", json={"prompt": "a lighthouse"})
        assert retried.status_code == 201, retried.text
        assert "Aurous-Idempotent-Replayed" not in retried.headers
