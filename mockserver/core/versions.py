"""Aurous-Version: the published date pins and how a request's header resolves to one."""

from __future__ import annotations

import re
from datetime import date

from mockserver.core.errors import InvalidFormatError, UnknownVersionError

DEFAULT_VERSION = "2026-05-15"
PUBLISHED_VERSIONS: tuple[str, ...] = ("2026-05-15",)
_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}$")
HEADER = "Aurous-Version"


def resolve_version(requested: str | None, team_pin: str | None) -> str:
    """The version a request runs under.

    Absent → the team's pin (or the system default). "Send that date or any prior date": a date
    before the first published version resolves to it (inferred). A later date that is not
    published → ``unknown_version``; a value that is not a calendar date → ``invalid_format``.
    """
    if requested in PUBLISHED_VERSIONS:
        return requested  # what almost every request resolves to, without parsing it again
    if requested is None:
        return resolve_version(team_pin, None) if team_pin else DEFAULT_VERSION
    if not _PATTERN.match(requested):
        raise InvalidFormatError("Aurous-Version must be a date formatted YYYY-MM-DD.", param=HEADER)
    try:
        date.fromisoformat(requested)
    except ValueError:
        raise InvalidFormatError(f"Aurous-Version {requested} is not a calendar date.", param=HEADER) from None
    if requested in PUBLISHED_VERSIONS:
        return requested
    if requested < PUBLISHED_VERSIONS[0]:
        return PUBLISHED_VERSIONS[0]
    raise UnknownVersionError(param=HEADER, version=requested, published=", ".join(PUBLISHED_VERSIONS))


def echo_version(requested: str | None) -> str:
    """The version echoed when a request fails before its team is known (system default if unusable)."""
    try:
        return resolve_version(requested, None)
    except (InvalidFormatError, UnknownVersionError):
        return DEFAULT_VERSION
