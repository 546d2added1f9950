"""Cursor pagination shared by every list: newest first, ``starting_after`` / ``ending_before`` (reference §1.10)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from mockserver.core.errors import ParameterInvalidCombinationError, UnknownReferenceError


class HasId(Protocol):
    @property
    def id(self) -> str: ...


Row = TypeVar("Row", bound=HasId)


@dataclass(frozen=True, slots=True)
class Page(Generic[Row]):
    rows: list[Row]
    has_more: bool

    @property
    def next_cursor(self) -> str | None:
        """The id to pass as ``starting_after``; null when there is no more."""
        return self.rows[-1].id if self.has_more and self.rows else None


def paginate(
    newest_first: Sequence[Row], *, limit: int, starting_after: str | None = None, ending_before: str | None = None
) -> Page[Row]:
    """``starting_after`` pages towards older rows, ``ending_before`` towards newer ones; an unknown cursor is a 400."""
    if starting_after is not None and ending_before is not None:
        raise ParameterInvalidCombinationError(param="ending_before", first="starting_after", second="ending_before")
    rows = list(newest_first)
    if starting_after is not None:
        start = _position(rows, starting_after, "starting_after") + 1
        return Page(rows[start : start + limit], has_more=len(rows) > start + limit)
    if ending_before is not None:
        end = _position(rows, ending_before, "ending_before")
        start = max(0, end - limit)
        return Page(rows[start:end], has_more=start > 0)
    return Page(rows[:limit], has_more=len(rows) > limit)


def _position(rows: Sequence[HasId], cursor: str, param: str) -> int:
    for index, row in enumerate(rows):
        if row.id == cursor:
            return index
    raise UnknownReferenceError(param=param, id=cursor)
