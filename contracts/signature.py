"""Signing and verifying webhook deliveries (reference §5.4): ``Aurous-Webhook-Signature: t=<unix seconds>,v1=<hex>``.

The signature is HMAC-SHA256, keyed with the endpoint secret (the whole ``whsec_…`` string as UTF-8), over
``"{t}.{raw body}"``, hex-encoded. During a secret rotation a header may carry several ``v1=`` entries; any match
wins. Unknown schemes (``v0=``, ``v2=``) are ignored.

Errors (every one is a ``ValueError``, so ``except ValueError`` → HTTP 400 covers bad JSON too)::

    SignatureVerificationError
     ├── MissingSignatureError           no header at all
     ├── MalformedSignatureError         no integer t=, no v1=, or an entry without "="
     ├── SignatureMismatchError          no v1= matches: wrong secret or altered body
     └── TimestampOutsideToleranceError  authentic but too old (a replay) or too far in the future

No message ever contains the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

__all__ = [
    "DEFAULT_TOLERANCE",
    "HEADER",
    "MalformedSignatureError",
    "MissingSignatureError",
    "SignatureMismatchError",
    "SignatureVerificationError",
    "TimestampOutsideToleranceError",
    "parse_event",
    "sign",
    "verify_signature",
]

HEADER = "Aurous-Webhook-Signature"
DEFAULT_TOLERANCE = 300
SCHEME = "v1"

NO_SECRET = "the webhook secret must not be empty"
NOT_AN_OBJECT = "the verified payload is not a JSON object"


class SignatureVerificationError(ValueError):
    """A delivery whose ``Aurous-Webhook-Signature`` does not prove it came from Aurous, recently."""

    message = "webhook signature verification failed"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)


class MissingSignatureError(SignatureVerificationError):
    message = f"missing {HEADER} header"


class MalformedSignatureError(SignatureVerificationError):
    message = f"malformed {HEADER} header: {{reason}}"
    EMPTY = "the header is empty"
    NO_TIMESTAMP = "no t=<unix seconds> entry"
    BAD_TIMESTAMP = "t= is not a non-negative integer"
    TWO_TIMESTAMPS = "more than one t= entry"
    NO_SIGNATURE = "no v1= entry"
    BAD_ENTRY = "an entry is not of the form key=value"

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(self.message.format(reason=reason))


class SignatureMismatchError(SignatureVerificationError):
    message = "no v1 signature matches the payload (wrong secret, or the body was altered)"


class TimestampOutsideToleranceError(SignatureVerificationError):
    message = "signature timestamp {timestamp} is {age} s {direction}, outside the tolerance of {tolerance} s"

    def __init__(self, timestamp: int, now: float, tolerance: int) -> None:
        self.timestamp, self.now, self.tolerance = timestamp, now, tolerance
        age = round(now - timestamp)
        direction = "old" if age >= 0 else "in the future"
        super().__init__(
            self.message.format(timestamp=timestamp, age=abs(age), direction=direction, tolerance=tolerance)
        )


def _as_bytes(payload: bytes | str) -> bytes:
    return payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)


def _digest(payload: bytes, secret: str, timestamp: int) -> str:
    if not secret:
        # An empty key is a configuration slip (an unset variable), and anyone can sign with it.
        raise ValueError(NO_SECRET)
    signed = f"{timestamp}.".encode("ascii") + payload
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def sign(payload: bytes | str, secret: str, timestamp: int) -> str:
    """Return the ``Aurous-Webhook-Signature`` value for ``payload``: ``t=<timestamp>,v1=<hex>``.

    Example:
        >>> sign(b'{"event":"image.completed"}', "whsec_test", 1780315205)[:13]
        't=1780315205,'
    """
    if timestamp < 0:
        raise ValueError("the timestamp must be non-negative unix seconds")
    return f"t={timestamp},{SCHEME}={_digest(_as_bytes(payload), secret, timestamp)}"


def _parse_header(header: str | None) -> tuple[int, list[str]]:
    if header is None:
        raise MissingSignatureError()
    if not header.strip():
        raise MalformedSignatureError(MalformedSignatureError.EMPTY)
    timestamps: list[str] = []
    signatures: list[str] = []
    for entry in header.split(","):
        if not entry.strip():
            continue  # tolerate "t=1,,v1=…" and a trailing comma
        key, sep, value = entry.partition("=")
        if not sep:
            raise MalformedSignatureError(MalformedSignatureError.BAD_ENTRY)
        key, value = key.strip(), value.strip()
        if key == "t":
            timestamps.append(value)
        elif key == SCHEME:
            signatures.append(value)
    if not timestamps:
        raise MalformedSignatureError(MalformedSignatureError.NO_TIMESTAMP)
    if len(timestamps) > 1:
        raise MalformedSignatureError(MalformedSignatureError.TWO_TIMESTAMPS)
    if not (timestamps[0].isascii() and timestamps[0].isdigit()):
        raise MalformedSignatureError(MalformedSignatureError.BAD_TIMESTAMP)
    if not signatures:
        raise MalformedSignatureError(MalformedSignatureError.NO_SIGNATURE)
    return int(timestamps[0]), signatures


def verify_signature(
    payload: bytes | str,
    header: str | None,
    secret: str,
    tolerance: int | None = DEFAULT_TOLERANCE,
    *,
    now: float | None = None,
) -> int:
    """Check that ``payload`` was signed with ``secret`` recently; return the signed timestamp.

    Verify the *raw* request body, before any JSON parsing: re-serialised JSON does not match.

    Args:
        payload: the raw body as received (``str`` is encoded as UTF-8).
        header: the ``Aurous-Webhook-Signature`` value, or ``None`` when the request had none.
        secret: the endpoint secret, the whole ``whsec_…`` string.
        tolerance: the largest accepted distance in seconds between ``t`` and ``now``, in either direction;
            ``None`` disables the check. The signature is checked first, so this error means "authentic but stale".
        now: the current unix time (defaults to ``time.time()``), for tests.

    Returns:
        The signature's timestamp ``t`` (an ``int``, unix seconds): when the sender signed this attempt. A
        receiver can keep it to refuse a replayed delivery, or compare it with its own clock. It never returns
        a falsy "not verified": a delivery that does not verify raises.

    Raises:
        SignatureVerificationError: one of its subclasses, with a message safe to log.

    Example:
        A receiver in Starlette (the same shape as Stripe's ``construct_event``)::

            async def aurous_webhook(request):
                body = await request.body()
                try:
                    event = parse_event(body, request.headers.get(HEADER), os.environ["AUROUS_WEBHOOK_SECRET"])
                except ValueError as exc:  # a SignatureVerificationError, or a body that is not JSON
                    return PlainTextResponse(str(exc), status_code=400)
                handle(event["event"], event["data"])
                return Response(status_code=200)
    """
    timestamp, candidates = _parse_header(header)
    expected = _digest(_as_bytes(payload), secret, timestamp).encode("ascii")
    # Compare with every candidate (no early exit) so timing reveals nothing about which entry matched.
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(expected, candidate.lower().encode("utf-8", "replace"))
    if not matched:
        raise SignatureMismatchError()
    if tolerance is not None:
        current = time.time() if now is None else now
        if abs(current - timestamp) > tolerance:
            raise TimestampOutsideToleranceError(timestamp, current, tolerance)
    return timestamp


def parse_event(
    payload: bytes | str,
    header: str | None,
    secret: str,
    tolerance: int | None = DEFAULT_TOLERANCE,
    *,
    now: float | None = None,
) -> dict[str, Any]:
    """Verify a delivery with :func:`verify_signature`, then return its JSON body.

    Raises:
        SignatureVerificationError: as :func:`verify_signature`.
        ValueError: the body is not a JSON object (``json.JSONDecodeError`` is a ``ValueError`` too).
    """
    verify_signature(payload, header, secret, tolerance, now=now)
    event = json.loads(payload)
    if not isinstance(event, dict):
        raise ValueError(NOT_AN_OBJECT)
    return event
