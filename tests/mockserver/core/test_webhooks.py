"""The webhook domain without HTTP: signing, endpoints, the retry schedule, auto-disable, balance_low, the log.

Reference §2.7 and §5. The service is driven directly with an in-memory store and explicit instants;
attempts are claimed and recorded by hand, standing in for the dispatcher.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import string
from datetime import timedelta
from typing import Any

import jsonschema_rs
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mockserver import InMemoryStore
from mockserver.core.errors import (
    InvalidFormatError,
    ParameterInvalidCombinationError,
    ResourceNotFoundError,
    UnknownReferenceError,
    ValueOutOfRangeError,
)
from mockserver.core.models import Team
from mockserver.core.webhooks import (
    CALLBACK_SCHEDULE,
    EVENT_TYPES,
    V1_EVENT_TYPES,
    Claim,
    EndpointCreateRequest,
    SendResult,
    Webhooks,
    preview,
    require_uri,
    sign,
)
from mockserver.ids import IdSource
from tests.conftest import START, make_settings

SIGNATURE = re.compile(r"^t=(\d{10}),v1=([0-9a-f]{64})$")
SCHEDULE = [0, 60, 300, 1800, 7200, 21600, 43200, 86400]
OK, FAIL = SendResult(200), SendResult(500)


def verify(header: str, body: bytes, secret: str) -> bool:
    """What a receiver does (reference §5.4): recompute the HMAC of ``{t}.{body}`` with the whole secret."""
    match = SIGNATURE.match(header)
    assert match, header
    expected = hmac.new(secret.encode(), f"{match[1]}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, match[2])


def make(**overrides: Any) -> tuple[Webhooks, Team]:
    store = InMemoryStore()
    team = Team(id="team_1", name="t", created_at=START, credits=1000.0)
    store.put("team", team.id, team, owner=team.id)
    return Webhooks(store, IdSource(7), make_settings(**overrides)), team


def endpoint_for(hooks: Webhooks, team: Team, url: str = "https://example.com/hook", events: Any = ("*",)) -> Any:
    return hooks.create_endpoint(team, EndpointCreateRequest(url=url, events=list(events)), START)


def run_due(hooks: Webhooks, team: Team, now: Any, result: Any = FAIL) -> list[Claim]:
    """Claim and record everything due at ``now``, like ``flush``; the claims in the order they were sent.

    ``result`` is a :class:`SendResult` or a function of the claim returning one.
    """
    sent: list[Claim] = []
    while claims := hooks.claim(team.id, now, set(), 100):
        for claim in claims:
            hooks.record(team, claim, result(claim) if callable(result) else result, now)
        sent.extend(claims)
    return sent


# --- signing -------------------------------------------------------------------------------------------


def test_sign_is_hmac_sha256_of_timestamp_dot_body_keyed_with_whole_secret():
    secret, body = "whsec_8jKpQ4nXabc1234abcdef567890", b'{"id":"evt_1"}'
    expected = hmac.new(secret.encode(), b"1778580000." + body, hashlib.sha256).hexdigest()
    assert sign(secret, 1778580000, body) == f"t=1778580000,v1={expected}"


def test_sign_matches_the_documented_header_pattern():
    assert SIGNATURE.match(sign("whsec_x", 1778580000, b""))


def test_preview_keeps_the_first_nine_and_last_four_characters():
    assert preview("whsec_8jKpQ4nXabc1234abcdefABCD") == "whsec_8jK...ABCD"


# --- endpoints -----------------------------------------------------------------------------------------


def test_create_endpoint_secret_is_whsec_and_32_alphanumerics():
    hooks, team = make()
    endpoint = endpoint_for(hooks, team)
    assert endpoint.secret.startswith("whsec_")
    assert len(endpoint.secret) == 38
    assert set(endpoint.secret[6:]) <= set(string.ascii_letters + string.digits)
    assert endpoint.wire()["secret"] is None
    assert endpoint.wire(show_secret=True)["secret"] == endpoint.secret


def test_create_endpoint_secrets_are_reproducible_with_a_seed():
    first, team = make()
    second, _ = make()
    assert endpoint_for(first, team).secret == endpoint_for(second, team).secret


def test_create_endpoint_star_expands_to_the_eight_v1_types():
    hooks, team = make()
    assert endpoint_for(hooks, team).events == list(V1_EVENT_TYPES)
    assert len(V1_EVENT_TYPES) == 8
    assert len(EVENT_TYPES) == 11


def test_create_endpoint_keeps_explicit_types_once_in_order():
    hooks, team = make()
    events = ["video.failed", "character.completed", "video.failed"]
    assert endpoint_for(hooks, team, events=events).events == ["video.failed", "character.completed"]


def test_create_endpoint_unknown_type_names_its_index():
    hooks, team = make()
    with pytest.raises(InvalidFormatError) as raised:
        endpoint_for(hooks, team, events=["image.completed", "image.done"])
    assert raised.value.param == "events[1]"


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/hook",
        "https://10.0.0.1/hook",
        "https://192.168.1.2/hook",
        "https://169.254.169.254/latest",
        "https://metadata.google.internal/",
        "ftp://example.com/",
        "https://example.com/é",
    ],
)
def test_create_endpoint_rejects_urls(url: str):
    hooks, team = make()
    with pytest.raises(InvalidFormatError) as raised:
        endpoint_for(hooks, team, url=url)
    assert raised.value.param == "url"


def test_create_endpoint_accepts_http_loopback_when_allowed():
    hooks, team = make()
    assert endpoint_for(hooks, team, url="http://127.0.0.1:8123/hook").url == "http://127.0.0.1:8123/hook"


def test_create_endpoint_rejects_http_loopback_when_not_allowed():
    hooks, team = make(webhook_allow_http_loopback=False)
    with pytest.raises(InvalidFormatError):
        endpoint_for(hooks, team, url="http://127.0.0.1:8123/hook")


@pytest.mark.parametrize(
    "metadata",
    [{f"k{i}": "v" for i in range(51)}, {"k": "x" * 501}],
    ids=["51-keys", "501-chars"],
)
def test_create_endpoint_metadata_limits(metadata: dict[str, str]):
    hooks, team = make()
    req = EndpointCreateRequest(url="https://example.com/", events=["*"], metadata=metadata)
    with pytest.raises(ValueOutOfRangeError) as raised:
        hooks.create_endpoint(team, req, START)
    assert raised.value.param == "metadata"


URI_FORMAT = jsonschema_rs.validator_for({"type": "string", "format": "uri"}, validate_formats=True)


@given(st.text(alphabet=st.sampled_from("aZ09-._~:/?#[]@!$&'()*+,;=%é <>{}|\\\"^`"), max_size=20))
def test_require_uri_never_accepts_what_the_uri_format_rejects(tail: str):
    url = "https://example.com/" + tail
    try:
        require_uri(url)
    except InvalidFormatError:
        return
    assert URI_FORMAT.is_valid(url), url


def test_list_endpoints_newest_first_with_cursors():
    hooks, team = make()
    ids = [endpoint_for(hooks, team).id for _ in range(5)][::-1]
    first = hooks.list_endpoints(team, limit=2, starting_after=None, ending_before=None)
    assert [e.id for e in first.rows] == ids[:2]
    assert first.has_more
    second = hooks.list_endpoints(team, limit=2, starting_after=ids[1], ending_before=None)
    assert [e.id for e in second.rows] == ids[2:4]
    last = hooks.list_endpoints(team, limit=2, starting_after=ids[3], ending_before=None)
    assert [e.id for e in last.rows] == ids[4:]
    assert not last.has_more
    back = hooks.list_endpoints(team, limit=2, starting_after=None, ending_before=ids[4])
    assert [e.id for e in back.rows] == ids[2:4]
    assert back.has_more


def test_list_endpoints_rejects_unknown_cursor_and_both_cursors():
    hooks, team = make()
    with pytest.raises(UnknownReferenceError):
        hooks.list_endpoints(team, limit=2, starting_after="we_nope", ending_before=None)
    with pytest.raises(ParameterInvalidCombinationError):
        hooks.list_endpoints(team, limit=2, starting_after="a", ending_before="b")


def test_get_endpoint_of_another_team_is_not_found():
    hooks, team = make()
    endpoint = endpoint_for(hooks, team)
    other = Team(id="team_2", name="o", created_at=START, credits=1.0)
    with pytest.raises(ResourceNotFoundError):
        hooks.get_endpoint(other, endpoint.id)


def test_delete_endpoint_is_idempotent_and_stops_its_deliveries():
    hooks, team = make()
    endpoint = endpoint_for(hooks, team)
    hooks.publish(team, "image.completed", {}, START, version="2026-05-15")
    assert hooks.delete_endpoint(team, endpoint.id) is True
    assert hooks.delete_endpoint(team, endpoint.id) is False
    assert hooks.pending(team.id) == []


def test_rotate_secret_old_secret_no_longer_verifies_new_deliveries():
    hooks, team = make()
    endpoint = endpoint_for(hooks, team)
    old = endpoint.secret
    hooks.publish(team, "image.completed", {}, START, version="2026-05-15")
    new = hooks.rotate_secret(team, endpoint.id, START + timedelta(seconds=1)).secret
    assert new != old
    [claim] = hooks.claim(team.id, START, set(), 10)  # enqueued before the rotation, sent after it
    header = claim.headers["Aurous-Webhook-Signature"]
    assert verify(header, claim.body, new)
    assert not verify(header, claim.body, old)


def test_test_fire_requires_a_subscribed_type():
    hooks, team = make()
    endpoint = endpoint_for(hooks, team, events=["image.completed"])
    with pytest.raises(InvalidFormatError) as raised:
        hooks.test_fire(team, endpoint.id, "video.completed", lambda _: {}, START)
    assert raised.value.param == "event_type"
    event = hooks.test_fire(team, endpoint.id, "image.completed", lambda _: {"x": 1}, START)
    assert orjson.loads(event.body)["synthetic"] is True


# --- deliveries: schedule, bookkeeping, auto-disable -------------------------------------------------------


def test_endpoint_envelope_fields_and_signed_headers():
    hooks, team = make()
    endpoint = endpoint_for(hooks, team)
    event = hooks.publish(team, "image.failed", {"id": "img_1"}, START, version="2026-05-15")
    assert event is not None
    [claim] = hooks.claim(team.id, START, set(), 10)
    assert orjson.loads(claim.body) == {
        "id": event.id,
        "object": "event",
        "event": "image.failed",
        "created_at": "2026-06-01T12:00:00Z",
        "aurous_version": "2026-05-15",
        "synthetic": False,
        "data": {"id": "img_1"},
    }
    assert claim.headers["Aurous-Webhook-Id"] == endpoint.id
    assert claim.headers["Aurous-Event-Id"] == event.id
    assert claim.headers["Content-Type"] == "application/json"
    assert claim.headers["User-Agent"].startswith("aurous-mock/")
    assert verify(claim.headers["Aurous-Webhook-Signature"], claim.body, endpoint.secret)


def test_publish_without_subscribers_records_nothing():
    hooks, team = make()
    endpoint_for(hooks, team, events=["video.completed"])
    assert hooks.publish(team, "image.completed", {}, START, version="2026-05-15") is None
    assert hooks.pending(team.id) == []


def test_attempts_happen_at_the_schedule_offsets_signed_for_their_instant():
    hooks, team = make()
    endpoint_for(hooks, team)
    hooks.publish(team, "image.completed", {}, START, version="2026-05-15")
    sent = run_due(hooks, team, START + timedelta(hours=25))
    assert [(c.scheduled_at - START).total_seconds() for c in sent] == SCHEDULE
    stamps = [int(SIGNATURE.match(c.headers["Aurous-Webhook-Signature"])[1]) for c in sent]  # type: ignore[index]
    assert [s - stamps[0] for s in stamps] == SCHEDULE
    log = hooks.attempts(team)
    assert [row.outcome for row in log] == ["failed"] + ["retrying"] * 7
    assert log[1].next_retry_at == START + timedelta(seconds=86400)
    assert hooks.pending(team.id) == []


def test_only_due_attempts_are_claimed():
    hooks, team = make()
    endpoint_for(hooks, team)
    hooks.publish(team, "image.completed", {}, START, version="2026-05-15")
    assert len(run_due(hooks, team, START + timedelta(seconds=299))) == 2
    assert len(run_due(hooks, team, START + timedelta(seconds=300))) == 1


def test_one_attempt_per_target_at_a_time_oldest_first():
    hooks, team = make()
    endpoint_for(hooks, team)
    endpoint_for(hooks, team, url="https://example.org/other")
    first = hooks.publish(team, "image.completed", {}, START, version="2026-05-15")
    hooks.publish(team, "image.failed", {}, START + timedelta(seconds=1), version="2026-05-15")
    claims = hooks.claim(team.id, START + timedelta(seconds=5), set(), 10)
    assert len(claims) == 2
    assert {c.event_id for c in claims} == {first.id}  # type: ignore[union-attr]
    assert hooks.claim(team.id, START, {c.target for c in claims}, 10) == []


def test_counters_rise_on_failure_and_reset_on_success():
    hooks, team = make()
    endpoint = endpoint_for(hooks, team)
    hooks.publish(team, "image.completed", {}, START, version="2026-05-15")
    run_due(hooks, team, START + timedelta(seconds=60))
    assert endpoint.consecutive_failures == 2
    assert endpoint.last_failure_at == START + timedelta(seconds=60)
    run_due(hooks, team, START + timedelta(seconds=300), OK)
    assert endpoint.consecutive_failures == 0
    assert endpoint.last_success_at == START + timedelta(seconds=300)
    assert endpoint.wire()["last_success_at"] == "2026-06-01T12:05:00Z"


def test_auto_disable_at_twenty_failures_without_success():
    hooks, team = make()
    failing = endpoint_for(hooks, team)
    witness = endpoint_for(hooks, team, url="https://example.org/witness", events=["webhook.endpoint_disabled"])
    for i in range(3):
        hooks.publish(team, "image.completed", {"n": i}, START, version="2026-05-15")
    everything = run_due(
        hooks, team, START + timedelta(hours=25), lambda c: FAIL if c.endpoint_id == failing.id else OK
    )
    sent = [c for c in everything if c.endpoint_id == failing.id]
    assert len(sent) == 20  # 3 deliveries x 7 attempts were due; the last one was dropped at the disable
    assert sent[-1].scheduled_at == START + timedelta(seconds=43200)
    assert not failing.is_active
    assert failing.consecutive_failures == 20
    notices = [row for row in hooks.attempts(team) if row.endpoint_id == witness.id]
    assert [(row.event_type, row.scheduled_at) for row in notices] == [
        ("webhook.endpoint_disabled", START + timedelta(seconds=43200))
    ]
    data = orjson.loads(notices[0].request_body)["data"]
    assert data["id"] == failing.id
    assert data["is_active"] is False
    assert data["secret"] is None
    assert hooks.publish(team, "image.completed", {}, START + timedelta(hours=26), version="2026-05-15") is None


def test_auto_disable_waits_until_a_day_after_the_last_success():
    hooks, team = make(webhook_disable_after_failures=2, webhook_retry_schedule=[0, 3600 * 30])
    endpoint = endpoint_for(hooks, team)
    hooks.publish(team, "image.completed", {}, START, version="2026-05-15")
    run_due(hooks, team, START, OK)
    for i in range(2):
        hooks.publish(team, "image.failed", {}, START + timedelta(hours=1, seconds=i), version="2026-05-15")
    run_due(hooks, team, START + timedelta(hours=2))
    assert endpoint.consecutive_failures == 2
    assert endpoint.is_active  # a success 1 h ago
    run_due(hooks, team, START + timedelta(hours=40))
    assert not endpoint.is_active  # the retries at 31 h: no success for more than 24 h


def test_callback_has_three_attempts_two_seconds_apart_signed_with_first_active_endpoint():
    hooks, team = make()
    endpoint = endpoint_for(hooks, team)
    hooks.callback(team, "https://example.com/cb", "video.completed", {"id": "vid_1"}, START)
    sent = [c for c in run_due(hooks, team, START + timedelta(seconds=10)) if c.endpoint_id is None]
    assert [(c.scheduled_at - START).total_seconds() for c in sent] == list(CALLBACK_SCHEDULE) == [0, 2, 4]
    assert orjson.loads(sent[0].body) == {"event": "video.completed", "data": {"id": "vid_1"}}
    assert verify(sent[0].headers["Aurous-Webhook-Signature"], sent[0].body, endpoint.secret)
    assert "Aurous-Event-Id" not in sent[0].headers


def test_callback_is_unsigned_without_an_endpoint_or_when_configured_off():
    for hooks, team, with_endpoint in ((*make(), False), (*make(webhook_sign_callbacks=False), True)):
        if with_endpoint:
            endpoint_for(hooks, team, events=["video.failed"])
        hooks.callback(team, "https://example.com/cb", "video.completed", {}, START)
        [claim] = hooks.claim(team.id, START, set(), 10)
        assert "Aurous-Webhook-Signature" not in claim.headers


def test_redeliver_sends_the_same_body_again_and_unknown_event_is_not_found():
    hooks, team = make()
    endpoint_for(hooks, team)
    event = hooks.publish(team, "image.completed", {"a": 1}, START, version="2026-05-15")
    assert event is not None
    first = run_due(hooks, team, START, OK)
    [again] = hooks.redeliver(team, event.id, START + timedelta(minutes=5))
    second = run_due(hooks, team, START + timedelta(minutes=5), OK)
    assert again.id != first[0].delivery_id
    assert second[0].body == first[0].body
    assert second[0].scheduled_at == START + timedelta(minutes=5)
    with pytest.raises(ResourceNotFoundError):
        hooks.redeliver(team, "evt_unknown", START)


def test_log_is_bounded_per_team():
    hooks, team = make(webhook_log_limit=3)
    endpoint_for(hooks, team)
    hooks.publish(team, "image.completed", {}, START, version="2026-05-15")
    run_due(hooks, team, START + timedelta(hours=25))
    assert [row.attempt for row in hooks.attempts(team)] == [8, 7, 6]


# --- usage.balance_low ----------------------------------------------------------------------------------


def test_balance_low_off_by_default():
    hooks, team = make()
    endpoint_for(hooks, team)
    team.credits = 0
    assert hooks.check_balance_low(team, START) is None


def test_balance_low_fires_at_threshold_and_is_debounced_for_an_hour():
    hooks, team = make(balance_low_threshold=10)
    endpoint_for(hooks, team)
    team.credits = 10.5
    assert hooks.check_balance_low(team, START) is None
    team.credits = 10
    event = hooks.check_balance_low(team, START)
    assert event is not None
    assert orjson.loads(event.body)["data"] == {"credits": 10, "available_credits": 10.0, "threshold": 10}
    assert hooks.check_balance_low(team, START + timedelta(minutes=59)) is None
    assert hooks.check_balance_low(team, START + timedelta(hours=1)) is not None
