"""Handlers for ``/v1/webhook_endpoints``, test-fire fixtures, and the wiring from generations to webhook events."""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from typing import Any

from starlette.responses import Response

from mockserver.api.characters import payload_base
from mockserver.api.characters import render as render_character
from mockserver.api.generations import base_url, query_int, render, wire_status
from mockserver.api.pipeline import Ctx, json_response, page_response
from mockserver.core._character_records import Character, CharacterStatus, Ref
from mockserver.core.emulator import Emulator
from mockserver.core.models import Cost, Generation, JobStatus, Team
from mockserver.core.scenarios import delivery_plan
from mockserver.core.webhooks import Endpoint, EndpointCreateRequest, FireRequest, id_scope

OUTCOMES = {JobStatus.SUCCEEDED: "completed", JobStatus.CANCELLED: "cancelled"}  # any other terminal: failed
CHARACTER_OUTCOMES = {"ready": "completed", "failed": "failed", "deleted": "cancelled"}


# --- wiring: generation transitions → events -------------------------------------------------------


def install(emulator: Emulator) -> None:
    """Listen to the generation service; ``core`` never learns about rendering or webhooks."""
    emulator.generations.on_create.append(functools.partial(_created, emulator))
    emulator.generations.on_terminal.append(functools.partial(_terminal, emulator))
    emulator.characters.on_terminal.append(functools.partial(_character_terminal, emulator))


def _character_terminal(emulator: Emulator, team: Team, character: Character, status: str, at: datetime) -> None:
    """``character.completed|failed|cancelled`` (2026-06-19); ``data`` is the character as GET renders it at ``at``.

    A run ending in ``reviewing`` (the original flow, scripted by scenarios) sends nothing (inferred).
    """
    outcome = CHARACTER_OUTCOMES.get(status)
    if outcome is None:
        return
    hooks, event_type = emulator.webhooks, f"character.{outcome}"
    if hooks.subscribers(team, event_type):
        data = render_character(character, at, payload_base(emulator, character), emulator.settings)
        hooks.publish(team, event_type, data, at, version=character.aurous_version)
    if outcome == "completed":  # credits were just charged
        hooks.check_balance_low(team, at)


def _created(emulator: Emulator, team: Team, gen: Generation) -> None:
    if gen.webhook_url is not None:
        emulator.webhooks.watch(team.id)  # its callback must fire even if the team never calls again


def _payload_base(emulator: Emulator, gen: Generation) -> str:
    """Like :func:`base_url`: the configured public URL, else the URL the generation was created through."""
    settings = emulator.settings
    if settings.public_url:
        return settings.public_url.rstrip("/")
    return str(gen.params.get("base_url") or f"http://{settings.host}:{settings.port}")


def _terminal(emulator: Emulator, team: Team, gen: Generation, at: datetime) -> None:
    """``image|video.completed|failed|cancelled`` to endpoints, the ``webhook_url`` callback, ``balance_low``.

    ``data`` is the generation exactly as ``GET /v1/images/{id}`` renders it at the terminal instant. The
    callback fires on every terminal state, cancellation included (the docs leave that open; inferred).
    """
    hooks, settings = emulator.webhooks, emulator.settings
    status = wire_status(gen, at, settings)
    event_type = f"{gen.media_type}.{OUTCOMES.get(status, 'failed')}"
    callback = gen.webhook_url
    if callback is not None or hooks.subscribers(team, event_type):
        data = render(gen, at, _payload_base(emulator, gen), settings)
        plan = delivery_plan(gen.params)  # webhook-level scenarios: delayed, duplicated, out of order
        hooks.publish(team, event_type, data, at, version=gen.aurous_version, plan=plan)
        if callback is not None:
            hooks.callback(team, callback, event_type, data, at, plan)
    if status is JobStatus.SUCCEEDED and gen.hold_id is not None:  # credits were just charged
        hooks.check_balance_low(team, at)


# --- handlers -----------------------------------------------------------------------------------------


async def create_webhook_endpoint(ctx: Ctx) -> Response:
    req = await ctx.parse(EndpointCreateRequest)
    endpoint = ctx.emulator.webhooks.create_endpoint(ctx.team, req, ctx.now)
    return json_response(endpoint.wire(show_secret=True), 201)


async def list_webhook_endpoints(ctx: Ctx) -> Response:
    query = ctx.request.query_params
    limit = query_int(ctx, "limit", 20, 1, 100)
    page = ctx.emulator.webhooks.list_endpoints(
        ctx.team, limit=limit, starting_after=query.get("starting_after"), ending_before=query.get("ending_before")
    )
    return page_response(page, lambda endpoint: endpoint.wire())


async def get_webhook_endpoint(ctx: Ctx) -> Response:
    return json_response(ctx.emulator.webhooks.get_endpoint(ctx.team, ctx.path("id")).wire())


async def delete_webhook_endpoint(ctx: Ctx) -> Response:
    endpoint_id = ctx.path("id")
    deleted = ctx.emulator.webhooks.delete_endpoint(ctx.team, endpoint_id)
    return json_response({"id": endpoint_id, "object": "webhook_endpoint", "deleted": deleted})


async def rotate_webhook_endpoint_secret(ctx: Ctx) -> Response:
    endpoint = ctx.emulator.webhooks.rotate_secret(ctx.team, ctx.path("id"), ctx.now)
    return json_response(endpoint.wire(show_secret=True))


async def test_webhook_endpoint(ctx: Ctx) -> Response:
    req = await ctx.parse(FireRequest)
    fixture = functools.partial(fixture_data, ctx, req.event_type)
    event = ctx.emulator.webhooks.test_fire(ctx.team, ctx.path("id"), req.event_type, fixture, ctx.now)
    endpoint_id = event.endpoint_ids[0]
    return json_response(
        {"object": "webhook_test_fire", "endpoint_id": endpoint_id, "event_id": event.id, "enqueued": True}
    )


# --- test-fire fixtures ---------------------------------------------------------------------------------

PROMPT = "A lighthouse on a cliff at dusk, volumetric light"
IMAGE_PARAMS = {"width": 1024, "height": 1024, "image_count": 1, "size_preset": "square", "cfg_rescale": 0}
VIDEO_PARAMS = {"video_resolution": "720p", "video_ratio": "16:9", "video_duration": 5}
CHARACTER_ATTRIBUTES = {"gender": "female", "age": 28, "hair_color": "black", "eye_color": "brown"}


def fixture_data(ctx: Ctx, event_type: str, endpoint: Endpoint) -> dict[str, Any]:
    """A realistic ``data`` for a synthetic delivery of ``event_type`` (ids are fresh, resources are not stored)."""
    family, _, outcome = event_type.partition(".")
    if family in ("image", "video"):
        return _generation_fixture(ctx, family, outcome)
    if family == "character":
        return _character_fixture(ctx, outcome)
    if event_type == "usage.balance_low":
        threshold = ctx.emulator.settings.balance_low_threshold
        return {
            "credits": ctx.team.credits,
            "available_credits": ctx.team.available,
            "threshold": threshold if threshold is not None else ctx.team.credits,
        }
    return endpoint.wire()  # webhook.endpoint_disabled: the disabled endpoint, secret null


def _generation_fixture(ctx: Ctx, media: str, outcome: str) -> dict[str, Any]:
    status = {"completed": JobStatus.SUCCEEDED, "failed": JobStatus.FAILED}.get(outcome, JobStatus.SUCCEEDED)
    image = media == "image"
    now = ctx.now
    gen = Generation(
        id=ctx.emulator.ids.new("img" if image else "vid", at=now, scope=id_scope(ctx.team.id)),
        team_id=ctx.team.id,
        media_type=media,
        prompt=PROMPT,
        created_at=now - timedelta(seconds=20),
        started_at=now - timedelta(seconds=18),
        finish_at=now,
        outcome=status,
        cost=Cost(1.0, 1.0, 0.0) if image else Cost(3.75, 3.75, 0.0),
        aurous_version=ctx.version,
        creation_request_id=ctx.request_id,
        inference_type="t2i" if image else "t2v",
        seed=42,
        params=dict(IMAGE_PARAMS if image else VIDEO_PARAMS),
        error_message="Content policy violation" if status is JobStatus.FAILED else None,
        cancelled_at=now if outcome == "cancelled" else None,
    )
    return render(gen, now, base_url(ctx), ctx.emulator.settings)


def _character_fixture(ctx: Ctx, outcome: str) -> dict[str, Any]:
    """A character rendered like a real ``character.*`` payload (its ref URL points at no stored character)."""
    now = ctx.now
    status = {"completed": CharacterStatus.READY, "failed": CharacterStatus.FAILED}.get(outcome)
    character = Character(
        id=ctx.emulator.ids.new("char", at=now, scope=id_scope(ctx.team.id)),
        team_id=ctx.team.id,
        name="Aurora the Adventurer",
        attributes=dict(CHARACTER_ATTRIBUTES),
        client_reference_id=None,
        aurous_version=ctx.version,
        created_at=now - timedelta(minutes=2),
        updated_at=now,
        base_url=base_url(ctx),
        state=status or CharacterStatus.READY,
        refs=[Ref("front", "front")] if status is CharacterStatus.READY else [],
        error_message="provider_error" if status is CharacterStatus.FAILED else None,
        deleted_at=now if status is None else None,
    )
    return render_character(character, now, base_url(ctx), ctx.emulator.settings)
