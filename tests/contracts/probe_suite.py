"""A tiny scripted suite for the differential tests: create an image, poll it to the end on the emulator's clock.

Registered under ``probe`` only by the tests (``monkeypatch.setitem(SUITES, "probe", __name__)``), so the trace
comparison is tested on a known script, whatever the real scripted suites do.
"""

from __future__ import annotations

from contracts.session import Session, SuiteRun

TERMINAL = {"succeeded", "failed", "cancelled"}
POLL_SECONDS = 2
MAX_POLLS = 40


def run(session: Session, suite: SuiteRun) -> None:
    outcome = suite.operation("probe")
    created = session.request(
        "POST", "/v1/images", step="create image", operation="createImage", json_body={"prompt": "a lighthouse"}
    )
    outcome.cases += 1
    generation = created.json().get("id") if created.status_code in (200, 201) else None
    if generation is None:
        suite.finding("probe", "CreateRefused", "create refused", created.text[:200], status=created.status_code)
        return
    for _ in range(MAX_POLLS):
        session.advance(POLL_SECONDS)
        polled = session.request("GET", f"/v1/images/{generation}", step="poll until terminal")
        body = polled.json()
        if body.get("status", body.get("state")) in TERMINAL:
            break
    session.request("GET", "/v1/balance", step="read balance")
