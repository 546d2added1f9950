"""The generation workflows: estimate → create (the estimate is what is charged) → poll → output → expiry; cancel.

Every create is pinned to its cheapest parameters (:func:`contracts.budget.cheapest`) and passes its operationId,
so the budget asks the estimate first and refuses what would cross the cap.
"""

from __future__ import annotations

import io
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from PIL import Image

from contracts.budget import charged, cheapest
from contracts.suites._flow import EPSILON, GENERATION_ORDER, Balance, Flow, error_code, instant

__all__ = [
    "IMAGE",
    "estimate_holds_nothing",
    "image_create_poll_output",
    "video_create_cancel",
    "video_create_poll_output",
]

IMAGE = {"prompt": "aurous contract kit: a lighthouse at dusk"}
VIDEO = {"video_lora_id": "seedance-1-pro", "prompt": "aurous contract kit: waves on a beach", "ratio": "16:9"}
CREATE = {"image": "createImage", "video": "createVideo"}
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
# Real time a live target gets to finish before the rest of a workflow is skipped (reference: images 10–30 s).
DEADLINE = {"image": 180.0, "video": 600.0}
OUTPUT_TTL = timedelta(hours=24)  # reference §2.1 / §2.2, §8.2: outputs answer 410 `output_expired` after ~24 h
MARGIN = timedelta(minutes=1)
PNG_MAGIC, JPEG_MAGIC = b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff"


@dataclass
class Paid:
    generation: dict[str, Any]
    estimate: float
    before: Balance | None

    @property
    def id(self) -> str:
        return str(self.generation["id"])


def create_paid(flow: Flow, kind: str, body: dict[str, Any]) -> Paid:
    """Estimate, then create with the very same body: ``cost.amount`` is the estimate, and exactly it is held."""
    estimate = flow.estimate(kind, body)
    before = flow.balance("balance before create")
    response = flow.call("POST", f"/v1/{kind}s", f"create {kind}", operation=CREATE[kind], json_body=body)
    generation = flow.created(response, "CreateRejected", f"the estimated {kind} body was refused")
    flow.require(isinstance(generation.get("id"), str), "CreateRejected", "the created generation has no id")
    flow.charged_as_estimated(generation, estimate, "at create")
    flow.balance_moved(
        before,
        "balance after create",
        "HoldDoesNotMatchCost",
        "the credits held at create differ from cost.amount",
        held=charged(generation),
        spent=0,
        owned=str(generation["id"]),
    )
    return Paid(generation, estimate, before)


def settle_succeeded(flow: Flow, paid: Paid, kind: str) -> dict[str, Any]:
    """Poll to the end: it succeeds, still costs the estimate, and exactly that is charged (the hold committed)."""
    final = flow.poll(
        f"/v1/images/{paid.id}",
        kind,
        paid.generation,
        order=GENERATION_ORDER,
        terminal=TERMINAL,
        deadline=DEADLINE[kind],
    )
    outcome = f"{final.get('status')} ({final.get('error_message')})"
    flow.require(
        final.get("status") == "succeeded",
        "GenerationDidNotSucceed",
        f"the {kind} did not succeed",
        expected="succeeded",
        actual=outcome,
    )
    flow.charged_as_estimated(final, paid.estimate, "when succeeded")
    flow.balance_moved(
        paid.before,
        "balance after success",
        "ChargeDoesNotMatchCost",
        "the credits charged on success differ from cost.amount",
        held=0,
        spent=charged(final),
        owned=paid.id,
    )
    return final


def not_cancellable(flow: Flow, generation: dict[str, Any], kind: str) -> None:
    response = flow.call("POST", f"/v1/images/{generation['id']}/cancel", f"cancel succeeded {kind}")
    flow.rejected(
        response,
        400,
        "generation_not_cancellable",
        "SucceededWasCancellable",
        "cancelling a succeeded generation is not refused with 400 generation_not_cancellable",
    )


def output_url(generation: dict[str, Any], kind: str) -> str | None:
    if kind == "video":
        url = generation.get("output_video_url")
        return url if isinstance(url, str) else None
    urls = generation.get("output_urls")
    return urls[0] if isinstance(urls, list) and urls and isinstance(urls[0], str) else None


def download(flow: Flow, generation: dict[str, Any], kind: str, step: str) -> Any:
    url = output_url(generation, kind)
    field = "output_video_url" if kind == "video" else "output_urls[0]"
    flow.require(
        url is not None, "OutputUrlMissing", f"a succeeded {kind} has no {field}", expected="a URL", actual=None
    )
    assert url is not None
    return flow.call("GET", url, step)


def check_image(flow: Flow, response: Any, generation: dict[str, Any]) -> None:
    """200 with PNG (or JPEG, which the spec also allows) bytes of exactly the reported width × height."""
    flow.require(
        response.status_code == 200,
        "OutputNotAvailable",
        "a succeeded image's output is not served",
        expected=200,
        actual=response.status_code,
    )
    kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
    data: bytes = response.content
    flow.require(
        kind in ("image/png", "image/jpeg"),
        "OutputNotPNG",
        "the image output is not image/png",
        expected="image/png",
        actual=kind,
    )
    magic = PNG_MAGIC if kind == "image/png" else JPEG_MAGIC
    flow.require(
        data.startswith(magic), "OutputNotPNG", f"the output's bytes are not {kind}", expected=magic, actual=data[:8]
    )
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            size = image.size
    except Exception as exc:  # Pillow raises several kinds for broken data; any of them means undecodable
        flow.require(
            False,
            "OutputNotPNG",
            f"the {kind} output does not decode",
            expected="a decodable image",
            actual=repr(exc)[:200],
        )
        return
    reported = (generation.get("width"), generation.get("height"))
    flow.check(
        size == reported,
        "OutputSizeMismatch",
        "the output's pixels differ from width × height",
        expected=reported,
        actual=size,
    )


def check_mp4(flow: Flow, response: Any) -> None:
    flow.require(
        response.status_code == 200,
        "OutputNotAvailable",
        "a succeeded video's output is not served",
        expected=200,
        actual=response.status_code,
    )
    kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
    flow.check(
        kind == "video/mp4", "OutputNotMP4", "the video output is not video/mp4", expected="video/mp4", actual=kind
    )
    head: bytes = response.content[:12]
    flow.check(
        head[4:8] == b"ftyp",
        "OutputNotMP4",
        "the video bytes do not start with an ftyp box",
        expected=b"ftyp",
        actual=head,
    )


def check_expiry(flow: Flow, generation: dict[str, Any], kind: str) -> None:
    """With clock control: served a minute before ``completed_at`` + 24 h, ``410 output_expired`` a second after."""
    if not flow.session.clock_control:
        flow.note("output expiry not checked: the target has no clock control (it would take 24 h)")
        return
    completed, now = instant(generation.get("completed_at")), flow.clock_now()
    flow.require(
        completed is not None, "CompletedAtMissing", "a succeeded generation has no completed_at", expected="an instant"
    )
    assert completed is not None
    if now is None:
        flow.note("output expiry not checked: GET /_mock/clock did not tell the time")
        return
    expiry = completed + OUTPUT_TTL
    flow.session.advance((expiry - MARGIN - now).total_seconds())
    fresh = flow.read(f"/v1/images/{generation['id']}", f"read {kind} before output expiry")
    early = download(flow, fresh, kind, f"download {kind} output a minute before expiry")
    later = flow.clock_now()
    if early.status_code == 410 and later is not None and later >= expiry:
        flow.note("output expiry not checked: the team's clock passed the expiry meanwhile (other activity moved it)")
        return
    flow.check(
        early.status_code in (200, 206),
        "OutputExpiredEarly",
        "the output expired before 24 h",
        expected=200,
        actual=early.status_code,
    )
    flow.session.advance((MARGIN + timedelta(seconds=1)).total_seconds())
    _expired(flow, fresh, kind)


def _expired(flow: Flow, fresh: dict[str, Any], kind: str) -> None:
    """24 h + 1 s after completion: ``410 output_expired`` (the URL of a new read, else the one read before)."""
    late = flow.read(f"/v1/images/{fresh['id']}", f"read {kind} after output expiry")
    url = output_url(late, kind) or output_url(fresh, kind)
    assert url is not None
    expired = flow.call("GET", url, f"download {kind} output after expiry")
    if 200 <= expired.status_code < 300:
        flow.check(
            False,
            "OutputNeverExpires",
            "the output is still served 24 h + 1 s after completion",
            expected="410 output_expired",
            actual=expired.status_code,
        )
    else:
        flow.rejected(
            expired,
            410,
            "output_expired",
            "OutputExpiryWrongError",
            "an expired output is not answered 410 output_expired",
        )


# -- the workflows -----------------------------------------------------------------------------------------------


def estimate_holds_nothing(flow: Flow) -> None:
    """Read-only (every profile): an estimate is deterministic, holds nothing and inserts no generation.

    The estimated prompt is this run's own, so "no generation inserted" means no generation with that prompt, whatever
    else the team creates meanwhile; the balance is judged only while nothing else moves it (see ``balance_moved``).
    """
    own = {"prompt": f"{IMAGE['prompt']} (estimate only, {secrets.token_hex(4)})"}
    image, video = cheapest("createImage", own), cheapest("createVideo", VIDEO)
    before = flow.balance("balance before estimates")
    first, second = flow.estimate("image", image), flow.estimate("image", image, "estimate image again")
    flow.check(
        abs(first - second) < EPSILON,
        "EstimateNotDeterministic",
        "the same body was estimated twice differently",
        expected=first,
        actual=second,
    )
    flow.estimate("video", video)
    flow.balance_moved(
        before, "balance after estimates", "EstimateHeldCredits", "an estimate held or spent credits", held=0, spent=0
    )
    after = flow.read("/v1/images?limit=100", "list after estimates")
    rows = [row for row in after.get("data") or [] if isinstance(row, dict)]
    inserted = [row.get("id") for row in rows if row.get("prompt") == own["prompt"]]
    flow.check(
        not inserted,
        "EstimateCreatedGeneration",
        "an estimate inserted a generation",
        expected="no generation with the estimated prompt",
        actual=inserted,
    )


def image_create_poll_output(flow: Flow) -> None:
    paid = create_paid(flow, "image", cheapest("createImage", IMAGE))
    final = settle_succeeded(flow, paid, "image")
    check_image(flow, download(flow, final, "image", "download image output"), final)
    not_cancellable(flow, final, "image")
    check_expiry(flow, final, "image")


def video_create_poll_output(flow: Flow) -> None:
    paid = create_paid(flow, "video", cheapest("createVideo", VIDEO))
    final = settle_succeeded(flow, paid, "video")
    check_mp4(flow, download(flow, final, "video", "download video output"))
    not_cancellable(flow, final, "video")
    check_expiry(flow, final, "video")


def video_create_cancel(flow: Flow) -> None:
    """Cancel while pending: ``cancelled``, the hold released, no output (422), a second cancel a no-op."""
    paid = create_paid(flow, "video", cheapest("createVideo", VIDEO))
    cancel = f"/v1/images/{paid.id}/cancel"
    response = flow.call("POST", cancel, "cancel video")
    if response.status_code == 400 and error_code(response) == "generation_not_cancellable":
        flow.skip("the video finished before the cancel arrived; cancellation not checked")
    cancelled = flow.body(response, (200,), "CancelRefused", "cancelling a pending generation was refused")
    status = cancelled.get("status")
    flow.require(
        status == "cancelled",
        "CancelDidNotCancel",
        "cancel did not answer cancelled",
        expected="cancelled",
        actual=status,
    )
    flow.balance_moved(
        paid.before,
        "balance after cancel",
        "CancelDidNotReleaseHold",
        "cancelling did not release the hold",
        held=0,
        spent=0,
        owned=paid.id,
    )
    again = flow.body(
        flow.call("POST", cancel, "cancel video again"), (200,), "CancelNotIdempotent", "a second cancel was refused"
    )
    flow.check(
        again.get("status") == "cancelled",
        "CancelNotIdempotent",
        "a second cancel changed the generation",
        expected="cancelled",
        actual=again.get("status"),
    )
    output = flow.call("GET", f"/v1/videos/{paid.id}/output", "download cancelled video output")
    flow.rejected(
        output,
        422,
        "output_not_available",
        "OutputAvailableAfterCancel",
        "a cancelled video's output is not 422 output_not_available",
    )
    _stays_cancelled(flow, paid)


def _stays_cancelled(flow: Flow, paid: Paid) -> None:
    """An hour later, long past the instant it would have finished: still cancelled, still uncharged."""
    if not flow.session.clock_control:
        flow.note("a cancelled generation staying cancelled and uncharged later is not checked without clock control")
        return
    flow.session.advance(3600)
    later = flow.read(f"/v1/images/{paid.id}", "read cancelled video an hour later")
    flow.check(
        later.get("status") == "cancelled",
        "TerminalStatusChanged",
        "a cancelled generation changed status",
        expected="cancelled",
        actual=later.get("status"),
    )
    flow.balance_moved(
        paid.before,
        "balance an hour after cancel",
        "CancelledGenerationCharged",
        "a cancelled generation was charged later",
        held=0,
        spent=0,
        owned=paid.id,
    )
