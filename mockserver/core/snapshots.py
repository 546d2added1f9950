"""Snapshots: a team's records (or the whole store) captured by deep copy and put back on demand.

Rolling back is its own verb, apart from forgetting data (reset) and forgetting history (the journal):
snapshots survive resets, and restoring one leaves the journal alone. A team's snapshot holds every record
the team owns (balance, keys, generations, files, ledger, webhooks, rate buckets, its clock); restoring it
replaces exactly those, so other teams never notice. The team's clock returns to the snapshot's instant and
runs on from there (or stays frozen, if it was). A global snapshot holds the whole store and the global time.
Snapshots are kept in the store itself, as :data:`~mockserver.store.SYSTEM` records (which no reset, snapshot or
restore touches), so every worker sharing a store sees them and a persistent store keeps them across restarts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from mockserver.clock import ShiftedClock, rfc3339
from mockserver.core.errors import InvalidRequestStateError, ResourceNotFoundError
from mockserver.core.models import Team
from mockserver.ids import IdSource
from mockserver.store import SYSTEM, Records, Store

SNAPSHOT_LIMIT = 100  # per team (and for the global ones): each holds a deep copy
TOO_MANY = f"At most {SNAPSHOT_LIMIT} snapshots are kept per team; delete one first."
META, RECORDS = "snapshot", "snapshot_records"  # the list reads only the small META records


@dataclass(slots=True)
class Snapshot:
    id: str
    team_id: str | None  # None: the whole store
    created_at: datetime  # the team's clock (the global clock for a global snapshot) when taken
    frozen: bool  # whether that clock was frozen
    records: Records  # empty in the stored description: the records are a record of their own
    count: int = 0  # how many records it holds

    def wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "mock.snapshot",
            "scope": "team" if self.team_id is not None else "global",
            "team_id": self.team_id,
            "created_at": rfc3339(self.created_at),
            "frozen": self.frozen,
            "records": self.count,
        }


class Snapshots:
    """Snapshots by id, each visible only to its team (global ones only to global requests). Kept in the store."""

    def __init__(self, store: Store, clock: ShiftedClock, ids: IdSource) -> None:
        self.store = store
        self.clock = clock
        self.ids = ids

    def take(self, team: Team | None) -> Snapshot:
        """Capture ``team``'s records (the whole store when ``team`` is None)."""
        owner = team.id if team is not None else None
        if len(self.list(owner)) >= SNAPSHOT_LIMIT:
            raise InvalidRequestStateError(TOO_MANY)
        with self.store.transaction():
            if team is None:
                now, frozen = self.clock.now(), self.clock.frozen
            else:
                current: Team = self.store.get("team", team.id) or team  # its clock as stored now
                now, frozen = current.time.now(self.clock), current.time.frozen_at is not None
            records = self.store.snapshot(owner=owner)
            snapshot = Snapshot(
                id=self.ids.new("snap", at=now, scope=f"snapshots:{owner or '*'}"),
                team_id=owner,
                created_at=now,
                frozen=frozen,
                records={},
                count=sum(len(rows) for rows in records.values()),
            )
            self.store.put(META, snapshot.id, snapshot, owner=SYSTEM)
            self.store.put(RECORDS, snapshot.id, records, owner=SYSTEM)
        return replace(snapshot, records=records)

    def get(self, snapshot_id: str, team_id: str | None) -> Snapshot:
        """The snapshot's description (its ``records`` are loaded by :meth:`restore` only)."""
        snapshot: Snapshot | None = self.store.get(META, snapshot_id)
        if snapshot is None or snapshot.team_id != team_id:
            raise ResourceNotFoundError(kind="snapshot", id=snapshot_id)
        return snapshot

    def restore(self, snapshot_id: str, team_id: str | None) -> Snapshot:
        """Replace the team's records (the whole store) by the snapshot's; the clock goes back to its instant."""
        snapshot = self.get(snapshot_id, team_id)
        with self.store.transaction():
            records: Records = self.store.get(RECORDS, snapshot_id) or {}
            self.store.restore(records, owner=team_id)
            if team_id is None:
                self.clock.place(snapshot.created_at, frozen=snapshot.frozen)
                return snapshot
            team: Team | None = self.store.get("team", team_id)
            if team is not None:
                team.time.place(self.clock, snapshot.created_at, frozen=snapshot.frozen)
                self.store.put("team", team_id, team, owner=team_id)
        return replace(snapshot, records=records)

    def list(self, team_id: str | None) -> list[Snapshot]:
        """The team's snapshots (the global ones when ``team_id`` is None), oldest first."""
        rows: list[Snapshot] = self.store.values(META, owner=SYSTEM)
        return [s for s in rows if s.team_id == team_id]

    def delete(self, snapshot_id: str, team_id: str | None) -> Snapshot:
        snapshot = self.get(snapshot_id, team_id)
        with self.store.transaction():
            self.store.delete(META, snapshot_id)
            self.store.delete(RECORDS, snapshot_id)
        return snapshot
