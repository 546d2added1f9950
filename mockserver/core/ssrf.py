"""SSRF guard for server-side URL fetches: scheme, length, credential, host-name and address rules (reference §6.1)."""

from __future__ import annotations

import ipaddress
import socket
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes, urlsplit

from mockserver.core.errors import InvalidFormatError

__all__ = [
    "MAX_URL_LENGTH",
    "check_url",
    "default_resolver",
    "is_blocked_address",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str], list[str]]

MAX_URL_LENGTH = 2048

# --- messages (templates; every rejection is InvalidFormatError / invalid_format / 400) ----------

MSG_NOT_A_STRING = "url must be a string"
MSG_TOO_LONG = "url exceeds {limit} characters"
MSG_CONTROL_CHARACTERS = "url must not contain whitespace or control characters"
MSG_BACKSLASH = "url must not contain backslashes"
MSG_UNPARSEABLE = "url could not be parsed"
MSG_SCHEME = "url must use https"
MSG_SCHEME_HTTP_LOOPBACK = "url must use https (http is allowed only for loopback hosts)"
MSG_NO_HOST = "url must have a host"
MSG_CREDENTIALS = "url must not contain credentials"
MSG_BAD_PORT = "url port must be a number between 1 and 65535"
MSG_BAD_HOST = "url host is not a valid host name or IP address"
MSG_ZONE_ID = "url host must not contain an IPv6 zone id"
MSG_BLOCKED_IPV4 = "url host {host} is a private / loopback / link-local IPv4 address"
MSG_BLOCKED_IPV6 = "url host {host} is a private / loopback / link-local IPv6 address"
MSG_BLOCKED_NAME = "url host {host} is an internal / metadata host name"
MSG_UNRESOLVABLE = "url host {host} could not be resolved"
MSG_RESOLVES_TO_BLOCKED = "url host {host} resolves to blocked address {address}"

# --- policy tables ---------------------------------------------------------------------------------

# Listed explicitly although most are covered by the `ipaddress` flags below: the stdlib's special
# registries shift between Python patch releases, and this list is the documented contract.
_BLOCKED_IPV4_NETWORKS = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "224.0.0.0/4",
        "240.0.0.0/4",
    )
)
_BLOCKED_IPV6_NETWORKS = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "::/128",  # unspecified
        "::1/128",  # loopback
        "::/96",  # deprecated IPv4-compatible addresses
        "64:ff9b:1::/48",  # local-use NAT64 (RFC 8215)
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # deprecated site-local
        "ff00::/8",  # multicast
    )
)
_IPV4_LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")
_IPV6_LOOPBACK = ipaddress.IPv6Address("::1")
# IPv6 ranges whose low 32 bits are an IPv4 address a gateway will forward to.
_EMBEDDING_IPV6_NETWORKS = tuple(ipaddress.IPv6Network(n) for n in ("64:ff9b::/96", "64:ff9b:1::/48", "::/96"))

_BLOCKED_NAMES = frozenset(
    {
        "localhost",
        "localhost.localdomain",
        "ip6-localhost",
        "ip6-loopback",
        "metadata",
        "metadata.google.internal",
        "metadata.aws.com",
        "instance-data",
    }
)
# `.local` is mDNS, `.internal` is where GCP/AWS put metadata and VPC names, `.localhost` is
# reserved for loopback by RFC 6761.
_BLOCKED_SUFFIXES = (".localhost", ".localdomain", ".internal", ".local")

_LOOPBACK_NAMES = frozenset({"localhost"})
_HOST_NAME_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.")
_DECIMAL_DIGITS = frozenset("0123456789")
_HEX_DIGITS = frozenset("0123456789abcdef")
_OCTAL_DIGITS = frozenset("01234567")
# Whitespace, controls, format characters (zero-width joiners, bidi marks) and lone surrogates:
# parsers disagree on whether they strip, keep or split on them, so they are never allowed.
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zs", "Zl", "Zp"})


@dataclass(frozen=True, slots=True)
class _Host:
    """A normalised host: exactly one of ``name`` / ``address`` is set."""

    name: str | None = None
    address: IPAddress | None = None
    zone_id: str | None = None


# --- public API ------------------------------------------------------------------------------------


def check_url(
    url: object,
    *,
    param: str,
    allow_http_loopback: bool = False,
    resolve: bool = False,
    resolver: Resolver | None = None,
) -> str:
    """Return ``url`` unchanged if the emulator may fetch it, else raise :class:`InvalidFormatError`.

    Only ``https://`` URLs of at most :data:`MAX_URL_LENGTH` characters, without credentials, whose
    host is neither a blocked host name nor (in any spelling) a blocked address are allowed.
    ``allow_http_loopback`` additionally admits ``http://`` and ``https://`` to loopback hosts only
    (127.0.0.0/8, ::1, ``localhost``), for webhook receivers in tests.

    DNS resolution is **off by default**: host names are then judged by name only, so tests stay
    hermetic and never touch the network. The real API re-resolves and pins the address at fetch
    time, which a validation-time lookup cannot emulate anyway (DNS rebinding). With
    ``resolve=True`` the host is resolved with ``resolver`` (default: :func:`default_resolver`) and
    rejected if the lookup fails or ANY resolved address is blocked.
    """
    text = _require_string(url, param)
    scheme, netloc = _split(text, param)
    host = _parse_netloc(netloc, param)
    if allow_http_loopback and _is_loopback(host):
        return text
    if scheme != "https":
        raise InvalidFormatError(MSG_SCHEME_HTTP_LOOPBACK if allow_http_loopback else MSG_SCHEME, param=param)
    _check_host(host, param)
    if resolve and host.name is not None:
        _check_resolved(host.name, resolver or default_resolver, param)
    return text


def is_blocked_address(ip: IPAddress) -> bool:
    """True if ``ip`` is not a public unicast address, including IPv6 forms that embed a blocked IPv4."""
    if isinstance(ip, ipaddress.IPv4Address):
        return _is_blocked_ipv4(ip)
    embedded = _embedded_ipv4(ip)
    if embedded is not None and _is_blocked_ipv4(embedded):
        return True
    return any(ip in net for net in _BLOCKED_IPV6_NETWORKS) or _has_special_flag(ip) or ip.is_site_local


def default_resolver(host: str) -> list[str]:
    """Resolve ``host`` to every address the system resolver knows (A and AAAA)."""
    infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


# --- string-level checks ---------------------------------------------------------------------------


def _require_string(url: object, param: str) -> str:
    if not isinstance(url, str):
        raise InvalidFormatError(MSG_NOT_A_STRING, param=param)
    if len(url) > MAX_URL_LENGTH:
        raise InvalidFormatError(MSG_TOO_LONG.format(limit=MAX_URL_LENGTH), param=param)
    if any(_is_forbidden_character(ch) for ch in url):
        raise InvalidFormatError(MSG_CONTROL_CHARACTERS, param=param)
    # WHATWG parsers treat `\` as `/` in http(s) URLs while urllib keeps it in the authority, so
    # `https://evil.com\@127.0.0.1` names a different host depending on who parses it.
    if "\\" in url:
        raise InvalidFormatError(MSG_BACKSLASH, param=param)
    return url


def _is_forbidden_character(ch: str) -> bool:
    return ch.isspace() or unicodedata.category(ch) in _FORBIDDEN_CATEGORIES


def _split(url: str, param: str) -> tuple[str, str]:
    """Return (lower-cased scheme, raw authority) after the scheme/credential rules."""
    try:
        parts = urlsplit(url)
    except ValueError:  # unbalanced brackets, NFKC-smuggled separators in the authority
        raise InvalidFormatError(MSG_UNPARSEABLE, param=param) from None
    if parts.scheme not in ("https", "http"):
        raise InvalidFormatError(MSG_SCHEME, param=param)
    # `https:example.com` and `https:/example.com` have no authority at all.
    if not url[len(parts.scheme) + 1 :].startswith("//") or not parts.netloc:
        raise InvalidFormatError(MSG_NO_HOST, param=param)
    if "@" in parts.netloc:
        raise InvalidFormatError(MSG_CREDENTIALS, param=param)
    return parts.scheme, parts.netloc


# --- authority parsing -----------------------------------------------------------------------------


def _parse_netloc(netloc: str, param: str) -> _Host:
    if netloc.startswith("["):
        raw_host, port = _split_bracketed(netloc, param)
        host = _parse_ipv6_literal(raw_host, param)
    else:
        raw_host, colon, raw_port = netloc.partition(":")
        port = raw_port if colon else None
        host = _parse_plain_host(raw_host, param)
    if port is not None:
        _check_port(port, param)
    return host


def _split_bracketed(netloc: str, param: str) -> tuple[str, str | None]:
    """Split `[v6]` / `[v6]:port` into the bracket content and the port (None when absent)."""
    inside, bracket, rest = netloc[1:].partition("]")
    if not bracket or (rest and not rest.startswith(":")):
        raise InvalidFormatError(MSG_UNPARSEABLE, param=param)
    return inside, (rest[1:] if rest else None)


def _check_port(port: str, param: str) -> None:
    # `int()` would accept "+80", "٣" or "8_0"; only plain ASCII digits are a port.
    if not (1 <= len(port) <= 5 and set(port) <= _DECIMAL_DIGITS and 1 <= int(port) <= 65535):
        raise InvalidFormatError(MSG_BAD_PORT, param=param)


def _parse_ipv6_literal(raw: str, param: str) -> _Host:
    # The zone id is percent-encoded in URLs (`%25eth0`, RFC 6874); anything after it is dropped
    # for the address check and the zone itself is rejected later (it only scopes local addresses).
    address_text, pct, zone = raw.partition("%")
    try:
        address = ipaddress.IPv6Address(address_text)
    except ValueError:
        raise InvalidFormatError(MSG_BAD_HOST, param=param) from None
    return _Host(address=address, zone_id=zone if pct else None)


def _parse_plain_host(raw: str, param: str) -> _Host:
    host = _normalise_host_name(raw, param)
    if _ends_in_number(host):
        # Resolvers (inet_aton) accept decimal, octal, hex and shortened IPv4 spellings; whatever
        # looks numeric is treated as an address, and if it does not parse it is rejected.
        address = _parse_inet_aton(host)
        if address is None:
            raise InvalidFormatError(MSG_BAD_HOST, param=param)
        return _Host(address=address)
    if any(not 1 <= len(label) <= 63 for label in host.split(".")) or len(host) > 253:
        raise InvalidFormatError(MSG_BAD_HOST, param=param)
    return _Host(name=host)


def _normalise_host_name(raw: str, param: str) -> str:
    """Percent-decode, IDNA-map (NFKC: fullwidth digits and dots), lower-case, strip trailing dots."""
    try:
        host = unquote_to_bytes(raw).decode("utf-8") if "%" in raw else raw
        if any(_is_forbidden_character(ch) for ch in host):
            raise InvalidFormatError(MSG_CONTROL_CHARACTERS, param=param)
        if not host.isascii():
            host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise InvalidFormatError(MSG_BAD_HOST, param=param) from None
    host = host.lower().rstrip(".")
    if not host:
        raise InvalidFormatError(MSG_NO_HOST, param=param)
    # Also catches `%`, `@`, `/`, `:` smuggled in through percent-encoding or NFKC mapping.
    if not set(host) <= _HOST_NAME_CHARACTERS:
        raise InvalidFormatError(MSG_BAD_HOST, param=param)
    return host


# --- inet_aton-style IPv4 parsing ------------------------------------------------------------------
# Hand-written on purpose: `ipaddress` rejects these spellings by design and `socket.inet_aton`
# differs between libcs. This follows the WHATWG "IPv4 parser", which matches glibc.


def _ends_in_number(host: str) -> bool:
    last = host.rsplit(".", 1)[-1]
    if last and set(last) <= _DECIMAL_DIGITS:
        return True
    return last.startswith("0x") and set(last[2:]) <= _HEX_DIGITS


def _parse_inet_aton(host: str) -> ipaddress.IPv4Address | None:
    parts = host.split(".")
    if len(parts) > 4:
        return None
    numbers = [_parse_ipv4_number(part) for part in parts]
    if any(n is None for n in numbers):
        return None
    values = [n for n in numbers if n is not None]
    *leading, last = values
    if any(n > 255 for n in leading) or last >= 256 ** (5 - len(values)):
        return None
    value = last
    for index, n in enumerate(leading):
        value += n << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _parse_ipv4_number(part: str) -> int | None:
    if part.startswith("0x"):
        digits, alphabet, base = part[2:], _HEX_DIGITS, 16
    elif len(part) > 1 and part.startswith("0"):
        digits, alphabet, base = part[1:], _OCTAL_DIGITS, 8
    else:
        digits, alphabet, base = part, _DECIMAL_DIGITS, 10
    if not set(digits) <= alphabet or (not digits and base != 16):
        return None
    return int(digits, base) if digits else 0  # bare "0x" is zero for WHATWG and glibc alike


# --- policy ----------------------------------------------------------------------------------------


def _is_loopback(host: _Host) -> bool:
    if host.name is not None:
        return host.name in _LOOPBACK_NAMES
    if host.zone_id is not None or host.address is None:
        return False
    if isinstance(host.address, ipaddress.IPv4Address):
        return host.address in _IPV4_LOOPBACK
    return host.address == _IPV6_LOOPBACK


def _check_host(host: _Host, param: str) -> None:
    if host.name is not None:
        if _is_blocked_name(host.name):
            raise InvalidFormatError(MSG_BLOCKED_NAME.format(host=host.name), param=param)
        return
    assert host.address is not None  # _Host invariant: a name or an address
    if is_blocked_address(host.address):
        raise InvalidFormatError(_blocked_address_message(host.address), param=param)
    if host.zone_id is not None:
        raise InvalidFormatError(MSG_ZONE_ID, param=param)


def _is_blocked_name(name: str) -> bool:
    return name in _BLOCKED_NAMES or name.endswith(_BLOCKED_SUFFIXES)


def _blocked_address_message(address: IPAddress) -> str:
    template = MSG_BLOCKED_IPV4 if isinstance(address, ipaddress.IPv4Address) else MSG_BLOCKED_IPV6
    return template.format(host=address.compressed)


def _check_resolved(name: str, resolver: Resolver, param: str) -> None:
    try:
        resolved = resolver(name)
    except Exception:  # any failure of an injected or system resolver means "cannot vouch for it"
        raise InvalidFormatError(MSG_UNRESOLVABLE.format(host=name), param=param) from None
    if not resolved:
        raise InvalidFormatError(MSG_UNRESOLVABLE.format(host=name), param=param)
    for text in resolved:
        address = _parse_resolved(text)
        if address is None or is_blocked_address(address):
            raise InvalidFormatError(MSG_RESOLVES_TO_BLOCKED.format(host=name, address=text), param=param)


def _parse_resolved(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(str(text).partition("%")[0])  # getaddrinfo appends zones to link-local
    except ValueError:
        return None


def _is_blocked_ipv4(ip: ipaddress.IPv4Address) -> bool:
    return any(ip in net for net in _BLOCKED_IPV4_NETWORKS) or _has_special_flag(ip)


def _has_special_flag(ip: IPAddress) -> bool:
    # `is_global` alone is not enough: Python 3.11 calls multicast (224.0.0.0/4) and the reserved
    # NAT64 / IPv4-compatible ranges "global".
    return (
        not ip.is_global
        or ip.is_private
        or ip.is_reserved
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_unspecified
    )


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address tunnels to (mapped, 6to4, NAT64, IPv4-compatible), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if any(ip in net for net in _EMBEDDING_IPV6_NETWORKS):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None
