"""Webhook signatures (reference §5.4): ``sign``, ``verify_signature`` and ``parse_event`` of ``contracts``."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

import contracts
from contracts.signature import (
    DEFAULT_TOLERANCE,
    HEADER,
    NO_SECRET,
    NOT_AN_OBJECT,
    MalformedSignatureError,
    MissingSignatureError,
    SignatureMismatchError,
    SignatureVerificationError,
    TimestampOutsideToleranceError,
    parse_event,
    sign,
    verify_signature,
)

SECRET = "whsec_8jKpQ4nXabc1234abcdef567890"
OTHER_SECRET = "whsec_rotatedSecret0000000000000"
NOW = 1_780_315_205  # 2026-06-01T12:00:05Z
BODY = b'{"id":"evt_01","object":"event","event":"image.completed","data":{"id":"img_01","status":"succeeded"}}'


def _hex(payload: bytes, secret: str, timestamp: int) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()


def test_sign_matches_reference_recipe():
    assert sign(BODY, SECRET, NOW) == f"t={NOW},v1={_hex(BODY, SECRET, NOW)}"
    assert HEADER == "Aurous-Webhook-Signature"
    assert DEFAULT_TOLERANCE == 300


def test_verify_signature_round_trip_returns_timestamp():
    assert verify_signature(BODY, sign(BODY, SECRET, NOW), SECRET, now=NOW) == NOW


def test_verify_signature_accepts_str_and_bytes_alike():
    text = BODY.decode() + " é"
    header = sign(text, SECRET, NOW)
    assert header == sign(text.encode("utf-8"), SECRET, NOW)
    assert verify_signature(text, header, SECRET, now=NOW) == NOW
    assert verify_signature(text.encode("utf-8"), header, SECRET, now=NOW) == NOW


def test_verify_signature_tampered_body_is_mismatch():
    header = sign(BODY, SECRET, NOW)
    with pytest.raises(SignatureMismatchError) as caught:
        verify_signature(BODY.replace(b"succeeded", b"failed"), header, SECRET, now=NOW)
    assert str(caught.value) == SignatureMismatchError.message


def test_verify_signature_wrong_secret_is_mismatch():
    with pytest.raises(SignatureMismatchError):
        verify_signature(BODY, sign(BODY, OTHER_SECRET, NOW), SECRET, now=NOW)


def test_verify_signature_missing_header():
    with pytest.raises(MissingSignatureError) as caught:
        verify_signature(BODY, None, SECRET, now=NOW)
    assert str(caught.value) == MissingSignatureError.message == "missing Aurous-Webhook-Signature header"


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("", MalformedSignatureError.EMPTY),
        ("   ", MalformedSignatureError.EMPTY),
        ("t=abc,v1=00", MalformedSignatureError.BAD_TIMESTAMP),
        ("t=-5,v1=00", MalformedSignatureError.BAD_TIMESTAMP),
        ("t=1.5,v1=00", MalformedSignatureError.BAD_TIMESTAMP),
        ("t=,v1=00", MalformedSignatureError.BAD_TIMESTAMP),
        (f"t={NOW}", MalformedSignatureError.NO_SIGNATURE),
        (f"t={NOW},v0=00", MalformedSignatureError.NO_SIGNATURE),
        ("v1=00", MalformedSignatureError.NO_TIMESTAMP),
        (f"t={NOW},t={NOW},v1=00", MalformedSignatureError.TWO_TIMESTAMPS),
        (f"t={NOW},garbage", MalformedSignatureError.BAD_ENTRY),
        ("sha256=abc", MalformedSignatureError.NO_TIMESTAMP),
    ],
)
def test_verify_signature_malformed_header(header: str, reason: str):
    with pytest.raises(MalformedSignatureError) as caught:
        verify_signature(BODY, header, SECRET, now=NOW)
    assert caught.value.reason == reason
    assert str(caught.value) == MalformedSignatureError.message.format(reason=reason)


def test_verify_signature_tolerates_spaces_and_empty_entries():
    header = sign(BODY, SECRET, NOW).replace(",", " , ,") + ","
    assert verify_signature(BODY, header, SECRET, now=NOW) == NOW


def test_verify_signature_accepts_uppercase_hex():
    t, v1 = sign(BODY, SECRET, NOW).split(",")
    assert verify_signature(BODY, f"{t},{v1.upper().replace('V1=', 'v1=')}", SECRET, now=NOW) == NOW


@pytest.mark.parametrize("age", [0, 300, -300, 299])
def test_verify_signature_within_tolerance(age: int):
    assert verify_signature(BODY, sign(BODY, SECRET, NOW - age), SECRET, now=NOW) == NOW - age


def test_verify_signature_too_old_is_outside_tolerance():
    with pytest.raises(TimestampOutsideToleranceError) as caught:
        verify_signature(BODY, sign(BODY, SECRET, NOW - 301), SECRET, now=NOW)
    assert (caught.value.timestamp, caught.value.tolerance) == (NOW - 301, 300)
    assert str(caught.value) == TimestampOutsideToleranceError.message.format(
        timestamp=NOW - 301, age=301, direction="old", tolerance=300
    )


def test_verify_signature_too_far_in_future_is_outside_tolerance():
    with pytest.raises(TimestampOutsideToleranceError) as caught:
        verify_signature(BODY, sign(BODY, SECRET, NOW + 3600), SECRET, 60, now=NOW)
    assert "3600 s in the future" in str(caught.value)
    assert "tolerance of 60 s" in str(caught.value)


def test_verify_signature_tolerance_none_accepts_any_age():
    assert verify_signature(BODY, sign(BODY, SECRET, 1), SECRET, None, now=NOW) == 1
    assert verify_signature(BODY, sign(BODY, SECRET, NOW * 2), SECRET, tolerance=None) == NOW * 2


def test_verify_signature_default_now_is_system_time():
    with pytest.raises(TimestampOutsideToleranceError):
        verify_signature(BODY, sign(BODY, SECRET, 1), SECRET)


def test_verify_signature_checks_signature_before_age():
    # An old delivery with a bad signature is a forgery, not a replay.
    with pytest.raises(SignatureMismatchError):
        verify_signature(BODY, sign(BODY, OTHER_SECRET, 1), SECRET, now=NOW)


def test_verify_signature_any_v1_entry_matches_during_rotation():
    old, new = sign(BODY, OTHER_SECRET, NOW), sign(BODY, SECRET, NOW)
    both = f"{old},{new.split(',')[1]}"
    assert verify_signature(BODY, both, SECRET, now=NOW) == NOW
    assert verify_signature(BODY, both, OTHER_SECRET, now=NOW) == NOW
    with pytest.raises(SignatureMismatchError):
        verify_signature(BODY, both, "whsec_neither", now=NOW)


def test_verify_signature_ignores_unknown_schemes():
    header = sign(BODY, SECRET, NOW)
    with_v0 = header.replace(",", ",v0=deadbeef,v2=cafe,")
    assert verify_signature(BODY, with_v0, SECRET, now=NOW) == NOW
    # A valid HMAC under an unknown scheme does not count.
    only_v0 = header.replace("v1=", "v0=") + ",v1=00"
    with pytest.raises(SignatureMismatchError):
        verify_signature(BODY, only_v0, SECRET, now=NOW)


def test_verify_signature_non_ascii_candidate_is_mismatch_not_crash():
    with pytest.raises(SignatureMismatchError):
        verify_signature(BODY, f"t={NOW},v1=é✓", SECRET, now=NOW)


def test_empty_secret_is_a_configuration_error():
    with pytest.raises(ValueError, match=NO_SECRET) as caught:
        verify_signature(BODY, sign(BODY, SECRET, NOW), "", now=NOW)
    assert not isinstance(caught.value, SignatureVerificationError)
    with pytest.raises(ValueError, match=NO_SECRET):
        sign(BODY, "", NOW)


def test_sign_rejects_negative_timestamp():
    with pytest.raises(ValueError, match="non-negative"):
        sign(BODY, SECRET, -1)


def test_signature_errors_are_value_errors():
    for error in (MissingSignatureError, MalformedSignatureError, SignatureMismatchError):
        assert issubclass(error, SignatureVerificationError)
    assert issubclass(TimestampOutsideToleranceError, SignatureVerificationError)
    assert issubclass(SignatureVerificationError, ValueError)


def test_parse_event_returns_verified_json():
    event = parse_event(BODY, sign(BODY, SECRET, NOW), SECRET, now=NOW)
    assert event == json.loads(BODY)
    assert event["event"] == "image.completed"


def test_parse_event_rejects_bad_signature_before_parsing():
    with pytest.raises(SignatureMismatchError):
        parse_event(b"not json", sign(b"other", SECRET, NOW), SECRET, now=NOW)


def test_parse_event_rejects_non_json_and_non_object():
    with pytest.raises(json.JSONDecodeError):
        parse_event(b"not json", sign(b"not json", SECRET, NOW), SECRET, now=NOW)
    with pytest.raises(ValueError, match=NOT_AN_OBJECT):
        parse_event(b"[1, 2]", sign(b"[1, 2]", SECRET, NOW), SECRET, now=NOW)


def test_parse_event_applies_tolerance():
    with pytest.raises(TimestampOutsideToleranceError):
        parse_event(BODY, sign(BODY, SECRET, NOW - 10), SECRET, 5, now=NOW)
    assert parse_event(BODY, sign(BODY, SECRET, NOW - 10), SECRET, None, now=NOW)["id"] == "evt_01"


def test_contracts_exports_signature_helpers():
    for name in ("verify_signature", "parse_event", "sign", "SignatureVerificationError", "Listener", "Received"):
        assert name in contracts.__all__
    for name in contracts.__all__:
        assert hasattr(contracts, name), name


secrets_st = st.text(min_size=1, max_size=64)
timestamps_st = st.integers(min_value=0, max_value=2**40)


@given(payload=st.binary(max_size=512), secret=secrets_st, timestamp=timestamps_st)
def test_verify_signature_accepts_what_sign_produced(payload: bytes, secret: str, timestamp: int):
    assert verify_signature(payload, sign(payload, secret, timestamp), secret, now=timestamp) == timestamp


@given(
    payload=st.binary(min_size=1, max_size=256),
    secret=secrets_st,
    timestamp=timestamps_st,
    data=st.data(),
)
def test_verify_signature_rejects_any_single_byte_change(payload: bytes, secret: str, timestamp: int, data):
    header = sign(payload, secret, timestamp)
    index = data.draw(st.integers(min_value=0, max_value=len(payload) - 1), label="index")
    replacement = data.draw(st.integers(min_value=0, max_value=255).filter(lambda b: b != payload[index]))
    changed = payload[:index] + bytes([replacement]) + payload[index + 1 :]
    with pytest.raises(SignatureMismatchError):
        verify_signature(changed, header, secret, now=timestamp)


@given(
    payload=st.binary(max_size=128),
    secret=st.text(min_size=1, max_size=64).map(lambda text: f"whsec_{text}"),
    header=st.one_of(st.none(), st.text(max_size=80)),
    age=st.integers(min_value=-(10**6), max_value=10**6),
)
def test_signature_errors_never_contain_the_secret(payload: bytes, secret: str, header: str | None, age: int):
    signed = sign(payload, secret, NOW + age)
    for candidate in (header, signed, signed.replace("v1=", "v1=0"), sign(payload, secret + "x", NOW)):
        assert secret not in _error_text(payload, candidate, secret)


def _error_text(payload: bytes, header: str | None, secret: str) -> str:
    try:
        verify_signature(payload, header, secret, tolerance=300, now=NOW)
    except SignatureVerificationError as exc:
        return f"{exc} {exc!r}"
    return ""
