"""The SSRF corpus through the HTTP API: every URL field the emulator could fetch or call, every trick, the right
``param``; nothing created, held or registered by a refused request; public https URLs accepted.

``core/test_ssrf.py`` tables the guard itself; this proves each route applies it to each of its URL fields.
Webhook targets (``webhook_url``, endpoint ``url``) admit loopback receivers while ``webhook_allow_http_loopback``
is on (the default, for local tests); with it off they refuse loopback like every other field does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import pytest
from starlette.testclient import TestClient

from mockserver import InMemoryStore, VirtualClock, create_app
from mockserver.webhooks import RecordingSender
from tests.conftest import BASE_URL, START, make_settings, new_api_key
from tests.helpers import assert_envelope

OK = "https://cdn.example.com/ok.png"
VIDEO = {"video_lora_id": "seedance-1-pro", "resolution": "480p", "duration": 5}


class Bad(NamedTuple):
    url: str
    loopback: bool = False  # a loopback receiver: admitted for webhook targets while the setting is on
    uri: bool = True  # an RFC 3986 URI (endpoint URLs must be one: they are echoed as `format: uri`)


CORPUS: dict[str, Bad] = {
    # private, shared and unspecified ranges
    "private-10": Bad("https://10.0.0.1/a.png"),
    "private-172-16": Bad("https://172.16.0.1/a.png"),
    "private-172-31": Bad("https://172.31.255.255/a.png"),
    "private-192-168": Bad("https://192.168.1.1/a.png"),
    "cgnat-100-64": Bad("https://100.64.0.1/a.png"),
    "unspecified-v4": Bad("https://0.0.0.0/a.png"),
    "unique-local-fc": Bad("https://[fc00::1]/a.png"),
    "unique-local-fd": Bad("https://[fd12:3456::1]/a.png"),
    "multicast": Bad("https://224.0.0.1/a.png"),
    "reserved-240": Bad("https://240.0.0.1/a.png"),
    # loopback
    "loopback-v4": Bad("https://127.0.0.1/a.png", loopback=True),
    "loopback-v4-range-port": Bad("https://127.255.255.254:8443/a.png", loopback=True),
    "loopback-v6": Bad("https://[::1]/a.png", loopback=True),
    "loopback-v6-long": Bad("https://[0:0:0:0:0:0:0:1]/a.png", loopback=True),
    "localhost": Bad("https://localhost/a.png", loopback=True),
    "localhost-mixed-case": Bad("https://LocalHost:8080/a.png", loopback=True),
    "localhost-subdomain": Bad("https://api.localhost/a.png"),
    # link-local
    "link-local-v4": Bad("https://169.254.1.1/a.png"),
    "link-local-v6": Bad("https://[fe80::1]/a.png"),
    "link-local-v6-zone": Bad("https://[fe80::1%25eth0]/a.png"),
    # cloud metadata
    "metadata-aws": Bad("https://169.254.169.254/latest/meta-data/iam/security-credentials/"),
    "metadata-ecs": Bad("https://169.254.170.2/v2/credentials"),
    "metadata-gcp": Bad("https://metadata.google.internal/computeMetadata/v1/"),
    "metadata-aws-name": Bad("https://metadata.aws.com/latest/"),
    "metadata-bare": Bad("https://metadata/computeMetadata/v1/"),
    "metadata-instance-data": Bad("https://instance-data/latest/"),
    "internal-suffix": Bad("https://db.internal/a.png"),
    # decimal, octal, hex and short IPv4 spellings
    "decimal-loopback": Bad("https://2130706433/a.png", loopback=True),
    "octal-loopback": Bad("https://0177.0.0.1/a.png", loopback=True),
    "hex-loopback": Bad("https://0x7f000001/a.png", loopback=True),
    "hex-dotted-loopback": Bad("https://0x7f.0x0.0x0.0x1/a.png", loopback=True),
    "short-loopback": Bad("https://127.1/a.png", loopback=True),
    "decimal-metadata": Bad("https://2852039166/latest/meta-data/"),
    "hex-metadata": Bad("https://0xa9fea9fe/latest/meta-data/"),
    "octal-metadata": Bad("https://0251.0376.0251.0376/latest/meta-data/"),
    "short-metadata": Bad("https://169.254.43518/latest/meta-data/"),
    "decimal-private": Bad("https://3232235777/a.png"),
    "octal-private-10": Bad("https://012.0.0.1/a.png"),
    "zero": Bad("https://0/a.png"),
    # IPv6 forms that reach an IPv4 address
    "v4-mapped-loopback": Bad("https://[::ffff:127.0.0.1]/a.png"),
    "v4-mapped-hex-loopback": Bad("https://[::ffff:7f00:1]/a.png"),
    "v4-mapped-metadata": Bad("https://[::ffff:169.254.169.254]/latest/"),
    "v4-mapped-private": Bad("https://[::ffff:10.0.0.1]/a.png"),
    "v4-compatible-loopback": Bad("https://[::127.0.0.1]/a.png"),
    "nat64-metadata": Bad("https://[64:ff9b::a9fe:a9fe]/latest/"),
    "6to4-private": Bad("https://[2002:c0a8:101::1]/a.png"),
    # userinfo tricks
    "userinfo": Bad("https://user:pass@example.com/a.png"),
    "userinfo-public-at-loopback": Bad("https://example.com@127.0.0.1/a.png"),
    "userinfo-loopback-looks-like-port": Bad("https://127.0.0.1:443@example.com/a.png"),
    "userinfo-empty-at-metadata": Bad("https://@169.254.169.254/latest/"),
    "userinfo-backslash": Bad("https://example.com\\@169.254.169.254/latest/"),
    "userinfo-percent-encoded-at": Bad("https://example.com%40169.254.169.254/latest/"),
    # trailing dots
    "trailing-dot-loopback-ip": Bad("https://127.0.0.1./a.png", loopback=True),
    "trailing-dot-localhost": Bad("https://localhost./a.png", loopback=True),
    "trailing-dot-metadata": Bad("https://metadata.google.internal./computeMetadata/v1/"),
    "trailing-dot-metadata-ip": Bad("https://169.254.169.254./latest/"),
    "two-trailing-dots-private": Bad("https://10.0.0.1../a.png"),
    # encodings of the host
    "percent-encoded-loopback": Bad("https://%31%32%37.0.0.1/a.png", loopback=True, uri=False),
    "fullwidth-loopback": Bad("https://\uff11\uff12\uff17\u3002\uff10\u3002\uff10\u3002\uff11/a.png", True, False),
    "zero-width-space": Bad("https://169.254.169.254\u200b/latest/"),
    # schemes and shapes
    "scheme-http": Bad("http://example.com/a.png"),
    "scheme-file": Bad("file:///etc/passwd"),
    "scheme-gopher": Bad("gopher://127.0.0.1:6379/_FLUSHALL"),
    "scheme-data": Bad("data:image/png;base64,iVBORw0KGgo="),
    "scheme-ftp": Bad("ftp://example.com/a.png"),
    "protocol-relative": Bad("//169.254.169.254/latest/"),
    "over-long": Bad("https://example.com/" + "a" * 2029),
}

IDN = "https://bücher.de/bild.png"  # fetched fields take it; an endpoint URL must spell it in punycode (above)
PUBLIC = [
    "https://example.com/a.png",
    "https://example.com./a.png",
    "https://cdn.example.com:8443/i.jpg?token=eyJhbGciOiJIUzI1NiJ9.e30.c2ln#frag",
    "https://bucket.s3.amazonaws.com/a/b.png?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=0f1e2d",
    "https://8.8.8.8/x.png",
    "https://[2606:4700:4700::1111]/x.png",
    "https://xn--bcher-kva.de/bild.png",
    "https://metadata.example.com/a.png",
    "https://my-localhost.com/a.png",
]


class Field(NamedTuple):
    """A URL field of one route: where to post, the ``param`` that names it, the body around a URL."""

    path: str
    param: str
    body: Callable[[str], dict[str, Any]]


GENERATION_FIELDS: dict[str, Field] = {
    "image-reference": Field(
        "/v1/images", "reference_image_urls[0]", lambda u: {"prompt": "x", "reference_image_urls": [u]}
    ),
    "image-second-reference": Field(
        "/v1/images", "reference_image_urls[1]", lambda u: {"prompt": "x", "reference_image_urls": [OK, u]}
    ),
    "image-estimate-reference": Field(
        "/v1/images/estimate", "reference_image_urls[2]", lambda u: {"prompt": "x", "reference_image_urls": [OK, OK, u]}
    ),
    "video-first-frame": Field("/v1/videos", "first_frame_url", lambda u: {**VIDEO, "first_frame_url": u}),
    "video-last-frame": Field(
        "/v1/videos", "last_frame_url", lambda u: {**VIDEO, "first_frame_url": OK, "last_frame_url": u}
    ),
    "video-estimate-first-frame": Field(
        "/v1/videos/estimate", "first_frame_url", lambda u: {**VIDEO, "first_frame_url": u}
    ),
}
WEBHOOK_FIELDS: dict[str, Field] = {
    "image-webhook-url": Field("/v1/images", "webhook_url", lambda u: {"prompt": "x", "webhook_url": u}),
    "video-webhook-url": Field("/v1/videos", "webhook_url", lambda u: {**VIDEO, "webhook_url": u}),
    "image-estimate-webhook-url": Field(
        "/v1/images/estimate", "webhook_url", lambda u: {"prompt": "x", "webhook_url": u}
    ),
    "endpoint-url": Field("/v1/webhook_endpoints", "url", lambda u: {"url": u, "events": ["*"]}),
}


def app_client(**overrides: Any) -> Iterator[TestClient]:
    settings = make_settings(rate_limits_enabled=False, **overrides)
    app = create_app(settings, clock=VirtualClock(START), store=InMemoryStore(), sender=RecordingSender())
    with TestClient(app, base_url=BASE_URL) as client:
        yield client


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    yield from app_client()


@pytest.fixture(scope="module")
def strict() -> Iterator[TestClient]:
    """Webhook targets held to the same rules as fetched URLs: no loopback receivers."""
    yield from app_client(webhook_allow_http_loopback=False)


@pytest.fixture
def headers() -> dict[str, str]:
    return {"X-Api-Key": new_api_key()}


def state(client: TestClient, headers: dict[str, str]) -> Any:
    """What a refused request must leave alone: the balance, the generations, the endpoints."""
    return (
        client.get("/v1/balance", headers=headers).json(),
        client.get("/v1/images", headers=headers).json()["data"],
        client.get("/v1/webhook_endpoints", headers=headers).json()["data"],
    )


def post(client: TestClient, headers: dict[str, str], field: Field, url: str) -> Any:
    return client.post(field.path, json=field.body(url), headers=headers)


def assert_refused(client: TestClient, headers: dict[str, str], field: Field, url: str) -> None:
    code = "value_out_of_range" if len(url) > 2048 else "invalid_format"
    assert_envelope(post(client, headers, field, url), 400, code, field.param)


def test_corpus_covers_every_category_with_at_least_40_urls() -> None:
    assert len(CORPUS) >= 40
    prefixes = {name.split("-")[0] for name in CORPUS}
    assert {
        "private",
        "loopback",
        "link",
        "metadata",
        "decimal",
        "octal",
        "hex",
        "v4",
        "userinfo",
        "trailing",
    } <= prefixes
    assert "over-long" in CORPUS


@pytest.mark.parametrize("field", list(GENERATION_FIELDS))
def test_every_corpus_url_is_refused_in_every_fetched_field(client, headers, field):
    before = state(client, headers)
    for name, bad in CORPUS.items():
        try:
            assert_refused(client, headers, GENERATION_FIELDS[field], bad.url)
        except AssertionError as failure:
            raise AssertionError(f"{name}: {bad.url!r}: {failure}") from None
    assert state(client, headers) == before


@pytest.mark.parametrize("field", list(WEBHOOK_FIELDS))
def test_every_corpus_url_is_refused_as_a_webhook_target_without_loopback_receivers(strict, headers, field):
    before = state(strict, headers)
    for name, bad in CORPUS.items():
        try:
            assert_refused(strict, headers, WEBHOOK_FIELDS[field], bad.url)
        except AssertionError as failure:
            raise AssertionError(f"{name}: {bad.url!r}: {failure}") from None
    assert state(strict, headers) == before


@pytest.mark.parametrize("field", list(WEBHOOK_FIELDS))
def test_webhook_targets_admit_only_the_loopback_corpus_urls_by_default(client, headers, field):
    for name, bad in CORPUS.items():
        if bad.loopback and (bad.uri or field != "endpoint-url"):
            response = post(client, headers, WEBHOOK_FIELDS[field], bad.url)
            assert response.status_code in (200, 201), (name, response.text)
        else:
            assert_refused(client, headers, WEBHOOK_FIELDS[field], bad.url)


@pytest.mark.parametrize("url", PUBLIC)
def test_public_https_urls_are_accepted_in_every_field(client, headers, url):
    for field in [*GENERATION_FIELDS.values(), *WEBHOOK_FIELDS.values()]:
        response = post(client, headers, field, url)
        assert response.status_code in (200, 201), (field.path, response.text)


def test_idn_hosts_are_fetched_but_endpoint_urls_must_spell_them_in_punycode(client, headers):
    for field in [*GENERATION_FIELDS.values(), *list(WEBHOOK_FIELDS.values())[:-1]]:
        assert post(client, headers, field, IDN).status_code in (200, 201), field.path
    assert_refused(client, headers, WEBHOOK_FIELDS["endpoint-url"], IDN)
