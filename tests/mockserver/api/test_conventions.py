"""Conventions every response follows: request ids, the error envelope, 404/405/400/413 (reference §1.4, §1.7)."""

from __future__ import annotations

import re
import string
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from mockserver.api.control import NEVER_BACKWARDS
from tests.conftest import ClientFactory, new_api_key
from tests.helpers import REQUEST_ID, assert_envelope, error_type_for

ADVANCE = "/_mock/clock/advance"  # a POST route that parses a JSON object body
USES_FIXTURE = settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=75)


def test_request_id_on_success(client: TestClient, headers: dict[str, str]) -> None:
    response = client.get("/v1/balance", headers=headers)
    assert REQUEST_ID.match(response.headers["Aurous-Request-Id"])


def test_request_id_unique_per_request(client: TestClient, headers: dict[str, str]) -> None:
    ids = {client.get("/v1/balance", headers=headers).headers["Aurous-Request-Id"] for _ in range(50)}
    ids |= {client.get("/nowhere").headers["Aurous-Request-Id"] for _ in range(10)}
    assert len(ids) == 60


def test_request_ids_reproducible_with_same_seed(client_for: ClientFactory) -> None:
    # Seeded runs reproduce ids; the request id still differs from request to request.
    first, second = client_for(), client_for()
    a = [first.get("/nowhere").headers["Aurous-Request-Id"] for _ in range(3)]
    b = [second.get("/nowhere").headers["Aurous-Request-Id"] for _ in range(3)]
    assert len(set(a)) == 3
    assert a == b


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/balance"), ("GET", "/nowhere"), ("DELETE", "/v1/team"), ("POST", ADVANCE)],
)
def test_request_id_on_errors_equals_envelope(client: TestClient, method: str, path: str) -> None:
    response = client.request(method, path)
    assert response.status_code >= 400
    assert response.json()["error"]["request_id"] == response.headers["Aurous-Request-Id"]


@pytest.mark.parametrize("path", ["/nowhere", "/v1/nothing", "/v2/balance", "/v1/balance/extra", "/"])
def test_unknown_route_is_404_envelope(client: TestClient, headers: dict[str, str], path: str) -> None:
    error = assert_envelope(client.get(path, headers=headers), 404, "resource_not_found")
    assert path in error["message"]


def test_unknown_route_404_needs_no_key(client: TestClient) -> None:
    assert_envelope(client.post("/v1/nothing"), 404, "resource_not_found")


@pytest.mark.parametrize(("method", "path", "allowed"), [("DELETE", "/v1/balance", "GET"), ("POST", "/v1/team", "GET")])
def test_wrong_method_is_405_envelope_with_allow(client: TestClient, method: str, path: str, allowed: str) -> None:
    response = client.request(method, path)
    error = assert_envelope(response, 405, "resource_not_found")
    assert allowed in [m.strip() for m in response.headers["Allow"].split(",")]
    assert method in error["message"]


def test_wrong_method_allow_lists_every_method_of_the_path(client: TestClient) -> None:
    allowed = {m.strip() for m in client.put("/v1/images").headers["Allow"].split(",")}
    assert {"GET", "POST"} <= allowed


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"{not json", "application/json"),
        (b'{"seconds": 1', "application/json"),
        (b"[1, 2]", "application/json"),
        (b'"seconds"', "application/json"),
        (b"42", "application/json"),
        (b"null", "application/json"),
        (b"seconds=1", "application/x-www-form-urlencoded"),
    ],
)
def test_bad_json_body_is_400_envelope(
    client: TestClient, headers: dict[str, str], body: bytes, content_type: str
) -> None:
    response = client.post(ADVANCE, headers={**headers, "Content-Type": content_type}, content=body)
    assert_envelope(response, 400, "invalid_format")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_public_json_route_refuses_other_content_types(
    client: TestClient, headers: dict[str, str], content_type: str
) -> None:
    body = b'{"prompt": "a lighthouse"}'
    response = client.post("/v1/images/estimate", headers={**headers, "Content-Type": content_type}, content=body)
    assert_envelope(response, 400, "invalid_format")
    assert response.json()["error"]["message"] == "Content-Type must be application/json."


def test_control_plane_reads_json_whatever_the_content_type(client: TestClient, headers: dict[str, str]) -> None:
    """``curl -d '{"seconds": 60}'`` sends a form content type; the control plane still reads the JSON."""
    sent = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
    response = client.post(ADVANCE, headers=sent, content=b'{"seconds": 60}')
    assert response.status_code == 200


def test_json_content_type_with_charset_is_accepted(client: TestClient, headers: dict[str, str]) -> None:
    response = client.post(
        ADVANCE, headers={**headers, "Content-Type": "application/json; charset=utf-8"}, content=b'{"seconds": 1}'
    )
    assert response.status_code == 200


def test_empty_json_body_names_missing_field(client: TestClient, headers: dict[str, str]) -> None:
    response = client.post(ADVANCE, headers={**headers, "Content-Type": "application/json"}, content=b"")
    assert_envelope(response, 400, "missing_field", param="seconds")


@pytest.mark.parametrize(
    ("body", "code"),
    [({"seconds": -1}, "value_out_of_range"), ({"seconds": "soon"}, "invalid_format"), ({"other": 1}, "missing_field")],
)
def test_validation_errors_name_the_field(client: TestClient, headers: dict[str, str], body: object, code: str) -> None:
    assert_envelope(client.post(ADVANCE, headers=headers, json=body), 400, code, param="seconds")


def test_body_over_json_limit_is_413(client_for: ClientFactory, headers: dict[str, str]) -> None:
    client = client_for(max_body_bytes=1024)
    body = b'{"seconds": 1, "pad": "' + b"x" * 2000 + b'"}'
    response = client.post(ADVANCE, headers={**headers, "Content-Type": "application/json"}, content=body)
    error = assert_envelope(response, 413, "value_out_of_range")
    assert "1024" in error["message"]


def test_body_over_upload_limit_is_413_before_routing(client_for: ClientFactory, headers: dict[str, str]) -> None:
    client = client_for(max_body_bytes=1024, max_upload_bytes=2048)
    for path in (ADVANCE, "/v1/images", "/nowhere"):
        response = client.post(path, headers={**headers, "Content-Type": "application/json"}, content=b"x" * 4096)
        error = assert_envelope(response, 413, "value_out_of_range")
        assert "2048" in error["message"]


def test_streamed_body_over_limit_is_413(client_for: ClientFactory, headers: dict[str, str]) -> None:
    client = client_for(max_body_bytes=1024)

    def chunks():
        for _ in range(4):
            yield b" " * 512

    response = client.post(ADVANCE, headers={**headers, "Content-Type": "application/json"}, content=chunks())
    assert_envelope(response, 413, "value_out_of_range")


def test_error_message_is_the_constant(client: TestClient, headers: dict[str, str]) -> None:
    client.post(ADVANCE, headers=headers, json={"seconds": 60})
    response = client.post("/_mock/clock/set", headers=headers, json={"now": "2026-06-01T12:00:00Z"})
    assert_envelope(response, 400, "value_out_of_range", param="now", message=NEVER_BACKWARDS)


def test_every_response_carries_version_and_request_id(client: TestClient, headers: dict[str, str]) -> None:
    for method, path in [("GET", "/v1/balance"), ("GET", "/docs"), ("POST", "/v1/generations"), ("GET", "/x")]:
        response = client.request(method, path, headers=headers, follow_redirects=False)
        assert response.headers["Aurous-Version"] == "2026-05-15"
        assert REQUEST_ID.match(response.headers["Aurous-Request-Id"])


# --- properties ---------------------------------------------------------------------------------

_SEGMENT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=12).map(
    lambda text: quote(text, safe="")
)
_KNOWN = st.sampled_from(
    ["images", "videos", "loras", "video_loras", "files", "balance", "team", "pricing", "characters",
     "generations", "video-generations", "output", "estimate", "cancel", "0", "1", "-1",
     "img_01HXMQ7Z3K8Y2ABCDEFGHJKM", "seedance-1-pro", "..", "%2F", "%00"]
)  # fmt: skip
_PATHS = st.lists(st.one_of(_KNOWN, _SEGMENT), min_size=1, max_size=5).map(lambda parts: "/v1/" + "/".join(parts))
_METHODS = st.sampled_from(["GET", "POST", "DELETE", "PATCH", "PUT", "OPTIONS"])
_BODIES = st.one_of(
    st.none(),
    st.binary(max_size=64),
    st.sampled_from([b"{}", b'{"prompt": "a cat"}', b'{"video_lora_id": "seedance-1-pro"}', b"[]", b"{"]),
)
_HEADER_VALUE = st.text(alphabet=string.printable.strip() + " ", max_size=40)


def assert_not_broken(response) -> None:
    """No 5xx except the documented 501 for operations not emulated yet; every error is an envelope."""
    status = response.status_code
    if status >= 500:
        assert status == 501, response.text
        assert response.json()["error"]["code"] == "not_implemented"
    assert REQUEST_ID.match(response.headers["Aurous-Request-Id"])
    assert "Aurous-Version" in response.headers
    if status >= 400 and response.request.method != "HEAD":
        assert response.headers["content-type"].startswith("application/json")
        error = response.json()["error"]
        assert error["type"] == error_type_for(status)
        assert error["request_id"] == response.headers["Aurous-Request-Id"]


@USES_FIXTURE
@given(method=_METHODS, path=_PATHS, body=_BODIES, authenticated=st.booleans())
def test_arbitrary_v1_paths_never_5xx(
    client: TestClient, method: str, path: str, body: bytes | None, authenticated: bool
) -> None:
    headers = {"X-Api-Key": "al_live_fuzz"} if authenticated else {}
    if body is not None:
        headers["Content-Type"] = "application/json"
    response = client.request(method, path, headers=headers, content=body, follow_redirects=False)
    assert_not_broken(response)


_FUZZED_ROUTES = [
    ("GET", "/v1/balance"),
    ("GET", "/v1/pricing"),
    ("POST", "/v1/images"),
    ("POST", ADVANCE),
    ("GET", "/v1/images/img_01HXMQ7Z3K8Y2ABCDEFGHJKM/output/0"),
    ("GET", "/v1/loras/golden-hour-photography"),
]
_FUZZED_HEADERS = [
    "X-Api-Key",
    "Authorization",
    "Aurous-Version",
    "Idempotency-Key",
    "Aurous-Idempotent-Key",
    "Content-Type",
    "Accept",
    "Range",
    "Aurous-Mock-Control-Token",
]


@USES_FIXTURE
@given(
    route=st.sampled_from(_FUZZED_ROUTES),
    values=st.fixed_dictionaries({}, optional=dict.fromkeys(_FUZZED_HEADERS, _HEADER_VALUE)),
    key_prefix=st.sampled_from(["", "al_live_", "og_", "Bearer al_live_"]),
)
def test_arbitrary_header_values_never_5xx(
    client: TestClient, route: tuple[str, str], values: dict[str, str], key_prefix: str
) -> None:
    if "X-Api-Key" in values:
        values["X-Api-Key"] = key_prefix + values["X-Api-Key"]
    method, path = route
    body = b'{"prompt": "a cat", "seconds": 1}' if method == "POST" else None
    response = client.request(method, path, headers=values, content=body)
    assert_not_broken(response)


def test_fresh_key_per_test_helper_is_well_formed() -> None:
    assert re.fullmatch(r"al_live_[0-9a-f]{64}", new_api_key())
