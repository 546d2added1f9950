"""Credits: hold at create, commit on success, release otherwise, with one ledger row per movement.

``credits`` is the total, ``held`` the sum of open holds, ``available = credits - held`` is what a new
request is checked against (reference §2.8, the "D6 charge-on-success" model). ``exempt`` (and any
unknown billing mode) is never blocked and never moves credits.

Every movement re-reads the team inside its transaction (:func:`~mockserver.core.accounts.refreshed`) before it
checks or changes the balance, so concurrent requests, threads or worker processes never double-spend a credit
or lose a release: the check and the write are one atomic step on every store.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from mockserver.core.accounts import refreshed
from mockserver.core.errors import BalanceTooLowError, DomainError, ValueOutOfRangeError
from mockserver.core.models import Cost, LedgerEntry, Team
from mockserver.ids import IdSource
from mockserver.store import Store

KIND = "ledger"
BELOW_HELD = "credits cannot go below the {held} credits held by generations in flight."


class Holdable(Protocol):
    """What credits are held for: a generation, or a character synthesis run (its rows name the character)."""

    id: str
    cost: Cost
    hold_id: str | None


def _money(value: float) -> float:
    # Six places: chat and embedding charges are rounded to 6 decimals (LLM fact sheet §14.5); image and video
    # amounts have at most 4, so they are unchanged.
    return round(value, 6)


def _fmt(value: float) -> str:
    """``1.5`` stays ``1.5``, ``2`` becomes ``2.0`` (the documented message prints one decimal at least)."""
    return repr(float(value))


class Ledger:
    def __init__(self, store: Store, ids: IdSource) -> None:
        self.store = store
        self.ids = ids

    def _row(self, team: Team, kind: str, amount: float, now: datetime, gen: Holdable | None, note: str) -> None:
        entry = LedgerEntry(
            id=self.ids.new("uev", at=now, scope=team.id),
            type=kind,
            amount=amount,
            created_at=now,
            generation_id=gen.id if gen else None,
            hold_id=gen.hold_id if gen else None,
            description=note,
        )
        self.store.put(KIND, entry.id, entry, owner=team.id)

    def hold(self, team: Team, gen: Holdable, now: datetime, error: type[DomainError] = BalanceTooLowError) -> None:
        """Reserve ``gen.cost`` or raise ``error`` (402) when the available balance does not cover it."""
        amount = gen.cost.amount
        with self.store.transaction():
            refreshed(self.store, team)
            if not team.gated:
                return
            if team.available < amount:
                raise error(available=_fmt(team.available), required=_fmt(amount))
            gen.hold_id = self.ids.new("hold", at=now, scope=team.id)
            team.held = _money(team.held + amount)
            self.store.put("team", team.id, team, owner=team.id)
            self._row(team, "hold", amount, now, gen, f"Hold for {gen.id}")

    def commit(self, team: Team, gen: Holdable, now: datetime) -> None:
        if gen.hold_id is None:
            return
        amount = gen.cost.amount
        with self.store.transaction():
            refreshed(self.store, team)
            team.held = _money(team.held - amount)
            team.credits = _money(team.credits - amount)
            self.store.put("team", team.id, team, owner=team.id)
            self._row(team, "charge", amount, now, gen, f"Charge for {gen.id}")

    def release(self, team: Team, gen: Holdable, now: datetime) -> None:
        if gen.hold_id is None:
            return
        with self.store.transaction():
            refreshed(self.store, team)
            team.held = _money(team.held - gen.cost.amount)
            self.store.put("team", team.id, team, owner=team.id)
            self._row(team, "release", gen.cost.amount, now, gen, f"Release for {gen.id}")

    def settle(self, team: Team, gen: Holdable, charged: float, now: datetime) -> float:
        """Replace the hold by the actual charge (LLM surfaces): a ``charge`` row for what was used, a ``release``
        row for the rest of the hold. A charge above the hold stops at the team's credits (balance floor 0; the
        platform absorbs the rest, LLM fact sheet §8.3). Returns what was debited."""
        if gen.hold_id is None:
            return 0.0
        held = gen.cost.amount
        with self.store.transaction():
            refreshed(self.store, team)
            team.held = max(0.0, _money(team.held - held))
            debit = _money(max(0.0, min(charged, team.credits - team.held)))
            team.credits = _money(team.credits - debit)
            self.store.put("team", team.id, team, owner=team.id)
            if debit > 0:
                self._row(team, "charge", debit, now, gen, f"Charge for {gen.id}")
            if held - debit > 0:
                self._row(team, "release", _money(held - debit), now, gen, f"Release for {gen.id}")
        return debit

    def adjust(self, team: Team, credits: float, now: datetime) -> None:
        """Set the team's credits (the control plane), never below what is held; an ``adjustment`` row if they moved."""
        with self.store.transaction():
            refreshed(self.store, team)
            if credits < team.held:
                raise ValueOutOfRangeError(BELOW_HELD.format(held=_fmt(team.held)), param="credits")
            delta = _money(credits - team.credits)
            team.credits = _money(credits)
            self.store.put("team", team.id, team, owner=team.id)
            if delta:
                self._row(team, "adjustment", delta, now, None, f"Credits set to {_fmt(team.credits)} (aurous-mock)")

    def entries(self, team: Team) -> list[LedgerEntry]:
        return self.store.values(KIND, owner=team.id)
