"""Hostile input gets a documented 4xx in the envelope: malformed JSON, wrong content types, huge bodies,
deep nesting, invalid UTF-8, NUL bytes, absurd headers and query strings (in process; the same limits under
uvicorn are in ``tests/e2e/test_limits_e2e.py``)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from mockserver import InMemoryStore, VirtualClock, create_app
from mockserver.core.payload import MAX_DEPTH, TOO_DEEP
from tests.conftest import BASE_URL, START, ClientFactory, make_settings, new_api_key
from tests.helpers import assert_envelope

NOT_JSON = "The request body is not valid JSON."
NOT_AN_OBJECT = "The request body must be a JSON object."
JSON_ONLY = "Content-Type must be application/json."
JSON = {"Content-Type": "application/json"}

# Public operations with a JSON body, and control routes (which read JSON whatever the content type).
PUBLIC_JSON = [
    "/v1/images",
    "/v1/images/estimate",
    "/v1/videos",
    "/v1/videos/estimate",
    "/v1/webhook_endpoints",
    "/v1/characters",
    "/v1/characters/uploads/init",
    "/v1/characters/uploads/classify",
]
CONTROL_JSON = ["/_mock/clock/advance", "/_mock/scenarios", "/_mock/keys"]

MALFORMED = [
    pytest.param(b'{"prompt": "x"', id="truncated"),
    pytest.param(b'{"prompt": "x"} trailing', id="trailing-garbage"),
    pytest.param(b"{'prompt': 'x'}", id="single-quotes"),
    pytest.param(b'{"prompt": "x",}', id="trailing-comma"),
    pytest.param(b'{"seed": NaN}', id="nan"),
    pytest.param(b'{"seed": 1e999}', id="float-overflow"),
    pytest.param(b'{"seed": 1' + b"0" * 5000 + b"}", id="huge-integer"),
    pytest.param(b'\xef\xbb\xbf{"prompt": "x"}', id="utf8-bom"),
    pytest.param('{"prompt": "x"}'.encode("utf-16"), id="utf16"),
    pytest.param(b'{"prompt": "\xff\xfe"}', id="invalid-utf8"),
    pytest.param(b'{"prompt": "\xc0\xaf"}', id="overlong-utf8"),
    pytest.param(b'{"prompt": "a\x00b"}', id="raw-nul-byte"),
    pytest.param(b'{"prompt": "\\ud800"}', id="lone-surrogate"),
    pytest.param(b"\x00" * 64, id="only-nul-bytes"),
    pytest.param(b"\n", id="only-a-newline"),  # the control-plane fuzz: POST /_mock/keys created a key from it
    pytest.param(b" \t\r\n ", id="only-whitespace"),
    pytest.param(b"[" * 5000 + b"]" * 5000, id="nesting-beyond-the-parser"),
]
NOT_OBJECTS = [b"[]", b'"prompt"', b"42", b"null", b"true"]


def nested(depth: int, *, opener: bytes = b"[", closer: bytes = b"]") -> bytes:
    """A body whose ``extra`` field nests so that the whole body is ``depth`` levels deep."""
    return b'{"prompt": "x", "seconds": 1, "extra": ' + opener * (depth - 1) + b"1" + closer * (depth - 1) + b"}"


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    app = create_app(
        make_settings(rate_limits_enabled=False, max_upload_bytes=64 * 1024, max_body_bytes=16 * 1024),
        clock=VirtualClock(START),
        store=InMemoryStore(),
    )
    with TestClient(app, base_url=BASE_URL) as test_client:
        yield test_client


@pytest.fixture
def headers() -> dict[str, str]:
    return {"X-Api-Key": new_api_key()}


def journal_still_renders(client: TestClient, headers: dict[str, str]) -> list[Any]:
    response = client.get("/_mock/journal", headers=headers)
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


# --- bodies ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PUBLIC_JSON + CONTROL_JSON)
@pytest.mark.parametrize("raw", MALFORMED)
def test_malformed_json_is_400_invalid_format(client, headers, path, raw):
    response = client.post(path, headers={**headers, **JSON}, content=raw)
    assert_envelope(response, 400, "invalid_format", message=NOT_JSON)


@pytest.mark.parametrize("path", PUBLIC_JSON + CONTROL_JSON)
@pytest.mark.parametrize("raw", NOT_OBJECTS)
def test_json_that_is_not_an_object_is_400(client, headers, path, raw):
    response = client.post(path, headers={**headers, **JSON}, content=raw)
    assert_envelope(response, 400, "invalid_format", message=NOT_AN_OBJECT)


def test_no_body_at_all_is_an_empty_object(client, headers):
    assert client.post("/_mock/keys", headers=headers).status_code == 201  # the documented "key generated"
    response = client.post("/v1/images", headers={**headers, **JSON}, content=b"")
    assert_envelope(response, 400, "missing_field", "prompt")


@pytest.mark.parametrize("path", PUBLIC_JSON)
@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/xml",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "x/;;;=",
        "",
        "application/jso",
        "text/json-but-not",
    ],
)
def test_public_json_routes_refuse_other_content_types(client, headers, path, content_type):
    response = client.post(path, headers={**headers, "Content-Type": content_type}, content=b'{"prompt": "x"}')
    assert_envelope(response, 400, "invalid_format", message=JSON_ONLY)


@pytest.mark.parametrize("path", PUBLIC_JSON + CONTROL_JSON)
@pytest.mark.parametrize(
    ("depth", "opener", "closer"),
    [
        (MAX_DEPTH + 1, b"[", b"]"),
        (MAX_DEPTH + 1, b'{"a": ', b"}"),
        (300, b"[", b"]"),  # orjson parses it but cannot encode it again
        (1000, b'{"a": ', b"}"),  # json (the idempotency fingerprint) recursed to death on this
    ],
)
def test_json_nested_too_deep_is_400_even_with_an_idempotency_key(client, headers, path, depth, opener, closer):
    body = nested(depth, opener=opener, closer=closer)
    for extra in ({}, {"Idempotency-Key": "deep"}):
        response = client.post(path, headers={**headers, **JSON, **extra}, content=body)
        assert_envelope(response, 400, "invalid_format", message=TOO_DEEP)
    assert journal_still_renders(client, headers)


def test_json_nested_to_the_limit_reaches_validation(client, headers):
    response = client.post("/_mock/clock/advance", headers={**headers, **JSON}, content=nested(MAX_DEPTH))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b'{"prompt": "a\\u0000b"}', "prompt"),
        (b'{"prompt": "x", "negative_prompt": "\\u0000"}', "negative_prompt"),
        (b'{"prompt": "x", "reference_image_urls": ["https://a.example/\\u0000"]}', "reference_image_urls[0]"),
        (b'{"prompt": "x", "extra": {"deep": ["ok", "\\u0000"]}}', "extra.deep[1]"),
        (b'{"prompt": "x", "a\\u0000": 1}', None),
    ],
)
def test_nul_characters_in_json_strings_are_400_naming_the_field(client, headers, body, param):
    for path in ("/v1/images", "/v1/images/estimate"):
        response = client.post(path, headers={**headers, **JSON}, content=body)
        assert_envelope(response, 400, "invalid_format", param)


def test_nul_character_in_control_plane_bodies_is_400(client, headers):
    body = b'{"when": {"prompt_contains": "\\u0000"}, "then": "fail"}'
    response = client.post("/_mock/scenarios", headers=headers, content=body)
    assert_envelope(response, 400, "invalid_format", "when.prompt_contains")


def test_json_body_over_the_json_limit_is_413_declared_or_streamed(client, headers):
    body = b'{"prompt": "' + b"x" * (17 * 1024) + b'"}'

    def chunks() -> Iterator[bytes]:
        yield from (body[i : i + 4096] for i in range(0, len(body), 4096))

    for content in (body, chunks()):
        response = client.post("/v1/images", headers={**headers, **JSON}, content=content)
        assert_envelope(response, 413, "value_out_of_range", message="The request body exceeds 16384 bytes.")


def test_any_body_over_the_upload_limit_is_413_before_routing(client, headers):
    for path in ("/v1/files", "/v1/images", "/v1/nowhere", "/_mock/clock/advance"):
        response = client.post(path, headers={**headers, **JSON}, content=b"x" * (65 * 1024))
        assert_envelope(response, 413, "value_out_of_range", message="The request body exceeds 65536 bytes.")


def test_chunked_multipart_upload_over_the_limit_is_413(client, headers):
    """Without Content-Length the body is counted as it arrives: Starlette spools file parts without a limit."""
    boundary = b"hostile"
    head = (
        b'--hostile\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nreference\r\n'
        b'--hostile\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
        b"Content-Type: image/png\r\n\r\n"
    )

    def chunks() -> Iterator[bytes]:
        yield head
        for _ in range(64):  # 4 MiB: far beyond the 64 KiB cap of this app
            yield b"\x89PNG" + b"\x00" * (64 * 1024 - 4)
        yield b"\r\n--hostile--\r\n"

    response = client.post(
        "/v1/files",
        headers={**headers, "Content-Type": f"multipart/form-data; boundary={boundary.decode()}"},
        content=chunks(),
    )
    assert_envelope(response, 413, "value_out_of_range", message="The request body exceeds 65536 bytes.")


@pytest.mark.parametrize("declared", [b"12abc", b"-1", b""], ids=["letters", "negative", "empty"])
def test_a_body_whose_declared_length_is_unreadable_is_counted_as_it_arrives(
    client: TestClient, headers: dict[str, str], declared: bytes
) -> None:
    """Only a readable ``Content-Length`` (or no body at all) lets the body go uncounted: an in-process client can
    declare anything and send more (under uvicorn the parser refuses such a head)."""
    boundary = "hostile"
    part = (
        b'--hostile\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n'
    )
    bodies = [part, *[b"\x00" * (64 * 1024)] * 4, b"\r\n--hostile--\r\n"]
    raw_headers = [
        (b"host", b"testserver"),
        (b"x-api-key", headers["X-Api-Key"].encode()),
        (b"content-type", f"multipart/form-data; boundary={boundary}".encode()),
        (b"content-length", declared),
    ]
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/v1/files", "raw_path": b"/v1/files", "query_string": b"", "root_path": "", "headers": raw_headers,
        "client": ("127.0.0.1", 50000), "server": ("testserver", 80),
    }  # fmt: skip
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if bodies:
            body = bodies.pop(0)
            return {"type": "http.request", "body": body, "more_body": bool(bodies)}
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(client.app(scope, receive, send))
    assert sent[0]["status"] == 413
    assert orjson.loads(sent[1]["body"])["error"]["code"] == "value_out_of_range"


def test_character_upload_over_10_mb_is_400_and_streamed_past_the_cap_is_413(client_for: ClientFactory):
    client = client_for(rate_limits_enabled=False)
    headers = {"X-Api-Key": new_api_key()}
    init = {"filename": "big.png", "extension": "png", "content_type": "image/png"}
    ticket = client.post("/v1/characters/uploads/init", json=init, headers=headers).json()
    over = b"\x89PNG" + b"\x00" * (10 * 1024**2)
    response = client.put(ticket["upload_url"], content=over, headers=ticket["upload_headers"])
    assert_envelope(response, 400, "value_out_of_range", "body")
    ticket = client.post("/v1/characters/uploads/init", json=init, headers=headers).json()

    def endless() -> Iterator[bytes]:
        for _ in range(12 * 16):  # 12 MiB, without Content-Length
            yield b"\x00" * (64 * 1024)

    response = client.put(ticket["upload_url"], content=endless(), headers=ticket["upload_headers"])
    assert response.status_code in (400, 413), response.text  # whichever limit reads the body first
    assert response.json()["error"]["code"] == "value_out_of_range"


@pytest.mark.parametrize(("fields", "files"), [(21, 1), (1, 3)])
def test_multipart_with_too_many_parts_is_400(client, headers, fields, files):
    data = {"purpose": "reference", **{f"f{i}": "v" for i in range(fields - 1)}}
    uploads = [(f"file{i}", (f"{i}.png", b"x", "image/png")) for i in range(files)]
    response = client.post("/v1/files", headers=headers, data=data, files=uploads)
    error = assert_envelope(response, 400, "invalid_format")
    assert error["message"].startswith("Malformed multipart body: Too many")


def test_file_metadata_nested_too_deep_is_400(client, headers):
    deep = '{"a": ' * 300 + "1" + "}" * 300
    response = client.post(
        "/v1/files",
        headers={**headers, "Idempotency-Key": "meta"},
        data={"purpose": "reference", "metadata": deep},
        files={"file": ("a.png", b"not read", "image/png")},
    )
    assert_envelope(response, 400, "invalid_format", "metadata", message=TOO_DEEP)


# --- heads and query strings -------------------------------------------------------------------------


def test_header_section_over_the_limit_is_431(client, headers):
    for big in ({"X-Big": "a" * (33 * 1024)}, {f"X-H{i}": "v" * 40 for i in range(800)}):
        response = client.get("/v1/balance", headers={**headers, **big})
        error = assert_envelope(response, 431, "value_out_of_range")
        assert error["message"] == "The request line and headers exceed 32768 bytes."


def test_header_section_under_the_limit_is_served(client, headers):
    response = client.get("/v1/balance", headers={**headers, "X-Big": "a" * (30 * 1024)})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("path", ["/v1/images", "/v1/nowhere", "/_mock/journal"])
def test_query_string_over_the_limit_is_414(client, headers, path):
    response = client.get(path + "?limit=1&pad=" + "a" * (8 * 1024), headers=headers)
    assert_envelope(response, 414, "value_out_of_range", message="The request path and query string exceed 8192 bytes.")


def test_path_over_the_limit_is_414(client, headers):
    response = client.get("/v1/images/img_" + "A" * (8 * 1024), headers=headers)
    assert_envelope(response, 414, "value_out_of_range")


@pytest.mark.parametrize(
    ("query", "status", "code", "param"),
    [
        ("limit=%zz", 400, "invalid_format", "limit"),
        ("limit=%00", 400, "invalid_format", "limit"),
        ("limit=1%00", 400, "invalid_format", "limit"),
        ("limit=99999999999999999999999999", 400, "invalid_format", "limit"),
        ("limit=-1", 400, "value_out_of_range", "limit"),
        ("starting_after=%ff%fe", 400, "resource_not_found", "starting_after"),
        ("starting_after=img_%00", 400, "resource_not_found", "starting_after"),
    ],
)
def test_absurd_query_values_are_400_naming_the_parameter(client, headers, query, status, code, param):
    assert_envelope(client.get(f"/v1/images?{query}", headers=headers), status, code, param)


@pytest.mark.parametrize(
    "path", ["/v1/images/%00", "/v1/images/%ff%fe", "/v1/images/img_%0d%0aX-Injected:%20yes", "/v1/files/..%2f..%2f"]
)
def test_absurd_path_segments_are_404(client, headers, path):
    response = client.get(path, headers=headers)
    assert_envelope(response, 404, "resource_not_found")
    assert "x-injected" not in response.headers


def test_journal_renders_after_every_kind_of_hostile_body(client, headers):
    for raw in (nested(300), b'{"prompt": "\\u0000"}', b"\xff\xfe", b'{"a": ' * 2000):
        client.post("/v1/images", headers={**headers, **JSON}, content=raw)
    entries = journal_still_renders(client, headers)
    assert len(entries) == 4
    assert all(entry["status"] == 400 for entry in entries)
