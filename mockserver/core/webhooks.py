"""Webhook endpoints, events, deliveries and the attempt log: the pure domain of reference §2.7 and §5.

An *event* is one body to send (an endpoint envelope, or a per-generation callback); a *delivery* is that
body on its way to one target (an endpoint, or a callback URL); an *attempt* is one POST of it. Attempt
``n`` of a delivery happens ``schedule[n]`` seconds after its first one, on the team's clock, so
advancing a team's clock by a day makes every attempt real time would have made due at once. Sending
is not done here: :meth:`Webhooks.claim` hands out due attempts (signed for their own instant) and
:meth:`Webhooks.record` books the outcome. Targets are served one attempt at a time, oldest first.

A claim *leases* its attempt in the store until a real-time deadline, inside the transaction that found it
due, so when several processes share a store exactly one of them sends each attempt; :meth:`Webhooks.record`
or :meth:`Webhooks.release` ends the lease, and a lease whose holder died runs out and makes the attempt due
again (the one case where a receiver may see an attempt twice: the process died after sending, before booking).

Emulator choices the vendor does not document (inferred): the envelope fields, retry offsets measured
from the first attempt, the signing key being the full ``whsec_…`` string, rotation taking effect at
once, per-generation callbacks signed with the team's first active endpoint secret and never sent for
cancellations, test fires reaching an inactive endpoint, auto-disable counting "no success in 24 h"
from the last success (or forever, if there never was one).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import orjson

from mockserver._version import __version__
from mockserver.clock import rfc3339, unix_seconds
from mockserver.core import payload, ssrf
from mockserver.core._webhook_records import (
    ALL,
    EVENT_TYPES,
    SECRET_ALPHABET,
    SECRET_LENGTH,
    SECRET_PREFIX,
    SIGNATURE_HEADER,
    V1_EVENT_TYPES,
    Attempt,
    Claim,
    Delivery,
    DeliveryPlan,
    Endpoint,
    EndpointCreateRequest,
    Event,
    EventType,
    FireRequest,
    SendResult,
    check_metadata,
    expand_events,
    preview,
    require_uri,
    sign,
)
from mockserver.core.errors import (
    InvalidFormatError,
    ResourceNotFoundError,
)
from mockserver.core.models import Team
from mockserver.core.pagination import Page, paginate
from mockserver.ids import IdSource
from mockserver.settings import Settings
from mockserver.store import Store

__all__ = [
    "ALL",
    "EVENT_TYPES",
    "SIGNATURE_HEADER",
    "V1_EVENT_TYPES",
    "Attempt",
    "Claim",
    "Delivery",
    "DeliveryPlan",
    "Endpoint",
    "EndpointCreateRequest",
    "Event",
    "EventType",
    "FireRequest",
    "SendResult",
    "Webhooks",
    "preview",
    "require_uri",
    "sign",
]

CALLBACK_SCHEDULE = (0.0, 2.0, 4.0)  # the legacy rule: 3 attempts, 2 s apart (reference §5.1)
DISABLE_WINDOW = timedelta(hours=24)
LEASE_MARGIN_SECONDS = 30.0  # a lease outlives the send's timeout by this much before another process may retry
BALANCE_LOW_DEBOUNCE = timedelta(hours=1)
WATCH_OWNER = "_webhooks"  # the index of teams the dispatcher polls belongs to no team, so no reset forgets it
ENDPOINT, EVENT, DELIVERY, LOG, MARK, INDEX = (
    "webhook_endpoint", "webhook_event", "webhook_delivery", "webhook_log", "webhook_mark", "webhook_index",
)  # fmt: skip
NOT_SUBSCRIBED = "Webhook endpoint {id} is not subscribed to {event}."
DIRECT = DeliveryPlan()  # no scenario: due at once, one copy, in due order


def id_scope(team_id: str) -> str:
    """Events and deliveries draw ids from their own stream, so delivery timing never shifts a team's other ids."""
    return f"webhooks:{team_id}"


class Webhooks:
    """The webhook service: endpoints (CRUD, rotate, test), events, deliveries, bookkeeping and the log."""

    def __init__(self, store: Store, ids: IdSource, settings: Settings) -> None:
        self.store = store
        self.ids = ids
        self.settings = settings

    # --- endpoints ----------------------------------------------------------------------------------

    def create_endpoint(self, team: Team, req: EndpointCreateRequest, now: datetime) -> Endpoint:
        """``["*"]`` is expanded now to the v1.0 types; types added later are not subscribed."""
        allow_http = self.settings.webhook_allow_http_loopback
        url = require_uri(ssrf.check_url(req.url, param="url", allow_http_loopback=allow_http))
        metadata = check_metadata(req.metadata or {})
        endpoint = Endpoint(
            id=self.ids.new("we", at=now, scope=team.id),
            team_id=team.id,
            url=url,
            events=expand_events(req.events),
            secret=self._secret(team),
            description=req.description,
            metadata=metadata,
            created_at=now,
            updated_at=now,
        )
        self.store.put(ENDPOINT, endpoint.id, endpoint, owner=team.id)
        self.watch(team.id)
        return endpoint

    def _secret(self, team: Team) -> str:
        chars = (
            SECRET_ALPHABET[self.ids.randint(0, len(SECRET_ALPHABET) - 1, scope=team.id)] for _ in range(SECRET_LENGTH)
        )
        return SECRET_PREFIX + "".join(chars)

    def get_endpoint(self, team: Team, endpoint_id: str) -> Endpoint:
        endpoint: Endpoint | None = self.store.get(ENDPOINT, endpoint_id)
        if endpoint is None or endpoint.team_id != team.id:
            raise ResourceNotFoundError(kind="webhook endpoint", id=endpoint_id)
        return endpoint

    def list_endpoints(
        self, team: Team, *, limit: int, starting_after: str | None, ending_before: str | None
    ) -> Page[Endpoint]:
        """Newest first, paginated like the generation list (inferred, reference §8.13)."""
        rows: list[Endpoint] = self.store.values(ENDPOINT, owner=team.id)
        rows.reverse()
        return paginate(rows, limit=limit, starting_after=starting_after, ending_before=ending_before)

    def delete_endpoint(self, team: Team, endpoint_id: str) -> bool:
        """Idempotent: ``False`` for an unknown, already deleted or other-team id. Pending deliveries stop."""
        with self.store.transaction():
            endpoint: Endpoint | None = self.store.get(ENDPOINT, endpoint_id)
            if endpoint is None or endpoint.team_id != team.id:
                return False
            self._drop_deliveries(team.id, endpoint.id)
            return self.store.delete(ENDPOINT, endpoint_id)

    def rotate_secret(self, team: Team, endpoint_id: str, now: datetime) -> Endpoint:
        """A new secret signs every attempt from now on; the old one stops at once (no grace period, inferred)."""
        with self.store.transaction():
            endpoint = self.get_endpoint(team, endpoint_id)
            endpoint.secret = self._secret(team)
            endpoint.updated_at = now
            self.store.put(ENDPOINT, endpoint.id, endpoint, owner=team.id)
            return endpoint

    def test_fire(self, team: Team, endpoint_id: str, event_type: str, fixture: Any, now: datetime) -> Event:
        """A signed synthetic delivery of ``fixture(endpoint)``; even an inactive endpoint gets it (inferred)."""
        endpoint = self.get_endpoint(team, endpoint_id)
        if event_type not in endpoint.events:
            raise InvalidFormatError(NOT_SUBSCRIBED.format(id=endpoint.id, event=event_type), param="event_type")
        version = team.default_api_version
        return self._emit(team, event_type, fixture(endpoint), now, version, [endpoint], synthetic=True)

    # --- events -------------------------------------------------------------------------------------

    def subscribers(self, team: Team, event_type: str) -> list[Endpoint]:
        """The team's active endpoints subscribed to ``event_type``, oldest first."""
        rows: list[Endpoint] = self.store.values(ENDPOINT, owner=team.id)
        return [row for row in rows if row.is_active and event_type in row.events]

    def publish(
        self, team: Team, event_type: str, data: Any, now: datetime, *, version: str, plan: DeliveryPlan = DIRECT
    ) -> Event | None:
        """An event for every subscribed active endpoint; ``None`` (nothing recorded) when there is none."""
        endpoints = self.subscribers(team, event_type)
        if not endpoints:
            return None
        return self._emit(team, event_type, data, now, version, endpoints, synthetic=False, plan=plan)

    def _emit(
        self,
        team: Team,
        event_type: str,
        data: Any,
        now: datetime,
        version: str,
        targets: list[Endpoint],
        *,
        synthetic: bool,
        plan: DeliveryPlan = DIRECT,
    ) -> Event:
        event_id = self.ids.new("evt", at=now, scope=id_scope(team.id))
        envelope = {
            "id": event_id,
            "object": "event",
            "event": event_type,
            "created_at": rfc3339(now),
            "aurous_version": version,
            "synthetic": synthetic,
            "data": data,
        }
        body = payload.kept(orjson.dumps(envelope))
        event = Event(event_id, team.id, event_type, now, body, synthetic, [e.id for e in targets])
        with self.store.transaction():
            self._keep_event(team.id, event)
            for endpoint in targets:
                self._enqueue(event, endpoint.url, endpoint.id, self.settings.webhook_retry_schedule, now, plan)
        return event

    def callback(
        self, team: Team, url: str, event_type: str, data: Any, now: datetime, plan: DeliveryPlan = DIRECT
    ) -> Event:
        """The per-generation ``webhook_url`` POST: ``{"event", "data"}``, 3 attempts 2 s apart."""
        event_id = self.ids.new("evt", at=now, scope=id_scope(team.id))
        body = payload.kept(orjson.dumps({"event": event_type, "data": data}))
        event = Event(event_id, team.id, event_type, now, body, callback_url=url)
        with self.store.transaction():
            self._keep_event(team.id, event)
            self._enqueue(event, url, None, CALLBACK_SCHEDULE, now, plan)
        self.watch(team.id)
        return event

    def check_balance_low(self, team: Team, now: datetime) -> Event | None:
        """``usage.balance_low`` once credits are at or below the threshold, at most once an hour (team clock)."""
        threshold = self.settings.balance_low_threshold
        if threshold is None or team.credits > threshold:
            return None
        key = f"balance_low:{team.id}"
        with self.store.transaction():  # one event per hour, however many requests or workers notice
            last: datetime | None = self.store.get(MARK, key)
            if last is not None and now - last < BALANCE_LOW_DEBOUNCE:
                return None
            self.store.put(MARK, key, now, owner=team.id)
            data = {"credits": team.credits, "available_credits": team.available, "threshold": threshold}
            return self.publish(team, "usage.balance_low", data, now, version=team.default_api_version)

    def redeliver(self, team: Team, event_id: str, now: datetime) -> list[Delivery]:
        """A new delivery of the same body to the same targets, starting now; deleted or inactive ones are skipped."""
        event: Event | None = self.store.get(EVENT, event_id)
        if event is None or event.team_id != team.id:
            raise ResourceNotFoundError(kind="webhook event", id=event_id)
        made = []
        with self.store.transaction():
            if event.callback_url is not None:
                made.append(self._enqueue(event, event.callback_url, None, CALLBACK_SCHEDULE, now))
            for endpoint_id in event.endpoint_ids:
                endpoint: Endpoint | None = self.store.get(ENDPOINT, endpoint_id)
                if endpoint is not None and endpoint.is_active:
                    made.append(
                        self._enqueue(event, endpoint.url, endpoint.id, self.settings.webhook_retry_schedule, now)
                    )
        self.watch(team.id)
        return made

    def _keep_event(self, team_id: str, event: Event) -> None:
        self.store.put(EVENT, event.id, event, owner=team_id)
        if self.store.count(EVENT, owner=team_id) <= self.settings.webhook_log_limit:
            return  # the usual case, without loading every event of the team
        events: list[Event] = self.store.values(EVENT, owner=team_id)
        for old in events[: max(0, len(events) - self.settings.webhook_log_limit)]:
            self.store.delete(EVENT, old.id)

    def _enqueue(
        self,
        event: Event,
        url: str,
        endpoint_id: str | None,
        schedule: Sequence[float],
        now: datetime,
        plan: DeliveryPlan = DIRECT,
    ) -> Delivery:
        """One delivery (``plan.copies`` of them under a scenario); the first is returned."""
        made = [
            Delivery(
                id=self.ids.new("dlv", at=now, scope=id_scope(event.team_id)),
                team_id=event.team_id,
                event_id=event.id,
                event_type=event.type,
                url=url,
                endpoint_id=endpoint_id,
                origin=now + timedelta(seconds=plan.delay),
                schedule=tuple(schedule),
                last=plan.last,
            )
            for _ in range(plan.copies)
        ]
        for delivery in made:
            self.store.put(DELIVERY, delivery.id, delivery, owner=event.team_id)
        return made[0]

    # --- the teams the dispatcher polls -------------------------------------------------------------

    def watch(self, team_id: str) -> None:
        with self.store.transaction():
            teams: set[str] = self.store.get(INDEX, "teams") or set()
            if team_id not in teams:
                self.store.put(INDEX, "teams", teams | {team_id}, owner=WATCH_OWNER)

    def watched(self) -> list[str]:
        teams: set[str] = self.store.get(INDEX, "teams") or set()
        return sorted(teams)

    # --- attempts -----------------------------------------------------------------------------------

    def pending(self, team_id: str) -> list[Delivery]:
        """Deliveries with attempts left, in the order they are due."""
        rows: list[Delivery] = self.store.values(DELIVERY, owner=team_id)
        return sorted(rows, key=lambda d: d.next_at)

    @staticmethod
    def _due(pending: list[Delivery], now: datetime, wall: float | None) -> list[Delivery]:
        """The deliveries due at ``now`` and not leased, in sending order: oldest first, then the ``last`` ones."""
        due = [d for d in pending if d.next_at <= now and not d.leased(wall)]
        return [d for d in due if not d.last] + [d for d in reversed(due) if d.last]

    def in_flight(self, team_ids: list[str], wall: float) -> bool:
        """Whether a dispatcher of any process holds a lease on an attempt of these teams."""
        return any(d.leased(wall) for team_id in team_ids for d in self.pending(team_id))

    def claim(
        self,
        team_id: str,
        now: datetime,
        busy: set[str],
        limit: int,
        *,
        signed_at: int | None = None,
        leased_at: float | None = None,
        per_target: int = 1,
    ) -> list[Claim]:
        """Due attempts of up to ``limit`` targets, the ``per_target`` oldest of each in sending order (a target's
        claims are adjacent and must be sent one after the other), skipping targets in ``busy`` (being sent to).

        ``signed_at`` is the ``t=`` of the signatures (the dispatcher passes real time); by default each
        attempt is signed for its own scheduled instant. With ``leased_at`` (real time) each claimed attempt is
        leased in the store until every send of its target's batch could have timed out (plus a margin), so no
        other process claims it; a target with a leased attempt counts as busy. A backlog goes out in batches:
        one claim per attempt would scan every pending delivery per attempt, a flush quadratic in the backlog.
        """
        if not self._due(self.pending(team_id), now, leased_at):
            return []  # the usual poll: decided without a write transaction
        with self.store.transaction():
            pending = self.pending(team_id)
            taken = set(busy) | {d.target for d in pending if d.leased(leased_at)}
            batches: dict[str, list[Delivery]] = {}
            for delivery in self._due(pending, now, leased_at):
                batch = batches.get(delivery.target)
                if batch is None and (delivery.target in taken or len(batches) >= limit):
                    continue
                if batch is None:
                    batch = batches[delivery.target] = []
                if len(batch) < per_target:
                    batch.append(delivery)
            claims: list[Claim] = []
            for batch in batches.values():
                for delivery in batch:
                    if leased_at is not None:
                        sends = len(batch) * self.settings.webhook_timeout_seconds
                        delivery.lease_until = leased_at + sends + LEASE_MARGIN_SECONDS
                        self.store.put(DELIVERY, delivery.id, delivery, owner=delivery.team_id)
                    claims.append(self._claim(delivery, signed_at))
        return claims

    def still_due(self, claim: Claim) -> bool:
        """Whether a claimed attempt is still the delivery's next one (not dropped by a disable, delete or reset
        while the attempts before it in its batch were sent)."""
        delivery: Delivery | None = self.store.get(DELIVERY, claim.delivery_id)
        return delivery is not None and delivery.attempts == claim.attempt - 1

    def release(self, claim: Claim) -> None:
        """Give a claimed attempt back unsent (the dispatcher is stopping): it is due again at once, for anyone."""
        with self.store.transaction():
            delivery: Delivery | None = self.store.get(DELIVERY, claim.delivery_id)
            if delivery is not None and delivery.attempts == claim.attempt - 1 and delivery.lease_until is not None:
                delivery.lease_until = None
                self.store.put(DELIVERY, delivery.id, delivery, owner=delivery.team_id)

    def _claim(self, delivery: Delivery, signed_at: int | None) -> Claim:
        at = delivery.next_at
        event: Event | None = self.store.get(EVENT, delivery.event_id)
        body = event.body if event is not None else b"{}"
        headers = {"Content-Type": "application/json", "User-Agent": f"aurous-mock/{__version__}"}
        secret = None
        if delivery.endpoint_id is not None:
            endpoint: Endpoint | None = self.store.get(ENDPOINT, delivery.endpoint_id)
            secret = endpoint.secret if endpoint is not None else None
            headers["Aurous-Webhook-Id"] = delivery.endpoint_id
            headers["Aurous-Event-Id"] = delivery.event_id
        elif self.settings.webhook_sign_callbacks:
            secret = self._callback_secret(delivery.team_id)
        if secret is not None:
            headers[SIGNATURE_HEADER] = sign(secret, unix_seconds(at) if signed_at is None else signed_at, body)
        return Claim(
            team_id=delivery.team_id,
            delivery_id=delivery.id,
            event_id=delivery.event_id,
            event_type=delivery.event_type,
            endpoint_id=delivery.endpoint_id,
            target=delivery.target,
            attempt=delivery.attempts + 1,
            scheduled_at=at,
            url=delivery.url,
            body=body,
            headers=headers,
        )

    def _callback_secret(self, team_id: str) -> str | None:
        """Callbacks are signed with the team's first active endpoint secret, if any (reference §8.8)."""
        rows: list[Endpoint] = self.store.values(ENDPOINT, owner=team_id)
        return next((row.secret for row in rows if row.is_active), None)

    def record(self, team: Team, claim: Claim, result: SendResult, now: datetime) -> Attempt:
        """Book an attempt at its scheduled instant: endpoint counters, the next attempt, auto-disable, the log."""
        at = claim.scheduled_at
        with self.store.transaction():
            next_at = self._advance(claim, result.ok)
            endpoint: Endpoint | None = self.store.get(ENDPOINT, claim.endpoint_id) if claim.endpoint_id else None
            if endpoint is not None and endpoint.team_id == team.id:
                self._book(endpoint, result.ok, at)
                if self._should_disable(endpoint, at):
                    self._disable(team, endpoint, at)
                    next_at = None
            outcome = "succeeded" if result.ok else ("retrying" if next_at is not None else "failed")
            return self._log(claim, result, now, next_at, outcome)

    def _advance(self, claim: Claim, ok: bool) -> datetime | None:
        """Count the attempt; the instant of the next one, or ``None`` when the delivery is over."""
        delivery: Delivery | None = self.store.get(DELIVERY, claim.delivery_id)
        if delivery is None or delivery.attempts != claim.attempt - 1:
            return None  # dropped (endpoint deleted or disabled, team reset) while this attempt was in flight
        delivery.attempts += 1
        delivery.lease_until = None
        if ok or delivery.attempts >= len(delivery.schedule):
            self.store.delete(DELIVERY, delivery.id)
            return None
        self.store.put(DELIVERY, delivery.id, delivery, owner=delivery.team_id)
        return delivery.next_at

    def _book(self, endpoint: Endpoint, ok: bool, at: datetime) -> None:
        if ok:
            endpoint.consecutive_failures = 0
            endpoint.last_success_at = max(at, endpoint.last_success_at or at)
        else:
            endpoint.consecutive_failures += 1
            endpoint.last_failure_at = max(at, endpoint.last_failure_at or at)
        self.store.put(ENDPOINT, endpoint.id, endpoint, owner=endpoint.team_id)

    def _should_disable(self, endpoint: Endpoint, at: datetime) -> bool:
        if not endpoint.is_active or endpoint.consecutive_failures < self.settings.webhook_disable_after_failures:
            return False
        return endpoint.last_success_at is None or at - endpoint.last_success_at >= DISABLE_WINDOW

    def _disable(self, team: Team, endpoint: Endpoint, at: datetime) -> None:
        """Inactive, its pending deliveries dropped, and ``webhook.endpoint_disabled`` to the team's others."""
        endpoint.is_active = False
        endpoint.updated_at = at
        self.store.put(ENDPOINT, endpoint.id, endpoint, owner=team.id)
        self._drop_deliveries(team.id, endpoint.id)
        self.publish(team, "webhook.endpoint_disabled", endpoint.wire(), at, version=team.default_api_version)

    def _drop_deliveries(self, team_id: str, endpoint_id: str) -> None:
        for delivery in self.pending(team_id):
            if delivery.endpoint_id == endpoint_id:
                self.store.delete(DELIVERY, delivery.id)

    def _log(self, claim: Claim, result: SendResult, now: datetime, next_at: datetime | None, outcome: str) -> Attempt:
        row = Attempt(
            delivery_id=claim.delivery_id,
            event_id=claim.event_id,
            event_type=claim.event_type,
            endpoint_id=claim.endpoint_id,
            url=claim.url,
            attempt=claim.attempt,
            scheduled_at=claim.scheduled_at,
            attempted_at=now,
            request_headers=dict(claim.headers),
            request_body=claim.body.decode("utf-8", "replace"),
            result=result,
            next_retry_at=next_at,
            outcome=outcome,
        )
        rows: list[Attempt] = self.store.get(LOG, claim.team_id) or []
        rows.append(row)
        del rows[: max(0, len(rows) - self.settings.webhook_log_limit)]
        self.store.put(LOG, claim.team_id, rows, owner=claim.team_id)
        return row

    def attempts(self, team: Team, event_id: str | None = None) -> list[Attempt]:
        """The team's delivery log, newest first, optionally for one event."""
        rows: list[Attempt] = list(self.store.get(LOG, team.id) or [])
        rows.reverse()
        return [row for row in rows if event_id is None or row.event_id == event_id]
