"""``aurous-mock listen`` (``contracts.listen``): verification, output lines, forwarding, the CLI and a real process."""

from __future__ import annotations

import io
import json
import re
import signal
import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from contracts.listen import Listener, Received, build_app, ready_line, serve
from contracts.signature import HEADER, MissingSignatureError, SignatureMismatchError, sign
from mockserver.cli import main as cli_main
from mockserver.testing import ServerThread
from tests.helpers import cli_process

SECRET = "whsec_test_8jKpQ4nXabc1234abcdef"
AT = datetime(2026, 6, 1, 12, 0, 5, tzinfo=UTC)
STAMP = "2026-06-01T12:00:05Z"
EVENT = {
    "id": "evt_01J0000000000000000000000A",
    "object": "event",
    "event": "image.completed",
    "created_at": "2026-06-01T12:00:04Z",
    "aurous_version": "2026-05-15",
    "synthetic": False,
    "data": {"id": "img_01J0000000000000000000000B", "status": "succeeded", "object": "inference"},
}
DESCRIBED = "image.completed  evt_01J0000000000000000000000A  img_01J0000000000000000000000B succeeded"


def encode(payload: Any) -> bytes:
    return json.dumps(payload).encode()


def delivery_headers(body: bytes, secret: str | None = SECRET, *, timestamp: int | None = None) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "Aurous-Webhook-Id": "we_01J0000000000000000000000C",
        "Aurous-Event-Id": "evt_01J0000000000000000000000A",
        "User-Agent": "Aurous-Webhooks/1.0",
    }
    if secret is not None:
        headers[HEADER] = sign(body, secret, int(time.time()) if timestamp is None else timestamp)
    return headers


class Output:
    """The listener's two streams."""

    def __init__(self) -> None:
        self.out, self.err = io.StringIO(), io.StringIO()

    def lines(self) -> list[str]:
        return self.out.getvalue().splitlines()

    def err_lines(self) -> list[str]:
        return self.err.getvalue().splitlines()


@pytest.fixture
def output() -> Output:
    return Output()


ListenerClient = Callable[..., tuple[Listener, TestClient]]


@pytest.fixture
def listen(output: Output) -> Iterator[ListenerClient]:
    """``listen(secret=..., status=..., forward_to=..., as_json=...)`` → (listener, in-process client)."""
    clients: list[TestClient] = []

    def build(*, secret: str | None = SECRET, as_json: bool = False, **options: Any) -> tuple[Listener, TestClient]:
        listener = Listener(output.out, output.err, as_json=as_json, clock=lambda: AT)
        client = TestClient(build_app(listener, secret, **options), base_url="http://listener")
        clients.append(client.__enter__())
        return listener, client

    yield build
    for client in clients:
        client.__exit__(None, None, None)


class Target(ServerThread):
    """A forward target: a real uvicorn on 127.0.0.1:0 in a thread, answering ``status`` and recording requests."""

    def __init__(self) -> None:
        self.status = 202
        self.requests: list[tuple[str, dict[str, str], bytes]] = []

        async def record(request: Request) -> Response:
            self.requests.append((request.url.path, dict(request.headers), await request.body()))
            return Response(status_code=self.status)

        app = Starlette(routes=[Route("/{path:path}", record, methods=["POST"])])
        super().__init__(app, name="listen-forward-target", lifespan="off")

    @property
    def url(self) -> str:
        return f"{self.base_url}/hooks/aurous"


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    with Target() as running:
        yield running


@pytest.fixture
def fresh_target(target: Target) -> Target:
    target.status, target.requests = 202, []
    return target


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- verification and output ------------------------------------------------------------------------------------


def test_listen_verified_delivery_is_accepted_and_printed(listen: ListenerClient, output: Output):
    listener, client = listen()
    body = encode(EVENT)
    response = client.post("/webhooks", content=body, headers=delivery_headers(body))
    assert response.status_code == 200
    assert output.lines() == [f"{STAMP}  ✓ {DESCRIBED}  (endpoint we_01J0000000000000000000000C)"]
    [received] = listener.received
    assert (received.verified, received.error, received.status, received.path) == (True, None, 200, "/webhooks")
    assert received.body == body
    assert received.payload == EVENT
    assert (received.event_type, received.event_id) == ("image.completed", EVENT["id"])
    assert received.endpoint_id == "we_01J0000000000000000000000C"
    assert received.headers["aurous-event-id"] == EVENT["id"]
    assert received.received_at == AT


def test_listen_bad_signature_is_400_and_printed(listen: ListenerClient, output: Output):
    listener, client = listen()
    body = encode(EVENT)
    response = client.post("/", content=body, headers=delivery_headers(body, "whsec_someone_else"))
    assert response.status_code == 400
    assert response.text == SignatureMismatchError.message
    assert output.lines() == [
        f"{STAMP}  ✗ signature rejected (400): {SignatureMismatchError.message}"
        f"  — {DESCRIBED}  (endpoint we_01J0000000000000000000000C)"
    ]
    [received] = listener.received
    assert (received.verified, received.error, received.status) == (False, SignatureMismatchError.message, 400)


def test_listen_missing_signature_is_400(listen: ListenerClient, output: Output):
    _, client = listen()
    body = encode(EVENT)
    response = client.post("/", content=body, headers=delivery_headers(body, None))
    assert response.status_code == 400
    assert response.text == MissingSignatureError.message
    assert output.lines()[0].startswith(f"{STAMP}  ✗ signature rejected (400): {MissingSignatureError.message}")


def test_listen_tampered_body_is_400(listen: ListenerClient):
    _, client = listen()
    body = encode(EVENT)
    headers = delivery_headers(body)
    assert client.post("/", content=body.replace(b"succeeded", b"failed"), headers=headers).status_code == 400


def test_listen_stale_signature_is_400_unless_tolerance_disabled(listen: ListenerClient, output: Output):
    body = encode(EVENT)
    stale = delivery_headers(body, timestamp=int(time.time()) - 301)
    _, strict = listen()
    assert strict.post("/", content=body, headers=stale).status_code == 400
    assert "old, outside the tolerance of 300 s" in output.lines()[0]
    _, lenient = listen(tolerance=None)
    assert lenient.post("/", content=body, headers=stale).status_code == 200
    _, narrow = listen(tolerance=10)
    assert narrow.post("/", content=body, headers=delivery_headers(body, timestamp=int(time.time()) - 60)).is_error


def test_listen_without_secret_accepts_and_marks_unverified(listen: ListenerClient, output: Output):
    listener, client = listen(secret=None)
    body = encode(EVENT)
    assert client.post("/", content=body, headers=delivery_headers(body, None)).status_code == 200
    assert output.lines() == [f"{STAMP}  · {DESCRIBED}  (endpoint we_01J0000000000000000000000C, unverified)"]
    assert (listener.received[0].verified, listener.received[0].error) == (False, None)


def test_listen_answers_configured_status(listen: ListenerClient):
    _, client = listen(status=503)
    body = encode(EVENT)
    assert client.post("/", content=body, headers=delivery_headers(body)).status_code == 503
    assert client.post("/", content=body, headers=delivery_headers(body, "whsec_x")).status_code == 400


def test_listen_prints_per_generation_callback(listen: ListenerClient, output: Output):
    _, client = listen(secret=None)
    callback = {"event": "video.failed", "data": {"id": "vid_01", "status": "failed"}}
    assert client.post("/callback", json=callback).status_code == 200
    assert output.lines() == [f"{STAMP}  · video.failed  vid_01 failed  (unverified)"]


def test_listen_marks_synthetic_test_fires(listen: ListenerClient, output: Output):
    _, client = listen()
    body = encode({**EVENT, "synthetic": True})
    client.post("/", content=body, headers=delivery_headers(body))
    assert output.lines()[0].endswith("(endpoint we_01J0000000000000000000000C, synthetic)")


@pytest.mark.parametrize(
    ("body", "described"),
    [
        (b"\xff\xfenot json", "(non-JSON body, 10 bytes)"),
        (b"[1, 2]", "(JSON list, 6 bytes)"),
        (b'{"data": "x"}', "(no event type)"),
    ],
)
def test_listen_describes_unusual_bodies(listen: ListenerClient, output: Output, body: bytes, described: str):
    _, client = listen(secret=None)
    assert client.post("/", content=body).status_code == 200
    assert output.lines() == [f"{STAMP}  · {described}  (unverified)"]


def test_listen_accepts_post_on_any_path_only(listen: ListenerClient):
    listener, client = listen(secret=None)
    assert client.post("/a/b/c?x=1", content=b"{}").status_code == 200
    assert listener.received[0].path == "/a/b/c"
    assert client.get("/a").status_code == 405
    assert len(listener.received) == 1


def test_listen_json_mode_prints_events_only_on_stdout(listen: ListenerClient, output: Output):
    _, client = listen(as_json=True)
    body = json.dumps(EVENT, indent=2).encode()  # pretty-printed on the wire, one line on stdout
    client.post("/", content=body, headers=delivery_headers(body))
    client.post("/", content=body, headers=delivery_headers(body, "whsec_x"))
    [line] = output.lines()
    assert json.loads(line) == EVENT
    assert "\n" not in line
    [rejected] = output.err_lines()
    assert "✗ signature rejected (400)" in rejected


def test_listener_wait_for_and_clear(listen: ListenerClient):
    listener, client = listen(secret=None)
    with pytest.raises(TimeoutError, match="0 of 1 webhook deliveries"):
        listener.wait_for(1, timeout=0.01)
    client.post("/", content=b"{}")
    [received] = listener.wait_for(1, timeout=1)
    assert isinstance(received, Received)
    listener.clear()
    assert listener.received == []


def test_listener_without_streams_collects_silently():
    listener = Listener()
    with TestClient(build_app(listener, SECRET)) as client:
        assert client.post("/", content=b"{}").status_code == 400
    assert listener.received[0].error == MissingSignatureError.message


def test_ready_line_hints_verification_without_revealing_secret():
    url = "http://127.0.0.1:4242"
    assert ready_line(url, None, 300) == f"Ready! Listening on {url}  (no --secret: deliveries are not verified)"
    line = ready_line(url, SECRET, 300)
    assert line == f"Ready! Listening on {url}  (verifying {HEADER} with whsec_…cdef, tolerance 300 s)"
    assert SECRET not in line
    assert ready_line(url, "whsec_short", None).endswith(
        "(verifying Aurous-Webhook-Signature with whsec_…, no timestamp tolerance)"
    )


# --- forwarding ---------------------------------------------------------------------------------------------------


def test_listen_forwards_raw_body_and_aurous_headers(listen: ListenerClient, output: Output, fresh_target: Target):
    _, client = listen(forward_to=fresh_target.url)
    body = json.dumps(EVENT, indent=1).encode()
    headers = delivery_headers(body)
    assert client.post("/", content=body, headers={**headers, "X-Other": "dropped"}).status_code == 200
    [(path, forwarded, forwarded_body)] = fresh_target.requests
    assert (path, forwarded_body) == ("/hooks/aurous", body)
    for name in (HEADER, "Aurous-Webhook-Id", "Aurous-Event-Id", "Content-Type", "User-Agent"):
        assert forwarded[name.lower()] == headers[name]
    assert "x-other" not in forwarded
    assert output.lines()[1] == f"{STAMP}  → [202] POST {fresh_target.url}  [{EVENT['id']}]"


def test_listen_forward_target_status_does_not_change_answer(
    listen: ListenerClient, output: Output, fresh_target: Target
):
    fresh_target.status = 500
    listener, client = listen(forward_to=fresh_target.url)
    body = encode(EVENT)
    assert client.post("/", content=body, headers=delivery_headers(body)).status_code == 200
    assert listener.received[0].forward_status == 500
    assert output.lines()[1].startswith(f"{STAMP}  → [500] POST ")


def test_listen_forward_failure_is_reported_not_answered(listen: ListenerClient, output: Output):
    url = f"http://127.0.0.1:{free_port()}/gone"
    listener, client = listen(forward_to=url)
    body = encode(EVENT)
    assert client.post("/", content=body, headers=delivery_headers(body)).status_code == 200
    assert listener.received[0].forward_status is None
    assert (listener.received[0].forward_error or "").startswith("ConnectError")
    assert output.lines()[1].startswith(f"{STAMP}  → forward to {url} failed: ConnectError")


def test_listen_does_not_forward_rejected_deliveries(listen: ListenerClient, output: Output, fresh_target: Target):
    _, client = listen(forward_to=fresh_target.url)
    body = encode(EVENT)
    assert client.post("/", content=body, headers=delivery_headers(body, "whsec_x")).status_code == 400
    assert fresh_target.requests == []
    assert len(output.lines()) == 1


def test_listen_json_mode_reports_forwards_on_stderr(listen: ListenerClient, output: Output, fresh_target: Target):
    _, client = listen(forward_to=fresh_target.url, as_json=True)
    body = encode(EVENT)
    client.post("/", content=body, headers=delivery_headers(body))
    assert [json.loads(line) for line in output.lines()] == [EVENT]
    assert output.err_lines() == [f"{STAMP}  → [202] POST {fresh_target.url}  [{EVENT['id']}]"]


# --- serve and the CLI --------------------------------------------------------------------------------------------


def test_serve_reports_a_port_it_cannot_bind():
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        out, err = io.StringIO(), io.StringIO()
        assert serve(port=port, out=out, err=err) == 1
    assert out.getvalue() == ""
    assert err.getvalue().startswith(f"aurous-mock listen: cannot listen on 127.0.0.1:{port}: ")


def test_cli_listen_passes_options(monkeypatch: pytest.MonkeyPatch):
    calls: list[dict[str, Any]] = []

    def fake_serve(**options: Any) -> int:
        calls.append(options)
        return 0

    monkeypatch.setattr("contracts.listen.serve", fake_serve)
    argv = ["listen", "--port", "4242", "--secret", SECRET, "--tolerance", "none", "--status", "503"]
    assert cli_main([*argv, "--forward-to", "http://localhost:3000/hook", "--json"]) == 0
    assert calls == [
        {
            "host": "127.0.0.1",
            "port": 4242,
            "secret": SECRET,
            "tolerance": None,
            "status": 503,
            "forward_to": "http://localhost:3000/hook",
            "as_json": True,
        }
    ]
    assert cli_main(["listen"]) == 0
    assert calls[1] == {
        "host": "127.0.0.1",
        "port": 0,
        "secret": None,
        "tolerance": 300,
        "status": 200,
        "forward_to": None,
        "as_json": False,
    }


@pytest.mark.parametrize("option", [["--status", "99"], ["--status", "600"], ["--tolerance", "-1"], ["--port", "x"]])
def test_cli_listen_rejects_bad_options(option: list[str], capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as caught:
        cli_main(["listen", *option])
    assert caught.value.code == 2
    assert option[0] in capsys.readouterr().err


def test_cli_listen_help_lists_options(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as caught:
        cli_main(["listen", "--help"])
    assert caught.value.code == 0
    out = capsys.readouterr().out
    for option in ("--host", "--port", "--secret", "--forward-to", "--tolerance", "--status", "--json"):
        assert option in out


# --- a real process -----------------------------------------------------------------------------------------------

READY = re.compile(r"^Ready! Listening on (http://127\.0\.0\.1:(\d+))  \(verifying Aurous-Webhook-Signature with ")


@pytest.mark.e2e
@pytest.mark.parametrize(("stop", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_listen_subprocess_verifies_deliveries(tmp_path: Path, stop: signal.Signals, code: int):
    with cli_process(tmp_path, "listen", "--port", "0", "--secret", SECRET, stop=stop) as cli:
        match = cli.first_line(READY)
        assert int(match.group(2)) != 0
        body = encode(EVENT)
        with httpx.Client(base_url=match.group(1), timeout=10) as client:
            assert client.post("/hook", content=body, headers=delivery_headers(body)).status_code == 200
            bad = client.post("/hook", content=body, headers=delivery_headers(body, "whsec_wrong"))
            assert bad.status_code == 400
        accepted, rejected = cli.lines.get(timeout=10), cli.lines.get(timeout=10)
        assert re.fullmatch(
            rf"\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\dZ  ✓ {DESCRIBED}  \(endpoint we_01J0000000000000000000000C\)",
            accepted,
        ), accepted
        assert f"  ✗ signature rejected (400): {SignatureMismatchError.message}" in rejected
    # uvicorn stops gracefully; contracts.serving.run turns SIGINT into 130 and SIGTERM into 143.
    assert cli.proc.returncode == code, cli.stderr_path.read_text()
    assert "Traceback" not in cli.stderr_path.read_text()
