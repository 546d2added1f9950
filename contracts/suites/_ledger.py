"""A generation's own credit-ledger rows (reference §2.8): what a suite judges its holds and charges by in a busy team.

On the live API other services of the team create, finish and cancel generations while the kit runs, so the team's
totals (``GET /v1/balance``) say nothing about one generation; its own rows in ``GET /v1/usage/events`` (the credit
ledger, newest first) do.
"""

from __future__ import annotations

from typing import Any

from contracts.exchanges import parsed
from contracts.session import Session

__all__ = ["LEDGER_PAGES", "ledger_rows", "ledger_sums"]

LEDGER_PAGES = 20  # pages of 100 rows read to find one generation's rows (its hold is its oldest)


def ledger_rows(session: Session, generation_id: str) -> list[dict[str, Any]]:
    """The rows of one generation; unrecorded reads (only a busy team needs them), bounded, ``[]`` when unreadable."""
    rows: list[dict[str, Any]] = []
    cursor = None
    for _ in range(LEDGER_PAGES):
        path = "/v1/usage/events?limit=100" + (f"&starting_after={cursor}" if cursor else "")
        try:
            page = parsed(session.client.get(path, headers=session.headers()))
        except Exception:  # an unreadable ledger only means the property cannot be judged this way
            return rows
        data = page.get("data") if isinstance(page, dict) else None
        if not isinstance(data, list):
            return rows
        mine = [row for row in data if isinstance(row, dict) and row.get("generation_id") == generation_id]
        rows += mine
        cursor = page.get("next_cursor")
        if any(row.get("type") == "hold" for row in mine) or not page.get("has_more") or not cursor:
            return rows
    return rows


def ledger_sums(rows: list[dict[str, Any]]) -> dict[str, float]:
    """The amounts of each row type (``hold``, ``release``, ``charge``, ``refund``) and how many holds there were."""
    sums = dict.fromkeys(("hold", "release", "charge", "refund", "holds"), 0.0)
    for row in rows:
        kind, amount = row.get("type"), row.get("amount")
        if kind in sums and isinstance(amount, int | float):
            sums[str(kind)] += abs(float(amount))
            sums["holds"] += kind == "hold"
    return sums
