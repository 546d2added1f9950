"""``/_mock/journal``: the team's recorded requests and responses, filtered and counted; forgetting them.

Reading or forgetting the journal is not recorded in it, so counting calls never changes the count.
"""

from __future__ import annotations

from starlette.responses import Response

from mockserver.api.control import flag
from mockserver.api.pipeline import Ctx, json_response
from mockserver.core.journal import Query, parse_limit


async def list_journal(ctx: Ctx) -> Response:
    """Newest first; ``operation``, ``status`` (``404`` or ``4xx``), ``method``, ``since``, ``until``, ``kind``."""
    params = ctx.request.query_params
    query = Query.parse(params)
    rows = ctx.emulator.journal.entries(ctx.team.id, query, parse_limit(params.get("limit")))
    return json_response({"object": "list", "data": [row.wire() for row in rows]})


async def count_journal(ctx: Ctx) -> Response:
    """How many entries match the same filters as the list (without ``limit``)."""
    return json_response({"count": ctx.emulator.journal.count(ctx.team.id, Query.parse(ctx.request.query_params))})


async def clear_journal(ctx: Ctx) -> Response:
    """Forget the team's history (every team's with ``?global=true``); the state stays as it is."""
    team_id = None if flag(ctx, "global") else ctx.team.id
    return json_response({"deleted": ctx.emulator.journal.clear(team_id)})
