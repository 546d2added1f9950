"""The hot path's faster spellings give exactly what the plain ones they replaced gave (bench/README.md)."""

from __future__ import annotations

import gc
import hashlib
import hmac
from datetime import UTC, datetime, timedelta, timezone

import orjson
from hypothesis import given
from hypothesis import strategies as st
from starlette.datastructures import URL, Headers, MutableHeaders
from starlette.responses import Response

from mockserver.api.generations import _origin, _rendered, render, reply_body
from mockserver.api.headers import assign, first_values, has
from mockserver.api.pipeline import EncodedJSONResponse, KeptJSONResponse
from mockserver.clock import rfc3339
from mockserver.core import outputs
from mockserver.core.models import Cost, Generation, JobStatus
from mockserver.settings import Settings

NAMES = st.sampled_from(["content-type", "content-length", "x-ratelimit-limit", "aurous-version", "etag"])
RAW = st.lists(st.tuples(NAMES.map(str.encode), st.text("abc0123", max_size=4).map(str.encode)), max_size=6)
UPDATES = st.dictionaries(NAMES.map(str.title), st.text("xyz789", max_size=4), max_size=4)


def _strftime_rfc3339(when: datetime) -> str:
    """clock.rfc3339 as it was before the benchmark."""
    when = when.astimezone(UTC)
    if when.microsecond:
        return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


@given(RAW, UPDATES)
def test_assign_is_mutable_headers_assignment_one_by_one(raw: list[tuple[bytes, bytes]], updates: dict) -> None:
    expected = MutableHeaders(raw=list(raw))
    for name, value in updates.items():
        expected[name] = value
    assert assign(raw, updates) == expected.raw


@given(RAW, NAMES)
def test_has_is_membership(raw: list[tuple[bytes, bytes]], name: str) -> None:
    assert has(raw, name.encode()) == (name in MutableHeaders(raw=list(raw)))


@given(
    st.datetimes(min_value=datetime(1000, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)),
    st.integers(min_value=-12 * 60, max_value=14 * 60),
)
def test_rfc3339_is_the_strftime_rendering(when: datetime, offset_minutes: int) -> None:
    local = when.astimezone(timezone(timedelta(minutes=offset_minutes)))
    assert rfc3339(local) == _strftime_rfc3339(local)
    assert rfc3339(when.replace(microsecond=0)) == _strftime_rfc3339(when.replace(microsecond=0))


@given(st.text(min_size=1, max_size=80), st.text(max_size=30), st.integers(min_value=0, max_value=10**12))
def test_output_signature_is_hmac_sha256(secret: str, subject: str, expires: int) -> None:
    message = f"{subject}:0:{expires}".encode()
    expected = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:40]
    assert outputs._sign(secret, subject, "0", expires) == expected


HOSTS = [None, b"127.0.0.1:8080", b"localhost", b"example.com:443", b"[::1]:9000", b"bad host", b"h:99999"]
SERVERS = [None, ("127.0.0.1", 8080), ("10.0.0.1", 80), ("::1", 443)]


@given(st.sampled_from(["http", "https"]), st.sampled_from(HOSTS), st.sampled_from(SERVERS))
def test_origin_is_the_scheme_and_netloc_of_starlettes_url(
    scheme: str, host: bytes | None, server: tuple[str, int] | None
) -> None:
    headers = [] if host is None else [(b"host", host)]
    scope = {"scheme": scheme, "server": server, "path": "/v1/images/img_1", "query_string": b"a=1", "headers": headers}
    url = URL(scope=scope)
    assert _origin(scheme, host, server) == f"{url.scheme}://{url.netloc}"


@given(RAW, NAMES)
def test_first_values_finds_what_starlettes_headers_get_finds(raw: list[tuple[bytes, bytes]], name: str) -> None:
    found = first_values(raw).get(name.encode())
    expected = Headers(raw=list(raw)).get(name)
    assert (None if found is None else found.decode("latin-1")) == expected


T0 = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
OUTCOMES = st.sampled_from([JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.EXPIRED])
# What can happen between two polls of one record: time passes (whole or fractional seconds), the client
# calls through another origin, the generation is cancelled, or the record is replaced by another object
# with the same id (a reset replaying the seed, a snapshot restored, a shared store's fresh copy).
STEPS = st.lists(
    st.one_of(
        st.tuples(
            st.just("wait"), st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0, 12.0]) | st.floats(0, 30, allow_nan=False)
        ),
        st.tuples(st.just("origin"), st.sampled_from(["http://a:1", "http://b:2"])),
        st.tuples(st.just("cancel"), st.none()),
        st.tuples(st.just("replace"), st.text(max_size=8)),
    ),
    max_size=12,
)


def _generation(prompt: str, outcome: JobStatus, image_count: int) -> Generation:
    return Generation(
        id="img_01HXMQ7Z3K8Y2ABCDEFGHJKMNP",
        team_id="team_x",
        media_type="image",
        prompt=prompt,
        created_at=T0,
        started_at=T0 + timedelta(seconds=2),
        finish_at=T0 + timedelta(seconds=12),
        outcome=outcome,
        cost=Cost(amount=1, base=1, enhance=0),
        aurous_version="2026-05-15",
        creation_request_id="req_x",
        inference_type="t2i",
        seed=1,
        params={"image_count": image_count},
        error_message="failed" if outcome is not JobStatus.SUCCEEDED else None,
    )


@given(
    STEPS,
    OUTCOMES,
    st.integers(min_value=1, max_value=3),
    st.sampled_from([0.5, 1.5, 86400.0]) | st.floats(min_value=0.5, max_value=86400, allow_nan=False),
    st.booleans(),
)
def test_a_reused_body_is_always_the_fresh_rendering(
    steps: list[tuple[str, object]], outcome: JobStatus, images: int, ttl: float, v11: bool
) -> None:
    settings = Settings(output_token_ttl_seconds=ttl, emit_v11_statuses=v11)
    gen, now, base = _generation("p", outcome, images), T0, "http://a:1"
    for kind, arg in [("poll", None), *steps]:
        if kind == "wait":
            assert isinstance(arg, float)
            now += timedelta(seconds=arg)
        elif kind == "origin":
            base = str(arg)
        elif kind == "cancel" and gen.cancelled_at is None and not gen.status_at(now).terminal:
            gen.cancelled_at = now
        elif kind == "replace":
            gen = _generation(str(arg), outcome, images)
        fresh = orjson.dumps(render(gen, now, base, settings))
        assert reply_body(gen, now, base, settings) == fresh
        assert reply_body(gen, now, base, settings) == fresh  # the second time from the kept body


def test_a_kept_body_leaves_the_collector_one_object_to_walk() -> None:
    """What a kept body is checked against is a tuple of plain values (the status as its string): after its first
    look the collector walks only the (record, key, body) entry, one object per generation polled or created."""
    gen = _generation("gc", JobStatus.SUCCEEDED, 1)
    reply_body(gen, T0 + timedelta(seconds=60), "http://a:1", Settings())
    gc.collect()
    record, key, _ = _rendered[gen.id]
    assert record is gen
    assert not gc.is_tracked(key)


@given(st.binary(max_size=64), st.sampled_from([100, 200, 201, 202, 204, 304, 400, 404, 429, 500]))
def test_an_encoded_json_response_is_starlettes_json_response(body: bytes, status: int) -> None:
    plain = Response(body, status_code=status, media_type="application/json")
    for fast in (EncodedJSONResponse(body, status), KeptJSONResponse(body, status)):
        assert (fast.status_code, fast.body, fast.raw_headers) == (plain.status_code, plain.body, plain.raw_headers)
        assert fast.background is None
        assert fast.headers == plain.headers
