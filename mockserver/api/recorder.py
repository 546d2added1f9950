"""Puts one exchange into the team's journal; on the hot path, so it only collects references and appends.

Bodies are kept as the bytes already in memory (cut at 64 KiB), headers as the raw lists packed into bytes (no
container for the garbage collector to walk); rendering (JSON decoding, redaction) happens only when
``GET /_mock/journal`` reads them.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from mockserver.core.emulator import Emulator
from mockserver.core.journal import clip, pack_headers
from mockserver.core.models import Team

if TYPE_CHECKING:
    from mockserver.api.pipeline import Ctx

JOURNAL_PATH = "/_mock/journal"  # reading or forgetting history is not recorded in it
CONTROL_PATH = "/_mock/"
# The dashboard (/_mock/ui) marks its requests: its reads are not recorded, so an open page never fills the journal
# it shows (its state changes are, like anyone's).
DASHBOARD_HEADER = "Aurous-Mock-Dashboard"
_DASHBOARD_KEY = DASHBOARD_HEADER.lower().encode("latin-1")


def record(
    emulator: Emulator,
    team: Team,
    operation: str,
    request: Request,
    response: Response,
    ctx: Ctx | None,
    started: float,
) -> None:
    """Journal one exchange of ``team``; ``ctx`` is None when the request failed before reaching its handler."""
    scope = request.scope
    path: str = scope["path"]
    if emulator.journal.size <= 0 or path.startswith(JOURNAL_PATH):
        return
    control = path.startswith(CONTROL_PATH)
    if control and scope["method"] == "GET" and any(name == _DASHBOARD_KEY for name, _ in scope["headers"]):
        return
    request_id: str = scope["state"]["request_id"]
    request_body = ctx._body if ctx is not None else None  # only a body the handler read: never read it here
    body = getattr(response, "body", None)  # a streamed or file response keeps no body
    response_body = body if isinstance(body, bytes) else None
    row = (  # an Entry's fields in order (journal.Row): a tuple the collector stops tracking, never an object
        ctx.now if ctx is not None else emulator.accounts.now(team),
        operation,
        control,
        scope["method"],
        path,
        scope.get("query_string", b""),
        response.status_code,
        request_id,
        pack_headers(scope["headers"]),
        clip(request_body),
        len(request_body or b""),
        pack_headers(response.raw_headers),
        clip(response_body, kept=getattr(response, "body_kept", False)),  # pipeline.KeptJSONResponse
        len(response_body or b""),
        (time.perf_counter() - started) * 1000,
    )
    emulator.journal.record(team.id, row)
