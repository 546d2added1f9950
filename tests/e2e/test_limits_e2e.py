"""Limits under real uvicorn (``EmulatorThread``, the protocol ``serve`` uses), spoken over raw sockets.

uvicorn's own protocol buffered a request head of any size and answered malformed HTTP in plain text; the
emulator's stops a head at ``max_header_bytes`` (431) and answers malformed requests with 400, both in the
envelope, and keeps serving the next connection.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from mockserver import Settings
from mockserver.server import MALFORMED
from mockserver.testing import EmulatorThread
from tests.helpers import REQUEST_ID, cli_process

pytestmark = pytest.mark.e2e

TIMEOUT = 20.0
KEY = "al_live_limits_e2e"


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def error(self) -> dict[str, Any]:
        assert self.headers["content-type"] == "application/json"
        error: dict[str, Any] = orjson.loads(self.body)["error"]
        assert REQUEST_ID.match(error["request_id"])
        assert error["request_id"] == self.headers["aurous-request-id"]
        return error


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    settings = Settings(clock="virtual", rate_limits_enabled=False, max_header_bytes=16 * 1024)
    with EmulatorThread(settings) as server:
        yield int(server.base_url.rsplit(":", 1)[1])


def exchange(port: int, *requests: bytes) -> list[Answer]:
    """Send ``requests`` on one connection (the last asks to close it); read the answers until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        try:
            for request in requests:
                sock.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server refused the head and closed before reading all of it
        return _parse(_read_all(sock))


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


def _parse(data: bytes) -> list[Answer]:
    answers = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
        length = int(headers.get("content-length", "0"))
        answers.append(Answer(int(status_line.split()[1]), headers, rest[:length]))
        data = rest[length:]
    return answers


def get(path: str = "/v1/balance", *extra: bytes, close: bool = True) -> bytes:
    lines = [f"GET {path} HTTP/1.1".encode(), b"Host: 127.0.0.1", f"X-Api-Key: {KEY}".encode(), *extra]
    if close:
        lines.append(b"Connection: close")
    return b"\r\n".join([*lines, b"", b""])


@pytest.mark.parametrize("size", [17 * 1024, 1024 * 1024, 20 * 1024 * 1024])
def test_oversized_request_head_is_431_in_the_envelope(port, size):
    [answer] = exchange(port, get("/v1/balance", b"X-Big: " + b"a" * size))
    assert answer.status == 431
    error = answer.error()
    assert (error["type"], error["code"]) == ("invalid_request", "value_out_of_range")
    assert error["message"] == "The request line and headers exceed 16384 bytes."
    assert answer.headers["connection"] == "close"


def test_unterminated_head_is_refused_as_soon_as_it_passes_the_limit(port):
    """The head is not buffered until it ends: a header that never ends is refused once it passes the limit."""
    endless = b"GET /v1/balance HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Endless: " + b"a" * (64 * 1024)
    [answer] = exchange(port, endless)  # no blank line: the request never completes
    assert answer.status == 431


def test_head_of_many_small_headers_over_the_limit_is_431(port):
    many = [f"X-H{i}: v".encode() for i in range(3000)]
    [answer] = exchange(port, get("/v1/balance", *many))
    assert answer.status == 431


def test_head_trickled_in_small_writes_is_counted_across_reads(port):
    request = get("/v1/balance", b"X-Big: " + b"a" * (40 * 1024))
    [answer] = exchange(port, *(request[i : i + 512] for i in range(0, len(request), 512)))
    assert answer.status == 431


def test_head_under_the_limit_is_served(port):
    [answer] = exchange(port, get("/v1/balance", b"X-Big: " + b"a" * (12 * 1024)))
    assert answer.status == 200
    assert orjson.loads(answer.body)["credits"] == 1000.0


def test_body_in_the_same_write_as_the_head_is_not_counted_as_head(port):
    body = b'{"seconds": 1, "pad": "' + b"x" * (256 * 1024) + b'"}'
    head = (
        f"POST /_mock/clock/advance HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Api-Key: {KEY}\r\n"
        f"Content-Type: application/json\r\nConnection: close\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    [answer] = exchange(port, head + body)
    assert answer.status == 200, answer.body


def test_keep_alive_connection_counts_each_head_on_its_own(port):
    requests = [get("/v1/balance", b"X-Pad: " + b"a" * (10 * 1024), close=False) for _ in range(5)]
    answers = exchange(port, *requests, get("/v1/balance", b"X-Big: " + b"a" * (20 * 1024)))
    assert [answer.status for answer in answers] == [200] * 5 + [431]


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"GARBAGE\r\n\r\n", id="no-request-line"),
        pytest.param(b"GET /v1/balance HTTP/9.9\r\nHost: x\r\n\r\n", id="bad-version"),
        pytest.param(b"GET /v1/balance HTTP/1.1\r\nHost: x\r\nX-Api-Key: al_live_a\x00b\r\n\r\n", id="nul-in-header"),
        pytest.param(b"GET /v1/bal\x00ance HTTP/1.1\r\nHost: x\r\n\r\n", id="nul-in-target"),
        pytest.param(b"GET /v1/balance HTTP/1.1\r\nBad Header: x\r\n\r\n", id="space-in-header-name"),
        pytest.param(b"GET /v1/balance HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", id="negative-length"),
        pytest.param(
            b"POST /v1/images HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            id="length-and-chunked",
        ),
        pytest.param(b"\xff\xfe\xfd\r\n\r\n", id="binary"),
    ],
)
def test_malformed_http_is_400_in_the_envelope(port, raw):
    [answer] = exchange(port, raw)
    assert answer.status == 400
    error = answer.error()
    assert (error["code"], error["message"]) == ("invalid_format", MALFORMED)


def test_query_string_over_the_limit_is_414_under_uvicorn(port):
    [answer] = exchange(port, get("/v1/images?pad=" + "a" * (9 * 1024)))
    assert answer.status == 414
    assert answer.error()["code"] == "value_out_of_range"


def test_server_keeps_serving_after_refusals(port):
    for raw in (b"GARBAGE\r\n\r\n", get("/v1/balance", b"X-Big: " + b"a" * (1024 * 1024))):
        exchange(port, raw)
    [answer] = exchange(port, get())
    assert answer.status == 200


def test_serve_with_workers_bounds_heads_in_every_worker(tmp_path: Path) -> None:
    """``serve --workers 2``: uvicorn builds each worker's protocol by name; each binds its own emulator."""
    args = ["serve", "--port", "0", "--store", "sqlite:///state.db", "--workers", "2", "--log-level", "warning"]
    with cli_process(tmp_path, *args) as cli:
        base = cli.first_line(re.compile(r"^aurous-mock \S+ serving on (http://127\.0\.0\.1:\d+)$")).group(1)
        port = int(base.rsplit(":", 1)[1])
        for _ in range(4):  # new connections: both workers answer sooner or later
            [refused] = exchange(port, b"GET /v1/balance HTTP/1.1\r\nHost: x\r\nX-Endless: " + b"a" * (64 * 1024))
            assert refused.status == 431
            assert refused.error()["message"] == "The request line and headers exceed 32768 bytes."
            [malformed] = exchange(port, b"GARBAGE\r\n\r\n")
            assert (malformed.status, malformed.error()["message"]) == (400, MALFORMED)
        [served] = exchange(port, get())
        assert served.status == 200
