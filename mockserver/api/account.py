"""Handlers for the account and catalogue reads: balance, team, pricing, LoRAs and video LoRAs."""

from __future__ import annotations

from starlette.responses import Response

from mockserver.api.pipeline import Ctx, json_response
from mockserver.clock import rfc3339
from mockserver.core.pricing import rate_card


async def get_balance(ctx: Ctx) -> Response:
    team = ctx.team
    return json_response(
        {
            "credits": team.credits,
            "held_credits": team.held,
            "available_credits": team.available,
            "currency": "credit",
            "billing_mode": team.billing_mode,
        }
    )


async def get_team(ctx: Ctx) -> Response:
    team = ctx.team
    return json_response(
        {
            "id": team.id,
            "name": team.name,
            "credits": team.credits,
            "created_at": rfc3339(team.created_at),
            "billing_email": team.billing_email,
            "billing_mode": team.billing_mode,
        }
    )


async def get_pricing(ctx: Ctx) -> Response:
    return json_response(rate_card(ctx.version))


async def list_loras(ctx: Ctx) -> Response:
    return json_response([lora.wire() for lora in ctx.emulator.catalogue.list("image", ctx.team.id)])


async def get_lora(ctx: Ctx) -> Response:
    return json_response(ctx.emulator.catalogue.get("image", ctx.path("id"), ctx.team.id).wire())


async def list_video_loras(ctx: Ctx) -> Response:
    rows = [lora.wire() for lora in ctx.emulator.catalogue.list("video", ctx.team.id)]
    return json_response({"object": "list", "data": rows, "has_more": False, "next_cursor": None})


async def get_video_lora(ctx: Ctx) -> Response:
    return json_response(ctx.emulator.catalogue.get("video", ctx.path("id"), ctx.team.id).wire())
