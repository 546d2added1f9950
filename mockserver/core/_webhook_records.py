"""The records of the webhook domain: event types, request bodies, endpoints, events, deliveries, attempts, signing.

Split out of :mod:`mockserver.core.webhooks` (the service) to keep both modules small.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import string
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from mockserver.clock import rfc3339, rfc3339_or_none
from mockserver.core import ssrf
from mockserver.core.errors import InvalidFormatError, ValueOutOfRangeError

EventType = Literal[
    "image.completed", "image.failed", "image.cancelled", "video.completed", "video.failed", "video.cancelled",
    "usage.balance_low", "webhook.endpoint_disabled", "character.completed", "character.failed", "character.cancelled",
]  # fmt: skip
EVENT_TYPES: tuple[str, ...] = get_args(EventType)  # the eleven of reference §5.2
V1_EVENT_TYPES = EVENT_TYPES[:8]  # what v1.0 shipped, and what ["*"] stands for
ALL = "*"

SIGNATURE_HEADER = "Aurous-Webhook-Signature"
SECRET_PREFIX = "whsec_"
SECRET_ALPHABET = string.ascii_letters + string.digits
SECRET_LENGTH = 32
MAX_METADATA_KEYS = 50
MAX_METADATA_VALUE = 500

NOT_A_URI = "url must be a valid URI (RFC 3986): ASCII only, with every other character percent-encoded."
UNKNOWN_EVENT = "{value!r} is not a webhook event type; use one of {types} or ['*']."
TOO_MANY_KEYS = "metadata may have at most 50 keys."
VALUE_TOO_LONG = "metadata values may be at most 500 characters."


class EndpointCreateRequest(BaseModel):
    """``POST /v1/webhook_endpoints``; strict types, unknown keys ignored, ``null`` refused by the pipeline."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True, defer_build=True)

    url: Annotated[str, StringConstraints(max_length=ssrf.MAX_URL_LENGTH)]
    events: Annotated[list[str], Field(min_length=1)]
    description: str | None = None
    metadata: dict[str, str] | None = None


class FireRequest(BaseModel):
    """``POST /v1/webhook_endpoints/{id}/test``."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True, defer_build=True)

    event_type: EventType


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``t=<unix seconds>,v1=<hex HMAC-SHA256 of "{t}.{body}">`` keyed with the whole ``whsec_…`` secret."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def preview(secret: str) -> str:
    """``whsec_8jK...ABCD``: the first nine and the last four characters."""
    return f"{secret[:9]}...{secret[-4:]}"


@dataclass(slots=True)
class Endpoint:
    id: str
    team_id: str
    url: str
    events: list[str]
    secret: str
    description: str | None
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime
    is_active: bool = True
    consecutive_failures: int = 0
    last_success_at: datetime | None = None
    last_failure_at: datetime | None = None

    def wire(self, *, show_secret: bool = False) -> dict[str, Any]:
        """The WebhookEndpoint resource; the plaintext secret only on create and rotate."""
        return {
            "id": self.id,
            "object": "webhook_endpoint",
            "url": self.url,
            "events": list(self.events),
            "secret_preview": preview(self.secret),
            "is_active": self.is_active,
            "consecutive_failures": self.consecutive_failures,
            "last_success_at": rfc3339_or_none(self.last_success_at),
            "last_failure_at": rfc3339_or_none(self.last_failure_at),
            "metadata": dict(self.metadata),
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
            "description": self.description,
            "secret": self.secret if show_secret else None,
        }


@dataclass(slots=True)
class Event:
    """One body to send; ``endpoint_ids`` / ``callback_url`` are the targets a redelivery goes to again."""

    id: str
    team_id: str
    type: str
    created_at: datetime
    body: bytes
    synthetic: bool = False
    endpoint_ids: list[str] = field(default_factory=list)
    callback_url: str | None = None


@dataclass(slots=True)
class Delivery:
    """An event on its way to one target; kept only while attempts remain."""

    id: str
    team_id: str
    event_id: str
    event_type: str
    url: str
    endpoint_id: str | None
    origin: datetime
    schedule: tuple[float, ...]
    attempts: int = 0
    last: bool = False  # sent after every other delivery due at the same time (scenario webhook_out_of_order)
    lease_until: float | None = None  # real time (epoch seconds) until which a dispatcher is sending the next attempt

    def leased(self, wall: float | None) -> bool:
        """Whether a dispatcher (of any process) is sending its next attempt at real time ``wall``."""
        return self.lease_until is not None and (wall is None or self.lease_until > wall)

    @property
    def target(self) -> str:
        return self.endpoint_id or f"url:{self.url}"

    @property
    def next_at(self) -> datetime:
        return self.origin + timedelta(seconds=self.schedule[self.attempts])


@dataclass(frozen=True, slots=True)
class DeliveryPlan:
    """How scenarios shape a generation's deliveries: due ``delay`` s later, ``copies`` of each, or ``last``."""

    delay: float = 0.0
    copies: int = 1
    last: bool = False


@dataclass(frozen=True, slots=True)
class Claim:
    """A due attempt, signed for its scheduled instant, ready to send."""

    team_id: str
    delivery_id: str
    event_id: str
    event_type: str
    endpoint_id: str | None
    target: str
    attempt: int  # 1-based
    scheduled_at: datetime
    url: str
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class SendResult:
    """What a receiver did: an HTTP status, or an error (timeout, refused, TLS) and no status."""

    status: int | None
    error: str | None = None
    latency_ms: float = 0.0
    response_excerpt: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass(slots=True)
class Attempt:
    """A row of the delivery log."""

    delivery_id: str
    event_id: str
    event_type: str
    endpoint_id: str | None
    url: str
    attempt: int
    scheduled_at: datetime
    attempted_at: datetime
    request_headers: dict[str, str]
    request_body: str
    result: SendResult
    next_retry_at: datetime | None
    outcome: str  # succeeded | retrying | failed

    def wire(self) -> dict[str, Any]:
        return {
            "object": "webhook_attempt",
            "delivery_id": self.delivery_id,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "endpoint_id": self.endpoint_id,
            "url": self.url,
            "attempt": self.attempt,
            "scheduled_at": rfc3339(self.scheduled_at),
            "attempted_at": rfc3339(self.attempted_at),
            "request_headers": dict(self.request_headers),
            "request_body": self.request_body,
            "response_status": self.result.status,
            "error": self.result.error,
            "response_excerpt": self.result.response_excerpt,
            "latency_ms": round(self.result.latency_ms, 3),
            "next_retry_at": rfc3339_or_none(self.next_retry_at),
            "outcome": self.outcome,
        }


def expand_events(events: list[str]) -> list[str]:
    """Validate event names; ``*`` stands for the v1.0 types. Duplicates are dropped, order kept."""
    chosen: list[str] = []
    for index, name in enumerate(events):
        if name == ALL:
            chosen.extend(V1_EVENT_TYPES)
        elif name in EVENT_TYPES:
            chosen.append(name)
        else:
            raise InvalidFormatError(
                UNKNOWN_EVENT.format(value=name, types=", ".join(EVENT_TYPES)), param=f"events[{index}]"
            )
    return list(dict.fromkeys(chosen))


def check_metadata(metadata: dict[str, str]) -> dict[str, str]:
    if len(metadata) > MAX_METADATA_KEYS:
        raise ValueOutOfRangeError(TOO_MANY_KEYS, param="metadata")
    if any(len(value) > MAX_METADATA_VALUE for value in metadata.values()):
        raise ValueOutOfRangeError(VALUE_TOO_LONG, param="metadata")
    return dict(metadata)


# RFC 3986, for what follows `scheme://`: the authority, then path, query and fragment characters.
_AUTHORITY = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@\[\]]*")
_CHAR = r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-Fa-f]{2})"
_REST = re.compile(rf"{_CHAR}*(?:#{_CHAR}*)?")


def require_uri(url: str) -> str:
    """Endpoint URLs are echoed as ``format: uri``, so anything beyond RFC 3986 (e.g. raw Unicode) is refused."""
    _, _, rest = url.partition("://")
    cut = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    authority, tail = rest[:cut], rest[cut:]
    if not _AUTHORITY.fullmatch(authority) or not _REST.fullmatch(tail):
        raise InvalidFormatError(NOT_A_URI, param="url")
    return url
