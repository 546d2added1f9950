"""The contract-test kit: checks any Aurous API target (live, emulator, in-process) against openapi.yaml.

It speaks only HTTP and never imports ``mockserver``, so the same suites run against every target.
"""

from __future__ import annotations

from contracts.listen import Listener, Received
from contracts.signature import (
    MalformedSignatureError,
    MissingSignatureError,
    SignatureMismatchError,
    SignatureVerificationError,
    TimestampOutsideToleranceError,
    parse_event,
    sign,
    verify_signature,
)

__all__ = [
    # Webhook signatures (receivers and the kit)
    "verify_signature",
    "parse_event",
    "sign",
    "SignatureVerificationError",
    "MissingSignatureError",
    "MalformedSignatureError",
    "SignatureMismatchError",
    "TimestampOutsideToleranceError",
    # Webhook receiver (aurous-mock listen)
    "Listener",
    "Received",
]
