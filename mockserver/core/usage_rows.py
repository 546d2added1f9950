"""Usage-event rows of the LLM surfaces (``emb_`` / ``cmp_`` ids), kept in the store beside the generations.

A generation is its own usage row. An embeddings request writes an :class:`LlmUsageRow` (fact sheet
aurous-llm-v1.md §14.23); a chat completion writes (and rewrites when it settles) its own
(``_chat_records.usage_row``). ``GET /v1/usage/events`` lists both with the generations.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mockserver.core.models import Team
from mockserver.store import Store

KIND = "llm_usage"


@dataclass(slots=True)
class LlmUsageRow:
    id: str
    type: str  # "embedding" | "chat"
    model: str
    status: str  # the usage vocabulary: completed | failed | cancelled | processing
    created_at: datetime
    completed_at: datetime | None
    input_tokens: int | None
    output_tokens: int | None
    credits_charged: float
    api_key_id: str | None
    request_id: str

    def matches(self, params: dict[str, Any], start: datetime, end: datetime) -> bool:
        """The [G] stream's filters; LoRA and character filters name generations only, so they exclude these rows."""
        if not start <= self.created_at < end or params.get("user_id") is not None:
            return False
        if params.get("lora_id") is not None or params.get("character_id") is not None:
            return False
        facets = {"api_key_id": self.api_key_id, "status": self.status, "media_type": self.type, "model": self.model}
        return all(params.get(name) in (None, value) for name, value in facets.items())

    def duration_ms(self) -> int | None:
        if self.completed_at is None:
            return None
        return int((self.completed_at - self.created_at).total_seconds() * 1000)


class UsageRows:
    """Writes and reads a team's LLM usage rows (so reset and snapshots cover them like every record)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def add(self, team: Team, row: LlmUsageRow) -> None:
        self.store.put(KIND, row.id, row, owner=team.id)

    def get(self, team: Team, row_id: str) -> LlmUsageRow | None:
        row: LlmUsageRow | None = self.store.get(KIND, row_id)
        return row if row is not None and self.store.owner(KIND, row_id) == team.id else None

    def all(self, team: Team) -> list[LlmUsageRow]:
        rows: list[LlmUsageRow] = self.store.values(KIND, owner=team.id)
        return rows
