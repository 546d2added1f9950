"""Snapshots: a team's records (or the whole store) captured by deep copy and put back on demand.

Rolling back is its own verb, apart from forgetting data (reset) and forgetting history (the journal):
snapshots survive resets, and restoring one leaves the journal alone. A team's snapshot holds every record
the team owns (balance, keys, generations, files, ledger, webhooks, rate buckets, its clock); restoring it
replaces exactly those, so other teams never notice. The team's clock returns to the snapshot's instant and
runs on from there (or stays frozen, if it was). A global snapshot holds the whole store and the global time.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mockserver.clock import ShiftedClock, rfc3339
from mockserver.core.errors import InvalidRequestStateError, ResourceNotFoundError
from mockserver.core.models import Team
from mockserver.ids import IdSource
from mockserver.store import Records, Store

SNAPSHOT_LIMIT = 100  # per team (and for the global ones): each holds a deep copy
TOO_MANY = f"At most {SNAPSHOT_LIMIT} snapshots are kept per team; delete one first."


@dataclass(slots=True)
class Snapshot:
    id: str
    team_id: str | None  # None: the whole store
    created_at: datetime  # the team's clock (the global clock for a global snapshot) when taken
    frozen: bool  # whether that clock was frozen
    records: Records

    def wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "mock.snapshot",
            "scope": "team" if self.team_id is not None else "global",
            "team_id": self.team_id,
            "created_at": rfc3339(self.created_at),
            "frozen": self.frozen,
            "records": sum(len(rows) for rows in self.records.values()),
        }


class Snapshots:
    """Snapshots by id, each visible only to its team (global ones only to global requests). Kept in memory."""

    def __init__(self, store: Store, clock: ShiftedClock, ids: IdSource) -> None:
        self.store = store
        self.clock = clock
        self.ids = ids
        self._by_id: dict[str, Snapshot] = {}
        self._lock = threading.Lock()

    def take(self, team: Team | None) -> Snapshot:
        """Capture ``team``'s records (the whole store when ``team`` is None)."""
        owner = team.id if team is not None else None
        if len(self.list(owner)) >= SNAPSHOT_LIMIT:
            raise InvalidRequestStateError(TOO_MANY)
        with self.store.transaction():
            if team is None:
                now, frozen = self.clock.now(), self.clock.frozen
            else:
                now, frozen = team.time.now(self.clock), team.time.frozen_at is not None
            records = self.store.snapshot(owner=owner)
        snapshot = Snapshot(
            id=self.ids.new("snap", at=now, scope=f"snapshots:{owner or '*'}"),
            team_id=owner,
            created_at=now,
            frozen=frozen,
            records=records,
        )
        with self._lock:
            self._by_id[snapshot.id] = snapshot
        return snapshot

    def get(self, snapshot_id: str, team_id: str | None) -> Snapshot:
        snapshot = self._by_id.get(snapshot_id)
        if snapshot is None or snapshot.team_id != team_id:
            raise ResourceNotFoundError(kind="snapshot", id=snapshot_id)
        return snapshot

    def restore(self, snapshot_id: str, team_id: str | None) -> Snapshot:
        """Replace the team's records (the whole store) by the snapshot's; the clock goes back to its instant."""
        snapshot = self.get(snapshot_id, team_id)
        with self.store.transaction():
            self.store.restore(snapshot.records, owner=team_id)
            if team_id is None:
                self.clock.place(snapshot.created_at, frozen=snapshot.frozen)
                return snapshot
            team: Team | None = self.store.get("team", team_id)
            if team is not None:
                team.time.place(self.clock, snapshot.created_at, frozen=snapshot.frozen)
                self.store.put("team", team_id, team, owner=team_id)
        return snapshot

    def list(self, team_id: str | None) -> list[Snapshot]:
        """The team's snapshots (the global ones when ``team_id`` is None), oldest first."""
        with self._lock:
            return [s for s in self._by_id.values() if s.team_id == team_id]

    def delete(self, snapshot_id: str, team_id: str | None) -> Snapshot:
        snapshot = self.get(snapshot_id, team_id)
        with self._lock:
            self._by_id.pop(snapshot_id, None)
        return snapshot
