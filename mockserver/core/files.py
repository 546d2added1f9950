"""Uploaded reference files: decode and check (PNG/JPEG/WebP, ≤10 MB, ≤4096 px), a 24 h TTL, purge."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import orjson

from mockserver.core import payload
from mockserver.core.errors import InvalidFormatError, ResourceNotFoundError, ValueOutOfRangeError
from mockserver.core.models import StoredFile, Team
from mockserver.core.ports import InspectImage
from mockserver.ids import IdSource
from mockserver.store import Store

KIND = "file"
PURPOSES = ("reference", "first_frame", "last_frame")
FILE_TTL = timedelta(hours=24)
MAX_FILE_BYTES = 10 * 1024 * 1024
# Metadata limits are documented for webhook endpoints; files reuse them (inferred).
MAX_METADATA_KEYS, MAX_METADATA_VALUE = 50, 500


def parse_metadata(raw: str | None) -> dict[str, Any]:
    """``metadata`` is a string holding a JSON object of at most 50 keys with values ≤ 500 characters."""
    if raw is None or raw == "":
        return {}
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidFormatError("metadata must be a JSON object.", param="metadata") from None
    payload.check(value, raw.encode(), field="metadata")
    if not isinstance(value, dict):
        raise InvalidFormatError("metadata must be a JSON object.", param="metadata")
    if len(value) > MAX_METADATA_KEYS:
        raise ValueOutOfRangeError(f"metadata has more than {MAX_METADATA_KEYS} keys.", param="metadata")
    for key, item in value.items():
        if isinstance(item, str) and len(item) > MAX_METADATA_VALUE:
            raise ValueOutOfRangeError(f"metadata.{key} exceeds {MAX_METADATA_VALUE} characters.", param="metadata")
    return value


class Files:
    def __init__(self, store: Store, ids: IdSource, inspect_image: InspectImage) -> None:
        self.store = store
        self.ids = ids
        self.inspect_image = inspect_image

    def create(self, team: Team, data: bytes, purpose: str, metadata: dict[str, Any], now: datetime) -> StoredFile:
        info = self.inspect_image(data, param="file", max_bytes=MAX_FILE_BYTES)
        stored = StoredFile(
            id=self.ids.new("file", at=now, scope=team.id),
            team_id=team.id,
            purpose=purpose,
            mime_type=info.mime_type,
            size_bytes=len(data),
            width_px=info.width,
            height_px=info.height,
            created_at=now,
            expires_at=now + FILE_TTL,
            metadata=metadata,
            data=data,
        )
        self.store.put(KIND, stored.id, stored, owner=team.id)
        return stored

    def find(self, team: Team, file_id: str, now: datetime) -> StoredFile | None:
        """The team's file, or None when unknown, another team's, purged or past its 24 h TTL."""
        stored: StoredFile | None = self.store.get(KIND, file_id)
        if stored is None or stored.team_id != team.id:
            return None
        if now >= stored.expires_at:
            self.store.delete(KIND, file_id)
            return None
        return stored

    def get(self, team: Team, file_id: str, now: datetime) -> StoredFile:
        stored = self.find(team, file_id, now)
        if stored is None:
            raise ResourceNotFoundError(kind="file", id=file_id)
        return stored

    def delete(self, team: Team, file_id: str) -> None:
        """Immediate purge; deleting a missing or foreign file is not an error (always 200 upstream)."""
        stored: StoredFile | None = self.store.get(KIND, file_id)
        if stored is not None and stored.team_id == team.id:
            self.store.delete(KIND, file_id)
