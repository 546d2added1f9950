"""Tests for the SSRF guard on server-side URL fetches (mockserver.core.ssrf)."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable

import pytest
from _pytest.mark import ParameterSet
from hypothesis import given, settings
from hypothesis import strategies as st

from mockserver.core import ssrf
from mockserver.core.errors import InvalidFormatError
from mockserver.core.ssrf import (
    MAX_URL_LENGTH,
    MSG_BACKSLASH,
    MSG_BAD_HOST,
    MSG_BAD_PORT,
    MSG_BLOCKED_NAME,
    MSG_CONTROL_CHARACTERS,
    MSG_CREDENTIALS,
    MSG_NO_HOST,
    MSG_NOT_A_STRING,
    MSG_RESOLVES_TO_BLOCKED,
    MSG_SCHEME,
    MSG_SCHEME_HTTP_LOOPBACK,
    MSG_TOO_LONG,
    MSG_UNPARSEABLE,
    MSG_UNRESOLVABLE,
    MSG_ZONE_ID,
    check_url,
    default_resolver,
    is_blocked_address,
)

PARAM = "reference_image_urls[1]"
# Hypothesis must not write a database into the project tree; no deadline keeps CI runs stable.
HYPOTHESIS = settings(database=None, deadline=None, max_examples=150)


def v4(host: str) -> str:
    return ssrf.MSG_BLOCKED_IPV4.format(host=host)


def v6(host: str) -> str:
    return ssrf.MSG_BLOCKED_IPV6.format(host=host)


def name(host: str) -> str:
    return MSG_BLOCKED_NAME.format(host=host)


def reject(url: object, message: str, id: str) -> ParameterSet:
    return pytest.param(url, message, id=id)


def assert_rejected(url: object, message: str | None = None, **kwargs: object) -> InvalidFormatError:
    with pytest.raises(InvalidFormatError) as info:
        check_url(url, param=PARAM, **kwargs)  # type: ignore[arg-type]
    error = info.value
    assert (error.code, error.type, error.status, error.param) == ("invalid_format", "invalid_request", 400, PARAM)
    if message is not None:
        assert error.detail == message
    return error


REJECTED = [
    # --- schemes -------------------------------------------------------------------------------
    reject("http://example.com/a.png", MSG_SCHEME, "scheme-http"),
    reject("http://2130706433/", MSG_SCHEME, "scheme-http-decimal-ip"),
    reject("data:image/png;base64,iVBORw0KGgo=", MSG_SCHEME, "scheme-data"),
    reject("ftp://example.com/a.png", MSG_SCHEME, "scheme-ftp"),
    reject("file:///etc/passwd", MSG_SCHEME, "scheme-file"),
    reject("gopher://127.0.0.1:70/_GET", MSG_SCHEME, "scheme-gopher"),
    reject("javascript:alert(1)", MSG_SCHEME, "scheme-javascript"),
    reject("wss://example.com/", MSG_SCHEME, "scheme-wss"),
    reject("example.com/image.png", MSG_SCHEME, "scheme-missing"),
    reject("example.com:443/image.png", MSG_SCHEME, "scheme-missing-host-with-port"),
    reject("//example.com/image.png", MSG_SCHEME, "scheme-protocol-relative"),
    reject("localhost", MSG_SCHEME, "scheme-bare-hostname"),
    reject("", MSG_SCHEME, "empty-string"),
    # --- empty / missing host -------------------------------------------------------------------
    reject("https:example.com/a.png", MSG_NO_HOST, "host-missing-slashes"),
    reject("https:/example.com/a.png", MSG_NO_HOST, "host-single-slash"),
    reject("https:///a.png", MSG_NO_HOST, "host-empty-triple-slash"),
    reject("https://", MSG_NO_HOST, "host-empty"),
    reject("https://:443/", MSG_NO_HOST, "host-empty-with-port"),
    reject("https://./", MSG_NO_HOST, "host-only-dot"),
    # --- length ---------------------------------------------------------------------------------
    reject("https://example.com/" + "a" * (MAX_URL_LENGTH - 19), MSG_TOO_LONG.format(limit=2048), "length-2049"),
    # --- credentials ----------------------------------------------------------------------------
    reject("https://user:pass@example.com/", MSG_CREDENTIALS, "userinfo-user-pass"),
    reject("https://user@example.com/", MSG_CREDENTIALS, "userinfo-user"),
    reject("https://good.com@127.0.0.1/", MSG_CREDENTIALS, "userinfo-good-at-loopback"),
    reject("https://@example.com/", MSG_CREDENTIALS, "userinfo-empty"),
    reject("https://127.0.0.1:443@example.com/", MSG_CREDENTIALS, "userinfo-looks-like-port"),
    # --- backslashes ----------------------------------------------------------------------------
    reject("https://evil.com\\@127.0.0.1/", MSG_BACKSLASH, "backslash-at-loopback"),
    reject("https://127.0.0.1\\.example.com/", MSG_BACKSLASH, "backslash-in-host"),
    # --- whitespace / control characters ---------------------------------------------------------
    reject("https://exa mple.com/", MSG_CONTROL_CHARACTERS, "space-in-host"),
    reject(" https://127.0.0.1/", MSG_CONTROL_CHARACTERS, "leading-space"),
    reject("https://127.0.0.1/\n", MSG_CONTROL_CHARACTERS, "trailing-newline"),
    reject("https://127.0.\t0.1/", MSG_CONTROL_CHARACTERS, "tab-in-host"),
    reject("https://example.com\x00.evil/", MSG_CONTROL_CHARACTERS, "nul-in-host"),
    reject("https://127.0.0.1\u200b/", MSG_CONTROL_CHARACTERS, "zero-width-space"),
    reject("https://exa\u3000mple.com/", MSG_CONTROL_CHARACTERS, "ideographic-space"),
    reject("https://exa%20mple.com/", MSG_CONTROL_CHARACTERS, "percent-encoded-space-in-host"),
    # --- loopback -------------------------------------------------------------------------------
    reject("https://127.0.0.1/", v4("127.0.0.1"), "loopback-v4"),
    reject("https://127.255.255.254:8443/x", v4("127.255.255.254"), "loopback-v4-top-of-range"),
    reject("https://[::1]/", v6("::1"), "loopback-v6"),
    reject("https://[0:0:0:0:0:0:0:1]:443/", v6("::1"), "loopback-v6-long-form"),
    reject("https://localhost/", name("localhost"), "loopback-name"),
    reject("https://LocalHost/", name("localhost"), "loopback-name-mixed-case"),
    reject("https://localhost./", name("localhost"), "loopback-name-trailing-dot"),
    reject("https://localhost../", name("localhost"), "loopback-name-two-trailing-dots"),
    reject("https://api.localhost/", name("api.localhost"), "loopback-subdomain"),
    reject("https://ip6-localhost/", name("ip6-localhost"), "loopback-etc-hosts-alias"),
    # --- private / CGNAT / unspecified ------------------------------------------------------------
    reject("https://10.0.0.1/", v4("10.0.0.1"), "private-10"),
    reject("https://172.16.0.1/", v4("172.16.0.1"), "private-172-16"),
    reject("https://172.31.255.255/", v4("172.31.255.255"), "private-172-31"),
    reject("https://192.168.1.1/", v4("192.168.1.1"), "private-192-168"),
    reject("https://100.64.0.1/", v4("100.64.0.1"), "cgnat"),
    reject("https://0.0.0.0/", v4("0.0.0.0"), "unspecified-v4"),
    reject("https://[::]/", v6("::"), "unspecified-v6"),
    reject("https://[fc00::1]/", v6("fc00::1"), "unique-local-fc"),
    reject("https://[fd12:3456::1]/", v6("fd12:3456::1"), "unique-local-fd"),
    reject("https://192.0.2.10/", v4("192.0.2.10"), "documentation-range"),
    # --- link-local and cloud metadata -----------------------------------------------------------
    reject("https://169.254.169.254/latest/meta-data/", v4("169.254.169.254"), "metadata-ip-aws"),
    reject("https://169.254.170.2/v2/credentials", v4("169.254.170.2"), "metadata-ip-ecs"),
    reject("https://[fe80::1]/", v6("fe80::1"), "link-local-v6"),
    reject("https://[fe80::1%25eth0]/", v6("fe80::1"), "link-local-v6-zone-id"),
    reject("https://[2606:4700:4700::1111%25eth0]/", MSG_ZONE_ID, "zone-id-on-public-v6"),
    reject("https://metadata.google.internal/computeMetadata/v1/", name("metadata.google.internal"), "metadata-gcp"),
    reject("https://METADATA.GOOGLE.INTERNAL./", name("metadata.google.internal"), "metadata-gcp-upper-dot"),
    reject("https://metadata.aws.com/", name("metadata.aws.com"), "metadata-aws-name"),
    reject("https://metadata/", name("metadata"), "metadata-bare"),
    reject("https://instance-data/latest/", name("instance-data"), "metadata-instance-data"),
    reject("https://db.internal/", name("db.internal"), "suffix-internal"),
    reject("https://printer.local/", name("printer.local"), "suffix-mdns-local"),
    # --- multicast / reserved --------------------------------------------------------------------
    reject("https://224.0.0.1/", v4("224.0.0.1"), "multicast-v4"),
    reject("https://239.255.255.250/", v4("239.255.255.250"), "multicast-v4-ssdp"),
    reject("https://240.0.0.1/", v4("240.0.0.1"), "reserved-240"),
    reject("https://255.255.255.255/", v4("255.255.255.255"), "broadcast"),
    reject("https://[ff02::1]/", v6("ff02::1"), "multicast-v6"),
    # --- numeric IPv4 spellings ------------------------------------------------------------------
    reject("https://2130706433/", v4("127.0.0.1"), "decimal-loopback"),
    reject("https://0177.0.0.1/", v4("127.0.0.1"), "octal-loopback"),
    reject("https://00000177.0.0.1/", v4("127.0.0.1"), "octal-many-zeros"),
    reject("https://0x7f.0.0.1/", v4("127.0.0.1"), "hex-dotted"),
    reject("https://0x7f000001/", v4("127.0.0.1"), "hex-integer"),
    reject("https://0X7F000001/", v4("127.0.0.1"), "hex-integer-upper"),
    reject("https://127.1/", v4("127.0.0.1"), "short-127-1"),
    reject("https://10.1/", v4("10.0.0.1"), "short-10-1"),
    reject("https://0x7f.1/", v4("127.0.0.1"), "mixed-hex-short"),
    reject("https://0177.0x0.1/", v4("127.0.0.1"), "mixed-octal-hex-short"),
    reject("https://127.0.0.1./", v4("127.0.0.1"), "trailing-dot-ip"),
    reject("https://3232235777/", v4("192.168.1.1"), "decimal-private"),
    reject("https://0xa9fea9fe/", v4("169.254.169.254"), "hex-metadata"),
    reject("https://0251.0376.0251.0376/", v4("169.254.169.254"), "octal-metadata"),
    reject("https://169.254.43518/", v4("169.254.169.254"), "short-metadata"),
    reject("https://0/", v4("0.0.0.0"), "decimal-zero"),
    # --- numeric-looking but not a valid address: unparseable, rejected ---------------------------
    reject("https://256.0.0.1/", MSG_BAD_HOST, "ip-octet-overflow"),
    reject("https://1.2.3.4.5/", MSG_BAD_HOST, "ip-five-parts"),
    reject("https://08.0.0.1/", MSG_BAD_HOST, "ip-invalid-octal"),
    reject("https://4294967296/", MSG_BAD_HOST, "ip-decimal-overflow"),
    reject("https://example.123/", MSG_BAD_HOST, "numeric-tld"),
    # --- IPv6 embedding a blocked IPv4 ----------------------------------------------------------
    reject("https://[::ffff:127.0.0.1]/", v6("::ffff:7f00:1"), "v4-mapped-dotted"),
    reject("https://[::ffff:7f00:1]/", v6("::ffff:7f00:1"), "v4-mapped-hex"),
    reject("https://[::FFFF:7F00:1]/", v6("::ffff:7f00:1"), "v4-mapped-upper"),
    reject("https://[0:0:0:0:0:ffff:127.0.0.1]/", v6("::ffff:7f00:1"), "v4-mapped-long"),
    reject("https://[::ffff:169.254.169.254]/", v6("::ffff:a9fe:a9fe"), "v4-mapped-metadata"),
    reject("https://[::127.0.0.1]/", v6("::7f00:1"), "v4-compatible-loopback"),
    reject("https://[::10.0.0.1]/", v6("::a00:1"), "v4-compatible-private"),
    reject("https://[64:ff9b::127.0.0.1]/", v6("64:ff9b::7f00:1"), "nat64-loopback"),
    reject("https://[64:ff9b::a9fe:a9fe]/", v6("64:ff9b::a9fe:a9fe"), "nat64-metadata"),
    reject("https://[2002:7f00:1::]/", v6("2002:7f00:1::"), "6to4-loopback"),
    reject("https://[2002:c0a8:101::1]/", v6("2002:c0a8:101::1"), "6to4-private"),
    # --- percent-encoding and Unicode host spellings ----------------------------------------------
    reject("https://%31%32%37.0.0.1/", v4("127.0.0.1"), "percent-encoded-ip"),
    reject("https://%6c%6f%63%61%6c%68%6f%73%74/", name("localhost"), "percent-encoded-localhost"),
    reject("https://127.0.0.1%2f.example.com/", MSG_BAD_HOST, "percent-encoded-slash"),
    reject("https://%ff/", MSG_BAD_HOST, "percent-encoded-invalid-utf8"),
    reject("https://\uff11\uff12\uff17\u3002\uff10\u3002\uff10\u3002\uff11/", v4("127.0.0.1"), "fullwidth-ip"),
    reject("https://\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54/", name("localhost"), "fullwidth-localhost"),
    reject("https://a\uff20127.0.0.1/", MSG_UNPARSEABLE, "fullwidth-at-sign"),
    # --- malformed authorities ------------------------------------------------------------------
    reject("https://[::1/", MSG_UNPARSEABLE, "bracket-unclosed"),
    reject("https://[127.0.0.1]/", MSG_UNPARSEABLE, "bracket-ipv4"),
    reject("https://[::1]x/", MSG_UNPARSEABLE, "bracket-trailing-garbage"),
    reject("https://[v1.fe]/", MSG_BAD_HOST, "bracket-ipvfuture"),
    reject("https://::1/", MSG_NO_HOST, "unbracketed-ipv6"),
    reject("https://example.com:99999/", MSG_BAD_PORT, "port-too-large"),
    reject("https://example.com:+443/", MSG_BAD_PORT, "port-signed"),
    reject("https://example.com:/", MSG_BAD_PORT, "port-empty"),
    reject("https://exa$mple.com/", MSG_BAD_HOST, "host-bad-character"),
    reject("https://a..example.com/", MSG_BAD_HOST, "host-empty-label"),
    reject("https://" + "a" * 64 + ".com/", MSG_BAD_HOST, "host-label-too-long"),
    # --- not a string ---------------------------------------------------------------------------
    reject(None, MSG_NOT_A_STRING, "non-string-none"),
    reject(42, MSG_NOT_A_STRING, "non-string-int"),
    reject(b"https://example.com/", MSG_NOT_A_STRING, "non-string-bytes"),
    reject(["https://example.com/"], MSG_NOT_A_STRING, "non-string-list"),
]

ACCEPTED = [
    pytest.param("https://example.com/image.png", id="plain"),
    pytest.param("https://example.com", id="no-path"),
    pytest.param("HTTPS://Example.COM/Image.PNG", id="uppercase-scheme-and-host"),
    pytest.param("https://example.com:8443/image.png", id="port"),
    pytest.param("https://example.com./image.png", id="fqdn-trailing-dot"),
    pytest.param(
        "https://bucket.s3.amazonaws.com/a/b.png?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=3600"
        "&X-Amz-Signature=0f1e2d3c4b5a69788796a5b4c3d2e1f0",
        id="s3-presigned",
    ),
    pytest.param(
        "https://storage.googleapis.com/b/o.png?GoogleAccessId=svc%40p.iam&Expires=1&Signature=ab%2Bc%3D",
        id="gcs-signed",
    ),
    pytest.param("https://cdn.example.com/i.jpg?token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln#frag", id="jwt-query"),
    pytest.param("https://example.com/a%20b/%E5%9B%BE.png", id="percent-encoded-path"),
    pytest.param("https://bücher.de/bild.png", id="idn-unicode"),
    pytest.param("https://xn--bcher-kva.de/bild.png", id="idn-punycode"),
    pytest.param("https://例え.jp/画像.png", id="idn-japanese"),
    pytest.param("https://img_cdn.example.com/x.png", id="underscore-label"),
    pytest.param("https://8.8.8.8/x.png", id="public-ipv4"),
    pytest.param("https://1.1.1.1:443/x.png", id="public-ipv4-port"),
    pytest.param("https://[2606:4700:4700::1111]/x.png", id="public-ipv6"),
    pytest.param("https://[2606:4700:4700::1111]:8443/x.png", id="public-ipv6-port"),
    pytest.param("https://[2002:808:808::1]/x.png", id="6to4-public"),
    pytest.param("https://my-localhost.com/", id="localhost-inside-label"),
    pytest.param("https://internal.example.com/", id="internal-as-subdomain"),
    pytest.param("https://metadata.example.com/", id="metadata-as-subdomain"),
    pytest.param("https://example.com/" + "a" * (MAX_URL_LENGTH - 20), id="length-exactly-2048"),
]


@pytest.mark.parametrize(("url", "message"), REJECTED)
def test_check_url_rejects_unsafe_url(url: object, message: str) -> None:
    assert_rejected(url, message)


def test_check_url_rejected_table_is_large_enough() -> None:
    assert len(REJECTED) >= 60
    assert len(ACCEPTED) >= 15


@pytest.mark.parametrize("url", ACCEPTED)
def test_check_url_accepts_public_https_url(url: str) -> None:
    assert check_url(url, param=PARAM) == url


def test_check_url_length_boundary_is_2048() -> None:
    longest = "https://example.com/" + "a" * (MAX_URL_LENGTH - 20)
    assert (MAX_URL_LENGTH, len(longest)) == (2048, 2048)
    assert check_url(longest, param=PARAM) == longest
    assert_rejected(longest + "a", MSG_TOO_LONG.format(limit=2048))


def test_check_url_passes_param_through_unchanged() -> None:
    error = assert_rejected("http://example.com/")
    assert error.param == PARAM
    with pytest.raises(InvalidFormatError) as info:
        check_url("http://example.com/", param="first_frame_url")
    assert info.value.param == "first_frame_url"


# --- allow_http_loopback ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("http://127.0.0.1:8123/hook", id="http-127"),
        pytest.param("http://localhost:9/x", id="http-localhost"),
        pytest.param("http://LOCALHOST./x", id="http-localhost-upper-dot"),
        pytest.param("http://127.0.0.2/x", id="http-127-range"),
        pytest.param("http://[::1]:8080/hook", id="http-v6-loopback"),
        pytest.param("https://127.0.0.1:8443/hook", id="https-127"),
    ],
)
def test_check_url_allow_http_loopback_accepts_loopback(url: str) -> None:
    assert check_url(url, param=PARAM, allow_http_loopback=True) == url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        reject("http://10.0.0.1/", MSG_SCHEME_HTTP_LOOPBACK, "http-private"),
        reject("http://169.254.169.254/", MSG_SCHEME_HTTP_LOOPBACK, "http-metadata"),
        reject("http://example.com/", MSG_SCHEME_HTTP_LOOPBACK, "http-public"),
        reject("http://api.localhost/", MSG_SCHEME_HTTP_LOOPBACK, "http-localhost-subdomain"),
        reject("https://10.0.0.1/", v4("10.0.0.1"), "https-private"),
        reject("ftp://127.0.0.1/", MSG_SCHEME, "ftp-loopback"),
        reject("http://user:pw@127.0.0.1/", MSG_CREDENTIALS, "credentials-loopback"),
        reject("http://[fe80::1%25lo]/", MSG_SCHEME_HTTP_LOOPBACK, "http-zone-id"),
    ],
)
def test_check_url_allow_http_loopback_still_rejects_everything_else(url: str, message: str) -> None:
    assert_rejected(url, message, allow_http_loopback=True)


# --- resolve=True ----------------------------------------------------------------------------------


def fake_resolver(table: dict[str, list[str]]) -> Callable[[str], list[str]]:
    def resolve(host: str) -> list[str]:
        if host not in table:
            raise OSError(f"no such host {host}")
        return table[host]

    return resolve


def test_check_url_resolve_rejects_name_resolving_to_private_address() -> None:
    resolver = fake_resolver({"images.example.com": ["10.0.0.5"]})
    message = MSG_RESOLVES_TO_BLOCKED.format(host="images.example.com", address="10.0.0.5")
    assert_rejected("https://images.example.com/a.png", message, resolve=True, resolver=resolver)


def test_check_url_resolve_accepts_name_resolving_to_public_address() -> None:
    resolver = fake_resolver({"example.com": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]})
    url = "https://example.com/a.png"
    assert check_url(url, param=PARAM, resolve=True, resolver=resolver) == url


def test_check_url_resolve_rejects_when_any_address_is_blocked() -> None:
    resolver = fake_resolver({"example.com": ["93.184.216.34", "fe80::1%eth0"]})
    assert_rejected("https://example.com/", resolve=True, resolver=resolver)


@pytest.mark.parametrize(
    "resolver",
    [
        pytest.param(fake_resolver({}), id="raises-oserror"),
        pytest.param(lambda host: [], id="empty-answer"),
        pytest.param(lambda host: 1 / 0, id="raises-anything"),
    ],
)
def test_check_url_resolve_rejects_on_resolution_failure(resolver: Callable[[str], list[str]]) -> None:
    assert_rejected(
        "https://example.com/", MSG_UNRESOLVABLE.format(host="example.com"), resolve=True, resolver=resolver
    )


def test_check_url_resolve_rejects_unparseable_answer() -> None:
    resolver = fake_resolver({"example.com": ["not-an-ip"]})
    assert_rejected("https://example.com/", resolve=True, resolver=resolver)


def test_check_url_resolve_passes_normalised_name_and_skips_literals() -> None:
    seen: list[str] = []

    def resolver(host: str) -> list[str]:
        seen.append(host)
        return ["93.184.216.34"]

    check_url("https://Bücher.DE./x", param=PARAM, resolve=True, resolver=resolver)
    check_url("https://8.8.8.8/x", param=PARAM, resolve=True, resolver=resolver)
    check_url("https://example.com/x", param=PARAM, resolver=resolver)  # resolve=False: never called
    assert seen == ["xn--bcher-kva.de"]


def test_default_resolver_returns_every_address(monkeypatch: pytest.MonkeyPatch) -> None:
    def getaddrinfo(host: str, port: object, **kwargs: object) -> list[tuple[object, ...]]:
        assert host == "example.com"
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 0)),
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("2606:2800:220:1::1", 0, 0, 0)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    assert default_resolver("example.com") == ["93.184.216.34", "2606:2800:220:1::1"]


# --- is_blocked_address ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "blocked"),
    [
        pytest.param("127.0.0.1", True, id="loopback"),
        pytest.param("100.100.100.200", True, id="cgnat-alibaba-metadata"),
        pytest.param("224.0.0.1", True, id="multicast-that-python-calls-global"),
        pytest.param("8.8.8.8", False, id="public-v4"),
        pytest.param("::ffff:10.0.0.1", True, id="mapped-private"),
        pytest.param("2002:0a00:0001::", True, id="6to4-private"),
        pytest.param("2002:0808:0808::", False, id="6to4-public"),
        pytest.param("64:ff9b:1::a00:1", True, id="local-nat64"),
        pytest.param("2606:4700:4700::1111", False, id="public-v6"),
    ],
)
def test_is_blocked_address_classifies(address: str, blocked: bool) -> None:
    assert is_blocked_address(ipaddress.ip_address(address)) is blocked


# --- properties ------------------------------------------------------------------------------------

BLOCKED_V4_NETWORKS = [
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "224.0.0.0/4",
    "240.0.0.0/4",
]


def spellings(ip: ipaddress.IPv4Address) -> list[str]:
    """Every way a resolver or URL parser lets one write ``ip`` as a host."""
    n = int(ip)
    octets = [int(o) for o in str(ip).split(".")]
    return [
        str(ip),
        f"{ip}.",
        str(n),
        f"0x{n:x}",
        f"0X{n:08X}",
        ".".join(f"0{o:o}" for o in octets),
        ".".join(f"0x{o:x}" for o in octets),
        f"{octets[0]}.{n & 0xFFFFFF}",
        f"{octets[0]}.{octets[1]}.{n & 0xFFFF}",
        "".join(f"%{b:02x}" for b in str(ip).encode()),
        f"[::ffff:{ip}]",
        f"[::ffff:{n >> 16:x}:{n & 0xFFFF:x}]",
        f"[0:0:0:0:0:ffff:{ip}]",
        f"[::{ip}]",
        f"[64:ff9b::{ip}]",
        f"[2002:{n >> 16:x}:{n & 0xFFFF:x}::1]",
    ]


@HYPOTHESIS
@given(st.one_of(*(st.ip_addresses(network=net) for net in BLOCKED_V4_NETWORKS)))
def test_check_url_rejects_every_spelling_of_blocked_ipv4(ip: ipaddress.IPv4Address) -> None:
    for host in spellings(ip):
        assert_rejected(f"https://{host}/x.png")


# Fragments that exercise the parser's interesting paths, glued together at random.
URL_TOKENS = [*"abcx019fF.:[]%@/\\?# \t", "%25", "0x", "::", "ffff", "\uff11", "\u3002", "\uff20", "localhost"]
URLISH = st.lists(st.sampled_from(URL_TOKENS), max_size=20).map("".join)


@HYPOTHESIS
@given(st.one_of(st.text(), URLISH, URLISH.map(lambda s: "https://" + s), st.text().map(lambda s: "https://" + s)))
def test_check_url_never_raises_anything_but_invalid_format(text: str) -> None:
    error: InvalidFormatError | None = None
    try:
        assert check_url(text, param=PARAM) == text
    except InvalidFormatError as caught:  # any other exception type fails the test
        error = caught
    assert error is None or (error.code, error.param) == ("invalid_format", PARAM)


@HYPOTHESIS
@given(st.ip_addresses(v=4).filter(lambda ip: ip.is_global and not ip.is_multicast))
def test_check_url_accepts_any_public_ipv4(ip: ipaddress.IPv4Address) -> None:
    # Python 3.11 calls multicast "global"; the guard rejects it on purpose, hence the filter.
    url = f"https://{ip}/x.png"
    assert check_url(url, param=PARAM) == url
