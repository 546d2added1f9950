"""The ``idempotency`` check of the conventions suite (reference §1.9), on a team of its own.

``POST /v1/images`` (billable: only when spending is allowed, at the cheapest parameters): the idempotency page
("Recovering after a dropped connection") answers a retry with the same ``Idempotency-Key`` and body ``409
idempotency_key_in_use`` without ``Retry-After`` while the generation still runs, and the first answer (same status
and id, ``Aurous-Idempotent-Replayed: true``) once it is terminal. So the retry sent right away may be either — on a
live target the generation may finish at any moment — but a replay is a finding if the generation is still running
after it (statuses never go back). The check then cancels the generation (terminal at once, hold released) and the
next retry must replay, ``available_credits`` unchanged. The first call carries no replay header; the same key with
another body → 409 ``idempotency_key_in_use``. ``POST /v1/files`` (free, but a create: not under ``live-safe``) has
no lifecycle and replays at once, checked the same way with a 1×1 PNG, another ``metadata`` being the other body.
What the check created is cancelled or deleted afterwards.

Findings: ``IdempotencySetupFailed``, ``IdempotentFirstCallMarkedReplayed``, ``IdempotentRetryWhileRunning``,
``IdempotentReplayWhileRunning``, ``IdempotentReplayNotMarked``, ``IdempotentReplayNewResource``,
``IdempotentReplayBilledTwice``, ``IdempotencyConflictNot409``.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from collections.abc import Callable
from typing import Any

from contracts.budget import cheapest
from contracts.suites._convention import Convention, envelope_problems, json_object
from contracts.suites._ledger import ledger_rows, ledger_sums

__all__ = ["idempotency", "tiny_png"]

REPLAYED = "aurous-idempotent-replayed"
PROMPT = "aurous-mock contract kit: idempotent replay"


def tiny_png() -> bytes:
    """A valid 1×1 opaque PNG, built by hand so the kit needs no imaging library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)  # 1×1, 8-bit RGB
    pixels = zlib.compress(b"\x00\xc8\x78\x28")  # filter byte, then one pixel
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def _available(check: Convention) -> float | None:
    amount = json_object(check.send("GET", "/v1/balance", "balance")).get("available_credits")
    return float(amount) if isinstance(amount, int | float) else None


Send = Callable[[str, dict[str, Any]], Any]  # (step, extra request arguments) → response
RUNNING = frozenset({"pending", "processing"})


class Lifecycle:
    """How the check reads and ends what a lifecycle create started (images: status and cancel)."""

    def __init__(self, status: Callable[[str], str | None], finish: Callable[[str], None]) -> None:
        self.status = status
        self.finish = finish


def _retry_while_running(check: Convention, what: str, send: Send, first: dict[str, Any], life: Lifecycle) -> None:
    """The retry sent right away: ``409`` without ``Retry-After`` (still running) or a replay (already terminal)."""
    key_headers = first["headers"]
    early = send(f"{what}: retry while running", first)
    created = str(json_object(early).get("id") or "")
    if early.status_code == 409:
        problems = envelope_problems(early, status=409, code="idempotency_key_in_use", error_type="invalid_request")
        if early.headers.get("retry-after") is not None:
            problems.append(f"Retry-After: {early.headers.get('retry-after')}")
        check.verdict(
            "IdempotentRetryWhileRunning",
            f"{what}: the retry while the original runs is not the documented 409",
            problems,
            expected="409 invalid_request/idempotency_key_in_use without Retry-After",
            response=early,
        )
        return
    status = life.status(created) if 200 <= early.status_code < 300 and created else None
    problems = [] if 200 <= early.status_code < 300 else [f"{early.status_code}"]
    if status in RUNNING:  # statuses never go back: it was running when it was replayed
        problems.append(f"replayed while the generation is {status}")
    check.verdict(
        "IdempotentReplayWhileRunning",
        f"{what}: the retry replayed before the original was terminal",
        problems,
        expected=f"409 idempotency_key_in_use while running (key {key_headers['Idempotency-Key']})",
        response=early,
    )


def _replay(
    check: Convention,
    what: str,
    send: Send,
    first: dict[str, Any],
    other: dict[str, Any],
    life: Lifecycle | None = None,
) -> str | None:
    """Send ``first`` twice (thrice with a lifecycle) and ``other`` once under one key; return the created id."""
    key = f"aurous-contracts-{uuid.uuid4()}"
    headers = {"Idempotency-Key": key}
    original = send(f"{what}: first", {**first, "headers": headers})
    created = json_object(original).get("id")
    if not 200 <= original.status_code < 300 or not isinstance(created, str):
        check.verdict(
            "IdempotencySetupFailed",
            f"{what}: the first request failed",
            [f"{original.status_code}"],
            expected="2xx with an id",
            response=original,
        )
        return None
    marked = original.headers.get(REPLAYED)
    check.verdict(
        "IdempotentFirstCallMarkedReplayed",
        f"{what}: the first call says it is a replay",
        [f"{REPLAYED}: {marked}"] if marked is not None else [],
        expected=f"no {REPLAYED}",
        response=original,
    )
    if life is not None:
        _retry_while_running(check, what, send, {**first, "headers": headers}, life)
        life.finish(created)  # terminal: the next retry must replay
    before = _available(check)
    replay = send(f"{what}: replay", {**first, "headers": headers})
    after = _available(check)
    again = json_object(replay).get("id")
    check.verdict(
        "IdempotentReplayNewResource",
        f"{what}: the replay is not the first answer",
        []
        if (replay.status_code, again) == (original.status_code, created)
        else [f"{replay.status_code} {again!r}, first {original.status_code} {created!r}"],
        expected=f"{original.status_code} with id {created}",
        response=replay,
    )
    check.verdict(
        "IdempotentReplayNotMarked",
        f"{what}: the replay lacks {REPLAYED}: true",
        [] if replay.headers.get(REPLAYED) == "true" else [f"{REPLAYED}: {replay.headers.get(REPLAYED)}"],
        expected=f"{REPLAYED}: true",
        response=replay,
    )
    check.verdict(
        "IdempotentReplayBilledTwice",
        f"{what}: the replay moved the balance",
        [] if before == after or _billed_once(check, created, again) else [f"available_credits {before} → {after}"],
        expected=f"available_credits stays {before}",
        response=replay,
    )
    conflict = send(f"{what}: same key, other body", {**other, "headers": headers})
    check.verdict(
        "IdempotencyConflictNot409",
        f"{what}: same key with another body is not 409",
        envelope_problems(conflict, status=409, code="idempotency_key_in_use", error_type="invalid_request"),
        expected="409 invalid_request/idempotency_key_in_use",
        response=conflict,
    )
    return created


def _images(check: Convention) -> None:
    first = {"json_body": cheapest("createImage", {"prompt": PROMPT})}
    other = {"json_body": cheapest("createImage", {"prompt": f"{PROMPT} (another body)"})}

    def send(step: str, arguments: dict[str, Any]) -> Any:
        return check.send("POST", "/v1/images", step, operation="createImage", **arguments)

    def status(created: str) -> str | None:
        found = json_object(check.send("GET", f"/v1/images/{created}", "read the original")).get("status")
        return found if isinstance(found, str) else None

    def cancel(created: str) -> None:  # terminal at once, the hold released (400 if it finished: terminal too)
        check.send("POST", f"/v1/images/{created}/cancel", "cancel the original")

    _replay(check, "POST /v1/images", send, first, other, Lifecycle(status, cancel))


def _files(check: Convention) -> None:
    upload = {"file": ("aurous-contracts.png", tiny_png(), "image/png")}
    first = {"files": upload, "data": {"purpose": "reference"}}
    other = {"files": upload, "data": {"purpose": "reference", "metadata": '{"aurous_contracts": "another body"}'}}

    def send(step: str, arguments: dict[str, Any]) -> Any:
        return check.send("POST", "/v1/files", step, **arguments)

    created = _replay(check, "POST /v1/files", send, first, other)
    if created is not None:
        check.session.client.delete(f"/v1/files/{created}", headers=check.session.headers())


def idempotency(check: Convention) -> None:
    body = cheapest("createImage", {"prompt": PROMPT})
    if not check.session.spend_allowed:
        check.skip("the image replay needs spending: --allow-spend --max-credits N")
    elif not check.session.budget.affords("createImage", body, times=2):  # the first call, and one that may be billed
        check.skip("the image replay needs room for two of the cheapest images under --max-credits")
    else:
        _images(check)
    if check.session.profile == "full":
        _files(check)
    else:
        check.skip(f"POST /v1/files is a create: {check.session.profile} skips the file replay")


def _billed_once(check: Convention, created: str, again: Any) -> bool:
    """When the team's balance moved meanwhile (other activity in a busy team), the replay's billing is judged by
    the generations' own credit-ledger rows: one hold for the first, none for another id the replay answered.
    A file has none, and is never billed."""
    if not created.startswith(("img_", "vid_")):
        return True
    if isinstance(again, str) and again != created and ledger_sums(ledger_rows(check.session, again))["holds"]:
        return False
    return ledger_sums(ledger_rows(check.session, created))["holds"] <= 1
