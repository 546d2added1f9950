"""The hot path's faster spellings give exactly what the plain ones they replaced gave (bench/README.md)."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st
from starlette.datastructures import URL, MutableHeaders

from mockserver.api.generations import _origin
from mockserver.api.headers import assign, has
from mockserver.clock import rfc3339
from mockserver.core import outputs

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
