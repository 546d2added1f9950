"""The kit never cries wolf: a busy team is no drift, a broken target gets a report (never a traceback), an
unreachable or non-Aurous target exits 3, what a suite created is deleted, a multipart curl references a file."""

from __future__ import annotations

import json
import shlex
import socket
from pathlib import Path

import httpx
import pytest

from contracts import Target, check
from contracts.neighbour import NoisyNeighbour
from contracts.report import EXIT_UNREACHABLE
from contracts.targets import not_an_aurous_api
from mockserver.cli import main
from tests.contracts.emulators import emulator

KEY = "al_live_busy_team_0000000000000000"


def busy(app, key: str = KEY):
    """The emulator, where another service of the same team creates an image before every balance read."""

    async def wrapped(scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"] == "/v1/balance":
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://neighbour") as client:
                await client.post("/v1/images", json={"prompt": "another service"}, headers={"X-Api-Key": key})
        await app(scope, receive, send)

    return wrapped


def test_workflows_in_a_busy_team_judge_their_own_ledger_rows_and_find_nothing():
    target = Target("busy", app=busy(emulator()), api_key=KEY)  # the user's key: the workflows share the team
    result = check(target, suites=["workflows"], operations=["estimate_holds_nothing", "image_create_poll_output"])
    assert result.findings == [], result.summary()
    notes = result.suite("workflows").skipped
    assert any("balance moved by other activity" in note for note in notes), notes
    # The properties were still judged, on the image's own ledger rows.
    assert result.suite("workflows").operations[1].cases > 10


def test_a_wrong_charge_in_a_busy_team_is_still_found_on_the_ledger_rows():
    def overcharging(app):
        async def wrapped(scope, receive, send):  # every charge row of the team says one credit more
            if scope["type"] != "http" or scope["path"] != "/v1/usage/events":
                await app(scope, receive, send)
                return
            start, chunks = {}, []

            async def capture(message):
                if message["type"] == "http.response.start":
                    start.update(message)
                    return
                chunks.append(message.get("body", b""))
                if message.get("more_body"):
                    return
                page = json.loads(b"".join(chunks))
                for row in page.get("data", []):
                    if row.get("type") == "charge":
                        row["amount"] += 1
                body = json.dumps(page).encode()
                headers = [(k, v) for k, v in start["headers"] if k != b"content-length"]
                await send({**start, "headers": [*headers, (b"content-length", b"%d" % len(body))]})
                await send({"type": "http.response.body", "body": body})

            await app(scope, receive, capture)

        return wrapped

    target = Target("busy", app=busy(overcharging(emulator())), api_key=KEY)
    result = check(target, suites=["workflows"], operations=["image_create_poll_output"])
    found = {(finding.failure, finding.title) for finding in result.findings}
    assert any(failure == "ChargeDoesNotMatchCost" and "ledger rows" in title for failure, title in found), found


BROKEN_ANSWERS = {
    "html": (500, b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html"),
    "flat": (400, b'{"message": "bad request"}', "application/json"),
    "non-json-200": (200, b"OK", "text/plain"),
    "truncated": (200, b'{"credits": 10, "held_cre', "application/json"),
}


def broken(kind: str, app):
    """The emulator, except that every answer but the balance probe is ``kind`` (the probe must see an Aurous API)."""
    status, body, content_type = BROKEN_ANSWERS.get(kind, (0, b"", ""))

    async def wrapped(scope, receive, send):
        if scope["type"] != "http" or scope["path"] in ("/v1/balance", "/_mock/clock", "/_mock/clock/advance"):
            await app(scope, receive, send)
            return
        if kind == "reset":
            raise ConnectionResetError("connection reset by peer")
        headers = [(b"content-type", content_type.encode()), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return wrapped


@pytest.mark.parametrize("kind", [*BROKEN_ANSWERS, "reset"])
def test_a_broken_target_gets_a_report_with_evidence_never_a_traceback(kind, tmp_path):
    result = check(Target("broken", app=broken(kind, emulator())), max_examples=1, report_dir=tmp_path)
    assert result.exit_code == 1
    assert result.findings
    assert all(finding.message for finding in result.findings)
    assert {suite.name for suite in result.suites} == {
        "conformance",
        "workflows",
        "lifecycle",
        "chat",
        "webhooks",
        "conventions",
    }
    assert json.loads((tmp_path / "report.json").read_text())["exit_code"] == 1
    # Each operation stops at its first unusable answer instead of sending every generated case into the same wall.
    stopped = [note for note in result.suite("conformance").skipped if "after an unusable answer" in note]
    assert stopped, result.suite("conformance").skipped


def test_an_unreachable_target_exits_3_without_running_a_suite(capsys):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    result = check(Target.from_url(f"http://127.0.0.1:{port}"))
    assert result.exit_code == EXIT_UNREACHABLE
    assert result.suites == []
    assert "no answer" in (result.unreachable or "")
    assert main(["check", "--target", f"http://127.0.0.1:{port}", "--suite", "conformance"]) == EXIT_UNREACHABLE
    assert "not checked" in capsys.readouterr().out


def test_a_target_that_is_no_aurous_api_exits_3():
    async def html_everywhere(scope, receive, send):
        if scope["type"] != "http":
            return
        body = b"<html>It works!</html>"
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/html")]})
        await send({"type": "http.response.body", "body": body})

    result = check(Target("apache", app=html_everywhere))
    assert result.exit_code == EXIT_UNREACHABLE
    assert "answers like no Aurous API" in (result.unreachable or "")


def test_the_probe_recognises_an_aurous_api_even_without_its_request_id():
    from starlette.testclient import TestClient

    from tests.contracts.drift import strip_response_headers

    with TestClient(strip_response_headers(emulator(), b"aurous-request-id")) as client:
        assert not_an_aurous_api(client, {"X-Api-Key": KEY}) is None


def test_check_help_lists_the_exit_codes(capsys):
    with pytest.raises(SystemExit):
        main(["check", "--help"])
    out = capsys.readouterr().out
    for line in ("0  clean", "1  drift", "2  refused", "3  not checked"):
        assert line in out


def test_conformance_deletes_the_endpoints_files_and_characters_it_created():
    app = emulator()
    operations = ["createWebhookEndpoint", "createFile", "createCharacter"]
    result = check(Target("emulator", app=app, api_key=KEY), suites=["conformance"], operations=operations)
    assert result.findings == [], result.summary()
    from starlette.testclient import TestClient

    with TestClient(app) as client:
        for path in ("/v1/webhook_endpoints", "/v1/characters"):
            listed = client.get(path, headers={"X-Api-Key": KEY}).json()
            assert listed["data"] == [], (path, listed["data"][:2])


def test_a_multipart_reproduction_references_its_body_in_a_file(tmp_path):
    from tests.contracts.drift import strip_response_headers

    target = Target("drifted", app=strip_response_headers(emulator(), b"aurous-request-id"))
    result = check(target, suites=["conformance"], operations=["createFile"], max_examples=1, report_dir=tmp_path)
    curl = next(finding.curl for finding in result.findings if finding.operation == "POST /v1/files")
    assert curl is not None
    assert "PNG" not in curl
    words = shlex.split(curl)
    body = Path(words[words.index("--data-binary") + 1].removeprefix("@"))
    assert body.parent == (tmp_path / "bodies").resolve()
    assert b"Content-Disposition: form-data" in body.read_bytes()
    assert any(word.startswith("Content-Type: multipart/form-data; boundary=") for word in words)


def test_the_noisy_neighbour_refuses_a_target_beyond_loopback():
    with pytest.raises(ValueError, match="loopback"):
        NoisyNeighbour("https://api.aurous-labs.com", KEY)


def test_a_type_mutation_of_a_multipart_part_accepted_is_a_note_not_drift():
    from types import SimpleNamespace

    from schemathesis.core.failures import AcceptedNegativeData

    from contracts.report import OperationResult, SuiteResult
    from contracts.session import Session, SuiteRun
    from contracts.suites.conformance import _unrepresentable

    suite = SuiteRun(SuiteResult("conformance"), Session(Target("app", app=emulator())), lambda op: "")
    outcome = OperationResult("POST /v1/files", "createFile")

    def accepted(where: str) -> AcceptedNegativeData:
        message = f"Invalid component: in body - violates `{where}` at /properties/metadata (was string, became object)"
        return AcceptedNegativeData(operation="POST /v1/files", message=message, status_code=201, expected_statuses=[])

    multipart, json_body = (
        SimpleNamespace(media_type="multipart/form-data"),
        SimpleNamespace(media_type="application/json"),
    )
    assert _unrepresentable(suite, outcome, multipart, accepted("type"))
    assert suite.result.skipped == [
        "conformance POST /v1/files: type mutations of multipart form parts are not judged (text on the wire)"
    ]
    assert not _unrepresentable(suite, outcome, multipart, accepted("maxLength"))
    assert not _unrepresentable(suite, outcome, json_body, accepted("type"))


def hanging(app, released, hung):
    """The emulator, except that every request but the probe waits until ``released`` (a target that hangs);
    ``hung`` counts the requests that reached the wall."""
    import anyio

    async def wrapped(scope, receive, send):
        if scope["type"] != "http" or scope["path"] in ("/v1/balance", "/_mock/clock", "/_mock/clock/advance"):
            await app(scope, receive, send)
            return
        hung.append(f"{scope['method']} {scope['path']}")
        while not released.is_set():
            await anyio.sleep(0.05)

    return wrapped


@pytest.mark.e2e
def test_a_hanging_target_is_waited_for_once_then_every_suite_ends_with_a_finding(tmp_path):
    """A target that stops answering is waited for once (``timeout``), not once per request: nothing more is sent,
    each suite ends at once with a finding naming the request that hung, and the run reports it (exit 1)."""
    import threading

    from mockserver.testing import ServerThread

    released, hung = threading.Event(), []
    with ServerThread(hanging(emulator(), released, hung), lifespan="off") as server:
        try:
            target = Target.from_url(server.base_url)
            result = check(target, max_examples=1, report_dir=tmp_path, options={"timeout": "0.5"})
        finally:
            released.set()
    assert result.exit_code == 1
    assert len(hung) == 1, hung  # the first request that hung; every later one failed without being sent
    words = " ".join(f"{finding.title} {finding.message} {finding.actual or ''}" for finding in result.findings)
    assert f"{hung[0]} got no answer within 0.5 s" in words
    for name in ("conformance", "workflows", "lifecycle", "chat", "webhooks", "conventions"):
        assert result.suite(name).findings, f"{name}: {result.suite(name).skipped}"
    assert json.loads((tmp_path / "report.json").read_text())["exit_code"] == 1


def test_negative_data_refused_for_its_size_is_a_rejection_not_drift():
    """Generated negative data can be large enough to meet the documented body limit first: a 413 rejects it too
    (it once turned seed 6 of the full profile red)."""
    app = emulator(max_body_bytes=1024)  # the smallest limit: many generated bodies exceed it
    result = check(Target("small-limit", app=app), suites=["conformance"], operations=["createEmbedding"], seed=6)
    assert result.findings == [], result.summary()
    sent = [operation for operation in result.suite("conformance").operations if operation.cases]
    assert sent, "the operation ran"
